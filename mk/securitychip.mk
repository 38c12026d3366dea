# The security chip, jailer, sandbox and audit log (issue 5): the chip (src/securitychip)
# and the sandbox (src/sandbox) are libraries, linked by nitrod, nitro-hv and the cards
# (their mk files); here are the signing of executables, the security tools and the
# security test suites. The audit log and the jailer live in src/controller.
CHIP_SRC = $(wildcard src/securitychip/*.c)
CHIP_LIBS = -lcrypto -ljansson -lpthread
AUDIT_SRC = src/controller/audit.c
JAIL_SRC = src/controller/jailer.c src/controller/jail_elf.c src/controller/cgroup.c
SANDBOX_SRC = $(wildcard src/sandbox/*.c)

# Signing: a development Ed25519 key made on the first build (build/keys, never committed)
# signs every host-stack executable (each part asks for its $(BUILD)/NAME.sig in `all`);
# SIGNING_KEY=... signs with a production key.
SIGNING_KEY ?= $(BUILD)/keys/dev-anchor.pem
$(BUILD)/keys/dev-anchor.pem:
	sh tools/sign.sh keygen $(BUILD)/keys
$(BUILD)/%.sig: $(BUILD)/% $(SIGNING_KEY)
	sh tools/sign.sh sign $(SIGNING_KEY) $<

# Small tools: verify an audit log; measure / attest from the shell (tests, operators).
all: $(BUILD)/nitro-audit-verify $(BUILD)/nitro-chip
$(BUILD)/nitro-audit-verify: $(call obj,tools/security/audit_verify.c $(AUDIT_SRC)) $(call objs,lib)
	$(CC) $(CFLAGS) $^ -o $@ $(LDFLAGS) -lcrypto -lpthread
$(BUILD)/nitro-chip: $(call obj,tools/security/chip_tool.c $(CHIP_SRC) $(JAIL_SRC)) $(call objs,lib)
	$(CC) $(CFLAGS) $^ -o $@ $(LDFLAGS) $(CHIP_LIBS)

# cmocka unit tests (tests/unit/security).
SEC_UNIT = $(BUILD)/tests/security/test_chip $(BUILD)/tests/security/test_audit \
	$(BUILD)/tests/security/test_identity
UNIT_TESTS += $(SEC_UNIT)
$(BUILD)/tests/security/test_chip: $(call obj,$(CHIP_SRC))
$(BUILD)/tests/security/test_identity: $(call obj,$(CHIP_SRC))
$(BUILD)/tests/security/test_audit: $(call obj,$(AUDIT_SRC))
$(SEC_UNIT): $(call objs,lib)
$(SEC_UNIT): override LDFLAGS += $(CHIP_LIBS)

.PHONY: security-test security-system-test
security-test: all $(BUILD)/tests/security/jail-probe
	/usr/bin/python3 -m pytest -v -p no:cacheprovider tests/security/test_security.py
# A real guest with jailed, seccomp'd nitro-hv and nitro-card-ebs (emulated host).
security-system-test: all images
	$(BUILD)/nitro emuhost --memory 2048 -- /usr/bin/python3 -m pytest -v -p no:cacheprovider tests/security/test_guest_sandbox.py
TEST_SUITES += security-test security-system-test

# Test helper run inside jails by tests/security.
$(BUILD)/tests/security/jail-probe: $(call obj,tests/security/jail_probe.c $(SANDBOX_SRC))
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $^ -o $@ $(LDFLAGS) -lseccomp

# make bench: what measurement and jailing add to a launch, beside their peers.
$(BUILD)/sec-bench: $(call obj,tools/security/sec_bench.c $(CHIP_SRC) $(JAIL_SRC)) $(call objs,lib)
	$(CC) $(CFLAGS) $^ -o $@ $(LDFLAGS) $(CHIP_LIBS)
.PHONY: security-bench
security-bench: all $(BUILD)/sec-bench
	$(BUILD)/sec-bench $(BUILD)/nitro-hv $${NITRO_CACHE:-$$HOME/.cache/nitro}/images/vmlinuz 30
bench: security-bench
