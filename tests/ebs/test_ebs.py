"""The EBS card (build/nitro-card-ebs) and `nitro volume`, driven natively by vu-blk-driver.

Run with: make ebs-test (or VU_BLK_DRIVER=build/vu-blk-driver /usr/bin/python3 -m pytest
tests/ebs; NITRO_BUILD=build/asan tests the sanitizer build). Every test sets NITRO_STATE
to its own folder, so the host's master key is never read or created. Every subprocess has
a timeout and runs in its own process group; cards are stopped (SIGTERM, then SIGKILL) at
the end of each test.
"""
import hashlib
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "pylib"))
from backend import BackEnd  # noqa: E402
from nitrotest import BUILD, SECTOR, pattern, run  # noqa: E402

NITRO = str(BUILD / "nitro")
CARD = str(BUILD / "nitro-card-ebs")
DRIVER = os.environ.get("VU_BLK_DRIVER", str(BUILD / "vu-blk-driver"))
DATA_OFFSET = 4096
SIZE = 64 << 20
ID_RE = re.compile(r"^vol-[0-9a-f]{17}$")
BENCH_RE = re.compile(r"ios=(\d+) iops=(\d+) .* errors=(\d+)$")
STATS_RE = re.compile(r"vol-[0-9a-f]{17}: ops=(\d+) .* throttled_ms=(\d+)$", re.M)


@pytest.fixture
def env(tmp_path):
    e = dict(os.environ)
    e["NITRO_STATE"] = str(tmp_path / "state")
    return e


def create(path, env, *extra, size="64M"):
    rc, out, err = run([NITRO, "volume", "create", str(path), "--size", size, *extra], 30, env)
    assert rc == 0, err
    vid = out.strip()
    assert ID_RE.match(vid), out
    return vid


class Card(BackEnd):
    def __init__(self, tmp_path, volume, env, *args, pass_fds=()):
        sock = str(tmp_path / f"card-{time.monotonic_ns()}.sock")
        super().__init__([CARD, "--socket-path", sock, *args, str(volume)], sock,
                         tmp_path / "card.log", env, "the card", pass_fds=pass_fds)

    def driver(self, *args, timeout=120):
        return run([DRIVER, "--socket", self.sock, *args], timeout)

    def stop(self, timeout=10):
        """SIGTERM; returns (exit status, seconds taken)."""
        if self.proc.poll() is not None:
            return self.proc.returncode, 0.0
        t = time.monotonic()
        self.proc.terminate()
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"the card ignored SIGTERM for {timeout} s:\n{self.output()}")
        return rc, time.monotonic() - t


@pytest.fixture
def cards():
    started = []
    yield lambda *a, **kw: started.append(Card(*a, **kw)) or started[-1]
    for c in started:
        c.kill()
        c.log.close()


def check_ok(card, *args):
    rc, out, err = card.driver(*args, "check")
    assert rc == 0 and "0 failed" in out, out + err + card.output()
    assert "FAIL" not in out
    return out


# --- nitro volume ---------------------------------------------------------------------

@pytest.mark.parametrize("extra,encrypted", [((), "yes"), (("--unencrypted",), "no")])
def test_create_and_info(tmp_path, env, extra, encrypted):
    vol = tmp_path / "v.img"
    vid = create(vol, env, *extra, size="1G")
    assert vol.stat().st_size == DATA_OFFSET + (1 << 30)
    assert vol.stat().st_blocks * 512 < (1 << 20), "not sparse"
    rc, out, err = run([NITRO, "volume", "info", str(vol)], 30, env)
    assert rc == 0, err
    assert f"id: {vid}" in out and f"size: {1 << 30}" in out
    assert f"encrypted: {encrypted}" in out and f"data_offset: {DATA_OFFSET}" in out
    key = tmp_path / "state" / "master.key"
    if encrypted == "yes":
        assert key.stat().st_size == 32 and (key.stat().st_mode & 0o777) == 0o600
        assert (key.parent.stat().st_mode & 0o777) == 0o700


def test_create_refuses(tmp_path, env):
    vol = tmp_path / "v.img"
    create(vol, env)
    before = vol.read_bytes()[:DATA_OFFSET]
    rc, out, err = run([NITRO, "volume", "create", str(vol), "--size", "1M"], 30, env)
    assert rc == 1 and "already exists" in err and str(vol) in err
    assert vol.read_bytes()[:DATA_OFFSET] == before
    for size in ("0", "1000", "-1G", "1Q", ""):
        rc, out, err = run([NITRO, "volume", "create", str(tmp_path / "x"), "--size", size],
                           30, env)
        assert rc == 2 and "--size" in err, (size, err)
    rc, out, err = run([NITRO, "volume", "create", str(tmp_path / "x")], 30, env)
    assert rc == 2 and "--size" in err
    rc, out, err = run([NITRO, "volume"], 30, env)
    assert rc == 2


# --- the card -------------------------------------------------------------------------

def test_print_capabilities():
    rc, out, err = run([CARD, "--print-capabilities"], 10)
    assert rc == 0 and '"type": "blk"' in out


def test_usage():
    for argv in ([], ["--socket-path", "/tmp/x"], ["--iops", "x", "v"], ["--bogus"]):
        rc, out, err = run([CARD, *argv], 10)
        assert rc == 2 and err, (argv, err)


@pytest.mark.parametrize("extra", [(), ("--unencrypted",)])
def test_check_hostile_and_plaintext(tmp_path, env, cards, extra):
    vol = tmp_path / "v.img"
    vid = create(vol, env, *extra)
    card = cards(tmp_path, vol, env, "--iops", "0", "--throughput", "0")
    out = check_ok(card)
    assert f'get-id: "vol{vid[4:]}"' in out, out
    rc, hout, herr = card.driver("hostile")
    assert rc == 0 and "0 failed" in hout, hout + herr + card.output()
    assert card.proc.poll() is None, "the card died on hostile input"
    check_ok(card)  # still serving, and intact
    rc, _ = card.stop()
    assert rc == 0, card.output()
    data = vol.read_bytes()
    written = pattern(1000, 8)
    if extra:
        start = DATA_OFFSET + 1000 * SECTOR
        assert data[start:start + len(written)] == written
    else:
        assert written[:SECTOR] not in data, "plaintext guest data in an encrypted volume"
        assert pattern(0, 1) not in data and pattern(1500, 1) not in data
    # The data survives a restart of the card (and, encrypted, decrypts again).
    card = cards(tmp_path, vol, env, "--iops", "0", "--throughput", "0")
    check_ok(card)


def test_memory_taken_for_an_enclave(tmp_path, env, cards):
    """A parent's attack on memory it donated to an enclave, at the card: once a range has
    left the card's table (ADD_MEM_REG of the pieces around it, REM_MEM_REG of the region,
    as nitro-hv does at ENCLAVE_START), a request pointing there fails with IOERR without
    touching the range or the disk, and the card serves on; given back, it is served."""
    vol = tmp_path / "v.img"
    create(vol, env)
    card = cards(tmp_path, vol, env, "--iops", "0", "--throughput", "0")
    rc, out, err = card.driver("memholes")
    print(out)
    assert rc == 0 and "memholes: passed" in out, out + err + card.output()
    assert out.count("ok  ") == 10 and "FAIL" not in out, out
    assert "points into memory taken" not in card.output()  # EBS answers IOERR itself
    assert card.proc.poll() is None, "the card died"
    check_ok(card)


def test_multiqueue_and_readonly(tmp_path, env, cards):
    vol = tmp_path / "v.img"
    create(vol, env)
    card = cards(tmp_path, vol, env, "--queues", "4")
    out = check_ok(card, "--queues", "4")
    assert "num_queues=4" in out
    assert card.stop()[0] == 0
    card = cards(tmp_path, vol, env, "--readonly")
    out = check_ok(card)
    assert "ro=1" in out
    assert card.stop()[0] == 0


def test_wrong_master_key(tmp_path, env):
    vol = tmp_path / "v.img"
    create(vol, env)
    other = dict(env, NITRO_STATE=str(tmp_path / "other"))
    rc, out, err = run([CARD, "--socket-path", str(tmp_path / "s"), str(vol)], 10, other)
    assert rc == 1 and "no master key" in err and str(vol) in err, err
    create(tmp_path / "w.img", other)  # makes a different master key there
    rc, out, err = run([CARD, "--socket-path", str(tmp_path / "s"), str(vol)], 10, other)
    assert rc == 1, err
    assert f"volume {vol}: wrong master key (the data key does not unwrap)" in err, err
    assert not (tmp_path / "s").exists()


def unwrapped_key(vol, env):
    """The volume's data key as its launcher unwraps it (docs/ebs.md: AES-256-GCM under the
    master key, nonce at 48, key at 64, tag at 128, the header's magic..id as AAD)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    h = vol.read_bytes()[:DATA_OFFSET]
    mk = (pathlib.Path(env["NITRO_STATE"]) / "master.key").read_bytes()
    return AESGCM(mk).decrypt(h[48:60], h[64:128] + h[128:144], h[:48])


def key_fd(key):
    r, w = os.pipe()
    os.write(w, key)
    os.close(w)
    return r


def test_key_fd_instead_of_the_master_key(tmp_path, env, cards):
    """Issue 10 item 8: a card handed its volume's data key (--key-fd, a pipe) works
    without any master key; a wrong or short key fails the header's key check cleanly."""
    vol = tmp_path / "v.img"
    create(vol, env)
    key = unwrapped_key(vol, env)
    assert len(key) == 64
    nokey = dict(env, NITRO_STATE=str(tmp_path / "no-master-key-here"))
    fd = key_fd(key)
    try:
        card = cards(tmp_path, vol, nokey, "--iops", "0", "--throughput", "0", "--key-fd", str(fd),
                     pass_fds=(fd,))
    finally:
        os.close(fd)
    check_ok(card)
    assert card.stop()[0] == 0, card.output()
    assert pattern(1000, 1) not in vol.read_bytes(), "plaintext in an encrypted volume"
    assert not (tmp_path / "no-master-key-here").exists()
    # The same data through the master key path: it was encrypted with the right key.
    card = cards(tmp_path, vol, env, "--iops", "0", "--throughput", "0")
    check_ok(card)
    assert card.stop()[0] == 0
    for bad, msg in ((bytes(64), "wrong data key (the header's key check does not match)"),
                     (key[:32] + bytes(32), "wrong data key"),
                     (key[:10], "expected a 64-byte data key, got 10 bytes"),
                     (key + b"x", "expected a 64-byte data key, got 65 bytes")):
        fd = key_fd(bad)
        p = subprocess.run([CARD, "--socket-path", str(tmp_path / "s"), "--key-fd", str(fd), str(vol)],
                           capture_output=True, text=True, timeout=10, env=nokey, pass_fds=(fd,))
        os.close(fd)
        assert p.returncode == 1 and msg in p.stderr, (bad, p.stderr)
        assert not (tmp_path / "s").exists()
    # A volume from before key checks: a key alone cannot be verified, so it is refused.
    h = bytearray(vol.read_bytes()[:DATA_OFFSET])
    assert any(h[144:176])
    h[144:176] = bytes(32)
    h[4064:4096] = hashlib.sha256(bytes(h[:4064])).digest()
    with open(vol, "r+b") as f:
        f.write(h)
    fd = key_fd(key)
    p = subprocess.run([CARD, "--socket-path", str(tmp_path / "s"), "--key-fd", str(fd), str(vol)],
                       capture_output=True, text=True, timeout=10, env=nokey, pass_fds=(fd,))
    os.close(fd)
    assert p.returncode == 1 and "has no key check" in p.stderr, p.stderr
    # ... and an unencrypted volume takes no key.
    plain = tmp_path / "p.img"
    create(plain, env, "--unencrypted")
    fd = key_fd(key)
    p = subprocess.run([CARD, "--socket-path", str(tmp_path / "s"), "--key-fd", str(fd), str(plain)],
                       capture_output=True, text=True, timeout=10, env=nokey, pass_fds=(fd,))
    os.close(fd)
    assert p.returncode == 1 and "not encrypted, but a data key was given" in p.stderr, p.stderr


@pytest.mark.parametrize("damage,message", [
    (lambda b: b[:100], "truncated header"),
    (lambda b: b[:DATA_OFFSET + 4096], "truncated"),
    (lambda b: b[:30] + bytes([b[30] ^ 1]) + b[31:], "corrupt header"),
    (lambda b: b[:70] + bytes([b[70] ^ 1]) + b[71:], "corrupt header"),
    (lambda b: b"NOTAVOL!" + b[8:], "not a nitro volume"),
    (lambda b: b"", "not a nitro volume"),
])
def test_bad_header(tmp_path, env, damage, message):
    vol = tmp_path / "v.img"
    create(vol, env, size="1M")
    vol.write_bytes(damage(vol.read_bytes()))
    for argv in ([NITRO, "volume", "info", str(vol)],
                 [CARD, "--socket-path", str(tmp_path / "s"), str(vol)]):
        rc, out, err = run(argv, 10, env)
        assert rc == 1 and message in err and str(vol) in err, (argv, err)


def test_qos_iops(tmp_path, env, cards):
    vol = tmp_path / "v.img"
    create(vol, env)
    card = cards(tmp_path, vol, env, "--iops", "500")
    rc, out, err = card.driver("bench", "--rw", "randread", "--qd", "8", "--seconds", "3")
    assert rc == 0, out + err
    m = BENCH_RE.search(out.strip())
    assert m and int(m.group(3)) == 0, out
    iops = int(m.group(2))
    assert 450 <= iops <= 550, f"measured {iops} IOPS against --iops 500"
    card.proc.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 5
    while not STATS_RE.search(card.output()) and time.monotonic() < deadline:
        time.sleep(0.05)
    m = STATS_RE.search(card.output())
    assert m and int(m.group(1)) >= int(iops * 2.5) and int(m.group(2)) > 0, card.output()


def test_qos_throughput(tmp_path, env, cards):
    vol = tmp_path / "v.img"
    create(vol, env, "--unencrypted")
    card = cards(tmp_path, vol, env, "--iops", "0", "--throughput", "20")
    rc, out, err = card.driver("bench", "--rw", "randwrite", "--bs", "262144", "--qd", "4",
                               "--seconds", "3")
    assert rc == 0, out + err
    iops = int(BENCH_RE.search(out.strip()).group(2))
    mibps = iops * 262144 / (1 << 20)
    assert 18 <= mibps <= 22, f"measured {mibps} MiB/s against --throughput 20"


@pytest.mark.parametrize("rw,extra", [("zeroes", ()), ("zeroes", ("--unencrypted",)),
                                      ("discard", ())])
def test_qos_zeroes_and_discard_pay_throughput(tmp_path, env, cards, rw, extra):
    """The attack: WRITE_ZEROES (on an encrypted volume real ciphertext writes) and DISCARD
    were charged 0 bytes, so a guest moved 1115 MiB/s through a 1 MiB/s volume. They pay
    like writes of the same size now."""
    vol = tmp_path / "v.img"
    create(vol, env, *extra)
    card = cards(tmp_path, vol, env, "--iops", "0", "--throughput", "1")
    bs = 128 << 10
    rc, out, err = card.driver("bench", "--rw", rw, "--bs", str(bs), "--qd", "4",
                               "--seconds", "4", timeout=60)
    assert rc == 0, out + err + card.output()
    m = re.search(r"seconds=([0-9.]+) ios=(\d+) .* errors=(\d+)$", out.strip())
    assert m and int(m.group(3)) == 0, out
    mibps = int(m.group(2)) * bs / (1 << 20) / float(m.group(1))
    assert 0.7 <= mibps <= 1.4, f"{rw}: measured {mibps:.2f} MiB/s against --throughput 1"


def proc_status(pid, field):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])  # kB
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def test_only_keys_locked_and_no_nbd_stack(tmp_path, env, cards):
    """An encrypted card mlockall()ed every mapped library (~52 MiB, libicu through libnbd)
    and started so slowly in an emulated host that `nitro run` gave up on it. Now only the
    key material is locked (OpenSSL's secure heap) and libnbd is loaded for NBD volumes
    only. The card still serves (and encrypts)."""
    vol = tmp_path / "v.img"
    create(vol, env)
    card = cards(tmp_path, vol, env, "--iops", "0", "--throughput", "0")
    locked = proc_status(card.proc.pid, "VmLck")
    assert locked < 1024, f"VmLck {locked} kB: more than the keys are locked"
    if proc_status(card.proc.pid, "VmLck") and os.geteuid() == 0:
        assert locked >= 128, f"VmLck {locked} kB: the 128 KiB key heap is not locked"
    maps = pathlib.Path(f"/proc/{card.proc.pid}/maps").read_text()
    assert not re.search(r"libnbd|libicu|libxml2|libgnutls", maps), \
        [ln for ln in maps.splitlines() if re.search(r"nbd|icu|xml2|gnutls", ln)]
    check_ok(card)


def test_sigterm(tmp_path, env, cards):
    vol = tmp_path / "v.img"
    create(vol, env)
    card = cards(tmp_path, vol, env)
    check_ok(card)
    rc, took = card.stop()
    assert rc == 0 and took < 3, (rc, took, card.output())
    assert STATS_RE.search(card.output()), card.output()
    assert not os.path.exists(card.sock)
    # A card waiting for its first frontend also ends at once.
    card = cards(tmp_path, vol, env)
    rc, took = card.stop()
    assert rc == 0 and took < 3


def test_volume_in_use(tmp_path, env, cards):
    vol = tmp_path / "v.img"
    create(vol, env)
    cards(tmp_path, vol, env)
    rc, out, err = run([CARD, "--socket-path", str(tmp_path / "s2"), str(vol)], 10, env)
    assert rc == 1 and "in use" in err, err


def test_fd_mode(tmp_path, env):
    import socket
    vol = tmp_path / "v.img"
    create(vol, env)
    rc, out, err = run([CARD, "--fd", "0", str(vol)], 10, env)
    assert rc == 1 and "--fd 0" in err, err
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    p = subprocess.Popen([CARD, "--fd", str(b.fileno()), str(vol)], pass_fds=[b.fileno()],
                         stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                         start_new_session=True)
    b.close()
    time.sleep(0.3)
    assert p.poll() is None
    a.close()  # the frontend goes away: a --fd card ends
    try:
        _, err = p.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        pytest.fail("the card kept running after its --fd frontend left")
    assert p.returncode == 0 and STATS_RE.search(err), err
