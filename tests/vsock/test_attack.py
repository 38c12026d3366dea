"""Attacks on nitro-card-vsock from the host side (docs/vsock.md): build/vsock-attack
(tests/vsockdriver) plays the parent's and the enclaves' nitro-hv and guest drivers, hostile
where a scenario says so, against a real card process; no VM. Each test runs one scenario
against a fresh card and then checks that the card is still alive, that its log holds no
sanitizer report (NITRO_BUILD=build/asan runs the ASan/UBSan build), and that it exits 0 on
SIGTERM. The normal build runs in its real seccomp jail (card-vsock); the sanitizer build
logs instead of killing (LeakSanitizer)."""
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "pylib"))
from nitrotest import BUILD  # noqa: E402

CARD = BUILD / "nitro-card-vsock"
DRIVER = pathlib.Path(os.environ.get("VSOCK_ATTACK", BUILD / "vsock-attack"))

SCENARIOS = ["relay", "isolation", "stall", "table", "flood", "hello-slow", "vu-stall",
             "reply-block", "hello-flood", "cid", "parent-gone", "chains", "vu",
             "console", "console-ring", "console-slow", "console-many"]


@pytest.fixture
def card(tmp_path):
    parent, enc = tmp_path / "parent.sock", tmp_path / "enclaves.sock"
    logpath = tmp_path / "card.log"
    log = open(logpath, "w")
    env = dict(os.environ)
    if "asan" in str(BUILD):  # LeakSanitizer's exit-time scan needs calls the jail kills
        env["NITRO_SECCOMP"] = "card-vsock:log"
    p = subprocess.Popen([str(CARD), "--socket-path", str(parent), "--enclave-socket", str(enc)],
                         stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env)
    deadline = time.time() + 10
    while not (parent.exists() and enc.exists()):
        assert p.poll() is None, logpath.read_text()
        assert time.time() < deadline, "card sockets never appeared"
        time.sleep(0.02)
    yield p, parent, enc, logpath
    if p.poll() is None:
        p.kill()
        p.wait()


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_attack(card, scenario):
    p, parent, enc, logpath = card
    r = subprocess.run([str(DRIVER), scenario, str(parent), str(enc)], capture_output=True,
                       text=True, timeout=120, env=dict(os.environ, CARD_PID=str(p.pid)))
    print(r.stdout)
    log = logpath.read_text()
    assert r.returncode == 0 and f"PASS {scenario}" in r.stdout, \
        f"{r.stdout}\n{r.stderr}\ncard log (tail):\n{log[-3000:]}"
    assert p.poll() is None, f"card died: {log[-3000:]}"
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=10) == 0, log[-3000:]
    log = logpath.read_text()
    assert "Sanitizer" not in log and "runtime error" not in log, log[-5000:]


def test_other_user_cannot_connect(card, tmp_path):
    """A local user of another uid cannot reach either socket, even through a folder it may
    enter (nitro's run folders are 0700 besides): the sockets themselves are the owner's
    only, whatever the umask the card was started with."""
    if os.geteuid() != 0:
        pytest.skip("needs root to act as another uid")
    from nitrotest import as_uid  # noqa: E402
    p, parent, enc, logpath = card
    os.chmod(tmp_path, 0o755)
    for path in (parent, enc):
        assert os.stat(path).st_mode & 0o077 == 0, oct(os.stat(path).st_mode)

    def attempt(path=None):
        import socket as sk
        out = {}
        for name in (str(parent), str(enc)):
            s = sk.socket(sk.AF_UNIX, sk.SOCK_STREAM)
            try:
                s.connect(name)
                out[name] = "connected"
            except OSError as e:
                out[name] = e.errno
            finally:
                s.close()
        return out

    got = as_uid(65534, attempt)
    assert set(got.values()) == {13}, got  # EACCES for both
    assert p.poll() is None
