"""vu-blk-driver against qemu-storage-daemon's vhost-user-blk export (the reference peer).

Run with: /usr/bin/python3 -m pytest -v tests/driver
The driver binary is $VU_BLK_DRIVER when set, otherwise it is compiled from tests/driver/*.c
into a temporary folder. qemu-storage-daemon comes from the Debian package
qemu-system-common; the tests are skipped when it is missing. Every subprocess has a
timeout and runs in its own process group, which is killed at the end (or on a hang).
"""
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "pylib"))
from backend import BackEnd  # noqa: E402
from nitrotest import ROOT, SECTOR, pattern, run  # noqa: E402

QSD = shutil.which("qemu-storage-daemon") or "/usr/bin/qemu-storage-daemon"
DISK = 64 << 20
BENCH_RE = re.compile(r"^rw=(\S+) bs=(\d+) qd=(\d+) queues=(\d+) poll=\d seconds=\S+ "
                      r"ios=(\d+) iops=(\d+) p50_us=(\d+) p99_us=(\d+) errors=(\d+)$")

needs_qsd = pytest.mark.skipif(not os.access(QSD, os.X_OK),
                               reason="qemu-storage-daemon missing (apt-get install qemu-system-common)")


@pytest.fixture(scope="session")
def driver(tmp_path_factory):
    env = os.environ.get("VU_BLK_DRIVER")
    if env:
        return env
    exe = tmp_path_factory.mktemp("bin") / "vu-blk-driver"
    srcs = sorted(str(p) for p in (ROOT / "tests/driver").glob("*.c"))
    rc, out, err = run(["gcc", "-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror",
                        "-D_GNU_SOURCE", f"-I{ROOT / 'src'}", *srcs,
                        str(ROOT / "src/lib/util.c"), str(ROOT / "src/lib/vu_wire.c"),
                        "-o", str(exe), "-lpthread"], 120)
    assert rc == 0, out + err
    return str(exe)


class Daemon(BackEnd):
    def __init__(self, tmp, blockdev, node, extra="", writable=True):
        sock = str(tmp / "vhost.sock")
        export = (f"type=vhost-user-blk,id=e,node-name={node},addr.type=unix,"
                  f"addr.path={sock},writable={'on' if writable else 'off'}{extra}")
        super().__init__([QSD, "--blockdev", blockdev, "--export", export], sock,
                         tmp / "qsd.log", what="qemu-storage-daemon")

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


@pytest.fixture
def qsd(tmp_path):
    daemons = []

    def start(blockdev, node, extra="", writable=True):
        d = Daemon(tmp_path, blockdev, node, extra, writable)
        daemons.append(d)
        return d

    yield start
    for d in daemons:
        d.stop()


def check(driver, sock, *args):
    rc, out, err = run([driver, "--socket", sock, *args, "check"], 120)
    print(out, err)
    lines = {}
    for ln in out.splitlines():
        m = re.match(r"^(ok|FAIL|skip)\s+(\S+): (.*)$", ln)
        if m:
            lines[m.group(2)] = (m.group(1), m.group(3))
    assert rc == 0, f"check failed (exit {rc}):\n{out}\n{err}"
    assert re.search(r"^result: \d+ ok, 0 failed, \d+ skipped$", out, re.M), out
    return lines


def bench(driver, sock, rw, qd, *args, seconds=2):
    rc, out, err = run([driver, "--socket", sock, *args, "bench", "--rw", rw, "--bs", "4096",
                        "--qd", str(qd), "--seconds", str(seconds)], seconds + 60)
    assert rc == 0, f"bench failed (exit {rc}):\n{out}\n{err}"
    m = BENCH_RE.match(out.strip())
    assert m, f"unexpected bench output: {out!r}"
    assert m.group(1) == rw and int(m.group(3)) == qd
    assert int(m.group(5)) > 0 and int(m.group(6)) > 0 and int(m.group(9)) == 0
    assert 0 < int(m.group(7)) <= int(m.group(8)) or int(m.group(7)) == 0
    print("bench:", out.strip())
    return out.strip()


@needs_qsd
def test_file(driver, qsd, tmp_path):
    img = tmp_path / "disk.img"
    with open(img, "wb") as f:
        f.truncate(DISK)
    d = qsd(f"driver=file,node-name=f,filename={img}", "f")
    lines = check(driver, d.sock)
    for name in ("connect", "config", "write-read", "in-flight", "flush", "get-id", "discard",
                 "write-zeroes", "past-end", "unknown-type", "alive"):
        assert lines[name][0] == "ok", (name, lines[name])
    assert "capacity=131072 " in lines["config"][1]

    # The data the check wrote must be in the backing file at sector * 512.
    data = img.read_bytes()
    extents = [tuple(map(int, e.split("+"))) for e in lines["write-read"][1].split()]
    assert (131071, 1) in extents and (0, 1) in extents
    m = re.search(r"sectors (\d+)\+(\d+)$", lines["in-flight"][1])
    extents.append((int(m.group(1)), int(m.group(2))))
    for sector, count in extents:
        got = data[sector * SECTOR:(sector + count) * SECTOR]
        assert got == pattern(sector, count), f"sectors {sector}+{count} not in the file"
    m = re.search(r"sectors (\d+)\+(\d+) read back as zeroes", lines["write-zeroes"][1])
    s, n = int(m.group(1)), int(m.group(2))
    assert data[s * SECTOR:(s + n) * SECTOR] == bytes(n * SECTOR)

    for qd in (1, 32):
        bench(driver, d.sock, "randread", qd)
    bench(driver, d.sock, "randwrite", 32)
    assert d.proc.poll() is None, "qemu-storage-daemon died:\n" + d.output()


@needs_qsd
def test_null_co(driver, qsd):
    # qemu-storage-daemon 7.2 wants the size as a plain integer (size=64M is refused).
    d = qsd(f"driver=null-co,node-name=n,size={DISK}", "n")
    lines = check(driver, d.sock, "--no-verify")
    assert lines["past-end"][0] == "ok" and lines["unknown-type"][0] == "ok"
    for qd in (1, 32):
        bench(driver, d.sock, "randread", qd)
    bench(driver, d.sock, "randwrite", 1)


@needs_qsd
def test_multiqueue(driver, qsd, tmp_path):
    img = tmp_path / "disk.img"
    with open(img, "wb") as f:
        f.truncate(DISK)
    d = qsd(f"driver=file,node-name=f,filename={img}", "f", ",num-queues=4")
    lines = check(driver, d.sock, "--queues", "4")
    assert "on 4 queue(s)" in lines["in-flight"][1]
    bench(driver, d.sock, "randread", 8, "--queues", "4")
    # More queues than the device has is a clear error, not a hang.
    rc, out, err = run([driver, "--socket", d.sock, "--queues", "5", "check"], 30)
    assert rc == 1 and "5 queues asked, device has 4" in out


@needs_qsd
def test_read_only(driver, qsd, tmp_path):
    img = tmp_path / "disk.img"
    with open(img, "wb") as f:
        f.write(pattern(0, 1))
        f.truncate(DISK)
    d = qsd(f"driver=file,node-name=f,filename={img},read-only=on", "f", writable=False)
    lines = check(driver, d.sock)
    assert "ro=1" in lines["config"][1] and lines["read-only"][0] == "ok"
    assert img.read_bytes()[:SECTOR] == pattern(0, 1)
    bench(driver, d.sock, "randread", 4)


@needs_qsd
def test_hostile(driver, qsd, tmp_path):
    """Malformed chains: qemu-storage-daemon may drop the connection but must keep serving."""
    img = tmp_path / "disk.img"
    with open(img, "wb") as f:
        f.truncate(DISK)
    d = qsd(f"driver=file,node-name=f,filename={img}", "f")
    rc, out, err = run([driver, "--socket", d.sock, "hostile"], 120)
    print(out, err)
    assert rc == 0, out + err
    assert re.search(r"^result: 13 cases, 0 failed$", out, re.M), out
    assert img.read_bytes() == bytes(DISK), "a hostile request changed the disk"
    check(driver, d.sock)
    assert d.proc.poll() is None, "qemu-storage-daemon died:\n" + d.output()


def test_no_socket(driver, tmp_path):
    rc, out, err = run([driver, "--socket", str(tmp_path / "none"), "check"], 30)
    assert rc == 1 and "No such file or directory" in out


def test_silent_backend(driver, tmp_path):
    """A back end that accepts and never answers: the driver gives up with a named request."""
    path = str(tmp_path / "silent.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    conns = []
    t = threading.Thread(target=lambda: conns.append(srv.accept()), daemon=True)
    t.start()
    try:
        rc, out, err = run([driver, "--socket", path, "check"], 30)
        assert rc == 1 and "GET_FEATURES: reply: timed out" in out, out + err
    finally:
        for c, _ in conns:
            c.close()
        srv.close()


def test_backend_hangs_up(driver, tmp_path):
    """A back end that closes right after accepting."""
    path = str(tmp_path / "close.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)

    def serve():
        c, _ = srv.accept()
        c.recv(64)
        c.close()
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        rc, out, err = run([driver, "--socket", path, "bench", "--seconds", "1"], 30)
        assert rc == 1, out + err
        assert any(m in err for m in ("closed the connection", "Broken pipe",
                                      "Connection reset")), out + err
    finally:
        srv.close()


def test_usage(driver):
    rc, out, err = run([driver, "check"], 10)
    assert rc == 2 and "--socket" in err
    rc, out, err = run([driver, "--socket", "x", "bench", "--rw", "seqread"], 10)
    assert rc == 2 and "--rw" in err
