"""nitro-card-nsm's connections, without a guest (no KVM needed): the chain it gets on
--chain-fd, the ENW_HELLO every enclave connection starts with (accepted, or answered with
an errno and closed), a CID held by one connection refused to another, several enclaves at
once, and a connection that became a vhost-user device (GET_FEATURES: VIRTIO_F_VERSION_1).
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
VU_GET_FEATURES = 1
VU_SET_OWNER = 3
VERSION, REPLY = 0x1, 0x4


def hello(cid=16, flags=0, version=1, module_id=None, size=None):
    mid = (module_id if module_id is not None else f"i-0123456789abcdef0-enc{cid:016x}").encode()
    body = struct.pack("<IIQQ", version, flags, cid, 7) + bytes(16 * 48) + mid.ljust(64, b"\0")[:64]
    assert len(body) == 856
    body = body if size is None else body[:size]
    return struct.pack("<III", ENW_HELLO, VERSION, len(body)) + body


def recv_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            return None
        b += c
    return b


def status(s):
    """The card's answer to a hello: its u64 status, or None when it closed without one."""
    try:
        h = recv_exact(s, 12)
    except ConnectionResetError:  # closed with our bytes unread
        return None
    if h is None:
        return None
    req, flags, size = struct.unpack("<III", h)
    assert (req, flags & REPLY, size) == (ENW_HELLO, REPLY, 8)
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
    a.sendall(struct.pack("<III", VU_GET_FEATURES, VERSION, 0))
    req, flags, size = struct.unpack("<III", recv_exact(a, 12))
    feats = struct.unpack("<Q", recv_exact(a, size))[0]
    assert (req, flags & REPLY) == (VU_GET_FEATURES, REPLY)
    assert feats & (1 << 32)  # VIRTIO_F_VERSION_1
    # a second enclave at the same time, in debug mode
    b = card["connect"]()
    b.sendall(hello(17, flags=1))
    assert status(b) == 0
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
    (hello(16, version=2), errno.EPROTONOSUPPORT),
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
    quiet.sendall(b"\x45")  # half a header: the card waits at most its hello timeout
    ok = card["connect"]()
    ok.sendall(hello(22))
    assert status(ok) == 0
    assert closed(quiet)


class Front:
    """A vhost-user frontend in Python, as nitro-hv drives a card: the hello, features,
    a sealed memfd as guest memory, one queue; requests posted as the Linux driver posts
    them (a request chain and a reply chain of 0x3000 bytes)."""
    MEM = 1 << 20
    UVA = 0x7F0000000000
    DESC, AVAIL, USED, REQ, RESP = 0x0, 0x1000, 0x2000, 0x4000, 0x8000
    QSZ = 16

    def __init__(self, sock, cid):
        self.s = sock
        sock.sendall(hello(cid))
        assert status(sock) == 0
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
