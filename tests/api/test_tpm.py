"""NitroTPM through nitrod (docs/tpm.md, docs/api.md), natively: the "tpm" spec field, the
TPM card in the launch plan (jailed, its key on a pipe), the state folder encrypted under
the per-instance key, endorsement before nitro-hv, GET /v1/instances/ID/tpm/ek and
`nitro --host S instances tpm-ek`, the state kept across start and destroyed on
terminate. The instances use a kernel that is not a bzImage: the cards start, the TPM is
endorsed, then nitro-hv fails (a boot through nitrod is in tests/system/test_tpm.py)."""
import hashlib
import hmac
import json
import os
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from conftest import BUILD, Nitrod
from nitrotest import as_uid

pytestmark = pytest.mark.skipif(not (BUILD / "nitro-card-tpm").exists(), reason="no nitro-card-tpm")


def tpm_instance(d, kernel, **extra):
    spec = {"kernel": kernel, "initrd": None, "memory_mib": 128, "tpm": True}
    spec.update(extra)
    r = d.call("POST", "/v1/instances", spec)
    assert r.status == 201, r
    return d.wait_state(r.json()["id"], {"failed"})


def state_key(d, iid):
    """The card's key as docs/tpm.md gives it: HMAC-SHA256(master key, "nitro-tpm-state v1 ID")."""
    mk = (d.state / "master.key").read_bytes()
    return hmac.new(mk, b"nitro-tpm-state v1 " + iid.encode(), hashlib.sha256).digest()


def decrypt_nv(blob, name, key):
    """A NAME.nvs file: "NTPMNV01", nonce (12), tag (16), AES-256-GCM ciphertext; aad = magic||name."""
    assert blob[:8] == b"NTPMNV01", blob[:16]
    nonce, tag, ct = blob[8:20], blob[20:36], blob[36:]
    return AESGCM(key).decrypt(nonce, ct + tag, b"NTPMNV01" + name.encode())


def ek(d, iid):
    r = d.call("GET", f"/v1/instances/{iid}/tpm/ek")
    assert r.status == 200, r
    return r.json()


def test_spec_field(nitrod, bad_kernel):
    r = nitrod.call("POST", "/v1/instances", {"kernel": bad_kernel, "tpm": "yes"})
    assert r.status == 400 and r.json()["error"] == "tpm: expected true or false", r
    r = nitrod.call("POST", "/v1/instances", {"kernel": bad_kernel, "initrd": None})
    assert r.status == 201 and r.json()["tpm"] is False, r
    plan = json.loads((nitrod.state / "instances" / r.json()["id"] / "launch.json").read_text())
    assert all(p["name"] != "nitro-card-tpm" for p in plan["processes"])
    nitrod.wait_state(r.json()["id"], {"failed"})
    # Without a TPM the EK route has nothing: 404 naming why.
    r = nitrod.call("GET", f"/v1/instances/{r.json()['id']}/tpm/ek")
    assert r.status == 404 and "has no TPM" in r.json()["error"], r


def test_tpm_card_launched_endorsed_and_state_encrypted(nitrod, bad_kernel):
    inst = tpm_instance(nitrod, bad_kernel)
    iid = inst["id"]
    assert inst["tpm"] is True
    idir = nitrod.state / "instances" / iid
    plan = json.loads((idir / "launch.json").read_text())
    card = [p for p in plan["processes"] if p["name"] == "nitro-card-tpm"]
    assert len(card) == 1, plan
    argv = card[0]["argv"]
    assert argv[argv.index("--state") + 1] == str(idir / "tpm")
    assert argv[argv.index("--key-fd") + 1] == "3"
    hv = plan["processes"][-1]["argv"]
    assert hv[hv.index("--tpm-card") + 1] == card[0]["socket"]
    # nitro-hv failed on the kernel, after the TPM card ran and the TPM was endorsed.
    assert "nitro-hv" in inst["reason"], inst
    # The state: the card's files, encrypted under the per-instance key nitrod derived
    # (any other key fails the GCM tag).
    blob = (idir / "tpm" / "permall.nvs").read_bytes()
    assert len(decrypt_nv(blob, "permall", state_key(nitrod, iid))) > 1000
    with pytest.raises(Exception):
        decrypt_nv(blob, "permall", state_key(nitrod, "i-0123456789abcdef0"))
    assert b"NitroTPM" not in blob  # the EK certificate in NV is ciphertext on disk
    # The EK route: the certificate verifies against the chip's EK CA with openssl, names
    # the instance, and its key is the public key returned.
    e = ek(nitrod, iid)
    assert e["instance_id"] == iid and e["key_type"] == "ecc-nist-p256" and e["nv_index"] == "0x01c0000a"
    cert = x509.load_pem_x509_certificate(e["certificate"].encode())
    cn = cert.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)[0].value
    assert cn == f"NitroTPM EK {iid}", cert.subject
    pub = serialization.load_pem_public_key(e["public_key"].encode())
    assert pub.public_numbers() == cert.public_key().public_numbers()
    ca = nitrod.state / "ek-ca" / "ek-ca.pem"
    v = subprocess.run(["openssl", "verify", "-CAfile", str(ca)], input=e["certificate"],
                       capture_output=True, text=True)
    assert v.returncode == 0 and v.stdout.strip() == "stdin: OK", v
    # The RSA EK (template L-1) too, at its own index, from the same CA.
    r = nitrod.call("GET", f"/v1/instances/{iid}/tpm/ek?key_type=rsa-2048")
    assert r.status == 200, r
    rsa = r.json()
    assert rsa["key_type"] == "rsa-2048" and rsa["nv_index"] == "0x01c00002"
    rcert = x509.load_pem_x509_certificate(rsa["certificate"].encode())
    assert rcert.public_key().key_size == 2048 and rcert.public_key().public_numbers().e == 65537
    assert serialization.load_pem_public_key(rsa["public_key"].encode()).public_numbers() == \
        rcert.public_key().public_numbers()
    ku = rcert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.key_encipherment and not ku.digital_signature
    v = subprocess.run(["openssl", "verify", "-CAfile", str(ca)], input=rsa["certificate"],
                       capture_output=True, text=True)
    assert v.returncode == 0, v
    r = nitrod.call("GET", f"/v1/instances/{iid}/tpm/ek?key_type=rsa-1024")
    assert r.status == 400 and "key_type" in r.json()["error"], r
    # Audited like every call.
    assert any(f"/v1/instances/{iid}/tpm/ek" in l and "status=200" in l for l in nitrod.audit_lines())
    # The CLI.
    c = nitrod.cli("instances", "tpm-ek", iid)
    assert c.returncode == 0 and c.stdout == e["public_key"] + e["certificate"], c
    c = nitrod.cli("instances", "describe", iid)
    assert "tpm:           on" in c.stdout, c


def test_state_kept_across_restart_and_start_and_destroyed_on_terminate(nitrod, bad_kernel):
    inst = tpm_instance(nitrod, bad_kernel)
    iid = inst["id"]
    tdir = nitrod.state / "instances" / iid / "tpm"
    first = ek(nitrod, iid)
    first_rsa = nitrod.call("GET", f"/v1/instances/{iid}/tpm/ek?key_type=rsa-2048").json()
    assert first_rsa["key_type"] == "rsa-2048", first_rsa
    before = decrypt_nv((tdir / "permall.nvs").read_bytes(), "permall", state_key(nitrod, iid))
    # A restarted nitrod reads the TPM back from its records.
    nitrod.stop()
    nitrod.start()
    assert nitrod.call("GET", f"/v1/instances/{iid}").json()["tpm"] is True
    r = nitrod.call("POST", f"/v1/instances/{iid}/start")
    assert r.status == 200, r
    nitrod.wait_state(iid, {"failed"})
    # The same TPM: not endorsed again (a new EK certificate would have a new serial and
    # key), its NV state still decrypts under the same key.
    assert ek(nitrod, iid) == first
    assert nitrod.call("GET", f"/v1/instances/{iid}/tpm/ek?key_type=rsa-2048").json() == first_rsa
    assert decrypt_nv((tdir / "permall.nvs").read_bytes(), "permall", state_key(nitrod, iid))
    assert before
    r = nitrod.call("DELETE", f"/v1/instances/{iid}")
    assert r.status == 200, r
    nitrod.wait_state(iid, {"terminated"})
    assert not tdir.exists()
    assert not (nitrod.state / "instances" / iid / "tpm-ek-ecc.der").exists()
    assert not (nitrod.state / "instances" / iid / "tpm-ek-rsa.der").exists()
    r = nitrod.call("GET", f"/v1/instances/{iid}/tpm/ek")
    assert r.status == 409 and "terminated" in r.json()["error"], r


def test_ek_route_errors(nitrod, bad_kernel):
    r = nitrod.call("GET", "/v1/instances/i-0123456789abcdef0/tpm/ek")
    assert r.status == 404 and "not found" in r.json()["error"], r
    r = nitrod.call("POST", "/v1/instances/i-0123456789abcdef0/tpm/ek")
    assert r.status == 405 and r.headers.get("Allow") == "GET", r
    for path in ["/v1/instances/i-0123456789abcdef0/tpm/pcr", "/v1/instances/i-0123456789abcdef0/tpm/ek/x"]:
        r = nitrod.call("GET", path)
        assert r.status == 404, (path, r)
    c = nitrod.cli("instances", "tpm-ek", "i-0123456789abcdef0")
    assert c.returncode == 1 and c.stderr == "nitro: instance i-0123456789abcdef0 not found\n", c


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (other uids)")
def test_ek_route_is_the_owners(folder, bad_kernel):
    """Another uid gets the same 404 as for an unknown id (ids cannot be probed); the owner
    and an admin get the EK."""
    d = Nitrod(folder, extra=["--allow-uid", "4242", "--allow-uid", "4243",
                              "--admin-uid", "4244"]).start()
    try:
        iid = as_uid(4242, lambda: tpm_instance(d, bad_kernel)["id"])
        path = f"/v1/instances/{iid}/tpm/ek"
        r = as_uid(4243, lambda: [d.call("GET", path).status, d.call("GET", path).body])
        assert r[0] == 404 and f"instance {iid} not found" in r[1], r
        assert any(path in l and "status=404" in l for l in d.audit_lines())
        assert as_uid(4242, lambda: d.call("GET", path).status) == 200
        assert as_uid(4244, lambda: d.call("GET", path).status) == 200
    finally:
        d.stop()
