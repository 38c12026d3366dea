"""The EBS card's back ends (null, NBD through a real nbdkit, the io_uring file), flush
durability after a kill, gp2 burst credits and the sealed-memory check, driven natively by
vu-blk-driver. Run with make ebs-test (helpers and fixtures come from test_ebs.py)."""
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time

import pytest

from test_ebs import (BENCH_RE, CARD, DATA_OFFSET, DRIVER, SECTOR, cards, check_ok,  # noqa: F401
                      create, env, pattern, run)
from nitrotest import free_port  # (tests/pylib: on sys.path through test_ebs)

NBDKIT = shutil.which("nbdkit")
needs_nbdkit = pytest.mark.skipif(NBDKIT is None, reason="nbdkit is not installed")


class Nbdkit:
    """nbdkit in the foreground on a unix socket (or a TCP port), killed at the end."""

    def __init__(self, tmp_path, *plugin, port=None):
        self.sock = str(tmp_path / f"nbd-{time.monotonic_ns()}.sock")
        where = ["--port", str(port), "--ipaddr", "127.0.0.1"] if port else ["--unix", self.sock]
        self.proc = subprocess.Popen([NBDKIT, "--foreground", "--exit-with-parent", *where,
                                      *plugin], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     start_new_session=True)
        deadline = time.monotonic() + 10
        while True:
            if port:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    pass
            elif os.path.exists(self.sock):
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"nbdkit did not start: {self.proc.stderr.read()}")
            time.sleep(0.02)
        self.uri = (f"nbd://127.0.0.1:{port}/" if port else f"nbd+unix:///?socket={self.sock}")

    def kill(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@pytest.fixture
def nbdkits():
    started = []
    yield lambda *a, **k: started.append(Nbdkit(*a, **k)) or started[-1]
    for n in started:
        n.kill()


def raw_id(name):
    return "vol" + hashlib.sha256(name.encode()).hexdigest()[:17]


def driver_ok(card, *args, timeout=120):
    rc, out, err = card.driver(*args, timeout=timeout)
    assert rc == 0, out + err + card.output()
    return out


def stats(card):
    card.proc.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 5
    while "ops=" not in card.output() and time.monotonic() < deadline:
        time.sleep(0.05)
    return card.output()


# --- null -----------------------------------------------------------------------------

@pytest.mark.parametrize("extra", [(), ("--encrypt",)])
def test_null_backend(tmp_path, env, cards, extra):
    card = cards(tmp_path, "null:64M", env, "--iops", "0", "--throughput", "0", *extra)
    out = check_ok(card, "--no-verify")  # every request type; the data is dropped
    assert f'get-id: "{raw_id("null:64M")}"' in out, out
    driver_ok(card, "write-flush", "--sectors", "4096", "--qd", "8")
    out = driver_ok(card, "verify", "--sectors", "4096", "--zero")  # reads return zeroes
    assert "verified 4096 sectors" in out
    rc, hout, herr = card.driver("hostile")
    assert rc == 0 and "0 failed" in hout, hout + herr + card.output()
    assert card.stop()[0] == 0


def test_null_bad_specs(tmp_path, env):
    for vol in ("null:0", "null:1000", "null:abc", "null:"):
        rc, out, err = run([CARD, "--socket-path", str(tmp_path / "s"), vol], 10, env)
        assert rc == 2 and vol in err and "null:SIZE" in err, (vol, err)
    vol = tmp_path / "v.img"
    create(vol, env)
    for argv in (["--encrypt", str(vol)], ["--header", str(vol), "null:1M"],
                 ["--gp2", "--iops", "10", "null:1M"]):
        rc, out, err = run([CARD, "--socket-path", str(tmp_path / "s"), *argv], 10, env)
        assert rc == 2 and err, (argv, err)


# --- NBD ------------------------------------------------------------------------------

@needs_nbdkit
def test_nbd_memory(tmp_path, env, cards, nbdkits):
    nbd = nbdkits(tmp_path, "memory", "64M")
    card = cards(tmp_path, nbd.uri, env, "--iops", "0", "--throughput", "0", "--queues", "2")
    out = check_ok(card, "--queues", "2")  # every request type, data verified
    assert f'get-id: "{raw_id(nbd.uri)}"' in out and "capacity=131072" in out, out
    rc, hout, herr = card.driver("hostile")
    assert rc == 0 and "0 failed" in hout, hout + herr + card.output()
    driver_ok(card, "write-flush", "--sectors", "8192", "--qd", "16")
    assert card.stop()[0] == 0
    # The data lives in the export: a new card reads it back.
    card = cards(tmp_path, nbd.uri, env, "--iops", "0", "--throughput", "0")
    assert "verified 8192 sectors" in driver_ok(card, "verify", "--sectors", "8192")
    out = driver_ok(card, "bench", "--rw", "randread", "--qd", "16", "--seconds", "1")
    assert BENCH_RE.search(out.strip()), out


@needs_nbdkit
def test_nbd_tcp_and_readonly(tmp_path, env, cards, nbdkits):
    nbd = nbdkits(tmp_path, "memory", "16M", port=free_port())
    card = cards(tmp_path, nbd.uri, env, "--iops", "0", "--throughput", "0")
    check_ok(card)
    assert card.stop()[0] == 0
    ro = nbdkits(tmp_path, "--readonly", "memory", "16M")
    rc, out, err = run([CARD, "--socket-path", str(tmp_path / "s"), ro.uri], 10, env)
    assert rc == 1 and "read-only" in err and ro.uri in err, err
    card = cards(tmp_path, ro.uri, env, "--readonly")
    assert "ro=1" in check_ok(card)


@needs_nbdkit
def test_nbd_missing_server(tmp_path, env):
    for uri in (f"nbd+unix:///?socket={tmp_path}/nobody.sock",
                f"nbd://127.0.0.1:{free_port()}/"):
        t = time.monotonic()
        rc, out, err = run([CARD, "--socket-path", str(tmp_path / "s"), uri], 30, env)
        assert rc == 1, err
        assert f"volume {uri}: cannot connect to the NBD server" in err, err
        assert time.monotonic() - t < 10
        assert not (tmp_path / "s").exists()


@needs_nbdkit
def test_nbd_server_dies(tmp_path, env, cards, nbdkits):
    nbd = nbdkits(tmp_path, "memory", "16M")
    card = cards(tmp_path, nbd.uri, env, "--iops", "0", "--throughput", "0")
    check_ok(card)
    nbd.kill()
    rc, out, err = card.driver("bench", "--rw", "randwrite", "--qd", "4", "--seconds", "1",
                               timeout=60)
    m = BENCH_RE.search(out.strip())
    assert rc != 0 and m and int(m.group(3)) > 0, out + err  # IOERR, no hang
    assert card.proc.poll() is None, "the card died with its NBD server"
    assert "connection lost" in card.output(), card.output()
    rc, took = card.stop()
    assert rc == 0 and took < 3, card.output()


@needs_nbdkit
def test_nbd_encrypted_with_header(tmp_path, env, cards, nbdkits):
    """Encrypted network volume: id, size and wrapped key from a local volume file; the
    export (here a raw file served by nbdkit's file plugin) holds only ciphertext."""
    hdr = tmp_path / "hdr.vol"
    vid = create(hdr, env, size="16M")
    raw = tmp_path / "export.img"
    with open(raw, "wb") as f:
        f.truncate(16 << 20)
    nbd = nbdkits(tmp_path, "file", str(raw))
    card = cards(tmp_path, nbd.uri, env, "--header", str(hdr), "--iops", "0")
    out = check_ok(card)
    assert f'get-id: "vol{vid[4:]}"' in out, out
    driver_ok(card, "write-flush", "--sectors", "2048")
    assert card.stop()[0] == 0
    data = raw.read_bytes()
    assert pattern(0, 1) not in data and pattern(1000, 1) not in data, "plaintext in export"
    assert data[:SECTOR] != bytes(SECTOR), "nothing was written to the export"
    card = cards(tmp_path, nbd.uri, env, "--header", str(hdr))
    assert "verified 2048 sectors" in driver_ok(card, "verify", "--sectors", "2048")
    assert card.stop()[0] == 0
    other = dict(env, NITRO_STATE=str(tmp_path / "other"))
    create(tmp_path / "w.img", other)
    rc, out, err = run([CARD, "--socket-path", str(tmp_path / "s"), "--header", str(hdr),
                        nbd.uri], 10, other)
    assert rc == 1 and "wrong master key" in err, err


# --- durability, gp2, sealed memory ----------------------------------------------------

@pytest.mark.parametrize("extra", [(), ("--unencrypted",)])
def test_crash_after_flush(tmp_path, env, cards, extra):
    """SIGKILL the card the moment a FLUSH is acked: every write acked before it is in the
    backing file (the card holds no acked data of its own in memory)."""
    vol = tmp_path / "v.img"
    create(vol, env, *extra)
    card = cards(tmp_path, vol, env, "--iops", "0", "--throughput", "0")
    drv = subprocess.Popen([DRIVER, "--socket", card.sock, "write-flush", "--sectors", "16384",
                            "--qd", "32"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, start_new_session=True)
    line = drv.stdout.readline()
    os.killpg(card.proc.pid, signal.SIGKILL)
    card.proc.wait()
    drv.wait(timeout=30)
    assert line.startswith("flushed 16384 sectors"), line + drv.stderr.read()
    assert card.proc.returncode == -signal.SIGKILL
    data = vol.read_bytes()
    if extra:
        want = pattern(0, 16384)
        assert data[DATA_OFFSET:DATA_OFFSET + len(want)] == want
    else:
        assert pattern(0, 1) not in data and pattern(9999, 1) not in data
        card = cards(tmp_path, vol, env)
        assert "verified 16384 sectors" in driver_ok(card, "verify", "--sectors", "16384")


def test_gp2_burst_then_baseline(tmp_path, env, cards):
    vol = tmp_path / "v.img"
    create(vol, env, "--unencrypted", size="1G")  # baseline 3 IOPS/GiB -> the minimum, 100
    card = cards(tmp_path, vol, dict(env, NITRO_GP2_CREDITS="3000"), "--gp2",
                 "--throughput", "0")
    out = driver_ok(card, "bench", "--rw", "randread", "--qd", "8", "--seconds", "1")
    burst = int(BENCH_RE.search(out.strip()).group(2))
    # The cap is exact (<= 3400); the floor only says "bursting, far above the baseline":
    # a loaded 2-core machine cannot always drive 3000 IOPS through the test driver.
    assert 1000 <= burst <= 3400, f"{burst} IOPS while 3000 credits last (burst 3000)"
    out = driver_ok(card, "bench", "--rw", "randread", "--qd", "8", "--seconds", "3")
    base = int(BENCH_RE.search(out.strip()).group(2))
    assert 85 <= base <= 125, f"{base} IOPS with the credits spent (baseline 100)"
    m = re.search(r"credits=(\d+) baseline_iops=(\d+)", stats(card))
    assert m and int(m.group(1)) < 100 and int(m.group(2)) == 100, card.output()


def test_unsealed_memory_refused(tmp_path, env, cards):
    card = cards(tmp_path, "null:16M", env)
    rc, out, err = card.driver("--no-seal", "check", "--no-verify", timeout=60)
    assert rc != 0, out
    assert "not sealed against shrinking" in card.output(), card.output()
    check_ok(card, "--no-verify")  # a frontend with sealed memory is served


@pytest.mark.parametrize("kind", ["encrypted", "unencrypted", "nbd", "nbd-encrypted"])
def test_scattered_buffers(tmp_path, env, cards, nbdkits, kind):
    """Data split across descriptors mid-sector (a sector in two buffers): written and
    read back intact, through the bounce/crypto path and the direct iovec path."""
    if kind.startswith("nbd") and NBDKIT is None:
        pytest.skip("nbdkit is not installed")
    args = ["--iops", "0", "--throughput", "0"]
    if kind.startswith("nbd"):
        nbd = nbdkits(tmp_path, "memory", "16M")
        vol = nbd.uri
        if kind == "nbd-encrypted":
            hdr = tmp_path / "hdr.vol"
            create(hdr, env, size="16M")
            args += ["--header", str(hdr)]
    else:
        vol = tmp_path / "v.img"
        create(vol, env, *(["--unencrypted"] if kind == "unencrypted" else []))
    card = cards(tmp_path, vol, env, *args)
    out = driver_ok(card, "scatter")
    assert out.count("ok   ") == 3 and "0 failed" in out, out


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_polling_card_sleeps_while_throttled(tmp_path, env, cards):
    """--poll-us busy-polls only while it can work: a throttled card waits on its timer."""
    vol = tmp_path / "v.img"
    create(vol, env, "--unencrypted")
    card = cards(tmp_path, vol, env, "--iops", "200", "--poll-us", "50")
    before = cpu_seconds(card.proc.pid)
    out = driver_ok(card, "bench", "--rw", "randread", "--qd", "8", "--seconds", "3")
    iops = int(BENCH_RE.search(out.strip()).group(2))
    assert 180 <= iops <= 220, out
    used = cpu_seconds(card.proc.pid) - before
    assert used < 1.0, f"the card burnt {used:.2f} s of CPU in 3 s at 200 IOPS"
    out = driver_ok(card, "scatter")  # and it still serves promptly when polling
    assert "0 failed" in out


def test_run_volume_specs(tmp_path, env):
    """nitro run --volume: the spec errors are reported before anything boots."""
    from test_ebs import NITRO
    vol = tmp_path / "v.img"
    create(vol, env)
    for spec, message in ((f"{vol},gp2,iops=5", "gp2 and iops= exclude each other"),
                          (f"{vol},header=/x", "header= is for nbd:// volumes"),
                          ("nbd://127.0.0.1:1/x,bogus", "unknown option bogus"),
                          (f"{tmp_path}/missing.img", "No such file")):
        rc, out, err = run([NITRO, "run", "--volume", spec], 30, env)
        assert rc in (1, 2) and message in err, (spec, err)


@pytest.mark.parametrize("kind", ["encrypted", "unencrypted", "nbd"])
def test_used_entries_in_submission_order(tmp_path, env, cards, nbdkits, kind):
    """Back ends finish out of order (a FLUSH after writes takes an fdatasync while the
    reads behind it are done at once), but the card hands chains back in the order it took
    them: the used index then says exactly which are done, which is what nitro-hv resumes
    a restarted card from."""
    if kind == "nbd" and NBDKIT is None:
        pytest.skip("nbdkit is not installed")
    if kind == "nbd":
        vol = nbdkits(tmp_path, "memory", "16M").uri
    else:
        vol = tmp_path / "v.img"  # a disk file: io_uring, completions out of order
        create(vol, env, *(["--unencrypted"] if kind == "unencrypted" else []))
    card = cards(tmp_path, vol, env, "--iops", "0", "--throughput", "0")
    out = driver_ok(card, "order")
    assert "order: ok" in out, out
