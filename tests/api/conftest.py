"""Fixtures for the nitrod API tests (native: no guest boots here).

Each test gets its own nitrod on a socket in a fresh folder (0755, so other uids can
reach the socket when a test allows them) with its own state folder. The instances these
tests launch use a kernel file that is not a bzImage: measurement passes (kernels need
no signature) and nitro-hv then fails on it, so an instance ends `failed` the same way on
every host, with or without KVM. Instance boots are in tests/system/test_controller.py.
"""
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "pylib"))
from nitrotest import BUILD, api_call, host_has_cgroup_v2  # noqa: E402

NITROD = pathlib.Path(os.environ.get("NITROD", BUILD / "nitrod"))  # NITROD=build/asan/nitrod: the sanitizer build
NITRO = BUILD / "nitro"


# Without cgroup v2 nitrod refuses jailed launches unless told to run them without limits.
CGROUP_ARGS = [] if host_has_cgroup_v2() else ["--no-cgroups"]


class Nitrod:
    def __init__(self, folder, extra=(), binary=NITROD, wrap=()):
        self.folder = pathlib.Path(folder)
        self.sock = str(self.folder / "api.sock")
        self.state = self.folder / "state"
        # Requests may name files in the test's folder (kernels, initrds).
        self.extra = (["--files", str(self.folder.parent if self.folder.name == "other" else self.folder)]
                      + CGROUP_ARGS + list(extra))
        self.binary = str(binary)
        self.wrap = list(wrap)  # a command nitrod runs under (strace ...)
        self.proc = None
        self.log = self.folder / "nitrod.log"

    def start(self, wait=True):
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen([*self.wrap, self.binary, "--socket", self.sock, "--state", str(self.state),
                                      *self.extra], stdin=subprocess.DEVNULL, stdout=logf,
                                     stderr=logf)
        logf.close()
        if wait:
            deadline = time.time() + 10
            while time.time() < deadline:
                assert self.proc.poll() is None, f"nitrod exited: {self.log.read_text()}"
                try:
                    if self.call("GET", "/v1/volumes").status == 200:
                        return self
                except OSError:
                    pass
                time.sleep(0.01)
            raise AssertionError("nitrod never served")
        return self

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=10)
        self.proc = None

    def call(self, method, path, body=None, raw=None, headers=None, timeout=30):
        return api_call(self.sock, method, path, body, raw, headers, timeout)

    def audit_lines(self):
        """The lines of calls and events: without the chip's signed heads (ANCHOR lines,
        which come every 64 lines and at start and stop) and the write-ahead lines of
        calls that may change state (status=0 detail=intent,...; docs/security.md)."""
        p = self.state / "audit.log"
        lines = p.read_text().splitlines() if p.exists() else []
        return [l for l in lines if " method=ANCHOR " not in l and " status=0 detail=intent," not in l]

    def cli(self, *args, uid=None):
        return subprocess.run([str(NITRO), "--host", self.sock, *args], capture_output=True,
                              text=True, timeout=60, stdin=subprocess.DEVNULL)


@pytest.fixture
def folder():
    d = tempfile.mkdtemp(prefix="nitrod-api-")
    os.chmod(d, 0o755)
    yield pathlib.Path(d)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def bad_kernel(folder):
    k = folder / "not-a-kernel"
    k.write_bytes(b"this is not a bzImage\n" * 100)
    return str(k)


@pytest.fixture
def nitrod(folder):
    assert NITROD.exists(), "build first: make all"
    d = Nitrod(folder).start()
    yield d
    d.stop()


def wait_state(d, iid, states, timeout=20):
    deadline = time.time() + timeout
    while True:
        r = d.call("GET", f"/v1/instances/{iid}")
        assert r.status == 200, r
        if r.json()["state"] in states:
            return r.json()
        assert time.time() < deadline, f"{iid} stuck in {r.json()['state']}: {r.json()}"
        time.sleep(0.02)
