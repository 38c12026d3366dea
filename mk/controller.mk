# nitrod, the controller daemon (issue 5): the HTTP+JSON API on a Unix socket, state in
# SQLite, supervision of nitro-hv and the cards through the jailer, measured launches.
# It links the security engineer's libraries: the chip, the audit log and the jailer
# (listed here: mk/securitychip.mk is read after this file).
CTL_SRC = $(addprefix src/controller/,main.c ctl.c http.c api.c spec.c store.c records.c supervise.c proc.c kcache.c)
# nitrod decompresses measured kernels with the hypervisor's own loader (kcache.h).
CTL_SRC += src/boot/kernel.c src/boot/boot.c src/boot/memory.c src/boot/config.c
CTL_SRC += src/securitychip/chip.c src/securitychip/attest.c src/controller/audit.c
CTL_SRC += src/controller/jailer.c src/controller/jail_elf.c
CTL_LIBS = -lmicrohttpd -ljansson -lsqlite3 -lcrypto -lzstd -lpthread
all: $(BUILD)/nitrod
# The chip hashes nitrod's whole file at every start (SHA-384): its debug information goes
# to nitrod.debug (found by gdb through the .gnu_debuglink section), as Debian packages do.
$(BUILD)/nitrod: $(call obj,$(CTL_SRC) src/volume/volume.c src/volume/xts.c $(LIB_SRC))
	$(CC) $(CFLAGS) $^ -o $@.full $(LDFLAGS) $(CTL_LIBS)
	objcopy --only-keep-debug $@.full $@.debug
	objcopy --strip-debug --add-gnu-debuglink=$@.debug $@.full $@
	rm -f $@.full

# The CLI's client side (src/cli/client*.c): libcurl over the Unix socket, jansson.
$(BUILD)/nitro: override LDFLAGS += -lcurl -ljansson

.PHONY: api-test controller-system-test
api-test: all
	/usr/bin/python3 -m pytest -v -p no:cacheprovider tests/api
TEST_SUITES += api-test
controller-system-test: all images
	$(BUILD)/nitro emuhost --memory 6144 -- /usr/bin/python3 -m pytest -v -p no:cacheprovider tests/system/test_controller.py

# API latency under concurrent clients (bench/api.py).
$(BUILD)/nitrod-loadgen: tests/api/loadgen.c
	$(CC) $(CFLAGS) $< -o $@ $(LDFLAGS) -lpthread
bench: $(BUILD)/nitrod-loadgen
