#!/bin/bash
# Builds the initramfs the kernel-datapath tests boot under qemu.
#
# Inputs are cached under $KT (target/kernel-test): Debian's kernel package (it carries
# openvswitch.ko, which this host's kernel lacks), unpacked and depmod'ed once. The image
# holds busybox, iproute2's `ip`, iperf3, Debian's ovs-dpctl, the modules we need with their
# dependencies, our test binaries, and every shared library those dynamically link against.
#
# Usage: build-initramfs.sh <out.cpio.gz> <guest-init-script> <binary>...
set -euo pipefail

OUT=$1; INIT=$2; shift 2
KT=${KT:-target/kernel-test}
KPKG=linux-image-amd64
mkdir -p "$KT/debs"

need_pkg() { # installs host tools the build needs (once)
	local missing=()
	for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
	if [ ${#missing[@]} -gt 0 ]; then
		echo "kernel-test: installing ${missing[*]}"
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
	fi
}
need_pkg qemu-system-x86 busybox-static openvswitch-switch iproute2 iperf3 kmod

# The kernel: the meta package names the real image package; fetch it once.
if ! ls "$KT"/kroot/boot/vmlinuz-* >/dev/null 2>&1; then
	fetch() { (cd "$KT/debs" && apt-get download "$1" 2>/dev/null) || { apt-get update -qq && (cd "$KT/debs" && apt-get download "$1"); }; }
	fetch "$KPKG"
	real=$(dpkg-deb -f "$KT"/debs/${KPKG}_*.deb Depends | sed -n 's/^\(linux-image-[^ ,]*\).*/\1/p')
	[ -n "$real" ] || { echo "kernel-test: cannot tell which kernel $KPKG depends on"; exit 1; }
	fetch "$real"
	rm -rf "$KT/kroot.tmp" && mkdir -p "$KT/kroot.tmp"
	dpkg-deb -x "$KT"/debs/${real}_*.deb "$KT/kroot.tmp"
	mv "$KT/kroot.tmp" "$KT/kroot"
fi
KVER=$(basename "$(ls -d "$KT"/kroot/lib/modules/*/ | head -1)")
MODDIR=$KT/kroot/lib/modules/$KVER
[ -f "$MODDIR/modules.dep" ] || depmod -b "$KT/kroot" "$KVER"

ROOT=$KT/initramfs
rm -rf "$ROOT"
mkdir -p "$ROOT"/{bin,sbin,usr/bin,usr/sbin,lib,lib64,proc,sys,dev,run,tmp,etc,var/run,root}
cp /bin/busybox "$ROOT/bin/busybox"
for a in $(/bin/busybox --list); do
	[ "$a" = busybox ] || ln -sf /bin/busybox "$ROOT/bin/$a"
done
ln -sf /bin/modprobe "$ROOT/sbin/modprobe"

# Modules: the closure of what the tests load, from modules.dep (compressed or not).
want="openvswitch vport-vxlan vport-geneve vport-gre vxlan geneve ip_gre veth crc32c_generic crc32c-intel"
mods=()
for m in $want; do
	line=$(grep -E "(^|/)${m//-/[-_]}\.ko(\.xz|\.zst|\.gz)?:" "$MODDIR/modules.dep" || true)
	[ -n "$line" ] || continue
	mods+=($(echo "$line" | tr -d ':'))
done
for f in $(printf '%s\n' "${mods[@]}" | sort -u); do
	mkdir -p "$ROOT/lib/modules/$KVER/$(dirname "$f")"
	cp "$MODDIR/$f" "$ROOT/lib/modules/$KVER/$f"
done
cp "$MODDIR"/modules.order "$MODDIR"/modules.builtin* "$ROOT/lib/modules/$KVER/" 2>/dev/null || true
depmod -b "$ROOT" "$KVER"

# Dynamically linked tools and our binaries, with their libraries.
copy_with_libs() {
	local src=$1 dst=$2
	mkdir -p "$ROOT/$(dirname "$dst")"
	cp "$src" "$ROOT/$dst"
	ldd "$src" 2>/dev/null | grep -oE '/[^ ]+' | while read -r lib; do
		[ -f "$ROOT$lib" ] && continue
		mkdir -p "$ROOT$(dirname "$lib")"
		cp -L "$lib" "$ROOT$lib"
	done
}
copy_with_libs "$(command -v ip)" /usr/sbin/ip
copy_with_libs "$(command -v iperf3)" /usr/bin/iperf3
copy_with_libs "$(command -v ovs-dpctl)" /usr/bin/ovs-dpctl
copy_with_libs "$(command -v ping)" /usr/bin/ping
for b in "$@"; do copy_with_libs "$b" "/usr/bin/$(basename "$b")"; done
rm -f "$ROOT/bin/ip" "$ROOT/bin/ping"   # iproute2's ip and iputils' ping, not busybox's

cp "$INIT" "$ROOT/init"
chmod +x "$ROOT/init"
echo "$KVER" > "$ROOT/etc/kernel-version"

(cd "$ROOT" && find . | busybox cpio -o -H newc 2>/dev/null) | gzip -1 > "$OUT"
echo "kernel-test: initramfs $OUT ($(du -h "$OUT" | cut -f1)), kernel $KVER"
