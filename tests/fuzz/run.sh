#!/bin/sh
# Builds the libFuzzer targets in tests/fuzz into build/fuzz/ and runs each for
# ${FUZZ_SECONDS:-20} seconds on its corpus, build/fuzz/corpus-NAME (seeded on the first
# run). Crash inputs are saved as build/fuzz/NAME-crash-* and logs as build/fuzz/NAME.log.
# Exits 1 when any target crashes (or fails to build), 2 when clang cannot link libFuzzer.
# Needs clang with its compiler-rt runtime (Debian: libclang-rt-14-dev for clang-14),
# libzstd-dev, and python3 for the seeds.
set -u

cd "$(dirname "$0")/../.." || exit 2
CLANG=${CLANG:-clang}
OUT=build/fuzz
SECONDS_EACH=${FUZZ_SECONDS:-20}
# Every tests/fuzz/fuzz_NAME.c is a target. A target that needs more than the shared
# sources below names them in a line of its own: `// fuzz-extra: FILES... -lLIBS`.
TARGETS=${FUZZ_TARGETS:-$(for f in tests/fuzz/fuzz_*.c; do n=${f##*/fuzz_}; printf '%s ' "${n%.c}"; done)}
CFLAGS="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
-fno-omit-frame-pointer -Isrc -D_GNU_SOURCE -std=gnu11 -Wall -Wextra"
SRC="src/boot/boot.c src/boot/memory.c src/boot/kernel.c src/hv/serial.c src/hv/pci.c src/hv/mmio.c src/lib/util.c src/lib/vu_wire.c src/lib/enclave_wire.c src/cards/lib/*.c"
LIBS="-lzstd -lcrypto -lpthread"

mkdir -p "$OUT" || exit 2

# Can this clang link a fuzzer at all?
probe=$OUT/.probe
printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
	'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }' \
	>"$probe.c"
if ! $CLANG -fsanitize=fuzzer,address,undefined "$probe.c" -o "$probe" 2>"$probe.log"; then
	cat "$probe.log" >&2
	echo "run.sh: $CLANG cannot link libFuzzer; on Debian 12 install libclang-rt-14-dev" \
		"(the compiler-rt runtime of clang-14)" >&2
	exit 2
fi
rm -f "$probe" "$probe.c" "$probe.log"

# Seeds: a valid bzImage (raw payload and, with the zstd tool, a zstd-compressed ELF
# payload), a valid ELF with bss, and a few UART programs.
seed() {
	python3 - "$OUT" <<'PY'
import os, struct, subprocess, sys
out = sys.argv[1]

def elf(entry=0x1000010):
    eh = bytearray(64)
    eh[0:16] = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    struct.pack_into("<HHIQQQIHHHHHH", eh, 16, 2, 62, 1, entry, 64, 0, 0, 64, 56, 2, 0, 0, 0)
    ph = b""
    ph += struct.pack("<IIQQQQQQ", 1, 5, 0x100, 0xffffffff81000000, 0x1000000, 0x40, 0x40, 0x1000)
    ph += struct.pack("<IIQQQQQQ", 1, 6, 0x140, 0xffffffff81200000, 0x1200000, 0x20, 0x2000, 0x1000)
    body = bytes(eh) + ph
    body += bytes(0x100 - len(body)) + bytes(range(0x60))
    return body

def bz(payload, init_size=0x1000000):
    setup = bytearray(5 * 512)
    setup[0x1f1] = 4
    struct.pack_into("<H", setup, 0x1fe, 0xaa55)
    setup[0x200] = 0xeb
    setup[0x201] = 0x66
    setup[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", setup, 0x206, 0x020f)
    setup[0x211] = 0x01
    struct.pack_into("<I", setup, 0x22c, 0x7fffffff)
    struct.pack_into("<H", setup, 0x236, 0x0003)
    struct.pack_into("<I", setup, 0x238, 2047)
    pm = bytes(0x200) + payload + bytes(16)
    struct.pack_into("<II", setup, 0x248, 0x200, len(payload))
    struct.pack_into("<Q", setup, 0x258, 0x1000000)
    struct.pack_into("<I", setup, 0x260, init_size)
    return bytes(setup) + pm

def put(name, data):
    d = os.path.join(out, "corpus-" + name.split("-")[0])
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)

def zstd(data):
    # From a file, so that the frame header records the content size.
    tmp = os.path.join(out, ".seed-plain")
    with open(tmp, "wb") as f:
        f.write(data)
    try:
        return subprocess.run(["zstd", "-q", "-c", "-19", tmp], capture_output=True,
                              check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    finally:
        os.unlink(tmp)

import hmac, hashlib
def manifest(size, entries):  # a valid snapshot manifest under the fuzz target's key
    body = struct.pack("<8sIIQQ24s24sQQ", b"NITROSNP", 1, 1 << 20, size, 7,
                       b"snap-0123456789abcdef0", b"vol-0123456789abcdef0",
                       (size + (1 << 20) - 1) >> 20, len(entries))
    body += b"".join(struct.pack("<Q", i) + d for i, d in entries)
    return body + hmac.new(b"\x42" * 32, body, hashlib.sha256).digest()
put("snapshot-manifest", manifest(3 * (1 << 20) - 512, [(0, b"\x01" * 32), (2, b"\x01" * 32)]))
put("snapshot-chunk", b"NITROCHK" + bytes(12) + b"x" * 16 + bytes(16))
put("bzimage-raw", bz(bytes(range(256)) * 4))
z = zstd(elf())
if z:
    put("bzimage-zstd-elf", bz(z))
z = zstd(b"not an ELF file, " * 12)  # < 256 bytes: a one-byte content size
if z:
    put("bzimage-zstd-small", bz(z))
put("elf-two-segments", elf())
# (typed count, typed bytes..., then op/flags/value triples)
put("serial-init", bytes([3]) + b"abc" + bytes([
    3, 1, 0x80, 0, 1, 0x01, 1, 1, 0x00, 3, 1, 0x03,   # DLAB, divisor 1, 8N1
    2, 1, 0x07, 1, 1, 0x03, 4, 1, 0x0b,               # FIFO on, IER RDI|THRI, MCR
    0x80, 0, 0, 5, 0, 0, 0, 0, 0, 2, 0, 0, 0, 1, ord("x"), 0, 1, 10]))
put("serial-loop", bytes([0]) + bytes([
    4, 1, 0x1a, 6, 0, 0, 0, 1, 0x41, 5, 0, 0, 0, 0, 0, 4, 1, 0x08, 0x40, 0, 0]))
def ring_image(n=16, size=1024):
    m = bytearray(size); a = 16 * n; u = (a + 6 + 2 * n + 3) & ~3
    def desc(i, addr, ln, fl, nx, base=0):
        struct.pack_into("<QIHH", m, base + 16 * i, addr, ln, fl, nx)
    desc(0, 0x200, 16, 1, 1); desc(1, 0x210, 16, 2, 0); desc(2, 0x300, 48, 4, 0)
    desc(0, 0x340, 8, 1, 1, 0x300); desc(1, 0x348, 8, 1, 2, 0x300); desc(2, 0x350, 8, 2, 0, 0x300)
    desc(3, 0x360, 4, 1, 3)
    struct.pack_into("<HHHHH", m, a, 0, 3, 0, 2, 3)
    return bytes(m), a, u
img, a, u = ring_image()
put("vring-direct-indirect", struct.pack("<BBHHHHHH", 4, 3, 0, 0, 0, 0, 0, 0) + img)
put("vring-placed-split", struct.pack("<BBHHHHHH", 4, 13, 0, 0, a, u, 0x300, 0) + img)
# fuzz_nsm_queue: the Linux driver's GetRandom as two chains (request, reply buffer) on a
# queue of 8 at 0/128/152, then an Attestation request and its reply buffer in one chain
def nsm_image():
    m = bytearray(1024)
    req = b"\x69GetRandom"
    att = bytes.fromhex("a16b4174746573746174696f6ea1656e6f6e63654201 02".replace(" ", ""))
    m[0x100:0x100 + len(req)] = req
    m[0x140:0x140 + len(att)] = att
    for i, (addr, ln, fl, nx) in enumerate([(0x100, len(req), 0, 0), (0x200, 0x180, 2, 0),
                                           (0x140, len(att), 1, 3), (0x200, 0x180, 2, 0)]):
        struct.pack_into("<QIHH", m, 16 * i, addr, ln, fl, nx)
    struct.pack_into("<HHHHH", m, 128, 0, 3, 0, 1, 2)
    return bytes(m)
put("nsm_queue-driver", b"\x00" + nsm_image())
def vmsg(req, payload=b"", flags=1):
    return struct.pack("<III", req, flags, len(payload)) + payload
UVA = 0x40000000
seq = (vmsg(3) + vmsg(1) + vmsg(15) + vmsg(17)
       + vmsg(2, struct.pack("<Q", (1 << 32) | (1 << 28) | (1 << 29)))
       + vmsg(16, struct.pack("<Q", (1 << 3) | (1 << 9)), 9)
       + vmsg(8, struct.pack("<II", 0, 16))
       + vmsg(9, struct.pack("<IIQQQQ", 0, 0, UVA, UVA + u, UVA + a, 0))
       + vmsg(10, struct.pack("<II", 0, 0)) + vmsg(13, struct.pack("<Q", 0x100))
       + vmsg(12, struct.pack("<Q", 0x100)) + vmsg(18, struct.pack("<II", 0, 1), 9)
       + vmsg(24, struct.pack("<III", 0, 8, 0) + bytes(8))
       + vmsg(25, struct.pack("<III", 4, 4, 0) + b"abcd", 9)
       + vmsg(11, struct.pack("<II", 0, 0)) + vmsg(5, struct.pack("<II", 0, 0), 9)
       + vmsg(99, b"", 9))
put("vhost_msg-setup", struct.pack("<H", len(img)) + img + struct.pack("<H", 0) + seq)
# the same stream sent in two pieces, the cut inside a header
put("vhost_msg-split", struct.pack("<H", len(img)) + img + struct.pack("<H", len(seq) - 45) + seq)
def pci(*recs):  # (op, offset, value, spare) records of 8 bytes
    return b"".join(struct.pack("<BHIB", *r) for r in recs)
put("pci-near-ecam", pci((0x0c, 0x04, 2, 0), (0x0c, 0x10, 0xe0100000, 0)))
# EIF images (kernel, cmdline, metadata, ramdisks; one with a signature-like section)
def eif(sections):
    import zlib
    body = b""; offs = []; sizes = []; pos = 548
    for t, data in sections:
        offs.append(pos); sizes.append(len(data))
        body += struct.pack(">HHQ", t, 0, len(data)) + data
        pos += 12 + len(data)
    hdr = b".eif" + struct.pack(">HHQQHH", 4, 0, 1 << 30, 2, 0, len(sections))
    hdr += struct.pack(">32Q", *(offs + [0] * (32 - len(offs))))
    hdr += struct.pack(">32Q", *(sizes + [0] * (32 - len(sizes)))) + struct.pack(">I", 0)
    return hdr + struct.pack(">I", zlib.crc32(hdr + body)) + body
put("eif-plain", eif([(1, b"kernel" * 8), (2, b"console=ttyS0"), (5, b"{}"), (3, b"rd0"), (3, b"rd1")]))
put("eif-signed", eif([(1, b"k"), (2, b""), (3, b"r"),
                       (4, b"\x81\xa2\x73signing_certificate\x43abc\x69signature\x40")]))
# EIFs as a hostile parent leaves them at 8 MiB (enclave_image): one a bzImage kernel gets
# past the CRC and layout, then its command line with a NUL or over the kernel's limit,
# a kernel that is no bzImage, and a section size that points past the memory
kern = bz(b"\x90" * 64)
put("enclave_image-ok", eif([(1, kern), (2, b"console=ttyS0"), (5, b"{}"), (3, b"rd0")]))
put("enclave_image-cmdline-nul", eif([(1, kern), (2, b"quiet\0init=/x"), (5, b"{}"), (3, b"r")]))
put("enclave_image-cmdline-huge", eif([(1, kern), (2, b"a" * 4096), (5, b"{}"), (3, b"r")]))
put("enclave_image-not-bz", eif([(1, b"\x7fELF" + bytes(700)), (2, b"c"), (5, b"{}"), (3, b"r")]))
far = bytearray(eif([(1, kern), (2, b"c"), (5, b"{}"), (3, b"r")]))
struct.pack_into(">Q", far, 28 + 256 + 8 * 3, (1 << 64) - 1)
put("enclave_image-far", bytes(far))
# NSM requests, after 2 bytes of reply-buffer size (0x3000)
for name, req in [("describe", b"\x6bDescribeNSM"), ("random", b"\x69GetRandom"),
                  ("pcr", b"\xa1\x6bDescribePCR\xa1\x65index\x10"),
                  ("extend", b"\xa1\x69ExtendPCR\xa2\x65index\x10\x64data\x43abc"),
                  ("lock", b"\xa1\x67LockPCR\xa1\x65index\x11"),
                  ("locks", b"\xa1\x68LockPCRs\xa1\x65range\x14"),
                  ("attest", b"\xa1\x6bAttestation\xa3\x69user_data\x41u\x65nonce\x41n"
                             b"\x6apublic_key\xf6")]:
    put("nsm-" + name, b"\x30\x00" + req)
def ne(*recs):  # (op, selector, w0, w1, w2) records of 28 bytes
    return b"".join(struct.pack("<BBQQQH", *r, 0) for r in recs)
put("ne-lifecycle", ne((4, 0x80, 0, 0, 0), (6, 0x40, 0, 64 << 20, 64 << 20), (7, 0x40, 0, 1, 0),
                       (11, 0, 0, 2, 0), (10, 0, 0, 0, 0), (1, 0, 0, 0, 1), (9, 0x80, 0, 0, 0),
                       (2, 0x80, 16, 0, 0), (3, 0, 0, 0, 0), (5, 0, 0, 0, 0), (8, 0x80, 0, 0, 0)))
put("ne-bar", ne((0x80 | 0x08 | 7, 0, 0x10, 4, 0), (0x80 | 0x08 | 3, 0, 4, 4, 0),
                 (0x80 | 3, 0, 0x100, 0, 0), (0x80 | 3, 0, 0x0c, 0, 0), (0x90, 0, 0, 0, 0),
                 (0x80 | 0x08 | 7, 0, 0x800, 0xfee00000, 0)))
put("pci-move", pci((0x0c, 0x04, 2, 0), (0x0c, 0x10, 0xd0000000, 0), (0x0c, 0x14, 2, 0),
                    (0x25, 0x110, 0, 0)))
PY
}
seed || echo "run.sh: could not write seeds (no python3?); starting from empty corpora" >&2
# A signed EIF (a real COSE signature for the eif target), when nitro and openssl are there.
eif_signed_seed() {
	d=$OUT/.eif-seed
	mkdir -p "$d" "$OUT/corpus-eif" &&
		printf 'kernel' >"$d/k" && printf 'ramdisk' >"$d/r" &&
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:secp384r1 -nodes \
			-keyout "$d/key.pem" -out "$d/cert.pem" -days 1 -subj /CN=seed >/dev/null 2>&1 &&
		build/nitro eif build --kernel "$d/k" --ramdisk "$d/r" --cmdline c \
			--signing-certificate "$d/cert.pem" --private-key "$d/key.pem" \
			--output "$OUT/corpus-eif/seed-eif-signed-real" >/dev/null
	rm -rf "$d"
}
[ -x build/nitro ] && command -v openssl >/dev/null && [ ! -e "$OUT/corpus-eif/seed-eif-signed-real" ] &&
	{ eif_signed_seed || echo "run.sh: no signed EIF seed" >&2; }

status=0
for t in $TARGETS; do
	bin=$OUT/fuzz_$t
	echo "== fuzz_$t: build"
	# shellcheck disable=SC2086 # word splitting of the flag lists is intended
	extra=$(sed -n 's|^// fuzz-extra: ||p' "tests/fuzz/fuzz_$t.c")
	# shellcheck disable=SC2086
	if ! $CLANG $CFLAGS "tests/fuzz/fuzz_$t.c" $SRC $extra -o "$bin" $LIBS; then
		echo "== fuzz_$t: BUILD FAILED"
		status=1
		continue
	fi
	corpus=$OUT/corpus-$t
	mkdir -p "$corpus"
	echo "== fuzz_$t: run ${SECONDS_EACH}s"
	"$bin" -max_total_time="$SECONDS_EACH" -rss_limit_mb=4096 -max_len=16384 -timeout=10 \
		-print_final_stats=1 -artifact_prefix="$OUT/$t-" "$corpus" >"$OUT/$t.log" 2>&1
	rc=$?
	grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb|^#[0-9]+.*DONE' \
		"$OUT/$t.log" | sed 's/^/   /'
	echo "   corpus: $(find "$corpus" -type f | wc -l) inputs"
	if [ "$rc" -ne 0 ]; then
		echo "== fuzz_$t: FAILED (exit $rc); log $OUT/$t.log, inputs:"
		ls "$OUT/$t-"* 2>/dev/null | sed 's/^/   /'
		grep -m 3 -E 'ERROR: |runtime error|invariant failed' "$OUT/$t.log" | sed 's/^/   /'
		status=1
	else
		echo "== fuzz_$t: ok"
	fi
done
exit $status
