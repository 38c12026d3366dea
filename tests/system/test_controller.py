"""nitrod end to end, in the emulated host: instances launched through the API (measured,
jailed) boot, are listed, stopped, started and terminated; a guest that powers off leaves
its instance stopped; a killed card is restarted by the supervisor while the guest keeps
reading its disk; a restarted nitrod re-adopts a running instance; an instance with
"tpm": true boots with its NitroTPM (measured PCR 4) and its EK route's certificate
verifies against the chip's EK CA; an instance in a VPC with an internet gateway (a
record made through the API) reaches the host's loopback through its jailed NAT, also
after its card is killed; an instance with an NVMe volume and an instance store
shows the guest the volume id and device name (nvme-cli, and amazon-ec2-utils' own
ebsnvme-id run by a Python in the guest) and leaves nothing of its store after a stop.

Run: build/nitro emuhost --memory 6144 -- /usr/bin/python3 -m pytest -v -p no:cacheprovider \
     tests/system/test_controller.py
"""
import hashlib
import os
import shutil
import signal
import subprocess
import tempfile

import pytest

from conftest import BANNER, ROOT, cmdline
from nitrotest import Nitrod

NITRO = ROOT / "build" / "nitro"
BOOT_TIMEOUT = 240


def sys_nitrod(folder, extra=()):
    """A nitrod whose requests may name files below folder/files (user data, keys), patient
    enough for guests that boot in the emulated host."""
    return Nitrod(folder, extra, files=os.path.join(folder, "files"), call_timeout=60,
                  wait_timeout=BOOT_TIMEOUT, poll=0.2)


def marks(text, mark):
    """Console lines that start with mark (the kernel also echoes its command line, where
    every marker appears after "Command line:")."""
    return [l.strip() for l in text.splitlines() if l.strip().startswith(mark)]


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


@pytest.fixture
def nitrod():
    folder = tempfile.mkdtemp(prefix="nitrod-sys-")
    d = sys_nitrod(folder).start()
    yield d
    # Terminate whatever a failing test left running, then stop nitrod.
    try:
        for i in d.json("GET", "/v1/instances")["instances"]:
            if i["state"] not in ("terminated",):
                d.call("DELETE", f"/v1/instances/{i['id']}")
        for i in d.json("GET", "/v1/instances")["instances"]:
            d.wait_state(i["id"], "terminated", timeout=30)
    finally:
        d.stop()


def test_two_instances_boot_list_stop_start_terminate(nitrod):
    a = nitrod.json("POST", "/v1/instances",
                    {"console": True, "memory_mib": 256,
                     "cmdline": cmdline("echo A-READY; while true; do sleep 1; done")}, expect=201)
    vol = nitrod.json("POST", "/v1/volumes", {"size_mib": 16}, expect=201)
    b = nitrod.json("POST", "/v1/instances",
                    {"console": True, "memory_mib": 256,
                     "volumes": [{"id": vol["id"], "bus": "virtio"}],
                     "cmdline": cmdline("echo B-READY; cat /sys/block/vda/size; "
                                        "while true; do sleep 1; done")}, expect=201)
    assert a["state"] == "running" and b["state"] == "running", (a, b)
    # Both boot: the banner and their own marker in their consoles.
    for iid, mark in ((a["id"], "A-READY"), (b["id"], "B-READY")):
        nitrod.wait(f"{iid} console", lambda: marks(nitrod.console(iid), BANNER)
                    and marks(nitrod.console(iid), mark))
    assert marks(nitrod.console(b["id"]), "32768")  # the 16 MiB volume, through its card
    listed = {i["id"]: i for i in nitrod.json("GET", "/v1/instances")["instances"]}
    assert listed[a["id"]]["state"] == "running" and listed[b["id"]]["state"] == "running"
    hv_a = listed[a["id"]]["hv_pid"]
    card_b = listed[b["id"]]["card_pids"][0]
    assert alive(hv_a) and alive(card_b)
    # The jailed processes run under the instance's own uid, not root.
    assert os.stat(f"/proc/{hv_a}").st_uid != 0
    assert os.stat(f"/proc/{card_b}").st_uid != 0

    # Stop A: stopping -> stopped, its hypervisor gone.
    st = nitrod.json("POST", f"/v1/instances/{a['id']}/stop")
    assert st["state"] in ("stopping", "stopped")
    nitrod.wait_state(a["id"], "stopped", timeout=30)
    assert not alive(hv_a)
    assert nitrod.call("POST", f"/v1/instances/{a['id']}/stop").status == 409
    # Start A again: a second boot appends to its console.
    st = nitrod.json("POST", f"/v1/instances/{a['id']}/start")
    assert st["state"] == "running", st
    nitrod.wait("second boot of A", lambda: len(marks(nitrod.console(a["id"]), "A-READY")) >= 2)
    # Terminate both: every process of each goes.
    pids = [nitrod.instance(a["id"])["hv_pid"], hv_b := nitrod.instance(b["id"])["hv_pid"], card_b]
    for iid in (a["id"], b["id"]):
        nitrod.json("DELETE", f"/v1/instances/{iid}")
    for iid in (a["id"], b["id"]):
        nitrod.wait_state(iid, "terminated", timeout=30)
    nitrod.wait("processes gone", lambda: not any(alive(p) for p in pids), timeout=15)
    assert hv_b
    assert nitrod.json("GET", f"/v1/volumes/{vol['id']}")["attached_to"] is None
    # No console was ever written for anything else, and the hypervisor log has no error.
    assert "error" not in nitrod.instance_files(a["id"]).get("hv.log", "").lower()


def test_guest_reboot_keeps_the_instance_running(nitrod):
    i = nitrod.json("POST", "/v1/instances",
                    {"console": True, "cmdline": cmdline(
                        "echo BOOTED; sleep 2; reboot -f")}, expect=201)
    # Each boot prints BOOTED, then the guest reboots itself: nitro-hv exits (4) and the
    # supervisor starts it again, the instance stays running.
    nitrod.wait("two boots", lambda: len(marks(nitrod.console(i["id"]), "BOOTED")) >= 2)
    inst = nitrod.instance(i["id"])
    assert inst["state"] == "running" and inst["reason"] is None, inst
    # Each boot was measured: a launch event per boot, the host-decompressed vmlinux in it.
    ev = nitrod.launches(i["id"])
    assert [e.split(",")[1] for e in ev[:2]] == ["launch=1", "launch=2"], ev
    assert ev[0].split(",vmlinux=")[1] not in ("none", ""), ev
    assert ev[0].split(",launch=")[1][1:] == ev[1].split(",launch=")[1][1:], ev
    nitrod.json("DELETE", f"/v1/instances/{i['id']}")
    nitrod.wait_state(i["id"], "terminated", timeout=30)


def test_guest_power_off_leaves_the_instance_stopped(nitrod):
    i = nitrod.json("POST", "/v1/instances",
                    {"console": True, "cmdline": cmdline("echo BYE-NOW")}, expect=201)
    st = nitrod.wait_state(i["id"], "stopped")
    assert st["reason"] is None, st
    assert marks(nitrod.console(i["id"]), "BYE-NOW")


def card_argv(pid):
    return open(f"/proc/{pid}/cmdline", "rb").read().decode().split("\0")[:-1]


def test_killed_card_is_restarted_and_the_guest_keeps_its_disk(nitrod):
    # The volume's QoS reaches its card, at the launch and at the restart (src/launch).
    vol = nitrod.json("POST", "/v1/volumes", {"size_mib": 16, "iops": 2000, "throughput_mib": 50},
                      expect=201)
    guest = ("echo nitrod-card-pattern | dd of=/dev/vda bs=4096 conv=fsync 2>/dev/null; "
             "i=0; while [ $i -lt 100000 ]; do "
             "dd if=/dev/vda of=/dev/null bs=4096 count=1 skip=$((i % 64)) iflag=direct "
             "2>/dev/null || echo READ-ERROR; echo iter $i; i=$((i+1)); sleep 0.1; done")
    i = nitrod.json("POST", "/v1/instances",
                    {"console": True, "volumes": [{"id": vol["id"], "bus": "virtio"}],
                     "cmdline": cmdline(guest)},
                    expect=201)
    iid = i["id"]
    nitrod.wait("guest reading", lambda: marks(nitrod.console(iid), "iter 20"))
    old = nitrod.instance(iid)["card_pids"][0]
    qos = ["--iops", "2000", "--throughput", "50"]
    assert card_argv(old)[5:9] == qos, card_argv(old)
    os.kill(old, signal.SIGKILL)
    new = nitrod.wait("card restarted", lambda: (lambda c: c if c and c != old else None)(
        nitrod.instance(iid)["card_pids"][0]), timeout=30)
    assert alive(new)
    assert card_argv(new)[5:9] == qos and card_argv(new)[-1].endswith(f"/{vol['id']}.vol"), \
        card_argv(new)
    inst = nitrod.instance(iid)
    assert inst["state"] == "running" and inst["card_restarts"] == 1, inst
    # The guest carries on through the new card.
    n = int(nitrod.console(iid).rsplit("iter ", 1)[1].split()[0])
    nitrod.wait("guest continues", lambda: marks(nitrod.console(iid), f"iter {n + 30}"),
                timeout=120)
    assert not [l for l in nitrod.console(iid).splitlines() if l.strip() == "READ-ERROR"]
    assert "reconnected" in nitrod.instance_files(iid)["hv.log"]
    audit = (nitrod.state / "audit.log").read_text()
    assert f"method=RESTART-CARD route=/v1/instances/{iid} status=200" in audit
    # A snapshot of the running volume (issue 15): the card pauses, drains and flushes; the
    # guest's fsynced block is in it (one chunk holds data), and the guest reads on.
    snap = nitrod.json("POST", "/v1/snapshots", {"volume_id": vol["id"]}, expect=201)
    assert snap["new_chunks"] == 1 and snap["volume_id"] == vol["id"], snap
    n = int(nitrod.console(iid).rsplit("iter ", 1)[1].split()[0])
    nitrod.wait("guest continues after the snapshot",
                lambda: marks(nitrod.console(iid), f"iter {n + 10}"), timeout=120)
    assert not [l for l in nitrod.console(iid).splitlines() if l.strip() == "READ-ERROR"]
    copy = nitrod.json("POST", "/v1/volumes", {"from_snapshot": snap["id"]}, expect=201)
    assert copy["size_mib"] == 16
    again = nitrod.json("POST", "/v1/snapshots", {"volume_id": copy["id"]}, expect=201)
    assert again["new_chunks"] == 0, again  # the same data, chunk for chunk


def test_snapshot_of_a_running_nvme_volume_is_crash_consistent(nitrod):
    """Issue 15 item 1 over NVMe: the guest writes numbered records one after another
    (direct I/O, record i in block i % 64) while nitrod snapshots the volume through its
    NVMe card's control socket (pause: no new command taken, the ones in flight finished,
    flush). A volume made from the snapshot, read by a second guest, holds exactly the
    records up to some N and none after: every write the guest saw complete before the
    snapshot was asked for, none it issued after the snapshot returned, and no hole."""
    vol = nitrod.json("POST", "/v1/volumes", {"size_mib": 16}, expect=201)
    guest = ("while [ ! -b /dev/nvme0n1 ]; do sleep 0.2; done; i=0; "
             "while [ $i -lt 1000000 ]; do printf 'rec %08d' $i | dd of=/dev/nvme0n1 bs=4096 "
             "seek=$((i % 64)) conv=sync oflag=direct 2>/dev/null && echo WR $i "
             "|| echo WRITE-ERROR; i=$((i+1)); done")
    i = nitrod.json("POST", "/v1/instances",
                    {"console": True, "volumes": [{"id": vol["id"]}], "cmdline": cmdline(guest)},
                    expect=201)
    iid = i["id"]
    assert i["volumes"][0]["bus"] == "nvme", i

    def written():
        return [int(l.split()[1]) for l in marks(nitrod.console(iid), "WR ")
                if len(l.split()) == 2 and l.split()[1].isdigit()]

    nitrod.wait("guest writing", lambda: max(written(), default=-1) >= 80)
    card = nitrod.instance(iid)["card_pids"][0]
    argv = card_argv(card)
    assert "--nvme" in argv and argv[argv.index("--ctl") + 1].endswith(".ctl"), argv
    before = max(written())
    snap = nitrod.json("POST", "/v1/snapshots", {"volume_id": vol["id"]}, expect=201)
    after = max(written())
    assert snap["volume_id"] == vol["id"], snap
    # The guest writes on after the pause, and saw no error.
    nitrod.wait("guest continues after the snapshot",
                lambda: max(written(), default=-1) >= after + 20, timeout=120)
    assert not marks(nitrod.console(iid), "WRITE-ERROR")
    nitrod.json("DELETE", f"/v1/instances/{iid}")
    nitrod.wait_state(iid, "terminated", timeout=30)
    # The snapshot, read back by a guest from a volume made from it.
    copy = nitrod.json("POST", "/v1/volumes", {"from_snapshot": snap["id"]}, expect=201)
    reader = ("while [ ! -b /dev/nvme0n1 ]; do sleep 0.2; done; b=0; while [ $b -lt 64 ]; do "
              "echo BLK $b $(dd if=/dev/nvme0n1 bs=4096 count=1 skip=$b 2>/dev/null "
              "| head -c 12); b=$((b+1)); done; echo READ-DONE")
    r = nitrod.json("POST", "/v1/instances",
                    {"console": True, "volumes": [{"id": copy["id"]}], "cmdline": cmdline(reader)},
                    expect=201)
    nitrod.wait("reader done", lambda: marks(nitrod.console(r["id"]), "READ-DONE"))
    blocks = {}
    for l in marks(nitrod.console(r["id"]), "BLK "):
        f = l.split()
        blocks[int(f[1])] = int(f[3]) if len(f) == 4 and f[2] == "rec" else None
    assert sorted(blocks) == list(range(64)), blocks
    n = max(v for v in blocks.values() if v is not None)
    # A prefix of the guest's writes: block b holds the last record i <= n with
    # i % 64 == b (none when there is no such i).
    want = {b: (n - ((n - b) % 64) if n - ((n - b) % 64) >= 0 else None) for b in range(64)}
    assert blocks == want, (n, blocks)
    # every write the guest saw complete before the call; nothing it started after the
    # call returned (it prints WR i before it starts write i + 1: hence at most after + 1)
    assert before <= n <= after + 1, (before, n, after)
    nitrod.json("DELETE", f"/v1/instances/{r['id']}")
    nitrod.wait_state(r["id"], "terminated", timeout=30)


def test_restarted_nitrod_readopts_a_running_instance_and_reboots_it(nitrod):
    i = nitrod.json("POST", "/v1/instances",
                    {"console": True, "cmdline": cmdline("while true; do echo tick; sleep 1; done")},
                    expect=201)
    iid = i["id"]
    nitrod.wait("boot", lambda: marks(nitrod.console(iid), "tick"))
    hv = nitrod.instance(iid)["hv_pid"]
    nitrod.stop()
    assert alive(hv), "the instance must outlive nitrod"
    nitrod.start()
    again = nitrod.instance(iid)
    assert again["state"] == "running" and again["hv_pid"] == hv, again
    # Still supervised: a reboot through the new nitrod restarts nitro-hv (a second boot
    # in the console), then a stop ends it.
    r = nitrod.json("POST", f"/v1/instances/{iid}/reboot")
    assert r["state"] == "running"
    nitrod.wait("second boot", lambda: len(marks(nitrod.console(iid), BANNER)) >= 2)
    rebooted = nitrod.instance(iid)
    assert rebooted["state"] == "running" and rebooted["hv_pid"] not in (None, hv), rebooted
    assert len(nitrod.launches(iid)) == 2, nitrod.launches(iid)  # the reboot was measured
    assert not alive(hv)
    hv = rebooted["hv_pid"]
    nitrod.json("POST", f"/v1/instances/{iid}/stop")
    nitrod.wait_state(iid, "stopped", timeout=30)
    assert not alive(hv)


def test_boot_file_swapped_for_a_link_before_a_reboot_is_refused():
    """Issue 10 item 2: an instance boots from a --files folder its caller may write; the
    caller swaps its initrd for a link to a root-only file, then asks for a reboot. The
    reboot opens the boot files again without following links: refused, the secret never
    measured nor handed to nitro-hv."""
    folder = tempfile.mkdtemp(prefix="nitrod-sys-files-")
    files = os.path.join(folder, "files")
    os.mkdir(files)
    images = os.path.join(os.environ.get("NITRO_CACHE") or os.path.expanduser("~/.cache/nitro"),
                          "images")
    for n in ("vmlinuz", "guest.img"):
        shutil.copyfile(os.path.join(images, n), os.path.join(files, n))
    secret = os.path.join(folder, "secret")
    with open(secret, "wb") as f:
        f.write(b"TOP SECRET: root only\n" * 64)
    os.chmod(secret, 0o600)
    d = sys_nitrod(folder).start()
    try:
        i = d.json("POST", "/v1/instances",
                   {"console": True, "kernel": os.path.join(files, "vmlinuz"),
                    "initrd": os.path.join(files, "guest.img"),
                    "cmdline": cmdline("while true; do echo tick; sleep 1; done")}, expect=201)
        iid = i["id"]
        d.wait("boot", lambda: marks(d.console(iid), "tick"))
        os.unlink(os.path.join(files, "guest.img"))
        os.symlink(secret, os.path.join(files, "guest.img"))
        d.json("POST", f"/v1/instances/{iid}/reboot")
        st = d.wait_state(iid, "failed", timeout=60)
        assert st["reason"].startswith("reboot refused:") and "symbolic link" in st["reason"], st
        digest = hashlib.sha384(open(secret, "rb").read()).hexdigest()
        log = d.json("GET", "/v1/host/attestation?nonce=sys")["event_log"]
        assert digest not in {e["sha384"] for e in log}
        assert len(d.launches(iid)) == 1
        audit = (d.state / "audit.log").read_text()
        assert f"method=REBOOT route=/v1/instances/{iid} status=403" in audit
        d.call("DELETE", f"/v1/instances/{iid}")
    finally:
        d.stop()
        shutil.rmtree(folder, ignore_errors=True)


# B's metadata (issue 15): IMDSv2 from busybox (nc for the PUT, wget with the token
# header), the identity document and its pkcs7 printed line by line for the test to
# verify against the chip's certificate, and the SMBIOS serial. No double quotes: the
# script travels in nitro_exec="...".
IMDS_B = ("T=$(printf 'PUT /latest/api/token HTTP/1.0\\r\\n"
          "X-aws-ec2-metadata-token-ttl-seconds: 300\\r\\n\\r\\n' "
          "| timeout 15 nc -w 5 169.254.169.254 80 | tail -n 1); "
          "H=X-aws-ec2-metadata-token:$T; U=http://169.254.169.254/latest; "
          "echo MD-IID=$(wget -q -O - --header $H $U/meta-data/instance-id); "
          "echo MD-TYPE=$(wget -q -O - --header $H $U/meta-data/instance-type); "
          "echo MD-UD=$(wget -q -O - --header $H $U/user-data); "
          "wget -q -O - --header $H $U/dynamic/instance-identity/document | sed s/^/DOC:/; echo; "
          "wget -q -O - --header $H $U/dynamic/instance-identity/pkcs7 | sed s/^/P7:/; echo; "
          "echo DMI-SERIAL=$(cat /sys/class/dmi/id/product_serial); echo NB-MD-DONE; ")


def test_two_instances_with_nics_ping_each_other(nitrod):
    dhcp = "udhcpc -i eth0 -n -q -t 20 -T 2 -O mtu"
    ud = os.path.join(nitrod.files_dir, "user-data")
    with open(ud, "w") as f:
        f.write("nitrod-user-data-7")
    b = nitrod.json("POST", "/v1/instances",
                    {"console": True, "memory_mib": 192, "nics": [{"vpc": 1, "ip": "10.0.0.6/24"}],
                     "instance_type": "c5.large", "user_data": ud,
                     "cmdline": cmdline(dhcp + "; ip -4 addr show eth0; " + IMDS_B + "echo NB-UP; "
                                        "while true; do sleep 1; done")}, expect=201)
    a = nitrod.json("POST", "/v1/instances",
                    {"console": True, "memory_mib": 192, "nics": [{"vpc": 1, "ip": "10.0.0.5/24"}],
                     "cmdline": cmdline(dhcp + "; i=0; until ping -c 1 -W 1 10.0.0.6 >/dev/null; "
                                        "do i=$((i+1)); [ $i -gt 150 ] && break; done; "
                                        "ping -c 3 -W 2 10.0.0.6; echo NA-PING=$?; "
                                        "while true; do sleep 1; done")}, expect=201)
    assert a["state"] == "running" and b["state"] == "running", (a["reason"], b["reason"])
    assert len(nitrod.instance(a["id"])["card_pids"]) == 1
    nitrod.wait("A's ping", lambda: marks(nitrod.console(a["id"]), "NA-PING="), timeout=400)
    text = nitrod.console(a["id"])
    assert marks(text, "NA-PING=") == ["NA-PING=0"], text[-3000:]
    # B answers pings before it is done with its metadata (NB-UP comes after): wait for it
    nitrod.wait("B's metadata", lambda: marks(nitrod.console(b["id"]), "NB-UP"), timeout=120)
    assert [l for l in text.splitlines() if "bytes from 10.0.0.6" in l], text[-3000:]
    # B's IMDS (jailed, seccomp'd card): its instance id, type and user data, and an
    # identity document signed by the chip, verified against `nitro host identity-cert`
    tb = nitrod.console(b["id"])
    assert marks(tb, "NB-MD-DONE"), tb[-3000:]
    assert marks(tb, "MD-IID=") == [f"MD-IID={b['id']}"], tb[-3000:]
    assert marks(tb, "MD-TYPE=") == ["MD-TYPE=c5.large"], tb[-3000:]
    assert marks(tb, "MD-UD=") == ["MD-UD=nitrod-user-data-7"], tb[-3000:]
    serial = marks(tb, "DMI-SERIAL=")[0].split("=", 1)[1]
    assert serial.replace("-", "").startswith("ec2" + b["id"][2:]), serial
    doc = "\n".join(l[4:] for l in marks(tb, "DOC:"))
    assert f'"instanceId" : "{b["id"]}"' in doc and '"privateIp" : "10.0.0.6"' in doc, doc
    p7 = "\n".join(l[3:] for l in marks(tb, "P7:"))
    r = subprocess.run([str(NITRO), "--host", nitrod.sock, "host", "identity-cert"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r
    with tempfile.TemporaryDirectory() as t:
        for name, data in (("doc", doc), ("cert.pem", r.stdout),
                           ("p7.pem", f"-----BEGIN PKCS7-----\n{p7}\n-----END PKCS7-----\n")):
            with open(os.path.join(t, name), "w") as f:
                f.write(data)
        v = subprocess.run(["openssl", "smime", "-verify", "-in", "p7.pem", "-inform", "PEM",
                            "-content", "doc", "-certfile", "cert.pem", "-noverify"],
                           cwd=t, capture_output=True, text=True)
        assert v.returncode == 0 and "Verification successful" in v.stderr, (v, doc, p7)
    # A restarted nitrod still serves the metadata (issue 14 item 5: instance_type,
    # user_data and ssh_key were not reloaded): B's VPC card, killed after the restart,
    # is started again from the reloaded spec with the same type and user data, and B's
    # next boot reads them from that card's IMDS.
    nitrod.stop()
    nitrod.start()
    old = nitrod.instance(b["id"])["card_pids"][0]
    os.kill(old, signal.SIGKILL)
    new = nitrod.wait("B's VPC card restarted", lambda: (lambda c: c if c and c != old else None)(
        nitrod.instance(b["id"])["card_pids"][0]), timeout=30)
    argv = card_argv(new)
    assert argv[argv.index("--instance-type") + 1] == "c5.large" and "--user-data" in argv, argv
    nitrod.json("POST", f"/v1/instances/{b['id']}/reboot")
    nitrod.wait("B's second boot", lambda: len(marks(nitrod.console(b["id"]), "NB-MD-DONE")) >= 2,
                timeout=400)
    tb = nitrod.console(b["id"])
    assert marks(tb, "MD-TYPE=") == ["MD-TYPE=c5.large"] * 2, tb[-3000:]
    assert marks(tb, "MD-UD=") == ["MD-UD=nitrod-user-data-7"] * 2, tb[-3000:]


def test_instance_with_an_internet_gateway_through_nitrod(nitrod, tmp_path):
    """A VPC record with a gateway made through the API (issue 15 item 5): the instance's
    nic gets its NAT (jailed, measured, nitrod's) and the guest fetches a page from the
    emulated host's loopback at the router address; the DHCP domain names the instance's
    region; the VPC cannot be deleted while the instance has its nic. A killed VPC card
    is restarted with a new NAT and the guest reaches the page again."""
    import functools
    import http.server
    import threading
    www = tmp_path / "www"
    www.mkdir()
    (www / "page.txt").write_text("nitrod-igw-page")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    lo = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=lo.serve_forever, daemon=True).start()
    port = lo.server_address[1]
    try:
        nitrod.json("POST", "/v1/vpcs", {"id": 3, "cidr": "10.3.0.0/16",
                                         "internet_gateway": True}, expect=201)
        dhcp = "udhcpc -i eth0 -n -q -t 20 -T 2 -O mtu"
        wget = "timeout 20 wget -q -O -"
        guest = (dhcp + "; grep -h search /etc/resolv.conf | sed 's/^/RESOLV=/'; n=0; "
                 "while [ $n -lt 400 ]; do n=$((n+1)); "
                 f"p=$({wget} http://10.3.0.1:{port}/page.txt 2>/dev/null) && echo IGW-OK=$p; "
                 "sleep 1; done")
        a = nitrod.json("POST", "/v1/instances",
                        {"console": True, "memory_mib": 192, "region": "eu-west-1",
                         "nics": [{"vpc": 3, "ip": "10.3.0.5/24"}],
                         "cmdline": cmdline(guest)}, expect=201)
        assert a["state"] == "running", a["reason"]
        assert len(a["card_pids"]) == 2, a  # the NAT and the card
        nitrod.wait("the first page", lambda: marks(nitrod.console(a["id"]), "IGW-OK="),
                    timeout=400)
        text = nitrod.console(a["id"])
        assert marks(text, "IGW-OK=")[0] == "IGW-OK=nitrod-igw-page", text[-3000:]
        assert any("eu-west-1.compute.internal" in l for l in marks(text, "RESOLV=")), \
            text[-3000:]
        r = nitrod.call("DELETE", "/v1/vpcs/3")
        assert r.status == 409 and a["id"] in r.json()["error"], r
        nat, card = nitrod.instance(a["id"])["card_pids"]
        assert "nitro-vpc-igw" in card_argv(nat)[0] and "--igw-fd" in card_argv(card)
        # the NAT runs as the instance's uid, not root, in the host's network namespace
        st = open(f"/proc/{nat}/status").read()
        uid = [l.split()[1] for l in st.splitlines() if l.startswith("Uid:")][0]
        assert uid != "0", st
        assert os.readlink(f"/proc/{nat}/ns/net") == os.readlink("/proc/self/ns/net")
        assert os.readlink(f"/proc/{card}/ns/net") != os.readlink("/proc/self/ns/net")
        before = len(marks(text, "IGW-OK="))
        os.kill(card, signal.SIGKILL)
        new = nitrod.wait("the card and its NAT restarted", lambda: (
            lambda p: p if p[1] and p[1] != card and p[0] and p[0] != nat else None)(
                nitrod.instance(a["id"])["card_pids"]), timeout=60)
        assert not alive(nat)
        nitrod.wait("a page after the restart", lambda: len(
            marks(nitrod.console(a["id"]), "IGW-OK=")) > before + 2, timeout=300)
        assert alive(new[0]) and alive(new[1])
        nitrod.json("DELETE", f"/v1/instances/{a['id']}")
        nitrod.wait_state(a["id"], "terminated", timeout=60)
        assert not alive(new[0])
        assert nitrod.json("DELETE", "/v1/vpcs/3")["state"] == "deleted"
    finally:
        lo.shutdown()


def test_tpm_instance_measured_and_endorsed(nitrod):
    """One boot: the guest reads PCR 4 through the stock kernel's tpm_crb (the kernel file's
    measurement, docs/tpm.md), powers off; the EK route's certificate verifies against the
    chip's EK CA with the openssl CLI; terminate destroys the TPM's state."""
    i = nitrod.json("POST", "/v1/instances",
                    {"console": True, "tpm": True,
                     "cmdline": cmdline("echo PCR4=$(cat /sys/class/tpm/tpm0/pcr-sha256/4)")},
                    expect=201)
    assert i["tpm"] is True and i["state"] == "running", i
    st = nitrod.wait_state(i["id"], "stopped")
    assert st["reason"] is None, st
    kernel = open(st["kernel"], "rb").read()
    want = hashlib.sha256(bytes(32) + hashlib.sha256(kernel).digest()).hexdigest().upper()
    assert marks(nitrod.console(i["id"]), "PCR4=") == [f"PCR4={want}"], nitrod.console(i["id"])[-2000:]
    ek = nitrod.json("GET", f"/v1/instances/{i['id']}/tpm/ek")
    ca = str(nitrod.state / "ek-ca" / "ek-ca.pem")
    v = subprocess.run(["openssl", "verify", "-CAfile", ca], input=ek["certificate"],
                       capture_output=True, text=True)
    assert v.returncode == 0 and v.stdout.strip() == "stdin: OK", v
    key = subprocess.run(["openssl", "x509", "-pubkey", "-noout"], input=ek["certificate"],
                         capture_output=True, text=True, check=True).stdout
    assert key == ek["public_key"]
    tpm_dir = str(nitrod.state / "instances" / i["id"] / "tpm")
    assert os.path.exists(os.path.join(tpm_dir, "permall.nvs"))
    nitrod.json("DELETE", f"/v1/instances/{i['id']}")
    nitrod.wait_state(i["id"], "terminated", timeout=30)
    assert not os.path.exists(tpm_dir)


EBSNVME_IMG = ROOT / "build" / "ebsnvme-guest.img"


def holders(path):
    """The processes with an open file below path (their /proc/PID/fd links)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if str(path) in os.readlink(f"/proc/{pid}/fd/{fd}"):
                    found.append(int(pid))
        except OSError:
            pass
    return found


def test_nvme_volume_and_instance_store_through_the_api(nitrod):
    """Issue 14 through nitrod: an API volume is an NVMe controller by default, with the
    volume id as serial and the device name given at launch in EC2's vendor area, which
    the real ebsnvme-id (Debian's amazon-ec2-utils, a python3 script) reads in the guest;
    the instance store is a second controller whose backing file lives in nitrod's
    per-instance folder while the card runs, and after the stop the folder, the file and
    the card (the only holder of its key) are gone."""
    assert EBSNVME_IMG.exists(), "make build/ebsnvme-guest.img"
    initrd = os.path.join(nitrod.files_dir, "ebsnvme-guest.img")
    shutil.copy(EBSNVME_IMG, initrd)
    vol = nitrod.json("POST", "/v1/volumes", {"size_mib": 32}, expect=201)
    guest = ("for c in /sys/class/nvme/nvme*; do grep -q Instance $c/model && i=${c##*/}; "
             "grep -q Elastic $c/model && e=${c##*/}; done; "
             "echo CTRLS ebs=$e store=$i; ls /dev/nvme0n1 >/dev/null && echo HAVE nvme0n1; "
             "nvme id-ctrl /dev/$e | grep -e '^sn' -e '^mn' | sed 's/^/IDCTRL /'; "
             "/usr/bin/python3 /usr/sbin/ebsnvme-id /dev/${e}n1 2>&1 | sed 's/^/EBSNVME /'; "
             "/usr/bin/python3 /usr/sbin/ebsnvme-id -b /dev/${e}n1 2>&1 | sed 's/^/EBSDEV /'; "
             "echo STORE $(cat /sys/block/${i}n1/size); "
             "echo nitrod-store-pattern | dd of=/dev/${i}n1 bs=4096 conv=sync oflag=direct "
             "2>/dev/null && echo STORE-WRITTEN; "
             "while true; do sleep 1; done")
    i = nitrod.json("POST", "/v1/instances",
                    {"console": True, "memory_mib": 512, "initrd": initrd,
                     "volumes": [{"id": vol["id"], "device": "sdf"}],
                     "instance_store": {"size_mib": 16},
                     "cmdline": cmdline(guest)}, expect=201)
    iid = i["id"]
    assert i["volumes"] == [{"id": vol["id"], "readonly": False, "bus": "nvme",
                             "device": "sdf"}], i
    nitrod.wait("guest done", lambda: marks(nitrod.console(iid), "STORE-WRITTEN"))
    con = nitrod.console(iid)
    ctrls = marks(con, "CTRLS")[0]
    assert "ebs=nvme" in ctrls and "store=nvme" in ctrls, con[-3000:]
    assert marks(con, "HAVE nvme0n1"), con[-3000:]
    serial = vol["id"].replace("-", "")
    assert any(l.split(":", 1)[1].strip() == serial for l in marks(con, "IDCTRL sn")), con[-3000:]
    assert any("Amazon Elastic Block Store" in l for l in marks(con, "IDCTRL mn")), con[-3000:]
    # the real ebsnvme-id: "Volume ID: vol-..." and the name given at launch
    assert marks(con, f"EBSNVME Volume ID: {vol['id']}"), con[-3000:]
    assert marks(con, "EBSNVME sdf"), con[-3000:]
    assert marks(con, "EBSDEV sdf"), con[-3000:]
    assert marks(con, f"STORE {16 * 2048}"), con[-3000:]
    # Host side, while it runs: the store's card holds a nameless file in the
    # instance's own folder (nothing there has a name).
    folder = os.path.join(nitrod.state, "instance-store", iid)
    store_card = nitrod.instance(iid)["card_pids"][1]
    assert alive(store_card) and os.path.isdir(folder) and os.listdir(folder) == []
    assert os.stat(folder).st_uid != 0  # the card's uid: no one else's folder
    assert holders(folder) == [store_card], holders(folder)
    nitrod.json("POST", f"/v1/instances/{iid}/stop")
    nitrod.wait_state(iid, "stopped", timeout=30)
    # After the stop: the card (its key only ever in its memory) is gone, no process
    # holds the file (the kernel freed its blocks) and the folder is removed.
    assert not alive(store_card)
    assert holders(folder) == []
    assert not os.path.exists(folder), os.listdir(folder)
