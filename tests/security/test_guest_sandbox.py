"""A real guest under the jailer and the seccomp allow-lists (emulated host):

    build/nitro emuhost --memory 2048 -- /usr/bin/python3 -m pytest -v tests/security/test_guest_sandbox.py
    (make security-system-test)

nitro-card-ebs and nitro-hv are each measured by the security chip, jailed (own mount
namespace, pivot_root, uid 60001, no_new_privs, own network namespace) and run with
NITRO_SECCOMP, default action kill. The guest boots, reads and writes its volume and powers
off: the filters do not kill a working guest. Both processes are seen running with a
seccomp filter (Seccomp: 2) as the unprivileged uid.
"""
import os
import pathlib
import subprocess
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = ROOT / "build"
CHIP = BUILD / "nitro-chip"
CACHE = pathlib.Path(os.environ.get("NITRO_CACHE", pathlib.Path.home() / ".cache" / "nitro"))
UID = 60001


@pytest.fixture(scope="module", autouse=True)
def real_kvm():
    cpuinfo = open("/proc/cpuinfo").read()
    if not os.path.exists("/dev/kvm") or not (" svm" in cpuinfo or " vmx" in cpuinfo):
        pytest.fail("needs a hardware-assisted /dev/kvm: run it in the emulated host "
                    "(make security-system-test)")


def status_of(comm):
    """(uid, Seccomp mode) of the running process named comm, or None."""
    for d in pathlib.Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if (d / "comm").read_text().strip() != comm:
                continue
            st = dict(l.split(":", 1) for l in (d / "status").read_text().splitlines() if ":" in l)
            return st["Uid"].split()[0], st["Seccomp"].strip()
        except (OSError, KeyError):
            continue
    return None


def test_guest_boots_and_uses_its_volume_sandboxed(tmp_path):
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
    card = subprocess.Popen([CHIP, *common, "--kind", "card-ebs", "--dir", tmp_path / "jail-ebs",
                             "--bind", f"{run},rw", "--", BUILD / "nitro-card-ebs",
                             "--socket-path", sock, "--iops", "0", "--throughput", "0", vol],
                            stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(100):
            if sock.exists():
                break
            time.sleep(0.05)
        assert sock.exists(), card.stderr.read() if card.poll() is not None else "no socket"
        assert status_of("nitro-card-ebs") == (str(UID), "2")
        images = CACHE / "images"
        kernel, initrd, kcache = images / "vmlinuz", images / "guest.img", CACHE / "kernels"
        exec_cmd = ("dd if=/dev/vda of=/dev/null bs=4k count=256 && echo DISKREAD-OK && "
                    "echo hello > /dev/vda && echo DISKWRITE-OK")
        hv = subprocess.Popen(
            [CHIP, *common, "--kind", "hv", "--dir", tmp_path / "jail-hv", "--bind", "/dev/kvm,dev",
             "--bind", kernel, "--bind", initrd, "--bind", f"{kcache},optional", "--bind", run, "--",
             BUILD / "nitro-hv", "--kernel", kernel, "--initrd", initrd, "--cache-dir", kcache,
             "--memory", "256", "--no-reboot", "--vhost-user", f"blk,{sock}",
             "--cmdline", f'console=ttyS0 reboot=k panic=-1 nitro_exec="{exec_cmd}"'],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace")
        seen = None
        deadline = time.time() + 240
        while hv.poll() is None and time.time() < deadline:
            st = status_of("nitro-hv")  # filtered once set-up is done
            if st and (seen is None or st[1] == "2"):
                seen = st
            time.sleep(0.2)
        out, err = hv.communicate(timeout=10)
        assert hv.returncode == 0, f"{hv.returncode}\n{out[-2000:]}\n{err[-2000:]}"
        assert "DISKREAD-OK" in out and "DISKWRITE-OK" in out, out[-2000:]
        assert seen == (str(UID), "2")
        log = (state / "eventlog").read_text()
        assert " exec " in log and "nitro-hv" in log and "nitro-card-ebs" in log
        assert card.poll() is None, "the card must survive the guest's I/O under its filter"
    finally:
        card.terminate()
        card.wait(timeout=10)
