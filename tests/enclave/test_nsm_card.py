"""nitro-card-nsm's connections, without a guest (no KVM needed): the chain it gets on
--chain-fd, the ENW_HELLO every enclave connection starts with (accepted, or answered with
an errno and closed), a CID held by one connection refused to another, several enclaves at
once, and a connection that became a vhost-user device (GET_FEATURES: VIRTIO_F_VERSION_1).
The card must survive every refused peer. The request path itself is tested in
tests/unit/nsm (hostile rings) and with the stock driver in tests/system/test_nsm.py."""
import errno
import os
import pathlib
import signal
import socket
import struct
import subprocess
import sys
import time

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
    (hello(16, version=2), errno.EPROTO),
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
    struct.pack("<III", ENW_HELLO, VERSION, 100000) + b"x" * 100,  # oversized
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
