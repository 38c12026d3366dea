# The VPC card (issue 4, src/cards/vpc): nitro-card-vpc (virtio-net over vhost-user,
# Geneve over a UDP underlay, the mapping service of src/vpcmap), its packet-processing
# core (vpc.h) with cmocka tests and microbenchmark, its frontend test driver and suites.
all: $(BUILD)/nitro-card-vpc $(BUILD)/nitro-card-vpc.sig
$(BUILD)/nitro-card-vpc: $(call objs,cards/vpc imds vpcmap cards/lib lib sandbox)
	$(CC) $(CFLAGS) $^ -o $@ $(LDFLAGS) -lseccomp -llwip
# lwIP's headers (Debian's liblwip-dev: /usr/include/lwip, its lwipopts.h) for the IMDS's TCP.
$(BUILD)/obj/src/cards/vpc/imds_net.o: override CFLAGS += -I/usr/include/lwip

# The virtio-net frontend test driver (plays the guest; also drives dpdk-testpmd).
VPC_DRIVER_SRC = $(wildcard tests/vpcdriver/*.c) tests/driver/vu_front.c
$(BUILD)/vpc-driver: $(call obj,$(VPC_DRIVER_SRC)) $(call objs,lib)
	$(CC) $(CFLAGS) $^ -o $@ $(LDFLAGS)
all: $(BUILD)/vpc-driver

.PHONY: vpc-test
vpc-test: all $(BUILD)/vpc-driver
	VPC_DRIVER=$(BUILD)/vpc-driver /usr/bin/python3 -m pytest -v -p no:cacheprovider tests/vpc
TEST_SUITES += vpc-test
bench: $(BUILD)/vpc-driver

# The packet-processing core: cmocka tests (tests/unit/vpc, part of `make unit` and
# `make unit-asan`).
VPC_CORE_SRC = $(addprefix src/cards/vpc/,pkt.c arp.c dhcp.c geneve.c sg.c conntrack.c verdict.c \
	allowance.c vpc.c igw.c igw_policy.c)
VPC_CORE_TESTS = $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/vpc/test_*.c))
UNIT_TESTS += $(VPC_CORE_TESTS)
$(VPC_CORE_TESTS): $(call obj,$(VPC_CORE_SRC) tests/unit/vpc/vpctest.c) $(call objs,lib)

# ns/packet of 64-byte UDP through vpc_from_guest + vpc_from_underlay (make vpc-core-bench).
.PHONY: vpc-core-bench
$(BUILD)/vpc-core-bench: $(call obj,tests/unit/vpc/bench_core.c $(VPC_CORE_SRC)) $(call objs,lib)
	$(CC) $(CFLAGS) $^ -o $@ $(LDFLAGS)
vpc-core-bench: $(BUILD)/vpc-core-bench
	$(BUILD)/vpc-core-bench
# The IMDS: its HTTP parser and the service (no lwIP: the TCP side is tests/vpc/test_imds.py).
$(BUILD)/tests/vpc/test_vpc_imds: $(call obj,src/imds/imds.c src/imds/imds_http.c)
# The mapping service's caches on a real folder (issue 10 item 13).
$(BUILD)/tests/vpc/test_vpc_mapsvc: $(call obj,src/vpcmap/mapsvc.c src/vpcmap/underlay.c)
# The VPC resolver and time server (issue 15 item 4): parser, answers, forwarding, NTP.
$(BUILD)/tests/vpc/test_vpc_dns: $(call obj,src/cards/vpc/dns.c src/cards/vpc/dnsmsg.c \
	src/cards/vpc/ntp.c)

# The internet gateway's NAT (src/igw, issue 15 item 5): libslirp (Debian's libslirp-dev)
# in the host's network namespace, one per interface of a VPC with a gateway.
# Signed: nitrod measures it (the chip checks the signature) before it starts one.
all: $(BUILD)/nitro-vpc-igw $(BUILD)/nitro-vpc-igw.sig
$(BUILD)/nitro-vpc-igw: $(call objs,igw sandbox lib) $(call obj,src/cards/vpc/igw_policy.c)
	$(CC) $(CFLAGS) $^ -o $@ $(LDFLAGS) -lseccomp -lslirp
