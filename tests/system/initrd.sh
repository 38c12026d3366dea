#!/bin/sh
# The system tests' guest images: the default guest image (tools/images.sh) with a second
# cpio appended. The kernel unpacks both archives; a file of the second replaces the
# first's, so a /lib/modules/load here must list every module (initrd_module starts from the
# default image's list).
#
# Run, it builds OUT from its arguments, in order:
#   OUT=FILE sh tests/system/initrd.sh ARG...
#     SRC=DEST           the file SRC as DEST (its mode kept)
#     mod:NAME:DIR       the stock kernel's module NAME (its modules.dep path under DIR, an
#                        awk regex such as net/vmw_vsock/) in /lib/modules, loaded at boot
#     ko:NAME:DIR=DEST   the same module as DEST, not loaded at boot
# Sourced (nvme_initrd.sh), it gives the functions below; INITRD_NAME names the caller in
# its errors.
set -eu
CACHE=${NITRO_CACHE:-$HOME/.cache/nitro}
INITRD_NAME=${INITRD_NAME:-initrd}

# A fresh tree in $w (removed at exit); its root 755, as the archive's "." sets the
# guest's /.
initrd_begin() {
	KVER=$(cat "$CACHE/apt/kver")
	MODDIR=$CACHE/apt/root/usr/lib/modules/$KVER
	w=$(mktemp -d)
	trap 'rm -rf "$w"' EXIT
	chmod 755 "$w"
}

# initrd_ko NAME DIR DEST: the stock kernel's module NAME (its modules.dep path under DIR),
# decompressed, as DEST; its file name in $ko.
initrd_ko() {
	p=$(awk -F: -v m="/$1.ko" -v d="$2" 'index($1, m) && $1 ~ d {print $1; exit}' "$MODDIR/modules.dep")
	[ -n "$p" ] || { echo "$INITRD_NAME: module $1 missing" >&2; exit 1; }
	ko=$(basename "$p"); ko=${ko%.xz}; ko=${ko%.zst}
	mkdir -p "$w$(dirname "$3")"
	case "$p" in
	*.xz) xz -dc "$MODDIR/$p" > "$w$3" ;;
	*.zst) zstd -qdc "$MODDIR/$p" > "$w$3" ;;
	*) cp "$MODDIR/$p" "$w$3" ;;
	esac
}

# initrd_module NAME DIR: the module in /lib/modules, added to /lib/modules/load.
initrd_module() {
	if [ ! -f "$w/lib/modules/load" ]; then
		mkdir -p "$w/lib/modules"
		zcat "$CACHE/images/guest.img" | (cd "$w" && cpio -i --quiet --to-stdout lib/modules/load) > "$w/lib/modules/load"
	fi
	initrd_ko "$1" "$2" "/lib/modules/$1.ko.tmp"
	mv "$w/lib/modules/$1.ko.tmp" "$w/lib/modules/$ko"
	grep -qx "$ko" "$w/lib/modules/load" || echo "$ko" >> "$w/lib/modules/load"
}

# initrd_file SRC DEST
initrd_file() {
	mkdir -p "$w$(dirname "$2")"
	cp "$1" "$w$2"
}

# initrd_args ARG...: each ARG as the usage above says.
initrd_args() {
	for a in "$@"; do
		case "$a" in
		mod:*) a=${a#mod:}; initrd_module "${a%%:*}" "${a#*:}" ;;
		ko:*) a=${a#ko:}; d=${a#*=}; a=${a%%=*}; initrd_ko "${a%%:*}" "${a#*:}" "$d" ;;
		*) initrd_file "${a%%=*}" "${a#*=}" ;;
		esac
	done
}

# initrd_finish OUT: the default image and the tree's cpio as OUT.
initrd_finish() {
	(cd "$w" && find . | cpio -o -H newc --quiet | gzip -1) > "$1.tmp"
	cat "$CACHE/images/guest.img" "$1.tmp" > "$1"
	rm -f "$1.tmp"
}

if [ "${0##*/}" = initrd.sh ]; then
	: "${OUT:?OUT names the image to build}"
	initrd_begin
	initrd_args "$@"
	initrd_finish "$OUT"
fi
