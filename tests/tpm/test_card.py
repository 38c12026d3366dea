"""nitro-card-tpm on its own, driven over its protocol (docs/tpm.md) the way nitro-hv
drives it: HELLO with a sealed memfd, INIT, commands in the shared page and inline;
the state encrypted at rest and refused under another key; hostile messages."""
import array
import os
import pathlib
import socket
import struct
import subprocess
import sys
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "pylib"))
from nitrotest import ROOT  # noqa: E402

CARD = ROOT / "build" / "nitro-card-tpm"
MAGIC, VERSION = 0x4D50544E, 1
HELLO, INIT, CMD, XCMD, REPLY = 1, 2, 3, 4, 0x80
F_ADD_SEALS, F_SEAL_SHRINK, F_SEAL_GROW = 1033, 2, 4

STARTUP = bytes.fromhex("80010000000c00000144") + b"\0\0"
GETRANDOM16 = bytes.fromhex("80010000000c0000017b0010")
# TPM2_GetCapability(TPM_CAP_PCRS)
GETPCRS = bytes.fromhex("8001000000160000017a" "00000005" "00000000" "00000008")


def msg(t, length=0, status=0):
    return struct.pack("<IHHII", MAGIC, VERSION, t, length, status)


class Card:
    def __init__(self, tmp, state=None, key=b"k" * 32, env=None):
        self.sock_path = str(tmp / "tpm.sock")
        args = [str(CARD), "--socket-path", self.sock_path]
        fds = ()
        if state is not None:
            r, w = os.pipe()
            os.write(w, key)
            os.close(w)
            args += ["--state", str(state), "--key-fd", str(r)]
            fds = (r,)
        self.p = subprocess.Popen(args, pass_fds=fds, stderr=subprocess.PIPE, text=True,
                                  env=env)
        for fd in fds:
            os.close(fd)
        for _ in range(500):
            if os.path.exists(self.sock_path) or self.p.poll() is not None:
                break
            time.sleep(0.01)

    def connect(self, hello=True, init=0):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.settimeout(30)
        s.connect(self.sock_path)
        page = None
        if hello:
            fd = os.memfd_create("crb", os.MFD_ALLOW_SEALING)
            os.ftruncate(fd, 4096)
            import fcntl
            fcntl.fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW)
            s.sendmsg([msg(HELLO, 4096)], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))])
            assert self.reply(s)[:3] == (HELLO | REPLY, 4096, 0)
            page = fd
            s.send(msg(INIT, init))
            assert self.reply(s)[:3] == (INIT | REPLY, 0, 0)
        return s, page

    @staticmethod
    def reply(s):
        b = s.recv(8192)
        if not b:
            return None
        magic, ver, t, length, status = struct.unpack("<IHHII", b[:16])
        assert magic == MAGIC and ver == VERSION
        return t, length, status, b[16:]

    def xcmd(self, s, cmd):
        s.send(msg(XCMD, len(cmd)) + cmd)
        t, length, status, rsp = self.reply(s)
        assert t == XCMD | REPLY and status == 0 and len(rsp) == length
        return rsp

    def stop(self):
        self.p.terminate()
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        return self.p.returncode


def rc(rsp):
    return struct.unpack(">I", rsp[6:10])[0]


@pytest.fixture
def card(tmp_path):
    c = Card(tmp_path)
    yield c
    c.stop()


def test_commands_in_page_and_inline(card):
    s, page = card.connect()
    assert rc(card.xcmd(s, STARTUP)) == 0
    r = card.xcmd(s, GETRANDOM16)
    assert rc(r) == 0 and len(r) == 10 + 2 + 16
    os.pwrite(page, GETRANDOM16, 0)
    s.send(msg(CMD, len(GETRANDOM16)))
    t, length, status, _ = card.reply(s)
    assert (t, status) == (CMD | REPLY, 0) and length == 28
    rsp = os.pread(page, length, 0)
    assert rc(rsp) == 0 and rsp[10:12] == b"\x00\x10"
    # The command length the card is told is what it runs: a header claiming more is a
    # TPM error, not a read past the page.
    os.pwrite(page, bytes.fromhex("8001" "00001000" "0000017b") + b"\0\x10", 0)
    s.send(msg(CMD, 12))
    t, length, status, _ = card.reply(s)
    assert status == 0 and rc(os.pread(page, length, 0)) != 0
    # A new TPM has PCRs in the SHA-256 and SHA-384 banks (nitro-hv measures into every
    # allocated bank; the event log lists exactly these).
    r = card.xcmd(s, GETPCRS)
    assert rc(r) == 0
    count = struct.unpack(">I", r[15:19])[0]
    banks, off = {}, 19
    for _ in range(count):
        alg, size = struct.unpack(">HB", r[off:off + 3])
        banks[alg] = r[off + 3:off + 3 + size]
        off += 3 + size
    assert banks[0x000B] == b"\xff\xff\xff" and banks[0x000C] == b"\xff\xff\xff"
    assert all(not any(sel) for alg, sel in banks.items() if alg not in (0x000B, 0x000C))


@pytest.mark.parametrize("bad", [
    msg(CMD, 4097),                                     # longer than the page
    struct.pack("<IHHII", MAGIC ^ 1, VERSION, CMD, 10, 0),
    struct.pack("<IHHII", MAGIC, 2, CMD, 10, 0),        # another version
    msg(9, 0),                                          # unknown type
    msg(CMD | REPLY, 10),                               # a reply from the hypervisor side
    msg(XCMD, 12) + b"\0" * 4,                          # payload shorter than len
    msg(CMD)[:15],                                      # truncated
    msg(HELLO, 4096),                                   # HELLO without its memfd
])
def test_hostile_messages_drop_the_connection(card, bad):
    s, _ = card.connect()
    s.send(bad)
    assert card.reply(s) is None  # hung up
    # The card lives on and serves the next hypervisor.
    s2, _ = card.connect()
    assert rc(card.xcmd(s2, STARTUP)) == 0
    assert card.p.poll() is None


def test_unsealed_or_wrong_size_page_refused(card):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(card.sock_path)
    fd = os.memfd_create("crb", os.MFD_ALLOW_SEALING)
    os.ftruncate(fd, 4096)  # not sealed: could be truncated under the card (SIGBUS)
    s.sendmsg([msg(HELLO, 4096)], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))])
    t, length, status, _ = card.reply(s)
    assert t == HELLO | REPLY and status != 0
    s.send(msg(CMD, 12))  # no page: refused, the card does not touch memory
    t, length, status, _ = card.reply(s)
    assert status != 0
    os.ftruncate(fd, 0)
    assert card.p.poll() is None


def test_state_encrypted_and_bound_to_key(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    c = Card(tmp_path, state, key=b"A" * 32)
    s, _ = c.connect()
    assert rc(c.xcmd(s, STARTUP)) == 0
    s.close()
    assert c.stop() == 0
    blob = (state / "permall.nvs").read_bytes()
    assert blob.startswith(b"NTPMNV01") and len(blob) > 1000
    # One card per state folder: a second one on the same folder is refused.
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = Card(tmp_path / "a", state, key=b"A" * 32)
    second = Card(tmp_path / "b", state, key=b"A" * 32)
    second.p.wait(timeout=30)
    assert second.p.returncode == 1 and "in use" in second.p.stderr.read()
    first.stop()
    # The same key reads it back; another key is refused at start.
    c = Card(tmp_path, state, key=b"A" * 32)
    s, _ = c.connect()
    assert rc(c.xcmd(s, STARTUP)) == 0
    s.close()
    c.stop()
    c = Card(tmp_path, state, key=b"B" * 32)
    c.p.wait(timeout=30)
    assert c.p.returncode != 0 and "does not start" in c.p.stderr.read()
    # A flipped ciphertext byte is refused too (GCM), never loaded.
    b = bytearray(blob)
    b[100] ^= 1
    (state / "permall.nvs").write_bytes(bytes(b))
    c = Card(tmp_path, state, key=b"A" * 32)
    c.p.wait(timeout=30)
    assert c.p.returncode != 0


# TPM2_PCR_Extend(16, sha256: 32 bytes of 0x11) with the empty password session
EXTEND16 = (bytes.fromhex("80020000004100000182" "00000010" "00000009" "40000009" "0000" "00" "0000"
                          "00000001" "000b") + b"\x11" * 32)
# TPM2_PCR_Read(sha256, PCR 16)
READ16 = bytes.fromhex("8001000000140000017e" "00000001" "000b" "03" "000001")


def guest_cmd(card, s, page, cmd):
    """A command through the shared page, as the guest's commands go."""
    os.pwrite(page, cmd, 0)
    s.send(msg(CMD, len(cmd)))
    t, length, status, _ = card.reply(s)
    assert (t, status) == (CMD | REPLY, 0)
    return os.pread(page, length, 0)


def pcr16(card, s):
    r = card.xcmd(s, READ16)
    assert rc(r) == 0
    return r[-32:]


def restart(c, tmp, state):
    """SIGKILL (no chance to save anything more), then a new card on the same state."""
    c.p.kill()
    c.p.wait()
    os.unlink(c.sock_path)
    return Card(tmp, state)


def test_restarted_card_resumes_volatile_state(tmp_path):
    """A card that dies keeps what the TPM's volatile state held after the guest's last
    command (a PCR extended after start-up) for its successor when the hypervisor
    reconnects with INIT resume; a power-on (INIT 0) starts from reset and drops the saved
    state for good; nitro-hv's own commands (XCMD) save nothing (it replays them)."""
    state = tmp_path / "state"
    state.mkdir()
    c = Card(tmp_path, state)
    s, page = c.connect()
    assert rc(c.xcmd(s, STARTUP)) == 0
    zero = pcr16(c, s)
    assert not (state / "resume.nvs").exists()
    assert rc(guest_cmd(c, s, page, EXTEND16)) == 0
    extended = pcr16(c, s)
    assert extended != zero
    assert (state / "resume.nvs").read_bytes().startswith(b"NTPMNV01")  # encrypted
    c = restart(c, tmp_path, state)
    s, page = c.connect(init=1)
    assert rc(c.xcmd(s, STARTUP)) == 0x100  # TPM_RC_INITIALIZE: it is running already
    assert pcr16(c, s) == extended
    # The next command after the resume works and is kept as well.
    assert rc(guest_cmd(c, s, page, EXTEND16)) == 0
    twice = pcr16(c, s)
    s.close()
    c = restart(c, tmp_path, state)
    s, _ = c.connect(init=1)
    assert pcr16(c, s) == twice
    s.close()
    # A power-on: PCRs from reset, and nothing left to resume.
    s, _ = c.connect(init=0)
    assert not (state / "resume.nvs").exists()
    assert rc(c.xcmd(s, STARTUP)) == 0
    assert pcr16(c, s) == zero
    s.close()
    c = restart(c, tmp_path, state)
    s, _ = c.connect(init=1)
    assert rc(c.xcmd(s, STARTUP)) == 0  # nothing saved: from reset
    assert pcr16(c, s) == zero
    assert c.stop() == 0
