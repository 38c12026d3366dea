#!/bin/sh
# Test EIFs for the enclave tests (issue 12), built with `nitro eif build` from the stock
# Debian kernel that tools/images.sh fetched and two ramdisks:
#   boot.cpio.gz   the enclave's /init (src/enclave/init) and the modules it loads, in
#                  dependency order (/lib/modules/load): vsock,
#                  vmw_vsock_virtio_transport_common, vmw_vsock_virtio_transport, nsm
#   app.cpio.gz    busybox, the attestation payload (tests/system/enclave_attest.c) and
#                  /cmd = enclave-attest 5005
#   hello.cpio.gz  busybox and /cmd + /env of a payload that prints a line and exits
#   idle.cpio.gz   busybox and /cmd = sleep 3600 (an enclave that stays up)
#   nsmbench.cpio.gz  busybox, the NSM benchmark payload (tests/system/enclave_nsmbench.c)
#                  and /cmd = enclave-nsmbench 5006 200 (bench/enclave.py)
# Outputs in OUT (default build/enclave): test.eif (boot + app), hello.eif (boot + hello),
# idle.eif (boot + idle), nsmbench.eif (boot + nsmbench) and notbz.eif (its kernel not a bzImage) with their measurements
# (*.json), and hello-initrd.img =
# boot + hello as one initrd, to boot the same ramdisks as an ordinary guest with
# `nitro run --initrd`.
# Deterministic: sorted cpio members, all times 0, owner root, gzip -n; the same inputs give
# the same EIF bytes. Usage: enclave_eif.sh BUILD_DIR (holding nitro and guest/*).
set -eu
BUILD=${1:-build}
OUT=${OUT:-$BUILD/enclave}
CACHE=${NITRO_CACHE:-$HOME/.cache/nitro}
APTDIR=$CACHE/apt
CMDLINE="console=ttyS0 reboot=k panic=-1 random.trust_cpu=on"
die() { printf 'enclave_eif: %s\n' "$*" >&2; exit 1; }

KERNEL=$CACHE/images/vmlinuz
[ -f "$KERNEL" ] && [ -f "$APTDIR/kver" ] || die "no kernel in $CACHE: run make images"
KVER=$(cat "$APTDIR/kver")
MODDIR=$APTDIR/root/usr/lib/modules/$KVER
[ -f "$MODDIR/modules.dep" ] || die "no modules.dep in $MODDIR: run make images"
for f in "$BUILD/nitro" "$BUILD/guest/enclave-init" "$BUILD/guest/enclave-attest" \
	"$BUILD/guest/enclave-nsmbench"; do
	[ -x "$f" ] || die "$f is missing: run make $f"
done
command -v busybox >/dev/null || die "busybox is missing (apt-get install busybox-static)"

mkdir -p "$OUT"
W=$(mktemp -d "$OUT/.work.XXXXXX")
trap 'rm -rf "$W"' EXIT

# pack DIR OUT.cpio.gz: a reproducible newc archive of DIR
pack() {
	find "$1" -exec touch -h -d @0 {} +
	(cd "$1" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0 --reproducible) |
		gzip -n -9 > "$2"
}

# The modules, dependencies first (modules.dep as tools/images.sh reads it).
order=""
add_mod() {
	local path dep d
	path=$(awk -F: -v m="$1" '{ n = $1; sub(/.*\//, "", n); sub(/\.ko.*/, "", n); gsub(/-/, "_", n);
		t = m; gsub(/-/, "_", t); if (n == t) { print $1; exit } }' "$MODDIR/modules.dep")
	[ -n "$path" ] || return 0 # built in
	case " $order " in *" $path "*) return 0 ;; esac
	for dep in $(awk -F: -v p="$path" '$1 == p {print $2}' "$MODDIR/modules.dep"); do
		d=$(basename "$dep"); d=${d%.ko*}; add_mod "$d"
	done
	order="$order $path"
}
for m in vsock vmw_vsock_virtio_transport_common vmw_vsock_virtio_transport nsm; do add_mod "$m"; done

B=$W/boot
mkdir -p "$B/lib/modules" "$B/dev" "$B/proc" "$B/sys" "$B/run" "$B/tmp"
cp "$BUILD/guest/enclave-init" "$B/init"
: > "$B/lib/modules/load"
for p in $order; do
	b=$(basename "$p"); b=${b%.xz}; b=${b%.zst}
	case "$p" in
	*.xz) xz -dc "$MODDIR/$p" > "$B/lib/modules/$b" ;;
	*.zst) zstd -qdc "$MODDIR/$p" > "$B/lib/modules/$b" ;;
	*) cp "$MODDIR/$p" "$B/lib/modules/$b" ;;
	esac
	echo "$b" >> "$B/lib/modules/load"
done
pack "$B" "$W/boot.cpio.gz"

# app_dir NAME: busybox in a fresh ramdisk tree
app_dir() {
	mkdir -p "$W/$1/bin"
	cp "$(command -v busybox)" "$W/$1/bin/busybox"
	for a in sh echo cat ls uname sleep; do ln -s busybox "$W/$1/bin/$a"; done
}
app_dir app
cp "$BUILD/guest/enclave-attest" "$W/app/bin/enclave-attest"
printf '/bin/enclave-attest\n5005\n' > "$W/app/cmd"
printf 'PATH=/bin\n' > "$W/app/env"
pack "$W/app" "$W/app.cpio.gz"

app_dir hello
printf '%s\n' /bin/sh -c \
	'echo "enclave payload: hello from $(uname -r), NITRO_TEST=$NITRO_TEST, nsm: $(ls /dev/nsm 2>&1)"' \
	> "$W/hello/cmd"
printf 'PATH=/bin\nNITRO_TEST=42\n' > "$W/hello/env"
pack "$W/hello" "$W/hello.cpio.gz"

app_dir idle
printf '/bin/sleep\n3600\n' > "$W/idle/cmd"
pack "$W/idle" "$W/idle.cpio.gz"

app_dir nsmbench
cp "$BUILD/guest/enclave-nsmbench" "$W/nsmbench/bin/enclave-nsmbench"
printf '/bin/enclave-nsmbench\n5006\n200\n' > "$W/nsmbench/cmd"
printf 'PATH=/bin\n' > "$W/nsmbench/env"
pack "$W/nsmbench" "$W/nsmbench.cpio.gz"

for n in boot app hello idle nsmbench; do mv "$W/$n.cpio.gz" "$OUT/$n.cpio.gz"; done
# eif NAME APP: boot + APP's ramdisk as NAME.eif, its measurements in NAME.json
eif() {
	"$BUILD/nitro" eif build --kernel "$KERNEL" --ramdisk "$OUT/boot.cpio.gz" \
		--ramdisk "$OUT/$2.cpio.gz" --cmdline "$CMDLINE" --output "$W/$1.eif" > "$W/$1.json"
}
eif test app
eif hello hello
eif idle idle
eif nsmbench nsmbench
# notbz.eif: a well-formed image (CRC and all) whose kernel is not a bzImage: the tool's
# own checks pass, the enclave's nitro-hv refuses it at START
printf 'not a kernel\n' > "$W/notbz"
"$BUILD/nitro" eif build --kernel "$W/notbz" --ramdisk "$OUT/hello.cpio.gz" \
	--cmdline "$CMDLINE" --output "$W/notbz.eif" > "$W/notbz.json"
cat "$OUT/boot.cpio.gz" "$OUT/hello.cpio.gz" > "$W/hello-initrd.img"
for f in test hello idle nsmbench notbz; do mv "$W/$f.eif" "$W/$f.json" "$OUT/"; done
mv "$W/hello-initrd.img" "$OUT/"
printf 'enclave_eif: %s/test.eif, hello.eif, idle.eif, nsmbench.eif (kernel %s)\n' "$OUT" "$KVER" >&2
