#!/bin/bash
# `make test-kernel`: boots Debian's kernel (which has openvswitch.ko) under qemu without
# KVM and runs the kernel-datapath test inside. Exits non-zero if any guest step failed or
# the guest never finished. The console log is kept at target/kernel-test/console.log.
set -euo pipefail
cd "$(dirname "$0")/../.."
KT=${KT:-target/kernel-test}
export KT
mkdir -p "$KT"
T0=$(date +%s)

cargo build --example kernel_guest --example kernel_dump_compare --bin rvswitch --bin rvswitch-appctl
BIN=$KT/bin
mkdir -p "$BIN"
strip -o "$BIN/kernel_guest" target/debug/examples/kernel_guest
strip -o "$BIN/kernel_dump_compare" target/debug/examples/kernel_dump_compare
strip -o "$BIN/rvswitch" target/debug/rvswitch
strip -o "$BIN/rvswitch-appctl" target/debug/rvswitch-appctl

scripts/kernel-test/build-initramfs.sh "$KT/initramfs.cpio.gz" scripts/kernel-test/guest-init.sh \
	"$BIN/kernel_guest" "$BIN/kernel_dump_compare" "$BIN/rvswitch" "$BIN/rvswitch-appctl"
KERNEL=$(ls "$KT"/kroot/boot/vmlinuz-* | head -1)

# TCG by default: nested KVM is broken on the CI hosts (/dev/kvm exists, guests abort).
ACCEL=(-cpu max)
if [ "${KTEST_KVM:-}" = 1 ]; then ACCEL=(-enable-kvm -cpu host); fi
T1=$(date +%s)
set +e
timeout "${KTEST_TIMEOUT:-480}" qemu-system-x86_64 -nographic -no-reboot -m 1024 -smp 2 "${ACCEL[@]}" \
	-nic none -kernel "$KERNEL" -initrd "$KT/initramfs.cpio.gz" \
	-append 'console=ttyS0 panic=-1 quiet loglevel=4' </dev/null 2>&1 | tr -d '\r' | tee "$KT/console.log"
QEMU_RC=${PIPESTATUS[0]}
set -e
T2=$(date +%s)

echo "----- kernel-test summary (console: $KT/console.log) -----"
grep -E '^KTEST (PASS|FAIL)' "$KT/console.log" || true
npass=$(grep -c '^KTEST PASS' "$KT/console.log" || true)
nfail=$(grep -c '^KTEST FAIL' "$KT/console.log" || true)
echo "kernel-test: $npass passed, $nfail failed; prepare $((T1 - T0))s, guest $((T2 - T1))s (qemu rc $QEMU_RC)"
if ! grep -q '^KTEST DONE' "$KT/console.log"; then
	echo "kernel-test: FAIL: the guest did not finish (timeout or crash)"
	exit 1
fi
[ "$nfail" -eq 0 ] && [ "$npass" -gt 0 ]
