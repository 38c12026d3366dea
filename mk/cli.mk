# nitro, the command line (src/cli): `nitro run` (the guest in the foreground, with its
# cards), images, volumes, net stats, the emulated host, and nitrod's API client (libcurl
# over the Unix socket, jansson). It shares src/boot (the hypervisor's command line and
# checks), src/volume, src/vpcmap and src/launch (the launch plan nitrod uses too), and for
# --tpm the TPM card's client (src/tpm) and the security chip's EK CA, and for `nitro eif`
# and `nitro enclave` the enclave formats (src/enclave, libcbor); it does not link the
# hypervisor.
CLI_LIBS = -lcurl -ljansson -lcrypto -lpthread -lzstd -lcbor
all: $(BUILD)/nitro
$(BUILD)/nitro: $(call objs,cli boot volume snapshot vpcmap launch lib enclave) \
	$(call objs,endorse) \
	$(call obj,src/tpm/client.c src/tpm/proto.c src/tpm/tpm2.c src/securitychip/ekca.c)
	$(CC) $(CFLAGS) $^ -o $@ $(LDFLAGS) $(CLI_LIBS)

.PHONY: cli-test emuhost-test
cli-test: all
	/usr/bin/python3 -m pytest -q tests/cli
emuhost-test: all images
	/usr/bin/python3 -m pytest -v -p no:cacheprovider tests/emuhost
TEST_SUITES += cli-test emuhost-test
