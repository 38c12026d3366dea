# The EBS card (issue 3, src/cards/ebs): virtio-blk over vhost-user on an encrypted,
# rate-limited volume (io_uring file, NBD or null back end). The back ends and QoS are
# src/cards/bdev, shared by its virtio-blk (src/cards/ebs) and NVMe (src/cards/nvme)
# fronts; the volume format and XTS are src/volume, shared with nitro and nitrod.
EBS_LIBS = -lseccomp -lcrypto -luring # libnbd: dlopen()ed by bdev_nbd.c for NBD volumes only
all: $(BUILD)/nitro-card-ebs $(BUILD)/nitro-card-ebs.sig
$(BUILD)/nitro-card-ebs: $(call objs,cards/ebs cards/nvme cards/bdev volume cards/lib lib sandbox)
	$(CC) $(CFLAGS) $^ -o $@ $(LDFLAGS) $(EBS_LIBS)

# The vhost-user-blk frontend test driver (tests/driver: plays the guest against any
# block card, and against qemu-storage-daemon in driver-test).
$(BUILD)/vu-blk-driver: $(call obj,$(wildcard tests/driver/*.c)) $(call objs,lib)
	$(CC) $(CFLAGS) $^ -o $@ $(LDFLAGS) -lpthread

.PHONY: ebs-test driver-test
ebs-test: all images $(BUILD)/vu-blk-driver
	VU_BLK_DRIVER=$(BUILD)/vu-blk-driver /usr/bin/python3 -m pytest -v -p no:cacheprovider tests/ebs
driver-test: $(BUILD)/vu-blk-driver
	VU_BLK_DRIVER=$(BUILD)/vu-blk-driver /usr/bin/python3 -m pytest -v -p no:cacheprovider tests/driver
TEST_SUITES += driver-test ebs-test
bench: $(BUILD)/vu-blk-driver

# The card's QoS arithmetic and the volume's XTS against OpenSSL's (tests/unit/ebs).
EBS_UNIT = $(BUILD)/tests/ebs/test_qos $(BUILD)/tests/ebs/test_xts
UNIT_TESTS += $(EBS_UNIT)
$(BUILD)/tests/ebs/test_qos: $(call obj,src/cards/bdev/qos.c)
$(BUILD)/tests/ebs/test_xts: $(call obj,src/volume/xts.c)
$(BUILD)/tests/ebs/test_xts: override LDFLAGS += -lcrypto

# The NVMe card core (src/cards/nvme, tests/unit/nvme): identify, PRP/SGL walk, queue
# creation abuse, doorbells, on heap guest memory and a null back end.
NVME_UNIT = $(BUILD)/tests/nvme/test_nvme
UNIT_TESTS += $(NVME_UNIT)
$(NVME_UNIT): $(call obj,src/cards/nvme/nvme.c src/cards/bdev/bdev_null.c src/cards/bdev/qos.c) $(call objs,volume) $(call obj,src/cards/lib/guestmem.c) $(call objs,lib)
$(NVME_UNIT): override CFLAGS += -Itests/unit/nvme
$(NVME_UNIT): override LDFLAGS += -lcrypto

# Pausing the NVMe card for snapshots (tests/unit/nvme/test_pause.c): the controller's pause
# with a write in flight on the io_uring file back end, and the control socket
# (src/cards/bdev/blkctl.c) through the front's ops.
NVME_PAUSE_UNIT = $(BUILD)/tests/nvme/test_pause
UNIT_TESTS += $(NVME_PAUSE_UNIT)
$(NVME_PAUSE_UNIT): $(call obj,src/cards/nvme/nvme.c src/cards/nvme/pause.c src/cards/nvme/front.c src/cards/bdev/blkctl.c src/cards/bdev/bdev_file.c src/cards/bdev/bdev_null.c src/cards/bdev/qos.c src/cards/lib/guestmem.c src/cards/lib/loop.c src/cards/lib/listen.c) $(call objs,volume lib)
$(NVME_PAUSE_UNIT): override CFLAGS += -Itests/unit/nvme
$(NVME_PAUSE_UNIT): override LDFLAGS += -lcrypto -luring
