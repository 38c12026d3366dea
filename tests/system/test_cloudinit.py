"""Issue 15 end to end: a stock Debian trixie cloud system (systemd, cloud-init,
openssh-server, chrony) boots on nitro from an EBS volume made from an image, and
cloud-init configures it through the VPC card's IMDS exactly as on EC2.

The image (tests/system/cloud_image.sh, `make cloud-image`, cached in ~/.cache/nitro) is
a raw ext4 image built by mmdebstrap; its initramfs is made inside it by initramfs-tools
for the stock kernel the other system tests boot. Nothing names the data source: no
`ds=` on the command line, no datasource_list in the image beyond Debian's own; cloud-init's
ds-identify must find Ec2 from SMBIOS.

Instance A (volume from the image, virtio-blk with a pause control socket, a NIC with IMDS,
--user-data, --ssh-key, in VPC 1 which has an internet gateway) runs a user-data script
that writes a marker to its disk and prints it on the console; the test then takes a
crash-consistent snapshot through the card, restores it to a new volume and boots instance
B from it (NVMe this time, as EC2 does), which prints the marker. Meanwhile A runs the
checks: what cloud-init did, chrony synced to 169.254.169.123, a page from an HTTP server
the test runs on the emulated host's loopback fetched through the VPC router (the internet
gateway), and last, once B's card is up, `getent hosts` of B's name through the VPC
resolver; then A prints its boot's own timings (systemd-analyze) and powers off.

CHECKS are shell lines the user-data script runs on instance A, each with the console
line it must print; each is its own test case on the same boot.
Run in the emulated host with --memory 6144:
    build/nitro emuhost --memory 6144 -- /usr/bin/python3 -m pytest -v tests/system/test_cloudinit.py
"""
import os
import pathlib
import re
import shlex
import functools
import http.server
import threading
import subprocess
import shutil
import tempfile
import time
from dataclasses import dataclass

import pytest

from conftest import NITRO

ROOT = pathlib.Path(__file__).resolve().parents[2]
CACHE = pathlib.Path(os.environ.get("NITRO_CACHE", pathlib.Path.home() / ".cache" / "nitro"))
IID_A = "i-0c10d1a1a1a1a1a1a"
IID_B = "i-0c10d1b2b2b2b2b2b"
IP_A, IP_B = "10.0.0.11", "10.0.0.12"
HOST_A = "ip-" + IP_A.replace(".", "-")
NAME_B = "ip-" + IP_B.replace(".", "-") + ".us-east-1.compute.internal"  # the VPC resolver's
WAIT_FOR_B_S = 900  # how long A waits for B's name (the snapshot, B's volume, B's card)
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFh9d6e9d1nitrotestkeyxxxxxxxxxxxxxxxxxxxxxxxxx nitro-test"
# quiet: every console byte is a trap to nitro-hv's UART, dear under emulation; the
# kernel's warnings, systemd's failures and cloud-init's own lines still come.
CMDLINE = "console=ttyS0 root={root} rw panic=-1 reboot=k quiet"


@dataclass
class Check:
    name: str
    shell: str  # runs in the user-data script (/bin/sh); prints lines to the console
    expect: str  # a regex one console line must match (re.M)


CHECKS = [
    Check("ec2_datasource_found_by_ds_identify",
          "echo CK-DSLIST=$(grep -h '^datasource_list' /run/cloud-init/cloud.cfg)",
          r"^CK-DSLIST=datasource_list: \[ ?Ec2, None ?\]"),
    Check("datasource_used_is_ec2",
          "echo CK-RESULT=$(tr -d '\\n ' < /run/cloud-init/status.json | grep -o '\"datasource\":\"[^\"]*\"')",
          r"^CK-RESULT=.*\"datasource\":\"DataSourceEc2Local"),
    Check("no_cloud_init_errors",
          "echo CK-ERRORS=$(tr -d '\\n ' < /run/cloud-init/status.json | grep -o '\"errors\":\\[[^]]*\\]' | sort -u)",
          r'^CK-ERRORS="errors":\[\]$'),
    Check("not_forced_on_cmdline",
          "grep -q 'ds=' /proc/cmdline && echo CK-CMDLINE-DS=yes || echo CK-CMDLINE-DS=no",
          r"^CK-CMDLINE-DS=no"),
    Check("smbios_says_ec2",
          "echo CK-DMI=$(cat /sys/class/dmi/id/sys_vendor)/$(cut -c1-3 /sys/class/dmi/id/product_uuid)",
          r"^CK-DMI=Amazon EC2/ec2"),
    Check("hostname_from_imds",
          "echo CK-HOSTNAME=$(hostname)/$(cat /etc/hostname)",
          rf"^CK-HOSTNAME={HOST_A}/{HOST_A}$"),
    Check("instance_id_from_imds",
          "echo CK-IID=$(cat /var/lib/cloud/data/instance-id)",
          rf"^CK-IID={IID_A}$"),
    Check("ssh_key_in_default_user_authorized_keys",
          "echo CK-AUTHKEYS=$(getent passwd 1000 | cut -d: -f1):"
          "$(cat $(getent passwd 1000 | cut -d: -f6)/.ssh/authorized_keys)",
          r"^CK-AUTHKEYS=debian:.*" + re.escape(SSH_KEY)),
    Check("sshd_host_key_generated",
          "ls /etc/ssh/ssh_host_ed25519_key.pub >/dev/null && echo CK-HOSTKEY=yes",
          r"^CK-HOSTKEY=yes"),
    # (status.json: result.json is written only after the final stage, which runs this)
    Check("chrony_synced_to_link_local_time_server",
          "for i in $(seq 90); do chronyc -n sources | grep -q '^\\^\\* 169.254.169.123' && break; sleep 1; done; "
          "echo CK-CHRONY=$(chronyc -n sources | grep -o '^\\^\\* 169.254.169.123')",
          r"^CK-CHRONY=\^\* 169\.254\.169\.123"),
    Check("fetches_host_loopback_page_through_internet_gateway",
          "echo CK-HTTP=$(python3 -c \"import urllib.request as u; "
          "print(u.urlopen('http://10.0.0.1:{port}/nitro-igw', timeout=30).read().decode())\")",
          r"^CK-HTTP=nitro-igw-page$"),
    # Last: instance B (booted from the snapshot taken after the marker) must be running.
    Check("getent_hosts_resolves_second_instance",
          f"for i in $(seq {WAIT_FOR_B_S // 2}); do getent hosts {NAME_B} >/dev/null && break; sleep 2; done; "
          f"echo CK-GETENT=$(getent hosts {NAME_B})",
          rf"^CK-GETENT={re.escape(IP_B)} +{re.escape(NAME_B)}$"),
]


# NITRO_CLOUDINIT_DIAG=1: A waits for its boot to finish and prints systemd-analyze's
# summary, blame and critical chain (lines "DIAG ...") before it powers off; that keeps A
# busy while B boots, so it is off by default.
DIAG = os.environ.get("NITRO_CLOUDINIT_DIAG") == "1"


def user_data_a(checks, port):
    """The marker first (the test snapshots the volume as soon as it is on the console and
    boots B from it), then the checks, the last of which waits for B's name (in a transient
    unit, so that cloud-init's final stage ends), then a poweroff."""
    diag = ["systemctl is-system-running --wait >/dev/null",
            "systemd-analyze | sed 's/^/DIAG /'",
            "systemd-analyze blame | head -n 25 | sed 's/^/DIAG /'",
            "systemd-analyze critical-chain | sed 's/^/DIAG /'"] if DIAG else []
    tail = "; ".join(["exec >/dev/console 2>&1"]
                     + [c.shell for c in checks if c.name.startswith("getent")]
                     + ["echo CK-UPTIME=$(cut -d' ' -f1 /proc/uptime)", *diag,
                        "systemctl poweroff"])
    lines = ["#!/bin/sh",
             "# instance A: the marker, the checks, a poweroff once B's name resolves",
             "exec >/dev/console 2>&1",
             "echo \"nitro-marker $(cat /var/lib/cloud/data/instance-id)\" > /var/lib/nitro-marker",
             "sync",
             "echo CK-MARKER-WRITTEN",
             *[c.shell.replace("{port}", str(port)) for c in checks if not c.name.startswith("getent")],
             f"systemd-run --unit nitro-test-tail sh -c {shlex.quote(tail)}"]
    return "\n".join(lines) + "\n"


USER_DATA_B = """#!/bin/sh
exec >/dev/console 2>&1
echo "CK-B-MARKER=$(cat /var/lib/nitro-marker)"
echo "CK-B-HOSTNAME=$(hostname)"
systemctl --no-block poweroff
echo CK-B-DONE
"""


def image():
    """The cached cloud image folder (rootfs.img, initrd.img); `make cloud-image` builds it."""
    p = subprocess.run(["sh", str(ROOT / "tests/system/cloud_image.sh")], capture_output=True,
                       text=True, env=dict(os.environ, CLOUD_IMAGE_CHECK="1"), timeout=60)
    assert p.returncode == 0, p.stderr
    return pathlib.Path(p.stdout.strip())


class Instance:
    """`nitro run` in the background; the console is collected as it comes."""

    def __init__(self, env, log, args):
        self.log = log
        self.f = open(log, "w")
        self.t0 = time.monotonic()
        self.p = subprocess.Popen([str(NITRO), "run", "--require-kvm", "--no-reboot", *args],
                                  stdin=subprocess.DEVNULL, stdout=self.f,
                                  stderr=subprocess.STDOUT, env=env)

    def text(self):
        return self.log.read_text(errors="replace")

    def wait_for(self, regex, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(regex, self.text(), re.M)
            if m:
                return time.monotonic() - self.t0
            if self.p.poll() is not None:
                break
            time.sleep(1)
        raise AssertionError(f"no {regex!r} on the console\n{self.text()[-6000:]}")

    def finish(self, timeout):
        """The exit status, or "timeout" (the instance is then stopped)."""
        try:
            return self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return "timeout"
        finally:
            if self.p.poll() is None:
                self.p.terminate()
                self.p.wait(timeout=30)
            self.f.close()


def nitro(env, *args, timeout=900):
    t = time.monotonic()
    p = subprocess.run([str(NITRO), *args], capture_output=True, text=True, env=env,
                       timeout=timeout)
    assert p.returncode == 0, p
    return p, time.monotonic() - t


def loopback_server():
    """The page A fetches through the internet gateway: an HTTP server on the emulated
    host's loopback, which the VPC router address (10.0.0.1) reaches."""
    subprocess.run(["ip", "link", "set", "lo", "up"], capture_output=True)
    www = pathlib.Path(tempfile.mkdtemp(prefix="nitro-cloudinit-www-"))
    (www / "nitro-igw").write_text("nitro-igw-page")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


@pytest.fixture(scope="module")
def boots(tmp_path_factory):
    logs = tmp_path_factory.mktemp("cloudinit")  # console logs, user data, timings
    # Sockets (state, the card's control socket) and volumes in the emulated host's own
    # tmpfs: its working folder is 9p, which has no unix sockets.
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="nitro-cloudinit-"))
    t0 = time.monotonic()
    img = image()
    kernel = CACHE / "images" / "vmlinuz"
    env = dict(os.environ, NITRO_STATE=str(tmp / "state"))
    t = {}
    # VPC 1 with an internet gateway: the router address reaches the host's loopback
    nitro(env, "vpc", "create", "1", "--cidr", "10.0.0.0/16", "--internet-gateway")
    srv = loopback_server()
    _, t["volume_from_image_s"] = nitro(env, "volume", "create", str(tmp / "a.vol"),
                                        "--from-image", str(img / "rootfs.img"))
    (logs / "ud-a").write_text(user_data_a(CHECKS, srv.server_address[1]))
    (logs / "ud-b").write_text(USER_DATA_B)
    (logs / "key.pub").write_text(SSH_KEY + "\n")
    ctl = tmp / "a.ctl"
    a = Instance(env, logs / "a.log", [
        "--kernel", str(kernel), "--initrd", str(img / "initrd.img"),
        "--cmdline", CMDLINE.format(root="/dev/vda"), "--memory", "768",
        "--volume", f"{tmp / 'a.vol'},bus=virtio,ctl={ctl}",
        "--nic", f"vpc=1,ip={IP_A}", "--instance-id", IID_A,
        "--user-data", str(logs / "ud-a"), "--ssh-key", str(logs / "key.pub")])
    b = None
    try:
        t["a_marker_s"] = a.wait_for(r"CK-MARKER-WRITTEN", 1800)
        # crash-consistent snapshot of the running instance's volume, through its card
        snap, t["snapshot_running_s"] = nitro(env, "snapshot", "create", str(tmp / "a.vol"),
                                              str(tmp / "snaps"), "--card", str(ctl))
        t["snapshot_stderr"] = snap.stderr.strip().splitlines()[-1:] if snap.stderr else []
        _, t["volume_from_snapshot_s"] = nitro(env, "volume", "create", str(tmp / "b.vol"),
                                               "--from-snapshot", str(tmp / "snaps"))
        # B runs alongside A: A's last check resolves B's name through the VPC resolver
        b = Instance(env, logs / "b.log", [
            "--kernel", str(kernel), "--initrd", str(img / "initrd.img"),
            "--cmdline", CMDLINE.format(root="/dev/nvme0n1"), "--memory", "768",
            "--volume", str(tmp / "b.vol"),
            "--nic", f"vpc=1,ip={IP_B}", "--instance-id", IID_B,
            "--user-data", str(logs / "ud-b"), "--ssh-key", str(logs / "key.pub")])
        t["b_started_s"] = b.t0 - a.t0
        status_a = a.finish(WAIT_FOR_B_S + 300)
        t["a_exit_s"] = time.monotonic() - a.t0
        t["b_done_s"] = b.wait_for(r"CK-B-DONE", 1800)
        status_b = b.finish(600)
        t["b_exit_s"] = time.monotonic() - b.t0
    finally:
        for i in (a, b):
            if i is not None and i.p.poll() is None:
                i.finish(1)
        srv.shutdown()
    out_a, out_b = a.text(), b.text()
    shutil.rmtree(tmp, ignore_errors=True)
    for name, out in (("a", out_a), ("b", out_b)):
        up = re.search(r"Cloud-init v\. \S+ finished at .*Up ([\d.]+) seconds", out)
        t[f"{name}_cloud_init_final_uptime_s"] = float(up.group(1)) if up else None
    t["total_s"] = time.monotonic() - t0
    print("cloudinit timings:", t)
    (logs / "timings").write_text(repr(t))
    return dict(a=out_a, b=out_b, status_a=status_a, status_b=status_b, t=t)


def ck_lines(console):
    """The CK-NAME=... lines the user data printed, each from its CK- on: the serial getty
    shares ttyS0 and may put its login prompt or terminal queries in front of one."""
    return "\n".join(re.findall(r"(CK-[A-Z0-9-]+=[^\r\n]*)", console))


def _every(b):
    return f"--- A\n{b['a'][-8000:]}\n--- B\n{b['b'][-4000:]}\n--- timings {b['t']}"


@pytest.mark.parametrize("check", CHECKS, ids=[c.name for c in CHECKS])
def test_instance_a(boots, check):
    assert re.search(check.expect, ck_lines(boots["a"]), re.M), _every(boots)


def test_instance_a_powered_off_cleanly(boots):
    assert boots["status_a"] == 0, _every(boots)
    assert re.search(r"Cloud-init v\. \S+ finished at .*Datasource DataSourceEc2Local",
                     boots["a"]), _every(boots)


def test_snapshot_of_running_instance_boots_second_instance_with_marker(boots):
    assert boots["status_b"] == 0, _every(boots)
    # the marker instance A's user data wrote, read back on B's restored NVMe root
    assert re.search(rf"^CK-B-MARKER=nitro-marker {IID_A}$", ck_lines(boots["b"]), re.M), \
        _every(boots)
    # B is a new instance to cloud-init: its own hostname from the IMDS
    assert re.search(rf"^CK-B-HOSTNAME=ip-{IP_B.replace('.', '-')}$", ck_lines(boots["b"]), re.M), \
        _every(boots)
