"""The attestation process of aws-nitro-enclaves-nsm-api (docs/attestation_process.md),
written here from scratch with Debian's python3-cbor2 and python3-cryptography (run with
/usr/bin/python3): COSE_Sign1 ES384 over the Sig_structure, the chain from the leaf through
cabundle to a root the caller got out of band, each certificate's validity and CA flags.
Shared by tests/enclave (documents of `nitro enclave attest`) and tests/system/test_nsm.py
(documents the stock driver got from nitro-card-nsm)."""
import datetime

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


def check_cose(cose, cert):
    prot, unprot, payload, sig = cose
    assert cbor2.loads(prot) == {1: -35} and unprot == {} and len(sig) == 96
    tbs = cbor2.dumps(["Signature1", prot, b"", payload])
    der = encode_dss_signature(int.from_bytes(sig[:48], "big"), int.from_bytes(sig[48:], "big"))
    cert.public_key().verify(der, tbs, ec.ECDSA(hashes.SHA384()))


def check_issued(cert, issuer):
    issuer.public_key().verify(cert.signature, cert.tbs_certificate_bytes,
                               ec.ECDSA(cert.signature_hash_algorithm))
    assert cert.issuer == issuer.subject
    now = datetime.datetime.utcnow()
    assert cert.not_valid_before <= now <= cert.not_valid_after


def verify_document(doc, root_pem):
    """The attestation process of aws-nitro-enclaves-nsm-api, written here from scratch.
    Returns the payload; raises on anything wrong."""
    cose = cbor2.loads(doc)
    if isinstance(cose, cbor2.CBORTag):
        assert cose.tag == 18
        cose = cose.value
    assert isinstance(cose, list) and len(cose) == 4
    payload = cbor2.loads(cose[2])
    assert list(payload) == ["module_id", "digest", "timestamp", "pcrs", "certificate",
                             "cabundle", "public_key", "user_data", "nonce"]
    assert payload["digest"] == "SHA384"
    assert set(payload["pcrs"]) <= set(range(32))
    assert all(len(v) == 48 for v in payload["pcrs"].values())
    leaf = x509.load_der_x509_certificate(payload["certificate"])
    chain = [x509.load_der_x509_certificate(c) for c in payload["cabundle"]]
    root = x509.load_pem_x509_certificate(root_pem)
    assert chain[0] == root, "cabundle[0] is not the root"
    check_issued(root, root)
    for i in range(1, len(chain)):
        check_issued(chain[i], chain[i - 1])
    for c in chain:
        assert c.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        assert c.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    check_issued(leaf, chain[-1])
    assert leaf.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    check_cose(cose, leaf)
    return payload, leaf, chain
