"""nitro-hv in enclave mode (issue 12 items 2-3): guest RAM = ranges of a memfd (here the
test's own, standing in for the parent's), the EIF at enclave offset 8 MiB booted like any
bzImage guest; a malformed EIF or bad ranges are refused with their exit status.

The enclave runs Debian's stock kernel with a one-file ramdisk whose /init prints a marker
on ttyS0 and powers off (tests/system/enclave_marker_init.c, build/enclave-marker.cpio.gz)."""
import os
import pathlib
import select
import struct
import subprocess
import time

from conftest import NITRO
from nitrotest import BUILD, run

MiB = 1 << 20
HV = BUILD / "nitro-hv"
RAMDISK = BUILD / "enclave-marker.cpio.gz"
CACHE = pathlib.Path(os.environ.get("NITRO_CACHE", pathlib.Path.home() / ".cache/nitro"))
KERNEL = CACHE / "images" / "vmlinuz"
KCACHE = CACHE / "kernels"  # host-decompressed kernels, shared with `nitro run`
MARKER = b"NITRO-ENCLAVE-MARKER"
EXIT_EIF, EXIT_MEM = 5, 6
# The enclave's RAM: three ranges of a 224 MiB memfd, not in memfd order; 32..96 MiB and
# 192..224 MiB are not the enclave's and must stay as the test wrote them.
RANGES = [(96 * MiB, 96 * MiB), (0, 32 * MiB), (160 * MiB, 32 * MiB)]
MEMFD_SIZE = 224 * MiB
FILL = b"\xa5" * 4096


def eif(tmp_path, cmdline="console=ttyS0 reboot=k panic=-1 quiet"):
    assert RAMDISK.exists(), "make build/enclave-marker.cpio.gz"
    out = tmp_path / "marker.eif"
    status, o, e = run([NITRO, "eif", "build", "--kernel", KERNEL, "--ramdisk", RAMDISK,
                        "--cmdline", cmdline, "--output", out], 120)
    assert status == 0, e
    return out.read_bytes()


def memfd_with(image):
    """A memfd whose non-enclave parts are FILL and whose enclave offset 8 MiB (in the first
    range) holds image."""
    fd = os.memfd_create("parent-ram", 0)
    os.ftruncate(fd, MEMFD_SIZE)
    for off in range(32 * MiB, 96 * MiB, 4096):
        os.pwrite(fd, FILL, off)
    for off in range(192 * MiB, 224 * MiB, 4096):
        os.pwrite(fd, FILL, off)
    os.pwrite(fd, image, RANGES[0][0] + 8 * MiB)
    return fd


def mem_arg(fd, ranges=RANGES):
    return f"{fd}:" + ",".join(f"{o}:{s}" for o, s in ranges)


def enclave(fd, *extra, debug=True, timeout=240):
    """Runs nitro-hv --enclave; returns (status, stdout, stderr, seconds to the marker)."""
    KCACHE.mkdir(parents=True, exist_ok=True)
    argv = [str(HV), "--enclave", "--enclave-mem", mem_arg(fd), "--cpus", "1",
            "--cache-dir", str(KCACHE),
            "--enclave-cid", "16", "--enclave-slot", "1",
            "--enclave-parent-id", "i-0123456789abcdef0", *extra]
    if debug:
        argv.append("--enclave-debug")
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, pass_fds=[fd],
                         env=dict(os.environ, NITRO_TRACE="1"))
    out, marker_at = b"", None
    deadline = t0 + timeout
    while True:
        r, _, _ = select.select([p.stdout], [], [], max(0.0, deadline - time.monotonic()))
        if not r:
            p.kill()
            break
        chunk = os.read(p.stdout.fileno(), 65536)
        if not chunk:
            break
        out += chunk
        if marker_at is None and MARKER in out:
            marker_at = time.monotonic() - t0
    err = p.stderr.read()
    p.wait()
    return p.returncode, out.decode(errors="replace"), err.decode(errors="replace"), marker_at


def test_enclave_boots_the_eif_from_its_memory_to_the_marker(tmp_path):
    image = eif(tmp_path)
    fd = memfd_with(image)
    try:
        status, out, err, t = enclave(fd)
        assert status == 0, f"{status}\n{out[-3000:]}\n{err}"
        assert t is not None, out[-3000:]
        print(f"\nenclave boot-to-marker: {t * 1000:.0f} ms "
              f"(EIF {len(image) // 1024} KiB, 160 MiB in 3 ranges)\n{err}")
        assert "uptime=" in out
        # The enclave's RAM was the memfd's pages: the kernel is at guest-physical 16 MiB,
        # i.e. 16 MiB into the first range; what is not the enclave's is untouched.
        assert os.pread(fd, 4096, RANGES[0][0] + 16 * MiB) != bytes(4096)
        for off in range(32 * MiB, 96 * MiB, 1 * MiB):
            assert os.pread(fd, 4096, off) == FILL, hex(off)
        for off in range(192 * MiB, 224 * MiB, 1 * MiB):
            assert os.pread(fd, 4096, off) == FILL, hex(off)
    finally:
        os.close(fd)


def test_enclave_without_debug_has_no_console(tmp_path):
    fd = memfd_with(eif(tmp_path))
    try:
        status, out, err, t = enclave(fd, debug=False)
        assert status == 0, f"{status}\n{out[-3000:]}\n{err}"
        assert out == "" and t is None, out[-2000:]
    finally:
        os.close(fd)


def refused(image, tmp_path=None, ranges=RANGES):
    fd = memfd_with(image)
    try:
        p = subprocess.run([str(HV), "--enclave", "--enclave-mem", mem_arg(fd, ranges),
                            "--enclave-cid", "16", "--enclave-debug"],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           pass_fds=[fd], timeout=120)
        return p.returncode, p.stdout, p.stderr
    finally:
        os.close(fd)


def test_corrupted_eif_is_refused_with_a_clear_error(tmp_path):
    image = bytearray(eif(tmp_path))
    image[len(image) // 2] ^= 0x40  # a byte of the kernel or ramdisk: the CRC catches it
    status, out, err = refused(bytes(image))
    assert status == EXIT_EIF, (status, err)
    assert "CRC" in err and "corrupted" in err, err
    assert MARKER.decode() not in out


def test_no_eif_and_hostile_headers_are_refused(tmp_path):
    status, _, err = refused(b"")
    assert status == EXIT_EIF and "no EIF at enclave memory offset 8 MiB" in err, err
    image = bytearray(eif(tmp_path))
    # a section size pointing far past the enclave's memory
    struct.pack_into(">Q", image, 28 + 8 * 32, 1 << 62)
    status, _, err = refused(bytes(image))
    assert status == EXIT_EIF and "ends past" in err, err
    # section 0 at an offset near 2^64 (overflow), 33 sections
    image = bytearray(eif(tmp_path))
    struct.pack_into(">Q", image, 28, (1 << 64) - 8)
    status, _, err = refused(bytes(image))
    assert status == EXIT_EIF, err
    image = bytearray(eif(tmp_path))
    struct.pack_into(">H", image, 26, 33)
    status, _, err = refused(bytes(image))
    assert status == EXIT_EIF and "33 sections" in err, err


def test_bad_ranges_are_refused():
    status, _, err = refused(b"", ranges=[(0, 32 * MiB), (MEMFD_SIZE - 16 * MiB, 32 * MiB)])
    assert status == EXIT_MEM and "past the end of the memfd" in err, err
    status, _, err = refused(b"", ranges=[(0, 16 * MiB)])
    assert status == EXIT_MEM and "under 64 MiB" in err, err
