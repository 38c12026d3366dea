"""System tests: the real nitro-hv boots Debian's stock kernel under real KVM.

`make system-test` runs this whole suite inside one emulated host (`nitro emuhost`), so
`nitro run` finds a hardware-assisted /dev/kvm there and runs natively. Run directly on a
machine with KVM, it uses that.
"""
import pathlib
import subprocess
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "pylib"))
from nitrotest import ROOT, require_real_kvm  # noqa: E402

NITRO = ROOT / "build" / "nitro"
BANNER = "nitro guest: userspace up"


class Boot:
    def __init__(self, proc, out, err):
        self.status = proc.returncode
        self.out = out
        self.err = err

    def __repr__(self):
        return f"<exit {self.status}>\n--- stdout tail\n{self.out[-3000:]}\n--- stderr\n{self.err[-2000:]}"


def cmdline(exec_cmd, extra="", base="console=ttyS0 reboot=k panic=-1"):
    """Kernel command line whose guest runs exec_cmd and powers off (tools/guest-init)."""
    return f'{base} {extra} nitro_exec="{exec_cmd}"'.replace("  ", " ")


@pytest.fixture(scope="session")
def nitro():
    assert NITRO.exists(), "build first: make all"

    def run(*args, timeout=300):
        p = subprocess.run([str(NITRO), "run", "--require-kvm", *args], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, errors="replace", timeout=timeout)
        return Boot(p, p.stdout, p.stderr)

    return run


@pytest.fixture(scope="session", autouse=True)
def real_kvm():
    require_real_kvm("run the system tests through `build/nitro emuhost -- /usr/bin/python3 "
                     "-m pytest tests/system` (make system-test)")
