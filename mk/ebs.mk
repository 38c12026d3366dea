# The EBS card (issue 3): virtio-blk over vhost-user on an encrypted, rate-limited volume
# (io_uring file, NBD or null back end); `nitro volume` shares its volume format.
EBS_SRC = $(wildcard src/cards/ebs/*.c) src/volume/volume.c src/volume/xts.c
EBS_LIBS = -lcrypto -luring -lnbd
all: $(BUILD)/nitro-card-ebs
$(BUILD)/nitro-card-ebs: $(call obj,$(EBS_SRC) $(CARDLIB_SRC) $(LIB_SRC))
	$(CC) $(CFLAGS) $^ -o $@ $(LDFLAGS) $(EBS_LIBS)
$(BUILD)/nitro: $(call obj,src/volume/volume.c src/volume/xts.c)
$(BUILD)/nitro: override LDFLAGS += -lcrypto

.PHONY: ebs-test
ebs-test: all images $(BUILD)/vu-blk-driver
	VU_BLK_DRIVER=$(BUILD)/vu-blk-driver /usr/bin/python3 -m pytest -v -p no:cacheprovider tests/ebs

# The card's QoS arithmetic and its XTS against OpenSSL's, under cmocka (joins make unit
# and unit-asan).
EBS_UNIT = $(BUILD)/tests/ebs/test_qos $(BUILD)/tests/ebs/test_xts
$(BUILD)/tests/ebs/test_qos: $(call obj,src/cards/ebs/qos.c)
$(BUILD)/tests/ebs/test_xts: $(call obj,src/volume/xts.c)
$(BUILD)/tests/ebs/test_xts: override LDFLAGS += -lcrypto
UNIT_TESTS += $(EBS_UNIT)
unit: $(EBS_UNIT) # (the Makefile expands unit's prerequisites before mk/ is read)
