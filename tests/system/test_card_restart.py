"""A card that dies and is restarted on the same socket: nitro-hv notices the hang-up,
reconnects, hands the new card the memory table and the running queues and kicks them;
the guest's disk keeps working with no reset. virtio-blk: each queue from the guest's
used index. NVMe: the new card resumes from the state the last one kept in the shared
memfd nitro-hv holds (queues, shadow doorbells, copies of the commands in flight)."""
import os
import signal
import subprocess
import threading
import time

from conftest import NITRO, ROOT, cmdline

CARD = ROOT / "build" / "nitro-card-ebs"
PATTERN = "nitro-card-restart-pattern"
NVME_IMG = ROOT / "build" / "nvme-guest.img"


def start_card(sock, vol, env, nvme=False):
    p = subprocess.Popen([str(CARD), *(["--nvme"] if nvme else []), "--socket-path", str(sock),
                          str(vol)], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for _ in range(200):
        if os.path.exists(sock):
            return p
        assert p.poll() is None, p.stderr.read()
        time.sleep(0.02)
    raise AssertionError("card socket never appeared")


def new_volume(tmp_path, prefix):
    """A fresh 16 MiB volume under build/test-card-restart (a disk file system, not tmpfs)
    made by `nitro volume create`, and the environment whose state folder made it."""
    env = dict(os.environ, NITRO_STATE=str(tmp_path / "state"))
    voldir = ROOT / "build" / "test-card-restart"
    voldir.mkdir(exist_ok=True)
    vol = voldir / f"{prefix}-{os.getpid()}.vol"
    vol.unlink(missing_ok=True)
    c = subprocess.run([str(NITRO), "volume", "create", str(vol), "--size", "16M"],
                       capture_output=True, text=True, timeout=60, env=env)
    assert c.returncode == 0, c
    return env, vol


def test_guest_disk_survives_a_card_restart(tmp_path):
    # The volume lives on a disk file system (not tmpfs) so the card's io_uring back end
    # completes requests out of order; four readers in the guest keep several in flight.
    env, vol = new_volume(tmp_path, "v")
    sock = tmp_path / "card.sock"
    card = start_card(sock, vol, env)
    # The guest writes a pattern, then reads block after block with O_DIRECT (each read
    # reaches the card) in four concurrent readers, printing its progress; the card is
    # killed and restarted mid-way.
    reader = ("i=0; while [ $i -lt 150 ]; do "
              "dd if=/dev/vda of=/dev/null bs=4096 count=1 skip=$((i % 64 + {k})) iflag=direct "
              "2>/dev/null || echo READ-ERROR; {echo}i=$((i+1)); sleep 0.05; done")
    guest = ("echo " + PATTERN + " | dd of=/dev/vda bs=4096 conv=fsync 2>/dev/null; " +
             "".join("(" + reader.format(k=k, echo="") + ") & " for k in (100, 200, 300)) +
             reader.format(k=0, echo="echo iter $i; ") + "; wait; "
             "dd if=/dev/vda bs=4096 count=1 iflag=direct 2>/dev/null | head -c 40; echo; "
             "echo finished")
    hv = subprocess.Popen([str(NITRO), "run", "--require-kvm", "--vhost-user", f"blk,{sock}",
                           "--cmdline", cmdline(guest)], stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          errors="replace", env=env)
    out, err = [], []
    t_err = threading.Thread(target=lambda: err.extend(hv.stderr), daemon=True)
    t_err.start()
    killed = restarted = None
    deadline = time.time() + 240
    for line in hv.stdout:
        out.append(line)
        if killed is None and line.startswith("iter 30"):
            card.send_signal(signal.SIGKILL)
            card.wait()
            killed = time.time()
            time.sleep(1.0)  # the guest's next read waits for the card
            os.unlink(sock)
            card = start_card(sock, vol, env)
            restarted = time.time()
        if time.time() > deadline:
            hv.kill()
            break
    hv.wait(timeout=60)
    t_err.join(timeout=5)
    card.send_signal(signal.SIGTERM)
    card.wait(timeout=10)
    vol.unlink(missing_ok=True)
    text = "".join(out)
    log = "".join(err)
    assert killed and restarted, text[-2000:]
    assert hv.returncode == 0, (text[-2000:], log)
    assert "finished" in text, text[-2000:]
    assert "iter 149" in text
    assert not [l for l in out if l.strip() == "READ-ERROR"], text[-3000:]
    assert PATTERN in text.split("iter 149")[-1]  # read back through the new card
    assert "connection lost; waiting for it to restart" in log, log
    assert "reconnected" in log, log


def test_nvme_disk_survives_a_card_restart(tmp_path):
    """The NVMe card is killed (SIGKILL) while four readers and a writer keep commands in
    flight: the guest sees a pause, no I/O error, no controller reset (dmesg), and every
    block written across the restart reads back."""
    assert NVME_IMG.exists(), "make build/nvme-guest.img"
    env, vol = new_volume(tmp_path, "n")
    sock = tmp_path / "nvme.sock"
    card = start_card(sock, vol, env, nvme=True)
    d = "/dev/nvme0n1"
    reader = ("i=0; while [ $i -lt 150 ]; do "
              f"dd if={d} of=/dev/null bs=4096 count=1 skip=$((i % 64 + {{k}})) iflag=direct "
              "2>/dev/null || echo READ-ERROR; {echo}i=$((i+1)); sleep 0.05; done")
    writer = ("j=0; while [ $j -lt 60 ]; do echo w-$j-" + PATTERN + f" | dd of={d} bs=4096 "
              "seek=$((2000+j)) oflag=direct conv=sync 2>/dev/null || echo WRITE-ERROR; "
              "j=$((j+1)); sleep 0.1; done")
    guest = (f"echo {PATTERN} | dd of={d} bs=4096 conv=fsync 2>/dev/null; "
             "(" + writer + ") & " +
             "".join("(" + reader.format(k=k, echo="") + ") & " for k in (100, 200, 300)) +
             reader.format(k=0, echo="echo iter $i; ") + "; wait; "
             "j=0; while [ $j -lt 60 ]; do "
             f"dd if={d} bs=4096 skip=$((2000+j)) count=1 iflag=direct 2>/dev/null | "
             "head -c 40 | grep -q w-$j- || echo VERIFY-FAIL $j; j=$((j+1)); done; "
             f"dd if={d} bs=4096 count=1 iflag=direct 2>/dev/null | head -c 40; echo; "
             "dmesg | grep -i -e nvme -e 'I/O error' | sed s/^/DMESG:/; echo finished")
    hv = subprocess.Popen([str(NITRO), "run", "--require-kvm", "--initrd", str(NVME_IMG),
                           "--vhost-user", f"nvme,{sock}", "--cmdline", cmdline(guest)],
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, errors="replace", env=env)
    out, err = [], []
    t_err = threading.Thread(target=lambda: err.extend(hv.stderr), daemon=True)
    t_err.start()
    killed = None
    deadline = time.time() + 300
    for line in hv.stdout:
        out.append(line)
        if killed is None and line.startswith("iter 30"):
            card.send_signal(signal.SIGKILL)
            card.wait()
            killed = time.time()
            time.sleep(1.0)  # the guest's commands wait for the card
            os.unlink(sock)
            card = start_card(sock, vol, env, nvme=True)
        if time.time() > deadline:
            hv.kill()
            break
    hv.wait(timeout=60)
    t_err.join(timeout=5)
    card.send_signal(signal.SIGTERM)
    card.wait(timeout=10)
    vol.unlink(missing_ok=True)
    text = "".join(out)
    log = "".join(err)
    assert killed, text[-2000:]
    assert hv.returncode == 0, (text[-2000:], log)
    assert "finished" in text, text[-3000:]
    assert "iter 149" in text
    bad = [l for l in out if l.split()[:1] in (["READ-ERROR"], ["WRITE-ERROR"], ["VERIFY-FAIL"])]
    assert not bad, text[-3000:]
    assert PATTERN in text.split("iter 149")[-1]  # read back through the new card
    dmesg = [l for l in out if l.startswith("DMESG:")]
    for word in ("reset", "timeout", "abort", "I/O error", "failed"):
        assert not [l for l in dmesg if word.lower() in l.lower()], (word, dmesg)
    assert "went away; the controller pauses" in log, log
    assert "queues resumed" in log, log
    assert "controller failed" not in log, log
