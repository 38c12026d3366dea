# src/cards/lib, the card library: the vhost-user backend (messages, guest memory, split
# virtqueues, event loop) every card links. Only its cmocka tests are here.
CARDLIB_UNIT = $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/cardlib/test_*.c))
UNIT_TESTS += $(CARDLIB_UNIT)
$(CARDLIB_UNIT): $(call objs,cards/lib lib)
$(CARDLIB_UNIT): override LDFLAGS += -lpthread
$(BUILD)/tests/cardlib/test_vhost_user: $(call testlib,fds)
$(BUILD)/tests/cardlib/test_vring: $(call testlib,ringmem)
