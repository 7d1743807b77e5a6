#!/usr/bin/env bash
# `make run`: bring the demo topology up, run rvswitch on config/switch.toml in the
# foreground, and tear the topology down however rvswitch ends (Ctrl-C, exit command, error).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release}
CONFIG=${CONFIG:-config/switch.toml}

cleanup() {
    trap - EXIT INT TERM
    scripts/demo-topology.sh down || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

scripts/demo-topology.sh up
cat <<MSG

rvswitch is starting on $CONFIG (Ctrl-C stops it and removes the demo topology).
In another terminal, as root:
  ip netns exec rvs-a ping 10.200.0.2              # rvs-a -> rvswitch br0 -> rvs-b
  $BIN/rvswitch-appctl pmd-stats-show              # PMD counters (upcalls, EMC/megaflow hits)
  $BIN/rvswitch-appctl fdb/show br0                # learned MAC addresses
  $BIN/rvswitch-appctl dpctl/dump-flows            # installed megaflows
  $BIN/rvswitch-appctl list-commands               # everything else
  ovs-appctl -t /var/run/rvswitch/rvswitch.ctl dpif/show   # Open vSwitch's client works too

MSG
# Not exec: the EXIT trap must run after rvswitch stops.
"$BIN/rvswitch" --config "$CONFIG" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true' INT TERM
status=0
wait $pid || status=$?
# A signal interrupts wait (status > 128) while rvswitch shuts down; wait again for its own
# exit status, which is 0 after a clean shutdown.
while [ $status -gt 128 ]; do
    status=0
    wait $pid || status=$?
    kill -0 $pid 2>/dev/null || break
done
exit $status
