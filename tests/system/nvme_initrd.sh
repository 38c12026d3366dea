#!/bin/sh
# Builds OUT (default build/nvme-guest.img): the default guest image (tools/images.sh) with
# a second cpio appended that adds the NVMe modules (the stock kernel's nvme is a module)
# and the Debian programs the NVMe test and benchmark run in the guest — nvme-cli's nvme
# and, with WITH_FIO=1, fio, with the shared libraries they load (ldd) — plus any extra
# files given as
# SRC=DEST arguments (the hostile guest program). The kernel unpacks both archives; the
# second one's /lib/modules/load lists every module.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${NITRO_CACHE:-$HOME/.cache/nitro}
OUT=${OUT:-$ROOT/build/nvme-guest.img}
KVER=$(cat "$CACHE/apt/kver")
MODDIR=$CACHE/apt/root/usr/lib/modules/$KVER
w=$(mktemp -d)
trap 'rm -rf "$w"' EXIT
mkdir -p "$w/lib/modules" "$w/bin" "$w/lib64" "$w/usr/lib"
zcat "$CACHE/images/guest.img" | (cd "$w" && cpio -i --quiet --to-stdout lib/modules/load) > "$w/lib/modules/load"
for m in nvme-auth nvme-core nvme; do
	p=$(awk -F: -v m="/$m.ko" 'index($1, m) && $1 ~ /drivers\/nvme\// {print $1; exit}' "$MODDIR/modules.dep")
	[ -n "$p" ] || { echo "nvme_initrd: module $m missing" >&2; exit 1; }
	b=$(basename "$p"); b=${b%.xz}; b=${b%.zst}
	case "$p" in
	*.xz) xz -dc "$MODDIR/$p" > "$w/lib/modules/$b" ;;
	*.zst) zstd -qdc "$MODDIR/$p" > "$w/lib/modules/$b" ;;
	*) cp "$MODDIR/$p" "$w/lib/modules/$b" ;;
	esac
	grep -qx "$b" "$w/lib/modules/load" || echo "$b" >> "$w/lib/modules/load"
done
copy_prog() { # the program into /bin, its libraries where ldd found them
	[ -x "$1" ] || { echo "nvme_initrd: $1 missing (apt-get install nvme-cli fio)" >&2; exit 1; }
	cp "$1" "$w/bin/"
	for l in $(ldd "$1" | awk '/=>/ {print $3} /^\t\/lib/ {print $1}'); do
		mkdir -p "$w$(dirname "$l")"
		cp -L "$l" "$w$l"
	done
}
copy_prog /usr/sbin/nvme
[ -z "${WITH_FIO:-}" ] || copy_prog /usr/bin/fio # 80 MiB of libraries: the benchmark only
for a in "$@"; do
	src=${a%%=*}; dst=${a#*=}
	mkdir -p "$w$(dirname "$dst")"
	cp "$src" "$w$dst"
done
# busybox's /bin is first in the guest's PATH; /lib64 holds the dynamic loader
(cd "$w" && find . | cpio -o -H newc --quiet | gzip -1) > "$OUT.tmp"
cat "$CACHE/images/guest.img" "$OUT.tmp" > "$OUT"
rm -f "$OUT.tmp"
