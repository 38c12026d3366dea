"""A host crash right after an acked FLUSH loses no acknowledged write.

The card runs inside an emulated host (QEMU, `nitro emuhost`) on a volume in the test's
folder, which that host mounts over 9p with its own page cache; the driver writes and
flushes, and then the emulated host is reset on the spot (sysrq 'b': no sync, no
unmount), so whatever its kernel had only in memory is gone. Back on this machine the
volume is opened by a new card and read. The control run leaves the FLUSH out: its data
must be lost, which shows the crash really drops unsynced writes (else this test could
not fail). Each case boots one emulated host (~10 s). Run with make ebs-test.
"""
import os
import shutil
import subprocess

import pytest

from test_ebs import CARD, DRIVER, cards, create, env, run  # noqa: F401

NITRO_BIN = os.path.abspath(os.path.join(os.path.dirname(CARD), "nitro"))
SECTORS = 16384  # 8 MiB

SCRIPT = """set -eu
card() {{ exec {card} --socket-path /tmp/s.sock --iops 0 --throughput 0 vol.img; }}
card > /tmp/card.log 2>&1 &
i=0
while [ ! -S /tmp/s.sock ]; do
	i=$((i + 1)); [ $i -lt 200 ] || {{ cat /tmp/card.log >&2; exit 1; }}
	sleep 0.05
done
{driver} --socket /tmp/s.sock write-flush --sectors {sectors} --qd 32 {extra}
sleep 1  # let the console drain; page-cache writeback waits 30 s
echo b > /proc/sysrq-trigger
sleep 60
echo "the emulated host did not reset"
"""


@pytest.mark.parametrize("flush", [True, False], ids=["flushed", "control-not-flushed"])
def test_host_crash_after_flush(tmp_path, env, cards, flush):
    vol = tmp_path / "vol.img"
    create(vol, env)
    # The emulated host sees this machine's / read-only but has its own /tmp, where the
    # build folder may be (CI clones under /tmp): the programs go in the shared folder.
    card, driver = shutil.copy(CARD, tmp_path), shutil.copy(DRIVER, tmp_path)
    (tmp_path / "crash.sh").write_text(SCRIPT.format(
        card=card, driver=driver, sectors=SECTORS, extra="" if flush else "--no-flush"))
    p = subprocess.run([NITRO_BIN, "emuhost", "--memory", "1024", "--", "sh", "crash.sh"],
                       cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, errors="replace", timeout=600)
    want = f"flushed {SECTORS} sectors" if flush else f"written {SECTORS} sectors, not flushed"
    assert want in p.stdout, p.stdout + p.stderr
    assert "did not reset" not in p.stdout and p.returncode != 0, p.stdout + p.stderr
    assert "stopped without a result" in p.stderr, p.stderr
    card = cards(tmp_path, vol, env)
    rc, out, err = card.driver("verify", "--sectors", str(SECTORS))
    if flush:
        assert rc == 0 and f"verified {SECTORS} sectors" in out, out + err + card.output()
    else:
        assert rc != 0, "unflushed writes survived the crash: the test proves nothing here"
