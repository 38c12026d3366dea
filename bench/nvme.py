"""NVMe benchmark (issue 14), run inside one emulated host (bench/run.sh).

The same guest (Debian's stock kernel, the NVMe test initramfs with fio:
build/nvme-fio.img, tests/system/nvme_initrd.sh WITH_FIO=1, made by `make bench`), one vCPU, 512 MiB, runs Debian's fio: 4 KiB
random reads, queue depth 32, one job, libaio, O_DIRECT, time-based (BENCH_NVME_SECONDS,
default 10, after a 1 s ramp) against a 1 GiB null device that reads zeroes, in:
  nitro nvme:    nitro run --volume null:1G,iops=0,throughput=0 (bus=nvme: nitro-hv's
                 register file, the EBS card's NVMe queues on its null back end; no QoS
                 limit: the card's default is gp3's 3000 IOPS, which QEMU does not have)
  nitro virtio:  the same with bus=virtio (the same card, virtio-blk)
  qemu nvme:     qemu-system-x86_64 -M q35 -accel kvm, -device nvme,ioeventfd=on on a
                 null-co block node with read-zeroes=on (the same null back end)
Every configuration boots once per round (BENCH_NVME_ROUNDS rounds, default 3), the rounds
interleaved so that other work on the machine hits all alike; the median counts.
"""
import os
import pathlib
import re
import statistics
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
BUILD = pathlib.Path(os.environ.get("BENCH_BUILD", ROOT / "build"))
CACHE = pathlib.Path(os.environ.get("NITRO_CACHE", os.path.expanduser("~/.cache/nitro")))
KERNEL = CACHE / "images" / "vmlinuz"
SECONDS = int(os.environ.get("BENCH_NVME_SECONDS", "10"))
ROUNDS = int(os.environ.get("BENCH_NVME_ROUNDS", "3"))
SIZE = 1 << 30


def fio_cmdline(dev):
    fio = (f"fio --name=b --filename={dev} --rw=randread --bs=4k --iodepth=32 --numjobs=1 "
           f"--ioengine=libaio --direct=1 --time_based --ramp_time=1 --runtime={SECONDS} "
           "--output-format=terse --terse-version=3 > /tmp/fio.out 2>&1; "
           "echo FIO-IOPS=$(cut -d';' -f8 /tmp/fio.out); cat /tmp/fio.out | head -c 300")
    return f'console=ttyS0 reboot=k panic=-1 loglevel=3 nitro_exec="{fio}"'


def iops(args, who):
    try:
        p = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           errors="replace", timeout=600)
    except subprocess.TimeoutExpired as e:
        out = e.stdout or b""
        out = out.decode(errors="replace") if isinstance(out, bytes) else out
        sys.exit(f"bench/nvme.py: {who} timed out\n{out[-3000:]}")
    m = re.search(r"FIO-IOPS=(\d+)", p.stdout)
    if not m or not int(m.group(1)):
        sys.exit(f"bench/nvme.py: {who}: no result\n{p.stdout[-3000:]}\n{p.stderr[-2000:]}")
    # the NVMe card's own counts (printed when it stops): commands per wake-up and interrupt
    c = re.search(r"nvme \S+: (\d+) reads .* (\d+) queue kicks, (\d+) doorbell writes, "
                  r"(\d+) interrupts", p.stderr)
    extra = ""
    if c:
        r, k, d, i = (int(x) for x in c.groups())
        extra = (f" (card: {r} reads, {r / max(k, 1):.1f} per wake-up by a doorbell, "
                 f"{d / max(r, 1):.3f} doorbell writes per read, "
                 f"{r / max(i, 1):.1f} reads per interrupt)")
    # nitro-hv --stats: KVM's count of VM exits (those handled in the kernel included),
    # over the whole boot, per read the card served
    k = re.search(r"KVM exits: (\d+) total", p.stderr)
    if k:
        n = int(k.group(1))
        extra += f" (KVM exits of the whole boot: {n}" + (
            f", {n / max(r, 1):.2f} per read the card served)" if c else ")")
    print(f"bench/nvme.py: {who}: {m.group(1)} IOPS{extra}", flush=True)
    return int(m.group(1))


def nitro(img, bus):
    return [str(BUILD / "nitro"), "run", "--require-kvm", "--stats", "--cpus", "1", "--memory",
            "512", "--kernel", str(KERNEL), "--initrd", str(img), "--volume",
            # iops=0: no QoS limit (the card's default is gp3's 3000 IOPS, which would be
            # what this measured, not the I/O path); QEMU's null-co has no limit either.
            f"null:{SIZE >> 20}M,bus={bus},iops=0,throughput=0",
            "--cmdline", fio_cmdline("/dev/nvme0n1" if bus == "nvme" else "/dev/vda")]


def qemu(img):
    return ["qemu-system-x86_64", "-M", "q35", "-accel", "kvm", "-cpu", "host", "-m", "512",
            "-smp", "1", "-nodefaults", "-no-user-config", "-display", "none", "-serial",
            "stdio", "-no-reboot", "-kernel", str(KERNEL), "-initrd", str(img), "-append",
            fio_cmdline("/dev/nvme0n1"), "-blockdev",
            f"driver=null-co,node-name=n0,size={SIZE},read-zeroes=on",
            "-device", "nvme,drive=n0,serial=nitrobench,ioeventfd=on"]


def main():
    img = ROOT / "build" / "nvme-fio.img"  # the guest, whichever BENCH_BUILD
    if not img.exists():
        sys.exit("bench/nvme.py: build/nvme-fio.img is missing (make build/nvme-fio.img)")
    runs = {"nitro-nvme": [], "nitro-virtio": [], "qemu-nvme": []}
    for _ in range(ROUNDS):
        runs["nitro-nvme"].append(iops(nitro(img, "nvme"), "nitro nvme"))
        runs["qemu-nvme"].append(iops(qemu(img), "qemu nvme"))
        runs["nitro-virtio"].append(iops(nitro(img, "virtio"), "nitro virtio-blk"))
    med = {k: int(statistics.median(v)) for k, v in runs.items()}
    n, q, v = med["nitro-nvme"], med["qemu-nvme"], med["nitro-virtio"]
    print(f"nvme: nitro {n} IOPS vs QEMU nvme (ioeventfd, same null back end) {q} IOPS, "
          f"ratio: {n / q:.2f}  (target >= 1.5)")
    print(f"nvme vs virtio-blk (nitro, same card back end): {n} IOPS vs {v} IOPS, "
          f"ratio: {n / v:.2f}  (target >= 0.9)")
    print(f"nvme: fio 4 KiB randread QD32, 1 job, libaio, direct, {SECONDS} s; medians of "
          f"{ROUNDS} interleaved rounds; all runs: {runs}")


if __name__ == "__main__":
    main()
