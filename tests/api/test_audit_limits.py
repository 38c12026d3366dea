"""Issue 10 items 6 and 15: what a full disk, a torn audit line, a flood of refused calls,
a huge volume, a chatty console and a rewritten audit log did to nitrod, each performed.

The small-disk tests put nitrod's state folder on a tmpfs of a few MiB mounted in a private
mount namespace (a holder process keeps it; nitrod runs in it through nsenter, the test
fills it through /proc/HOLDER/root), so nothing is left mounted when a test ends.
"""
import hashlib
import os
import pathlib
import re
import subprocess
import time

import pytest

from conftest import BUILD, Nitrod
from nitrotest import as_uid

AUDIT = BUILD / "nitro-audit-verify"
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mounts, uids)")


class SmallFS:
    def __init__(self, mountpoint, size):
        self.mountpoint = pathlib.Path(mountpoint)
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        self.holder = subprocess.Popen(
            ["unshare", "-m", "--propagation", "private", "sh", "-c",
             'mount -t tmpfs -o size="$1",mode=0700 nitro-small "$0" && echo ok && exec sleep 3600',
             str(self.mountpoint), size], stdout=subprocess.PIPE)
        assert self.holder.stdout.readline() == b"ok\n", "tmpfs mount failed"
        self.wrap = ["nsenter", "-t", str(self.holder.pid), "-m", "--"]

    def path(self, rel=""):
        """A path inside the tmpfs, seen from the test's own namespace."""
        return pathlib.Path(f"/proc/{self.holder.pid}/root{self.mountpoint}") / rel

    def fill(self):
        """Writes a file until the tmpfs is full; returns it."""
        f = self.path("filler")
        fd = os.open(f, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for size in (65536, 4096, 512, 1):
                try:
                    while True:
                        os.write(fd, b"\xa5" * size)
                except OSError:
                    pass
        finally:
            os.close(fd)
        return f

    def close(self):
        self.holder.kill()
        self.holder.wait()


@pytest.fixture
def small_fs(folder):
    fs = SmallFS(folder / "state", "4m")
    yield fs
    fs.close()


def verify(*args):
    return subprocess.run([str(AUDIT), *map(str, args)], capture_output=True, text=True, timeout=60)


def call_any(d, method, path, body=None, timeout=10):
    """The first answer nitrod gives (it may answer 503 to everything)."""
    deadline = time.time() + timeout
    while True:
        assert d.proc.poll() is None, f"nitrod exited: {d.log.read_text()}"
        try:
            return d.call(method, path, body)
        except OSError:
            assert time.time() < deadline, "nitrod never answered"
            time.sleep(0.02)


# --- item 6: a full disk ---

def test_full_state_disk_fails_calls_with_503_changes_nothing_and_restarts(folder, small_fs, bad_kernel):
    d = Nitrod(folder, wrap=small_fs.wrap)
    try:
        d.start()
        r = d.call("POST", "/v1/volumes", {"size_mib": 1, "encrypted": False})
        assert r.status == 201, r
        vol = r.json()["id"]
        filler = small_fs.fill()

        # The state database cannot grow: 503, and neither the instance nor the volume's
        # attachment is in memory (nor, below, after a restart).
        r = d.call("POST", "/v1/instances", {"kernel": bad_kernel, "initrd": None,
                                             "memory_mib": 128, "volumes": [vol]})
        assert r.status == 503 and "state database" in r.json()["error"], r
        assert d.call("GET", "/v1/instances").json()["instances"] == []
        assert d.call("GET", f"/v1/volumes/{vol}").json()["attached_to"] in (None, "")

        # Reads use up the audit log's reserve; then every call is refused with 503
        # before anything is done, and never answered without its line.
        statuses = []
        for _ in range(4000):
            s = d.call("GET", "/v1/volumes").status
            statuses.append(s)
            if s == 503:
                break
        assert statuses[-1] == 503 and set(statuses[:-1]) <= {200}, statuses[-5:]
        r = d.call("POST", "/v1/volumes", {"size_mib": 1, "overcommit": True})
        assert r.status == 503 and "audit log" in r.json()["error"], r
        # Every 200 that was answered has its line.
        lines = small_fs.path("audit.log").read_text().splitlines()
        assert sum(" status=200 " in l and "route=/v1/volumes " in l for l in lines) >= len(statuses) - 1
        d.stop()

        # A restart on the still full disk: nitrod starts and answers (503), no crash.
        d.start(wait=False)
        assert call_any(d, "GET", "/v1/volumes").status == 503
        filler.unlink()
        r = d.call("GET", "/v1/volumes")
        assert r.status == 200 and [v["id"] for v in r.json()["volumes"]] == [vol], r
        assert d.call("GET", "/v1/instances").json()["instances"] == []
        d.stop()
        v = verify(small_fs.path("audit.log"))
        assert v.returncode == 0, v.stderr
    finally:
        d.stop()


def test_torn_audit_line_is_cut_at_start_and_audited(nitrod):
    nitrod.call("GET", "/v1/volumes")
    nitrod.stop()
    log = nitrod.state / "audit.log"
    good = log.read_bytes()
    torn = b"2026-12-06T07:00:00.000Z uid=0 method=POST route=/v1/vol"
    log.write_bytes(good + torn)  # what a crash or a full disk mid-write leaves
    nitrod.start()  # refused to start before
    text = log.read_text()
    assert text.startswith(good.decode())
    rep = [l for l in text.splitlines() if " method=REPAIR " in l]
    assert len(rep) == 1 and f"cut%20{len(torn)}%20bytes" in rep[0], rep
    nitrod.stop()
    v = verify("--state", nitrod.state, "--strict")
    assert v.returncode == 0, v.stderr


# --- item 6: bounded growth ---

def test_a_thousand_refused_calls_make_a_bounded_number_of_lines(folder):
    d = Nitrod(folder, extra=["--allow-uid", "4242"]).start()
    try:
        before = len(d.audit_lines())
        t0 = time.time()

        def flood():
            return " ".join(str(d.call("GET", "/v1/instances").status) for _ in range(1000))
        out = as_uid(4243, flood)
        secs = time.time() - t0
        assert out.split() == ["403"] * 1000, out[:200]
        refused = [l for l in d.audit_lines()[before:] if "uid=4243" in l]
        # One line per second at most (plus one for the first second).
        assert 1 <= len(refused) <= int(secs) + 2, (len(refused), secs)
        time.sleep(1.1)
        as_uid(4243, lambda: str(d.call("GET", "/v1/instances").status))
        last = [l for l in d.audit_lines() if "uid=4243" in l][-1]
        m = re.search(r"\((\d+)%20more%20refusals%20not%20logged\)", last)
        assert m, last
        assert len(refused) - 1 + int(m.group(1)) + 1 == 1000, (len(refused), m.group(1))
    finally:
        d.stop()


def test_volume_larger_than_free_space_needs_overcommit(folder):
    fs = SmallFS(folder / "state", "8m")
    d = Nitrod(folder, wrap=fs.wrap)
    try:
        d.start()
        r = d.call("POST", "/v1/volumes", {"size_mib": 64, "encrypted": False})
        assert r.status == 507 and "overcommit" in r.json()["error"], r
        assert d.call("GET", "/v1/volumes").json()["volumes"] == []
        r = d.call("POST", "/v1/volumes", {"size_mib": 64, "encrypted": False, "overcommit": True})
        assert r.status == 201, r
        # What that volume may still take is promised: a second, small one is refused too.
        r = d.call("POST", "/v1/volumes", {"size_mib": 2, "encrypted": False})
        assert r.status == 507, r
        r = d.call("POST", "/v1/volumes", {"size_mib": 1, "overcommit": "yes"})
        assert r.status == 400, r
    finally:
        d.stop()
        fs.close()


# --- item 15: the chain anchored by the chip ---

def chain_hash(prev, body):
    return hashlib.sha256(prev.encode() + b"\n" + body.encode()).hexdigest()


def rechain(lines, fix_anchors=False):
    """Recomputes every prev/hash (what a forger with write access does)."""
    out, prev, n = [], "0" * 64, 0
    for l in lines:
        body = l[:l.rindex(" prev=")]
        if fix_anchors and " method=ANCHOR " in body:
            body = re.sub(r"detail=seq=\d+,head=[0-9a-f]{64}", f"detail=seq={n},head={prev}", body)
        h = chain_hash(prev, body)
        out.append(f"{body} prev={prev} hash={h}")
        prev, n = h, n + 1
    return out


def test_rewritten_audit_log_is_refused_with_the_chip_key(nitrod, bad_kernel):
    for _ in range(3):
        assert nitrod.call("POST", "/v1/volumes", {"size_mib": 1, "encrypted": False}).status == 201
    nitrod.stop()
    log = nitrod.state / "audit.log"
    lines = log.read_text().splitlines()
    assert any(" method=ANCHOR " in l for l in lines) and " method=ANCHOR " in lines[-1]
    v = verify("--state", nitrod.state, "--strict")
    assert v.returncode == 0 and "0 lines after" not in v.stdout, v
    # The public key alone (as GET /v1/host/attestation gives it) does the same.
    nitrod.start()
    pem = nitrod.call("GET", "/v1/host/attestation").json()["public_key"]
    nitrod.stop()
    key = nitrod.folder / "attest.pub.pem"
    key.write_text(pem)
    assert verify("--key", key, log).returncode == 0

    i = next(k for k, l in enumerate(lines) if "method=POST" in l and "status=201" in l)
    forged = list(lines)
    forged[i] = forged[i].replace("uid=0 ", "uid=4242 ", 1)
    # 1. Every hash recomputed, anchors kept: their heads no longer match.
    log.write_text("\n".join(rechain(forged)) + "\n")
    assert verify(log).returncode == 1
    # 2. Anchors rewritten to the new heads: the chain alone verifies, the signatures not.
    log.write_text("\n".join(rechain(forged, fix_anchors=True)) + "\n")
    assert verify(log).returncode == 0
    v = verify("--state", nitrod.state, log)
    assert v.returncode == 1 and "signature does not verify" in v.stderr, v
    # 3. Anchors dropped: nothing is signed any more.
    log.write_text("\n".join(rechain([l for l in forged if " method=ANCHOR " not in l])) + "\n")
    v = verify("--key", key, log)
    assert v.returncode == 1 and "no line carries a signed head" in v.stderr, v


def test_lines_after_the_last_signed_head_are_reported(nitrod):
    nitrod.call("POST", "/v1/volumes", {"size_mib": 1, "encrypted": False})
    nitrod.stop()
    log = nitrod.state / "audit.log"
    lines = log.read_text().splitlines()
    # Cut the shutdown anchor (and what is after it): the lines since the anchor before
    # are now unanchored, and said so.
    last = max(k for k, l in enumerate(lines) if " method=ANCHOR " in l)
    log.write_text("\n".join(lines[:last]) + "\n")
    v = verify("--state", nitrod.state)
    assert v.returncode == 0 and "unanchored" in v.stdout, v
    assert verify("--state", nitrod.state, "--strict").returncode == 1
