# NitroTPM (issue 13): nitro-card-tpm (src/cards/tpm: libtpms behind the hv <-> card
# protocol), the code nitro-hv and the card share (src/tpm: protocol framing, TPM2
# commands, the TCG2 event log), its unit tests and the system test (mk/system.mk).
TPM_LIBS = -lseccomp -lcrypto -ltpms
all: $(BUILD)/nitro-card-tpm $(BUILD)/nitro-card-tpm.sig
$(BUILD)/nitro-card-tpm: $(call objs,cards/tpm tpm cards/lib lib sandbox)
	$(CC) $(CFLAGS) $^ -o $@ $(LDFLAGS) $(TPM_LIBS)

# cmocka: the CRB register state machine, the hv <-> card framing, the event log
# (written, then replayed), EK provisioning and the chip's EK CA (tests/unit/tpm).
TPM_UNIT = $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/tpm/test_*.c))
UNIT_TESTS += $(TPM_UNIT)
$(TPM_UNIT): $(call obj,src/hv/crb.c src/cards/tpm/nvstore.c src/securitychip/ekca.c) \
	$(call objs,tpm lib)
$(TPM_UNIT): override LDFLAGS += -lcrypto

# The card over its protocol (tests/tpm: no KVM needed).
.PHONY: tpm-test
tpm-test: all
	/usr/bin/python3 -m pytest -v -p no:cacheprovider tests/tpm
TEST_SUITES += tpm-test

# Guest side of bench/tpm.py (static: the guest image has no libc); swtpm is the
# benchmark's peer (tools/deps.d/tpm.bench.list, installed by make bench-deps).
$(BUILD)/guest/tpm-rtt: bench/tpm_rtt.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -static -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE $< -o $@
.PHONY: tpm-bench-deps
tpm-bench-deps: $(BUILD)/guest/tpm-rtt
bench: tpm-bench-deps
