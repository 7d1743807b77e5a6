# Shell functions shared by the end-to-end scripts (run.sh, latency.sh); sourced, not run.
# They use the caller's globals SWITCH_PID (an rvswitch process, or empty) and WORK (the
# run's scratch directory, where an ovs-vswitchd keeps its pid files under ovs/).

# The bridge both switches forward on: not `br0`, which an operator (or `make run`'s
# demo) may have, and whose internal port is a device of that name.
BENCH_BRIDGE=e2ebr0

kill_job() { # pid (of `ip netns exec`, which forks: signal its children too)
    [ -n "$1" ] || return 0
    pkill -TERM -P "$1" 2>/dev/null || true
    kill -TERM "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

wait_for() { # seconds command...
    local n=$(($1 * 10)); shift
    for _ in $(seq $n); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
    return 1
}

# Stops whichever switch runs: rvswitch by SIGINT, ovs-vswitchd by `exit --cleanup`
# (plain `exit` leaves its datapath's devices, `ovs-netdev` and the bridge's own, for
# a restart that never comes), then its ovsdb-server.
stop_switch() {
    # Best effort, with errexit off; restored only if the caller had it (cleanup, the
    # EXIT trap, runs without it: turning it back on there made the first failing
    # `ip link del` of an early exit abort the cleanup and leave the work directory).
    local errexit=""
    case $- in *e*) errexit=1 ;; esac
    set +e
    if [ -n "$SWITCH_PID" ]; then
        kill -INT "$SWITCH_PID" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$SWITCH_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SWITCH_PID" 2>/dev/null
        wait "$SWITCH_PID" 2>/dev/null
        SWITCH_PID=""
    fi
    if [ -f "$WORK/ovs/vswitchd.pid" ]; then
        local p
        p=$(cat "$WORK/ovs/vswitchd.pid")
        ovs-appctl -t "$WORK/ovs/ovs-vswitchd.$p.ctl" exit --cleanup >/dev/null 2>&1
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null
        rm -f "$WORK/ovs/vswitchd.pid"
    fi
    if [ -f "$WORK/ovs/ovsdb.pid" ]; then
        kill "$(cat "$WORK/ovs/ovsdb.pid")" 2>/dev/null
        rm -f "$WORK/ovs/ovsdb.pid"
    fi
    rm -rf "$WORK/ovs" "$WORK/rvs"
    if [ -n "$errexit" ]; then set -e; fi
    return 0
}

# A namespace with one end of a veth pair in it (up, no IPv6) and the other end, the
# switch's port, up on the host; the caller gives the inner end its MAC or address.
veth_into_ns() { # ns host-end ns-end
    ip netns add "$1"
    ip link add "$2" type veth peer name "$3" netns "$1"
    ip link set "$2" up
    sysctl -qw "net.ipv6.conf.$2.disable_ipv6=1" || true
    ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
}

# Starts ovsdb-server and ovs-vswitchd with their files under $WORK/ovs (where
# stop_switch finds them), pmd-cpu-mask=0x2 plus the other_config settings given
# ("key=value ..."), and a standalone netdev bridge $BENCH_BRIDGE with the named afxdp
# ports in the given XDP mode. Exports OVS_RUNDIR and friends, so that ovs-ofctl and
# ovs-appctl in the caller find this instance.
start_ovs_netdev() { # xdp-mode "key=value ..." port...
    local d="$WORK/ovs" mode=$1 settings=$2 kv p
    shift 2
    mkdir -p "$d"
    export OVS_RUNDIR=$d OVS_LOGDIR=$d OVS_DBDIR=$d OVS_SYSCONFDIR=$d
    ovsdb-tool create "$d/conf.db" /usr/share/openvswitch/vswitch.ovsschema
    ovsdb-server "$d/conf.db" --remote="punix:$d/db.sock" --pidfile="$d/ovsdb.pid" \
        --detach --log-file="$d/ovsdb.log" 2>/dev/null
    local vsctl="ovs-vsctl --db=unix:$d/db.sock" other=(other_config:pmd-cpu-mask=0x2)
    for kv in $settings; do other+=("other_config:$kv"); done
    $vsctl --no-wait init
    $vsctl --no-wait set Open_vSwitch . "${other[@]}"
    ovs-vswitchd "unix:$d/db.sock" --pidfile="$d/vswitchd.pid" --detach \
        --log-file="$d/vswitchd.log" -vconsole:off 2>/dev/null
    $vsctl add-br $BENCH_BRIDGE -- set bridge $BENCH_BRIDGE datapath_type=netdev \
        fail_mode=standalone
    for p in "$@"; do
        $vsctl add-port $BENCH_BRIDGE "$p" -- set interface "$p" type=afxdp options:n_rxq=1 \
            options:xdp-mode="$mode"
    done
}
