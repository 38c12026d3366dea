#!/bin/sh
# Builds OUT (default build/nvme-guest.img) with tests/system/initrd.sh: the default guest
# image plus the NVMe modules (the stock kernel's nvme is a module) and the Debian programs
# the NVMe test and benchmark run in the guest — nvme-cli's nvme and, with WITH_FIO=1, fio,
# with the shared libraries they load (ldd) — plus the ARGs initrd.sh takes (SRC=DEST: the
# hostile guest program, pyguest.py's interpreter).
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
INITRD_NAME=nvme_initrd
. "$ROOT/tests/system/initrd.sh"
OUT=${OUT:-$ROOT/build/nvme-guest.img}
initrd_begin
for m in nvme-auth nvme-core nvme; do initrd_module "$m" drivers/nvme/; done
copy_prog() { # the program into /bin, its libraries where ldd found them
	[ -x "$1" ] || { echo "nvme_initrd: $1 missing (apt-get install nvme-cli fio)" >&2; exit 1; }
	initrd_file "$1" "/bin/${1##*/}"
	for l in $(ldd "$1" | awk '/=>/ {print $3} /^\t\/lib/ {print $1}'); do
		initrd_file "$l" "$l"
	done
}
# busybox's /bin is first in the guest's PATH; /lib64 holds the dynamic loader
copy_prog /usr/sbin/nvme
[ -z "${WITH_FIO:-}" ] || copy_prog /usr/bin/fio # 80 MiB of libraries: the benchmark only
initrd_args "$@"
initrd_finish "$OUT"
