"""vsock between a parent and an enclave through nitro-card-vsock (docs/vsock.md), with two
ordinary stock-kernel guests: A is the parent (the card's --socket-path, CID 3), B acts as
enclave 16 (nitro-hv --enclave-hello cid=16 on the card's --enclave-socket). In each guest
the stock virtio-vsock driver and a static AF_VSOCK program (tests/system/vsock_guest.c):
B connects to (3, 9000), exchanges the 0xB7 heartbeat and a few MiB each way with checksums;
connects to CIDs the card does not route fail with ECONNRESET (the card's RST). The card's
enclave socket refuses malformed hellos and a CID already taken."""
import os
import re
import signal
import socket
import struct
import subprocess
import time

from conftest import NITRO, ROOT, cmdline

CARD = ROOT / "build" / "nitro-card-vsock"
IMG = ROOT / "build" / "vsock-guest.img"
BYTES = 4 << 20
ENW_HELLO = 0x4E45
HELLO_SIZE = 4 + 4 + 8 + 8 + 16 * 48 + 64


def hello(sock_path, cid, version=2, flags=0, module=b"i-test"):
    """Sends one ENW_HELLO; returns (status, connected socket)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(str(sock_path))
    payload = struct.pack("<IIQQ", version, flags, cid, 0) + bytes(16 * 48) + module.ljust(64, b"\0")[:64]
    assert len(payload) == HELLO_SIZE
    s.sendall(struct.pack("<III", ENW_HELLO, 1, len(payload)) + payload)
    hdr = b""
    while len(hdr) < 20:
        chunk = s.recv(20 - len(hdr))
        if not chunk:
            break
        hdr += chunk
    assert len(hdr) == 20, hdr
    req, fl, size, status = struct.unpack("<IIIQ", hdr)
    assert (req, fl & 4, size) == (ENW_HELLO, 4, 8), (req, fl, size)
    return status, s


def start_card(tmp_path):
    parent, enc = tmp_path / "parent.sock", tmp_path / "enclaves.sock"
    log = open(tmp_path / "card.log", "w")
    p = subprocess.Popen([str(CARD), "--socket-path", str(parent), "--enclave-socket", str(enc)],
                         stdout=subprocess.DEVNULL, stderr=log)
    for _ in range(200):
        if parent.exists() and enc.exists():
            return p, parent, enc
        assert p.poll() is None, (tmp_path / "card.log").read_text()
        time.sleep(0.02)
    raise AssertionError("card sockets never appeared")


def guest(sock, exec_cmd, *extra):
    return subprocess.Popen([str(NITRO), "run", "--require-kvm", "--initrd", str(IMG),
                             "--vhost-user", f"vsock,{sock}", *extra,
                             "--cmdline", cmdline(exec_cmd)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, errors="replace")


def test_parent_and_enclave_talk_only_to_each_other(tmp_path):
    assert CARD.exists() and IMG.exists(), "make all build/vsock-guest.img"
    card, parent_sock, enc_sock = start_card(tmp_path)
    try:
        # Hellos the card must refuse (enclave_wire.h): reserved CIDs, a wrong version,
        # unknown flags, no NUL in module_id.
        for args, want in [((3,), 22), ((2,), 22), ((0xFFFFFFFF,), 22), ((1 << 32 | 16,), 22),
                           ((16, 1), 93), ((16, 3), 93), ((16, 2, 4), 22),
                           ((16, 2, 0, b"x" * 64), 22)]:
            status, s = hello(enc_sock, *args)
            s.close()
            assert status == want, (args, status)
        # A CID taken by a live connection is refused to the next one.
        status, held = hello(enc_sock, 20)
        assert status == 0
        status, s = hello(enc_sock, 20)
        s.close()
        assert status == 98, status  # EADDRINUSE
        held.close()

        a = guest(parent_sock, f"vsock-test serve 9000 {BYTES}")
        b = guest(enc_sock, f"vsock-test connect 3 9000 {BYTES}; vsock-test refused 17 9000; "
                  "vsock-test refused 2 9000; vsock-test refused 16 9000; "
                  "vsock-test refused 3 9001", "--enclave-hello", "cid=16")
        try:
            out_b, err_b = b.communicate(timeout=420)
            out_a, err_a = a.communicate(timeout=120)
        finally:
            for p in (a, b):
                if p.poll() is None:
                    p.kill()
                    p.wait()
    finally:
        card.send_signal(signal.SIGTERM)
        card.wait(timeout=10)
    log = (tmp_path / "card.log").read_text()
    print("--- A\n" + out_a[-1500:] + "\n--- B\n" + out_b[-2500:] + "\n--- card\n" + log[-2000:])
    assert a.returncode == 0 and b.returncode == 0, (err_a[-1500:], err_b[-1500:])
    # the parent saw the enclave's CID, the heartbeat and the bytes intact
    assert re.search(r"vsock-serve: connection from cid 16 port \d+", out_a), out_a[-2000:]
    assert "vsock-serve: heartbeat ok" in out_a, out_a[-2000:]
    assert "vsock-connect: heartbeat ok" in out_b, out_b[-2000:]
    m = re.search(r"vsock-connect: sent (\d+) bytes sum (\w+), peer got (\w+): match", out_b)
    assert m and int(m.group(1)) == BYTES and m.group(2) == m.group(3), out_b[-2000:]
    assert f"vsock-serve: received {BYTES} bytes sum {m.group(2)}" in out_a, out_a[-2000:]
    assert re.search(rf"vsock-connect: received {BYTES} bytes sum (\w+), expected \1: match",
                     out_b), out_b[-2000:]
    # enclave -> another enclave CID, the host, itself: the card's RST; to the parent on a
    # port nobody listens on: the parent's own RST, routed back
    for cid, port in [(17, 9000), (2, 9000), (3, 9001)]:
        assert f"vsock-refused: cid {cid} port {port}: ECONNRESET" in out_b, out_b[-2000:]
    assert "enclave cid 16 connected" in log, log
    unroutable = re.search(r"unroutable (\d+)", log)
    assert unroutable and int(unroutable.group(1)) >= 2, log
    assert re.search(r"spoofed-src 0\b", log), log
