"""Fixtures for the native VPC card tests: real nitro-card-vpc processes, each driven by
build/vpc-driver (tests/vpcdriver) playing the guest's virtio-net driver, with the
mapping service in a private $NITRO_STATE. No VM is involved.

NITRO_BUILD=build/asan runs the sanitizer build of the card.
"""
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "pylib"))
from nitrotest import BUILD, ROOT  # noqa: E402

CARD = BUILD / "nitro-card-vpc"
DRIVER = pathlib.Path(os.environ.get("VPC_DRIVER", BUILD / "vpc-driver"))
NITRO = BUILD / "nitro"


def listening(path, pid):
    """A card's socket accepts connections once its file exists: the card library binds a
    temporary name and renames it into place after listen()."""
    del pid
    return os.path.exists(path)


class Card:
    """One nitro-card-vpc process. Its stderr goes to a file (read by .log())."""

    def __init__(self, sockdir, state, name, vpc, ip, sg=None, extra=(), netns=None,
                 map_path=None, underlay=None, underlay_sock=None, empty_netns=False,
                 dns_sock=None, pass_fds=()):
        self.name = name
        self.vpc, self.ip = vpc, ip.split("/")[0]
        self.socket = os.path.join(sockdir, f"{name}.sock")
        self.ctl = os.path.join(sockdir, f"{name}.ctl")
        self.errpath = os.path.join(sockdir, f"{name}.err")
        argv = [str(CARD), "--socket-path", self.socket, "--ctl", self.ctl, "--vpc", str(vpc),
                "--ip", ip]
        if sg:
            argv += ["--sg", str(sg)]
        if map_path:
            argv += ["--map", str(map_path)]
        if underlay:
            argv += ["--underlay", underlay]
        fds = ()
        if underlay_sock is not None:  # made and bound by the test, as nitrod does
            argv += ["--underlay-fd", str(underlay_sock.fileno())]
            fds = (underlay_sock.fileno(),)
        if dns_sock is not None:  # connected to the host's resolver by the test, as nitrod
            argv += ["--dns-fd", str(dns_sock.fileno())]
            fds += (dns_sock.fileno(),)
        fds = tuple(fds) + tuple(pass_fds)
        argv += list(extra)
        if netns:
            argv = ["ip", "netns", "exec", netns] + argv
        if empty_netns:  # a network namespace with nothing in it, like a jailed card's
            argv = ["unshare", "--net", "--"] + argv
        self.env = dict(os.environ, NITRO_STATE=str(state))
        self.err = open(self.errpath, "w")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.err,
                                     stderr=self.err, env=self.env, pass_fds=fds)
        deadline = time.time() + 10
        while not listening(self.socket, self.proc.pid):
            if self.proc.poll() is not None:
                raise AssertionError(f"card {name} exited {self.proc.returncode}: {self.log()}")
            if time.time() > deadline:
                self.stop()  # never leave a card behind
                raise AssertionError(f"card {name} did not listen on {self.socket}: {self.log()}")
            time.sleep(0.02)

    def log(self):
        if not self.err.closed:
            self.err.flush()
        return pathlib.Path(self.errpath).read_text()

    def stats(self):
        """The counters from the control socket, as a dict of ints."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect(self.ctl)
        data = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
        s.close()
        out = {}
        for w in data.decode().split():
            k, _, v = w.partition("=")
            out[k] = int(v)
        return out

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.err.close()
        return self.proc.returncode


class Driver:
    """build/vpc-driver run SOCKET: one guest driver on one card."""

    def __init__(self, card_socket, pairs=1):
        self.last_pair = None
        self.proc = subprocess.Popen([str(DRIVER), "run", card_socket, "--pairs", str(pairs)],
                                     stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     bufsize=1)
        line = self.proc.stdout.readline().strip()
        assert line == "ready", f"driver: {line!r} {self.proc.stderr.read() if not line else ''}"

    def cmd(self, c):
        self.proc.stdin.write(c + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline().strip()
        assert line, f"driver died: {self.proc.stderr.read()}"
        return line

    def config(self):
        line = self.cmd("config")
        assert line.startswith("config ") and line != "config none", line
        return dict(w.split("=") for w in line.split()[1:])

    def send(self, frame, pair=0):
        r = self.cmd(f"sendq {pair} " + frame.hex())
        assert r == "sent", r

    def burst(self, frame, count, pair=0):
        """count copies queued at once with one kick (no waiting between frames)."""
        r = self.cmd(f"burst {pair} {count} " + frame.hex())
        assert r == f"sent {count}", r

    def ctrl(self, cls, cmd, data=b""):
        r = self.cmd(f"ctrl {cls} {cmd} {data.hex()}")
        assert r.startswith("ack "), r
        return int(r[4:])

    def recv(self, ms=300):
        """The next frame from any rx queue (its pair in .last_pair), or None."""
        r = self.cmd(f"recv {ms}")
        if r == "none":
            return None
        parts = r.split()
        assert parts[0] == "frame" and len(parts) == 3, r
        self.last_pair = int(parts[2])
        return bytes.fromhex(parts[1])

    def recv_all(self, ms=300):
        out = []
        while True:
            f = self.recv(ms)
            if f is None:
                return out
            out.append(f)

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
            except BrokenPipeError:
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="session")
def built():
    if not os.environ.get("NITRO_BUILD"):
        p = subprocess.run(["make", "-s", "build/nitro-card-vpc", "build/vpc-driver", "build/nitro"],
                           cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert p.returncode == 0, p.stdout + p.stderr
    assert CARD.exists() and DRIVER.exists()


@pytest.fixture
def vpcnet(built, tmp_path):
    """vpcnet.card(name, vpc, ip, ...) -> (Card, Driver); everything stops at the end."""
    sockdir = tempfile.mkdtemp(prefix="vpc-", dir="/tmp")  # short: sun_path is 108 bytes
    state = tmp_path / "state"
    state.mkdir()

    class Net:
        def __init__(self):
            self.cards, self.drivers = [], []
            self.state = state
            self.map = state / "vpc-map"
            self.sockdir = sockdir

        def card(self, name, vpc, ip, driver=True, pairs=1, **kw):
            c = Card(sockdir, state, name, vpc, ip, **kw)
            self.cards.append(c)
            if not driver:
                return c
            d = Driver(c.socket, pairs)
            self.drivers.append(d)
            return c, d

    n = Net()
    yield n
    for d in n.drivers:
        d.close()
    bad = []
    for c in n.cards:  # every card is stopped before anything is asserted
        rc = c.stop()
        if rc != 0 or "AddressSanitizer" in c.log() or "runtime error" in c.log():
            bad.append(f"card {c.name} exited {rc}: {c.log()}")
    shutil.rmtree(sockdir, ignore_errors=True)
    assert not bad, "\n".join(bad)
