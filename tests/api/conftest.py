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
import sys
import tempfile

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "pylib"))
from nitrotest import BUILD, NITRO, NITROD, Nitrod  # noqa: E402,F401 (the suite imports them from here)


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

