# src/lib, what several parts link (util, little-endian access, the vhost-user wire format
# and its one framing, vu_wire.c). Linked by folder ($(call objs,lib)); only its cmocka
# tests are here.
LIB_UNIT = $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/lib/test_*.c))
UNIT_TESTS += $(LIB_UNIT)
$(LIB_UNIT): $(call objs,lib)
$(LIB_UNIT): override LDFLAGS += -lpthread
$(BUILD)/tests/lib/test_vu_wire: $(call testlib,fds)
