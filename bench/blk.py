"""Block benchmark (issue 3): the test driver (tests/driver, plays the guest) against
nitro-card-ebs and, in the same run, qemu-storage-daemon's vhost-user-blk export.

4 KiB random read and write at QD1 and QD32, each from a fresh back end, for:
  in-memory: nitro-card-ebs null:256M (reads zeroes, drops writes; --encrypt for the
             encrypted row) vs qsd null-co (which does not even zero the read buffers)
  file:      a 256 MiB file on tmpfs (/dev/shm) for both (nitro: a volume through
             io_uring; qsd: a raw file), written in full first so reads hit real data
             (and, encrypted, really decrypt)
Both sides are driven the same way (the driver sleeps on the call eventfd). nitro runs
one single-threaded card (one core) with --poll-us (adaptive busy-poll before sleeping);
qsd runs with its defaults (one main-loop thread). Every configuration runs once per round
in each case (BENCH_ROUNDS rounds, default 3, of BENCH_SECONDS, default 3) and the median
counts, so that other work on a shared machine hits both sides alike.
"""
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
BUILD = ROOT / "build"
DRIVER = BUILD / "vu-blk-driver"
CARD = BUILD / "nitro-card-ebs"
SECONDS = os.environ.get("BENCH_SECONDS", "3")
POLL_US = os.environ.get("BENCH_POLL_US", "50")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
SIZE = 256 << 20
CASES = [("randread", 1), ("randread", 32), ("randwrite", 1), ("randwrite", 32)]


def wait_sock(path, proc):
    for _ in range(200):
        if os.path.exists(path):
            return
        if proc.poll() is not None:
            sys.exit(f"bench: back end exited ({proc.returncode})")
        time.sleep(0.05)
    sys.exit(f"bench: no socket {path}")


def drive(sock, rw, qd, bs=4096):
    p = subprocess.run([str(DRIVER), "--socket", sock, "bench", "--rw", rw, "--bs", str(bs),
                        "--qd", str(qd), "--seconds", SECONDS],
                       capture_output=True, text=True, timeout=int(SECONDS) * 10 + 60)
    m = re.search(r"iops=(\d+) p50_us=(\d+) p99_us=(\d+) errors=0", p.stdout)
    if p.returncode or not m:
        sys.exit(f"bench: driver failed: {p.stdout} {p.stderr}")
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def run_one(cmd_fn, rw, qd, fill):
    d = tempfile.mkdtemp(dir="/dev/shm")
    sock = os.path.join(d, "s.sock")
    p = subprocess.Popen(cmd_fn(d, sock), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_sock(sock, p)
        if fill:  # every block holds data (ciphertext when encrypted)
            drive(sock, "fill", 32, 1 << 20)
        return drive(sock, rw, qd)
    finally:
        p.terminate()
        p.wait(timeout=10)
        shutil.rmtree(d, ignore_errors=True)


def main():
    if not CARD.exists():
        sys.exit("bench: build/nitro-card-ebs is missing (make all)")
    nitro = str(BUILD / "nitro")

    def card_null(encrypted):
        def cmd(d, sock):
            return [str(CARD), "--socket-path", sock, "--iops", "0", "--throughput", "0",
                    "--poll-us", POLL_US, *(["--encrypt"] if encrypted else []), "null:256M"]
        return cmd

    def card_file(encrypted):
        def cmd(d, sock):
            path = os.path.join(d, "vol.img")
            args = [nitro, "volume", "create", path, "--size", "256M"]
            if not encrypted:
                args.append("--unencrypted")
            env = dict(os.environ, NITRO_STATE=d)
            subprocess.run(args, check=True, capture_output=True, env=env)
            os.environ["NITRO_STATE"] = d  # the card unwraps the key with this master key
            return [str(CARD), "--socket-path", sock, "--iops", "0", "--throughput", "0",
                    "--poll-us", POLL_US, path]
        return cmd

    def qsd(driver):
        def cmd(d, sock):
            if driver == "null-co":
                node = f"driver=null-co,node-name=n,size={SIZE}"
            else:
                img = os.path.join(d, "qsd.img")
                with open(img, "wb") as f:
                    f.truncate(SIZE)
                node = f"driver=file,node-name=n,filename={img}"
            return ["qemu-storage-daemon", "--blockdev", node, "--export",
                    f"type=vhost-user-blk,id=e,node-name=n,addr.type=unix,addr.path={sock},"
                    "writable=on"]
        return cmd

    configs = [("nitro-null", card_null(False), False), ("qsd-null", qsd("null-co"), False),
               ("nitro-null-enc", card_null(True), False),
               ("nitro-file", card_file(False), True), ("qsd-file", qsd("file"), True),
               ("nitro-file-enc", card_file(True), True)]
    # Every configuration runs once per round, case by case, so that a burst of other
    # work on the machine hits all of them alike; each figure is the median of the rounds.
    runs = {}
    for rw, qd in CASES:
        for _ in range(ROUNDS):
            for label, fn, fill in configs:
                runs.setdefault((label, rw, qd), []).append(run_one(fn, rw, qd, fill))
    res = {k: sorted(v)[len(v) // 2] for k, v in runs.items()}

    print(f"4 KiB, IOPS (p50/p99 us), median of {ROUNDS} interleaved rounds of {SECONDS} s; "
          f"nitro: one card core, --poll-us {POLL_US}")
    for rw, qd in CASES:
        def f(label):
            i, p50, p99 = res[(label, rw, qd)]
            return f"{i:>8} ({p50}/{p99})"
        print(f"4k {rw:9} qd{qd:<2}  in-memory: nitro {f('nitro-null')} "
              f"nitro+enc {f('nitro-null-enc')} qsd null-co {f('qsd-null')}")
        print(f"4k {rw:9} qd{qd:<2}  file/tmpfs: nitro {f('nitro-file')} "
              f"nitro+enc {f('nitro-file-enc')} qsd file {f('qsd-file')}")

    def iops(label, rw, qd):
        return res[(label, rw, qd)][0]

    r = iops("nitro-null", "randread", 32) / iops("qsd-null", "randread", 32)
    print(f"nitro/qsd 4k-randread-qd32 iops ratio: {r:.2f}  (nitro null vs qsd null-co; "
          f"target >= 2.0)")
    rf = iops("nitro-file", "randread", 32) / iops("qsd-file", "randread", 32)
    print(f"nitro/qsd 4k-randread-qd32 file iops ratio: {rf:.2f}  (tmpfs; target >= 1.25)")
    for rw in ("randread", "randwrite"):
        c = 1 - iops("nitro-file-enc", rw, 32) / iops("nitro-file", rw, 32)
        print(f"encryption cost at 4k-{rw}-qd32 (file, data written first): "
              f"{c * 100:.0f}% of IOPS  (target <= 40%)")


if __name__ == "__main__":
    main()
