"""Snapshot benchmark (issue 15): a 1 GiB encrypted volume holding 1 GiB of data (imported
from a raw image of random bytes), a first full snapshot, then 1 MiB rewritten through the
EBS card (the test driver, tests/driver) and a second, incremental snapshot into the same
store. Prints what the incremental snapshot took and what it added to the store:

  snapshot: 1 MiB changed of a 1 GiB volume: incremental snapshot X ms, Y KiB stored

(and the full snapshot's figures for reference). A snapshot reads, decrypts and hashes
every allocated chunk of the volume (there is no changed-block tracking yet), so X grows
with the data the volume holds; Y with what changed. Files live in a temporary folder
under build/ (a disk, not tmpfs); BENCH_ROUNDS (default 3) rounds, the median counts.
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
NITRO = str(BUILD / "nitro")
CARD = str(BUILD / "nitro-card-ebs")
DRIVER = str(BUILD / "vu-blk-driver")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
GiB, MiB = 1 << 30, 1 << 20


def du(path):
    return sum(os.lstat(os.path.join(d, f)).st_blocks * 512
               for d, _, fs in os.walk(path) for f in fs)


def nitro(env, *args):
    p = subprocess.run([NITRO, *map(str, args)], capture_output=True, text=True, env=env,
                       timeout=600)
    if p.returncode:
        sys.exit(f"bench: nitro {args}: {p.stderr}")
    return p


def change_1mib(d, vol, env, first):
    sock = os.path.join(d, "card.sock")
    card = subprocess.Popen([CARD, "--socket-path", sock, "--iops", "0", "--throughput", "0",
                             str(vol)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            if os.path.exists(sock):
                break
            time.sleep(0.05)
        p = subprocess.run([DRIVER, "--socket", sock, "write-flush", "--first", str(first),
                            "--sectors", "2048", "--tag"], capture_output=True, text=True,
                           timeout=120)
        if p.returncode:
            sys.exit(f"bench: driver: {p.stdout} {p.stderr}")
    finally:
        card.terminate()
        card.wait(10)
        if os.path.exists(sock):
            os.unlink(sock)


def timed_snapshot(env, vol, store):
    t = time.monotonic()
    before = du(store) if os.path.exists(store) else 0
    p = nitro(env, "snapshot", "create", vol, store)
    ms = (time.monotonic() - t) * 1000
    m = re.search(r"(\d+) new", p.stderr)
    return ms, (du(store) - before) / 1024, int(m.group(1))


def main():
    d = tempfile.mkdtemp(prefix="bench-snapshot-", dir=BUILD)
    try:
        env = dict(os.environ, NITRO_STATE=os.path.join(d, "state"))
        img = os.path.join(d, "img.raw")
        with open(img, "wb") as f:
            for _ in range(GiB // (16 * MiB)):
                f.write(os.urandom(16 * MiB))
        vol = os.path.join(d, "a.vol")
        nitro(env, "volume", "create", vol, "--from-image", img)
        os.unlink(img)
        full, inc = [], []
        for r in range(ROUNDS):
            store = os.path.join(d, f"store{r}")
            full.append(timed_snapshot(env, vol, store))
            change_1mib(d, vol, env, (100 + 7 * r) * 2048)  # a different MiB each round
            inc.append(timed_snapshot(env, vol, store))
        full.sort()
        inc.sort()
        f, i = full[len(full) // 2], inc[len(inc) // 2]
        print(f"snapshot: full snapshot of a 1 GiB volume (1 GiB of data): {f[0]:.0f} ms, "
              f"{f[1]:.0f} KiB stored ({f[2]} chunks)")
        print(f"snapshot: 1 MiB changed of a 1 GiB volume: incremental snapshot {i[0]:.0f} ms, "
              f"{i[1]:.0f} KiB stored")
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
