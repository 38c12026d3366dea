"""nitrod's VPC records (/v1/vpcs, issue 15 item 5; docs/api.md "VPCs").

A record gives a VPC its CIDR and an internet gateway; an instance's nic in a VPC with a
gateway is launched with its nitro-vpc-igw NAT (measured, jailed, its seccomp list),
from the same launch plan `nitro run` makes (tests/api/test_launch_plan.py compares
both). The attacks: uids that are not admins, malformed CIDRs and ids, duplicates,
bodies past the limit, deleting a VPC in use.
"""
import json
import os
import re
import subprocess

import pytest

from conftest import NITROD, Nitrod
from nitrotest import as_uid

BUILD = NITROD.resolve().parent
HAVE_VPC = (BUILD / "nitro-card-vpc").exists() and (BUILD / "nitro-vpc-igw").exists()


@pytest.fixture
def kernel(folder):
    k = folder / "not-a-kernel"
    k.write_bytes(b"this is not a bzImage\n" * 100)
    return str(k)


def test_create_list_describe_delete_and_audit(nitrod):
    d = nitrod
    assert d.json("GET", "/v1/vpcs") == {"vpcs": []}
    v = d.json("POST", "/v1/vpcs", {"id": 3, "cidr": "10.3.0.0/16", "internet_gateway": True},
               expect=201)
    assert (v["id"], v["cidr"], v["internet_gateway"], v["owner"]) == (3, "10.3.0.0/16", True,
                                                                        os.geteuid()), v
    w = d.json("POST", "/v1/vpcs", {"id": 1, "cidr": "172.16.0.0/28"}, expect=201)
    assert w["internet_gateway"] is False, w
    assert [x["id"] for x in d.json("GET", "/v1/vpcs")["vpcs"]] == [1, 3]  # in id order
    assert d.json("GET", "/v1/vpcs/3") == v
    r = d.call("POST", "/v1/vpcs", {"id": 3, "cidr": "10.4.0.0/16"})
    assert r.status == 409 and "VPC 3 exists" in r.json()["error"], r
    assert d.json("GET", "/v1/vpcs/3")["cidr"] == "10.3.0.0/16"  # the first one stays
    assert d.json("DELETE", "/v1/vpcs/3") == {"id": 3, "state": "deleted"}
    assert d.call("GET", "/v1/vpcs/3").status == 404
    assert d.call("DELETE", "/v1/vpcs/3").status == 404
    lines = d.audit_lines()
    assert any("method=POST route=/v1/vpcs status=201 detail=vpc%203%20cidr=10.3.0.0/16%20igw=1 "
               in l for l in lines), lines[-6:]
    assert any("method=POST route=/v1/vpcs status=409" in l for l in lines), lines[-6:]
    assert any("method=DELETE route=/v1/vpcs/3 status=200" in l for l in lines), lines[-6:]
    assert any("method=DELETE route=/v1/vpcs/3 status=404" in l for l in lines), lines[-6:]


def test_overlapping_cidrs_of_two_vpcs_are_allowed(nitrod):
    """As on AWS: two VPCs are isolated networks (the Geneve VNI), so their CIDRs may be
    the same; only the id is unique."""
    nitrod.json("POST", "/v1/vpcs", {"id": 10, "cidr": "10.0.0.0/16"}, expect=201)
    nitrod.json("POST", "/v1/vpcs", {"id": 11, "cidr": "10.0.0.0/16"}, expect=201)
    nitrod.json("POST", "/v1/vpcs", {"id": 12, "cidr": "10.0.128.0/17"}, expect=201)
    assert len(nitrod.json("GET", "/v1/vpcs")["vpcs"]) == 3


@pytest.mark.parametrize("body,msg", [
    ({"id": 3, "cidr": "10.3.0.1/16"}, "cidr: expected"),           # host bits
    ({"id": 3, "cidr": "10.0.0.0/15"}, "cidr: expected"),           # wider than /16
    ({"id": 3, "cidr": "10.0.0.0/29"}, "cidr: expected"),           # narrower than /28
    ({"id": 3, "cidr": "10.0.0.0/016"}, "cidr: expected"),
    ({"id": 3, "cidr": "10.0.0.0/+16"}, "cidr: expected"),
    ({"id": 3, "cidr": "10.0.0.0/ 16"}, "cidr: expected"),
    ({"id": 3, "cidr": "10.0.0.0/16 "}, "cidr: expected"),
    ({"id": 3, "cidr": " 10.0.0.0/16"}, "cidr: expected"),
    ({"id": 3, "cidr": "10.0.0/16"}, "cidr: expected"),
    ({"id": 3, "cidr": "010.0.0.0/16"}, "cidr: expected"),
    ({"id": 3, "cidr": "10.0.0.0.0/16"}, "cidr: expected"),
    ({"id": 3, "cidr": "10.0.0.256/24"}, "cidr: expected"),
    ({"id": 3, "cidr": "10.0.0.0"}, "cidr: expected"),
    ({"id": 3, "cidr": "10.0.0.0/"}, "cidr: expected"),
    ({"id": 3, "cidr": "/16"}, "cidr: expected"),
    ({"id": 3, "cidr": "::/16"}, "cidr: expected"),
    ({"id": 3, "cidr": "10.0.0.0/16\u0000x"}, "JSON_ALLOW_NUL"),  # refused by the parser
    ({"id": 3, "cidr": "1" * 60000}, "cidr: expected"),
    ({"id": 3, "cidr": 167772160}, "cidr: expected"),
    ({"id": 3, "cidr": None}, "cidr: expected"),
    ({"id": 3}, "cidr: expected"),
    ({"cidr": "10.0.0.0/16"}, "id: expected an integer from 1 to 16777215"),
    ({"id": 0, "cidr": "10.0.0.0/16"}, "id: expected an integer from 1"),
    ({"id": -1, "cidr": "10.0.0.0/16"}, "id: expected an integer from 1"),
    ({"id": 16777216, "cidr": "10.0.0.0/16"}, "id: expected an integer from 1"),
    ({"id": 2 ** 63, "cidr": "10.0.0.0/16"}, "malformed JSON"),  # jansson: too big
    ({"id": "3", "cidr": "10.0.0.0/16"}, "id: expected an integer"),
    ({"id": 3.0, "cidr": "10.0.0.0/16"}, "id: expected an integer"),
    ({"id": True, "cidr": "10.0.0.0/16"}, "id: expected an integer"),
    ({"id": 3, "cidr": "10.0.0.0/16", "internet_gateway": "yes"}, "internet_gateway: expected true or false"),
    ({"id": 3, "cidr": "10.0.0.0/16", "internet_gateway": 1}, "internet_gateway: expected true or false"),
    ({"id": 3, "cidr": "10.0.0.0/16", "region": "x"}, 'unknown field "region"'),
])
def test_malformed_bodies_are_400(nitrod, body, msg):
    r = nitrod.call("POST", "/v1/vpcs", body)
    assert r.status == 400 and msg in r.json()["error"], r
    assert nitrod.json("GET", "/v1/vpcs") == {"vpcs": []}


@pytest.mark.parametrize("raw,msg", [
    (b'{"id": 3, "cidr": "10.0.0.0/16", "id": 4}', "malformed JSON"),  # a key twice
    (b'[{"id": 3, "cidr": "10.0.0.0/16"}]', "must be a JSON object"),
    (b'{"id": 3, "cidr": "10.0.0.0/16"', "malformed JSON"),
    (b"", "malformed JSON"),
    (b"[" * 20000 + b"]" * 20000, "malformed JSON"),  # deeper than jansson goes
])
def test_malformed_json_is_400(nitrod, raw, msg):
    r = nitrod.call("POST", "/v1/vpcs", raw=raw)
    assert r.status == 400 and msg in r.json()["error"], r


def test_huge_bodies_are_413(nitrod):
    try:
        r = nitrod.call("POST", "/v1/vpcs", raw=b'{"id": 3, "cidr": "' + b"1" * 70000 + b'"}')
        assert r.status == 413, r
    except (BrokenPipeError, ConnectionResetError):
        pass  # answered and closed while we were still sending
    assert any("route=/v1/vpcs status=413" in l for l in nitrod.audit_lines()), \
        nitrod.audit_lines()[-3:]
    assert nitrod.json("GET", "/v1/vpcs") == {"vpcs": []}


@pytest.mark.parametrize("path", ["/v1/vpcs/03", "/v1/vpcs/-1", "/v1/vpcs/abc", "/v1/vpcs/0",
                                  "/v1/vpcs/16777216", "/v1/vpcs/99999999999", "/v1/vpcs/+3", "/v1/vpcs/3/x"])
def test_malformed_or_unknown_ids_are_404(nitrod, path):
    nitrod.json("POST", "/v1/vpcs", {"id": 3, "cidr": "10.0.0.0/16"}, expect=201)
    for m in ("GET", "DELETE"):
        r = nitrod.call(m, path)
        assert r.status == 404, (m, path, r)
    assert nitrod.json("GET", "/v1/vpcs/3")["id"] == 3


def test_methods(nitrod):
    r = nitrod.call("PUT", "/v1/vpcs", {"id": 3, "cidr": "10.0.0.0/16"})
    assert r.status == 405 and r.headers.get("Allow") == "GET, POST", r
    nitrod.json("POST", "/v1/vpcs", {"id": 3, "cidr": "10.0.0.0/16"}, expect=201)
    r = nitrod.call("POST", "/v1/vpcs/3", {})
    assert r.status == 405 and r.headers.get("Allow") == "GET, DELETE", r
    r = nitrod.call("DELETE", "/v1/vpcs/3", {"force": True})
    assert r.status == 400 and 'unknown field "force"' in r.json()["error"], r


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch uids")
def test_only_admins_create_and_delete(folder):
    """A gateway reaches this host's loopback services: records are the host's. An allowed
    uid reads them (its nics use them) and gets 403 on create and delete; an --admin-uid
    may."""
    d = Nitrod(folder, extra=["--allow-uid", "4242", "--admin-uid", "4343"]).start()
    try:
        d.json("POST", "/v1/vpcs", {"id": 5, "cidr": "10.5.0.0/16", "internet_gateway": True},
               expect=201)

        def as_user(method, path, body=None):
            def f():
                r = d.call(method, path, body)
                return [r.status, r.body]
            return as_uid(4242, f)
        st, body = as_user("POST", "/v1/vpcs", {"id": 6, "cidr": "10.6.0.0/16",
                                                "internet_gateway": True})
        assert st == 403 and "root or an --admin-uid only" in body, body
        st, body = as_user("DELETE", "/v1/vpcs/5")
        assert st == 403, body
        st, body = as_user("GET", "/v1/vpcs")
        assert st == 200 and [v["id"] for v in json.loads(body)["vpcs"]] == [5], body
        st, body = as_user("GET", "/v1/vpcs/5")
        assert st == 200 and json.loads(body)["internet_gateway"] is True, body
        assert [v["id"] for v in d.json("GET", "/v1/vpcs")["vpcs"]] == [5]
        assert any("uid=4242 method=POST route=/v1/vpcs status=403" in l
                   for l in d.audit_lines()), d.audit_lines()[-4:]

        def admin():
            r = d.call("POST", "/v1/vpcs", {"id": 7, "cidr": "10.7.0.0/16"})
            return [r.status, r.body]
        st, body = as_uid(4343, admin)
        assert st == 201 and json.loads(body)["owner"] == 4343, body
    finally:
        d.stop()


def test_records_survive_a_restart(folder):
    d = Nitrod(folder).start()
    try:
        d.json("POST", "/v1/vpcs", {"id": 20, "cidr": "10.20.0.0/16", "internet_gateway": True},
               expect=201)
        d.json("POST", "/v1/vpcs", {"id": 100, "cidr": "10.100.0.0/24"}, expect=201)
        d.json("POST", "/v1/vpcs", {"id": 9, "cidr": "10.9.0.0/16"}, expect=201)
        d.json("DELETE", "/v1/vpcs/9")
        before = d.json("GET", "/v1/vpcs")
    finally:
        d.stop()
    d = Nitrod(folder).start()
    try:
        assert d.json("GET", "/v1/vpcs") == before
        assert [v["id"] for v in before["vpcs"]] == [20, 100]  # numeric order, not text
    finally:
        d.stop()


@pytest.mark.skipif(not HAVE_VPC, reason="nitro-card-vpc / nitro-vpc-igw not built")
def test_nics_must_lie_in_the_cidr_and_a_vpc_in_use_stays(nitrod, kernel):
    d = nitrod
    d.json("POST", "/v1/vpcs", {"id": 4, "cidr": "10.4.0.0/16"}, expect=201)
    for ip in ("10.5.0.9/24", "10.4.0.9/15", "10.4.0.9/8"):
        r = d.call("POST", "/v1/instances", {"kernel": kernel, "initrd": None,
                                             "nics": [{"vpc": 4, "ip": ip}]})
        assert r.status == 400 and "is not inside VPC 4's CIDR 10.4.0.0/16" in r.json()["error"], r
    r = d.call("POST", "/v1/instances", {"kernel": kernel, "initrd": None,
                                         "nics": [{"vpc": 4, "ip": "10.4.7.9/24"}]})
    assert r.status == 201, r
    iid = r.json()["id"]
    d.wait_state(iid, {"failed"})
    # a failed (or stopped) instance still has its nic: the VPC cannot go
    r = d.call("DELETE", "/v1/vpcs/4")
    assert r.status == 409 and f"VPC 4 is in use by {iid}" in r.json()["error"], r
    # a record for a VPC whose existing nics lie outside its CIDR is refused
    r = d.call("POST", "/v1/instances", {"kernel": kernel, "initrd": None,
                                         "nics": [{"vpc": 8, "ip": "192.168.1.9/24"}]})
    assert r.status == 201, r
    other = r.json()["id"]
    d.wait_state(other, {"failed"})
    r = d.call("POST", "/v1/vpcs", {"id": 8, "cidr": "10.8.0.0/16"})
    assert r.status == 409 and f"{other}'s nic 192.168.1.9/24 in VPC 8 is not inside" in \
        r.json()["error"], r
    d.json("POST", "/v1/vpcs", {"id": 8, "cidr": "192.168.0.0/16"}, expect=201)
    for i in (iid, other):
        d.json("DELETE", f"/v1/instances/{i}")
        d.wait_state(i, {"terminated"})
    assert d.json("DELETE", "/v1/vpcs/4")["state"] == "deleted"
    assert d.json("DELETE", "/v1/vpcs/8")["state"] == "deleted"


@pytest.mark.skipif(not HAVE_VPC, reason="nitro-card-vpc / nitro-vpc-igw not built")
def test_a_nic_with_a_gateway_gets_its_nat_measured_and_jailed(folder, kernel):
    """The NAT is in the plan before its card (kind igw, the fds of its link), measured by
    the chip (its signature checked) and started through the jailer: a mount namespace,
    the instance's uid, its seccomp list, but the host's network namespace (no
    CLONE_NEWNET), as strace sees the jailer's child that execs it."""
    trace = folder / "st"
    d = Nitrod(folder, wrap=["strace", "-ff", "-v", "-o", str(trace), "-s", "256", "-e",
                             "trace=execve,execveat,unshare,setresuid,seccomp,prctl"])
    d.start()
    try:
        d.json("POST", "/v1/vpcs", {"id": 3, "cidr": "10.3.0.0/16", "internet_gateway": True},
               expect=201)
        r = d.call("POST", "/v1/instances", {"kernel": kernel, "initrd": None,
                                             "nics": [{"vpc": 3, "ip": "10.3.1.5/24"},
                                                      {"vpc": 9, "ip": "10.9.0.5/24"}]})
        assert r.status == 201, r
        inst = d.wait_state(r.json()["id"], {"failed"})
        plan = json.loads((d.state / "instances" / inst["id"] / "launch.json").read_text())
        log = d.json("GET", "/v1/host/attestation?nonce=igw")["event_log"]
    finally:
        for k in open(f"/proc/{d.proc.pid}/task/{d.proc.pid}/children").read().split():
            os.kill(int(k), 15)
        d.proc.wait(timeout=20)
    procs = plan["processes"]
    assert [p["kind"] for p in procs] == ["igw", "card-vpc", "card-vpc", "hv"], procs
    nat, card = procs[0], procs[1]
    assert nat["argv"][1:] == ["--fd", "3", "--ip", "10.3.1.5/24", "--vpc-cidr", "10.3.0.0/16"]
    assert [(f["fd"], f["role"], f["item"]) for f in nat["fds"]][0] == (3, "igw-nat", 0)
    assert nat["host_net"] and nat["socket"] is None
    assert "--igw-fd" not in procs[2]["argv"]  # VPC 9 has no record: no gateway
    a = card["argv"]
    assert a[a.index("--vpc-cidr") + 1] == "10.3.0.0/16" and a[a.index("--igw-fd") + 1] == "5"
    assert (5, "igw", 0) in [(f["fd"], f["role"], f["item"]) for f in card["fds"]]
    # measured: the chip's event log names the NAT's executable
    assert any("nitro-vpc-igw" in json.dumps(e) for e in log), [e.get("description") for e in log][:20]
    # the instance failed on the kernel (nitro-hv), not on its NAT or cards
    assert "nitro-hv" in inst["reason"], inst
    # one file per process (strace -ff): the jailer's child that became the NAT
    mine = None
    for f in folder.glob("st.*"):
        lines = f.read_text().splitlines()
        execs = [l for l in lines if l.startswith("execveat(") and "nitro-vpc-igw" in l
                 and l.endswith("= 0")]
        if execs:
            mine = lines
            break
    assert mine, sorted(p.name for p in folder.glob("st.*"))
    before = mine[:mine.index(execs[0])]
    uns = [l for l in before if "unshare(" in l]
    assert uns and "CLONE_NEWNS" in uns[0] and "CLONE_NEWNET" not in uns[0], mine[:10]
    assert any(re.search(r"setresuid\((\d+), \1, \1\)", l) and "(0, 0, 0)" not in l
               for l in before), before
    # the jailer names the seccomp list (src/sandbox) the process loads at its start, and
    # the NAT loads it (its own "igw" list, always: jailed or not)
    assert '"NITRO_SECCOMP=igw"' in execs[0], execs[0]
    after = mine[mine.index(execs[0]):]
    assert any("seccomp(SECCOMP_SET_MODE_FILTER" in l or "PR_SET_SECCOMP" in l for l in after), after


def test_cli_client(nitrod):
    r = nitrod.cli("vpc", "create", "12", "--cidr", "10.12.0.0/16", "--internet-gateway")
    assert r.returncode == 0 and re.search(r"^12\s+10\.12\.0\.0/16\s+yes", r.stdout, re.M), r
    r = nitrod.cli("--json", "vpc", "describe", "12")
    assert r.returncode == 0 and json.loads(r.stdout)["internet_gateway"] is True, r
    r = nitrod.cli("vpc", "create", "12", "--cidr", "10.12.0.0/16")
    assert r.returncode == 1 and "VPC 12 exists" in r.stderr, r
    r = nitrod.cli("vpc", "create", "13", "--cidr", "10.13.0.1/16")
    assert r.returncode == 1 and "no host bits" in r.stderr, r
    r = nitrod.cli("vpc", "create", "--cidr", "10.13.0.0/16")
    assert r.returncode == 2, r
    r = nitrod.cli("vpc", "list")
    assert r.returncode == 0 and "10.12.0.0/16" in r.stdout, r
    r = nitrod.cli("vpc", "delete", "12")
    assert r.returncode == 0 and "VPC 12 deleted" in r.stdout, r
    assert nitrod.json("GET", "/v1/vpcs") == {"vpcs": []}
