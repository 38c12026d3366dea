"""Block benchmark (issue 3): the test driver (tests/driver, plays the guest) against
nitro-card-ebs and, in the same run, qemu-storage-daemon's vhost-user-blk export.

4 KiB random read and write at QD1 and QD32 for:
  in-memory: nitro-card-ebs on a volume in /dev/shm vs qsd null-co (qsd's in-memory peer;
             nitro has no null backend yet, so its side still copies through the page cache)
  file:      a 256 MiB file on tmpfs for both (nitro: a volume; qsd: a raw file)
nitro runs encryption off and on. Both sides are driven the same way (eventfd waits).
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
SIZE = 256 << 20


def wait_sock(path, proc):
    for _ in range(200):
        if os.path.exists(path):
            return
        if proc.poll() is not None:
            sys.exit(f"bench: back end exited ({proc.returncode})")
        time.sleep(0.05)
    sys.exit(f"bench: no socket {path}")


def drive(sock, rw, qd):
    p = subprocess.run([str(DRIVER), "--socket", sock, "bench", "--rw", rw, "--bs", "4096",
                        "--qd", str(qd), "--seconds", SECONDS],
                       capture_output=True, text=True, timeout=int(SECONDS) * 10 + 30)
    m = re.search(r"iops=(\d+) p50_us=(\d+) p99_us=(\d+)", p.stdout)
    if p.returncode or not m:
        sys.exit(f"bench: driver failed: {p.stdout} {p.stderr}")
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def serve(cmd, sock):
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_sock(sock, p)
    return p


def run_all(cmd_fn, label, results):
    for rw in ("randread", "randwrite"):
        for qd in (1, 32):
            d = tempfile.mkdtemp(dir="/dev/shm")
            sock = os.path.join(d, "s.sock")
            p = serve(cmd_fn(d, sock), sock)
            try:
                results[(label, rw, qd)] = drive(sock, rw, qd)
            finally:
                p.terminate()
                p.wait(timeout=10)
                shutil.rmtree(d, ignore_errors=True)


def main():
    if not CARD.exists():
        sys.exit("bench: build/nitro-card-ebs is missing (make all)")
    nitro = str(BUILD / "nitro")

    def vol(d, encrypted):
        path = os.path.join(d, "vol.img")
        args = [nitro, "volume", "create", path, "--size", "256M"]
        if not encrypted:
            args.append("--unencrypted")
        subprocess.run(args, check=True, capture_output=True,
                       env=dict(os.environ, NITRO_STATE=d))
        return path

    def card(encrypted):
        def cmd(d, sock):
            os.environ["NITRO_STATE"] = d
            return [str(CARD), "--socket-path", sock, "--iops", "0", "--throughput", "0",
                    vol(d, encrypted)]
        return cmd

    def qsd_null(d, sock):
        return ["qemu-storage-daemon", "--blockdev", f"driver=null-co,node-name=n,size={SIZE}",
                "--export", f"type=vhost-user-blk,id=e,node-name=n,addr.type=unix,addr.path={sock},writable=on"]

    def qsd_file(d, sock):
        img = os.path.join(d, "qsd.img")
        with open(img, "wb") as f:
            f.truncate(SIZE)
        return ["qemu-storage-daemon", "--blockdev", f"driver=file,node-name=f,filename={img}",
                "--export", f"type=vhost-user-blk,id=e,node-name=f,addr.type=unix,addr.path={sock},writable=on"]

    res = {}
    run_all(card(False), "nitro", res)
    run_all(card(True), "nitro-enc", res)
    run_all(qsd_null, "qsd-null", res)
    run_all(qsd_file, "qsd-file", res)
    for rw in ("randread", "randwrite"):
        for qd in (1, 32):
            n, e, q, f = (res[(l, rw, qd)] for l in ("nitro", "nitro-enc", "qsd-null", "qsd-file"))
            print(f"4k {rw:9} qd{qd:<2}  nitro {n[0]:>7} iops p50 {n[1]:>4} p99 {n[2]:>5} us | "
                  f"nitro+enc {e[0]:>7} iops | qsd null-co {q[0]:>7} | qsd file {f[0]:>7}")
    r = res[("nitro", "randread", 32)][0] / res[("qsd-null", "randread", 32)][0]
    print(f"nitro/qsd 4k-randread-qd32 iops ratio: {r:.2f}  (nitro volume on /dev/shm vs qsd "
          f"null-co; target >= 2.0 for an in-memory backend)")
    rf = res[("nitro", "randread", 32)][0] / res[("qsd-file", "randread", 32)][0]
    print(f"nitro/qsd 4k-randread-qd32 file iops ratio: {rf:.2f}  (target >= 1.25)")
    # Reads of never-written sectors skip decryption (they read as zeroes), so the honest
    # figure is the write one: every write is encrypted.
    enc = 1 - res[("nitro-enc", "randwrite", 32)][0] / res[("nitro", "randwrite", 32)][0]
    print(f"encryption cost at 4k-randwrite-qd32: {enc * 100:.0f}% of IOPS  (target <= 40%)")


if __name__ == "__main__":
    main()
