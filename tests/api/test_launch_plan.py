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

from conftest import NITROD, Nitrod, wait_state
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
            out.append(fix(x))
        return out
    return [(p["kind"], p["exe"], argv(p["argv"]), fix(p["socket"]), p["vhost_user"],
             [(f["fd"], f["role"]) for f in p["fds"]]) for p in doc["processes"]]


def volume_file(d, vid):
    return d.state / "volumes" / f"{vid}.vol"


def launch_both_ways(d, kernel, body, run_args):
    r = d.call("POST", "/v1/instances", body)
    assert r.status == 201, r
    inst = wait_state(d, r.json()["id"], {"failed"})
    plan = json.loads((d.state / "instances" / inst["id"] / "launch.json").read_text())
    # one instance: nitrod's id is what nitro run is given (SMBIOS and the IMDS use it)
    run_args = [*run_args, "--instance-id", inst["id"]]
    dry = subprocess.run([str(NITRO), "run", "--dry-run", *run_args], capture_output=True,
                         text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert dry.returncode == 0, dry.stderr
    return inst, plan, json.loads(dry.stdout)


def test_nitro_run_and_nitrod_start_the_same_processes(nitrod, kernel):
    d = nitrod
    v1 = d.call("POST", "/v1/volumes", {"size_mib": 8, "iops": 700, "throughput_mib": 33}).json()
    v2 = d.call("POST", "/v1/volumes", {"size_mib": 4, "gp2": True}).json()
    v3 = d.call("POST", "/v1/volumes", {"size_mib": 4}).json()
    body = {"kernel": kernel, "initrd": None, "cmdline": "console=ttyS0 quiet", "cpus": 3,
            "memory_mib": 128,
            "volumes": [v1["id"], {"id": v2["id"], "readonly": True}, v3["id"]]}
    nic_args = []
    if HAVE_VPC:
        body["nics"] = [{"vpc": 5, "ip": "10.0.0.9/24", "pps": 1000, "bandwidth_mbit": 50,
                         "mac": "02:00:00:00:00:09"},
                        {"vpc": 6, "ip": "10.1.0.9/24", "pps": 0}]
        nic_args = ["--nic", "vpc=5,ip=10.0.0.9/24,pps=1000,bandwidth=50,mac=02:00:00:00:00:09",
                    "--nic", "vpc=6,ip=10.1.0.9/24,pps=0", "--map", str(d.state / "vpc-map")]
    run_args = ["--kernel", kernel, "--cmdline", "console=ttyS0 quiet", "--cpus", "3",
                "--memory", "128", "--require-kvm", "--cache-dir", str(d.state / "kcache"),
                # nitrod's volumes are virtio-blk (its spec has no bus field yet); nitro
                # run's default is NVMe, so this side names the bus.
                "--volume", f"{volume_file(d, v1['id'])},iops=700,throughput=33,bus=virtio",
                "--volume", f"{volume_file(d, v2['id'])},gp2,readonly,bus=virtio",
                "--volume", f"{volume_file(d, v3['id'])},bus=virtio", *nic_args]
    inst, api_plan, run_plan = launch_both_ways(d, kernel, body, run_args)
    a, b = normalized(api_plan), normalized(run_plan)
    assert [p[0] for p in a] == ["card-ebs"] * 3 + ["card-vpc"] * (2 if HAVE_VPC else 0) + ["hv"]
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
    if HAVE_VPC:
        assert ["--pps", "1000", "--bandwidth", "50"] == a[3][2][a[3][2].index("--pps"):][:4]
        assert "--pps" in a[4][2] and "--bandwidth" not in a[4][2]
        assert "--underlay-fd" in a[3][2] and (3, "underlay") in a[3][5]
    hv = a[-1][2]
    assert hv[hv.index("--cpus") + 1] == "3" and hv[hv.index("--memory") + 1] == "128"
    assert [x for x in hv if x.startswith(("blk,", "net,"))] == [f"{p[4]},{p[3]}" for p in a[:-1]]


def test_the_plan_differs_when_one_side_drops_a_value(nitrod, kernel):
    """The comparison above is sensitive: the same launch with one QoS value missing on
    the nitro run side is a different plan."""
    d = nitrod
    v = d.call("POST", "/v1/volumes", {"size_mib": 4, "iops": 321}).json()
    body = {"kernel": kernel, "initrd": None, "volumes": [v["id"]]}
    common = ["--kernel", kernel, "--require-kvm", "--cache-dir", str(d.state / "kcache")]
    _, api_plan, run_plan = launch_both_ways(d, kernel, body, common + ["--volume", f"{volume_file(d, v['id'])},bus=virtio"])
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
        inst = wait_state(d, r.json()["id"], {"failed"})
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
        inst = wait_state(d, iid, {"failed"})
        assert inst["volumes"] == [{"id": v["id"], "readonly": True}]
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
            {"id": v["id"], "readonly": True}, {"id": w["id"], "readonly": True}]
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
    inst = wait_state(nitrod, json.loads(r.stdout)["id"], {"failed"})
    assert inst["volumes"] == [{"id": v["id"], "readonly": True}], inst
    r = nitrod.cli("instances", "describe", inst["id"])
    assert f"{v['id']}(ro)" in r.stdout, r.stdout
    plan = json.loads((nitrod.state / "instances" / inst["id"] / "launch.json").read_text())
    assert plan["processes"][0]["argv"][5:8] == ["--iops", "250", "--throughput"], plan
    assert "--readonly" in plan["processes"][0]["argv"], plan
    r = nitrod.cli("instances", "run", "--volume", f"{v['id']},rw")
    assert r.returncode == 2 and "VOL-ID[,readonly]" in r.stderr, r.stderr
