#!/usr/bin/env bash
# End-to-end throughput: trafgen -> veth -> switch -> veth -> XDP drop, for rvswitch and for
# Debian's ovs-vswitchd (userspace datapath), one after the other, on the same topology.
#
#   [ns e2e-src] e2e-s1 --veth-- e2e-s0 ==\                    trafgen pinned to core 0
#                                           switch (PMD core 1)
#   [ns e2e-dst] e2e-d1 --veth-- e2e-d0 ==/                    XDP_DROP on e2e-d1
#
# Prints, per switch: offered pps (frames trafgen got onto e2e-s1), delivered pps (frames
# the switch put on e2e-d0, counted at e2e-d1) and PMD CPU cycles per delivered packet
# (CPU time the switch's threads on core 1 got x clock / packets: includes idle polling, so
# an upper bound; on a shared machine it is lower than the TSC-based figures the switches
# print, because the PMD did not get the whole core), followed by the switch's own PMD
# statistics (rvswitch-appctl / ovs-appctl pmd-stats-show).
#
# Usage: benches/e2e/run.sh [seconds] [frame-bytes] [switches...]
#   defaults: 10 s, 64-byte frames, "rvswitch ovs". Needs root, trafgen, clang, iproute2;
#   ovs-vswitchd/ovsdb-server for the OVS run. Builds rvswitch in release mode.
# Environment: RVS_PORT_TYPE (afxdp), RVS_XDP_MODE (generic), OVS_PORT_TYPE (afxdp).
set -euo pipefail

DURATION=${1:-10}
FRAME_LEN=${2:-64}
shift $(( $# > 2 ? 2 : $# )) || true
SWITCHES=${*:-rvswitch ovs}
RVS_PORT_TYPE=${RVS_PORT_TYPE:-afxdp}
RVS_XDP_MODE=${RVS_XDP_MODE:-generic}
OVS_PORT_TYPE=${OVS_PORT_TYPE:-afxdp}

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d /tmp/rvs-e2e.XXXXXX)
SRC_NS=e2e-src DST_NS=e2e-dst
SRC_MAC=02:00:0e:2e:00:01 DST_MAC=02:00:0e:2e:00:02
SWITCH_PID=""

die() { echo "e2e: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (namespaces, veths, XDP)"
for t in ip trafgen clang taskset; do command -v $t >/dev/null || die "$t not found"; done

cleanup() {
    set +e
    stop_switch
    ip link del e2e-s0 2>/dev/null
    ip link del e2e-d0 2>/dev/null
    ip netns del $SRC_NS 2>/dev/null
    ip netns del $DST_NS 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

stop_switch() {
    set +e
    if [ -n "$SWITCH_PID" ]; then
        kill -INT "$SWITCH_PID" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$SWITCH_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SWITCH_PID" 2>/dev/null
        wait "$SWITCH_PID" 2>/dev/null
        SWITCH_PID=""
    fi
    if [ -f "$WORK/ovs/vswitchd.pid" ]; then
        ovs-appctl -t "$WORK/ovs/ovs-vswitchd.$(cat "$WORK/ovs/vswitchd.pid").ctl" exit \
            >/dev/null 2>&1
        kill "$(cat "$WORK/ovs/vswitchd.pid")" 2>/dev/null
        rm -f "$WORK/ovs/vswitchd.pid"
    fi
    if [ -f "$WORK/ovs/ovsdb.pid" ]; then
        kill "$(cat "$WORK/ovs/ovsdb.pid")" 2>/dev/null
        rm -f "$WORK/ovs/ovsdb.pid"
    fi
    set -e
}

setup_side() { # ns host peer mac
    ip netns add "$1"
    ip link add "$2" type veth peer name "$3" netns "$1"
    ip link set "$2" up
    sysctl -qw "net.ipv6.conf.$2.disable_ipv6=1" || true
    ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
    ip -n "$1" link set "$3" address "$4"
    ip -n "$1" link set "$3" up
}

topology() {
    ip netns del $SRC_NS 2>/dev/null || true
    ip netns del $DST_NS 2>/dev/null || true
    setup_side $SRC_NS e2e-s0 e2e-s1 $SRC_MAC
    setup_side $DST_NS e2e-d0 e2e-d1 $DST_MAC
    clang -O2 -target bpf -c "$ROOT/benches/e2e/xdp_drop.c" -o "$WORK/xdp_drop.o"
    ip -n $DST_NS link set dev e2e-d1 xdp obj "$WORK/xdp_drop.o" sec xdp 2>/dev/null ||
        ip -n $DST_NS link set dev e2e-d1 xdpgeneric obj "$WORK/xdp_drop.o" sec xdp
}

# One UDP flow, $FRAME_LEN bytes without FCS, src -> dst MAC: a single megaflow / EMC entry.
trafgen_packet() {
    local payload=$((FRAME_LEN - 42))
    [ $payload -ge 0 ] || die "frame length must be at least 42"
    cat <<EOF
{
  eth(da=$DST_MAC, sa=$SRC_MAC, type=0x0800),
  ipv4(saddr=10.201.0.1, daddr=10.201.0.2, ttl=64, proto=17),
  udp(sp=4000, dp=5000),
  fill(0x41, $payload)
}
EOF
}

counter() { # ns dev name
    ip netns exec "$1" cat "/sys/class/net/$2/statistics/$3"
}

cpu_hz() {
    local mhz
    mhz=$(awk -F: '/^cpu MHz/ {print $2; exit}' /proc/cpuinfo)
    awk -v m="${mhz:-0}" 'BEGIN { printf "%.0f", m * 1e6 }'
}

# CPU ticks (utime+stime) consumed by every thread of $1 currently running on core 1.
core1_ticks() {
    local total=0 t
    for t in /proc/"$1"/task/*; do
        local stat
        stat=$(cat "$t/stat" 2>/dev/null) || continue
        # Fields after the ")" : state is 3rd overall; utime 14, stime 15, processor 39.
        set -- ${stat##*) }
        if [ "${37}" = 1 ]; then total=$((total + ${12} + ${13})); fi
    done
    echo $total
}

measure() { # label pid
    local label=$1 pid=$2
    trafgen_packet > "$WORK/pkt.cfg"
    # Warm up: learn/flood, install the megaflow.
    ip netns exec $SRC_NS trafgen --dev e2e-s1 --conf "$WORK/pkt.cfg" -n 1000 -P 1 \
        --no-sock-mem -Q -C >/dev/null 2>&1 || true
    sleep 1
    local tx0 rx0 c0 tx1 rx1 c1
    tx0=$(counter $SRC_NS e2e-s1 tx_packets)
    rx0=$(counter $DST_NS e2e-d1 rx_packets)
    c0=$(core1_ticks "$pid")
    timeout -s INT "$DURATION" ip netns exec $SRC_NS taskset -c 0 trafgen --dev e2e-s1 \
        --conf "$WORK/pkt.cfg" -P 1 --no-sock-mem -Q -C >/dev/null 2>&1 || true
    sleep 0.5
    c1=$(core1_ticks "$pid")
    tx1=$(counter $SRC_NS e2e-s1 tx_packets)
    rx1=$(counter $DST_NS e2e-d1 rx_packets)
    local hz tck
    hz=$(cpu_hz)
    tck=$(getconf CLK_TCK)
    awk -v l="$label" -v tx=$((tx1 - tx0)) -v rx=$((rx1 - rx0)) -v d="$DURATION" \
        -v ticks=$((c1 - c0)) -v hz="$hz" -v tck="$tck" \
        'BEGIN {
            cyc = 0; pct = 0;
            if (rx > 0 && hz > 0) cyc = ticks / tck * hz / rx;
            if (tx > 0) pct = 100 * rx / tx;
            printf "%-10s offered %10.0f pps  delivered %10.0f pps  (%5.1f%%)  PMD CPU cycles/packet %8.0f\n", l, tx / d, rx / d, pct, cyc
        }'
}

wait_for() { # seconds command...
    local n=$(($1 * 10)); shift
    for _ in $(seq $n); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
    return 1
}

run_rvswitch() {
    [ -n "$RVS_PORT_TYPE" ] || die "RVS_PORT_TYPE empty"
    (cd "$ROOT" && cargo build --release --bins -q) || die "building rvswitch failed"
    local opts="{ }"
    [ "$RVS_PORT_TYPE" = afxdp ] && opts="{ xdp_mode = \"$RVS_XDP_MODE\", n_rxq = 1 }"
    cat > "$WORK/switch.toml" <<EOF
[global]
pmd_cores = [1]
run_dir = "$WORK/rvs"
log_level = "warn"

[[bridge]]
name = "br0"
datapath = "netdev"
fail_mode = "standalone"

[[bridge.port]]
name = "e2e-s0"
type = "$RVS_PORT_TYPE"
options = $opts

[[bridge.port]]
name = "e2e-d0"
type = "$RVS_PORT_TYPE"
options = $opts
EOF
    "$ROOT/target/release/rvswitch" --config "$WORK/switch.toml" > "$WORK/rvswitch.log" 2>&1 &
    SWITCH_PID=$!
    wait_for 10 test -S "$WORK/rvs/rvswitch.ctl" ||
        { cat "$WORK/rvswitch.log"; die "rvswitch did not start"; }
    sleep 1
    kill -0 $SWITCH_PID || { cat "$WORK/rvswitch.log"; die "rvswitch exited"; }
    measure "rvswitch" $SWITCH_PID
    "$ROOT/target/release/rvswitch-appctl" -t "$WORK/rvs/rvswitch.ctl" pmd-stats-show 2>/dev/null |
        sed 's/^/    /' || true
    stop_switch
}

run_ovs() {
    command -v ovs-vswitchd >/dev/null || die "ovs-vswitchd not installed"
    local d="$WORK/ovs"
    mkdir -p "$d"
    export OVS_RUNDIR=$d OVS_LOGDIR=$d OVS_DBDIR=$d OVS_SYSCONFDIR=$d
    local schema=/usr/share/openvswitch/vswitch.ovsschema
    ovsdb-tool create "$d/conf.db" "$schema"
    ovsdb-server "$d/conf.db" --remote="punix:$d/db.sock" --pidfile="$d/ovsdb.pid" \
        --detach --log-file="$d/ovsdb.log" 2>/dev/null
    local vsctl="ovs-vsctl --db=unix:$d/db.sock"
    $vsctl --no-wait init
    $vsctl --no-wait set Open_vSwitch . other_config:pmd-cpu-mask=0x2
    ovs-vswitchd "unix:$d/db.sock" --pidfile="$d/vswitchd.pid" --detach \
        --log-file="$d/vswitchd.log" -vconsole:off 2>/dev/null
    $vsctl add-br br0 -- set bridge br0 datapath_type=netdev
    local p
    for p in e2e-s0 e2e-d0; do
        if [ "$OVS_PORT_TYPE" = afxdp ]; then
            $vsctl add-port br0 $p -- set interface $p type=afxdp options:n_rxq=1 \
                options:xdp-mode=best-effort
        else
            $vsctl add-port br0 $p
        fi
    done
    sleep 2
    local err
    err=$($vsctl --bare --columns=error find Interface name=e2e-s0 name=e2e-d0 2>/dev/null || true)
    [ -z "${err// /}" ] || echo "    ovs interface errors: $err"
    measure "ovs" "$(cat "$d/vswitchd.pid")"
    ovs-appctl -t "$d/ovs-vswitchd.$(cat "$d/vswitchd.pid").ctl" dpif-netdev/pmd-stats-show |
        sed 's/^/    /' || true
    stop_switch
}

topology
echo "e2e: ${DURATION}s per switch, ${FRAME_LEN}-byte frames, trafgen on core 0, PMD on core 1"
for s in $SWITCHES; do
    case $s in
        rvswitch) run_rvswitch ;;
        ovs) run_ovs ;;
        *) die "unknown switch '$s' (rvswitch or ovs)" ;;
    esac
done
