"""Images and snapshots (src/snapshot): `nitro volume create --from-image/--from-snapshot`
and `nitro snapshot create|list|delete`, with data read back through the EBS card by the
vhost-user test driver (tests/driver).

Run with: make snapshot-test. Every test sets NITRO_STATE to its own folder (its own
master key). Images are made here with qemu-img (qemu-utils)."""
import os
import pathlib
import re
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
MiB = 1 << 20
SNAP_RE = re.compile(r"^snap-[0-9a-f]{17}$")
VOL_RE = re.compile(r"^vol-[0-9a-f]{17}$")


@pytest.fixture
def env(tmp_path):
    e = dict(os.environ)
    e["NITRO_STATE"] = str(tmp_path / "state")
    return e


def nitro(env, *args, ok=True, timeout=120):
    rc, out, err = run([NITRO, *map(str, args)], timeout, env)
    if ok:
        assert rc == 0, f"nitro {args}: {err}"
    return rc, out, err


class Card(BackEnd):
    def __init__(self, tmp_path, volume, env, *extra):
        sock = str(tmp_path / f"card-{time.monotonic_ns()}.sock")
        super().__init__([CARD, "--socket-path", sock, "--iops", "0", "--throughput", "0",
                          *extra, str(volume)], sock, tmp_path / "card.log", env, "the card")

    def driver(self, *args):
        rc, out, err = run([DRIVER, "--socket", self.sock, *map(str, args)], 120)
        return rc, out + err

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.kill()
        self.log.close()


def verify(tmp_path, vol, env, first, sectors, zero=False, tag=False):
    with Card(tmp_path, vol, env) as c:
        rc, out = c.driver("verify", "--first", first, "--sectors", sectors,
                           *(["--zero"] if zero else []), *(["--tag"] if tag else []))
        assert rc == 0 and f"verified {sectors} sectors" in out, out + c.output()


def write(tmp_path, vol, env, first, sectors):
    """The driver's pattern with each sector's number in it (--tag): no two chunks alike."""
    with Card(tmp_path, vol, env) as c:
        rc, out = c.driver("write-flush", "--first", first, "--sectors", sectors, "--tag")
        assert rc == 0 and "flushed" in out, out + c.output()


def du(path):
    """Bytes of storage the files under path take (st_blocks)."""
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            total += os.lstat(os.path.join(dirpath, f)).st_blocks * 512
    return total


def chunk_files(store):
    return sorted(p for p in (pathlib.Path(store) / "chunks").glob("*/*"))


# --- images ---------------------------------------------------------------------------

def raw_image(path, size, data_sectors):
    """A sparse raw image: the driver's pattern in sectors [0, data_sectors) and the same
    pattern again at the last 64 KiB (so the tail of the image is checked too)."""
    with open(path, "wb") as f:
        f.truncate(size)
        f.write(pattern(0, data_sectors))
        tail = size // SECTOR - 128
        f.seek(tail * SECTOR)
        f.write(pattern(tail, 128))
    return size // SECTOR - 128


@pytest.mark.parametrize("fmt", ["raw", "qcow2"])
def test_import_image(tmp_path, env, fmt):
    img = tmp_path / "img.raw"
    tail = raw_image(img, 24 * MiB, 6000)
    if fmt == "qcow2":
        subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(img),
                        str(tmp_path / "img.qcow2")], check=True)
        img = tmp_path / "img.qcow2"
    vol = tmp_path / "a.vol"
    _, out, _ = nitro(env, "volume", "create", vol, "--from-image", img, "--size", "64M")
    assert VOL_RE.match(out.strip())
    _, info, _ = nitro(env, "volume", "info", vol)
    assert f"size: {64 * MiB}" in info and "encrypted: yes" in info
    # Only ciphertext in the file: no sector of the pattern appears in it.
    assert pattern(100, 1) not in vol.read_bytes()
    verify(tmp_path, vol, env, 0, 6000)
    verify(tmp_path, vol, env, tail, 128)
    verify(tmp_path, vol, env, 6000, tail - 6000, zero=True)  # the holes read as zeroes
    verify(tmp_path, vol, env, 24 * MiB // SECTOR, 40 * MiB // SECTOR, zero=True)  # grown


def test_import_default_size_and_unencrypted(tmp_path, env):
    img = tmp_path / "img.raw"
    raw_image(img, 3 * MiB + 1000, 100)  # not a whole number of sectors
    vol = tmp_path / "a.vol"
    nitro(env, "volume", "create", vol, "--from-image", img, "--unencrypted")
    _, info, _ = nitro(env, "volume", "info", vol)
    assert f"size: {3 * MiB + 1024}" in info and "encrypted: no" in info
    verify(tmp_path, vol, env, 0, 100)


def test_import_refused(tmp_path, env):
    img = tmp_path / "img.raw"
    raw_image(img, 8 * MiB, 100)
    vol = tmp_path / "a.vol"
    # Smaller than the image.
    rc, _, err = nitro(env, "volume", "create", vol, "--from-image", img, "--size", "4M",
                       ok=False)
    assert rc == 1 and "smaller than the image" in err and not vol.exists()
    # A backing file: qemu-img would read another file of the host.
    secret = tmp_path / "secret.raw"
    secret.write_bytes(b"host secret" * 1000)
    back = tmp_path / "back.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(secret),
                    str(back)], check=True)
    rc, _, err = nitro(env, "volume", "create", vol, "--from-image", back, ok=False)
    assert rc == 1 and "backing file" in err and not vol.exists(), err
    # An absurd virtual size (a small qcow2 claiming 100 TiB).
    huge = tmp_path / "huge.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(huge), "100T"], check=True)
    assert huge.stat().st_size < 4 * MiB
    rc, _, err = nitro(env, "volume", "create", vol, "--from-image", huge, ok=False)
    assert rc == 1 and "virtual size" in err and not vol.exists(), err
    # Another format, and garbage that claims to be qcow2.
    vmdk = tmp_path / "x.vmdk"
    subprocess.run(["qemu-img", "create", "-q", "-f", "vmdk", str(vmdk), "16M"], check=True)
    rc, _, err = nitro(env, "volume", "create", vol, "--from-image", vmdk, ok=False)
    assert rc == 1 and "format vmdk refused" in err, err
    bad = tmp_path / "bad.qcow2"
    bad.write_bytes(b"QFI\xfb" + b"\xff" * 508)
    rc, _, err = nitro(env, "volume", "create", vol, "--from-image", bad, ok=False)
    assert rc == 1 and "qemu-img" in err and not vol.exists(), err
    rc, _, err = nitro(env, "volume", "create", vol, "--from-image", tmp_path / "none",
                       ok=False)
    assert rc == 1 and "No such file" in err


# --- snapshots ------------------------------------------------------------------------

def test_incremental_restore_delete(tmp_path, env):
    """A 10 GiB sparse volume with 4 MiB written; a snapshot; 1 MiB more written far
    away; the second snapshot costs ~1 MiB; each restores to what it was; delete keeps
    the chunks the other snapshot shares."""
    vol, store = tmp_path / "a.vol", tmp_path / "store"
    nitro(env, "volume", "create", vol, "--size", "10G")
    write(tmp_path, vol, env, 0, 8192)
    _, out, err = nitro(env, "snapshot", "create", vol, store)
    s1 = out.strip()
    assert SNAP_RE.match(s1), out
    assert "4 new" in err, err
    used1 = du(store)
    assert 4 * MiB <= used1 < 4 * MiB + 256 * 1024, used1
    assert len(chunk_files(store)) == 4

    far = 5 * (1 << 30) // SECTOR  # 5 GiB into the volume
    write(tmp_path, vol, env, far, 2048)
    _, out, err = nitro(env, "snapshot", "create", vol, store)
    s2 = out.strip()
    assert SNAP_RE.match(s2) and s2 != s1
    assert "1 new" in err, err
    added = du(store) - used1
    assert MiB <= added < MiB + 64 * 1024, added  # about 1 MiB (+ manifest, chunk header)
    assert len(chunk_files(store)) == 5

    _, out, _ = nitro(env, "snapshot", "list", store)
    lines = out.splitlines()
    assert [ln.split()[0] for ln in lines] == [s1, s2]
    assert all(ln.split()[2] == str(10 << 30) for ln in lines)

    # The newest by default, a named one with --snapshot.
    r2, r1 = tmp_path / "r2.vol", tmp_path / "r1.vol"
    nitro(env, "volume", "create", r2, "--from-snapshot", store)
    nitro(env, "volume", "create", r1, "--from-snapshot", store, "--snapshot", s1)
    verify(tmp_path, r2, env, 0, 8192, tag=True)
    verify(tmp_path, r2, env, far, 2048, tag=True)
    verify(tmp_path, r1, env, 0, 8192, tag=True)
    verify(tmp_path, r1, env, far, 2048, zero=True)
    _, info, _ = nitro(env, "volume", "info", r1)
    assert f"size: {10 << 30}" in info
    # The restored volumes are sparse too.
    assert r2.stat().st_blocks * 512 < 16 * MiB

    # Deleting s1 frees nothing (s2 holds all of its chunks); deleting s2 frees all.
    _, _, err = nitro(env, "snapshot", "delete", store, s1)
    assert "0 chunks freed" in err, err
    assert len(chunk_files(store)) == 5
    verify(tmp_path, r2, env, 0, 8192, tag=True)
    r3 = tmp_path / "r3.vol"
    nitro(env, "volume", "create", r3, "--from-snapshot", store)
    verify(tmp_path, r3, env, far, 2048, tag=True)
    _, _, err = nitro(env, "snapshot", "delete", store, s2)
    assert "5 chunks freed" in err, err
    assert chunk_files(store) == []
    rc, _, err = nitro(env, "volume", "create", tmp_path / "r4.vol", "--from-snapshot", store,
                       ok=False)
    assert rc == 1 and "no snapshot" in err


def test_delete_keeps_shared_chunks(tmp_path, env):
    """Two volumes in one store share chunks (same data); deleting one's snapshot keeps
    the shared chunks and frees only its own."""
    a, b, store = tmp_path / "a.vol", tmp_path / "b.vol", tmp_path / "store"
    nitro(env, "volume", "create", a, "--size", "16M")
    nitro(env, "volume", "create", b, "--size", "16M")
    write(tmp_path, a, env, 0, 4096)       # 2 MiB, chunks 0-1
    write(tmp_path, b, env, 0, 4096)       # the same 2 MiB
    write(tmp_path, b, env, 8192, 2048)    # and its own chunk 4
    sa = nitro(env, "snapshot", "create", a, store)[1].strip()
    _, out, err = nitro(env, "snapshot", "create", b, store)
    sb = out.strip()
    assert "1 new" in err, err  # only its own chunk: the shared ones are there
    assert len(chunk_files(store)) == 3
    _, _, err = nitro(env, "snapshot", "delete", store, sb)
    assert "1 chunks freed" in err, err
    assert len(chunk_files(store)) == 2
    r = tmp_path / "r.vol"
    nitro(env, "volume", "create", r, "--from-snapshot", store, "--snapshot", sa)
    verify(tmp_path, r, env, 0, 4096, tag=True)


@pytest.fixture
def one_snapshot(tmp_path, env):
    vol, store = tmp_path / "a.vol", tmp_path / "store"
    nitro(env, "volume", "create", vol, "--size", "8M")
    write(tmp_path, vol, env, 0, 6144)
    sid = nitro(env, "snapshot", "create", vol, store)[1].strip()
    return store, sid


def restore_fails(tmp_path, env, store, *extra):
    out = tmp_path / "r.vol"
    rc, _, err = nitro(env, "volume", "create", out, "--from-snapshot", store, *extra,
                       ok=False)
    assert rc == 1 and not out.exists(), err
    return err


def test_tampered_chunk_refused(tmp_path, env, one_snapshot):
    store, sid = one_snapshot
    c = chunk_files(store)[1]
    data = bytearray(c.read_bytes())
    data[200] ^= 1
    c.write_bytes(data)
    assert "fails its check" in restore_fails(tmp_path, env, store)


def test_swapped_chunks_refused(tmp_path, env, one_snapshot):
    """Two valid chunk files swapped under each other's names: each decrypts (same key) only
    if the id is not bound; it is (additional data + hash of the plaintext)."""
    store, _ = one_snapshot
    a, b = chunk_files(store)[:2]
    da, db = a.read_bytes(), b.read_bytes()
    a.write_bytes(db)
    b.write_bytes(da)
    assert "fails its check" in restore_fails(tmp_path, env, store)


def test_missing_chunk_refused(tmp_path, env, one_snapshot):
    store, _ = one_snapshot
    chunk_files(store)[0].unlink()
    assert "missing" in restore_fails(tmp_path, env, store)


@pytest.mark.parametrize("how", ["flip", "truncate", "id-of-zero", "symlink"])
def test_tampered_manifest_refused(tmp_path, env, one_snapshot, how):
    store, sid = one_snapshot
    m = store / "manifests" / sid
    data = bytearray(m.read_bytes())
    if how == "flip":
        data[100] ^= 0xff  # a chunk id
    elif how == "truncate":
        data = data[:-40]
    elif how == "id-of-zero":
        data[88:120] = bytes(32)  # make chunk 0 read as zeroes
    if how == "symlink":
        target = tmp_path / "elsewhere"
        target.write_bytes(data)
        m.unlink()
        m.symlink_to(target)
    else:
        m.write_bytes(data)
    err = restore_fails(tmp_path, env, store, "--snapshot", sid)
    assert sid in err, err
    rc, _, err = nitro(env, "snapshot", "list", store, ok=False)
    assert rc == 1 and sid in err


def test_other_master_key_refused(tmp_path, env, one_snapshot):
    store, _ = one_snapshot
    other = dict(env, NITRO_STATE=str(tmp_path / "other"))
    nitro(other, "volume", "create", tmp_path / "x.vol", "--size", "1M")  # its own key
    err = restore_fails(tmp_path, other, store)
    assert "does not unwrap" in err, err


def test_store_reveals_no_plaintext(tmp_path, env, one_snapshot):
    store, _ = one_snapshot
    needle = pattern(7, 1)
    for p in pathlib.Path(store).rglob("*"):
        if p.is_file():
            assert needle not in p.read_bytes(), p


def test_running_volume_refused(tmp_path, env):
    """A volume a card serves is locked: the offline snapshot refuses it rather than copy
    a volume that changes under it."""
    vol = tmp_path / "a.vol"
    nitro(env, "volume", "create", vol, "--size", "8M")
    with Card(tmp_path, vol, env):
        rc, _, err = nitro(env, "snapshot", "create", vol, tmp_path / "store", ok=False)
        assert rc == 1 and "in use" in err, err


def test_usage(env):
    for args in (["snapshot"], ["snapshot", "create", "x"], ["snapshot", "frob"],
                 ["volume", "create", "x", "--from-image", "a", "--from-snapshot", "b"],
                 ["volume", "create", "x", "--snapshot", "snap-0"],
                 ["snapshot", "create", "a", "b", "--frob", "c"],
                 ["run", "--volume", "x.vol,ctl="]):
        rc, _, err = nitro(env, *args, ok=False)
        assert rc == 2, (args, err)


# --- a volume a card serves: pause, flush, snapshot, resume ----------------------------

def ctl_connect(path):
    import socket
    for _ in range(100):
        if os.path.exists(path):
            break
        time.sleep(0.05)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(str(path))
    return s


def ctl_say(s, cmd):
    s.sendall(cmd.encode() + b"\n")
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = s.recv(64)
        if not chunk:
            break
        buf += chunk
    return buf.decode().strip()


def test_card_pause_holds_writes(tmp_path, env):
    """While a client holds the pause, the guest's writes wait; "resume" (or the client
    going away) lets them through; a second client is told "busy"."""
    vol, ctl = tmp_path / "a.vol", tmp_path / "card.ctl"
    nitro(env, "volume", "create", vol, "--size", "16M")
    with Card(tmp_path, vol, env, "--ctl", str(ctl)) as c:
        s = ctl_connect(ctl)
        assert ctl_say(s, "pause") == "paused"
        other = ctl_connect(ctl)
        assert other.recv(16) == b"busy\n"
        other.close()
        w = subprocess.Popen([DRIVER, "--socket", c.sock, "write-flush", "--sectors", "2048",
                              "--tag"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, start_new_session=True)
        time.sleep(1.5)
        assert w.poll() is None, "a write completed while the card was paused"
        assert ctl_say(s, "resume") == "resumed"
        out, _ = w.communicate(timeout=60)
        assert w.returncode == 0 and "flushed" in out, out
        # A client that pauses and dies: the card resumes on its own.
        assert ctl_say(s, "pause") == "paused"
        s.close()
        rc, out = c.driver("write-flush", "--first", 4096, "--sectors", 2048, "--tag")
        assert rc == 0 and "flushed" in out, out + c.output()
        s = ctl_connect(ctl)
        assert ctl_say(s, "bogus").startswith("error")
        s.close()
        # "resume" before "paused" (the flush still in flight) is out of order: dropped,
        # the card resumes; the next client's pause gets a flush of its own.
        for _ in range(20):
            s = ctl_connect(ctl)
            s.sendall(b"pause\nresume\n")
            got = b""
            while True:
                chunk = s.recv(64)
                if not chunk:
                    break
                got += chunk
            s.close()
            assert got in (b"error unknown or out-of-order command\n",
                           b"paused\nresumed\n"), got
            s = ctl_connect(ctl)
            assert ctl_say(s, "pause") == "paused"
            assert ctl_say(s, "resume") == "resumed"
            s.close()
        rc, out = c.driver("verify", "--first", 4096, "--sectors", 2048, "--tag")
        assert rc == 0 and "verified" in out, out + c.output()
        assert c.proc.poll() is None


def test_snapshot_of_served_volume(tmp_path, env):
    """`nitro snapshot create --card`: the card drains and flushes, the snapshot holds every
    acknowledged write, guest I/O running meanwhile sees no error; without --card the
    served volume is refused (test_running_volume_refused)."""
    vol, ctl, store = tmp_path / "a.vol", tmp_path / "card.ctl", tmp_path / "store"
    nitro(env, "volume", "create", vol, "--size", "64M")
    with Card(tmp_path, vol, env, "--ctl", str(ctl)) as c:
        rc, out = c.driver("write-flush", "--sectors", 8192, "--tag")
        assert rc == 0, out
        _, out, err = nitro(env, "snapshot", "create", vol, store, "--card", ctl)
        s1 = out.strip()
        assert SNAP_RE.match(s1), out + err
        # Random writes run during a second snapshot: it succeeds, they see no error.
        bench = subprocess.Popen([DRIVER, "--socket", c.sock, "bench", "--rw", "randwrite",
                                  "--seconds", "4", "--qd", "8"], stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True, start_new_session=True)
        time.sleep(0.5)
        _, out, err = nitro(env, "snapshot", "create", vol, store, "--card", ctl)
        assert SNAP_RE.match(out.strip()), out + err
        bout, _ = bench.communicate(timeout=60)
        assert bench.returncode == 0 and "errors=0" in bout, bout
        assert c.proc.poll() is None
    r = tmp_path / "r.vol"
    nitro(env, "volume", "create", r, "--from-snapshot", store, "--snapshot", s1)
    verify(tmp_path, r, env, 0, 8192, tag=True)
    _, info, _ = nitro(env, "volume", "info", r)
    assert f"size: {64 * MiB}" in info
    # A card without --ctl, or a wrong socket: refused, nothing written.
    rc, _, err = nitro(env, "snapshot", "create", vol, store, "--card", tmp_path / "none",
                       ok=False)
    assert rc == 1 and "control socket" in err, err


def test_snapshot_through_an_nvme_card(tmp_path, env):
    """The NVMe card (--nvme) has the same control socket: a volume it serves is refused
    without --card and snapshotted through it (pause, flush, resume); the restored volume
    holds the data. (Pausing with guest I/O in flight: tests/unit/nvme/test_pause.c and
    the system test test_snapshot_of_a_running_nvme_volume_is_crash_consistent.)"""
    vol, ctl, store = tmp_path / "a.vol", tmp_path / "nvme.ctl", tmp_path / "store"
    nitro(env, "volume", "create", vol, "--size", "32M")
    write(tmp_path, vol, env, 0, 4096)
    with Card(tmp_path, vol, env, "--nvme", "--ctl", str(ctl)) as c:
        rc, _, err = nitro(env, "snapshot", "create", vol, store, ok=False)
        assert rc == 1 and "in use" in err, err
        _, out, err = nitro(env, "snapshot", "create", vol, store, "--card", ctl)
        sid = out.strip()
        assert SNAP_RE.match(sid), out + err
        s = ctl_connect(ctl)
        assert ctl_say(s, "pause") == "paused"
        other = ctl_connect(ctl)
        assert other.recv(16) == b"busy\n"
        other.close()
        assert ctl_say(s, "resume") == "resumed"
        s.close()
        assert c.proc.poll() is None
    r = tmp_path / "r.vol"
    nitro(env, "volume", "create", r, "--from-snapshot", store, "--snapshot", sid)
    verify(tmp_path, r, env, 0, 4096, tag=True)
    verify(tmp_path, r, env, 4096, 4096, zero=True)
    # Instance storage has nothing to snapshot: no control socket.
    rc, _, err = run([CARD, "--socket-path", tmp_path / "s.sock", "--nvme", "--instance-store",
                      "1M", "--ctl", ctl], 30)
    assert rc == 2 and "--ctl: not with --instance-store" in err, err


def test_unencrypted_volume_roundtrip(tmp_path, env):
    """An unencrypted volume's snapshot still stores only ciphertext; restored (encrypted by
    default, or --unencrypted) it reads back the same."""
    vol, store = tmp_path / "a.vol", tmp_path / "store"
    nitro(env, "volume", "create", vol, "--size", "8M", "--unencrypted")
    write(tmp_path, vol, env, 2048, 4096)
    assert pattern(2048, 1)[8:] in vol.read_bytes()  # plaintext in the volume itself
    nitro(env, "snapshot", "create", vol, store)
    for p in pathlib.Path(store).rglob("*"):
        if p.is_file():
            assert pattern(2050, 1)[8:] not in p.read_bytes(), p
    for extra in ((), ("--unencrypted",)):
        r = tmp_path / f"r{len(extra)}.vol"
        nitro(env, "volume", "create", r, "--from-snapshot", store, *extra)
        verify(tmp_path, r, env, 2048, 4096, tag=True)
        verify(tmp_path, r, env, 0, 2048, zero=True)
