"""NitroTPM benchmark (issue 13), run inside the emulated host (bench/run.sh).

(a) TPM2_GetRandom(16) round trip, timed in the guest by bench/tpm_rtt.c through
    /dev/tpm0 (the stock kernel's tpm_crb driver in both): nitro (nitro-hv's CRB +
    nitro-card-tpm, libtpms) vs QEMU's tpm-crb + swtpm (libtpms too), same kernel, same
    initrd, side by side in one emulated host. Target: ratio <= 0.5.
(b) The boot-time cost of --tpm in nitro-hv: with NITRO_TRACE, the time from "cards
    connected" to "TPM measurements extended" (waiting for the card's connect and
    power-on, which run on a thread of their own from "VM created" on, the extends of the
    digests `nitro run` computed in its one pass over kernel and initrd, the command
    line's, the event log, disabling the platform hierarchy), median of RUNS starts;
    beside it the whole start-up to "vCPUs started" with and without --tpm. Target:
    <= 20 ms.
"""
import gzip
import hashlib
import os
import pathlib
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "pylib"))
from nitrotest import newc  # noqa: E402

CACHE = pathlib.Path(os.environ.get("NITRO_CACHE", os.path.expanduser("~/.cache/nitro")))
KERNEL = CACHE / "images" / "vmlinuz"
BASE = CACHE / "images" / "guest.img"
RTT = ROOT / "build" / "guest" / "tpm-rtt"
N = int(os.environ.get("BENCH_TPM_N", "200"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
CMDLINE = f'console=ttyS0 reboot=k panic=-1 nitro_exec="/bin/tpm-rtt {N}"'


def rtt(out, who):
    m = re.search(r"TPM-RTT median_us=([\d.]+) mean_us=([\d.]+)", out)
    if not m:
        sys.exit(f"bench/tpm.py: {who}: no result\n{out[-3000:]}")
    return float(m.group(1)), float(m.group(2))


def run_peer(args, who):
    try:
        p = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           errors="replace", timeout=420)
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"")
        out = out.decode(errors="replace") if isinstance(out, bytes) else out
        sys.exit(f"bench/tpm.py: {who} timed out\n{out[-3000:]}")
    return rtt(p.stdout + p.stderr, who)


def nitro_rtt(initrd):
    return run_peer([str(ROOT / "build" / "nitro"), "run", "--require-kvm", "--tpm", "--kernel", str(KERNEL),
                        "--initrd", str(initrd), "--cmdline", CMDLINE], "nitro")


def qemu_rtt(initrd, tmp):
    sock = tmp / "swtpm.sock"
    (tmp / "swtpm").mkdir()
    sw = subprocess.Popen(["swtpm", "socket", "--tpm2", "--tpmstate", f"dir={tmp / 'swtpm'}",
                           "--ctrl", f"type=unixio,path={sock}", "--flags", "not-need-init,startup-clear"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(500):
            if sock.exists():
                break
            time.sleep(0.01)
        return run_peer(["qemu-system-x86_64", "-M", "q35", "-accel", "kvm", "-cpu", "host", "-m", "256",
                            "-smp", "1", "-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio",
                            "-no-reboot", "-kernel", str(KERNEL), "-initrd", str(initrd), "-append", CMDLINE,
                            "-chardev", f"socket,id=chrtpm,path={sock}", "-tpmdev", "emulator,id=tpm0,chardev=chrtpm",
                            "-device", "tpm-crb,tpmdev=tpm0"], "qemu")
    finally:
        sw.terminate()
        sw.wait()


def hv_trace(tpm):
    """nitro-hv's NITRO_TRACE phases: {phase: ms since its start}."""
    args = [str(ROOT / "build" / "nitro"), "run", "--require-kvm", "--kernel", str(KERNEL), "--initrd", str(BASE),
            "--cmdline", 'console=ttyS0 reboot=k panic=-1 nitro_exec="true"']
    if tpm:
        args.insert(3, "--tpm")
    env = dict(os.environ, NITRO_TRACE="1")
    p = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace",
                       env=env, timeout=600)
    phases = {m.group(2): float(m.group(1)) for m in re.finditer(r"nitro-hv:\s+([\d.]+) ms (.+)", p.stderr)}
    if "vCPUs started" not in phases or (tpm and "TPM measurements extended" not in phases):
        sys.exit(f"bench/tpm.py: no trace\n{p.stderr[-2000:]}")
    return phases


def launcher_pass():
    """The launcher's one pass over kernel and initrd, SHA-384 and SHA-256 (nitro run's CLI
    and nitrod's security chip, each only when its digest cache misses: a file's first
    boot): outside nitro-hv, so timed here (hashlib is OpenSSL as well)."""
    t = time.perf_counter()
    for f in (KERNEL, BASE):
        a, b = hashlib.sha384(), hashlib.sha256()
        with open(f, "rb") as fh:
            while chunk := fh.read(1 << 16):
                a.update(chunk)
                b.update(chunk)
    return (time.perf_counter() - t) * 1000


def main():
    if not shutil.which("swtpm"):
        sys.exit("bench/tpm.py: swtpm is missing (make bench installs it)")
    with tempfile.TemporaryDirectory() as d:
        tmp = pathlib.Path(d)
        initrd = tmp / "rtt.img"
        initrd.write_bytes(BASE.read_bytes() + gzip.compress(
            newc([("bin", 0o40755, b""), ("bin/tpm-rtt", 0o100755, RTT.read_bytes())])))
        n_med, n_mean = nitro_rtt(initrd)
        q_med, q_mean = qemu_rtt(initrd, tmp)
    print(f"tpm: GetRandom round trip nitro {n_med:.0f} us vs QEMU tpm-crb + swtpm {q_med:.0f} us, "
          f"ratio: {n_med / q_med:.2f} (medians of {N}; means {n_mean:.0f} / {q_mean:.0f} us)")
    traced = [hv_trace(True) for _ in range(RUNS)]
    plain = [hv_trace(False) for _ in range(RUNS)]
    cost = statistics.median(t["TPM measurements extended"] - t["cards connected"] for t in traced)
    start = statistics.median(t["TPM card connected, TPM started"] - t["cards connected"] for t in traced)
    with_tpm = statistics.median(t["vCPUs started"] for t in traced)
    without = statistics.median(t["vCPUs started"] for t in plain)
    launcher = statistics.median(launcher_pass() for _ in range(RUNS))
    print(f"tpm: boot-time cost of --tpm in nitro-hv {cost:.1f} ms (of which waiting for the card's power-on "
          f"{start:.1f} ms; whole start-up to vCPUs {with_tpm:.0f} ms with, {without:.0f} ms without; "
          f"the launcher's pass over kernel + initrd on a digest-cache miss, outside nitro-hv, {launcher:.0f} ms; "
          f"medians of {RUNS})")


if __name__ == "__main__":
    main()
