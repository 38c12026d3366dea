"""EBS volumes in a stock guest: nitro run --volume starts a nitro-card-ebs per volume;
the guest's virtio-blk queues go straight to it (vhost-user)."""
import os
import subprocess

from conftest import NITRO, cmdline

PATTERN = "nitro-ebs-persistent-pattern"


def run(env, *args, timeout=300):
    return subprocess.run([str(NITRO), "run", "--require-kvm", *args], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, errors="replace", timeout=timeout,
                          env=env)


def test_volume_survives_reboot_encrypted_with_its_id_visible(tmp_path):
    vol = tmp_path / "data.vol"
    env = dict(os.environ, NITRO_STATE=str(tmp_path / "state"))
    c = subprocess.run([str(NITRO), "volume", "create", str(vol), "--size", "64M"],
                       capture_output=True, text=True, timeout=60, env=env)
    assert c.returncode == 0, c
    vol_id = c.stdout.strip().split()[-1]
    assert vol_id.startswith("vol-"), c.stdout

    w = run(env, "--volume", f"{vol},bus=virtio", "--cmdline", cmdline(
        f"cat /sys/block/vda/serial; echo; "
        f"for i in 1 2 3 4 5 6 7 8; do echo {PATTERN}; done | "
        f"dd of=/dev/vda bs=4096 seek=10 conv=fsync 2>/dev/null; echo written"))
    assert w.returncode == 0, (w.stdout[-3000:], w.stderr)
    assert "written" in w.stdout
    # The serial is the volume id without its dash (20 bytes, as EC2's NVMe serial).
    assert vol_id.replace("-", "") in w.stdout, w.stdout[-2000:]

    r = run(env, "--volume", f"{vol},bus=virtio", "--cmdline", cmdline(
        "dd if=/dev/vda bs=4096 skip=10 count=1 2>/dev/null | head -c 64"))
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr)
    assert PATTERN in r.stdout, r.stdout[-2000:]

    # Encrypted by default: the backing file never holds the plaintext.
    assert PATTERN.encode() not in vol.read_bytes()


def test_nbd_and_null_volumes(tmp_path):
    """nitro run --volume nbd+unix://... (a real nbdkit) and null:SIZE: the guest writes to
    the network volume, a second boot reads it back from the same export."""
    import shutil
    import signal
    import time
    nbdkit = shutil.which("nbdkit")
    assert nbdkit, "nbdkit is not installed (tools/deps.d/ebs.list)"
    env = dict(os.environ, NITRO_STATE=str(tmp_path / "state"))
    sock = tmp_path / "nbd.sock"
    srv = subprocess.Popen([nbdkit, "--foreground", "--exit-with-parent", "--unix", str(sock),
                            "memory", "64M"], stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while not sock.exists():
            assert srv.poll() is None and time.monotonic() < deadline, "nbdkit did not start"
            time.sleep(0.05)
        uri = f"nbd+unix:///?socket={sock}"
        w = run(env, "--volume", f"{uri},bus=virtio", "--volume", "null:32M,bus=virtio", "--cmdline", cmdline(
            f"cat /sys/block/vdb/size; "
            f"for i in 1 2 3 4 5 6 7 8; do echo {PATTERN}; done | "
            f"dd of=/dev/vda bs=4096 seek=3 conv=fsync 2>/dev/null; echo written"))
        assert w.returncode == 0, (w.stdout[-3000:], w.stderr)
        assert "written" in w.stdout and "65536" in w.stdout, w.stdout[-2000:]
        r = run(env, "--volume", f"{uri},bus=virtio", "--cmdline", cmdline(
            "dd if=/dev/vda bs=4096 skip=3 count=1 2>/dev/null | head -c 64"))
        assert r.returncode == 0, (r.stdout[-3000:], r.stderr)
        assert PATTERN in r.stdout, r.stdout[-2000:]
    finally:
        os.killpg(srv.pid, signal.SIGKILL)
        srv.wait()
    # No NBD server: a clear error before any guest starts.
    m = run(env, "--volume", f"nbd+unix:///?socket={tmp_path}/none.sock", timeout=60)
    assert m.returncode != 0
    assert "cannot connect to the NBD server" in m.stderr, m.stderr[-2000:]
