"""A real guest under the jailer and the seccomp allow-lists (emulated host):

    build/nitro emuhost --memory 2048 -- /usr/bin/python3 -m pytest -v tests/security/test_guest_sandbox.py
    (make security-system-test)

nitro-card-ebs and nitro-hv are each measured by the security chip, jailed (own mount
namespace, pivot_root, uid 60001, no_new_privs, own network namespace) and run with
NITRO_SECCOMP, default action kill. The guest boots, writes and reads its volume while the
card is killed and restarted (nitro-hv reconnects: socket, connect, memory table, queues,
all under its filter) and powers off: the filters do not kill a working guest. Both
processes are seen running with a seccomp filter (Seccomp: 2) as the unprivileged uid.
"""
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "pylib"))
from nitrotest import ROOT, require_real_kvm  # noqa: E402

BUILD = ROOT / "build"
CHIP = BUILD / "nitro-chip"
CACHE = pathlib.Path(os.environ.get("NITRO_CACHE", pathlib.Path.home() / ".cache" / "nitro"))
UID = 60001


@pytest.fixture(scope="module", autouse=True)
def real_kvm():
    require_real_kvm("run it in the emulated host (make security-system-test)")


def proc_of(comm):
    """(pid, uid, Seccomp mode) of the running process named comm, or None."""
    for d in pathlib.Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if (d / "comm").read_text().strip() != comm:
                continue
            st = dict(l.split(":", 1) for l in (d / "status").read_text().splitlines() if ":" in l)
            return int(d.name), st["Uid"].split()[0], st["Seccomp"].strip()
        except (OSError, KeyError):
            continue
    return None


PATTERN = "nitro-sandbox-pattern"


def test_guest_boots_uses_its_volume_and_survives_a_card_restart_sandboxed(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    os.chown(run, UID, UID)
    vol = run / "v.vol"
    r = subprocess.run([BUILD / "nitro", "volume", "create", vol, "--size", "64M", "--unencrypted"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    os.chown(vol, UID, UID)
    state = tmp_path / "chip"
    sock = run / "ebs.sock"
    common = ["--state", state, "jail", "--measure", "--seccomp", "--newnet", "--uid", str(UID),
              "--gid", str(UID)]

    def start_card():
        if sock.exists():
            sock.unlink()
        p = subprocess.Popen([CHIP, *common, "--kind", "card-ebs", "--dir", tmp_path / "jail-ebs",
                              "--bind", f"{run},rw", "--", BUILD / "nitro-card-ebs",
                              "--socket-path", sock, "--iops", "0", "--throughput", "0", vol],
                             stderr=subprocess.PIPE, text=True)
        for _ in range(200):
            if sock.exists():
                break
            assert p.poll() is None, p.stderr.read()
            time.sleep(0.02)
        assert sock.exists()
        info = proc_of("nitro-card-ebs")
        assert info and info[1:] == (str(UID), "2"), info
        return p, info[0]

    card, card_pid = start_card()
    images = CACHE / "images"
    kernel, initrd, kcache = images / "vmlinuz", images / "guest.img", CACHE / "kernels"
    # The guest writes a pattern, then reads block after block with O_DIRECT (each read
    # reaches the card); the card is killed and restarted mid-way, under its filter.
    guest = ("echo " + PATTERN + " | dd of=/dev/vda bs=4096 conv=fsync 2>/dev/null; "
             "i=0; while [ $i -lt 80 ]; do "
             "dd if=/dev/vda of=/dev/null bs=4096 count=1 skip=$((i % 64)) iflag=direct "
             "2>/dev/null || echo READ-ERROR; echo iter $i; i=$((i+1)); sleep 0.05; done; "
             "dd if=/dev/vda bs=4096 count=1 iflag=direct 2>/dev/null | head -c 40; echo; "
             "echo finished")
    hv = subprocess.Popen(
        [CHIP, *common, "--kind", "hv", "--dir", tmp_path / "jail-hv", "--bind", "/dev/kvm,dev",
         "--bind", kernel, "--bind", initrd, "--bind", f"{kcache},optional", "--bind", run, "--",
         BUILD / "nitro-hv", "--kernel", kernel, "--initrd", initrd, "--cache-dir", kcache,
         "--memory", "256", "--no-reboot", "--vhost-user", f"blk,{sock}",
         "--cmdline", f'console=ttyS0 reboot=k panic=-1 nitro_exec="{guest}"'],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace")
    err = []
    t_err = threading.Thread(target=lambda: err.extend(hv.stderr), daemon=True)
    t_err.start()
    out, seen, restarted = [], None, False
    deadline = time.time() + 240

    def stalled():  # a guest that stalls prints nothing: end nitro-hv rather than hang here
        st = proc_of("nitro-hv")
        if st:
            os.kill(st[0], signal.SIGKILL)
        hv.kill()

    watchdog = threading.Timer(300, stalled)
    watchdog.start()
    try:
        for line in hv.stdout:
            out.append(line)
            st = proc_of("nitro-hv")  # filtered once its set-up is done
            if st and (seen is None or st[2] == "2"):
                seen = st[1:]
            if not restarted and line.startswith("iter 20"):
                os.kill(card_pid, signal.SIGKILL)
                card.wait(timeout=10)
                time.sleep(0.5)
                card, card_pid = start_card()
                restarted = True
            if time.time() > deadline:
                hv.kill()
                break
        hv.wait(timeout=60)
        t_err.join(timeout=5)
        text, log = "".join(out), "".join(err)
        assert hv.returncode == 0, f"{hv.returncode}\n{text[-2000:]}\n{log[-2000:]}"
        assert restarted and "finished" in text and "iter 79" in text, text[-2000:]
        assert not [l for l in out if l.strip() == "READ-ERROR"], text[-3000:]
        assert PATTERN in text.split("iter 79")[-1]  # read back through the restarted card
        assert "reconnected" in log, log[-2000:]
        assert seen == (str(UID), "2")
        events = (state / "eventlog").read_text()
        assert "nitro-hv" in events and "nitro-card-ebs" in events
        assert card.poll() is None, "the card must survive the guest's I/O under its filter"
    finally:
        watchdog.cancel()
        card.terminate()
        card.wait(timeout=10)
