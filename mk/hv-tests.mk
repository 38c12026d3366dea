# Guest-side helpers for the system tests (static: the guest image has no libc).
$(BUILD)/guest/hostile-vq: tests/system/hostile_vq.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -static -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE $< -o $@

system-test: $(BUILD)/guest/hostile-vq
