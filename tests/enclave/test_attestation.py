"""Nitro Enclaves formats checked by code nitro did not write (issue 12, items 5-7):
EIFs from `nitro eif build` read with Python's struct/zlib/hashlib, and attestation
documents from `nitro enclave attest` (the NSM module's Attestation answer) verified with
Debian's python3-cbor2 + python3-cryptography and `openssl verify`: COSE_Sign1 ES384
signature, the whole chain to `nitro enclave root-cert`, PCRs equal to `nitro eif build`'s,
nonce, user data, public key; a flipped byte anywhere signed must fail.
No guest is booted."""
import hashlib
import json
import os
import pathlib
import struct
import subprocess
import sys
import time
import zlib

import cbor2
import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "pylib"))
from attestation import check_cose, verify_document  # noqa: E402
from nitrotest import BUILD, run  # noqa: E402

NITRO = str(BUILD / "nitro")
ZERO48 = bytes(48)


def extend(data):
    return hashlib.sha384(ZERO48 + hashlib.sha384(data).digest()).hexdigest()


def nitro(*args, ok=True):
    rc, out, err = run([NITRO, *map(str, args)], timeout=60)
    if ok:
        assert rc == 0, f"nitro {args}: {rc}\n{err}"
    return rc, out, err


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    d = tmp_path_factory.mktemp("eif")
    parts = {"kernel": os.urandom(70001), "r1": os.urandom(4097), "r2": os.urandom(333)}
    for k, v in parts.items():
        (d / k).write_bytes(v)
    cmdline = "console=ttyS0 reboot=k panic=30 nitro=1"
    _, out, _ = nitro("eif", "build", "--kernel", d / "kernel", "--ramdisk", d / "r1",
                      "--ramdisk", d / "r2", "--cmdline", cmdline, "--output", d / "a.eif")
    return {"dir": d, "parts": parts, "cmdline": cmdline, "eif": d / "a.eif",
            "build": json.loads(out)}


def read_eif(b):
    """An independent EIF reader: header, section table, CRC (zlib = CRC-32/ISO-HDLC)."""
    assert b[:4] == b".eif"
    version, flags, mem, cpus, _res, n = struct.unpack_from(">HHQQHH", b, 4)
    offs = struct.unpack_from(">32Q", b, 28)
    sizes = struct.unpack_from(">32Q", b, 28 + 256)
    crc = struct.unpack_from(">I", b, 544)[0]
    assert zlib.crc32(b[:544] + b[548:]) == crc
    secs = []
    for i in range(n):
        t, f, sz = struct.unpack_from(">HHQ", b, offs[i])
        assert sz == sizes[i]
        secs.append((t, b[offs[i] + 12:offs[i] + 12 + sz]))
    return version, flags, secs


def test_build_prints_pcrs_like_nitro_cli(image):
    m = image["build"]["Measurements"]
    assert list(m) == ["HashAlgorithm", "PCR0", "PCR1", "PCR2"]
    assert m["HashAlgorithm"] == "Sha384 { ... }"
    p = image["parts"]
    cmd = image["cmdline"].encode()
    assert m["PCR0"] == extend(p["kernel"] + cmd + p["r1"] + p["r2"])
    assert m["PCR1"] == extend(p["kernel"] + cmd + p["r1"])
    assert m["PCR2"] == extend(p["r2"])


def test_layout_read_independently(image):
    version, flags, secs = read_eif(image["eif"].read_bytes())
    assert (version, flags) == (4, 0)
    types = [t for t, _ in secs]
    assert types == [1, 2, 5, 3, 3]  # kernel, cmdline, metadata, ramdisks
    assert secs[1][1] == image["cmdline"].encode()  # no trailing NUL
    meta = json.loads(secs[2][1])  # every field of AWS's EifIdentityInfo, no real time
    assert set(meta) == {"ImageName", "ImageVersion", "BuildMetadata", "DockerInfo",
                         "CustomMetadata"}
    assert set(meta["BuildMetadata"]) == {"BuildTime", "BuildTool", "BuildToolVersion",
                                          "OperatingSystem", "KernelVersion"}
    assert meta["BuildMetadata"]["BuildTime"].startswith("1970-01-01")


def test_same_inputs_same_bytes(image):
    d = image["dir"]
    nitro("eif", "build", "--kernel", d / "kernel", "--ramdisk", d / "r1", "--ramdisk",
          d / "r2", "--cmdline", image["cmdline"], "--output", d / "b.eif")
    assert (d / "b.eif").read_bytes() == image["eif"].read_bytes()


def test_describe(image):
    _, out, _ = nitro("eif", "describe", image["eif"])
    j = json.loads(out)
    assert j["Measurements"] == image["build"]["Measurements"]
    assert [s["Type"] for s in j["Sections"]] == ["kernel", "cmdline", "metadata", "ramdisk",
                                                 "ramdisk"]
    assert j["Cmdline"] == image["cmdline"]


@pytest.mark.parametrize("where,reason", [(600, "CRC"), (0, "magic"), (26, "sections")])
def test_malformed_eif_refused(image, where, reason):
    b = bytearray(image["eif"].read_bytes())
    b[where] ^= 0x40
    bad = image["dir"] / "bad.eif"
    bad.write_bytes(bytes(b))
    rc, out, err = nitro("eif", "describe", bad, ok=False)
    assert rc == 1 and out == ""
    assert "invalid EIF" in err and reason in err, err


def test_truncated_eif_refused(image):
    bad = image["dir"] / "short.eif"
    bad.write_bytes(image["eif"].read_bytes()[:-1])
    rc, _, err = nitro("eif", "describe", bad, ok=False)
    assert rc == 1 and "truncated" in err, err


def test_signed_eif_pcr8(image, tmp_path):
    key, cert = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:secp384r1", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "1", "-subj", "/CN=eif signer"], check=True, capture_output=True)
    d = image["dir"]
    _, out, _ = nitro("eif", "build", "--kernel", d / "kernel", "--ramdisk", d / "r1",
                      "--cmdline", "x", "--signing-certificate", cert, "--private-key", key,
                      "--output", tmp_path / "s.eif")
    m = json.loads(out)["Measurements"]
    der = x509.load_pem_x509_certificate(cert.read_bytes()).public_bytes(
        serialization.Encoding.DER)
    assert m["PCR8"] == extend(der)
    p = image["parts"]
    assert m["PCR0"] == extend(p["kernel"] + b"x" + p["r1"])
    _, _, secs = read_eif((tmp_path / "s.eif").read_bytes())
    assert secs[-1][0] == 4
    # The signature section: [{signing_certificate, signature: COSE_Sign1 over PCR0}].
    sig = cbor2.loads(secs[-1][1])[0]
    assert bytes(sig["signing_certificate"]) == cert.read_bytes()
    cose = cbor2.loads(bytes(sig["signature"]))
    payload = cbor2.loads(cose[2])
    assert payload["register_index"] == 0
    assert bytes(payload["register_value"]).hex() == m["PCR0"]
    check_cose(cose, x509.load_pem_x509_certificate(cert.read_bytes()))


def write_eif(sections):
    """An EIF from (type, body) pairs, written here (header, table, CRC) from the format."""
    body, offs, sizes, pos = b"", [], [], 548
    for t, data in sections:
        offs.append(pos)
        sizes.append(len(data))
        body += struct.pack(">HHQ", t, 0, len(data)) + data
        pos += 12 + len(data)
    hdr = b".eif" + struct.pack(">HHQQHH", 4, 0, 1 << 30, 2, 0, len(sections))
    hdr += struct.pack(">32Q", *(offs + [0] * (32 - len(offs))))
    hdr += struct.pack(">32Q", *(sizes + [0] * (32 - len(sizes)))) + bytes(4)
    return hdr + struct.pack(">I", zlib.crc32(hdr + body)) + body


def test_signature_bound_to_the_image(image, tmp_path):
    """A signing certificate copied, with its signature, onto another image (no key) must
    not give that image PCR8; a key that is not the certificate's is refused at build."""
    for name in ("a", "b"):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:secp384r1", "-nodes", "-keyout",
                        tmp_path / f"{name}.key", "-out", tmp_path / f"{name}.pem", "-days", "1",
                        "-subj", f"/CN={name}"], check=True, capture_output=True)
    d = image["dir"]
    nitro("eif", "build", "--kernel", d / "kernel", "--ramdisk", d / "r1", "--output",
          tmp_path / "s.eif", "--signing-certificate", tmp_path / "a.pem", "--private-key",
          tmp_path / "a.key")
    _, _, secs = read_eif((tmp_path / "s.eif").read_bytes())
    # the attack: the same sections with another kernel, the signature section kept
    forged = [(t, b"evil kernel" if t == 1 else data) for t, data in secs]
    (tmp_path / "forged.eif").write_bytes(write_eif(forged))
    rc, out, err = nitro("eif", "describe", tmp_path / "forged.eif", ok=False)
    assert rc == 1 and "another image's PCR0" in err, err
    # the same bytes, untouched, read back fine (the writer here is faithful)
    (tmp_path / "same.eif").write_bytes(write_eif(secs))
    assert (tmp_path / "same.eif").read_bytes() == (tmp_path / "s.eif").read_bytes()
    rc, _, err = nitro("eif", "build", "--kernel", d / "kernel", "--ramdisk", d / "r1",
                       "--output", tmp_path / "m.eif", "--signing-certificate",
                       tmp_path / "a.pem", "--private-key", tmp_path / "b.key", ok=False)
    assert rc == 1 and "does not verify" in err, err
    assert not (tmp_path / "m.eif").exists()


@pytest.fixture(scope="module")
def document(image, tmp_path_factory):
    d = tmp_path_factory.mktemp("attest")
    key = ec.generate_private_key(ec.SECP384R1())
    pub = key.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    (d / "pub.der").write_bytes(pub)
    nonce = os.urandom(32)
    before = int(time.time() * 1000)
    nitro("enclave", "attest", "--eif", image["eif"], "--state", d / "state", "--nonce",
          nonce.hex(), "--parent-instance-id", "i-0123456789abcdef0", "--user-data", b"hello enclave".hex(), "--public-key", d / "pub.der",
          "--output", d / "doc.cbor")
    after = int(time.time() * 1000)
    _, root_pem, _ = nitro("enclave", "root-cert", "--state", d / "state")
    return {"dir": d, "doc": (d / "doc.cbor").read_bytes(), "root": root_pem.encode(),
            "nonce": nonce, "pub": pub, "window": (before, after)}


def test_document_verifies(image, document):
    payload, _, chain = verify_document(document["doc"], document["root"])
    m = image["build"]["Measurements"]
    for i in range(3):
        assert payload["pcrs"][i].hex() == m[f"PCR{i}"]
    assert payload["pcrs"][3] == ZERO48
    assert payload["pcrs"][4] == hashlib.sha384(ZERO48 + b"i-0123456789abcdef0").digest()
    assert list(payload["pcrs"]) == list(range(16))  # the PCRs locked at boot
    assert payload["nonce"] == document["nonce"]
    assert payload["user_data"] == b"hello enclave"
    assert payload["public_key"] == document["pub"]
    lo, hi = document["window"]
    assert lo - 1000 <= payload["timestamp"] <= hi + 1000  # milliseconds
    assert len(chain) == 2


def test_openssl_verifies_chain(document, tmp_path):
    payload, leaf, chain = verify_document(document["doc"], document["root"])
    pem = serialization.Encoding.PEM
    (tmp_path / "root.pem").write_bytes(chain[0].public_bytes(pem))
    (tmp_path / "inter.pem").write_bytes(b"".join(c.public_bytes(pem) for c in chain[1:]))
    (tmp_path / "leaf.pem").write_bytes(leaf.public_bytes(pem))
    r = subprocess.run(["openssl", "verify", "-x509_strict", "-CAfile", tmp_path / "root.pem",
                        "-untrusted", tmp_path / "inter.pem", tmp_path / "leaf.pem"],
                       capture_output=True, text=True)
    assert r.returncode == 0 and ": OK" in r.stdout, r.stdout + r.stderr


def test_flipped_byte_fails(document):
    doc = document["doc"]
    cose = cbor2.loads(doc)
    plen = len(cose[2])
    start = doc.index(cose[2])
    # a byte in the nonce (inside the signed payload), and one in the signature
    for pos in (start + plen - 5, len(doc) - 1):
        bad = bytearray(doc)
        bad[pos] ^= 0x01
        with pytest.raises((InvalidSignature, ValueError, AssertionError)):
            verify_document(bytes(bad), document["root"])
    verify_document(doc, document["root"])  # the untouched one still does


def test_other_root_fails(document, tmp_path):
    _, other, _ = nitro("enclave", "root-cert", "--state", tmp_path / "other")
    with pytest.raises(AssertionError):
        verify_document(document["doc"], other.encode())


def test_root_made_once_per_state(document):
    _, again, _ = nitro("enclave", "root-cert", "--state", document["dir"] / "state")
    assert again.encode() == document["root"]
    st = os.stat(document["dir"] / "state" / "enclave-root-key.pem")
    assert st.st_mode & 0o077 == 0


def test_debug_mode_zero_pcrs_and_null_fields(image, document, tmp_path):
    nitro("enclave", "attest", "--eif", image["eif"], "--state", document["dir"] / "state",
          "--debug-mode", "--output", tmp_path / "d.cbor")
    payload, _, _ = verify_document((tmp_path / "d.cbor").read_bytes(), document["root"])
    assert all(payload["pcrs"][i] == ZERO48 for i in range(3))
    assert payload["nonce"] is None and payload["user_data"] is None
    assert payload["public_key"] is None


def test_oversized_nonce_refused(image, document, tmp_path):
    rc, _, err = nitro("enclave", "attest", "--eif", image["eif"], "--state",
                       document["dir"] / "state", "--nonce", "00" * 513, "--output",
                       tmp_path / "x.cbor", ok=False)
    assert rc == 1 and "InputTooLarge" in err, err
    assert not (tmp_path / "x.cbor").exists()
