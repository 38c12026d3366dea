"""Nitro Enclaves through nitrod (issue 12 items 1, 2, 6): the enclave attestation root of
nitrod's state (GET /v1/host/enclave-root, `nitro --host SOCK enclave root-cert`), the
chain's keys kept from every caller and every instance uid, and instances launched with
"enclaves": true (nitro-hv's enclave spawner in its jail, the NSM card's chain fd).

Native like the rest of tests/api: instances use a kernel nitro-hv refuses or that faults,
so they end `failed`; what is checked is what nitrod started and handed over. The enclave
boots through nitrod are in tests/system/test_controller.py.
"""
import json
import os
import re
import stat
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from conftest import NITROD, Nitrod
from nitrotest import as_uid

BUILD = NITROD.resolve().parent
NITRO = BUILD / "nitro"
UID_BASE = 400000  # nitrod's first instance uid (main.c)
OTHER = 4242       # an --allow-uid caller, not an admin


def root_of(d):
    r = d.call("GET", "/v1/host/enclave-root")
    assert r.status == 200, r
    return r.json()["certificate"]


def check_root(pem):
    """A self-signed EC P-384 CA certificate; its DER."""
    cert = x509.load_pem_x509_certificate(pem.encode())
    key = cert.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp384r1"
    key.verify(cert.signature, cert.tbs_certificate_bytes,
               ec.ECDSA(cert.signature_hash_algorithm))  # raises unless self-signed
    assert cert.issuer == cert.subject
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca is True, bc
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.key_cert_sign and ku.crl_sign
    return cert


@pytest.fixture
def kernel(folder):
    """A bzImage whose code is ud2 everywhere (tests/api/test_launch_plan.py's): nitro-hv
    checks it, then fails without KVM or faults at once."""
    from nitrotest import make_bzimage
    image = bytearray(make_bzimage())
    for off in range(1024, len(image), 2):
        image[off:off + 2] = b"\x0f\x0b"
    k = folder / "bzImage"
    k.write_bytes(bytes(image))
    return str(k)


def test_enclave_root_is_the_chips_and_kept_across_restarts(folder):
    d = Nitrod(folder).start()
    try:
        pem = root_of(d)
        check_root(pem)
        # the client prints it as `nitro enclave root-cert` prints the state's own
        cli = d.cli("enclave", "root-cert")
        assert cli.returncode == 0 and cli.stdout == pem, cli
        local = subprocess.run([str(NITRO), "enclave", "root-cert", "--state",
                                str(d.state / "chip")], capture_output=True, text=True,
                               timeout=30, stdin=subprocess.DEVNULL)
        assert local.returncode == 0 and local.stdout == pem, local
        assert d.call("POST", "/v1/host/enclave-root", {}).status == 405
        assert d.call("DELETE", "/v1/host/enclave-root").status == 405
        # audited like the other host reads
        assert any("route=/v1/host/enclave-root" in l and "status=200" in l
                   for l in d.audit_lines()), d.audit_lines()[-3:]
        # the chain's files: nitrod's, keys 0600 in the chip's 0700 folder
        chip = d.state / "chip"
        st = os.stat(chip)
        assert st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) == 0o700
        for name in ("enclave-root-key.pem", "enclave-host-key.pem"):
            st = os.stat(chip / name)
            assert st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) == 0o600, name
    finally:
        d.stop()
    d = Nitrod(folder).start()  # the same state: the same root
    try:
        assert root_of(d) == pem
    finally:
        d.stop()
    other = folder / "other"
    other.mkdir()
    d2 = Nitrod(other).start()  # another state: another root
    try:
        pem2 = root_of(d2)
        check_root(pem2)
        assert pem2 != pem
        assert x509.load_pem_x509_certificate(pem2.encode()).public_key().public_numbers() != \
            x509.load_pem_x509_certificate(pem.encode()).public_key().public_numbers()
    finally:
        d2.stop()


def pem_body(path):
    """The base64 of a PEM file, without armour or newlines."""
    text = open(path).read()
    return "".join(l for l in text.splitlines() if not l.startswith("-----"))


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch uids")
def test_no_route_and_no_instance_uid_gets_the_chain_keys(folder, kernel):
    """A caller who is not an admin reads the root certificate like anyone, and no route
    answers any of the chain's keys (nor the chip folder's files by a crafted path); the key
    files cannot be opened by the caller's uid nor by the instance's uid."""
    d = Nitrod(folder, extra=["--allow-uid", str(OTHER)]).start()
    try:
        pem = root_of(d)
        chip = d.state / "chip"
        secrets = [pem_body(chip / n) for n in ("enclave-root-key.pem", "enclave-host-key.pem")]
        os.chmod(kernel, 0o644)
        r = d.call("POST", "/v1/instances", {"kernel": kernel, "initrd": None,
                                             "enclaves": True})
        assert r.status == 201, r
        inst = d.wait_state(r.json()["id"], {"failed"})
        iid = inst["id"]
        routes = ["/v1/host/enclave-root", "/v1/host/identity-cert", "/v1/host/attestation",
                  "/v1/host/audit-head", "/v1/instances", f"/v1/instances/{iid}",
                  f"/v1/instances/{iid}/console", f"/v1/instances/{iid}/tpm/ek",
                  "/v1/volumes", "/v1/snapshots", "/v1/vpcs",
                  "/v1/host/enclave-root/../../chip/enclave-host-key.pem",
                  "/v1/host/enclave-host", "/v1/host/enclave-host-key", "/v1/host/enclave-key",
                  "/v1/host/enclave-root?key=1", "/v1/host/enclave-root/key",
                  "/v1/host/../../state/chip/enclave-host-key.pem",
                  "/v1/host/%2e%2e/chip/enclave-host-key.pem"]

        def calls():
            out = {}
            for path in routes:
                r = d.call("GET", path)
                out[path] = [r.status, r.body]
            return out
        got = as_uid(OTHER, calls)
        assert got["/v1/host/enclave-root"][0] == 200
        assert json.loads(got["/v1/host/enclave-root"][1])["certificate"] == pem
        for path, (status, body) in got.items():
            flat = body.replace("\\n", "").replace("\n", "")
            assert "PRIVATE KEY" not in body, (path, status)
            for s in secrets:
                assert s not in flat, (path, status)
        # the same as root/admin: the routes answer no key either
        for path in routes:
            body = d.call("GET", path).body
            flat = body.replace("\\n", "").replace("\n", "")
            assert "PRIVATE KEY" not in body and not any(s in flat for s in secrets), path

        def opens(uid):
            def fn():
                res = {}
                for n in ("enclave-root-key.pem", "enclave-host-key.pem", "enclave-root.pem"):
                    try:
                        open(chip / n).close()
                        res[n] = "opened"
                    except OSError as e:
                        res[n] = type(e).__name__
                return res
            return as_uid(uid, fn)
        # the instance's uid (the first one nitrod hands out) and the caller's
        for uid in (UID_BASE, OTHER):
            assert opens(uid) == {"enclave-root-key.pem": "PermissionError",
                                  "enclave-host-key.pem": "PermissionError",
                                  "enclave-root.pem": "PermissionError"}, uid
        # nothing of the chain in the instance's folders, which cards and logs use
        for sub in (d.state / "instances" / iid, d.state / "run"):
            for root, _, files in os.walk(sub):
                for f in files:
                    p = os.path.join(root, f)
                    if os.path.isfile(p) and not os.path.islink(p):
                        data = open(p, "rb").read().decode(errors="replace")
                        assert "PRIVATE KEY" not in data, p
    finally:
        d.stop()


def test_enclaves_instance_nitro_hv_spawner_works_in_its_jail(nitrod, kernel):
    """nitro-hv --enclaves forks its enclave spawner before anything else; in nitrod's jail
    (no /proc) it gets the executable the chip measured as --enclave-exe-fd: the instance
    fails on the kernel or KVM, not on the spawner."""
    d = nitrod
    r = d.call("POST", "/v1/instances", {"kernel": kernel, "initrd": None, "enclaves": True,
                                         "cpus": 2})
    assert r.status == 201, r
    inst = d.wait_state(r.json()["id"], {"failed"})
    assert inst["enclaves"] is True
    plan = json.loads((d.state / "instances" / inst["id"] / "launch.json").read_text())
    hv = plan["processes"][-1]
    assert hv["kind"] == "hv" and "--enclaves" in hv["argv"], hv
    log = (d.state / "instances" / inst["id"] / "hv.log").read_text(errors="replace")
    assert "enclave spawner" not in log and "/proc/self/exe" not in log, log
    # it got as far as the VM (no KVM here) or the kernel (which faults): past the spawner
    assert log.strip(), "nitro-hv said nothing"
