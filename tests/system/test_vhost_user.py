"""The I/O path without the hypervisor: a virtio-blk PCI device whose queues a vhost-user
back end serves directly (kick = KVM ioeventfd, interrupt = KVM irqfd over MSI-X).

The back end here is qemu-storage-daemon (the peer of issue 3's EBS card), so this checks
nitro-hv's side alone: PCI/ECAM discovery by the stock kernel, the virtio-pci transport,
the vhost-user frontend, and that guest I/O causes no exits.
"""
import os
import re
import subprocess
import time

import pytest

from conftest import NITRO, cmdline

SECTOR = 512


@pytest.fixture
def qsd(tmp_path):
    img = tmp_path / "disk.img"
    with open(img, "wb") as f:
        f.truncate(64 << 20)
        f.write(b"hello-from-host")
    sock = tmp_path / "blk.sock"
    p = subprocess.Popen(["qemu-storage-daemon", "--blockdev",
                          f"driver=file,node-name=f,filename={img}", "--export",
                          f"type=vhost-user-blk,id=e,node-name=f,addr.type=unix,"
                          f"addr.path={sock},writable=on"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        if sock.exists():
            break
        time.sleep(0.1)
    assert sock.exists(), "qemu-storage-daemon did not start"
    yield img, sock
    p.terminate()
    p.wait(timeout=10)


def test_guest_disk_over_vhost_user_with_no_io_exits(qsd):
    img, sock = qsd
    exec_cmd = ("head -c 15 /dev/vda; echo; cat /sys/block/vda/size; "
                "echo guest-wrote | dd of=/dev/vda bs=512 seek=8 conv=fsync 2>/dev/null; "
                "dd if=/dev/vda of=/dev/null bs=4096 count=1000 iflag=direct 2>/dev/null; "
                "grep virtio0-req /proc/interrupts")
    p = subprocess.run([str(NITRO), "run", "--require-kvm", "--stats", "--vhost-user",
                        f"blk,{sock}", "--cmdline", cmdline(exec_cmd)],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       errors="replace", timeout=300)
    assert p.returncode == 0, (p.stdout[-3000:], p.stderr)
    out = p.stdout
    assert "virtio_blk virtio0: [vda] 131072 512-byte logical blocks" in out, out[-3000:]
    assert "hello-from-host" in out
    with open(img, "rb") as f:
        f.seek(8 * SECTOR)
        assert f.read(12) == b"guest-wrote\n"
    irqs = re.search(r"^\s*\d+:\s+(\d+)\s+PCI-MSIX.*virtio0-req", out, re.M)
    assert irqs, out[-2000:]
    completions = int(irqs.group(1))
    exits = re.search(r"exits: (\d+) total, (\d+) port I/O, (\d+) MMIO", p.stderr)
    assert exits, p.stderr
    mmio = int(exits.group(3))
    # 1000 synchronous direct reads, each completed by an interrupt; the hypervisor saw
    # only the set-up's MMIO exits (config space, BAR, MSI-X table): fewer than requests.
    assert completions >= 1000, completions
    assert mmio < 1000, (mmio, completions)
