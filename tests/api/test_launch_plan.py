"""One launch description for `nitro run` and nitrod (src/launch, issue 11 item 1).

The same instance is launched both ways and the processes compared: `nitro run --dry-run`
prints its plan, nitrod writes the plan of each launch to STATE/instances/ID/launch.json.
Every card's and nitro-hv's argv must be the same (the run folder aside: each side has its
own), so a QoS or allowance value one side dropped fails here. Then the QoS of an API
volume is followed to the card process itself (its execve under strace), and the new API
fields are checked like the others.
"""
import json
import os
import signal
import subprocess

import pytest

from conftest import NITROD, Nitrod
from nitrotest import make_bzimage

BUILD = NITROD.resolve().parent  # nitro and the cards beside nitrod (build/ or build/asan/)
NITRO = BUILD / "nitro"
HAVE_VPC = (BUILD / "nitro-card-vpc").exists()


@pytest.fixture
def kernel(folder):
    """A bzImage nitro run's checks accept, whose code is ud2 everywhere: nitro-hv ends at
    once (a triple fault, or no KVM here), so no instance keeps running."""
    image = bytearray(make_bzimage())
    for off in range(1024, len(image), 2):
        image[off:off + 2] = b"\x0f\x0b"
    k = folder / "bzImage"
    k.write_bytes(bytes(image))
    return str(k)


def normalized(doc):
    """The processes of a plan with the run folder as {run}: [(kind, exe, argv, socket,
    vhost_user, fds)]. A VPC card's `--identity DIR` (the identity document the chip
    signed) is nitrod's alone: `nitro run` has no chip; it is left out."""
    run = doc["run_dir"]
    fix = lambda s: s.replace(run, "{run}") if isinstance(s, str) else s

    def argv(a):
        out = []
        for x in a:
            if out and out[-1] == "--identity":
                out.pop()
                continue
            if x == "--map-ro":
                continue
            out.append(fix(x))
        return out
    return [(p["kind"], p["exe"], argv(p["argv"]), fix(p["socket"]), p["vhost_user"],
             [(f["fd"], f["role"]) for f in p["fds"]]) for p in doc["processes"]]


def volume_file(d, vid):
    return d.state / "volumes" / f"{vid}.vol"


def launch_both_ways(d, kernel, body, run_args, inst=None):
    if inst is None:
        r = d.call("POST", "/v1/instances", body)
        assert r.status == 201, r
        inst = d.wait_state(r.json()["id"], {"failed"})
    plan = json.loads((d.state / "instances" / inst["id"] / "launch.json").read_text())
    # one instance: nitrod's id is what nitro run is given (SMBIOS and the IMDS use it)
    run_args = [*run_args, "--instance-id", inst["id"]]
    dry = subprocess.run([str(NITRO), "run", "--dry-run", *run_args], capture_output=True,
                         text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert dry.returncode == 0, dry.stderr
    return inst, plan, json.loads(dry.stdout)


# (the API's volumes[] entries, nitro run's --volume suffixes): the same launch both ways.
BUSES = {
    "nvme-default": ([{}, {"readonly": True}, {}], ["", ",readonly", ""]),
    "virtio": ([{"bus": "virtio"}, {"readonly": True, "bus": "virtio"}, {"bus": "virtio"}],
               [",bus=virtio", ",readonly,bus=virtio", ",bus=virtio"]),
    "device-names": ([{"device": "xvdb"}, {"bus": "virtio", "readonly": True},
                      {"bus": "nvme", "device": "sdh"}],
                     [",device=xvdb", ",readonly,bus=virtio", ",bus=nvme,device=sdh"]),
    "mixed-defaults": ([{"bus": "virtio"}, {"readonly": True}, {}],
                       [",bus=virtio", ",readonly", ""]),
}


@pytest.mark.parametrize("case", sorted(BUSES))
@pytest.mark.parametrize("istore", [False, True], ids=["no-store", "instance-store"])
def test_nitro_run_and_nitrod_start_the_same_processes(nitrod, kernel, case, istore):
    d = nitrod
    api_vols, run_vols = BUSES[case]
    v1 = d.call("POST", "/v1/volumes", {"size_mib": 8, "iops": 700, "throughput_mib": 33}).json()
    v2 = d.call("POST", "/v1/volumes", {"size_mib": 4, "gp2": True}).json()
    v3 = d.call("POST", "/v1/volumes", {"size_mib": 4}).json()
    ids = [v1["id"], v2["id"], v3["id"]]
    body = {"kernel": kernel, "initrd": None, "cmdline": "console=ttyS0 quiet", "cpus": 3,
            "memory_mib": 128,
            "volumes": [{"id": i, **extra} for i, extra in zip(ids, api_vols)]}
    if istore:
        body["instance_store"] = {"size_mib": 64}
    nic_args = []
    if HAVE_VPC:
        body["nics"] = [{"vpc": 5, "ip": "10.0.0.9/24", "pps": 1000, "bandwidth_mbit": 50,
                         "mac": "02:00:00:00:00:09"},
                        {"vpc": 6, "ip": "10.1.0.9/24", "pps": 0}]
        nic_args = ["--nic", "vpc=5,ip=10.0.0.9/24,pps=1000,bandwidth=50,mac=02:00:00:00:00:09",
                    "--nic", "vpc=6,ip=10.1.0.9/24,pps=0", "--map", str(d.state / "vpc-map")]
    qos = [",iops=700,throughput=33", ",gp2", ""]
    vol_args = []
    for i, vid in enumerate(ids):
        vol_args += ["--volume", f"{volume_file(d, vid)}{qos[i]}{run_vols[i]}"]
    run_args = ["--kernel", kernel, "--cmdline", "console=ttyS0 quiet", "--cpus", "3",
                "--memory", "128", "--require-kvm", "--cache-dir", str(d.state / "kcache"),
                *vol_args, *nic_args]
    r = d.call("POST", "/v1/instances", body)
    assert r.status == 201, r
    inst = d.wait_state(r.json()["id"], {"failed"})
    api_plan = json.loads((d.state / "instances" / inst["id"] / "launch.json").read_text())
    if istore:  # nitrod's folder for this instance's store: the same on nitro run's side
        run_args += ["--instance-store", f"64M,dir={d.state / 'instance-store' / inst['id']}"]
    dry = subprocess.run([str(NITRO), "run", "--dry-run", *run_args, "--instance-id", inst["id"]],
                         capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert dry.returncode == 0, dry.stderr
    run_plan = json.loads(dry.stdout)
    a, b = normalized(api_plan), normalized(run_plan)
    nvols = 3 + istore
    assert [p[0] for p in a] == ["card-ebs"] * nvols + ["card-vpc"] * (2 if HAVE_VPC else 0) + ["hv"]
    for got_api, got_run in zip(a, b):
        assert got_api == got_run, f"nitrod's plan differs from nitro run's:\n{got_api}\n{got_run}"
    assert len(a) == len(b)
    # Not the same by both dropping everything: the values are there.
    # (an encrypted volume's data key comes on fd 3, from the launcher: the card never
    # reads the master key)
    assert a[0][2][-7:] == ["--iops", "700", "--throughput", "33", "--key-fd", "3",
                            str(volume_file(d, v1["id"]))]
    assert a[1][2][-5:] == ["--gp2", "--readonly", "--key-fd", "3", str(volume_file(d, v2["id"]))]
    assert (3, "volume-key") in a[0][5]
    # the bus and the device names given, or nitro run's defaults (sda1, sdf, ...)
    want = {"nvme-default": [("nvme", "sda1"), ("nvme", "sdf"), ("nvme", "sdg")],
            "virtio": [("blk", None)] * 3,
            "device-names": [("nvme", "xvdb"), ("blk", None), ("nvme", "sdh")],
            "mixed-defaults": [("blk", None), ("nvme", "sda1"), ("nvme", "sdf")]}[case]
    for k, (bus, dev) in enumerate(want):
        argv = a[k][2]
        assert a[k][4] == bus, a[k]
        assert (argv[argv.index("--device") + 1] if "--device" in argv else None) == dev, argv
        # both kinds of card get their control socket (snapshots pause them)
        assert ("--nvme" in argv) == (bus == "nvme") and "--ctl" in argv
    shown = d.call("GET", f"/v1/instances/{inst['id']}").json()
    assert [(v["bus"], v.get("device")) for v in shown["volumes"]] == [
        ("nvme" if bus == "nvme" else "virtio", dev) for bus, dev in want], shown
    if istore:
        argv = a[3][2]
        assert a[3][4] == "nvme" and argv[3:7] == ["--nvme", "--instance-store", "64M", "--dir"]
        assert argv[7] == str(d.state / "instance-store" / inst["id"]), argv
        assert shown["instance_store"] == {"size_mib": 64}, shown
    else:
        assert "instance_store" not in shown
    if HAVE_VPC:
        assert ["--pps", "1000", "--bandwidth", "50"] == a[nvols][2][a[nvols][2].index("--pps"):][:4]
        assert "--pps" in a[nvols + 1][2] and "--bandwidth" not in a[nvols + 1][2]
        assert "--underlay-fd" in a[nvols][2] and (3, "underlay") in a[nvols][5]
    hv = a[-1][2]
    assert hv[hv.index("--cpus") + 1] == "3" and hv[hv.index("--memory") + 1] == "128"
    assert [x for x in hv if x.startswith(("blk,", "net,", "nvme,"))] == [
        f"{p[4]},{p[3]}" for p in a[:-1]]


def test_the_plan_differs_when_one_side_drops_a_value(nitrod, kernel):
    """The comparison above is sensitive: the same launch with one QoS value missing on
    the nitro run side is a different plan."""
    d = nitrod
    v = d.call("POST", "/v1/volumes", {"size_mib": 4, "iops": 321}).json()
    body = {"kernel": kernel, "initrd": None, "volumes": [v["id"]]}
    common = ["--kernel", kernel, "--require-kvm", "--cache-dir", str(d.state / "kcache")]
    _, api_plan, run_plan = launch_both_ways(d, kernel, body, common + ["--volume", str(volume_file(d, v['id']))])
    assert normalized(api_plan)[0] != normalized(run_plan)[0]
    assert normalized(api_plan)[1:] == normalized(run_plan)[1:]


def test_an_api_volume_starts_its_card_with_its_qos(folder, kernel):
    """The card process itself gets the volume's QoS and the NIC's allowances: its execve
    (through the jailer) as strace saw it."""
    trace = folder / "strace.out"
    d = Nitrod(folder, wrap=["strace", "-f", "-v", "-s", "4096", "-o", str(trace), "-e",
                             "trace=execve,execveat"])
    d.start()
    try:
        v = d.call("POST", "/v1/volumes", {"size_mib": 4, "iops": 1234, "throughput_mib": 17}).json()
        body = {"kernel": kernel, "initrd": None, "volumes": [{"id": v["id"], "readonly": True}]}
        if HAVE_VPC:
            body["nics"] = [{"vpc": 9, "ip": "10.0.0.9/24", "pps": 4321, "bandwidth_mbit": 99}]
        r = d.call("POST", "/v1/instances", body)
        assert r.status == 201, r
        inst = d.wait_state(r.json()["id"], {"failed"})
    finally:
        # SIGTERM to nitrod itself (strace's child), then strace ends with it.
        for k in open(f"/proc/{d.proc.pid}/task/{d.proc.pid}/children").read().split():
            os.kill(int(k), signal.SIGTERM)
        d.proc.wait(timeout=10)
    execs = [line for line in trace.read_text().splitlines() if "execve" in line]
    def argv_of(card):
        return [line for line in execs if '["' + str(BUILD / card) + '"' in line]
    ebs = argv_of("nitro-card-ebs")
    assert ebs, "\n".join(execs)[-3000:]
    assert all('"--iops", "1234", "--throughput", "17", "--readonly"' in line for line in ebs), ebs
    if HAVE_VPC:
        vpc = argv_of("nitro-card-vpc")
        assert vpc and all('"--pps", "4321", "--bandwidth", "99"' in line for line in vpc), vpc
    # The card really started (its log) before nitro-hv failed on the kernel.
    assert "nitro-hv" in inst["reason"], inst


@pytest.mark.parametrize("path,body,msg", [
    ("/v1/volumes", {"size_mib": 4, "iops": -1}, "iops: expected an integer from 0 to 1000000"),
    ("/v1/volumes", {"size_mib": 4, "iops": 1000001}, "iops: expected an integer from 0"),
    ("/v1/volumes", {"size_mib": 4, "iops": "5"}, "iops: expected an integer"),
    ("/v1/volumes", {"size_mib": 4, "throughput_mib": 100001}, "throughput_mib: expected an integer from 0 to 100000"),
    ("/v1/volumes", {"size_mib": 4, "gp2": 1}, "gp2: expected true or false"),
    ("/v1/volumes", {"size_mib": 4, "gp2": True, "iops": 100}, "gp2 and iops exclude each other"),
    ("/v1/instances", {"nics": [{"vpc": 1, "ip": "10.0.0.9/24", "pps": -2}]}, "nics[0].pps: expected an integer from 0 to 100000000"),
    ("/v1/instances", {"nics": [{"vpc": 1, "ip": "10.0.0.9/24", "bandwidth_mbit": 400001}]}, "nics[0].bandwidth_mbit: expected an integer from 0 to 400000"),
    ("/v1/instances", {"volumes": [{"id": "vol-0123456789abcdef0", "readonly": "yes"}]}, "volumes[0].readonly: expected true or false"),
    ("/v1/instances", {"volumes": [{"id": "vol-0123456789abcdef0", "iops": 5}]}, 'volumes[0]: unknown field "iops"'),
    ("/v1/instances", {"volumes": [{"readonly": True}]}, "volumes[0]: expected a volume id"),
    ("/v1/instances", {"volumes": ["vol-0123456789abcdef0", {"id": "vol-0123456789abcdef0"}]}, "listed twice"),
    ("/v1/instances", {"volumes": [{"id": "vol-0123456789abcdef0", "bus": "scsi"}]}, 'volumes[0].bus: expected "nvme" or "virtio"'),
    ("/v1/instances", {"volumes": [{"id": "vol-0123456789abcdef0", "bus": 1}]}, 'volumes[0].bus: expected "nvme" or "virtio"'),
    ("/v1/instances", {"volumes": [{"id": "vol-0123456789abcdef0", "device": "/dev/sdf"}]}, "volumes[0].device: expected 1 to 32 of a-z and 0-9"),
    ("/v1/instances", {"volumes": [{"id": "vol-0123456789abcdef0", "device": "SDF"}]}, "volumes[0].device: expected"),
    ("/v1/instances", {"volumes": [{"id": "vol-0123456789abcdef0", "device": ""}]}, "volumes[0].device: expected"),
    ("/v1/instances", {"volumes": [{"id": "vol-0123456789abcdef0", "device": "a" * 33}]}, "volumes[0].device: expected"),
    ("/v1/instances", {"volumes": [{"id": "vol-0123456789abcdef0", "device": 5}]}, "volumes[0].device: expected"),
    ("/v1/instances", {"volumes": [{"id": "vol-0123456789abcdef0", "bus": "virtio", "device": "sdf"}]}, "volumes[0].device: a device name needs bus nvme"),
    ("/v1/instances", {"volumes": ["vol-0123456789abcdef0", {"id": "vol-0123456789abcdef1", "device": "sda1"}]}, "volumes[1].device: sda1 is volumes[0]'s already"),
    ("/v1/instances", {"instance_store": 64}, "instance_store: expected an object {size_mib, dir}"),
    ("/v1/instances", {"region": "EU-WEST-1"}, "region: expected a name like"),
    ("/v1/instances", {"region": "eu-west-1."}, "region: expected a name like"),
    ("/v1/instances", {"region": "-x"}, "region: expected a name like"),
    ("/v1/instances", {"region": ""}, "region: expected a name like"),
    ("/v1/instances", {"region": "a" * 33}, "region: longer than 32 bytes"),
    ("/v1/instances", {"region": 1}, "region: expected a string"),
    ("/v1/instances", {"region": "eu\nwest"}, "region: only printable ASCII"),
    ("/v1/instances", {"instance_store": {}}, "instance_store.size_mib: expected an integer from 1 to 1048576"),
    ("/v1/instances", {"instance_store": {"size_mib": 0}}, "instance_store.size_mib: expected an integer from 1"),
    ("/v1/instances", {"instance_store": {"size_mib": 4, "where": "/x"}}, 'instance_store: unknown field "where"'),
    ("/v1/instances", {"instance_store": {"size_mib": 4, "dir": "relative"}}, "instance_store.dir: expected an absolute path"),
    ("/v1/instances", {"instance_store": {"size_mib": 4, "dir": "/a/../b"}}, "instance_store.dir: expected an absolute path"),
    ("/v1/instances", {"instance_store": {"size_mib": 4}, "volumes": [f"vol-{i:017x}" for i in range(8)]}, "instance_store: at most 7 volumes beside an instance store"),
    # the attacks on "dir": a folder nitrod does not serve stores from (its own state,
    # the volumes, /etc), the caller's own folder
    ("/v1/instances", {"instance_store": {"size_mib": 4, "dir": "/etc"}}, "outside the folders nitrod serves instance stores from"),
    ("/v1/instances", {"instance_store": {"size_mib": 4, "dir": "/tmp"}}, "outside the folders nitrod serves instance stores from"),
])
def test_new_fields_are_checked(nitrod, path, body, msg):
    r = nitrod.call("POST", path, body)
    assert r.status == 400 and msg in r.json()["error"], r


def test_qos_and_readonly_are_shown_and_survive_a_restart(folder, kernel):
    d = Nitrod(folder).start()
    try:
        v = d.call("POST", "/v1/volumes", {"size_mib": 4, "iops": 900, "throughput_mib": 0}).json()
        assert (v["iops"], v["throughput_mib"], v["gp2"]) == (900, 0, False), v
        w = d.call("POST", "/v1/volumes", {"size_mib": 4}).json()
        assert (w["iops"], w["throughput_mib"], w["gp2"]) == (None, None, False), w
        r = d.call("POST", "/v1/instances", {"kernel": kernel, "initrd": None,
                                             "volumes": [{"id": v["id"], "readonly": True}],
                                             "nics": [{"vpc": 2, "ip": "10.0.0.9/24", "pps": 10}]})
        assert r.status == 201, r
        iid = r.json()["id"]
        inst = d.wait_state(iid, {"failed"})
        assert inst["volumes"] == [{"id": v["id"], "readonly": True, "bus": "nvme",
                                    "device": "sda1"}]
        assert inst["nics"] == [{"vpc": 2, "ip": "10.0.0.9/24", "pps": 10}]
        r = d.call("POST", f"/v1/volumes/{w['id']}/attach", {"instance_id": iid, "readonly": 1})
        assert r.status == 400 and "readonly: expected true or false" in r.json()["error"], r
        r = d.call("POST", f"/v1/volumes/{w['id']}/attach", {"instance_id": iid, "readonly": True})
        assert r.status == 200, r
        before = (d.call("GET", f"/v1/instances/{iid}").json(), d.call("GET", "/v1/volumes").json())
    finally:
        d.stop()
    d = Nitrod(folder).start()
    try:
        after = (d.call("GET", f"/v1/instances/{iid}").json(), d.call("GET", "/v1/volumes").json())
        by_id = lambda vols: sorted(vols["volumes"], key=lambda x: x["id"])
        assert by_id(after[1]) == by_id(before[1])
        assert after[0]["volumes"] == before[0]["volumes"] == [
            {"id": v["id"], "readonly": True, "bus": "nvme", "device": "sda1"},
            {"id": w["id"], "readonly": True, "bus": "nvme", "device": "sdf"}]
        assert after[0]["nics"] == before[0]["nics"]
    finally:
        d.stop()


def test_cli_client_sets_qos_and_readonly(nitrod, kernel):
    r = nitrod.cli("--json", "volumes", "create", "--size", "4", "--iops", "250", "--throughput", "20")
    assert r.returncode == 0, r.stderr
    v = json.loads(r.stdout)
    assert (v["iops"], v["throughput_mib"], v["gp2"]) == (250, 20, False), v
    r = nitrod.cli("--json", "volumes", "create", "--size", "4", "--gp2")
    assert r.returncode == 0 and json.loads(r.stdout)["gp2"] is True, r.stderr
    r = nitrod.cli("volumes", "create", "--size", "4", "--iops", "1000001")
    assert r.returncode == 2 and "--iops 1000001" in r.stderr, r.stderr
    r = nitrod.cli("--json", "instances", "run", "--kernel", kernel, "--no-initrd",
                   "--volume", f"{v['id']},readonly")
    assert r.returncode in (0, 1), r.stderr  # running, or failed already (the ud2 kernel)
    inst = nitrod.wait_state(json.loads(r.stdout)["id"], {"failed"})
    assert inst["volumes"] == [{"id": v["id"], "readonly": True, "bus": "nvme",
                                "device": "sda1"}], inst
    r = nitrod.cli("instances", "describe", inst["id"])
    assert f"{v['id']}(ro)" in r.stdout, r.stdout
    plan = json.loads((nitrod.state / "instances" / inst["id"] / "launch.json").read_text())
    argv = plan["processes"][0]["argv"]
    assert argv[3:6] + argv[8:11] == ["--nvme", "--device", "sda1", "--iops", "250",
                                      "--throughput"], plan
    assert argv[6:8] == ["--ctl", argv[2] + ".ctl"], plan  # snapshots pause it
    assert "--readonly" in plan["processes"][0]["argv"], plan
    r = nitrod.cli("instances", "run", "--volume", f"{v['id']},rw")
    assert r.returncode == 2 and "VOL-ID[,readonly]" in r.stderr, r.stderr
    # the bus, the device name and an instance store, from the client too
    w = json.loads(nitrod.cli("--json", "volumes", "create", "--size", "4").stdout)
    x = json.loads(nitrod.cli("--json", "volumes", "create", "--size", "4").stdout)
    r = nitrod.cli("--json", "instances", "run", "--kernel", kernel, "--no-initrd",
                   "--volume", f"{w['id']},device=xvdf", "--volume", f"{x['id']},readonly,bus=virtio",
                   "--instance-store", "32")
    assert r.returncode in (0, 1), r.stderr
    inst = nitrod.wait_state(json.loads(r.stdout)["id"], {"failed"})
    assert inst["volumes"] == [{"id": w["id"], "readonly": False, "bus": "nvme", "device": "xvdf"},
                               {"id": x["id"], "readonly": True, "bus": "virtio"}], inst
    assert inst["instance_store"] == {"size_mib": 32}, inst
    r = nitrod.cli("instances", "describe", inst["id"])
    assert f"{w['id']}:xvdf,{x['id']}(ro):virtio" in r.stdout and "instance_store: 32 MiB" in r.stdout, r.stdout
    r = nitrod.cli("instances", "run", "--volume", f"{w['id']},device=Bad")
    assert r.returncode == 1 and "device: expected" in r.stderr, r.stderr


def test_instance_store_dir_attacks(nitrod, kernel, folder):
    """A caller names the instance store's folder: only nitrod's own instance-store
    folders (and folders beneath them it can trust) pass; another instance's store
    folder, a symbolic link, the state folder and a folder others may write are
    refused, before anything starts."""
    d = nitrod
    root = d.state / "instance-store"
    r = d.call("POST", "/v1/instances", {"kernel": kernel, "initrd": None,
                                         "instance_store": {"size_mib": 4}})
    assert r.status == 201, r
    victim = r.json()["id"]
    bad = {
        str(d.state): "outside the folders nitrod serves instance stores from",
        str(d.state / "volumes"): "outside the folders",
        str(root) + "-x": "outside the folders",
        str(root / victim): "is not a folder a request may name",
    }
    (root / "link").symlink_to(d.state / "volumes")
    bad[str(root / "link")] = "a symbolic link or not a folder on the way; refused"
    (root / "open").mkdir(mode=0o777)
    os.chmod(root / "open", 0o777)
    bad[str(root / "open")] = "others may change it"
    (root / "theirs").mkdir()
    os.chown(root / "theirs", 4242, 4242)
    bad[str(root / "theirs")] = "others may change it"
    (root / "file").write_text("x")
    bad[str(root / "file")] = "not a folder"
    for dir_, msg in bad.items():
        r = d.call("POST", "/v1/instances", {"kernel": kernel, "initrd": None,
                                             "instance_store": {"size_mib": 4, "dir": dir_}})
        assert r.status == 400 and msg in r.json()["error"], (dir_, r)
    # A folder beneath, root's and closed to others, passes; the store is made in a
    # folder of its own, removed when the instance's processes are gone.
    (root / "fast").mkdir(mode=0o755)
    r = d.call("POST", "/v1/instances", {"kernel": kernel, "initrd": None,
                                         "instance_store": {"size_mib": 4,
                                                            "dir": str(root / "fast")}})
    assert r.status == 201, r
    inst = d.wait_state(r.json()["id"], {"failed"})
    assert inst["instance_store"] == {"size_mib": 4, "dir": str(root / "fast")}
    plan = json.loads((d.state / "instances" / inst["id"] / "launch.json").read_text())
    argv = plan["processes"][0]["argv"]
    assert argv[argv.index("--dir") + 1] == str(root / "fast" / inst["id"]), argv
    assert not (root / "fast" / inst["id"]).exists()  # failed: every process gone


def test_instance_store_folder_a_card_filled_is_removed(nitrod, kernel, folder):
    """A compromised instance-storage card owns its folder DIR/ID: it leaves folders in
    it, nested deep, with files and a symbolic link to a file outside. After its
    instance's processes are gone nitrod removes all of it (nothing followed: the file
    outside stays); a start is not refused because of what a card left."""
    d = nitrod
    root = d.state / "instance-store"
    r = d.call("POST", "/v1/instances", {"kernel": kernel, "initrd": None,
                                         "instance_store": {"size_mib": 4}})
    assert r.status == 201, r
    iid = r.json()["id"]
    d.wait_state(iid, {"failed"})
    outside = folder / "precious"
    outside.write_text("keep me")
    mine = root / iid
    mine.mkdir()
    deep = mine
    for i in range(200):  # deeper than any fixed recursion or fd budget would go
        deep = deep / f"d{i % 10}"
        deep.mkdir()
        if i % 50 == 0:
            (deep / "blob").write_bytes(b"x" * 4096)
            (deep / "link").symlink_to(outside)
            (deep / "dirlink").symlink_to(folder)
            (deep.parent / f"side{i}").mkdir()
    (mine / "top").write_text("y")
    r = d.call("POST", f"/v1/instances/{iid}/start")
    assert r.status in (200, 202), r
    d.wait_state(iid, {"failed"})
    assert "File exists" not in json.dumps(d.call("GET", f"/v1/instances/{iid}").json())
    assert not mine.exists(), sorted(str(p) for p in mine.rglob("*"))[:5]
    assert outside.read_text() == "keep me"


def test_bus_device_store_and_metadata_survive_a_restart(folder, kernel):
    """Everything of the spec is stored and reloaded: the bus and device names of each
    volume, the instance store and the IMDS fields (instance_type, user_data, ssh_key),
    which a restarted nitrod must still hand to nitro-hv and the cards."""
    ud, key = folder / "user-data", folder / "key.pub"
    ud.write_text("#!/bin/sh\necho hi\n")
    key.write_text("ssh-ed25519 AAAA test\n")
    d = Nitrod(folder).start()
    try:
        v = d.call("POST", "/v1/volumes", {"size_mib": 4}).json()
        w = d.call("POST", "/v1/volumes", {"size_mib": 4}).json()
        x = d.call("POST", "/v1/volumes", {"size_mib": 4}).json()
        body = {"kernel": kernel, "initrd": None, "instance_type": "m5.large",
                "user_data": str(ud), "ssh_key": str(key),
                "volumes": [{"id": v["id"], "device": "xvdc"}, {"id": w["id"], "bus": "virtio"}],
                "instance_store": {"size_mib": 8}}
        if HAVE_VPC:
            body["nics"] = [{"vpc": 3, "ip": "10.0.0.7/24"}]
        r = d.call("POST", "/v1/instances", body)
        assert r.status == 201, r
        iid = r.json()["id"]
        d.wait_state(iid, {"failed"})
        # attached later: the free default for its place (sdf), kept from then on
        for bad, msg in (({"bus": "ide"}, 'bus: expected "nvme" or "virtio"'),
                         ({"device": "../x"}, "device: expected 1 to 32"),
                         ({"bus": "virtio", "device": "sdf"}, "device: a device name needs bus nvme")):
            r = d.call("POST", f"/v1/volumes/{x['id']}/attach", {"instance_id": iid, **bad})
            assert r.status == 400 and msg in r.json()["error"], r
        r = d.call("POST", f"/v1/volumes/{x['id']}/attach", {"instance_id": iid})
        assert r.status == 200, r
        r = d.call("POST", f"/v1/volumes/{x['id']}/detach")
        assert r.status == 200, r
        r = d.call("POST", f"/v1/volumes/{x['id']}/attach", {"instance_id": iid, "device": "xvdc"})
        assert r.status == 409 and "device xvdc is volume" in r.json()["error"], r
        r = d.call("POST", f"/v1/volumes/{x['id']}/attach", {"instance_id": iid, "device": "sdz"})
        assert r.status == 200, r
        before = d.call("GET", f"/v1/instances/{iid}").json()
    finally:
        d.stop()
    d = Nitrod(folder).start()
    try:
        after = d.call("GET", f"/v1/instances/{iid}").json()
        assert after["volumes"] == before["volumes"] == [
            {"id": v["id"], "readonly": False, "bus": "nvme", "device": "xvdc"},
            {"id": w["id"], "readonly": False, "bus": "virtio"},
            {"id": x["id"], "readonly": False, "bus": "nvme", "device": "sdz"}], after
        for k in ("instance_store", "instance_type", "user_data", "ssh_key"):
            assert after[k] == before[k] == body[k], (k, after)
        # and what the restarted nitrod starts carries them
        r = d.call("POST", f"/v1/instances/{iid}/start")
        assert r.status in (200, 202), r
        d.wait_state(iid, {"failed"})
        plan = json.loads((d.state / "instances" / iid / "launch.json").read_text())
        procs = plan["processes"]
        assert [p["vhost_user"] for p in procs[:4]] == ["nvme", "blk", "nvme", "nvme"], procs
        assert "--instance-store" in procs[3]["argv"], procs[3]
        hv = procs[-1]["argv"]
        assert hv[hv.index("--instance-type") + 1] == "m5.large", hv
        if HAVE_VPC:
            vpc = procs[4]["argv"]
            assert vpc[vpc.index("--instance-type") + 1] == "m5.large", vpc
            assert "--user-data" in vpc and "--ssh-key" in vpc, vpc
    finally:
        d.stop()


@pytest.mark.skipif(not (HAVE_VPC and (BUILD / "nitro-vpc-igw").exists()),
                    reason="nitro-card-vpc / nitro-vpc-igw not built")
def test_a_vpc_with_an_internet_gateway_is_the_same_plan_both_ways(nitrod, kernel, folder):
    """nitrod's VPC record (POST /v1/vpcs) and `nitro vpc create`'s give the same processes:
    the NAT first (its end of the link on fd 3), the card with --vpc-cidr and --igw-fd 5
    (fd 4 stays the resolver's socket), a NIC of a VPC without a record unchanged."""
    d = nitrod
    d.json("POST", "/v1/vpcs", {"id": 3, "cidr": "10.3.0.0/16", "internet_gateway": True},
           expect=201)
    body = {"kernel": kernel, "initrd": None, "cmdline": "console=ttyS0 quiet",
            "nics": [{"vpc": 9, "ip": "10.9.0.5/24"}, {"vpc": 3, "ip": "10.3.1.5/24"}]}
    r = d.call("POST", "/v1/instances", body)
    assert r.status == 201, r
    inst = d.wait_state(r.json()["id"], {"failed"})
    api_plan = json.loads((d.state / "instances" / inst["id"] / "launch.json").read_text())
    env = {**os.environ, "NITRO_STATE": str(folder / "run-state")}
    mk = subprocess.run([str(NITRO), "vpc", "create", "3", "--cidr", "10.3.0.0/16",
                         "--internet-gateway"], env=env, capture_output=True, text=True)
    assert mk.returncode == 0, mk.stderr
    dry = subprocess.run([str(NITRO), "run", "--dry-run", "--kernel", kernel, "--cmdline",
                          "console=ttyS0 quiet", "--require-kvm", "--cache-dir",
                          str(d.state / "kcache"), "--nic", "vpc=9,ip=10.9.0.5/24", "--nic",
                          "vpc=3,ip=10.3.1.5/24", "--map", str(d.state / "vpc-map"),
                          "--instance-id", inst["id"]],
                         env=env, capture_output=True, text=True, timeout=30,
                         stdin=subprocess.DEVNULL)
    assert dry.returncode == 0, dry.stderr
    a, b = normalized(api_plan), normalized(json.loads(dry.stdout))
    assert a == b, f"nitrod's plan differs from nitro run's:\n{a}\n{b}"
    assert [p[0] for p in a] == ["igw", "card-vpc", "card-vpc", "hv"], a
    assert a[0][2][1:] == ["--fd", "3", "--ip", "10.3.1.5/24", "--vpc-cidr", "10.3.0.0/16"]
    assert (3, "igw-nat") in a[0][5]
    card = a[2][2]
    assert card[card.index("--igw-fd") + 1] == "5" and (5, "igw") in a[2][5], a[2]
    assert "--igw-fd" not in a[1][2] and "--vpc-cidr" not in a[1][2]
    if (4, "dns") in a[2][5]:  # the host has a resolver: both on their own fds
        assert card[card.index("--dns-fd") + 1] == "4"


@pytest.mark.skipif(not HAVE_VPC, reason="nitro-card-vpc not built")
def test_the_region_reaches_the_cards_both_ways(folder, kernel):
    """`region` (nitro run --region): every VPC card gets it (IMDS placement, DNS names:
    tests/vpc/test_imds.py, test_dns.py), the identity document nitrod signs names it, and
    it survives a restart; nitro-hv does not get it."""
    d = Nitrod(folder).start()
    try:
        body = {"kernel": kernel, "initrd": None, "region": "eu-west-1",
                "nics": [{"vpc": 4, "ip": "10.0.0.9/24"}, {"vpc": 5, "ip": "10.1.0.9/24"}]}
        r = d.call("POST", "/v1/instances", body)
        assert r.status == 201 and r.json()["region"] == "eu-west-1", r
        inst = d.wait_state(r.json()["id"], {"failed"})
        _, api_plan, run_plan = launch_both_ways(
            d, kernel, None, ["--kernel", kernel, "--require-kvm", "--cache-dir",
                              str(d.state / "kcache"), "--region", "eu-west-1",
                              "--nic", "vpc=4,ip=10.0.0.9/24", "--nic", "vpc=5,ip=10.1.0.9/24",
                              "--map", str(d.state / "vpc-map")], inst=inst)
        a, b = normalized(api_plan), normalized(run_plan)
        assert a == b, f"{a}\n{b}"
        for p in a[:2]:
            assert p[2][p[2].index("--region") + 1] == "eu-west-1", p
        assert "--region" not in a[2][2]
        doc = json.loads((d.state / "instances" / inst["id"] / "identity-nic0" / "document").read_text())
        assert doc["region"] == "eu-west-1" and doc["availabilityZone"] == "eu-west-1a", doc
    finally:
        d.stop()
    d = Nitrod(folder).start()
    try:
        assert d.instance(inst["id"])["region"] == "eu-west-1"
    finally:
        d.stop()


def test_enclaves_are_the_same_plan_both_ways(nitrod, kernel):
    """"enclaves": true and `nitro run --enclaves` give the same processes: the vsock card
    (CID 3 on its socket, its enclaves on SOCKET.enc), the NSM card (its socket the
    enclaves' alone, the chain on fd 3), nitro-hv with the NE device and both enclave
    sockets for its spawner (no NSM device of its own)."""
    d = nitrod
    body = {"kernel": kernel, "initrd": None, "cmdline": "console=ttyS0 quiet", "cpus": 3,
            "enclaves": True}
    run_args = ["--kernel", kernel, "--cmdline", "console=ttyS0 quiet", "--cpus", "3",
                "--require-kvm", "--cache-dir", str(d.state / "kcache"), "--enclaves"]
    _, api_plan, run_plan = launch_both_ways(d, kernel, body, run_args)
    a, b = normalized(api_plan), normalized(run_plan)
    assert a == b, f"nitrod's plan differs from nitro run's:\n{a}\n{b}"
    assert [p[0] for p in a] == ["card-vsock", "card-nsm", "hv"], a
    assert a[0][2][1:] == ["--socket-path", "{run}/c0.sock", "--enclave-socket",
                           "{run}/c0.sock.enc"] and a[0][4] == "vsock"
    assert a[1][2][1:] == ["--socket-path", "{run}/c1.sock", "--chain-fd", "3"]
    assert a[1][4] is None and (3, "nsm-chain") in a[1][5]
    hv = a[2][2]
    assert "--enclaves" in hv and "vsock,{run}/c0.sock" in hv and not any(
        x.startswith("nsm,") for x in hv)
    assert hv[hv.index("--enclave-vsock") + 1] == "{run}/c0.sock.enc"
    assert hv[hv.index("--enclave-nsm") + 1] == "{run}/c1.sock"
