# src/enclave: Nitro Enclaves formats (issue 12): EIF images (parse, CRC, PCRs, write), the
# NSM's request handling over CBOR, COSE_Sign1 ES384 and the attestation PKI. A library of
# pure modules: nitro links it for `nitro eif` and `nitro enclave` (src/cli/eif.c, its
# rule in mk/cli.mk); nitro-hv links it for the enclave VM (mk/hv.mk), nitrod its pki.c
# and chain_fd.c.
ENCLAVE_LIBS = -lcbor -lcrypto

ENCLAVE_UNIT = $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/enclave/test_*.c))
UNIT_TESTS += $(ENCLAVE_UNIT)
$(ENCLAVE_UNIT): $(call objs,enclave)
$(ENCLAVE_UNIT): override LDFLAGS += $(ENCLAVE_LIBS)

# The attestation document checked by independent code (python3-cbor2 +
# python3-cryptography, openssl verify).
.PHONY: enclave-test
enclave-test: all
	/usr/bin/python3 -m pytest -v -p no:cacheprovider tests/enclave
TEST_SUITES += enclave-test
