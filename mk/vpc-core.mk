# The VPC packet-processing core (src/cards/vpc/vpc.h): its cmocka unit tests (part of
# `make unit` / `make unit-asan`) and the ns/packet microbenchmark.
VPC_CORE_SRC = $(addprefix src/cards/vpc/,pkt.c arp.c dhcp.c geneve.c sg.c conntrack.c \
	allowance.c vpc.c)
VPC_CORE_TESTS = $(patsubst tests/unit/vpc/%.c,$(BUILD)/tests/vpc/%,\
	$(wildcard tests/unit/vpc/test_*.c))
UNIT_TESTS += $(VPC_CORE_TESTS)
unit: $(VPC_CORE_TESTS) # (the Makefile expands unit's prerequisites before mk/ is read)
$(VPC_CORE_TESTS): $(call obj,$(VPC_CORE_SRC) tests/unit/vpc/vpctest.c)

# ns/packet of 64-byte UDP through vpc_from_guest + vpc_from_underlay (make vpc-core-bench).
.PHONY: vpc-core-bench
$(BUILD)/vpc-core-bench: $(call obj,tests/unit/vpc/bench_core.c $(VPC_CORE_SRC) $(LIB_SRC))
	$(CC) $(CFLAGS) $^ -o $@ $(LDFLAGS)
vpc-core-bench: $(BUILD)/vpc-core-bench
	$(BUILD)/vpc-core-bench
