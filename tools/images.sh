#!/bin/sh
# nitro images: fetch Debian trixie's stock linux-image-amd64 with apt into a private
# state dir (the system's apt sources are never changed) and build two initramfs images
# from busybox-static:
#   guest.img    the default guest: loads the virtio and NVMe modules, and the Nitro Enclaves
#                ones (nitro_enclaves, vsock, vmw_vsock_virtio_transport, nsm) when the kernel has
#                them, prints a banner, shell on ttyS0
#   emuhost.img  the emulated host: 9p root + kvm_amd, then runs a command (tools/emuhost-init)
# Output under $NITRO_CACHE (default ~/.cache/nitro)/images; prints progress on stderr.
set -eu
CACHE=${NITRO_CACHE:-$HOME/.cache/nitro}
OUT=$CACHE/images
APTDIR=$CACHE/apt
HERE=$(cd "$(dirname "$0")" && pwd)
SUITE=trixie
say() { printf 'nitro images: %s\n' "$*" >&2; }
die() { printf 'nitro images: %s\n' "$*" >&2; exit 1; }

# guest.img also carries /bin/nitro-enclave when it is built ($NITRO_ENCLAVE_TOOL, default
# ../build/guest/nitro-enclave; mk/enclaveguest.mk builds it); it is part of the stamp.
ENCLAVE_TOOL=${NITRO_ENCLAVE_TOOL:-$HERE/../build/guest/nitro-enclave}
[ -f "$ENCLAVE_TOOL" ] || ENCLAVE_TOOL=/dev/null
stamp() { cat "$HERE/emuhost-init" "$HERE/guest-init" "$0" "$ENCLAVE_TOOL" | cksum; }
mkdir -p "$OUT" "$APTDIR"
if [ -f "$OUT/stamp" ] && [ "$(cat "$OUT/stamp")" = "$(stamp)" ] \
   && [ -z "${NITRO_IMAGES_FORCE:-}" ]; then
	exit 0
fi
for t in apt-get dpkg-deb depmod xz cpio gzip busybox; do
	command -v $t >/dev/null 2>&1 || die "$t is missing (apt-get install apt kmod xz-utils cpio gzip busybox-static)"
done
busybox --list | grep -qx insmod || die "busybox has no insmod (install busybox-static)"
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
[ -r "$KEYRING" ] || die "$KEYRING missing (apt-get install debian-archive-keyring)"

# The Debian mirror this system already uses (deb822 or one-line format), with our suite.
mirror=$( (cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/{print $2}'; \
	cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '/^deb /{for(i=2;i<=NF;i++) if ($i ~ /:\/\//) {print $i; break}}') \
	| grep -v -e security -e '^$' | grep '/debian/\?$' | head -n 1)
[ -n "$mirror" ] || die "no Debian mirror found in /etc/apt/sources.list*"

KVER_FILE=$APTDIR/kver
if [ ! -f "$APTDIR/kernel.ok" ] || [ -n "${NITRO_IMAGES_FORCE:-}" ]; then
	say "fetching $SUITE linux-image-amd64 index from $mirror"
	mkdir -p "$APTDIR/lists/partial" "$APTDIR/cache/archives/partial" "$APTDIR/deb"
	echo "deb [signed-by=$KEYRING] $mirror $SUITE main" > "$APTDIR/sources.list"
	: > "$APTDIR/status"
	set -- -o Dir::State::Lists="$APTDIR/lists" -o Dir::State::status="$APTDIR/status" \
		-o Dir::Cache="$APTDIR/cache" -o Dir::Etc::SourceList="$APTDIR/sources.list" \
		-o Dir::Etc::SourceParts=/nonexistent -o APT::Architecture=amd64 \
		-o Debug::NoLocking=1 -o APT::Sandbox::User=root -o APT::Get::List-Cleanup=0
	apt-get "$@" -q update >&2 || die "apt-get update for $SUITE failed"
	pkg=$(apt-cache "$@" depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
	[ -n "$pkg" ] || die "cannot resolve linux-image-amd64 in $SUITE"
	say "downloading $pkg"
	(cd "$APTDIR/deb" && rm -f ./*.deb && apt-get "$@" -q download "$pkg" >&2) || die "download of $pkg failed"
	rm -rf "$APTDIR/root"
	dpkg-deb -x "$APTDIR"/deb/*.deb "$APTDIR/root"
	ls "$APTDIR/root/usr/lib/modules" | head -n 1 > "$KVER_FILE"
	[ -e "$APTDIR/root/lib" ] || ln -s usr/lib "$APTDIR/root/lib" # older depmod looks in /lib
	depmod -b "$APTDIR/root" "$(cat "$KVER_FILE")" || die "depmod failed"
	touch "$APTDIR/kernel.ok"
fi
KVER=$(cat "$KVER_FILE")
MODDIR=$APTDIR/root/usr/lib/modules/$KVER
cp "$APTDIR/root/boot/vmlinuz-$KVER" "$OUT/vmlinuz.new" && mv "$OUT/vmlinuz.new" "$OUT/vmlinuz"
echo "$KVER" > "$OUT/kernel-version"

# mkinitrd NAME INIT MODULE... : busybox + the modules (dependencies first) + INIT as /init
mkinitrd() {
	name=$1 init=$2; shift 2
	say "building $name.img"
	w=$(mktemp -d)
	mkdir -p "$w/bin" "$w/lib/modules" "$w/proc" "$w/sys" "$w/dev" "$w/tmp" "$w/mnt" "$w/etc" "$w/root"
	cp "$(command -v busybox)" "$w/bin/busybox"
	for app in $(busybox --list); do [ "$app" = busybox ] || ln -sf busybox "$w/bin/$app"; done
	order=""
	add_mod() { # depth-first so that dependencies load first; - and _ are the same in names
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
	for m in "$@"; do add_mod "$m"; done
	: > "$w/lib/modules/load"
	for p in $order; do
		b=$(basename "$p"); b=${b%.xz}; b=${b%.zst}
		case "$p" in
		*.xz) xz -dc "$MODDIR/$p" > "$w/lib/modules/$b" ;;
		*.zst) zstd -qdc "$MODDIR/$p" > "$w/lib/modules/$b" ;;
		*) cp "$MODDIR/$p" "$w/lib/modules/$b" ;;
		esac
		echo "$b" >> "$w/lib/modules/load"
	done
	cp "$init" "$w/init"; chmod 755 "$w/init"
	[ "$name" != guest ] || [ "$ENCLAVE_TOOL" = /dev/null ] || cp "$ENCLAVE_TOOL" "$w/bin/nitro-enclave"
	tmp=$(mktemp "$OUT/.$name.img.XXXXXX") # several checkouts may share the cache
	(cd "$w" && find . | cpio -o -H newc --quiet | gzip -1) > "$tmp"
	chmod 644 "$tmp"
	mv "$tmp" "$OUT/$name.img"
	rm -rf "$w"
}
mkinitrd guest "$HERE/guest-init" virtio_blk nvme failover net_failover virtio_net pvpanic_mmio \
	nitro_enclaves vsock vmw_vsock_virtio_transport nsm
mkinitrd emuhost "$HERE/emuhost-init" netfs 9pnet 9pnet_virtio 9p irqbypass ccp kvm kvm_amd
stamp > "$OUT/stamp"
say "ready: kernel $KVER in $OUT"
