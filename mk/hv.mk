# nitro-hv, the hypervisor (src/hv): KVM vCPUs, PCI, serial, ACPI and the vhost-user
# frontend of the cards. It loads the kernel with src/boot and jails itself with
# src/sandbox; an enclave's nitro-hv reads its EIF with src/enclave.
HV_LIBS = -lseccomp -lpthread -lzstd -lcrypto -lcbor
all: $(BUILD)/nitro-hv $(BUILD)/nitro-hv.sig
$(BUILD)/nitro-hv: $(call objs,hv boot lib sandbox tpm enclave)
	$(CC) $(CFLAGS) $^ -o $@ $(LDFLAGS) $(HV_LIBS)

# cmocka tests of the devices and the VM (tests/unit/hv): the hypervisor without its main.
HV_UNIT = $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/hv/test_*.c))
UNIT_TESTS += $(HV_UNIT)
$(HV_UNIT): $(filter-out %/hv/main.o,$(call objs,hv)) $(call objs,boot lib tpm enclave sandbox)
$(HV_UNIT): override LDFLAGS += -lpthread -lzstd -lcrypto -lcbor -lseccomp
