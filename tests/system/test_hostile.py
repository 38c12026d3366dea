"""A hostile guest: a root program in a stock guest takes the virtio-blk device from the
kernel, drives it from user space (tests/system/hostile_vq.c) and posts a descriptor chain
whose header lies outside guest RAM. The card must fail that queue without reading
anything, nitro-hv must show NEEDS_RESET, the card process must live on, and after a
reset the device serves valid reads again."""
import os
import subprocess

from conftest import NITRO, ROOT, cmdline

HOSTILE = ROOT / "build" / "guest" / "hostile-vq"
PATTERN = "NITRO-HOSTILE-OK"


def volume(tmp_path, env, name, *extra):
    p = tmp_path / name
    c = subprocess.run([str(NITRO), "volume", "create", str(p), "--size", "8M", *extra],
                       capture_output=True, text=True, timeout=60, env=env)
    assert c.returncode == 0, c
    return p


def test_descriptor_outside_guest_ram_puts_the_device_in_needs_reset(tmp_path):
    assert HOSTILE.exists(), "build it: make build/guest/hostile-vq"
    env = dict(os.environ, NITRO_STATE=str(tmp_path / "state"))
    victim = volume(tmp_path, env, "victim.vol")
    # The program travels on a second, unencrypted disk: its bytes right after the header.
    carrier = volume(tmp_path, env, "carrier.vol", "--unencrypted")
    prog = HOSTILE.read_bytes()
    with open(carrier, "r+b") as f:
        f.seek(4096)
        f.write(prog)
    guest = (f"echo {PATTERN} | dd of=/dev/vda bs=512 conv=fsync 2>/dev/null; "
             f"head -c {len(prog)} /dev/vdb > /bin/hostile-vq; chmod +x /bin/hostile-vq; "
             "dev=$(readlink -f /sys/block/vda/device/..); "
             "echo ${dev##*/} > /sys/bus/pci/drivers/virtio-pci/unbind; "
             "hostile-vq $dev; echo hostile-vq exit $?")
    p = subprocess.run([str(NITRO), "run", "--require-kvm", "--volume", f"{victim},bus=virtio",
                        "--volume", f"{carrier},bus=virtio", "--cmdline", cmdline(guest)],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       errors="replace", timeout=300, env=env)
    out = p.stdout
    assert p.returncode == 0, (out[-3000:], p.stderr[-2000:])
    assert f"valid read: {PATTERN}" in out, out[-3000:]
    assert "hostile chain: not completed" in out, out[-3000:]
    assert "NEEDS_RESET" in out, out[-3000:]
    assert f"after reset: {PATTERN}" in out, out[-3000:]
    assert "hostile-vq exit 0" in out, out[-3000:]
    # nitro-hv names the card and the reason; the card did not die (no reconnect needed).
    assert "failed: it failed queue 0 (bad descriptors from the guest)" in p.stderr, p.stderr
    assert "connection lost" not in p.stderr, p.stderr
