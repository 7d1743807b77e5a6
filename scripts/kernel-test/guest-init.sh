#!/bin/sh
# /init of the kernel-datapath test guest: loads openvswitch.ko, builds the namespaces and
# veths the test needs, runs the test program, prints one KTEST line per step, powers off.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
IP=/usr/sbin/ip   # iproute2 (busybox's ip cannot make veths or namespaces)
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs run /run
mount -t tmpfs tmp /tmp
mkdir -p /run/netns
echo "KTEST BOOTED uptime=$(cut -d' ' -f1 /proc/uptime)s kernel=$(uname -r)"

step() { # step NAME CMD...: runs CMD, prints PASS/FAIL and the output on failure
	name=$1; shift
	# In a subshell with -e, so a failing command inside a step function fails the step
	# (errexit is off for a function called as an `if` condition).
	( set -e; "$@" ) >/tmp/step.log 2>&1
	if [ $? -eq 0 ]; then
		echo "KTEST PASS $name"
	else
		echo "KTEST FAIL $name"
		sed 's/^/    /' /tmp/step.log
	fi
}

load_modules() {
	for m in crc32c_generic openvswitch veth vxlan geneve ip_gre vport-vxlan vport-geneve vport-gre; do
		modprobe "$m" || return 1
	done
	grep -q '^openvswitch ' /proc/modules
}
step modules load_modules

setup_net() {
	set -e
	# no IPv6: its ND/MLD chatter would add flows and packets the test does not expect
	noipv6='echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6; echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6'
	sh -c "$noipv6"
	$IP link set lo up
	for i in 1 2 3 4 5; do
		$IP netns add ns$i
		$IP netns exec ns$i sh -c "$noipv6"
		$IP -n ns$i link set lo up
	done
	for i in 1 2; do
		$IP link add v${i}a type veth peer name v${i}b
		$IP link set v${i}b netns ns$i
		$IP -n ns$i addr add 10.0.0.$i/24 dev v${i}b
		$IP -n ns$i link set v${i}b up
		$IP link set v${i}a up
	done
	# underlay to ns3, where a Linux vxlan device (VNI 42) is the far tunnel end
	$IP link add ul0 type veth peer name ul1
	$IP link set ul1 netns ns3
	$IP addr add 192.168.50.1/24 dev ul0
	$IP link set ul0 up
	$IP -n ns3 addr add 192.168.50.2/24 dev ul1
	$IP -n ns3 link set ul1 up
	$IP -n ns3 link add vx3 type vxlan id 42 remote 192.168.50.1 dstport 4789 dev ul1
	$IP -n ns3 addr add 10.0.0.3/24 dev vx3
	$IP -n ns3 link set vx3 up
	# ns4: geneve VNI 43 at 10.0.0.4; ns5: gretap key 44 at 10.0.0.5
	n=1
	for t in "4 geneve" "5 gre"; do
		set -- $t
		$IP link add ul$((n * 2)) type veth peer name ul$((n * 2 + 1))
		$IP link set ul$((n * 2 + 1)) netns ns$1
		$IP addr add 192.168.5$n.1/24 dev ul$((n * 2))
		$IP link set ul$((n * 2)) up
		$IP -n ns$1 addr add 192.168.5$n.2/24 dev ul$((n * 2 + 1))
		$IP -n ns$1 link set ul$((n * 2 + 1)) up
		n=$((n + 1))
	done
	$IP -n ns4 link add gnv4 type geneve id 43 remote 192.168.51.1
	$IP -n ns5 link add gre5 type gretap remote 192.168.52.1 local 192.168.52.2 key 44
	$IP -n ns4 addr add 10.0.0.4/24 dev gnv4
	$IP -n ns5 addr add 10.0.0.5/24 dev gre5
	$IP -n ns4 link set gnv4 up
	$IP -n ns5 link set gre5 up
	set +e
}
step setup_net setup_net

T0=$(cut -d' ' -f1 /proc/uptime)
timeout 400 /usr/bin/kernel_guest rvs0
echo "KTEST INFO kernel_guest exit=$? ran $(awk "BEGIN{print $(cut -d' ' -f1 /proc/uptime)-$T0}")s"

no_leftovers() {
	! $IP link show rvs0 && ! $IP link show vxrvs0 && ! $IP link show gnvrvs0 &&
		! $IP link show grervs0 && ! grep -q rvs0 /proc/net/dev
}
step no_leftovers no_leftovers

# The daemon: a kernel bridge from switch.toml over the same veths, ping through it, the
# datapath seen by ovs-dpctl and by rvswitch-appctl, and nothing left after SIGINT.
cat > /tmp/kernel.toml <<'TOML'
[global]
run_dir = "/run/rvswitch"
log_level = "info"

[[bridge]]
name = "brk0"
datapath = "kernel"
fail_mode = "standalone"

[[bridge.port]]
name = "v1a"
type = "afpacket"

[[bridge.port]]
name = "v2a"
type = "afpacket"
TOML
/usr/bin/rvswitch --config /tmp/kernel.toml >/tmp/rvswitch.log 2>&1 &
RVS=$!
daemon_up() {
	for _ in $(seq 1 100); do
		[ -S /run/rvswitch/rvswitch.ctl ] && ovs-dpctl show system@ovs-system && return 0
		kill -0 $RVS 2>/dev/null || return 1
		sleep 0.2
	done
	return 1
}
step daemon_start daemon_up
step daemon_ping $IP netns exec ns1 /usr/bin/ping -c 3 -i 0.2 -W 3 10.0.0.2
daemon_flows() {
	ovs-dpctl show system@ovs-system | grep -q 'v1a' &&
	ovs-dpctl show system@ovs-system | grep -q 'v2a' &&
	ovs-dpctl dump-flows system@ovs-system | tee /tmp/dpctl.flows | grep -q 'packets:[1-9]' &&
	/usr/bin/rvswitch-appctl -t /run/rvswitch/rvswitch.ctl dpif/show | tee /tmp/appctl.flows | grep -q 'v2a'
	rc=$?
	cat /tmp/dpctl.flows /tmp/appctl.flows
	return $rc
}
step daemon_flows daemon_flows
sed 's/^/    | /' /tmp/dpctl.flows /tmp/appctl.flows 2>/dev/null

# A vxlan port added to the running daemon's kernel bridge (flow-based device, the kernel
# encapsulates from set(tunnel)), pinged across to ns3's Linux vxlan device (VNI 42); a
# geneve port as the module's compat vport (vport=compat) to ns4's geneve device (VNI 43).
CTL=/run/rvswitch/rvswitch.ctl
appctl() { /usr/bin/rvswitch-appctl -t $CTL "$@"; }
# dpctl/show names every port as ovs-dpctl show does (number, name, type).
daemon_dpctl_show() {
	appctl dpctl/show kernel | tee /tmp/ours.show
	ovs-dpctl show system@ovs-system | tee /tmp/theirs.show
	grep -q '^  lookups: hit:[1-9]' /tmp/ours.show
	[ "$(grep -c '^  port ' /tmp/theirs.show)" -ge 3 ]
	grep '^  port ' /tmp/theirs.show | while IFS= read -r l; do
		grep -qxF "$l" /tmp/ours.show || { echo "not in dpctl/show: $l"; exit 1; }
	done
}
step daemon_dpctl_show daemon_dpctl_show
daemon_vxlan_add() {
	appctl add-port brk0 vxd0 type=vxlan remote_ip=192.168.50.2 key=42
	ovs-dpctl show system@ovs-system >/tmp/show.txt
	appctl dpif/show >>/tmp/show.txt
	cat /tmp/show.txt
	[ "$(grep -c 'vxd0' /tmp/show.txt)" -ge 2 ]
}
step daemon_vxlan_add daemon_vxlan_add
# dpctl/del-flows on the kernel datapath: the module's megaflows are gone (as ovs-dpctl
# sees them), and the next ping installs them again.
daemon_del_flows() {
	ovs-dpctl dump-flows system@ovs-system | grep -q 'recirc_id'
	appctl dpctl/del-flows kernel
	n=$(ovs-dpctl dump-flows system@ovs-system | grep -c 'recirc_id' || true)
	echo "flows after dpctl/del-flows: $n"
	[ "$n" -eq 0 ]
	$IP netns exec ns1 /usr/bin/ping -c 2 -i 0.2 -W 3 10.0.0.2
	ovs-dpctl dump-flows system@ovs-system | grep -q 'packets:[1-9]'
}
step daemon_del_flows daemon_del_flows
# upcall/show right after that ping: the kernel datapath's block, its flows counted
# against the limit the daemon enforces for it (max_flows, default 65,536), and the
# revalidator thread's line; memory/show beside it.
daemon_upcall_show() {
	appctl upcall/show | tee /tmp/upcall.txt
	grep -qx 'kernel@ovs-system:' /tmp/upcall.txt
	grep -qE '^  flows         : \(current [1-9][0-9]*\) .*\(limit 65536\)$' /tmp/upcall.txt
	grep -qE '^  [0-9]+: \(keys [0-9]+\)$' /tmp/upcall.txt
	# memory/show counts the kernel datapath's upcall handler thread.
	appctl memory/show | tee /tmp/memory.txt
	grep -q ' handlers:1 ' /tmp/memory.txt
}
step daemon_upcall_show daemon_upcall_show
step daemon_vxlan_ping $IP netns exec ns1 /usr/bin/ping -c 3 -i 0.2 -W 3 10.0.0.3
# Right after the ping, while its megaflows are live: ours and ovs-dpctl's must agree.
step daemon_dpctl_dump_flows /usr/bin/kernel_dump_compare $CTL system@ovs-system 0x2a
sed "s/^/    /" /tmp/step.log
daemon_geneve_compat() {
	appctl add-port brk0 gnd0 type=geneve remote_ip=192.168.51.2 key=43 vport=compat
	ovs-dpctl show system@ovs-system >/tmp/show.txt
	cat /tmp/show.txt
	grep -q 'gnd0 (geneve' /tmp/show.txt
	$IP netns exec ns1 /usr/bin/ping -c 3 -i 0.2 -W 3 10.0.0.4
}
step daemon_geneve_compat daemon_geneve_compat
daemon_stop() {
	kill -INT $RVS
	for _ in $(seq 1 100); do
		kill -0 $RVS 2>/dev/null || break
		sleep 0.2
	done
	! kill -0 $RVS 2>/dev/null && ! ovs-dpctl show system@ovs-system && ! $IP link show ovs-system && ! $IP link show brk0 &&
		! $IP link show vxd0 && ! $IP link show gnd0
}
step daemon_stop daemon_stop
echo "---- rvswitch log ----"
sed 's/^/    /' /tmp/rvswitch.log | tail -40

echo "KTEST DONE uptime=$(cut -d' ' -f1 /proc/uptime)s"
poweroff -f
