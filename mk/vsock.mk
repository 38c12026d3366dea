# The vsock card (issue 12 item 4, src/cards/vsock): nitro-card-vsock relays virtio-vsock
# stream packets between a parent instance (CID 3) and its enclaves (docs/vsock.md). Its
# routing core (route.c) has cmocka tests (tests/unit/vsock) and a libFuzzer target
# (tests/fuzz/fuzz_vsock.c); the system test is tests/system/test_vsock.py (mk/system.mk).
all: $(BUILD)/nitro-card-vsock $(BUILD)/nitro-card-vsock.sig
$(BUILD)/nitro-card-vsock: $(call objs,cards/vsock cards/lib lib sandbox)
	$(CC) $(CFLAGS) $^ -o $@ $(LDFLAGS) -lseccomp

VSOCK_UNIT = $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/vsock/test_*.c))
UNIT_TESTS += $(VSOCK_UNIT)
$(VSOCK_UNIT): $(call obj,src/cards/vsock/route.c) $(call objs,lib)


# test_vsock.py's guest program (static: the guest image has no libc) and the initramfs it
# runs in: the default guest image plus the vsock modules (tests/system/vsock_initrd.sh).
$(BUILD)/guest/vsock-test: tests/system/vsock_guest.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -static -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE $< -o $@
$(BUILD)/vsock-guest.img: images $(BUILD)/guest/vsock-test tests/system/vsock_initrd.sh
	OUT=$@ sh tests/system/vsock_initrd.sh $(BUILD)/guest/vsock-test=/bin/vsock-test
system-test: $(BUILD)/vsock-guest.img
