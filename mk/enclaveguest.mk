# The enclave programs that run inside guests (issue 12), static (glibc -static: the guest
# images have no libc): the enclave's /init (src/enclave/init), nitro-enclave for the
# parent instance (src/enclave/tool; the default guest image carries it as
# /bin/nitro-enclave: tools/images.sh picks up $(BUILD)/guest/nitro-enclave), and the test
# EIFs (tools/enclave_eif.sh) with the attestation payload (tests/system/enclave_attest.c).
# No -g and source paths mapped: the same sources give the same bytes in any worktree, so
# the images' and EIFs' caches (and PCRs) do not change with the checkout's location.
ENCLAVE_GUEST_CC = $(CC) -O2 -s -static -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -Isrc \
	-ffile-prefix-map=$(CURDIR)/=
NET_TOOL_SRC = $(wildcard src/enclave/tool/*.c)
all: $(BUILD)/guest/nitro-enclave $(BUILD)/guest/enclave-init $(BUILD)/guest/enclave-attest \
	$(BUILD)/guest/enclave-parent $(BUILD)/guest/enclave-peek $(BUILD)/guest/enclave-nsmbench
$(BUILD)/guest/nitro-enclave: $(NET_TOOL_SRC) $(wildcard src/enclave/tool/*.h) src/lib/be.h
	@mkdir -p $(dir $@)
	$(ENCLAVE_GUEST_CC) $(NET_TOOL_SRC) -o $@
$(BUILD)/guest/enclave-init: src/enclave/init/init.c
	@mkdir -p $(dir $@)
	$(ENCLAVE_GUEST_CC) $< -o $@
# The attestation payload, the NSM benchmark's and the parent's side share
# tests/system/enclave_guest.c (whole reads and writes, the connection to the parent, the
# nonce, the Attestation request).
ENCLAVE_TEST_GUEST = tests/system/enclave_guest.c tests/system/enclave_guest.h src/lib/be.h
$(BUILD)/guest/enclave-attest: tests/system/enclave_attest.c $(ENCLAVE_TEST_GUEST)
	@mkdir -p $(dir $@)
	$(ENCLAVE_GUEST_CC) $(filter %.c,$^) -o $@
$(BUILD)/guest/enclave-nsmbench: tests/system/enclave_nsmbench.c $(ENCLAVE_TEST_GUEST)
	@mkdir -p $(dir $@)
	$(ENCLAVE_GUEST_CC) $(filter %.c,$^) -o $@
$(BUILD)/guest/enclave-parent: tests/system/enclave_parent.c $(ENCLAVE_TEST_GUEST)
	@mkdir -p $(dir $@)
	$(ENCLAVE_GUEST_CC) $(filter %.c,$^) -o $@
$(BUILD)/guest/enclave-peek: tests/system/enclave_peek.c
	@mkdir -p $(dir $@)
	$(ENCLAVE_GUEST_CC) $< -o $@

# guest.img carries the tool: the images step runs after it is built (images.sh's stamp
# includes the binary, so a changed tool rebuilds the image and an unchanged one does not).
images: $(BUILD)/guest/nitro-enclave

# The unit test of the tool's pure parts (argument parsing, NE error texts, CPU lists and
# pool choice, JSON, the early EIF check).
$(BUILD)/tests/enclave/test_tool: $(call obj,$(filter-out src/enclave/tool/main.c \
	src/enclave/tool/run.c src/enclave/tool/ctl.c src/enclave/tool/hb.c,$(NET_TOOL_SRC)))

# The test EIFs, rebuilt when a part or the kernel changes.
NITRO_CACHE_DIR = $(or $(NITRO_CACHE),$(HOME)/.cache/nitro)
.PHONY: enclave-eif
enclave-eif: $(BUILD)/enclave/test.eif
$(BUILD)/enclave/test.eif: tools/enclave_eif.sh $(BUILD)/nitro $(BUILD)/guest/enclave-init \
	$(BUILD)/guest/enclave-attest $(BUILD)/guest/enclave-nsmbench \
	$(wildcard $(NITRO_CACHE_DIR)/images/vmlinuz) | images
	sh tools/enclave_eif.sh $(BUILD)
system-test: $(BUILD)/enclave/test.eif
# bench/enclave.py boots a parent with guest.img and its own EIFs (nsmbench.eif, hello.eif).
bench: $(BUILD)/enclave/test.eif $(BUILD)/guest/enclave-parent

# test_enclave.py's parent instance: the default guest image plus /enclave/*.eif (and their
# measurements), /bin/enclave-parent, /bin/enclave-peek and this checkout's
# /bin/nitro-enclave (over the one the shared guest.img may hold).
$(BUILD)/enclave/parent-initrd.img: $(BUILD)/enclave/test.eif $(BUILD)/guest/enclave-parent \
	$(BUILD)/guest/enclave-peek $(BUILD)/guest/nitro-enclave \
	tests/system/enclave_e2e.sh tests/system/initrd.sh \
	$(wildcard $(NITRO_CACHE_DIR)/images/guest.img) | images
	OUT=$@ sh tests/system/initrd.sh $(BUILD)/guest/enclave-parent=/bin/enclave-parent \
	    $(BUILD)/guest/enclave-peek=/bin/enclave-peek \
	    $(BUILD)/guest/nitro-enclave=/bin/nitro-enclave tests/system/enclave_e2e.sh=/enclave/e2e.sh \
	    $$(for f in $(BUILD)/enclave/*.eif $(BUILD)/enclave/*.json; do echo "$$f=/enclave/$${f##*/}"; done)
system-test: $(BUILD)/enclave/parent-initrd.img
