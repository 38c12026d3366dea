"""EBS volumes as NVMe controllers (issue 14): the stock kernel's nvme driver binds the
controller nitro-hv builds, the EBS card serves its queues; the instance storage card.
Three boots of the NVMe test
image (build/nvme-guest.img: tools/images.sh's guest plus nvme-cli, fio and
hostile-nvme, tests/system/nvme_initrd.sh)."""
import os
import re
import subprocess

from conftest import NITRO, ROOT, cmdline
from nitrotest import run as run_proc

IMG = ROOT / "build" / "nvme-guest.img"
PATTERN = "nitro-nvme-persistent-pattern"
READS = 4000


class Boot:
    def __init__(self, rc, out, err):
        self.returncode, self.stdout, self.stderr = rc, out, err


def run(env, *args, timeout=400):
    """One boot of the test image; its whole process group is killed when it hangs."""
    rc, out, err = run_proc([str(NITRO), "run", "--require-kvm", "--initrd", str(IMG),
                             "--stats", "--cpus", "2", *args], timeout, env=env)
    return Boot(rc, out, err)


def mmio_exits(p):
    m = re.search(r"exits: \d+ total, \d+ port I/O, (\d+) MMIO", p.stderr)
    assert m, p.stderr[-2000:]
    return int(m.group(1))


def kvm_exits(p):
    """KVM's own count (nitro-hv --stats, src/hv/kvmstats.c): in-kernel exits included."""
    m = re.search(r"KVM exits: (\d+) total \((\d+) not seen by nitro-hv\)", p.stderr)
    assert m, p.stderr[-2000:]
    return int(m.group(1))


def test_nvme_volume_identify_persist_exits_and_hostile_prps(tmp_path):
    assert IMG.exists(), "make build/nvme-guest.img"
    env = dict(os.environ, NITRO_STATE=str(tmp_path / "state"))
    vol = tmp_path / "vol.img"
    c = subprocess.run([str(NITRO), "volume", "create", str(vol), "--size", "64M"],
                       capture_output=True, text=True, timeout=60, env=env)
    assert c.returncode == 0, c
    vol_id = c.stdout.strip().split()[-1]
    serial = vol_id.replace("-", "")

    # Both boots run the same admin commands (nvme-cli); boot 1 also writes and then
    # does READS direct 4 KiB reads, so the difference in MMIO exits is the I/O's.
    admin = ("nvme id-ctrl /dev/nvme0 | grep -e '^sn' -e '^mn' -e '^vid' -e '^oacs' -e '^ver'; "
             "nvme id-ctrl -v /dev/nvme0 | grep -A2 '^vs'; "
             "nvme smart-log /dev/nvme0 | grep -e host_; ")
    w = run(env, "--volume", f"{vol},device=sdf", "--cmdline", cmdline(
        f"for i in 1 2 3 4 5 6 7 8; do echo {PATTERN}; done | "
        "dd of=/dev/nvme0n1 bs=4096 seek=10 conv=fsync 2>/dev/null; echo written; "
        f"dd if=/dev/nvme0n1 of=/dev/null bs=4096 count={READS} iflag=direct 2>&1 | "
        "grep records; " + admin))
    assert w.returncode == 0, (w.stdout[-3000:], w.stderr[-2000:])
    out = w.stdout
    assert "written" in out, out[-3000:]
    assert re.search(r"^sn\s*: " + serial + r"\s*$", out, re.M), out[-3000:]
    assert re.search(r"^mn\s*: Amazon Elastic Block Store\s*$", out, re.M), out[-3000:]
    assert re.search(r"^vid\s*: 0x1d0f", out, re.M), out[-3000:]
    assert re.search(r"^ver\s*: 0x10400", out, re.M), out[-3000:]
    # EC2's vendor area: the device name given at launch
    assert re.search(r'^0000: 73 64 66 20 .*"sdf\.', out, re.M), out[-3000:]
    assert f"{READS}+0 records in" in out, out[-3000:]
    # SMART counts what the card served
    m = re.search(r"host_read_commands\s*:\s*([\d,]+)", out)
    assert m and int(m.group(1).replace(",", "")) >= READS, out[-3000:]

    # Boot 2: the data survived (a new card, a new guest); few I/Os.
    r = run(env, "--volume", f"{vol},device=sdf", "--cmdline", cmdline(
        "dd if=/dev/nvme0n1 bs=4096 skip=10 count=1 iflag=direct 2>/dev/null | head -c 64; "
        "echo; " + admin))
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-2000:])
    assert PATTERN in r.stdout, r.stdout[-3000:]
    # Encrypted volume: the backing file never holds the plaintext.
    assert PATTERN.encode() not in vol.read_bytes()

    # 0 exits per I/O: boot 1 did READS more I/Os than boot 2, and no more MMIO exits
    # beyond the driver's set-up (which is the same in both).
    m1, m2 = mmio_exits(w), mmio_exits(r)
    per_io = (m1 - m2) / READS
    print(f"nvme: MMIO exits {m1} (boot with {READS} extra reads) vs {m2}: "
          f"{per_io:.4f} per I/O")
    assert m1 - m2 <= 8, (m1, m2)  # set-up noise; 4000 reads would add thousands
    # KVM's count sees the doorbells its ioeventfds handle, halts and interrupts too: QD1
    # dd waits for each read (a halt and an interrupt each), so this is informative only
    k1, k2 = kvm_exits(w), kvm_exits(r)
    print(f"nvme: KVM exits {k1} vs {k2}: {(k1 - k2) / READS:.2f} per I/O (in-kernel "
          f"doorbells, halts, interrupts included)")

    # Boot 3: an instance store (nvme1) reads zeroes, keeps what is written, deallocates;
    # then a hostile guest driver posts bad PRPs and abuses queue creation on nvme0: the
    # card fails those commands, keeps serving, and a doorbell past the queue sets CFS.
    inst = tmp_path / "instance"
    inst.mkdir()
    ipat = "nitro-instance-store-pattern"
    h = run(env, "--volume", "null:16M,device=sdg", "--instance-store", f"16M,dir={inst}",
            "--cmdline", cmdline(
                # the two controllers probe in either order: find them by model
                "for c in /sys/class/nvme/nvme*; do grep -q Instance $c/model && i=${c##*/}; "
                "grep -q Elastic $c/model && e=${c##*/}; done; "
                "nvme id-ctrl /dev/$i | grep -e '^mn' -e '^vid' -e '^sn'; "
                "echo fresh $(dd if=/dev/${i}n1 bs=4096 count=1 iflag=direct 2>/dev/null | "
                "tr -d '\\000' | wc -c); "
                f"for k in 1 2 3 4 5 6 7 8; do echo {ipat}; done | "
                "dd of=/dev/${i}n1 bs=4096 oflag=direct conv=sync 2>/dev/null; "
                "dd if=/dev/${i}n1 bs=4096 count=1 iflag=direct 2>/dev/null | head -c 40; echo; "
                "echo written $(dd if=/dev/${i}n1 bs=4096 count=1 iflag=direct 2>/dev/null | "
                "tr -d '\\000' | wc -c); "
                "nvme dsm /dev/${i}n1 --ad --slbs=0 --blocks=8 >/dev/null && "
                "echo deallocated $(dd if=/dev/${i}n1 bs=4096 count=1 iflag=direct 2>/dev/null | "
                "tr -d '\\000' | wc -c); "
                f"for k in 1 2 3 4 5 6 7 8; do echo {ipat}; done | "
                "dd of=/dev/${i}n1 bs=4096 seek=100 oflag=direct conv=sync 2>/dev/null; "
                "dev=$(readlink -f /sys/class/nvme/$e/device); "
                "echo ${dev##*/} > /sys/bus/pci/drivers/nvme/unbind; "
                "hostile-nvme $dev > /tmp/hostile.log; echo hostile-nvme exit $?; "
                "cat /tmp/hostile.log", extra="loglevel=1"))
    assert h.returncode == 0, (h.stdout[-3000:], h.stderr[-2000:])
    ho = h.stdout
    assert re.search(r"^mn\s*: Amazon EC2 NVMe Instance Storage\s*$", ho, re.M), ho[-3000:]
    assert re.search(r"^sn\s*: AWS[0-9a-f]{17}\s*$", ho, re.M), ho[-3000:]
    assert "fresh 0" in ho, ho[-3000:]
    assert ipat in ho, ho[-3000:]
    assert f"written {8 * (len(ipat) + 1)}" in ho, ho[-3000:]  # the counting works
    assert "deallocated 0" in ho, ho[-3000:]
    # After the stop nothing of the instance store is left on the host: its file never
    # had a name, and its blocks went with the card.
    assert list(inst.iterdir()) == [], list(inst.iterdir())

    assert "hostile-nvme exit 0" in ho, ho[-3000:]
    for what in ("identify, PRP outside guest RAM", "identify, misaligned PRP",
                 "create CQ outside guest RAM", "read, PRP list outside guest RAM",
                 "read, PRP entry outside guest RAM", "read, misaligned PRP entry"):
        m = re.search(re.escape(what) + r": status 0x([0-9a-f]+)", ho)
        assert m and int(m.group(1), 16) != 0, (what, ho[-3000:])
    assert "read after the attacks: status 0x0" in ho, ho[-3000:]
    assert "doorbell past the queue: CSTS.CFS set" in ho, ho[-3000:]
    assert "identify after the reset: status 0x0" in ho, ho[-3000:]
    assert "controller failed" in h.stderr, h.stderr[-2000:]
