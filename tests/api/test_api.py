"""nitrod's API: every route and its error cases, natively (no guest boots here)."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import BUILD, NITROD, Nitrod
from nitrotest import as_uid, read_until_closed

ID_RE = re.compile(r"^i-[0-9a-f]{17}$")
VOL_RE = re.compile(r"^vol-[0-9a-f]{17}$")


def ids(vols):
    """The ids of an instance's volumes ({id, readonly, bus, device} each)."""
    return [x["id"] for x in vols]


def audit_tail(d, n=1):
    return d.audit_lines()[-n:]


def make_failed_instance(d, kernel, **extra):
    spec = {"kernel": kernel, "initrd": None, "memory_mib": 128}
    spec.update(extra)
    r = d.call("POST", "/v1/instances", spec)
    assert r.status == 201, r
    inst = r.json()
    assert ID_RE.match(inst["id"]), inst
    return d.wait_state(inst["id"], {"failed"})


# --- instances ---

def test_create_runs_the_launch_and_a_bad_kernel_leaves_it_failed(nitrod, bad_kernel):
    inst = make_failed_instance(nitrod, bad_kernel, cpus=2, cmdline="console=ttyS0 quiet")
    assert inst["cpus"] == 2 and inst["memory_mib"] == 128
    assert inst["kernel"] == bad_kernel and inst["initrd"] is None
    assert inst["cmdline"] == "console=ttyS0 quiet"
    assert inst["console"] is False
    # nitro-hv's own message ends up in the reason.
    assert "nitro-hv" in inst["reason"] and "bzImage" in inst["reason"], inst
    assert inst["hv_pid"] is None
    # The launch measured the kernel and the command line into the chip's log.
    att = nitrod.call("GET", "/v1/host/attestation?nonce=t1").json()
    descs = [e["description"] for e in att["event_log"]]
    assert bad_kernel in descs
    assert any(d.replace("%20", " ") == "console=ttyS0 quiet" for d in descs)


def test_list_and_describe(nitrod, bad_kernel):
    a = make_failed_instance(nitrod, bad_kernel)
    b = make_failed_instance(nitrod, bad_kernel)
    r = nitrod.call("GET", "/v1/instances")
    assert r.status == 200
    ids = [i["id"] for i in r.json()["instances"]]
    assert ids == [a["id"], b["id"]]
    r = nitrod.call("GET", f"/v1/instances/{a['id']}")
    assert r.status == 200 and r.json()["id"] == a["id"]


def test_defaults_name_the_default_image(nitrod, folder):
    # With no kernel given the default image is used; point it at an empty images folder
    # so the launch fails in measurement (no such file), deterministically.
    d2 = Nitrod(folder / "other", files=folder, extra=["--images", str(folder / "no-images")])
    (folder / "other").mkdir()
    d2.start()
    try:
        r = d2.call("POST", "/v1/instances", {})
        assert r.status == 201, r
        inst = r.json()
        assert inst["state"] == "failed"
        assert inst["kernel"] == str(folder / "no-images" / "vmlinuz")
        assert inst["initrd"] == str(folder / "no-images" / "guest.img")
        assert inst["reason"].startswith("launch refused:"), inst
        assert "vmlinuz" in inst["reason"]
        assert inst["cpus"] == 1 and inst["memory_mib"] == 256 and inst["console"] is False
        line = [l for l in d2.audit_lines() if " method=LAUNCH " in l]
        assert line and "status=403" in line[-1], d2.audit_lines()
    finally:
        d2.stop()


@pytest.mark.parametrize("body,msg", [
    ('{"cpus": 1', "malformed JSON"),
    ("not json at all", "malformed JSON"),
    ("[1, 2]", "must be a JSON object"),
    ('{"cpus": "2"}', "cpus: expected an integer"),
    ('{"cpus": 0}', "cpus: expected an integer from 1 to 254"),
    ('{"cpus": 1.5}', "cpus: expected an integer"),
    ('{"memory_mib": 10}', "memory_mib: expected an integer from 64"),
    ('{"memory_mib": -1}', "memory_mib"),
    ('{"console": "yes"}', "console: expected true or false"),
    ('{"kernel": 5}', "kernel: expected a string"),
    ('{"kernel": "relative/path"}', "kernel: expected an absolute path"),
    ('{"kernel": "/a/../etc/shadow"}', "kernel: expected an absolute path"),
    # Outside the served folders nothing is even looked at (no existence oracle); missing
    # files and folders inside them: test_boot_files_* below.
    ('{"kernel": "/nonexistent/vmlinuz"}', "kernel /nonexistent/vmlinuz: outside the folders"),
    ('{"kernel": "/tmp"}', "outside the folders"),
    ('{"kernel": "/etc/passwd"}', "outside the folders nitrod serves files from"),
    ('{"initrd": "/etc/shadow"}', "outside the folders nitrod serves files from"),
    ('{"cmdline": "a\\nb"}', "cmdline: only printable ASCII"),
    ('{"cmdline": "' + "x" * 3000 + '"}', "cmdline: longer than 2048"),
    ('{"volumes": "vol-1"}', "volumes: expected an array"),
    ('{"volumes": ["nope"]}', "volumes[0]: expected a volume id"),
    ('{"volumes": ["vol-0123456789abcdef0"]}', "volume vol-0123456789abcdef0 not found"),
    ('{"nics": [{"vpc": 1}]}', "nics[0].ip: required"),
    ('{"nics": [{"vpc": 1, "ip": "10.0.0.5/24", "colour": 1}]}', 'nics[0]: unknown field "colour"'),
    ('{"cpus": 1, "cpus": 2}', "malformed JSON"),
    ('{"cpu": 1}', 'unknown field "cpu"'),
    ('{"cpus": 1, "extra": {"deep": [1,2,3]}}', 'unknown field "extra"'),
])
def test_create_rejects_bad_bodies(nitrod, body, msg):
    before = len(nitrod.audit_lines())
    r = nitrod.call("POST", "/v1/instances", raw=body)
    expect = 404 if "not found" in msg else 400
    assert r.status == expect, r
    assert msg in r.json()["error"], r
    assert nitrod.call("GET", "/v1/instances").json()["instances"] == []
    # This call's line (nitrod's own START line may land after a first request's).
    lines = [l for l in nitrod.audit_lines()[before:] if "method=POST route=/v1/instances " in l]
    assert len(lines) == 1 and f"status={expect}" in lines[0], lines


def test_wrong_state_transitions_are_409(nitrod, bad_kernel):
    inst = make_failed_instance(nitrod, bad_kernel)
    iid = inst["id"]
    for action in ("stop", "reboot"):
        r = nitrod.call("POST", f"/v1/instances/{iid}/{action}")
        assert r.status == 409, r
        assert "is failed" in r.json()["error"]
    r = nitrod.call("DELETE", f"/v1/instances/{iid}")
    assert r.status == 200, r
    assert r.json()["state"] == "terminated"
    r = nitrod.call("DELETE", f"/v1/instances/{iid}")
    assert r.status == 409 and "already terminated" in r.json()["error"], r
    r = nitrod.call("POST", f"/v1/instances/{iid}/start")
    assert r.status == 409 and "only a stopped or failed instance" in r.json()["error"], r
    # Still listed, as terminated.
    assert nitrod.wait_state(iid, {"terminated"})["state"] == "terminated"


def test_start_relaunches_a_failed_instance(nitrod, bad_kernel):
    inst = make_failed_instance(nitrod, bad_kernel)
    r = nitrod.call("POST", f"/v1/instances/{inst['id']}/start")
    assert r.status == 200, r
    again = nitrod.wait_state(inst["id"], {"failed"})
    assert "bzImage" in again["reason"]


def test_actions_take_no_fields(nitrod, bad_kernel):
    inst = make_failed_instance(nitrod, bad_kernel)
    r = nitrod.call("POST", f"/v1/instances/{inst['id']}/start", {"force": True})
    assert r.status == 400 and 'unknown field "force"' in r.json()["error"], r


def test_unknown_ids_and_routes(nitrod):
    for method, path in [("GET", "/v1/instances/i-0123456789abcdef0"),
                         ("POST", "/v1/instances/i-0123456789abcdef0/stop"),
                         ("DELETE", "/v1/instances/i-0123456789abcdef0"),
                         ("GET", "/v1/instances/i-0123456789abcdef0/console"),
                         ("GET", "/v1/volumes/vol-0123456789abcdef0"),
                         ("POST", "/v1/volumes/vol-0123456789abcdef0/detach")]:
        r = nitrod.call(method, path)
        assert r.status == 404 and "not found" in r.json()["error"], (method, path, r)
    r = nitrod.call("GET", "/v1/instances/%3Cscript%3E")
    assert r.status == 404 and "<script>" not in r.body and "malformed id" in r.body, r
    for path in ["/", "/v2/instances", "/v1/instances/i-0123456789abcdef0/explode",
                 "/v1/host", "/v1/a/b/c/d/e/f/g", "/v1/volumes/x/y/z"]:
        r = nitrod.call("GET", path)
        assert r.status == 404 and "error" in r.json(), (path, r)


def test_wrong_methods_are_405(nitrod):
    for method, path, allow in [("PUT", "/v1/instances", "GET, POST"),
                                ("DELETE", "/v1/instances", "GET, POST"),
                                ("POST", "/v1/instances/i-0123456789abcdef0", "GET, DELETE"),
                                ("GET", "/v1/instances/i-0123456789abcdef0/stop", "POST"),
                                ("POST", "/v1/instances/i-0123456789abcdef0/console", "GET"),
                                ("PATCH", "/v1/volumes", "GET, POST"),
                                ("GET", "/v1/volumes/vol-0123456789abcdef0/attach", "POST"),
                                ("POST", "/v1/host/attestation", "GET"),
                                ("GE", "/v1/instances/i-0123456789abcdef0", "GET, DELETE")]:
        r = nitrod.call(method, path)
        assert r.status == 405, (method, path, r)
        assert r.headers.get("Allow") == allow, (method, path, r.headers)


# --- console ---

def test_console_403_unless_launched_with_it(nitrod, bad_kernel):
    off = make_failed_instance(nitrod, bad_kernel)
    r = nitrod.call("GET", f"/v1/instances/{off['id']}/console")
    assert r.status == 403, r
    assert "serial console" in r.json()["error"] and "off" in r.json()["error"]
    assert "status=403" in audit_tail(nitrod)[0] and "/console" in audit_tail(nitrod)[0]
    on = make_failed_instance(nitrod, bad_kernel, console=True)
    r = nitrod.call("GET", f"/v1/instances/{on['id']}/console")
    assert r.status == 200, r
    assert r.headers["Content-Type"].startswith("text/plain")
    # No console file is even created for an instance without console.
    assert not (nitrod.state / "instances" / off["id"] / "console.log").exists()
    assert (nitrod.state / "instances" / on["id"] / "console.log").exists()


# --- volumes ---

def test_volume_lifecycle(nitrod, bad_kernel):
    r = nitrod.call("POST", "/v1/volumes", {"size_mib": 8})
    assert r.status == 201, r
    v = r.json()
    assert VOL_RE.match(v["id"]) and v["size_mib"] == 8 and v["encrypted"] is True
    assert v["state"] == "available" and v["attached_to"] is None
    assert "path" not in v
    u = nitrod.call("POST", "/v1/volumes", {"size_mib": 4, "encrypted": False}).json()
    assert u["encrypted"] is False
    listed = nitrod.call("GET", "/v1/volumes").json()["volumes"]
    assert [x["id"] for x in listed] == [v["id"], u["id"]]
    assert nitrod.call("GET", f"/v1/volumes/{v['id']}").json() == v

    inst = make_failed_instance(nitrod, bad_kernel)
    iid = inst["id"]
    r = nitrod.call("POST", f"/v1/volumes/{v['id']}/attach", {"instance_id": iid})
    assert r.status == 200 and r.json()["attached_to"] == iid, r
    assert ids(nitrod.call("GET", f"/v1/instances/{iid}").json()["volumes"]) == [v["id"]]
    r = nitrod.call("POST", f"/v1/volumes/{v['id']}/attach", {"instance_id": iid})
    assert r.status == 409 and "already attached" in r.json()["error"], r
    r = nitrod.call("DELETE", f"/v1/volumes/{v['id']}")
    assert r.status == 409 and "detach it first" in r.json()["error"], r
    # A second instance cannot take an attached volume.
    r = nitrod.call("POST", "/v1/instances", {"kernel": bad_kernel, "volumes": [v["id"]]})
    assert r.status == 409 and f"attached to {iid}" in r.json()["error"], r
    r = nitrod.call("POST", f"/v1/volumes/{v['id']}/detach")
    assert r.status == 200 and r.json()["attached_to"] is None, r
    assert nitrod.call("GET", f"/v1/instances/{iid}").json()["volumes"] == []
    r = nitrod.call("POST", f"/v1/volumes/{v['id']}/detach")
    assert r.status == 409 and "not attached" in r.json()["error"], r
    r = nitrod.call("DELETE", f"/v1/volumes/{v['id']}")
    assert r.status == 200 and r.json()["state"] == "deleted", r
    assert nitrod.call("GET", f"/v1/volumes/{v['id']}").status == 404
    assert not list((nitrod.state / "volumes").glob(v["id"] + "*"))


def test_terminate_releases_volumes(nitrod, bad_kernel):
    v = nitrod.call("POST", "/v1/volumes", {"size_mib": 4}).json()
    inst = make_failed_instance(nitrod, bad_kernel)
    assert nitrod.call("POST", f"/v1/volumes/{v['id']}/attach",
                       {"instance_id": inst["id"]}).status == 200
    assert nitrod.call("DELETE", f"/v1/instances/{inst['id']}").status == 200
    nitrod.wait_state(inst["id"], {"terminated"})
    assert nitrod.call("GET", f"/v1/volumes/{v['id']}").json()["attached_to"] is None
    r = nitrod.call("POST", f"/v1/volumes/{v['id']}/attach", {"instance_id": inst["id"]})
    assert r.status == 409 and "terminated" in r.json()["error"], r


@pytest.mark.parametrize("body,status,msg", [
    ("{}", 400, "size_mib: required"),
    ('{"size_mib": 0}', 400, "size_mib: expected an integer from 1"),
    ('{"size_mib": 99999999999}', 400, "size_mib"),
    ('{"size_mib": "8"}', 400, "size_mib"),
    ('{"size_mib": 8, "encrypted": 1}', 400, "encrypted: expected true or false"),
    ('{"size_mib": 8, "path": "/etc/passwd"}', 400, 'unknown field "path"'),
    ("", 400, "malformed JSON"),
])
def test_volume_create_rejects(nitrod, body, status, msg):
    r = nitrod.call("POST", "/v1/volumes", raw=body)
    assert r.status == status and msg in r.json()["error"], r
    assert nitrod.call("GET", "/v1/volumes").json()["volumes"] == []


def test_attach_rejects(nitrod):
    v = nitrod.call("POST", "/v1/volumes", {"size_mib": 4}).json()
    for body, status, msg in [("{}", 400, "instance_id"),
                              ('{"instance_id": 5}', 400, "instance_id"),
                              ('{"instance_id": "i-0123456789abcdef0"}', 404, "not found"),
                              ('{"instance_id": "i-0123456789abcdef0", "x": 1}', 400, "unknown field")]:
        r = nitrod.call("POST", f"/v1/volumes/{v['id']}/attach", raw=body)
        assert r.status == status and msg in r.json()["error"], (body, r)


# --- attestation ---

def test_attestation(nitrod):
    r = nitrod.call("GET", "/v1/host/attestation?nonce=abc-123")
    assert r.status == 200, r
    doc = r.json()
    assert doc["nonce"] == "abc-123" and "nonce=abc-123\n" in doc["signed_data"]
    # nitrod measured itself before serving.
    assert any(e["type"] == "exec" and e["description"].endswith("/nitrod") for e in doc["event_log"])
    r = nitrod.call("GET", "/v1/host/attestation")
    assert r.status == 200 and len(r.json()["nonce"]) >= 16
    r = nitrod.call("GET", "/v1/host/attestation?nonce=a%20b")
    assert r.status == 400 and "nonce" in r.json()["error"], r


def test_identity_cert_and_instance_metadata_fields(nitrod):
    # The chip's identity certificate: what verifies the IMDS identity documents' pkcs7,
    # rsa2048 and signature (tests/unit/security/test_identity.c signs and verifies).
    r = nitrod.cli("host", "identity-cert")
    assert r.returncode == 0 and r.stdout.startswith("-----BEGIN CERTIFICATE-----"), r
    assert nitrod.cli("host", "identity-cert").stdout == r.stdout  # one key, kept
    x = subprocess.run(["openssl", "x509", "-noout", "-subject"], input=r.stdout,
                       capture_output=True, text=True)
    assert x.returncode == 0 and "nitro instance identity" in x.stdout, x
    # The metadata fields of a spec: checked, stored, shown
    r = nitrod.call("POST", "/v1/instances", raw=b'{"instance_type": "m5 large"}')
    assert r.status == 400 and "instance_type" in r.json()["error"], r
    r = nitrod.call("POST", "/v1/instances",
                    raw=b'{"nics": [{"vpc": 1, "ip": "10.0.0.5/24", "imds": "sometimes"}]}')
    assert r.status == 400 and "imds" in r.json()["error"], r
    r = nitrod.call("POST", "/v1/instances", raw=b'{"user_data": "relative/path"}')
    assert r.status == 400 and "user_data" in r.json()["error"], r
    # The attack: name a host file as user data (or key) so that the guest reads it
    # from the IMDS. Only files of the folders nitrod serves (--images, --files) pass.
    for field in ("user_data", "ssh_key"):
        r = nitrod.call("POST", "/v1/instances", {field: "/etc/passwd"})
        assert r.status == 400 and "outside the folders" in r.json()["error"], r


# --- transport: sizes, slow clients, uids ---

def test_huge_bodies_are_413(nitrod):
    # Refused from the Content-Length alone, before the body is sent.
    s = raw_client(nitrod)
    s.sendall(b"POST /v1/instances HTTP/1.1\r\nHost: x\r\nContent-Length: 10485760\r\n\r\n")
    s.settimeout(5)
    head = s.recv(4096)
    assert head.startswith(b"HTTP/1.1 413 "), head
    s.close()
    # Just over the limit, sent whole.
    try:
        r = nitrod.call("POST", "/v1/instances", raw=b"{" + b" " * 65536 + b"}")
        assert r.status == 413, r
    except (BrokenPipeError, ConnectionResetError):
        pass
    # Without a Content-Length (chunked): refused once past the limit.
    def chunks():
        yield b'{"cmdline": "'
        for _ in range(200):
            yield b"x" * 4096
    try:
        r = nitrod.call("POST", "/v1/instances", raw=chunks(), headers={"Transfer-Encoding": "chunked"})
        assert r.status == 413, r
    except (BrokenPipeError, ConnectionResetError):
        pass  # nitrod answered and closed while we were still sending
    assert [l for l in nitrod.audit_lines() if "status=413" in l]
    assert nitrod.call("GET", "/v1/instances").status == 200


def raw_client(d):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(d.sock)
    return s


def test_slow_and_half_open_clients_time_out_without_blocking_others(folder):
    d = Nitrod(folder, extra=["--timeout", "2"]).start()
    try:
        idle = raw_client(d)  # connects, says nothing
        slow = raw_client(d)  # a request head and part of its body, then nothing
        slow.sendall(b"POST /v1/volumes HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"si")
        t0 = time.time()
        for _ in range(20):
            r = d.call("GET", "/v1/volumes", timeout=1)
            assert r.status == 200
        assert time.time() - t0 < 1.5
        for s in (idle, slow):
            s.settimeout(6)
            assert s.recv(100) == b"", "nitrod did not drop a stalled client"
        assert time.time() - t0 < 6
        time.sleep(0.1)
        assert any("status=408" in l and "timed%20out" in l for l in d.audit_lines()), d.audit_lines()
    finally:
        d.stop()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch uids")
def test_other_uids_are_refused_and_audited(folder):
    d = Nitrod(folder, extra=["--allow-uid", "4242"]).start()
    try:
        assert oct(os.stat(d.sock).st_mode & 0o777) == "0o666"

        def get():
            r = d.call("GET", "/v1/instances")
            return f"{r.status} {r.body}"

        # Refused at accept, before it sends a byte: the answer is already waiting.
        out = as_uid(4243, lambda: read_until_closed(d.sock))
        assert out.startswith("HTTP/1.1 403 ") and "this uid may not use nitrod" in out, out
        assert any("uid=4243" in l and "status=403" in l for l in d.audit_lines())
        out = as_uid(4242, get)
        assert out.startswith("200 "), out
        assert any("uid=4242" in l and "status=200" in l for l in d.audit_lines())
        # A refused caller's request is read and dropped, never served: a POST changes
        # nothing, and the client reads its 403.
        def post():
            r = d.call("POST", "/v1/volumes", {"size_mib": 1})
            return f"{r.status} {r.body}"
        assert as_uid(4243, post).startswith("403 ")
        assert d.call("GET", "/v1/volumes").json()["volumes"] == []
    finally:
        d.stop()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch uids")
def test_socket_is_0600_by_default(nitrod):
    assert oct(os.stat(nitrod.sock).st_mode & 0o777) == "0o600"

    def connect():
        try:
            socket.socket(socket.AF_UNIX).connect(nitrod.sock)
            return "connected"
        except PermissionError:
            return "EACCES"
    assert as_uid(4243, connect) == "EACCES"


def test_32_concurrent_clients(nitrod, bad_kernel):
    inst = make_failed_instance(nitrod, bad_kernel)
    before = len(nitrod.audit_lines())
    errors = []

    def worker():
        try:
            for _ in range(25):
                r = nitrod.call("GET", f"/v1/instances/{inst['id']}")
                if r.status != 200 or r.json()["id"] != inst["id"]:
                    errors.append(r)
        except Exception as e:  # noqa
            errors.append(e)
    ts = [threading.Thread(target=worker) for _ in range(32)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors[:3]
    assert len(nitrod.audit_lines()) - before == 32 * 25


# --- persistence ---

def test_state_survives_a_restart(folder, bad_kernel):
    d = Nitrod(folder).start()
    v = d.call("POST", "/v1/volumes", {"size_mib": 4}).json()
    inst = make_failed_instance(d, bad_kernel, console=True, cpus=3)
    assert d.call("POST", f"/v1/volumes/{v['id']}/attach", {"instance_id": inst["id"]}).status == 200
    other = make_failed_instance(d, bad_kernel)
    assert d.call("DELETE", f"/v1/instances/{other['id']}").status == 200
    d.wait_state(other["id"], {"terminated"})
    before = {i["id"]: i for i in d.call("GET", "/v1/instances").json()["instances"]}
    vols = d.call("GET", "/v1/volumes").json()
    d.stop(signal.SIGKILL)  # no clean shut-down
    d.start()
    try:
        after = {i["id"]: i for i in d.call("GET", "/v1/instances").json()["instances"]}
        assert after == before
        assert ids(after[inst["id"]]["volumes"]) == [v["id"]] and after[inst["id"]]["cpus"] == 3
        assert after[other["id"]]["state"] == "terminated"
        assert d.call("GET", "/v1/volumes").json() == vols
        # And it keeps working: the console flag, the volume's attachment.
        assert d.call("GET", f"/v1/instances/{inst['id']}/console").status == 200
        assert d.call("DELETE", f"/v1/volumes/{v['id']}").status == 409
    finally:
        d.stop()


def test_a_second_nitrod_on_the_same_socket_is_refused(nitrod):
    p = subprocess.run([str(NITROD), "--socket", nitrod.sock, "--state", str(nitrod.state) + "2"],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode == 1 and "another nitrod" in p.stderr, p
    assert nitrod.call("GET", "/v1/volumes").status == 200


# --- audit ---

def test_every_call_is_audited_and_the_chain_verifies(nitrod, bad_kernel):
    calls = [("GET", "/v1/instances", None), ("POST", "/v1/volumes", {"size_mib": 2}),
             ("GET", "/v1/nope", None), ("POST", "/v1/instances", {"cpus": "x"})]
    before = len(nitrod.audit_lines())
    statuses = [nitrod.call(m, p, b).status for m, p, b in calls]
    lines = nitrod.audit_lines()[before:]
    assert len(lines) == len(calls)
    for (m, p, _), st, line in zip(calls, statuses, lines):
        assert f"uid={os.geteuid()} method={m} route={p} status={st} " in line, line
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ", line)
    v = subprocess.run([str(BUILD / "nitro-audit-verify"), str(nitrod.state / "audit.log")],
                       capture_output=True, text=True)
    assert v.returncode == 0, v


def test_a_tampered_hypervisor_is_refused(folder, bad_kernel):
    # A copy of the host stack whose nitro-hv has one flipped byte (nitrod uses the
    # binaries beside itself; the trust anchor is the development key beside them).
    bindir = folder / "bin"
    (bindir / "keys").mkdir(parents=True)
    for f in ("nitrod", "nitrod.sig", "nitro-hv", "nitro-hv.sig"):
        shutil.copy2(BUILD / f, bindir / f)
    shutil.copy2(BUILD / "keys" / "dev-anchor.pub.pem", bindir / "keys" / "dev-anchor.pub.pem")
    hv = bytearray((bindir / "nitro-hv").read_bytes())
    hv[len(hv) // 2] ^= 0x01
    (bindir / "nitro-hv").write_bytes(bytes(hv))
    d = Nitrod(folder, binary=bindir / "nitrod").start()
    try:
        r = d.call("POST", "/v1/instances", {"kernel": bad_kernel, "initrd": None})
        assert r.status == 201, r
        inst = r.json()
        assert inst["state"] == "failed", inst
        assert inst["reason"].startswith("launch refused:") and "nitro-hv" in inst["reason"], inst
        assert "signature" in inst["reason"], inst
        assert any(" method=LAUNCH " in l and "status=403" in l for l in d.audit_lines())
        assert inst["hv_pid"] is None
    finally:
        d.stop()


# --- the CLI client ---

def test_cli_client(nitrod, bad_kernel):
    c = nitrod.cli("volumes", "create", "--size", "4")
    assert c.returncode == 0, c
    assert "ID" in c.stdout and "available" in c.stdout
    vid = re.search(r"vol-[0-9a-f]{17}", c.stdout).group(0)
    c = nitrod.cli("instances", "run", "--kernel", bad_kernel, "--no-initrd", "--memory", "128",
                   "--volume", vid, "--json")
    inst = json.loads(c.stdout)
    assert ids(inst["volumes"]) == [vid]
    nitrod.wait_state(inst["id"], {"failed"})
    c = nitrod.cli("instances", "list")
    assert c.returncode == 0 and inst["id"] in c.stdout and "failed" in c.stdout, c
    c = nitrod.cli("instances", "describe", inst["id"])
    assert c.returncode == 0 and "state:         failed" in c.stdout and "bzImage" in c.stdout, c
    c = nitrod.cli("instances", "stop", inst["id"])
    assert c.returncode == 1 and c.stderr.startswith("nitro: instance ") and "is failed" in c.stderr, c
    c = nitrod.cli("instances", "console", inst["id"])
    assert c.returncode == 1 and "serial console" in c.stderr, c
    c = nitrod.cli("volumes", "list", "--json")
    assert json.loads(c.stdout)["volumes"][0]["attached_to"] == inst["id"]
    c = nitrod.cli("volumes", "detach", vid)
    assert c.returncode == 0, c
    c = nitrod.cli("instances", "terminate", inst["id"], "--wait")
    assert c.returncode == 0 and "terminated" in c.stdout, c
    c = nitrod.cli("volumes", "delete", vid)
    assert c.returncode == 0 and f"{vid} deleted" in c.stdout, c
    c = nitrod.cli("host", "attest", "--nonce", "n1")
    assert c.returncode == 0 and "nonce:  n1" in c.stdout and "pcr0:" in c.stdout, c
    c = nitrod.cli("instances", "describe", "i-0123456789abcdef0")
    assert c.returncode == 1 and c.stderr == "nitro: instance i-0123456789abcdef0 not found\n", c
    c = nitrod.cli("instances", "frobnicate", "x")
    assert c.returncode == 2, c


def test_cli_without_nitrod(folder):
    c = __import__("subprocess").run([str(BUILD / "nitro"), "--host", str(folder / "none.sock"),
                                      "instances", "list"], capture_output=True, text=True)
    assert c.returncode == 1 and c.stderr.startswith("nitro: --host "), c


@pytest.mark.skipif(not (BUILD / "nitro-card-vpc").exists(), reason="no nitro-card-vpc")
def test_nics_start_a_vpc_card_per_interface(nitrod, bad_kernel):
    inst = make_failed_instance(nitrod, bad_kernel, nics=[{"vpc": 3, "ip": "10.0.0.9/24"}])
    assert inst["nics"] == [{"vpc": 3, "ip": "10.0.0.9/24"}]
    assert len(inst["card_pids"]) == 1 and inst["card_pids"][0] is None  # stopped with nitro-hv
    log = (nitrod.state / "instances" / inst["id"] / "card0.log").read_text()
    assert log.startswith("nitro-card-vpc: vpc 3 10.0.0.9:"), log
    att = nitrod.call("GET", "/v1/host/attestation?nonce=n").json()
    assert any(e["description"].endswith("/nitro-card-vpc") for e in att["event_log"])
    r = nitrod.call("POST", "/v1/instances", {"kernel": bad_kernel, "nics": [{"vpc": 3, "ip": "10.0.0.9/24", "sg": "/etc/passwd"}]})
    assert r.status == 400 and "outside the folders" in r.json()["error"], r


@pytest.mark.skipif(not (BUILD / "nitro-card-vpc").exists(), reason="no nitro-card-vpc")
def test_vpc_map_records_are_the_launchers_not_the_cards(nitrod, bad_kernel):
    """docs/security.md, "a compromised VPC card can join any VPC": the mapping folder is
    nitrod's (0755), bound read-only into the VPC cards' jails (--map-ro), and nitrod writes
    each NIC's record itself before the card starts (the card checks it names its
    underlay) and removes it when the instance ends. Another uid (a card's) can neither
    create nor replace a record; records an older nitrod let the cards write are purged."""
    mapdir = nitrod.state / "vpc-map"
    mapdir.mkdir(mode=0o755, exist_ok=True)
    os.chmod(mapdir, 0o1777)  # as an older nitrod left it, with a squatter's record
    squat = mapdir / "7_10.0.0.99"
    squat.write_text("vpc=7 ip=10.0.0.99 mac=02:00:00:00:00:63 underlay=127.0.0.1:9 default_sg=1\n")
    if os.geteuid() == 0:
        os.chown(squat, 65534, 65534)
    else:  # not nitrod's either way: another owner only root can make
        squat.unlink()
        (mapdir / "sub").mkdir()
    nics = [{"vpc": 3, "ip": "10.0.0.9/24"},
            {"vpc": 7, "ip": "10.0.0.99/24", "mac": "02:00:00:00:00:09"}]
    inst = make_failed_instance(nitrod, bad_kernel, nics=nics)
    for i, (vpc, ip) in enumerate([(3, "10.0.0.9"), (7, "10.0.0.99")]):
        log = (nitrod.state / "instances" / inst["id"] / f"card{i}.log").read_text()
        assert log.startswith(f"nitro-card-vpc: vpc {vpc} {ip}:"), log  # its record checked out
    st = mapdir.stat()
    assert (st.st_mode & 0o7777, st.st_uid) == (0o755, os.geteuid()), oct(st.st_mode)
    assert sorted(p.name for p in mapdir.iterdir()) == [], "removed with the instance"
    plan = json.loads((nitrod.state / "instances" / inst["id"] / "launch.json").read_text())
    cards = [p for p in plan["processes"] if p["kind"] == "card-vpc"]
    assert len(cards) == 2
    for p in cards:
        assert "--map-ro" in p["argv"], p["argv"]
        assert [x["rw"] for x in p["paths"] if x["path"] == str(mapdir)] == [False], p["paths"]
    # The attack: a card's uid writes a record of another VPC.
    if os.geteuid() == 0:
        r = subprocess.run(["sh", "-c", f"echo 'vpc=7 ip=10.0.0.98 mac=02:00:00:00:00:62 "
                            f"underlay=127.0.0.1:9 default_sg=1' > {mapdir}/7_10.0.0.98"],
                           user=65534, group=65534, capture_output=True, text=True)
        assert r.returncode != 0 and "Permission denied" in r.stderr, r
        assert not (mapdir / "7_10.0.0.98").exists()


# --- audit durability (docs/security.md, "The audit log") ---

def strace_calls(path):
    """strace -f -ttt output as (time, pid, call, fd, text, complete) in file order; an
    <unfinished ...> call gets its completion line later ("resumed")."""
    out, pending = [], {}
    for line in path.read_text().splitlines():
        m = re.match(r"^(\d+)\s+(\d+\.\d+)\s+(.*)$", line)
        if not m:
            continue
        pid, t, rest = int(m.group(1)), float(m.group(2)), m.group(3)
        r = re.match(r"^<\.\.\. (\w+) resumed>", rest)
        if r:
            # The completion carries the call's fd and arguments from its first half, so
            # that e.g. an openat interrupted by another thread still shows path and result.
            fd, head = pending.pop(pid, (None, ""))
            out.append((t, pid, r.group(1), fd, head + rest, "resumed"))
            continue
        c = re.match(r"^(\w+)\((\d+)?", rest)
        if c:
            fd = int(c.group(2)) if c.group(2) else None
            unfinished = rest.endswith("<unfinished ...>")
            if unfinished:
                pending[pid] = (fd, rest[: -len("<unfinished ...>")])
            out.append((t, pid, c.group(1), fd, rest, "unfinished" if unfinished else "done"))
    return out


def test_audit_durability_state_changes_before_the_answer_reads_group_committed(folder):
    """A state-changing call is answered only after an fdatasync of the audit log that
    started after its line was written; a read's line is written before its answer, is
    not waited for, and an fdatasync covering it starts within the 20 ms bound."""
    trace = folder / "strace.out"
    d = Nitrod(folder, wrap=["strace", "-f", "-ttt", "-s", "512", "-o", str(trace), "-e",
                             "trace=openat,write,fdatasync,sendmsg,sendto,writev"])
    d.start()
    try:
        assert d.call("POST", "/v1/volumes", {"size_mib": 1}).status == 201
        assert d.call("DELETE", "/v1/instances/i-00000000000000000").status == 404
        time.sleep(0.1)
        assert d.call("GET", "/v1/volumes").status == 200
        time.sleep(0.2)  # let the flusher run
    finally:
        # SIGTERM to nitrod itself (strace's child), then strace ends with it.
        kids = open(f"/proc/{d.proc.pid}/task/{d.proc.pid}/children").read().split()
        for k in kids:
            os.kill(int(k), signal.SIGTERM)
        d.proc.wait(timeout=10)
    calls = strace_calls(trace)
    audit_fd = next(int(re.search(r"= (\d+)$", c[4]).group(1)) for c in calls
                    if c[2] == "openat" and "audit.log" in c[4] and re.search(r"= \d+$", c[4]))

    def line_write(method, route):
        return next(i for i, c in enumerate(calls) if c[2] == "write" and c[3] == audit_fd
                    and f"method={method} route={route} " in c[4])

    def answer_after(i):  # the answer: the next send on a socket by the writing thread
        pid = calls[i][1]
        return next(j for j in range(i + 1, len(calls)) if calls[j][1] == pid
                    and calls[j][2] in ("sendmsg", "sendto", "writev") and calls[j][3] != audit_fd)

    def syncs_between(i, j):
        """fdatasyncs of the audit log that start after i and complete before j."""
        done, started = [], {}
        for k in range(i + 1, j):
            t, pid, name, fd, text, state = calls[k]
            if name == "fdatasync" and state == "resumed":
                if pid in started:
                    done.append(started.pop(pid))
            elif name == "fdatasync" and fd == audit_fd:
                if state == "done":
                    done.append(t)
                else:
                    started[pid] = t
        return done

    for method, route in (("POST", "/v1/volumes"), ("DELETE", "/v1/instances/i-00000000000000000")):
        w = line_write(method, route)
        a = answer_after(w)
        assert syncs_between(w, a), f"{method} {route}: answered before its audit line was durable"
    w = line_write("GET", "/v1/volumes")
    a = answer_after(w)
    assert not syncs_between(w, a), "a read waited for an fdatasync"
    first_sync = next((c[0] for c in calls[w + 1:] if c[2] == "fdatasync" and c[3] == audit_fd
                       and c[5] != "resumed"), None)
    assert first_sync is not None, "a read's line was never fdatasync'ed"
    # 20 ms bound, plus slack for strace and a loaded machine (the test waited 200 ms).
    assert first_sync - calls[w][0] < 0.020 + 0.150, f"read's line synced after {first_sync - calls[w][0]:.3f} s"
    # Every line is in the chain, in order, whatever its durability.
    v = subprocess.run([str(BUILD / "nitro-audit-verify"), str(d.state / "audit.log")],
                       capture_output=True, text=True)
    assert v.returncode == 0, v


def test_a_new_state_has_no_database_until_the_first_write(folder):
    d = Nitrod(folder).start()
    try:
        assert d.call("GET", "/v1/instances").json() == {"instances": []}
        assert not (d.state / "nitrod.db").exists()
        d.stop()
        d.start()  # still empty, still serving
        v = d.call("POST", "/v1/volumes", {"size_mib": 1}).json()
        assert (d.state / "nitrod.db").exists()
        d.stop(signal.SIGKILL)
        d.start()
        assert [x["id"] for x in d.call("GET", "/v1/volumes").json()["volumes"]] == [v["id"]]
    finally:
        d.stop()


def test_describe_follows_every_change_and_matches_the_list(nitrod, bad_kernel):
    """describe renders an instance again only when a field it shows changed: after each
    change it must equal the list's (always freshly rendered) entry."""
    inst = make_failed_instance(nitrod, bad_kernel)

    def both():
        one = nitrod.call("GET", f"/v1/instances/{inst['id']}").json()
        listed = [i for i in nitrod.call("GET", "/v1/instances").json()["instances"]
                  if i["id"] == inst["id"]]
        assert listed == [one]
        return one

    assert both()["volumes"] == []
    v = nitrod.call("POST", "/v1/volumes", {"size_mib": 1}).json()
    assert nitrod.call("POST", f"/v1/volumes/{v['id']}/attach", {"instance_id": inst["id"]}).status == 200
    assert ids(both()["volumes"]) == [v["id"]]
    assert nitrod.call("POST", f"/v1/volumes/{v['id']}/detach").status == 200
    assert both()["volumes"] == []
    assert nitrod.call("DELETE", f"/v1/instances/{inst['id']}").status == 200
    nitrod.wait_state(inst["id"], {"terminated"})
    assert both()["state"] == "terminated"


# --- cgroup limits (issue 10 item 9; docs/security.md "The jailer") ---

def test_jailed_launch_refused_without_cgroups(folder, bad_kernel):
    """A host without cgroup v2 (here: a root that is a plain folder) gets no jailed
    instance unless nitrod was started with --no-cgroups; nitrod says so at start and in
    the instance's reason, and starts no process."""
    d = Nitrod(folder, extra=["--cgroup-root", str(folder)])
    d.extra = [a for a in d.extra if a != "--no-cgroups"]
    d.start()
    try:
        inst = make_failed_instance(d, bad_kernel, volumes=[])
        assert "not a cgroup v2 hierarchy" in inst["reason"], inst
        assert "--no-cgroups" in inst["reason"], inst
        assert inst["hv_pid"] is None
        assert not (d.state / "instances" / inst["id"] / "hv.log").exists()  # nothing started
        log = d.log.read_text()
        assert "not a cgroup v2 hierarchy" in log and "instances will be refused" in log, log
    finally:
        d.stop()
