# The security chip, jailer, sandbox and audit log (issue 5). Libraries for nitrod (its
# rules are the controller's), signed executables, and the security test suites.
CHIP_SRC = src/securitychip/chip.c src/securitychip/attest.c
CHIP_LIBS = -lcrypto -ljansson -lpthread
AUDIT_SRC = src/controller/audit.c
JAIL_SRC = src/controller/jailer.c src/controller/jail_elf.c
SANDBOX_SRC = src/sandbox/sandbox.c

# Signing: a development Ed25519 key made on the first build (build/keys, never committed)
# signs every host-stack executable; SIGNING_KEY=... signs with a production key.
SIGNING_KEY ?= $(BUILD)/keys/dev-anchor.pem
SIGNED = $(BUILD)/nitro-hv $(BUILD)/nitro-card-ebs
ifneq ($(wildcard src/cards/vpc/vpc*.c),)
SIGNED += $(BUILD)/nitro-card-vpc
endif
# nitrod, once some mk/*.mk has its link rule.
ifneq ($(shell grep -l '^$$(BUILD)/nitrod:' mk/*.mk 2>/dev/null),)
SIGNED += $(BUILD)/nitrod
endif
all: $(addsuffix .sig,$(SIGNED)) $(BUILD)/nitro-audit-verify $(BUILD)/nitro-chip
$(BUILD)/keys/dev-anchor.pem:
	sh tools/sign.sh keygen $(BUILD)/keys
$(BUILD)/%.sig: $(BUILD)/% $(SIGNING_KEY)
	sh tools/sign.sh sign $(SIGNING_KEY) $<

# nitro-hv and the cards install their own seccomp allow-list (src/sandbox).
$(BUILD)/nitro-hv $(BUILD)/nitro-card-ebs $(BUILD)/nitro-card-vpc: $(call obj,$(SANDBOX_SRC))
$(BUILD)/nitro-hv $(BUILD)/nitro-card-ebs $(BUILD)/nitro-card-vpc: override LDFLAGS += -lseccomp

# Small tools: verify an audit log; measure / attest from the shell (tests, operators).
$(BUILD)/nitro-audit-verify: $(call obj,tools/security/audit_verify.c $(AUDIT_SRC) $(LIB_SRC))
	$(CC) $(CFLAGS) $^ -o $@ $(LDFLAGS) -lcrypto -lpthread
$(BUILD)/nitro-chip: $(call obj,tools/security/chip_tool.c $(CHIP_SRC) $(JAIL_SRC) $(LIB_SRC))
	$(CC) $(CFLAGS) $^ -o $@ $(LDFLAGS) $(CHIP_LIBS)

# cmocka unit tests.
SEC_UNIT = $(BUILD)/tests/security/test_chip $(BUILD)/tests/security/test_audit
UNIT_TESTS += $(SEC_UNIT)
$(BUILD)/tests/security/test_chip: $(call obj,$(CHIP_SRC))
$(BUILD)/tests/security/test_audit: $(call obj,$(AUDIT_SRC))
$(SEC_UNIT): override LDFLAGS += $(CHIP_LIBS)

.PHONY: security-test security-system-test
security-test: all
	/usr/bin/python3 -m pytest -v -p no:cacheprovider tests/security/test_security.py
# A real guest with jailed, seccomp'd nitro-hv and nitro-card-ebs (emulated host).
security-system-test: all images
	$(BUILD)/nitro emuhost --memory 2048 -- /usr/bin/python3 -m pytest -v -p no:cacheprovider tests/security/test_guest_sandbox.py
TEST_SUITES += security-test security-system-test

# Test helper run inside jails by tests/security.
$(BUILD)/tests/security/jail-probe: $(call obj,tests/security/jail_probe.c $(SANDBOX_SRC))
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $^ -o $@ $(LDFLAGS) -lseccomp
security-test: $(BUILD)/tests/security/jail-probe

# make bench: what measurement and jailing add to a launch, beside their peers.
$(BUILD)/sec-bench: $(call obj,tools/security/sec_bench.c $(CHIP_SRC) $(JAIL_SRC) $(LIB_SRC))
	$(CC) $(CFLAGS) $^ -o $@ $(LDFLAGS) $(CHIP_LIBS)
.PHONY: security-bench
security-bench: all $(BUILD)/sec-bench
	$(BUILD)/sec-bench $(BUILD)/nitro-hv $${NITRO_CACHE:-$$HOME/.cache/nitro}/images/vmlinuz 30
bench: security-bench
