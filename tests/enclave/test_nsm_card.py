"""nitro-card-nsm's connections, without a guest (no KVM needed): the chain it gets on
--chain-fd, the ENW_HELLO every enclave connection starts with (the spawner's: accepted, or
answered with an errno and closed) and the ENW_PCRS that follows (the enclave nitro-hv's:
once, never a new identity), a CID held by one connection refused to another, several
enclaves at once, and a connection that became a vhost-user device (GET_FEATURES:
VIRTIO_F_VERSION_1).
The card must survive every refused peer. The request path itself is tested in
tests/unit/nsm (hostile rings) and with the stock driver in tests/system/test_nsm.py."""
import errno
import fcntl
import mmap
import os
import select
import pathlib
import signal
import socket
import struct
import subprocess
import sys
import time

import cbor2
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "pylib"))
from nitrotest import BUILD, run  # noqa: E402

CARD = str(BUILD / "nitro-card-nsm")
ENW_HELLO = 0x4E45
ENW_PCRS = 0x4E46
VU_GET_FEATURES = 1
VU_SET_OWNER = 3
VERSION, REPLY = 0x1, 0x4


def hello(cid=16, flags=0, version=2, module_id=None, size=None, pcr=None):
    """The spawner's ENW_HELLO; pcr: {index: 48 bytes} (PCR4 only, in a good one)."""
    mid = (module_id if module_id is not None else f"i-0123456789abcdef0-enc{cid:016x}").encode()
    pcrs = bytearray(16 * 48)
    for i, v in (pcr or {}).items():
        pcrs[48 * i:48 * i + 48] = v
    body = struct.pack("<IIQQ", version, flags, cid, 7) + bytes(pcrs) + mid.ljust(64, b"\0")[:64]
    assert len(body) == 856
    body = body if size is None else body[:size]
    return struct.pack("<III", ENW_HELLO, VERSION, len(body)) + body


def pcrs(p0=bytes(48), p1=bytes(48), p2=bytes(48), p8=bytes(48), version=2, flags=0):
    """The enclave nitro-hv's ENW_PCRS: PCR0, 1, 2 and 8 of its image."""
    body = struct.pack("<II", version, flags) + p0 + p1 + p2 + p8
    assert len(body) == 200
    return struct.pack("<III", ENW_PCRS, VERSION, len(body)) + body


def recv_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            return None
        b += c
    return b


def status(s, want=ENW_HELLO):
    """The card's answer to a hello (or to ENW_PCRS): its u64 status, or None when it closed
    without one."""
    try:
        h = recv_exact(s, 12)
    except ConnectionResetError:  # closed with our bytes unread
        return None
    if h is None:
        return None
    req, flags, size = struct.unpack("<III", h)
    assert (req, flags & REPLY, size) == (want, REPLY, 8)
    return struct.unpack("<Q", recv_exact(s, 8))[0]


def closed(s):
    s.settimeout(5)
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True


@pytest.fixture
def card(tmp_path):
    state = tmp_path / "state"
    rc, root, err = run([str(BUILD / "nitro"), "enclave", "root-cert", "--state", str(state)],
                        timeout=60)
    assert rc == 0, err
    pem = b"".join((state / n).read_bytes() for n in
                   ("enclave-host-key.pem", "enclave-host.pem", "enclave-root.pem"))
    r, w = os.pipe()
    os.write(w, pem)
    os.close(w)
    sock = str(tmp_path / "nsm.sock")
    log = open(tmp_path / "card.log", "w+")
    p = subprocess.Popen([CARD, "--socket-path", sock, "--chain-fd", str(r)], pass_fds=(r,),
                         stdout=log, stderr=subprocess.STDOUT)
    os.close(r)
    deadline = time.monotonic() + 20
    while not os.path.exists(sock):
        assert p.poll() is None and time.monotonic() < deadline, open(log.name).read()
        time.sleep(0.02)

    def connect():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(20)
        s.connect(sock)
        return s

    yield {"proc": p, "connect": connect, "log": log.name}
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=20) == 0
    assert not os.path.exists(sock)


def test_hello_then_vhost_user(card):
    a = card["connect"]()
    a.sendall(hello(16))
    assert status(a) == 0
    a.sendall(pcrs())
    assert status(a, ENW_PCRS) == 0
    a.sendall(struct.pack("<III", VU_GET_FEATURES, VERSION, 0))
    req, flags, size = struct.unpack("<III", recv_exact(a, 12))
    feats = struct.unpack("<Q", recv_exact(a, size))[0]
    assert (req, flags & REPLY) == (VU_GET_FEATURES, REPLY)
    assert feats & (1 << 32)  # VIRTIO_F_VERSION_1
    # a second enclave at the same time, in debug mode
    b = card["connect"]()
    b.sendall(hello(17, flags=1))
    assert status(b) == 0
    b.sendall(pcrs())
    assert status(b, ENW_PCRS) == 0
    # the CID the first one holds is refused to anyone else
    c = card["connect"]()
    c.sendall(hello(16))
    assert status(c) == errno.EADDRINUSE and closed(c)
    a.close()
    time.sleep(0.5)
    d = card["connect"]()  # ... and free again once it left
    d.sendall(hello(16))
    assert status(d) == 0
    log = open(card["log"]).read()
    assert "enclave CID 17 (i-0123456789abcdef0-enc0000000000000011, debug mode) connected" in log


@pytest.mark.parametrize("msg,want", [
    (hello(3), errno.EINVAL),             # the parent's CID
    (hello(2), errno.EINVAL),
    (hello(0xFFFFFFFF), errno.EINVAL),
    (hello(1 << 32), errno.EINVAL),
    (hello(16, flags=2), errno.EINVAL),
    (hello(16, version=1), errno.EPROTONOSUPPORT),  # v1: PCRs in the hello, by the enclave
    (hello(16, version=3), errno.EPROTONOSUPPORT),
    (hello(16, pcr={0: b"\x01" * 48}), errno.EINVAL),  # the EIF's PCRs come by ENW_PCRS
    (hello(16, pcr={8: b"\x01" * 48}), errno.EINVAL),
    (pcrs(), errno.EPROTO),  # the PCRs without a hello
    (hello(16, module_id=""), errno.EINVAL),
    (hello(16, module_id="a b"), errno.EINVAL),
    (hello(16, module_id="x" * 64), errno.EINVAL),  # no NUL
    (hello(16, size=855), errno.EPROTO),
    (struct.pack("<III", VU_SET_OWNER, VERSION, 0), errno.EPROTO),  # vhost-user without hello
    (hello(16)[:4] + struct.pack("<I", VERSION | REPLY) + hello(16)[8:], errno.EPROTO),
])
def test_bad_hello_refused(card, msg, want):
    s = card["connect"]()
    s.sendall(msg)
    assert status(s) == want
    assert closed(s)
    ok = card["connect"]()  # the card goes on
    ok.sendall(hello(20))
    assert status(ok) == 0


@pytest.mark.parametrize("msg", [
    b"\x45\x4e\x00",  # truncated header, then the peer leaves
    b"",  # connects and leaves
])
def test_unframed_peer_dropped(card, msg):
    s = card["connect"]()
    s.sendall(msg)
    s.shutdown(socket.SHUT_WR)
    assert status(s) is None
    ok = card["connect"]()
    ok.sendall(hello(21))
    assert status(ok) == 0


def test_silent_peer_does_not_block_others(card):
    quiet = card["connect"]()  # never says hello
    quiet.sendall(b"\x45")  # half a header: closed at the card's 2 s hello deadline
    time.sleep(0.1)
    ok = card["connect"]()
    t = time.monotonic()
    ok.sendall(hello(22))
    assert status(ok) == 0
    # answered at once: the card never waits on one peer's bytes (it used to block in the
    # quiet peer's read for its whole hello timeout)
    assert time.monotonic() - t < 1.0
    assert closed(quiet)


def test_silent_connections_do_not_lock_enclaves_out(card):
    """A peer (a compromised enclave nitro-hv) fills the card's 64 connections with sockets
    that never send a byte: they are never readable, so no hello timeout ends them. An
    enclave connecting after that still gets its NSM: the oldest silent one makes room."""
    def connect_when_backlog_allows():
        for _ in range(500):
            try:
                return card["connect"]()
            except BlockingIOError:  # the listen backlog is small: the card accepts on
                time.sleep(0.01)     # its loop
        raise AssertionError("the card stopped accepting connections")

    silent = [connect_when_backlog_allows() for _ in range(70)]
    time.sleep(0.5)  # all accepted
    ok = card["connect"]()
    ok.sendall(hello(23))
    assert status(ok) == 0
    again = card["connect"]()  # and the next one too
    again.sendall(hello(24))
    assert status(again) == 0
    assert closed(silent[0])
    for s in silent:
        s.close()


class Front:
    """A vhost-user frontend in Python, as nitro-hv drives a card: the hello, features,
    a sealed memfd as guest memory, one queue; requests posted as the Linux driver posts
    them (a request chain and a reply chain of 0x3000 bytes)."""
    MEM = 1 << 20
    UVA = 0x7F0000000000
    DESC, AVAIL, USED, REQ, RESP = 0x0, 0x1000, 0x2000, 0x4000, 0x8000
    QSZ = 16

    def __init__(self, sock, cid, module_id=None, pcr4=bytes(48), eif_pcrs=()):
        self.s = sock
        sock.sendall(hello(cid, module_id=module_id, pcr={4: pcr4}))
        assert status(sock) == 0
        sock.sendall(pcrs(*eif_pcrs))
        assert status(sock, ENW_PCRS) == 0
        self.msg(3)  # SET_OWNER
        self.msg(1)
        feats = self.reply_u64(1)
        assert feats & (1 << 32) and feats & (1 << 30)
        self.msg(2, struct.pack("<Q", (1 << 32) | (1 << 30)))
        self.msg(15)
        proto = self.reply_u64(15)
        self.msg(16, struct.pack("<Q", proto & (1 << 3)))  # REPLY_ACK
        self.fd = os.memfd_create("guest", os.MFD_ALLOW_SEALING)
        os.ftruncate(self.fd, self.MEM)
        fcntl.fcntl(self.fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK)
        self.mem = mmap.mmap(self.fd, self.MEM)
        self.acked(5, struct.pack("<II4Q", 1, 0, 0, self.MEM, self.UVA, 0), [self.fd])
        self.acked(8, struct.pack("<II", 0, self.QSZ))
        self.acked(9, struct.pack("<II4Q", 0, 0, self.UVA + self.DESC, self.UVA + self.USED,
                                  self.UVA + self.AVAIL, 0))
        self.acked(10, struct.pack("<II", 0, 0))
        self.kick, self.call, self.err = (os.eventfd(0, os.EFD_NONBLOCK) for _ in range(3))
        self.acked(14, struct.pack("<Q", 0), [self.err])
        self.acked(13, struct.pack("<Q", 0), [self.call])
        self.acked(12, struct.pack("<Q", 0), [self.kick])
        self.acked(18, struct.pack("<II", 0, 1))
        self.avail = self.next = 0

    def msg(self, req, payload=b"", fds=(), flags=VERSION):
        data = struct.pack("<III", req, flags, len(payload)) + payload
        if fds:
            socket.send_fds(self.s, [data], list(fds))
        else:
            self.s.sendall(data)

    def reply_u64(self, req):
        r, f, n = struct.unpack("<III", recv_exact(self.s, 12))
        assert (r, f & REPLY, n) == (req, REPLY, 8)
        return struct.unpack("<Q", recv_exact(self.s, 8))[0]

    def acked(self, req, payload=b"", fds=()):
        self.msg(req, payload, fds, VERSION | 0x8)
        assert self.reply_u64(req) == 0

    def desc(self, addr, ln, write):
        i = self.next % self.QSZ
        self.next += 1
        struct.pack_into("<QIHH", self.mem, self.DESC + 16 * i, addr, ln, 2 if write else 0, 0)
        return i

    def post(self, head):
        struct.pack_into("<H", self.mem, self.AVAIL + 4 + 2 * (self.avail % self.QSZ), head)
        self.avail += 1
        struct.pack_into("<H", self.mem, self.AVAIL + 2, self.avail & 0xFFFF)

    def request(self, req):
        """The reply bytes, after the card handed back the request chain first."""
        used0 = struct.unpack_from("<H", self.mem, self.USED + 2)[0]
        self.mem[self.REQ:self.REQ + len(req)] = req
        rh = self.desc(self.REQ, len(req), False)
        wh = self.desc(self.RESP, 0x3000, True)
        self.post(rh)
        self.post(wh)
        os.eventfd_write(self.kick, 1)
        deadline = time.monotonic() + 20
        while struct.unpack_from("<H", self.mem, self.USED + 2)[0] != (used0 + 2) & 0xFFFF:
            assert time.monotonic() < deadline, "no answer"
            select.select([self.call], [], [], 0.5)
        e0 = struct.unpack_from("<II", self.mem, self.USED + 4 + 8 * (used0 % self.QSZ))
        e1 = struct.unpack_from("<II", self.mem, self.USED + 4 + 8 * ((used0 + 1) % self.QSZ))
        assert e0 == (rh, 0) and e1[0] == wh
        return bytes(self.mem[self.RESP:self.RESP + e1[1]])


def test_identity_cannot_change_after_the_hello(card):
    """The attacks of a compromised enclave nitro-hv on the connection its spawner opened
    and identified: another hello (a new CID) where its PCRs belong, bad PCRs, a second
    hello or a second ENW_PCRS once it is a device. Each ends that connection; the CID it
    tried to claim was never held, and its own is free again once it is gone."""
    # another hello instead of the PCRs: EPROTO, closed
    a = card["connect"]()
    a.sendall(hello(40))
    assert status(a) == 0
    a.sendall(hello(41))
    assert status(a, ENW_PCRS) == errno.EPROTO and closed(a)
    # PCRs of another version or with flags
    for bad, want in ((pcrs(version=3), errno.EPROTONOSUPPORT),
                      (pcrs(flags=1), errno.EINVAL)):
        b = card["connect"]()
        b.sendall(hello(42))
        assert status(b) == 0
        b.sendall(bad)
        assert status(b, ENW_PCRS) == want and closed(b)
    # a device that sends a second hello, or a second ENW_PCRS: not vhost-user, dropped
    for again in (hello(43), pcrs(b"\x02" * 48)):
        f = Front(card["connect"](), 44, eif_pcrs=(b"\x01" * 48,))
        f.s.sendall(again)
        assert closed(f.s)
        f.s.close()
    time.sleep(0.3)
    # nothing was claimed: 40, 41, 43 and 44 are free; the card still serves
    for cid in (40, 41, 43, 44):
        s = card["connect"]()
        s.sendall(hello(cid))
        assert status(s) == 0, cid
        s.close()
    assert card["proc"].poll() is None


def test_pcrs_from_both_messages(card):
    """The document's PCRs: 0, 1, 2 and 8 from ENW_PCRS, 4 from the spawner's hello."""
    p = [bytes([i + 1]) * 48 for i in range(4)]
    p4 = b"\x44" * 48
    a = Front(card["connect"](), 50, pcr4=p4, eif_pcrs=p)
    doc = cbor2.loads(a.request(cbor2.dumps({"Attestation": {}})))
    got = cbor2.loads(cbor2.loads(doc["Attestation"]["document"])[2])["pcrs"]
    assert (got[0], got[1], got[2], got[8], got[4]) == (p[0], p[1], p[2], p[3], p4)
    assert got[3] == bytes(48)


def test_requests_through_vhost_user(card):
    """The whole path under the card's seccomp list: memory table, rings, kicks, replies;
    two enclaves, each with its own PCRs and module id."""
    a = Front(card["connect"](), 16)
    b = Front(card["connect"](), 17)
    r = a.request(b"\x69GetRandom")
    # byte for byte what the driver's hwrng parser compares, then bstr(256)
    assert r[:22] == b"\xa1\x69GetRandom\xa1\x66random\x59\x01\x00" and len(r) == 22 + 256
    ext = cbor2.loads(a.request(cbor2.dumps({"ExtendPCR": {"index": 16, "data": b"x"}})))
    assert len(ext["ExtendPCR"]["data"]) == 48
    d = cbor2.loads(b.request(cbor2.dumps({"DescribePCR": {"index": 16}})))
    assert d == {"DescribePCR": {"lock": False, "data": bytes(48)}}  # b's own PCRs
    doc = cbor2.loads(b.request(cbor2.dumps({"Attestation": {"nonce": b"n"}})))
    payload = cbor2.loads(cbor2.loads(doc["Attestation"]["document"])[2])
    assert payload["module_id"] == "i-0123456789abcdef0-enc0000000000000011"
    assert payload["nonce"] == b"n"
    assert card["proc"].poll() is None


def test_bad_chain_refused(tmp_path):
    for data in (b"", b"not pem at all", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"):
        r, w = os.pipe()
        os.write(w, data)
        os.close(w)
        p = subprocess.run([CARD, "--socket-path", str(tmp_path / "s"), "--chain-fd", str(r)],
                           pass_fds=(r,), capture_output=True, text=True, timeout=30)
        os.close(r)
        assert p.returncode == 1 and "--chain-fd" in p.stderr, p.stderr
        assert not (tmp_path / "s").exists()


def _err(raw):
    return cbor2.loads(raw).get("Error") if raw else None


def test_hostile_enclave_requests(card):
    """A hostile enclave kernel against the card: malformed CBOR, requests at and over
    0x1000 bytes, the boot PCRs, LockPCRs ranges, attestation fields at and over their
    limits, a reply chain the card may not write, request and reply aliasing in one chain;
    the card answers each cleanly and the other enclave's NSM is untouched."""
    a = Front(card["connect"](), 30)
    b = Front(card["connect"](), 31)
    b_before = cbor2.loads(b.request(cbor2.dumps({"DescribePCR": {"index": 16}})))
    bad = [
        b"\x81" * 2000 + b"\x00",                       # arrays 2000 deep
        b"\xbf\x69GetRandom\xf6\xff",                   # indefinite map
        b"\x5b\xff\xff\xff\xff\xff\xff\xff\xff",       # bstr of 2^64-1 bytes
        b"\x9b\x00\x00\x00\x01\x00\x00\x00\x00",       # array of 2^32 items
        b"\xc1\x69GetRandom",                           # a tag
        b"\xfb\x3f\xf0\x00\x00\x00\x00\x00\x00",       # a float
        b"\x69GetRandom\x00",                           # two items
        b"\xff",                                        # a lone break
    ]
    for req in bad:
        assert _err(a.request(req)) == "InvalidOperation", req[:12]
    dup = b"\xa1\x69ExtendPCR\xa2\x65index\x10\x65index\x10"
    assert _err(a.request(dup)) == "InvalidArgument"
    floaty = cbor2.dumps({"ExtendPCR": {"index": 16, "data": 1.5}})
    assert _err(a.request(floaty)) == "InvalidArgument"
    # exactly 0x1000 bytes is a request; 0x1001 is too large
    def extend(n):
        base = len(cbor2.dumps({"ExtendPCR": {"index": 17, "data": b""}}))
        for k in range(n - base, n - base - 10, -1):
            r = cbor2.dumps({"ExtendPCR": {"index": 17, "data": b"x" * k}})
            if len(r) == n:
                return r
        raise AssertionError(n)
    assert "ExtendPCR" in cbor2.loads(a.request(extend(0x1000)))
    assert _err(a.request(extend(0x1001))) == "InputTooLarge"
    # the boot PCRs cannot change, a lock cannot be undone, ranges past 32 are refused
    for i in range(16):
        assert _err(a.request(cbor2.dumps({"ExtendPCR": {"index": i, "data": b"x"}}))) == \
            "ReadOnlyIndex"
    assert _err(a.request(cbor2.dumps({"LockPCRs": {"range": 33}}))) == "InvalidIndex"
    assert _err(a.request(cbor2.dumps({"DescribePCR": {"index": 32}}))) == "InvalidIndex"
    assert _err(a.request(cbor2.dumps({"LockPCRs": {"range": 65535}}))) == "InvalidIndex"
    assert _err(a.request(cbor2.dumps({"LockPCRs": {"range": 65536}}))) == "InvalidArgument"
    assert cbor2.loads(a.request(cbor2.dumps({"LockPCRs": {"range": 32}}))) == "LockPCRs"
    assert _err(a.request(cbor2.dumps({"ExtendPCR": {"index": 31, "data": b"x"}}))) == \
        "ReadOnlyIndex"
    # the largest document: 32 locked PCRs, every field at its limit, fits 0x3000
    big = {"user_data": b"u" * 512, "nonce": b"n" * 512, "public_key": b"k" * 1024}
    raw = a.request(cbor2.dumps({"Attestation": big}))
    assert len(raw) <= 0x3000
    p = cbor2.loads(cbor2.loads(cbor2.loads(raw)["Attestation"]["document"])[2])
    assert sorted(p["pcrs"]) == list(range(32))
    assert (p["user_data"], p["nonce"], p["public_key"]) == \
        (big["user_data"], big["nonce"], big["public_key"])
    for k, n in (("user_data", 513), ("nonce", 513), ("public_key", 1025)):
        assert _err(a.request(cbor2.dumps({"Attestation": {k: b"x" * n}}))) == \
            "InputTooLarge"
    # a reply chain the card may not write: it is a second request, the first is handed
    # back unanswered and the read-only one waits for its reply chain
    a.mem[a.REQ:a.REQ + 10] = b"\x69GetRandom"
    used0 = struct.unpack_from("<H", a.mem, a.USED + 2)[0]
    rh = a.desc(a.REQ, 10, False)
    ro = a.desc(a.RESP, 0x3000, False)
    a.post(rh)
    a.post(ro)
    os.eventfd_write(a.kick, 1)
    deadline = time.monotonic() + 20
    while struct.unpack_from("<H", a.mem, a.USED + 2)[0] != (used0 + 1) & 0xFFFF:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert struct.unpack_from("<II", a.mem, a.USED + 4 + 8 * (used0 % a.QSZ)) == (rh, 0)
    wh = a.desc(a.RESP, 0x3000, True)
    a.post(wh)
    os.eventfd_write(a.kick, 1)
    while struct.unpack_from("<H", a.mem, a.USED + 2)[0] != (used0 + 3) & 0xFFFF:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    # request and reply buffer on the same bytes, in one chain: copied out first
    a.mem[a.REQ:a.REQ + 10] = b"\x69GetRandom"
    used0 = struct.unpack_from("<H", a.mem, a.USED + 2)[0]
    h0 = a.next % a.QSZ
    h1 = (a.next + 1) % a.QSZ
    a.next += 2
    struct.pack_into("<QIHH", a.mem, a.DESC + 16 * h0, a.REQ, 10, 1, h1)  # NEXT
    struct.pack_into("<QIHH", a.mem, a.DESC + 16 * h1, a.REQ, 0x3000, 2, 0)  # WRITE
    a.post(h0)
    os.eventfd_write(a.kick, 1)
    while struct.unpack_from("<H", a.mem, a.USED + 2)[0] != (used0 + 1) & 0xFFFF:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    n = struct.unpack_from("<II", a.mem, a.USED + 4 + 8 * (used0 % a.QSZ))[1]
    assert bytes(a.mem[a.REQ:a.REQ + 19]) == b"\xa1\x69GetRandom\xa1\x66random" and \
        n == 22 + 256
    # b saw none of it
    assert cbor2.loads(b.request(cbor2.dumps({"DescribePCR": {"index": 16}}))) == b_before
    assert cbor2.loads(b.request(cbor2.dumps({"DescribePCR": {"index": 17}})))[
        "DescribePCR"]["lock"] is False
    assert card["proc"].poll() is None


@pytest.mark.parametrize("mid,want", [
    ("i-x,CN=AWS-Nitro-root/O=Amazon+OU=evil\\,C=US;L=\"q\"#x", 0),  # 52 printable
    ("a" * 63, 0),                  # the longest: 63 bytes and the NUL
    ("a" * 64, errno.EINVAL),       # no NUL in the 64 bytes
    ("i-x\nCN=evil", errno.EINVAL), # not printable
    ("i-x\x00CN=evil", 0),          # the NUL ends it: "i-x"
    ("caf\u00e9", errno.EINVAL),     # not ASCII
    (" lead", errno.EINVAL),         # space is not allowed either
])
def test_module_id_cannot_rewrite_the_leaf_name(card, mid, want):
    """A compromised enclave nitro-hv picks its module id: it becomes the leaf's CN as
    one attribute, never more names; non-printable, non-ASCII or unterminated ids are
    refused."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID
    s = card["connect"]()
    if want:
        s.sendall(hello(40, module_id=mid))
        assert status(s) == want
        assert closed(s)
        return
    f = Front(s, 40, module_id=mid)
    doc = cbor2.loads(f.request(cbor2.dumps({"Attestation": {}})))
    p = cbor2.loads(cbor2.loads(doc["Attestation"]["document"])[2])
    name = mid.split("\x00")[0]
    assert p["module_id"] == name
    leaf = x509.load_der_x509_certificate(p["certificate"])
    attrs = [(a.oid, a.value) for a in leaf.subject]
    assert attrs == [(NameOID.ORGANIZATION_NAME, "nitro"), (NameOID.COMMON_NAME, name)]
    assert card["proc"].poll() is None
