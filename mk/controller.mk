# nitrod, the controller daemon (issue 5, src/controller): the HTTP+JSON API on a Unix
# socket, state in SQLite, supervision of nitro-hv and the cards through the jailer,
# measured launches. It links the chip (src/securitychip), decompresses measured kernels
# with src/boot (kcache.h), reads volumes with src/volume and turns instances into
# processes with src/launch (the plan `nitro run` uses too). The audit log and the
# jailer are src/controller files the security tools link too (mk/securitychip.mk).
CTL_LIBS = -lmicrohttpd -ljansson -lsqlite3 -lcrypto -lzstd -lpthread
all: $(BUILD)/nitrod $(BUILD)/nitrod.sig
# The chip hashes nitrod's whole file at every start (SHA-384): its debug information goes
# to nitrod.debug (found by gdb through the .gnu_debuglink section), as Debian packages do.
# (and the IMDS's identity document from src/imds, which the chip signs; the enclave
# attestation chain's root and host intermediate, src/enclave/pki.c, handed to NSM cards
# through chain_fd.c)
$(BUILD)/nitrod: $(call objs,controller securitychip boot volume snapshot launch lib imds endorse vpcmap) \
	$(call obj,src/tpm/client.c src/tpm/proto.c src/tpm/tpm2.c) \
	$(call obj,src/enclave/pki.c src/enclave/chain_fd.c)
	$(CC) $(CFLAGS) $^ -o $@.full $(LDFLAGS) $(CTL_LIBS)
	objcopy --only-keep-debug $@.full $@.debug
	objcopy --strip-debug --add-gnu-debuglink=$@.debug $@.full $@
	rm -f $@.full

.PHONY: api-test controller-system-test
api-test: all $(BUILD)/tests/api/audit-fault.so
	/usr/bin/python3 -m pytest -v -p no:cacheprovider tests/api
TEST_SUITES += api-test
controller-system-test: all images $(BUILD)/ebsnvme-guest.img
	$(BUILD)/nitro emuhost --memory 6144 -- /usr/bin/python3 -m pytest -v -p no:cacheprovider tests/system/test_controller.py

# A test-only LD_PRELOAD shim: I/O errors on the audit log on demand (test_audit_limits.py).
$(BUILD)/tests/api/audit-fault.so: tests/api/audit_fault.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC -shared $< -o $@ -ldl -lpthread

# API latency under concurrent clients (bench/api.py).
$(BUILD)/nitrod-loadgen: tests/api/loadgen.c
	$(CC) $(CFLAGS) $< -o $@ $(LDFLAGS) -lpthread
bench: $(BUILD)/nitrod-loadgen

# Issue 10 items 1, 2 (tests/unit/controller): the kernel cache's attacks (nitrod's
# kcache.c with the loader it shares with nitro-hv, src/boot) and boot files opened
# beneath their folder (bootfile.c, with and without openat2).
CTL_UNIT = $(BUILD)/tests/controller/test_kcache $(BUILD)/tests/controller/test_bootfile \
	$(BUILD)/tests/controller/test_connpool
UNIT_TESTS += $(CTL_UNIT)
$(BUILD)/tests/controller/test_kcache: $(call obj,src/controller/kcache.c) $(call objs,boot lib) \
	$(call testlib,bzimage tmpdir)
$(BUILD)/tests/controller/test_bootfile: $(call obj,src/controller/bootfile.c src/controller/kcache.c) \
	$(call objs,securitychip boot lib)
# Item 3: the fair share of the API's connection slots among uids (connpool.c).
$(BUILD)/tests/controller/test_connpool: $(call obj,src/controller/connpool.c)
$(CTL_UNIT): override LDFLAGS += -lpthread -lzstd -lcrypto -ljansson -lseccomp
