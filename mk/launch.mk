# src/launch: the launch description (issue 11, item 1). `nitro run` and nitrod both turn
# an instance into its processes (argv, kept fds, sockets, start order) with it. A library
# (linked by nitro and nitrod, see mk/cli.mk and mk/controller.mk): only its cmocka test
# is here.
LAUNCH_UNIT = $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/launch/test_*.c))
UNIT_TESTS += $(LAUNCH_UNIT)
# (src/boot for the default instance type the VPC cards' IMDS get, as nitro-hv's SMBIOS)
$(LAUNCH_UNIT): $(call objs,launch boot lib)
$(LAUNCH_UNIT): override LDFLAGS += -ljansson -lzstd -lpthread -lcrypto
