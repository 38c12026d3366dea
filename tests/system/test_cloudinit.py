"""Issue 15 end to end: a stock Debian trixie cloud system (systemd, cloud-init,
openssh-server, chrony) boots on nitro from an EBS volume made from an image, and
cloud-init configures it through the VPC card's IMDS exactly as on EC2.

The image (tests/system/cloud_image.sh, `make cloud-image`, cached in ~/.cache/nitro) is
a raw ext4 image built by mmdebstrap; its initramfs is made inside it by initramfs-tools
for the stock kernel the other system tests boot. Nothing names the data source: no
`ds=` on the command line, no datasource_list in the image beyond Debian's own; cloud-init's
ds-identify must find Ec2 from SMBIOS.

Instance A (volume from the image, virtio-blk with a pause control socket, a NIC with IMDS,
--user-data, --ssh-key) runs a user-data script that writes a marker to its disk, prints
what the checks need on the console and powers off a while later; meanwhile the test takes
a crash-consistent snapshot through the card. Instance B boots (NVMe this time, as EC2
does) from a volume restored from that snapshot and prints the marker.

CHECKS are shell lines the user-data script runs on instance A, each with the console
line it must print. Those whose `needs` names a feature main does not have yet are left
out of the boot and their tests skipped with that reason: when the feature merges, drop
`needs` (and nothing else) and the check runs in the same boot.
Run in the emulated host with --memory 6144:
    build/nitro emuhost --memory 6144 -- /usr/bin/python3 -m pytest -v tests/system/test_cloudinit.py
"""
import os
import pathlib
import re
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
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFh9d6e9d1nitrotestkeyxxxxxxxxxxxxxxxxxxxxxxxxx nitro-test"
POWEROFF_AFTER_S = 120  # instance A stays up this long after the marker: the snapshot window
CMDLINE = "console=ttyS0 root={root} rw panic=-1 reboot=k"


@dataclass
class Check:
    name: str
    shell: str  # runs in the user-data script (/bin/sh); prints lines to the console
    expect: str  # a regex one console line must match (re.M)
    needs: str = ""  # the missing feature: the check is skipped and left out of the boot


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
    # Pending: each names the feature (and the branch building it) it waits for.
    Check("chrony_synced_to_link_local_time_server",
          "for i in $(seq 60); do chronyc -n sources | grep -q '^\\^\\* 169.254.169.123' && break; sleep 1; done; "
          "echo CK-CHRONY=$(chronyc -n sources | grep -o '^\\^\\* 169.254.169.123')",
          r"^CK-CHRONY=\^\* 169\.254\.169\.123",
          needs="a verifying run: NTP at 169.254.169.123 is on main since the vpcdns merge "
                "(2894cff), this check has not been run against it yet"),
    Check("getent_hosts_resolves_second_instance",
          f"echo CK-GETENT=$(getent hosts ip-{IP_B.replace('.', '-')}.us-east-1.compute.internal)",
          rf"^CK-GETENT={re.escape(IP_B)} ",
          needs="instance B running alongside A, and a verifying run: the VPC resolver is on "
                "main since the vpcdns merge (2894cff)"),
    Check("fetches_host_loopback_page_through_internet_gateway",
          "echo CK-HTTP=$(python3 -c \"import urllib.request as u; "
          "print(u.urlopen('http://10.0.0.1:{port}/nitro-igw', timeout=20).read().decode())\")",
          r"^CK-HTTP=nitro-igw-page",
          needs="the internet gateway (VPC router base+1 reaches the host loopback; branch vpcigw);"
                " the test must then serve the page on the host's loopback"),
]


def user_data_a(checks):
    lines = ["#!/bin/sh",
             "# instance A: the marker, the checks, then a poweroff the snapshot must beat",
             "exec >/dev/console 2>&1",
             "echo \"nitro-marker $(cat /var/lib/cloud/data/instance-id)\" > /var/lib/nitro-marker",
             "sync",
             *[c.shell for c in checks],
             "echo CK-UPTIME=$(cut -d' ' -f1 /proc/uptime)",
             f"systemd-run --on-active={POWEROFF_AFTER_S} --timer-property=AccuracySec=1s "
             "systemctl poweroff",
             "echo CK-MARKER-WRITTEN"]
    return "\n".join(lines) + "\n"


USER_DATA_B = """#!/bin/sh
exec >/dev/console 2>&1
echo "CK-B-MARKER=$(cat /var/lib/nitro-marker)"
echo "CK-B-HOSTNAME=$(hostname)"
systemd-run --on-active=2 systemctl poweroff
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
        try:
            return self.p.wait(timeout=timeout)
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


@pytest.fixture(scope="module")
def boots(tmp_path_factory):
    logs = tmp_path_factory.mktemp("cloudinit")  # console logs, user data, timings
    # Sockets (state, the card's control socket) and volumes in the emulated host's own
    # tmpfs: its working folder is 9p, which has no unix sockets.
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="nitro-cloudinit-"))
    img = image()
    kernel = CACHE / "images" / "vmlinuz"
    env = dict(os.environ, NITRO_STATE=str(tmp / "state"))
    t = {}
    _, t["volume_from_image_s"] = nitro(env, "volume", "create", str(tmp / "a.vol"),
                                        "--from-image", str(img / "rootfs.img"))
    (logs / "ud-a").write_text(user_data_a([c for c in CHECKS if not c.needs]))
    (logs / "ud-b").write_text(USER_DATA_B)
    (logs / "key.pub").write_text(SSH_KEY + "\n")
    ctl = tmp / "a.ctl"
    a = Instance(env, logs / "a.log", [
        "--kernel", str(kernel), "--initrd", str(img / "initrd.img"),
        "--cmdline", CMDLINE.format(root="/dev/vda"), "--memory", "768",
        "--volume", f"{tmp / 'a.vol'},bus=virtio,ctl={ctl}",
        "--nic", f"vpc=1,ip={IP_A}", "--instance-id", IID_A,
        "--user-data", str(logs / "ud-a"), "--ssh-key", str(logs / "key.pub")])
    try:
        t["a_marker_s"] = a.wait_for(r"CK-MARKER-WRITTEN", 1800)
        # crash-consistent snapshot of the running instance's volume, through its card
        snap, t["snapshot_running_s"] = nitro(env, "snapshot", "create", str(tmp / "a.vol"),
                                              str(tmp / "snaps"), "--card", str(ctl))
        t["snapshot_stderr"] = snap.stderr.strip().splitlines()[-1:] if snap.stderr else []
        t["a_final_s"] = a.wait_for(r"Cloud-init v\. .* finished at", 600)
        status_a = a.finish(POWEROFF_AFTER_S + 600)
    finally:
        if a.p.poll() is None:
            a.finish(1)
    t["a_exit_s"] = time.monotonic() - a.t0
    _, t["volume_from_snapshot_s"] = nitro(env, "volume", "create", str(tmp / "b.vol"),
                                           "--from-snapshot", str(tmp / "snaps"))
    b = Instance(env, logs / "b.log", [
        "--kernel", str(kernel), "--initrd", str(img / "initrd.img"),
        "--cmdline", CMDLINE.format(root="/dev/nvme0n1"), "--memory", "768",
        "--volume", str(tmp / "b.vol"),
        "--nic", f"vpc=1,ip={IP_B}", "--instance-id", IID_B,
        "--user-data", str(logs / "ud-b"), "--ssh-key", str(logs / "key.pub")])
    try:
        t["b_done_s"] = b.wait_for(r"CK-B-DONE", 1800)
        status_b = b.finish(600)
    finally:
        if b.p.poll() is None:
            b.finish(1)
    out_a, out_b = a.text(), b.text()
    shutil.rmtree(tmp, ignore_errors=True)
    up = re.search(r"Cloud-init v\. \S+ finished at .*Up ([\d.]+) seconds", out_a)
    t["a_cloud_init_final_uptime_s"] = float(up.group(1)) if up else None
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
    if check.needs:
        pytest.skip(f"pending: needs {check.needs}")
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
