# src/boot: what nitro, nitrod and nitro-hv share about a guest's boot files: the bzImage
# setup header, the kernel loader with its host-side decompression and vmlinux cache,
# guest memory, and nitro-hv's command line with its kernel/initrd/cmdline checks. A
# library (linked by those three, see their mk files; they need -lzstd and -lcrypto: the
# vmlinux cache is keyed and checked by SHA-384): only its cmocka tests are here.
BOOT_UNIT = $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/boot/test_*.c))
UNIT_TESTS += $(BOOT_UNIT)
$(BOOT_UNIT): $(call objs,boot lib)
$(BOOT_UNIT): override LDFLAGS += -lpthread -lzstd -lcrypto
$(BUILD)/tests/boot/test_boot: $(call testlib,bzimage)
$(BUILD)/tests/boot/test_config: $(call testlib,bzimage tmpdir)
