# nitro: `make` builds build/nitro, build/nitro-hv, nitrod and the cards; `make run` and
# `make test` also install what is missing (tools/deps.sh) and fetch the guest image
# (build/nitro images).
#
# This file holds what is generic: flags, the pattern rules, and the targets that span
# every part. Each part (a folder under src/) keeps its build rules and its tests in
# mk/PART.mk. A part names what it links by folder ($(call objs,lib boot)), never by
# another mk file's variables, so the mk files may be read in any order; they add to
# `all`, UNIT_TESTS and TEST_SUITES, which are used only below the include.
CC      ?= gcc
BUILD   ?= build
CFLAGS  ?= -O2 -g
override CFLAGS += -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -Isrc -MMD -MP
LDFLAGS ?=
SAN_FLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

# The object files of source files, and of every source file of folders under src/.
obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
objs = $(call obj,$(foreach d,$(1),$(wildcard src/$(d)/*.c)))
# The objects of the unit tests' shared helpers, tests/unit/testlib/NAME.c, by name
# ($(call testlib,fds tmpdir)).
testlib = $(call obj,$(foreach f,$(1),tests/unit/testlib/$(f).c))

.PHONY: all deps test-deps bench-deps images run test unit unit-asan fuzz bench clean format
all:

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# cmocka unit tests: tests/unit/PART/test_X.c becomes $(BUILD)/tests/PART/test_X; the
# part's mk file adds the objects it links and their libraries (LDFLAGS).
$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $^ -o $@ $(LDFLAGS) -lcmocka

# Every suite `make test` runs; a part's mk file appends its own.
TEST_SUITES = unit unit-asan fuzz
UNIT_TESTS =

include $(wildcard mk/*.mk)

unit: $(UNIT_TESTS)
	@set -e; for t in $(UNIT_TESTS); do echo "== $$t"; $$t; done

unit-asan:
	@$(MAKE) --no-print-directory BUILD=build/asan CFLAGS="-O1 -g $(SAN_FLAGS)" LDFLAGS="$(SAN_FLAGS)" unit all

# The libFuzzer targets (tests/fuzz/fuzz_*.c; run.sh names what each links).
fuzz:
	FUZZ_SECONDS=$${FUZZ_SECONDS:-5} sh tests/fuzz/run.sh

deps:
	@sh tools/deps.sh

# What only the test suites need (tools/deps.d/*.test.list) on top of deps.
test-deps:
	@NITRO_DEPS_TESTS=1 sh tools/deps.sh

images: $(BUILD)/nitro
	@$(BUILD)/nitro images

run: deps all images
	$(BUILD)/nitro run

# The benchmark peers (tools/deps.d/*.bench.list) and what the tests need.
bench-deps:
	@NITRO_DEPS_TESTS=1 NITRO_DEPS_BENCH=1 sh tools/deps.sh

test: test-deps all images
	@$(MAKE) --no-print-directory $(TEST_SUITES)

bench: bench-deps all images
	sh bench/run.sh

format:
	clang-format -i $$(find src tests -name '*.[ch]')

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
