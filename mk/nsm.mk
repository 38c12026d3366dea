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
