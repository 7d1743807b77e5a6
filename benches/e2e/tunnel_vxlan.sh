#!/usr/bin/env bash
# VXLAN encap + decap throughput, rvswitch against Debian's ovs-vswitchd (userspace
# datapath), one after the other on the same topology in the same run.
#
#   [ns tb-a] vm-a --veth-- [ns tb-r: switch site r] ==underlay veth== [ns tb-o: site o] --veth-- vm-b [ns tb-b]
#
# Both sites run the same switch: an underlay bridge (the underlay veth + its internal port
# holding 172.27.0.1 / .2) and an overlay bridge (a vxlan port, key 5000, and the VM veth).
# iperf3 then sends from vm-a to vm-b through the tunnel: site r encapsulates, site o
# decapsulates. Prints iperf3's TCP and UDP throughput per switch.
#
# Usage: benches/e2e/tunnel_vxlan.sh [seconds] [switches...]   (defaults: 10, "rvswitch ovs")
# Needs root, iperf3, ovs-vswitchd/ovsdb-server. Builds rvswitch in release mode.
set -euo pipefail

DURATION=${1:-10}
shift $(( $# > 0 ? 1 : 0 )) || true
SWITCHES=${*:-rvswitch ovs}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d /tmp/rvs-tnl.XXXXXX)
NSS="tb-r tb-o tb-a tb-b"

die() { echo "tunnel_vxlan: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root"
for t in ip iperf3; do command -v $t >/dev/null || die "$t not found"; done

PIDS=""
stop_all() {
    set +e
    for p in $PIDS; do kill -TERM "$p" 2>/dev/null; done
    for f in "$WORK"/*/*.pid; do [ -f "$f" ] && kill -TERM "$(cat "$f")" 2>/dev/null; done
    sleep 1
    for p in $PIDS; do kill -KILL "$p" 2>/dev/null; done
    for f in "$WORK"/*/*.pid; do [ -f "$f" ] && kill -KILL "$(cat "$f")" 2>/dev/null; rm -f "$f"; done
    PIDS=""
    for ns in $NSS; do ip netns del "$ns" 2>/dev/null; done
    set -e
}
cleanup() { stop_all; rm -rf "$WORK"; }
trap cleanup EXIT INT TERM

topology() {
    for ns in $NSS; do
        ip netns add "$ns"
        ip -n "$ns" link set lo up
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
    done
    ip link add tb-ur netns tb-r type veth peer name tb-uo netns tb-o
    ip link add tb-vr netns tb-r type veth peer name tb-va netns tb-a
    ip link add tb-vo netns tb-o type veth peer name tb-vb netns tb-b
    for d in "tb-r tb-ur" "tb-r tb-vr" "tb-o tb-uo" "tb-o tb-vo"; do
        set -- $d
        ip -n "$1" link set "$2" up
        ip netns exec "$1" ethtool -K "$2" tx off >/dev/null
    done
    ip -n tb-a link set tb-va address 02:00:0a:1b:00:01 mtu 1400 up
    ip -n tb-a addr add 10.27.0.1/24 dev tb-va
    ip netns exec tb-a ethtool -K tb-va tx off >/dev/null
    ip -n tb-b link set tb-vb address 02:00:0a:1b:00:02 mtu 1400 up
    ip -n tb-b addr add 10.27.0.2/24 dev tb-vb
    ip netns exec tb-b ethtool -K tb-vb tx off >/dev/null
}

rvswitch_site() { # site ns local remote core
    local d="$WORK/rvs-$1"
    mkdir -p "$d"
    cat > "$d/switch.toml" <<EOT
[global]
run_dir = "$d"
pmd_cores = [$5]
log_level = "warn"

[[bridge]]
name = "tb-p$1"
[[bridge.port]]
name = "tb-u$1"
type = "afpacket"

[[bridge]]
name = "tb-i$1"
[[bridge.port]]
name = "tb-v$1"
type = "afpacket"
[[bridge.port]]
name = "tb-t$1"
type = "vxlan"
options = { remote_ip = "$4", key = "5000" }
EOT
    ip netns exec "$2" "$ROOT/target/release/rvswitch" --config "$d/switch.toml" \
        2>"$d/daemon.log" &
    PIDS="$PIDS $!"
    for _ in $(seq 100); do [ -S "$d/rvswitch.ctl" ] && break; sleep 0.1; done
    [ -S "$d/rvswitch.ctl" ] || die "rvswitch site $1 did not start: $(cat "$d/daemon.log")"
    ip -n "$2" addr add "$3/24" dev "tb-p$1"
    ip -n "$2" link set "tb-p$1" up
}

ovs_site() { # site ns local remote core
    local d="$WORK/ovs-$1"
    mkdir -p "$d"
    local env="OVS_RUNDIR=$d OVS_DBDIR=$d OVS_LOGDIR=$d OVS_SYSCONFDIR=$d"
    ovsdb-tool create "$d/conf.db" /usr/share/openvswitch/vswitch.ovsschema
    env $env ip netns exec "$2" ovsdb-server "$d/conf.db" --remote="punix:$d/db.sock" \
        --pidfile="$d/ovsdb.pid" --unixctl="$d/ovsdb.ctl" --detach --no-chdir \
        --log-file="$d/ovsdb.log"
    local vs="ovs-vsctl --timeout=30 --db=unix:$d/db.sock"
    $vs --no-wait init
    $vs --no-wait set Open_vSwitch . other_config:pmd-cpu-mask=$((1 << $5))
    env $env ip netns exec "$2" taskset -c "$5" ovs-vswitchd "unix:$d/db.sock" \
        --pidfile="$d/vswitchd.pid" --unixctl="$d/vswitchd.ctl" --detach --no-chdir \
        --log-file="$d/vswitchd.log"
    $vs add-br "tb-p$1" -- set bridge "tb-p$1" datapath_type=netdev -- add-port "tb-p$1" "tb-u$1"
    ip -n "$2" addr add "$3/24" dev "tb-p$1"
    ip -n "$2" link set "tb-p$1" up
    $vs add-br "tb-i$1" -- set bridge "tb-i$1" datapath_type=netdev -- add-port "tb-i$1" "tb-v$1" \
        -- add-port "tb-i$1" "tb-t$1" -- set interface "tb-t$1" type=vxlan \
        options:remote_ip="$4" options:key=5000
}

measure() { # switch
    topology
    "${1}_site" r tb-r 172.27.0.1 172.27.0.2 0
    "${1}_site" o tb-o 172.27.0.2 172.27.0.1 1
    # Warm up: underlay ARP (the switches' own) and overlay ARP.
    ip netns exec tb-a ping -c 5 -i 0.3 -W 1 -q 10.27.0.2 >/dev/null || true
    ip netns exec tb-a ping -c 3 -i 0.2 -W 1 -q 10.27.0.2 >/dev/null \
        || die "$1: no connectivity through the tunnel"
    ip netns exec tb-b iperf3 -s -D -p 5201 --pidfile "$WORK/iperf.pid"
    sleep 0.5
    local tcp udp
    tcp=$(ip netns exec tb-a iperf3 -c 10.27.0.2 -p 5201 -t "$DURATION" -J \
        | python3 -c 'import json,sys; d=json.load(sys.stdin)["end"]; print("%.1f" % (d["sum_received"]["bits_per_second"]/1e6))')
    udp=$(ip netns exec tb-a iperf3 -u -c 10.27.0.2 -p 5201 -t "$DURATION" -b 0 -l 1300 -J \
        | python3 -c 'import json,sys; d=json.load(sys.stdin)["end"]["sum"]; print("%.1f Mbit/s received, %.0f pkt/s offered, %.1f%% lost" % (d["bits_per_second"]*(100-d["lost_percent"])/100/1e6, d["packets"]/d["seconds"], d["lost_percent"]))')
    kill "$(cat "$WORK/iperf.pid")" 2>/dev/null || true
    echo "$1: TCP ${tcp} Mbit/s; UDP 1300-byte: ${udp}"
    stop_all
}

(cd "$ROOT" && cargo build --release --bins -q) || die "building rvswitch failed"
echo "VXLAN encap (site r) + decap (site o), ${DURATION}s per test, $(date -u +%FT%TZ), load: $(cut -d' ' -f1-3 /proc/loadavg)"
for s in $SWITCHES; do measure "$s"; done
