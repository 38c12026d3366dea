"""The emulated host as users meet it: stdio and exit status pass through unchanged.

These run on the development machine itself (no KVM needed): each test boots one
emulated host.
"""
import pathlib
import subprocess
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
NITRO = ROOT / "build" / "nitro"


def has_hw_kvm():
    cpuinfo = open("/proc/cpuinfo").read()
    return pathlib.Path("/dev/kvm").exists() and (" svm" in cpuinfo or " vmx" in cpuinfo)


def test_emuhost_passes_stdio_and_status_through(tmp_path):
    # Typed input reaches the command once it reads its terminal (here: after "ready").
    p = subprocess.Popen([str(NITRO), "emuhost", "--memory", "1024", "--", "sh", "-c",
                          'echo ready; read x; echo "out:$x:$(pwd)"; echo err-line >&2; '
                          'grep -qw svm /proc/cpuinfo && test -c /dev/kvm && echo kvm-ok; exit 7'],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         cwd=tmp_path)
    try:
        first = p.stdout.readline()
        assert first.strip() == b"ready", first
        time.sleep(1)
        p.stdin.write(b"typed\n")
        p.stdin.flush()
        out, err = p.communicate(timeout=300)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 7, (out, err)
    assert f"out:typed:{tmp_path}".encode() in out, out
    assert b"kvm-ok" in out, out
    assert b"err-line" in err, err


def test_nitro_run_goes_through_the_emulated_host_transparently():
    # A guest panic with --no-reboot: exit status 3 comes back from inside.
    p = subprocess.run([str(NITRO), "run", "--no-reboot", "--cmdline",
                        'console=ttyS0 reboot=k panic=-1 nitro_exec="echo c > /proc/sysrq-trigger"'],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace",
                       timeout=600)
    assert p.returncode == 3, p
    assert "Kernel panic" in p.stdout, p.stdout[-2000:]
    assert "the guest kernel panicked" in p.stderr, p.stderr
    if not has_hw_kvm():
        notices = [l for l in p.stderr.splitlines() if "emulated host" in l]
        assert len(notices) == 1, p.stderr


def test_require_kvm_refuses_without_hardware_kvm():
    if has_hw_kvm():
        return
    p = subprocess.run([str(NITRO), "run", "--require-kvm"], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1, p
    assert "--require-kvm" in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
