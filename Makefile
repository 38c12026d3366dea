# nitro: `make` builds build/nitro and build/nitro-hv; `make run` and `make test` also
# install what is missing (tools/deps.sh) and fetch the guest image (build/nitro images).
CC      ?= gcc
BUILD   ?= build
CFLAGS  ?= -O2 -g
override CFLAGS += -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -Isrc -MMD -MP
LDFLAGS ?=
SAN_FLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

LIB_SRC = $(wildcard src/lib/*.c)
HV_SRC  = $(filter-out src/hv/main.c,$(wildcard src/hv/*.c))
BOOT_SRC = $(wildcard src/boot/*.c)
CLI_SRC = $(wildcard src/cli/*.c)
CARDLIB_SRC = $(wildcard src/cards/lib/*.c)
obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

DRIVER_SRC = $(wildcard tests/driver/*.c)
UNIT_TESTS = $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))

.PHONY: all deps images run test unit unit-asan cli-test driver-test fuzz system-test emuhost-test bench clean format ebs-test
all: $(BUILD)/nitro $(BUILD)/nitro-hv

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/nitro-hv: $(call obj,src/hv/main.c $(HV_SRC) $(BOOT_SRC) $(LIB_SRC))
	$(CC) $(CFLAGS) $^ -o $@ $(LDFLAGS) -lpthread -lzstd

$(BUILD)/nitro: $(call obj,$(CLI_SRC) $(BOOT_SRC) $(LIB_SRC))
	$(CC) $(CFLAGS) $^ -o $@ $(LDFLAGS) -lpthread -lzstd

$(BUILD)/tests/%: $(call obj,tests/unit/%.c $(HV_SRC) $(BOOT_SRC) $(CARDLIB_SRC) $(LIB_SRC))
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $^ -o $@ $(LDFLAGS) -lcmocka -lpthread -lzstd

# The vhost-user-blk frontend test driver (plays the guest against any card).
$(BUILD)/vu-blk-driver: $(call obj,$(DRIVER_SRC) $(LIB_SRC))
	$(CC) $(CFLAGS) $^ -o $@ $(LDFLAGS) -lpthread

deps:
	@sh tools/deps.sh

images: $(BUILD)/nitro
	@$(BUILD)/nitro images

run: deps all images
	$(BUILD)/nitro run


unit-asan:
	@$(MAKE) --no-print-directory BUILD=build/asan CFLAGS="-O1 -g $(SAN_FLAGS)" LDFLAGS="$(SAN_FLAGS)" unit all

cli-test: all
	/usr/bin/python3 -m pytest -q tests/cli

driver-test: $(BUILD)/vu-blk-driver
	VU_BLK_DRIVER=$(BUILD)/vu-blk-driver /usr/bin/python3 -m pytest -v -p no:cacheprovider tests/driver

fuzz:
	FUZZ_SECONDS=$${FUZZ_SECONDS:-5} sh tests/fuzz/run.sh

system-test: all images
	$(BUILD)/nitro emuhost --memory 6144 -- /usr/bin/python3 -m pytest -v -p no:cacheprovider tests/system

emuhost-test: all images
	/usr/bin/python3 -m pytest -v -p no:cacheprovider tests/emuhost

# Every suite `make test` runs; a component's mk/NAME.mk appends its own.
TEST_SUITES = unit unit-asan cli-test driver-test fuzz system-test emuhost-test ebs-test

test: deps all images
	@$(MAKE) --no-print-directory $(TEST_SUITES)

bench: deps all images $(BUILD)/vu-blk-driver
	sh bench/run.sh

format:
	clang-format -i $$(find src tests -name '*.[ch]')

clean:
	rm -rf build

# Components (cards, controller, ...) each keep their build rules in mk/NAME.mk.
include $(wildcard mk/*.mk)

# After the components: their unit tests are prerequisites too.
unit: $(UNIT_TESTS)
	@set -e; for t in $(UNIT_TESTS); do echo "== $$t"; $$t; done

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
