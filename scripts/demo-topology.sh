#!/usr/bin/env bash
# Demo topology for `make run`: two network namespaces, each joined to the root namespace by a
# veth pair whose root-side end rvswitch attaches to (config/switch.toml).
#
#   [ns rvs-a] rvs-a1 10.200.0.1/24 <--veth--> rvs-a0 ==\
#                                                         rvswitch br0
#   [ns rvs-b] rvs-b1 10.200.0.2/24 <--veth--> rvs-b0 ==/
#
# Usage: scripts/demo-topology.sh up|down   (both idempotent)
set -euo pipefail

up_side() {
    local ns=$1 host=$2 peer=$3 addr=$4 mac=$5
    ip netns add "$ns" 2>/dev/null || true
    if ! ip link show "$host" >/dev/null 2>&1; then
        ip link add "$host" type veth peer name "$peer" netns "$ns"
    fi
    ip link set "$host" up
    ip netns exec "$ns" ip link set lo up
    ip netns exec "$ns" ip link set "$peer" address "$mac"
    ip netns exec "$ns" ip addr replace "$addr" dev "$peer"
    ip netns exec "$ns" ip link set "$peer" up
    # Frames cross rvswitch as raw bytes: let the sender fill in its own checksums
    # (a veth otherwise leaves them to an offload that never happens on this path).
    ip netns exec "$ns" ethtool -K "$peer" tx off >/dev/null 2>&1 || true
    # No IPv6 chatter (router solicitations, DAD) in the demo's counters.
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 || true
    sysctl -qw "net.ipv6.conf.$host.disable_ipv6=1" || true
}

down_side() {
    local ns=$1 host=$2
    ip link del "$host" 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
}

case "${1:-}" in
    up)
        up_side rvs-a rvs-a0 rvs-a1 10.200.0.1/24 02:00:0a:c8:00:01
        up_side rvs-b rvs-b0 rvs-b1 10.200.0.2/24 02:00:0a:c8:00:02
        echo "demo topology up: rvs-a (10.200.0.1) -- rvs-a0 | rvs-b0 -- rvs-b (10.200.0.2)"
        ;;
    down)
        down_side rvs-a rvs-a0
        down_side rvs-b rvs-b0
        echo "demo topology down"
        ;;
    *)
        echo "usage: $0 up|down" >&2
        exit 2
        ;;
esac
