"""The Nitro Secure Module card (issue 12 items 5-6) with the stock kernel's driver: an
ordinary guest acts as enclave CID 16 (nitro-hv --enclave-hello, so its connection to
nitro-card-nsm opens with ENW_HELLO), loads Debian's nsm module, gets /dev/nsm and the
nsm-hwrng random source (the driver's GetRandom from the moment it loads), and sends raw
requests through NSM_IOCTL_RAW (tests/system/nsm_client.c): DescribePCR, ExtendPCR(16),
LockPCR(16), an extend refused after the lock, DescribeNSM and an Attestation with a nonce
and user data. The replies come back in hex on the console; the document is verified here
with Debian's python3-cbor2 + python3-cryptography (COSE ES384, the whole chain to `nitro
enclave root-cert` of the same state folder, nonce, user data, PCR16 = the extended value,
the module id), and a flipped byte fails."""
import hashlib
import os
import pathlib
import re
import subprocess
import sys

import cbor2
import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature

from conftest import NITRO, cmdline

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "pylib"))
from attestation import verify_document  # noqa: E402
from nitrotest import BUILD  # noqa: E402

IMAGE = BUILD / "nsm-guest.img"
INSTANCE = "i-0123456789abcdef0"
MODULE_ID = "i-test-enc16"  # nitro-hv's --enclave-hello identity (src/boot/config.c)
ZERO48 = bytes(48)


def replies(out):
    """{request index: reply bytes, or ('errno', E)} from the client's NSMR lines."""
    chunks, done = {}, {}
    for m in re.finditer(r"NSMR (\d+) (\d+|end|errno) ([0-9a-f]*)", out):
        i, what, val = int(m.group(1)), m.group(2), m.group(3)
        if what == "end":
            done[i] = int(val)
        elif what == "errno":
            done[i] = ("errno", int(val))
        else:
            chunks.setdefault(i, {})[int(what)] = bytes.fromhex(val)
    res = {}
    for i, n in done.items():
        if isinstance(n, tuple):
            res[i] = n
            continue
        b = b"".join(chunks.get(i, {})[c] for c in sorted(chunks.get(i, {})))
        assert len(b) == n, f"reply {i}: {len(b)} of {n} bytes on the console"
        res[i] = b
    return res


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    if not IMAGE.exists():
        pytest.fail(f"{IMAGE} missing: make {IMAGE.relative_to(BUILD.parent)}")
    tmp = tmp_path_factory.mktemp("nsm")
    env = dict(os.environ, NITRO_STATE=str(tmp / "state"))
    ext = os.urandom(32)
    nonce = os.urandom(32)
    user_data = b"nitro nsm system test"
    reqs = [
        {"DescribePCR": {"index": 16}},
        {"ExtendPCR": {"index": 16, "data": ext}},
        {"LockPCR": {"index": 16}},
        {"ExtendPCR": {"index": 16, "data": ext}},
        {"DescribePCR": {"index": 16}},
        "DescribeNSM",
        {"Attestation": {"user_data": user_data, "nonce": nonce, "public_key": None}},
    ]
    hexes = " ".join(cbor2.dumps(r).hex() for r in reqs)
    # (timeouts: a request the card never answered would hold the driver 2 minutes each)
    guest = ("insmod /lib/modules/nsm.ko 2>/dev/null; "
             "i=0; while [ ! -e /dev/nsm ] && [ $i -lt 20 ]; do sleep 1; i=$((i+1)); done; "
             "ls -l /dev/nsm; echo RNG=$(cat /sys/class/misc/hw_random/rng_current); "
             "echo HWRNG=$(timeout 60 head -c 32 /dev/hwrng | od -An -tx1 | tr -d ' \\n'); "
             f"timeout 120 /bin/nsm-client {hexes}; echo NSM-CLIENT $?; "
             "dmesg | grep -i -e nsm -e virtio -e hwrng | tail -20")
    argv = [str(NITRO), "run", "--require-kvm", "--nsm", "--enclave-hello", "cid=16",
            "--instance-id", INSTANCE, "--initrd", str(IMAGE), "--memory", "512",
            "--cmdline", cmdline(guest)]
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           errors="replace", env=env, timeout=420)
    except subprocess.TimeoutExpired as e:
        def text(b):
            return b.decode(errors="replace") if isinstance(b, bytes) else (b or "")
        pytest.fail(f"the guest did not finish:\n--- stdout\n{text(e.stdout)[-6000:]}\n"
                    f"--- stderr\n{text(e.stderr)[-3000:]}")
    ctx = f"exit {p.returncode}\n--- stdout\n{p.stdout[-6000:]}\n--- stderr\n{p.stderr[-3000:]}"
    root = subprocess.run([str(NITRO), "enclave", "root-cert"], capture_output=True, env=env,
                          check=True, timeout=60).stdout
    return {"out": p.stdout, "err": p.stderr, "ctx": ctx, "ext": ext, "nonce": nonce,
            "user_data": user_data, "root": root, "replies": replies(p.stdout),
            "state": tmp / "state"}


def test_driver_binds_and_hwrng_works(session):
    out = session["out"]
    # (anchored: the kernel echoes the command line, with these words in it)
    assert re.search(r"^c\S+ +1 .*/dev/nsm\r?$", out, re.M), session["ctx"]
    assert re.search(r"^RNG=nsm-hwrng\r?$", out, re.M), session["ctx"]
    m = re.search(r"^HWRNG=([0-9a-f]*)\r?$", out, re.M)
    assert m and len(m.group(1)) == 64 and int(m.group(1), 16) != 0, session["ctx"]
    # the card saw enclave 16 (its connection opened with the hello)
    assert f"enclave CID 16 ({MODULE_ID}) connected" in session["err"], session["ctx"]


def test_pcr_requests(session):
    r = session["replies"]
    assert len(r) == 7, session["ctx"]
    want = hashlib.sha384(ZERO48 + session["ext"]).digest()
    assert cbor2.loads(r[0]) == {"DescribePCR": {"lock": False, "data": ZERO48}}
    assert cbor2.loads(r[1]) == {"ExtendPCR": {"data": want}}
    assert cbor2.loads(r[2]) == "LockPCR"
    assert cbor2.loads(r[3]) == {"Error": "ReadOnlyIndex"}
    assert cbor2.loads(r[4]) == {"DescribePCR": {"lock": True, "data": want}}
    d = cbor2.loads(r[5])["DescribeNSM"]
    assert d["module_id"] == MODULE_ID and d["digest"] == "SHA384" and d["max_pcrs"] == 32
    assert d["locked_pcrs"] == list(range(17))


def test_attestation_verifies(session):
    r = session["replies"]
    doc = cbor2.loads(r[6])["Attestation"]["document"]
    payload, leaf, chain = verify_document(doc, session["root"])
    assert payload["module_id"] == MODULE_ID
    assert payload["nonce"] == session["nonce"]
    assert payload["user_data"] == session["user_data"]
    assert payload["public_key"] is None
    assert sorted(payload["pcrs"]) == list(range(17))  # 0-15 from boot, 16 locked since
    assert all(payload["pcrs"][i] == ZERO48 for i in range(16))  # no EIF: zero boot PCRs
    assert payload["pcrs"][16] == hashlib.sha384(ZERO48 + session["ext"]).digest()
    assert len(chain) == 2  # [root, host intermediate]
    cn = leaf.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    assert cn == MODULE_ID
    life = leaf.not_valid_after - leaf.not_valid_before
    assert 2.9 * 3600 <= life.total_seconds() <= 3.1 * 3600


def test_flipped_byte_fails(session):
    doc = cbor2.loads(session["replies"][6])["Attestation"]["document"]
    cose = cbor2.loads(doc)
    start = doc.index(cose[2])
    for pos in (start + len(cose[2]) - 5, len(doc) - 1):  # the nonce; the signature
        bad = bytearray(doc)
        bad[pos] ^= 0x01
        with pytest.raises((InvalidSignature, ValueError, AssertionError)):
            verify_document(bytes(bad), session["root"])
    # another state folder's root does not verify it either
    other = subprocess.run([str(NITRO), "enclave", "root-cert", "--state",
                            str(session["state"]) + "-other"], capture_output=True,
                           check=True).stdout
    with pytest.raises(AssertionError):
        verify_document(doc, other)
