"""`nitro run --volume`: a card that cannot start tells the user why (issue 10, "Also":
an EBS card that took too long, or died without a word, ended in "the card for volume X
did not start (see above)" with nothing above). Each test runs `nitro run` from a private
sandbox holding the real nitro, a card (real or a stub) and the nitro-hv stub, with
NITRO_EMULATED_HOST=1 so that no emulated host starts; the card fails before nitro-hv."""
import shutil
import subprocess

import pytest

from conftest import run_proc


def sandbox(tmp_path, built, card_script=None):
    base = tmp_path / "sb" / "bin"
    base.mkdir(parents=True)
    shutil.copy2(built / "nitro", base / "nitro")
    stubs = {"nitro-hv": "echo SANDBOX_HV_REACHED >&2; exit 99\n"}
    if card_script:
        stubs["nitro-card-ebs"] = card_script
    else:
        shutil.copy2(built / "nitro-card-ebs", base / "nitro-card-ebs")
    for name, body in stubs.items():
        (base / name).write_text("#!/bin/sh\n" + body)
        (base / name).chmod(0o755)
    return base / "nitro"


@pytest.fixture
def run_env(env, tmp_path):
    return dict(env, NITRO_EMULATED_HOST="1", NITRO_STATE=str(tmp_path / "state"),
                XDG_RUNTIME_DIR=str(tmp_path))


def test_card_reason_reaches_the_user(tmp_path, built, run_env, good_kernel):
    vol = tmp_path / "v.img"
    p = subprocess.run([str(built / "nitro"), "volume", "create", str(vol), "--size", "1M"],
                       env=run_env, capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    b = bytearray(vol.read_bytes())
    b[70] ^= 1  # a corrupt header: the card refuses it
    vol.write_bytes(bytes(b))
    r = run_proc([sandbox(tmp_path, built), "run", "--kernel", good_kernel, "--volume", vol],
                 run_env)
    assert not r.timed_out and r.status == 1, r
    assert "SANDBOX_HV_REACHED" not in r.err, r
    assert f"nitro-card-ebs: volume {vol}: corrupt header" in r.err, r
    assert "nitro: run: nitro-card-ebs exited with status 1 before it served" in r.err, r
    assert f"the card for volume {vol} did not start" in r.err, r


def test_card_killed_by_a_signal_is_named(tmp_path, built, run_env, good_kernel):
    """A card that dies of a signal prints nothing itself: before, the user saw only
    "did not start (see above)"."""
    vol = tmp_path / "v.img"
    vol.write_bytes(b"\0" * 4096)
    nitro = sandbox(tmp_path, built, card_script="kill -SEGV $$\n")
    r = run_proc([nitro, "run", "--kernel", good_kernel, "--volume", vol], run_env)
    assert not r.timed_out and r.status == 1, r
    assert "SANDBOX_HV_REACHED" not in r.err, r
    assert "nitro-card-ebs was killed by signal 11 (Segmentation fault) before it served" \
        in r.err, r
