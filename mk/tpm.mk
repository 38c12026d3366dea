# NitroTPM (issue 13): nitro-card-tpm (src/cards/tpm: libtpms behind the hv <-> card
# protocol), the code nitro-hv and the card share (src/tpm: protocol framing, TPM2
# commands, the TCG2 event log), its unit tests and the system test (mk/system.mk).
TPM_LIBS = -lseccomp -lcrypto -ltpms
all: $(BUILD)/nitro-card-tpm $(BUILD)/nitro-card-tpm.sig
$(BUILD)/nitro-card-tpm: $(call objs,cards/tpm tpm cards/lib lib sandbox)
	$(CC) $(CFLAGS) $^ -o $@ $(LDFLAGS) $(TPM_LIBS)

# cmocka: the CRB register state machine, the hv <-> card framing, the event log
# (written, then replayed) and the card's encrypted NV store (tests/unit/tpm).
TPM_UNIT = $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/tpm/test_*.c))
UNIT_TESTS += $(TPM_UNIT)
$(TPM_UNIT): $(call obj,src/hv/crb.c src/cards/tpm/nvstore.c) $(call objs,tpm lib)
$(TPM_UNIT): override LDFLAGS += -lcrypto
