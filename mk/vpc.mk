# The VPC card (issue 4): nitro-card-vpc (virtio-net over vhost-user, Geneve over a UDP
# underlay, the mapping service), its frontend test driver and its test suites.
VPC_SRC = $(wildcard src/cards/vpc/*.c) src/vpcmap/mapsvc.c src/vpcmap/underlay.c
all: $(BUILD)/nitro-card-vpc
$(BUILD)/nitro-card-vpc: $(call obj,$(VPC_SRC) $(CARDLIB_SRC) $(LIB_SRC))
	$(CC) $(CFLAGS) $^ -o $@ $(LDFLAGS)
# nitro run --nic and nitro net stats read the mapping service.
$(BUILD)/nitro: $(call obj,src/vpcmap/mapsvc.c src/vpcmap/underlay.c)

# The virtio-net frontend test driver (plays the guest; also drives dpdk-testpmd).
VPC_DRIVER_SRC = $(wildcard tests/vpcdriver/*.c) tests/driver/vu_front.c
$(BUILD)/vpc-driver: $(call obj,$(VPC_DRIVER_SRC) $(LIB_SRC))
	$(CC) $(CFLAGS) $^ -o $@ $(LDFLAGS)
all: $(BUILD)/vpc-driver

.PHONY: vpc-test
vpc-test: all $(BUILD)/vpc-driver
	VPC_DRIVER=$(BUILD)/vpc-driver /usr/bin/python3 -m pytest -v -p no:cacheprovider tests/vpc
TEST_SUITES += vpc-test
bench: $(BUILD)/vpc-driver
