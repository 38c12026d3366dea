# EBS snapshots and images (issue 15 item 1, src/snapshot): the snapshot store (chunk
# index, manifests, encrypted content-addressed chunks) and image import through qemu-img,
# shared by nitro (`nitro snapshot`, `nitro volume create --from-*`) and nitrod
# (/v1/snapshots). It links src/volume; nothing of src/hv or src/cards.

# The chunk index and manifest parser (tests/unit/snapshot).
SNAPSHOT_UNIT = $(BUILD)/tests/snapshot/test_snapshot
UNIT_TESTS += $(SNAPSHOT_UNIT)
$(BUILD)/tests/snapshot/test_snapshot: $(call objs,snapshot volume lib)
$(BUILD)/tests/snapshot/test_snapshot: override LDFLAGS += -lcrypto -ljansson

.PHONY: snapshot-test
snapshot-test: all $(BUILD)/vu-blk-driver
	VU_BLK_DRIVER=$(BUILD)/vu-blk-driver /usr/bin/python3 -m pytest -v -p no:cacheprovider tests/snapshot
TEST_SUITES += snapshot-test
