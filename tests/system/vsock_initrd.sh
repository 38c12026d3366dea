#!/bin/sh
# Builds OUT (default build/vsock-guest.img): the default guest image (tools/images.sh) with
# a second cpio appended that adds the stock kernel's vsock modules (vsock,
# vmw_vsock_virtio_transport_common, vmw_vsock_virtio_transport: all modules in Debian's
# kernel) and the files given as SRC=DEST arguments (test_vsock.py's vsock-test). The
# kernel unpacks both archives; the second one's /lib/modules/load lists every module.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${NITRO_CACHE:-$HOME/.cache/nitro}
OUT=${OUT:-$ROOT/build/vsock-guest.img}
KVER=$(cat "$CACHE/apt/kver")
MODDIR=$CACHE/apt/root/usr/lib/modules/$KVER
w=$(mktemp -d)
trap 'rm -rf "$w"' EXIT
mkdir -p "$w/lib/modules" "$w/bin"
zcat "$CACHE/images/guest.img" | (cd "$w" && cpio -i --quiet --to-stdout lib/modules/load) > "$w/lib/modules/load"
for m in vsock vmw_vsock_virtio_transport_common vmw_vsock_virtio_transport; do
	p=$(awk -F: -v m="/$m.ko" 'index($1, m) && $1 ~ /net\/vmw_vsock\// {print $1; exit}' "$MODDIR/modules.dep")
	[ -n "$p" ] || { echo "vsock_initrd: module $m missing" >&2; exit 1; }
	b=$(basename "$p"); b=${b%.xz}; b=${b%.zst}
	case "$p" in
	*.xz) xz -dc "$MODDIR/$p" > "$w/lib/modules/$b" ;;
	*.zst) zstd -qdc "$MODDIR/$p" > "$w/lib/modules/$b" ;;
	*) cp "$MODDIR/$p" "$w/lib/modules/$b" ;;
	esac
	grep -qx "$b" "$w/lib/modules/load" || echo "$b" >> "$w/lib/modules/load"
done
for a in "$@"; do
	src=${a%%=*}; dst=${a#*=}
	mkdir -p "$w$(dirname "$dst")"
	cp "$src" "$w$dst"
done
(cd "$w" && find . | cpio -o -H newc --quiet | gzip -1) > "$OUT.tmp"
cat "$CACHE/images/guest.img" "$OUT.tmp" > "$OUT"
rm -f "$OUT.tmp"
