# The vsock card (issue 12 item 4, src/cards/vsock): nitro-card-vsock relays virtio-vsock
# stream packets between a parent instance (CID 3) and its enclaves (docs/vsock.md). Its
# routing core (route.c) has cmocka tests (tests/unit/vsock) and a libFuzzer target
# (tests/fuzz/fuzz_vsock.c); the system test is tests/system/test_vsock.py (mk/system.mk).
all: $(BUILD)/nitro-card-vsock $(BUILD)/nitro-card-vsock.sig
$(BUILD)/nitro-card-vsock: $(call objs,cards/vsock cards/lib lib sandbox)
	$(CC) $(CFLAGS) $^ -o $@ $(LDFLAGS) -lseccomp

VSOCK_UNIT = $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/vsock/test_*.c))
UNIT_TESTS += $(VSOCK_UNIT)
$(VSOCK_UNIT): $(call obj,src/cards/vsock/route.c src/cards/vsock/console.c) $(call objs,lib)


# test_vsock.py's guest program (static: the guest image has no libc) and the initramfs it
# runs in: the default guest image plus the stock kernel's vsock modules, loaded at boot
# (tests/system/initrd.sh).
$(BUILD)/guest/vsock-test: tests/system/vsock_guest.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -static -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE $< -o $@
$(BUILD)/vsock-guest.img: images $(BUILD)/guest/vsock-test tests/system/initrd.sh
	OUT=$@ sh tests/system/initrd.sh $(foreach m,vsock vmw_vsock_virtio_transport_common \
	    vmw_vsock_virtio_transport,mod:$(m):net/vmw_vsock/) $(BUILD)/guest/vsock-test=/bin/vsock-test
system-test: $(BUILD)/vsock-guest.img

# The host-side attack driver (tests/vsockdriver: plays the parent's and enclaves' nitro-hv
# and guests against a real card, no VM) and its suite tests/vsock (NITRO_BUILD=build/asan
# runs the sanitizer build of the card).
VSOCK_DRIVER_SRC = $(wildcard tests/vsockdriver/*.c) tests/driver/vu_front.c
$(BUILD)/vsock-attack: $(call obj,$(VSOCK_DRIVER_SRC) src/cards/vsock/route.c) $(call objs,lib)
	$(CC) $(CFLAGS) $^ -o $@ $(LDFLAGS) -lpthread
all: $(BUILD)/vsock-attack

.PHONY: vsock-test
vsock-test: $(BUILD)/nitro-card-vsock $(BUILD)/vsock-attack
	VSOCK_ATTACK=$(BUILD)/vsock-attack /usr/bin/python3 -m pytest -v -p no:cacheprovider tests/vsock
TEST_SUITES += vsock-test
