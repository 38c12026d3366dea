"""Boot benchmark (issue: hypervisor core). Run inside the emulated host (bench/run.sh).

Same kernel, initrd and command line for both peers:
  nitro:  build/nitro run (nitro-hv, host-side decompressed kernel, cached)
  qemu:   qemu-system-x86_64 -M microvm,pcie=on -accel kvm
(a) wall time from process start to the guest's first userspace line (the initramfs banner);
(b) memory overhead = RSS of the VMM process minus the RSS of its guest-RAM mapping, read
    from /proc/PID/smaps while the guest sits in userspace.
"""
import os
import pathlib
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
CACHE = pathlib.Path(os.environ.get("NITRO_CACHE", os.path.expanduser("~/.cache/nitro")))
KERNEL = CACHE / "images" / "vmlinuz"
INITRD = CACHE / "images" / "guest.img"
BANNER = b"nitro guest: userspace up"
MEM_MIB = 256
CMDLINE = 'console=ttyS0 reboot=k panic=-1 nitro_exec="sleep 3; poweroff -f"'
RUNS = int(os.environ.get("BENCH_RUNS", "3"))


def nitro_cmd():
    return [str(ROOT / "build" / "nitro"), "run", "--require-kvm", "--memory", str(MEM_MIB),
            "--kernel", str(KERNEL), "--initrd", str(INITRD), "--cmdline", CMDLINE]


def qemu_cmd():
    return ["qemu-system-x86_64", "-M", "microvm,pcie=on", "-accel", "kvm", "-cpu", "host",
            "-m", str(MEM_MIB), "-smp", "1", "-nodefaults", "-no-user-config", "-display", "none",
            "-serial", "stdio", "-no-reboot", "-kernel", str(KERNEL), "-initrd", str(INITRD),
            "-append", CMDLINE]


def overhead_kib(pid, guest_kib, guest_name):
    """Total RSS minus the RSS of the guest RAM mapping (by name, else by size)."""
    total = guest = 0
    cur_name, cur_size = "", 0
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            parts = line.split()
            if "-" in parts[0] and len(parts) >= 5 and not parts[0].endswith(":"):
                cur_name = parts[5] if len(parts) > 5 else ""
                lo, hi = (int(x, 16) for x in parts[0].split("-"))
                cur_size = (hi - lo) // 1024
            elif parts[0] == "Rss:":
                kib = int(parts[1])
                total += kib
                if (guest_name and guest_name in cur_name) or (not guest_name and cur_size == guest_kib):
                    guest += kib
    return total - guest


def one(cmd, guest_name):
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    t_banner, buf = None, b""
    while True:
        chunk = os.read(p.stdout.fileno(), 65536)
        if not chunk:
            break
        buf += chunk
        if t_banner is None and BANNER in buf:
            t_banner = time.monotonic() - t0
            ov = overhead_kib(p.pid, MEM_MIB * 1024, guest_name)
    p.wait()
    if t_banner is None:
        sys.exit(f"bench: {cmd[0]} never reached userspace (status {p.returncode}):\n"
                 + buf[-2000:].decode(errors="replace"))
    return t_banner, ov


def main():
    peers = {"nitro": (nitro_cmd(), "nitro-guest-ram"), "qemu": (qemu_cmd(), None)}
    for name, (cmd, g) in peers.items():  # warm-up: page cache, nitro's kernel cache
        one(cmd, g)
    res = {n: [] for n in peers}
    for _ in range(RUNS):  # interleaved so both see the same machine state
        for name, (cmd, g) in peers.items():
            res[name].append(one(cmd, g))
    t = {n: statistics.median(x[0] for x in r) for n, r in res.items()}
    ov = {n: statistics.median(x[1] for x in r) for n, r in res.items()}
    print(f"boot to first userspace line, median of {RUNS}: nitro {t['nitro']:.3f} s, "
          f"qemu microvm {t['qemu']:.3f} s")
    print(f"nitro/qemu boot-time ratio: {t['nitro'] / t['qemu']:.2f}  (target <= 0.6)")
    print(f"nitro-hv memory overhead: {ov['nitro']:.0f} KiB  (target <= 3072; "
          f"qemu microvm: {ov['qemu']:.0f} KiB)")


if __name__ == "__main__":
    main()
