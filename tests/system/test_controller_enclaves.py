"""Nitro Enclaves through nitrod, in the emulated host (issue 12 items 1, 2, 6): a parent
instance made with "enclaves": true (measured, jailed cards and nitro-hv) runs
tests/system/enclave_e2e.sh's attest step: `nitro-enclave run` starts test.eif through the
stock driver, nitro-hv's spawner starts the enclave's nitro-hv inside the parent's jail,
the enclave's payload gets an attestation document with the test's nonce from the jailed
NSM card and sends it to the parent over the jailed vsock card. The document verifies
against GET /v1/host/enclave-root (and not against another root); once the instance
stopped, no process of its uid is left and its cgroup is gone.

Run: make build/enclave/parent-initrd.img && build/nitro emuhost --memory 6144 -- \
     /usr/bin/python3 -m pytest -v -p no:cacheprovider tests/system/test_controller_enclaves.py
"""
import json
import os
import secrets
import shutil
import tempfile

import pytest

from conftest import NITRO, cmdline
from test_controller import sys_nitrod
from test_enclave import nsm_response, run_result, verify

ENCLAVE = NITRO.parent / "enclave"
PARENT_INITRD = ENCLAVE / "parent-initrd.img"


def uid_procs(uid):
    """Pids of the processes running as uid."""
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/status") as f:
                    for line in f:
                        if line.startswith("Uid:") and int(line.split()[1]) == uid:
                            out.append(int(p))
            except OSError:
                pass
    return out


@pytest.fixture
def nitrod():
    folder = tempfile.mkdtemp(prefix="nitrod-enc-")
    d = sys_nitrod(folder)
    os.makedirs(d.files_dir, exist_ok=True)
    d.start()
    yield d
    try:
        for i in d.json("GET", "/v1/instances")["instances"]:
            if i["state"] != "terminated":
                d.call("DELETE", f"/v1/instances/{i['id']}")
    finally:
        d.stop()
        shutil.rmtree(folder, ignore_errors=True)


def test_enclave_attestation_through_nitrod_verifies_against_the_root_route(nitrod):
    assert PARENT_INITRD.exists(), "make build/enclave/parent-initrd.img"
    initrd = os.path.join(nitrod.files_dir, "parent-initrd.img")
    shutil.copy(PARENT_INITRD, initrd)
    root = nitrod.json("GET", "/v1/host/enclave-root")["certificate"].encode()
    nonce = secrets.token_bytes(32)
    i = nitrod.json("POST", "/v1/instances",
                    {"console": True, "enclaves": True, "cpus": 3, "memory_mib": 1536,
                     "initrd": initrd,
                     "cmdline": cmdline(f"sh /enclave/e2e.sh attest {nonce.hex()}",
                                        extra="quiet")}, expect=201)
    assert i["state"] == "running", i
    plan = json.loads((nitrod.state / "instances" / i["id"] / "launch.json").read_text())
    kinds = [p["kind"] for p in plan["processes"]]
    # the chain fd: the NSM card's, nobody else's
    holders = [p["kind"] for p in plan["processes"]
               if any(f["role"] == "nsm-chain" for f in p["fds"])]
    assert holders == ["card-nsm"], kinds
    hv_log_path = nitrod.state / "instances" / i["id"] / "hv.log"
    try:
        st = nitrod.wait_state(i["id"], {"stopped", "failed"}, timeout=600)
    except AssertionError:
        print(nitrod.console(i["id"])[-4000:], hv_log_path.read_text(errors="replace")[-3000:])
        raise
    out = nitrod.console(i["id"])
    hv_log = hv_log_path.read_text(errors="replace")
    assert st["state"] == "stopped", (st, hv_log[-3000:], out[-3000:])
    status, info, err = run_result(out, "attest")
    assert status == 0, (err, hv_log[-3000:], out[-3000:])
    assert info["NumberOfCPUs"] == 1 and info["EnclaveCID"] > 3, info
    assert "E2E-PARENT status=0" in out, out[-3000:]
    import cbor2
    doc = cbor2.loads(nsm_response(out))["Attestation"]["document"]
    pcrs = json.loads((ENCLAVE / "test.json").read_text())["Measurements"]
    p = verify(doc, nonce, pcrs, root)
    assert p["module_id"].startswith(i["id"]), p["module_id"]
    # another state's root does not verify it
    other = nitrod.state.parent / "other-chip"
    r = os.system(f"{NITRO} enclave root-cert --state {other} > {other}.pem")
    assert r == 0
    with pytest.raises(AssertionError):
        verify(doc, nonce, pcrs, open(f"{other}.pem", "rb").read())
    # stopped: the enclave's nitro-hv and the spawner went with the parent's (its PID
    # namespace and cgroup), nothing runs as the instance's uid
    rec = nitrod.instance(i["id"])
    assert rec["hv_pid"] in (None, 0) and not any(rec.get("card_pids") or []), rec
    assert nitrod.wait("the instance's processes to end",
                       lambda: not uid_procs(400000) or None, timeout=30) is not None
    if os.path.isdir("/sys/fs/cgroup/nitro"):
        assert not os.path.exists(f"/sys/fs/cgroup/nitro/{i['id']}")
