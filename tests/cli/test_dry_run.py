"""`nitro run --dry-run`: the launch plan as JSON, and nothing started (the sandbox's stub
nitro-hv and images.sh would say so; see conftest.py)."""
import json

from conftest import make_bzimage
from test_cli import SANDBOX_MARKERS, assert_error


def plan(nitro, *args):
    r = nitro("run", "--dry-run", *args)
    assert r.status == 0 and not r.timed_out, r
    for m in SANDBOX_MARKERS:
        assert m not in r.err, r
    return json.loads(r.out)


def test_dry_run_prints_the_plan_and_starts_nothing(nitro, sandbox, tmp_path):
    k = tmp_path / "bzImage"
    k.write_bytes(make_bzimage())
    vol = tmp_path / "v.vol"
    vol.write_bytes(b"\0" * 4096)
    sg = tmp_path / "web.sg"
    sg.write_text("")
    doc = plan(nitro, "--kernel", str(k), "--cpus", "2", "--memory", "128", "--no-reboot",
               "--console-max", "8192",
               "--volume", f"{vol},iops=900,throughput=12,readonly",
               "--volume", "null:1G,gp2,bus=virtio", "--instance-store", f"16M,dir={tmp_path}",
               "--nic", f"vpc=4,ip=10.0.0.9/24,pps=7,bandwidth=8,sg={sg}",
               "--vhost-user", f"blk,{tmp_path}/ext.sock", "--underlay", "127.0.0.2",
               "--instance-id", "i-0123456789abcdef0", "--instance-type", "c5.large")
    run = doc["run_dir"]
    assert run.endswith("/nitro-run-XXXXXX") and doc["bin_dir"] == str(sandbox / "bin")
    kinds = [p["kind"] for p in doc["processes"]]
    assert kinds == ["card-ebs", "card-ebs", "card-ebs", "card-vpc", "hv"]
    ebs0, ebs1, inst, vpc, hv = (p["argv"] for p in doc["processes"])
    # NVMe by default (EC2's first device name), virtio-blk with bus=virtio
    assert ebs0 == [str(sandbox / "bin" / "nitro-card-ebs"), "--socket-path", f"{run}/c0.sock",
                    "--nvme", "--device", "sda1", "--ctl", f"{run}/c0.sock.ctl",
                    "--iops", "900", "--throughput", "12", "--readonly", str(vol)]
    assert ebs1[3:] == ["--ctl", f"{run}/c1.sock.ctl", "--gp2", "null:1G"]
    assert inst[3:] == ["--nvme", "--instance-store", "16M", "--dir", str(tmp_path)]
    # a socket to the host's resolver (/etc/resolv.conf) on fd 4 when one is reachable
    dns = {"fd": 4, "role": "dns", "item": 0} in doc["processes"][3]["fds"]
    assert vpc[1:] == ["--socket-path", f"{run}/c3.sock", "--ctl", f"{run}/c3.sock.ctl",
                       "--vpc", "4", "--ip", "10.0.0.9/24", "--queue-pairs", "2", "--sg", str(sg),
                       "--pps", "7", "--bandwidth", "8", "--underlay-fd", "3"] + \
        (["--dns-fd", "4"] if dns else []) + [
                       "--instance-id", "i-0123456789abcdef0", "--instance-type", "c5.large"]
    # nitro run binds the underlay socket itself, on --underlay's address, and passes it
    assert {"fd": 3, "role": "underlay", "item": 0} in doc["processes"][3]["fds"]
    assert hv[0] == str(sandbox / "bin" / "nitro-hv")
    assert hv[1:] == ["--kernel", str(k), "--cmdline", "console=ttyS0 reboot=k panic=-1",
                      "--cpus", "2", "--memory", "128", "--instance-id", "i-0123456789abcdef0",
                      "--instance-type", "c5.large", "--console-max", "8192", "--no-reboot",
                      "--cache-dir", doc["kernel_cache"],
                      "--vhost-user", f"blk,{tmp_path}/ext.sock",
                      "--vhost-user", f"nvme,{run}/c0.sock", "--vhost-user", f"blk,{run}/c1.sock",
                      "--vhost-user", f"nvme,{run}/c2.sock", "--vhost-user", f"net,{run}/c3.sock"]
    assert doc["processes"][4]["fds"] == [{"fd": 0, "role": "console-in", "item": 0},
                                          {"fd": 1, "role": "console-out", "item": 0},
                                          {"fd": 2, "role": "log", "item": 0}]
    # The volume file is opened writable only when it is not read-only.
    assert {"path": str(vol), "rw": False, "device": False} in doc["processes"][0]["paths"]


def test_dry_run_checks_like_a_run(nitro, tmp_path):
    assert_error(nitro("run", "--dry-run", "--kernel", str(tmp_path / "none")), 1, "nitro: ",
                 "No such file")
    k = tmp_path / "bzImage"
    k.write_bytes(make_bzimage())
    assert_error(nitro("run", "--dry-run", "--kernel", str(k), "--volume", "null:1G,iops=x"), 2,
                 "nitro: run: ", "iops must be 0 to 1000000")
