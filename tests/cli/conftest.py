"""Fixtures for the CLI tests: `nitro run` / `nitro-hv` argument and input validation.

These tests must never boot a guest or the emulated host. Every case gives an input that
fails validation, and on top of that `nitro` runs from a sandbox copy:

    <tmp>/sandbox/bin/nitro         a copy of build/nitro
    <tmp>/sandbox/bin/nitro-hv      a stub: prints SANDBOX_HV_REACHED, exits 99
    <tmp>/sandbox/tools/images.sh   a stub: prints SANDBOX_IMAGES_REACHED, exits 97

`nitro` finds nitro-hv and tools/images.sh next to its own executable (/proc/self/exe),
so if a bug let validation pass, `nitro run` would reach a stub (hardware KVM: nitro-hv;
no KVM: the emulated host, which first runs images.sh) instead of QEMU or a download.
NITRO_CACHE points at an empty temporary folder. Every process gets stdin=/dev/null, a
10 s timeout, and its own process group, which is killed if it hangs.
"""
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "pylib"))
from nitrotest import BUILD, ROOT, make_bzimage, run_timed  # noqa: E402,F401 (make_bzimage: the tests')

TIMEOUT = 10


class Result:
    def __init__(self, argv, status, out, err, timed_out):
        self.argv = argv
        self.status = status
        self.out = out
        self.err = err
        self.timed_out = timed_out

    def __repr__(self):
        return (f"<argv {self.argv!r}: exit {self.status}, timed_out={self.timed_out}>\n"
                f"--- stdout\n{self.out[-2000:]}\n--- stderr\n{self.err[-2000:]}")


def run_proc(argv, env, timeout=TIMEOUT):
    return Result(argv, *run_timed(argv, timeout, env))


@pytest.fixture(scope="session")
def built():
    """Runs `make -s all` once in the repository root."""
    p = subprocess.run(["make", "-s", "all"], cwd=ROOT, stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, f"make -s all failed:\n{p.stdout}\n{p.stderr}"
    for name in ("nitro", "nitro-hv"):
        assert (BUILD / name).exists(), f"make did not build build/{name}"
    return BUILD


@pytest.fixture(scope="session")
def sandbox(built, tmp_path_factory):
    base = tmp_path_factory.mktemp("sandbox")
    (base / "bin").mkdir()
    (base / "tools").mkdir()
    shutil.copy2(built / "nitro", base / "bin" / "nitro")
    stubs = {
        base / "bin" / "nitro-hv": "echo SANDBOX_HV_REACHED \"$@\" >&2; exit 99\n",
        base / "tools" / "images.sh": "echo SANDBOX_IMAGES_REACHED >&2; exit 97\n",
    }
    for path, body in stubs.items():
        path.write_text("#!/bin/sh\n" + body)
        path.chmod(0o755)
    return base


@pytest.fixture(scope="session")
def env(tmp_path_factory):
    e = dict(os.environ)
    e["NITRO_CACHE"] = str(tmp_path_factory.mktemp("nitro-cache"))
    for k in ("NITRO_EMULATED_HOST",):
        e.pop(k, None)
    e["LC_ALL"] = "C"  # strerror() texts in English
    return e


@pytest.fixture(scope="session")
def nitro(sandbox, env):
    """nitro(*args) -> Result, running the sandboxed copy of build/nitro."""
    exe = sandbox / "bin" / "nitro"

    def run(*args, timeout=TIMEOUT):
        return run_proc([exe, *args], env, timeout)

    return run


@pytest.fixture(scope="session")
def nitro_hv(built, env):
    """nitro_hv(*args) -> Result, running build/nitro-hv (inputs must fail validation)."""
    exe = built / "nitro-hv"

    def run(*args, timeout=TIMEOUT):
        return run_proc([exe, *args], env, timeout)

    return run


class Frontend:
    """`nitro run` or `nitro-hv`: the same options, a different message prefix."""

    def __init__(self, name, prefix, runner, argv0):
        self.name = name
        self.prefix = prefix
        self._runner = runner
        self._argv0 = argv0

    def __call__(self, *args, timeout=TIMEOUT):
        return self._runner(*self._argv0, *args, timeout=timeout)

    def __repr__(self):
        return self.name


@pytest.fixture(params=["nitro-run", "nitro-hv"])
def front(request, nitro, nitro_hv):
    if request.param == "nitro-run":
        return Frontend("nitro run", "nitro: ", nitro, ["run"])
    return Frontend("nitro-hv", "nitro-hv: ", nitro_hv, [])


# ---- synthetic bzImages -------------------------------------------------------------

@pytest.fixture
def bzimage(tmp_path):
    """bzimage(name="k.bz", **fields) -> path of a synthetic bzImage written to tmp_path."""

    def write(name="bzImage", **fields):
        p = tmp_path / name
        p.write_bytes(make_bzimage(**fields))
        return p

    return write


@pytest.fixture
def good_kernel(bzimage):
    return bzimage("good-bzImage")
