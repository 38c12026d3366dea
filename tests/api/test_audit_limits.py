"""Issue 10 items 6 and 15: what a full disk, a torn audit line, a flood of refused calls,
a huge volume, a chatty console and a rewritten audit log did to nitrod, each performed.

The small-disk tests put nitrod's state folder on a tmpfs of a few MiB mounted in a private
mount namespace (a holder process keeps it; nitrod runs in it through nsenter, the test
fills it through /proc/HOLDER/root), so nothing is left mounted when a test ends.
"""
import base64
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


# --- item 6: a call whose audit line cannot be made durable changes nothing ---

FAULT = BUILD / "tests" / "api" / "audit-fault.so"


def faulty_nitrod(folder):
    """nitrod with the test-only shim (tests/api/audit_fault.c): while the control file
    holds "write N" / "sync N", the audit log's writes / fdatasyncs after the first N fail
    with EIO, as a failing disk answers."""
    assert FAULT.exists(), "build first: make build/tests/api/audit-fault.so"
    ctl = folder / "audit-fault"
    return Nitrod(folder, wrap=["env", f"LD_PRELOAD={FAULT}", f"NITRO_TEST_AUDIT_FAULT={ctl}"]), ctl


def volume_files(d):
    return sorted(p.name for p in (d.state / "volumes").iterdir())


@pytest.mark.parametrize("kind", ["write", "sync"])
def test_a_call_whose_audit_line_cannot_be_made_durable_changes_nothing(folder, kind):
    d, ctl = faulty_nitrod(folder)
    try:
        d.start()
        r = d.call("POST", "/v1/volumes", {"size_mib": 1, "encrypted": False})
        assert r.status == 201, r
        vol = r.json()["id"]
        files = volume_files(d)
        # The disk under audit.log now fails every write (or every fdatasync): the delete
        # and a create are refused with 503 and neither is done.
        ctl.write_text(f"{kind} 0")
        deleted = d.call("DELETE", f"/v1/volumes/{vol}")
        created = d.call("POST", "/v1/volumes", {"size_mib": 1, "encrypted": False})
        ctl.unlink()
        r = d.call("GET", f"/v1/volumes/{vol}")
        assert r.status == 200, r
        assert [v["id"] for v in d.call("GET", "/v1/volumes").json()["volumes"]] == [vol]
        assert volume_files(d) == files
        for r in (deleted, created):
            assert r.status == 503 and "nothing was done" in r.json()["error"], r
        d.stop()
        # Nor after a restart (memory, database and files agree), and the log verifies.
        d.start()
        assert [v["id"] for v in d.call("GET", "/v1/volumes").json()["volumes"]] == [vol]
        d.stop()
        lines = (d.state / "audit.log").read_text().splitlines()
        assert not [l for l in lines if f"method=DELETE route=/v1/volumes/{vol} status=200 " in l]
        v = verify("--state", d.state, "--strict")
        assert v.returncode == 0, v.stderr
    finally:
        d.stop()


def test_the_intent_line_is_durable_before_the_call_acts(folder):
    """When only the outcome line fails (the intent line went through), the call's effect
    stands, and the log says who asked for it: its intent line (uid, method, canonical
    route, the body's digest) is there, made durable before the call acted."""
    d, ctl = faulty_nitrod(folder)
    try:
        d.start()
        vol = d.call("POST", "/v1/volumes", {"size_mib": 1, "encrypted": False}).json()["id"]
        ctl.write_text("write 1")
        r = d.call("DELETE", f"/v1/volumes//{vol}")
        assert r.status == 503 and "its effect may stand" in r.json()["error"], r
        ctl.unlink()
        assert d.call("GET", f"/v1/volumes/{vol}").status == 404
        d.stop()
        lines = (d.state / "audit.log").read_text().splitlines()
        intent = [l for l in lines if f"method=DELETE route=/v1/volumes/{vol} status=0 " in l]
        empty = hashlib.sha256(b"").hexdigest()
        assert len(intent) == 1 and f"detail=intent,body=0,sha256={empty} " in intent[0], lines
        assert f" uid={os.geteuid()} " in intent[0]
        assert verify("--state", d.state, "--strict").returncode == 0
    finally:
        d.stop()


def test_every_state_changing_call_has_an_intent_line_then_its_outcome(nitrod):
    body = {"size_mib": 1, "encrypted": False}
    r = nitrod.call("POST", "/v1/volumes", body)
    assert r.status == 201, r
    nitrod.call("GET", "/v1/volumes")
    nitrod.stop()
    lines = [l for l in (nitrod.state / "audit.log").read_text().splitlines()
             if "route=/v1/volumes " in l]
    assert [re.search(r"method=(\S+) .* status=(\d+) ", l).groups() for l in lines] == \
        [("GET", "200"), ("POST", "0"), ("POST", "201"), ("GET", "200")], lines  # GET: the fixture's


# --- item 15: an off-host witness of the signed head ---

def test_a_log_cut_back_to_an_earlier_anchor_is_refused_with_the_witnessed_head(nitrod):
    for _ in range(2):
        assert nitrod.call("POST", "/v1/volumes", {"size_mib": 1, "encrypted": False}).status == 201
    early = nitrod.call("GET", "/v1/host/audit-head")
    assert early.status == 200, early
    for _ in range(3):
        assert nitrod.call("POST", "/v1/volumes", {"size_mib": 1, "encrypted": False}).status == 201
    # The witness keeps the latest signed head, off the host.
    head = nitrod.call("GET", "/v1/host/audit-head").json()
    log = nitrod.state / "audit.log"
    lines = log.read_text().splitlines()
    assert head["seq"] > early.json()["seq"]
    assert f"detail={head['witness']} " in lines[head["seq"]] and " method=ANCHOR " in lines[head["seq"]]
    assert chain_hash(lines[head["seq"] - 1].split(" prev=")[1][:64],
                      lines[head["seq"] - 1][:lines[head["seq"] - 1].rindex(" prev=")]) == head["head"]
    nitrod.stop()
    assert verify("--state", nitrod.state, "--head", head["witness"]).returncode == 0

    # A host root cuts the log back to the earlier anchor: every signature is still good
    # and the cut log verifies on its own, but not against the witnessed head.
    e = early.json()["seq"]
    log.write_text("\n".join(lines[:e + 1]) + "\n")
    assert verify("--state", nitrod.state, "--strict").returncode == 0
    v = verify("--state", nitrod.state, "--head", head["witness"])
    assert v.returncode == 1 and "cut back" in v.stderr, v
    # Cutting only the lines after the witnessed anchor is seen as unanchored at most.
    log.write_text("\n".join(lines[:head["seq"] + 1]) + "\n")
    assert verify("--state", nitrod.state, "--head", head["witness"]).returncode == 0
    # Cutting the witnessed anchor itself (the head's line stays) is refused.
    log.write_text("\n".join(lines[:head["seq"]]) + "\n")
    v = verify("--state", nitrod.state, "--head", head["witness"])
    assert v.returncode == 1 and "cut back" in v.stderr, v


def test_a_rewritten_and_re_signed_log_is_refused_with_the_witnessed_head(nitrod):
    """A host root holding the chip's key file rewrites a line and signs every anchor
    again: the key verifies it, only the head the witness recorded does not."""
    assert nitrod.call("POST", "/v1/volumes", {"size_mib": 1, "encrypted": False}).status == 201
    head = nitrod.call("GET", "/v1/host/audit-head").json()
    nitrod.stop()
    log = nitrod.state / "audit.log"
    lines = log.read_text().splitlines()
    key = nitrod.state / "chip" / "attestation-key.pem"
    i = next(k for k, l in enumerate(lines) if "method=POST" in l and "status=201" in l)
    forged = list(lines)
    forged[i] = forged[i].replace(f"uid={os.geteuid()} ", "uid=4242 ", 1)
    out, prev = [], "0" * 64
    for n, l in enumerate(forged):
        body = l[:l.rindex(" prev=")]
        if " method=ANCHOR " in body:
            msg = nitrod.folder / "anchor.txt"
            msg.write_text(f"nitro-audit-head-v1\nseq={n}\nhead={prev}\n")
            sig = subprocess.run(["openssl", "pkeyutl", "-sign", "-inkey", str(key), "-rawin",
                                  "-in", str(msg)], capture_output=True, check=True).stdout

            body = re.sub(r"detail=seq=\d+,head=[0-9a-f]{64},sig=\S+",
                          f"detail=seq={n},head={prev},sig={base64.b64encode(sig).decode()}", body)
        h = chain_hash(prev, body)
        out.append(f"{body} prev={prev} hash={h}")
        prev = h
    log.write_text("\n".join(out) + "\n")
    assert verify("--state", nitrod.state, "--strict").returncode == 0  # re-signed: passes
    v = verify("--state", nitrod.state, "--head", head["witness"])
    assert v.returncode == 1 and "witnessed" in v.stderr, v
    # Seq and head alone (no signature kept) catch it too.
    v = verify("--head", f"seq={head['seq']},head={head['head']}", log)
    assert v.returncode == 1 and "witnessed head" in v.stderr, v


def test_a_witnessed_head_past_every_line_number_is_refused(folder):
    """A witness's seq whose next line wraps (ULONG_MAX, or "-1" as strtoul reads it)
    matched no line and passed the "cut back" check: nitro-audit-verify then said any log
    "holds the witnessed head" of a head it never had."""
    log = folder / "a.log"
    for _ in range(2):
        assert verify("--append", log, 0, "POST", "/v1/x", 201).returncode == 0
    fake = "a" * 64
    v = verify("--head", f"seq=18446744073709551615,head={fake}", log)
    assert v.returncode == 1 and "is no line of an audit log" in v.stderr, v
    for seq in ("-1", "+2", "0"):
        v = verify("--head", f"seq={seq},head={fake}", log)
        assert v.returncode == 2 and "--head" in v.stderr, (seq, v)


def test_audit_head_is_for_admins_only(folder):
    d = Nitrod(folder, extra=["--allow-uid", "4243", "--admin-uid", "4244"]).start()
    try:
        def get():
            r = d.call("GET", "/v1/host/audit-head")
            return [r.status, r.body]
        status, body = as_uid(4243, get)
        assert status == 403 and "admin" in body, (status, body)
        status, body = as_uid(4244, get)
        assert status == 200 and "witness" in body, (status, body)
        assert d.call("POST", "/v1/host/audit-head").status == 405
    finally:
        d.stop()
