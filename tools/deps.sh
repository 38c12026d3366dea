#!/bin/sh
# Installs the Debian packages nitro needs to build, test and run, if any are missing.
set -eu
PKGS="gcc make libc6-dev libcmocka-dev libzstd-dev acpica-tools qemu-system-x86 \
busybox-static debian-archive-keyring apt kmod xz-utils zstd cpio gzip python3 python3-pytest \
clang libclang-rt-14-dev libssl-dev"
# Each component may add its own packages in tools/deps.d/NAME.list (whitespace-separated);
# NAME.test.list only with NITRO_DEPS_TESTS=1 (`make test-deps`: what only tests need),
# NAME.bench.list only with NITRO_DEPS_BENCH=1 (`make bench-deps`: the benchmark peers).
# `make run` installs neither.
for f in "$(dirname "$0")"/deps.d/*.list; do
	case "$f" in
	*.test.list) [ -n "${NITRO_DEPS_TESTS:-}" ] || continue ;;
	*.bench.list) [ -n "${NITRO_DEPS_BENCH:-}" ] || continue ;;
	esac
	[ -f "$f" ] && PKGS="$PKGS $(sed 's/#.*//' "$f" | tr '\n' ' ')"
done
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "nitro deps: installing$missing" >&2
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
$SUDO apt-get update -q >&2
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q $missing >&2
