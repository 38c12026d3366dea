#!/bin/sh
# Builds a small Debian trixie cloud image for tests/system/test_cloudinit.py: a raw disk
# image holding one ext4 filesystem (no partition table, label nitro-root) with systemd,
# cloud-init (stock, Ec2 found by ds-identify: no datasource_list override), openssh-server,
# chrony and dhcpcd-base, made by mmdebstrap (--variant=minbase, no recommends, no docs)
# from the Debian mirror, and an initramfs made inside it by initramfs-tools for the stock
# kernel the guest images use ($CACHE/images/vmlinuz, $CACHE/apt/kver): only the modules a
# nitro guest needs (virtio, NVMe, ext4) are copied from that kernel's package into the
# rootfs, so no linux-image package is installed.
#
# Output, cached: $CACHE/cloudimg/KEY/{rootfs.img,initrd.img} where KEY is the cksum of
# this script (its package list and settings) and the kernel version; built only when
# KEY changes. Prints the folder on stdout, progress on stderr. Needs root (mmdebstrap's
# root mode; or unshare mode where user namespaces are allowed), mmdebstrap, e2fsprogs.
set -eu
CACHE=${NITRO_CACHE:-$HOME/.cache/nitro}
KVER=$(cat "$CACHE/apt/kver")
MODSRC=$CACHE/apt/root/usr/lib/modules/$KVER
say() { printf 'cloud_image: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
[ -d "$MODSRC" ] || die "$MODSRC missing (make images)"
command -v mmdebstrap >/dev/null || die "mmdebstrap missing (tools/deps.d/cloudimg.list)"
command -v mkfs.ext4 >/dev/null || die "mkfs.ext4 missing (e2fsprogs)"

PACKAGES="systemd-sysv udev dbus cloud-init openssh-server chrony dhcpcd-base iproute2 \
initramfs-tools kmod sudo netbase systemd-resolved e2fsprogs"
# Modules of the stock kernel a nitro guest needs (their dependencies are added from
# modules.dep): the disk (NVMe and virtio-blk), the NIC, the root filesystem, pvpanic.
MODULES="nvme virtio_blk virtio_net ext4 crc32c_generic pvpanic-mmio pvpanic-pci virtio-rng"

KEY=$( (cat "$0"; echo "$KVER") | cksum | cut -d' ' -f1)
OUT=$CACHE/cloudimg/$KEY
if [ -f "$OUT/ok" ]; then
	echo "$OUT"
	exit 0
fi
mirror=$( (cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/{print $2}'; \
	cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '/^deb /{for(i=2;i<=NF;i++) if ($i ~ /:\/\//) {print $i; break}}') \
	| grep -v -e security -e '^$' | grep '/debian/\?$' | head -n 1)
[ -z "${CLOUD_IMAGE_CHECK:-}" ] || die "not built yet: run \`make cloud-image\` (outside the emulated host)"
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian
mkdir -p "$OUT"
w=$(mktemp -d "$CACHE/cloudimg/build.XXXXXX")
trap 'rm -rf "$w"' EXIT

# The module files and their dependencies, relative to $MODSRC.
mods=""
for m in $MODULES; do
	p=$(awk -F: -v m="/$m.ko" 'index($1, m) == length($1) - length(m) - 2 {print; exit}' "$MODSRC/modules.dep")
	[ -n "$p" ] || die "module $m missing from $MODSRC/modules.dep"
	mods="$mods $(echo "$p" | tr -d ':')"
done
printf '%s\n' $mods | sort -u > "$w/modules.list"

# Units that cannot matter in a short-lived test VM and cost boot time under emulation:
# timers of a long-running system, e2scrub's boot-time scan, getty on a display nitro has
# not got, and Debian's sshd-keygen, which makes every missing host key type (RSA too)
# on first boot after cloud-init made the one it was asked for.
MASK="apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer \
fstrim.timer man-db.timer e2scrub_reap.service getty@tty1.service sshd-keygen.service"

# Configuration the hooks put into the rootfs.
mkdir -p "$w/files"
cat > "$w/files/99-nitro-test.cfg" <<'EOF'
# nitro test image: keep boot short under emulation (no datasource is named here:
# ds-identify finds Ec2 from SMBIOS)
locale: C.UTF-8
ssh_genkeytypes: [ed25519]
package_update: false
package_upgrade: false
EOF
# chrony: the link-local time server, as EC2's own images configure it
echo 'server 169.254.169.123 prefer iburst minpoll 4 maxpoll 4' > "$w/files/link-local.sources"
cat > "$w/files/fstab" <<'EOF'
LABEL=nitro-root / ext4 defaults,noatime 0 1
EOF

say "mmdebstrap trixie from $mirror: $PACKAGES"
# The downloaded packages are kept in $CACHE/cloudimg/debs (mmdebstrap's sync-in/sync-out):
# a change to this script rebuilds the image without downloading them again.
mkdir -p "$CACHE/cloudimg/debs"
mmdebstrap --variant=minbase --include="$(echo $PACKAGES | tr ' ' ',')" \
	--skip=essential/unlink \
	--setup-hook='mkdir -p "$1"/var/cache/apt/archives/' \
	--setup-hook="sync-in \"$CACHE/cloudimg/debs\" /var/cache/apt/archives/" \
	--customize-hook="sync-out /var/cache/apt/archives \"$CACHE/cloudimg/debs\"" \
	--aptopt='APT::Install-Recommends "false"' \
	--dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
	--dpkgopt='path-include=/usr/share/doc/*/copyright' \
	--dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
	--customize-hook="mkdir -p \"\$1/usr/lib/modules/$KVER\" && cd \"$MODSRC\" && \
		cp --parents \$(cat \"$w/modules.list\") modules.order modules.builtin modules.builtin.modinfo \"\$1/usr/lib/modules/$KVER/\"" \
	--customize-hook="cp \"$CACHE/apt/root/boot/config-$KVER\" \"\$1/boot/\" 2>/dev/null || true" \
	--customize-hook="chroot \"\$1\" depmod -a $KVER" \
	--customize-hook="printf '%s\n' $MODULES > \"\$1/etc/initramfs-tools/modules\"" \
	--customize-hook="sed -i 's/^MODULES=.*/MODULES=list/; s/^COMPRESS=.*/COMPRESS=gzip/' \"\$1/etc/initramfs-tools/initramfs.conf\"" \
	--customize-hook="chroot \"\$1\" mkinitramfs -o /boot/initrd.img-$KVER $KVER" \
	--customize-hook="cp \"\$1/boot/initrd.img-$KVER\" \"$w/initrd.img\"" \
	--customize-hook="cp \"$w/files/99-nitro-test.cfg\" \"\$1/etc/cloud/cloud.cfg.d/\" && cp \"$w/files/fstab\" \"\$1/etc/fstab\" && cp \"$w/files/link-local.sources\" \"\$1/etc/chrony/sources.d/\"" \
	--customize-hook="chroot \"\$1\" systemctl enable systemd-networkd.service" \
	--customize-hook="for u in $MASK; do chroot \"\$1\" systemctl mask \$u; done" \
	--customize-hook="chroot \"\$1\" /usr/lib/systemd/systemd-update-done" \
	--customize-hook="rm -f \"\$1\"/etc/ssh/ssh_host_*key* \"\$1/etc/hostname\" && : > \"\$1/etc/machine-id\"" \
	--customize-hook="rm -rf \"\$1\"/var/cache/apt/* \"\$1\"/var/lib/apt/lists/* \"\$1/boot/initrd.img-$KVER\"" \
	trixie "$w/root" "$mirror"

kib=$(du -sk "$w/root" | cut -f1)
size=$(( (kib * 13 / 10 + 262144) / 1024 ))M
say "rootfs ${kib} KiB; ext4 image of $size"
truncate -s "$size" "$w/rootfs.img"
mkfs.ext4 -q -L nitro-root -d "$w/root" -E root_owner=0:0 "$w/rootfs.img"
mv "$w/rootfs.img" "$w/initrd.img" "$OUT/"
echo "$PACKAGES" > "$OUT/packages"
touch "$OUT/ok"
for d in "$CACHE"/cloudimg/*; do # older keys
	[ "$d" = "$OUT" ] || case "$d" in */build.* | */debs) ;; *) rm -rf "$d" ;; esac
done
echo "$OUT"
