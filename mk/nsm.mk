# The Nitro Secure Module card (issue 12 items 5-6, src/cards/nsm): virtio device 33 over
# vhost-user for every enclave of a parent instance, each connection opened with ENW_HELLO,
# answered by src/enclave/nsm.c with a per-connection leaf of the host intermediate.
NSM_LIBS = -lseccomp -lcbor -lcrypto
all: $(BUILD)/nitro-card-nsm $(BUILD)/nitro-card-nsm.sig
$(BUILD)/nitro-card-nsm: $(call objs,cards/nsm enclave cards/lib lib sandbox)
	$(CC) $(CFLAGS) $^ -o $@ $(LDFLAGS) $(NSM_LIBS)

# cmocka: the card's request path on a real split ring in guard-paged memory (the driver's
# two-chain requests, hostile chains), the hello check, and the chain passed on an fd.
NSM_UNIT = $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/nsm/test_*.c))
UNIT_TESTS += $(NSM_UNIT)
$(NSM_UNIT): $(call obj,src/cards/nsm/queue.c src/cards/nsm/hello.c) $(call objs,enclave cards/lib lib)
$(NSM_UNIT): override LDFLAGS += -lcbor -lcrypto -lpthread
$(BUILD)/tests/nsm/test_nsm_card: $(call testlib,ringmem)

# Guest side of tests/system/test_nsm.py (static: the guest image has no libc), and the
# initramfs it runs in: the default guest image plus the client and the stock kernel's
# nsm.ko (from the image build's kernel package; loaded by the test, whatever the default
# image carries).
$(BUILD)/guest/nsm-client: tests/system/nsm_client.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -static -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE $< -o $@
$(BUILD)/nsm-guest.img: images $(BUILD)/guest/nsm-client tests/system/initrd.sh
	OUT=$@ sh tests/system/initrd.sh $(BUILD)/guest/nsm-client=/bin/nsm-client \
	    ko:nsm:drivers/misc/=/lib/modules/nsm.ko
system-test: $(BUILD)/nsm-guest.img

# The Attestation's stages timed one by one (bench/nsm_stages.c): run natively and in the
# emulated host to see where an attestation's time goes.
all: $(BUILD)/bench/nsm-stages
$(BUILD)/bench/nsm-stages: $(call obj,bench/nsm_stages.c) $(call objs,enclave)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $^ -o $@ $(LDFLAGS) -lcbor -lcrypto
