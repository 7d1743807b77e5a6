#!/usr/bin/env bash
# Round-trip latency through the switch: ping between two namespaces, with nothing else
# on the link, beside a paced UDP stream, and beside a TCP stream, for rvswitch (default
# settings), rvswitch with pmd_batch_wait_us = 0, and Debian's ovs-vswitchd, one after
# the other on the same topology. It prices the batch wait: a busy-polling rvswitch PMD
# that found less than a full batch spins up to pmd_batch_wait_us (default 10) before
# polling again, so a packet arriving in that spin waits for it (an empty poll starts
# the wait over at 1 us, so a sparse flow's packets wait about that).
#
#   [ns lat-a] lat-a1 10.203.0.1 --veth-- lat-a0 ==\          ping, iperf3 client: core 0
#                                                    switch (one PMD, core 1)
#   [ns lat-b] lat-b1 10.203.0.2 --veth-- lat-b0 ==/          iperf3 server: core 0
#
# Conditions (NORMAL forwarding, afxdp ports in generic mode, PMDs busy-polling, both
# switches' default):
#   idle  ping alone
#   udp   beside iperf3 UDP at LAT_UDP_RATE (default 100M) in 256-byte datagrams (~49
#         kpps: light batches, where the wait applies most)
#   tcp   beside an iperf3 TCP stream (full batches: the wait resets; a queue builds)
# Per run: pings sent and lost, RTT min / median / mean / p99 / max in microseconds (from
# ping's per-reply times, 1 us resolution), and the stream's delivered Mbit/s (iperf3's
# receiver figure).
#
# Usage: benches/e2e/latency.sh [pings] [conditions...]   (defaults: 2000, idle udp tcp)
# Environment: LAT_SWITCHES ("rvswitch rvs-nowait ovs"), LAT_INTERVAL (ping -i, default
#   0.005 s), LAT_UDP_RATE (iperf3 -b for udp, default 100M), LAT_REPEAT (runs of each
#   switch and condition, taking turns; default 1), LAT_GLOBAL_EXTRA (lines added to
#   the rvswitch variants' [global] table, e.g. "pmd_batch_wait_us = 3"), LAT_ALT_BIN_DIR
#   (for switch rvs-alt: rvswitch from another build's target/release, default settings,
#   to compare two builds taking turns).
set -euo pipefail

PINGS=${1:-2000}
shift $(( $# > 0 ? 1 : 0 )) || true
CONDITIONS=${*:-idle udp tcp}
SWITCHES=${LAT_SWITCHES:-rvswitch rvs-nowait ovs}
INTERVAL=${LAT_INTERVAL:-0.005}
UDP_RATE=${LAT_UDP_RATE:-100M}
REPEAT=${LAT_REPEAT:-1}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
NS_A=lat-a NS_B=lat-b
SWITCH_PID="" IPERF_S="" IPERF_C="" WORK=""

die() { echo "latency: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (namespaces, veths, XDP)"
[[ "$PINGS" =~ ^[0-9]+$ ]] && [ "$PINGS" -ge 100 ] || die "pings must be an integer of at least 100, got '$PINGS'"
case $REPEAT in ''|*[!0-9]*|0) die "LAT_REPEAT=$REPEAT: expected a positive integer" ;; esac
[[ "$INTERVAL" =~ ^[0-9]*\.?[0-9]+$ ]] || die "LAT_INTERVAL=$INTERVAL: expected seconds, e.g. 0.005"
for c in $CONDITIONS; do
    case $c in idle|udp|tcp) ;; *) die "unknown condition '$c' (idle, udp or tcp)" ;; esac
done
for s in $SWITCHES; do
    case $s in rvswitch|rvs-nowait|ovs) ;;
        rvs-alt) [ -x "${LAT_ALT_BIN_DIR:-}/rvswitch" ] ||
            die "rvs-alt needs LAT_ALT_BIN_DIR, a directory holding another build's rvswitch (got '${LAT_ALT_BIN_DIR:-}')" ;;
        *) die "unknown switch '$s' (rvswitch, rvs-nowait, rvs-alt or ovs)" ;; esac
done
for t in ip ping iperf3 taskset ethtool; do command -v $t >/dev/null || die "$t not found"; done
case " $SWITCHES " in *" ovs "*)
    command -v ovs-vswitchd >/dev/null || die "ovs-vswitchd not installed (or drop 'ovs' from LAT_SWITCHES)" ;;
esac
WORK=$(mktemp -d /tmp/rvs-lat.XXXXXX)

# shellcheck source=benches/e2e/common.sh
. "$ROOT/benches/e2e/common.sh"

cleanup() {
    set +e
    trap - EXIT INT TERM
    kill_job "$IPERF_C"
    kill_job "$IPERF_S"
    stop_switch
    ip link del lat-a0 2>/dev/null
    ip link del lat-b0 2>/dev/null
    ip netns del $NS_A 2>/dev/null
    ip netns del $NS_B 2>/dev/null
    [ -n "$WORK" ] && rm -rf "$WORK"
}
trap cleanup EXIT
trap 'echo "latency: interrupted, cleaning up" >&2; exit 130' INT TERM

setup_side() { # ns host peer address
    veth_into_ns "$1" "$2" "$3"
    ip -n "$1" addr add "$4/24" dev "$3"
    # Frames cross the switch as raw bytes (AF_XDP): the sender computes its checksums.
    ip netns exec "$1" ethtool -K "$3" tx off > /dev/null
    ip -n "$1" link set "$3" up
    ip -n "$1" link set lo up
}

start_rvswitch() { # label
    mkdir -p "$WORK/rvs"
    cat > "$WORK/switch.toml" <<EOF
[global]
pmd_cores = [1]
run_dir = "$WORK/rvs"
log_level = "warn"
$([ "$1" = rvs-nowait ] && echo "pmd_batch_wait_us = 0")
${LAT_GLOBAL_EXTRA:-}

[[bridge]]
name = "$BENCH_BRIDGE"
datapath = "netdev"
fail_mode = "standalone"

[[bridge.port]]
name = "lat-a0"
type = "afxdp"
options = { xdp_mode = "generic", n_rxq = 1 }

[[bridge.port]]
name = "lat-b0"
type = "afxdp"
options = { xdp_mode = "generic", n_rxq = 1 }
EOF
    local bin=$ROOT/target/release
    [ "$1" != rvs-alt ] || bin=$LAT_ALT_BIN_DIR
    setsid "$bin/rvswitch" --config "$WORK/switch.toml" > "$WORK/rvswitch.log" 2>&1 &
    SWITCH_PID=$!
    wait_for 10 test -S "$WORK/rvs/rvswitch.ctl" || { cat "$WORK/rvswitch.log"; die "rvswitch did not start"; }
}

# RTT statistics in microseconds from ping's "time=X ms" lines on stdin:
# "sent lost min p50 mean p99 max".
rtt_summary() { # sent
    awk -v sent="$1" '
        /time=/ { for (i = 1; i <= NF; i++) if ($i ~ /^time=/) { v = substr($i, 6) * 1000; t[++n] = v; s += v } }
        END {
            if (n == 0) { printf "%d %d nan nan nan nan nan\n", sent, sent; exit }
            for (i = 2; i <= n; i++) { x = t[i]; for (j = i - 1; j >= 1 && t[j] > x; j--) t[j + 1] = t[j]; t[j + 1] = x }
            p99 = t[int(0.99 * (n - 1)) + 1]; p50 = t[int(0.5 * (n - 1)) + 1]
            printf "%d %d %.0f %.0f %.1f %.0f %.0f\n", sent, sent - n, t[1], p50, s / n, p99, t[n]
        }'
}

# Receiver-side Mbit/s from an iperf3 client's output (its "receiver" summary line).
iperf_mbps() {
    awk '/receiver/ { for (i = 1; i <= NF; i++) if ($i == "Mbits/sec") r = $(i - 1) } END { print (r == "" ? "-" : r) }'
}

measure() { # switch condition
    local sw=$1 cond=$2 secs
    secs=$(awk -v n="$PINGS" -v i="$INTERVAL" 'BEGIN { printf "%d", (n + 50) * i + 4 }')
    # Learn both MACs (and resolve ARP) before timing anything.
    wait_for 10 ip netns exec $NS_A ping -c 1 -W 1 10.203.0.2 ||
        { [ -f "$WORK/rvswitch.log" ] && cat "$WORK/rvswitch.log"; die "$sw: no ping reply through the switch"; }
    local stream=()
    case $cond in
        udp) stream=(-u -b "$UDP_RATE" -l 256) ;;
        tcp) stream=() ;;
    esac
    if [ "$cond" != idle ]; then
        ip netns exec $NS_A taskset -c 0 iperf3 -c 10.203.0.2 "${stream[@]}" -t "$secs" -f m \
            > "$WORK/iperf.out" 2>&1 &
        IPERF_C=$!
        sleep 1
    fi
    # A warm-up: the stream's own slow start, and the first replies' cold paths.
    ip netns exec $NS_A taskset -c 0 ping -q -n -c 50 -i "$INTERVAL" -W 1 10.203.0.2 > /dev/null 2>&1 || true
    local stats mbps=-
    stats=$(ip netns exec $NS_A taskset -c 0 ping -n -c "$PINGS" -i "$INTERVAL" -W 1 10.203.0.2 2>/dev/null |
        rtt_summary "$PINGS")
    if [ -n "$IPERF_C" ]; then
        wait "$IPERF_C" 2>/dev/null || true
        IPERF_C=""
        mbps=$(iperf_mbps < "$WORK/iperf.out")
        [ "$mbps" != - ] || { echo "latency: $sw $cond: iperf3 reported no receiver rate:" >&2; cat "$WORK/iperf.out" >&2; }
    fi
    printf '%s\t%s\t%s\t%s\n' "$sw" "$cond" "$stats" "$mbps" >> "$WORK/results.tsv"
    echo "  $sw $cond: sent lost min p50 mean p99 max (us) = $stats; stream $mbps Mbit/s"
}

(cd "$ROOT" && cargo build --release --bins -q) || die "building rvswitch failed"
ip link del lat-a0 2>/dev/null || true
ip link del lat-b0 2>/dev/null || true
ip netns del $NS_A 2>/dev/null || true
ip netns del $NS_B 2>/dev/null || true
setup_side $NS_A lat-a0 lat-a1 10.203.0.1
setup_side $NS_B lat-b0 lat-b1 10.203.0.2
ip netns exec $NS_B taskset -c 0 iperf3 -s > /dev/null 2>&1 &
IPERF_S=$!
echo "latency: $(date -u '+%F %H:%M UTC'), $(uname -r), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "latency: $PINGS pings at ${INTERVAL}s per run, after 50 to warm up; conditions: $CONDITIONS; udp stream $UDP_RATE bit/s of 256-byte datagrams"
: > "$WORK/results.tsv"
for rep in $(seq 1 "$REPEAT"); do
    for s in $SWITCHES; do
        case $s in
            ovs) start_ovs_netdev generic "" lat-a0 lat-b0 ;;
            *) start_rvswitch "$s" ;;
        esac
        sleep 2
        for c in $CONDITIONS; do measure "$s" "$c"; done
        stop_switch
        sleep 1
    done
done

echo
echo "| switch | condition | pings | lost | min us | median us | mean us | p99 us | max us | stream Mbit/s |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
awk -F'\t' '{ split($3, s, " "); printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, s[1], s[2], s[3], s[4], s[5], s[6], s[7], $4 }' \
    "$WORK/results.tsv"
