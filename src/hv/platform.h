/* The legacy platform ports besides the UART: i8042 (reset through 0xfe to port 0x64,
 * the `reboot=k` path), the ACPI sleep-control, sleep-status and reset registers of
 * the hardware-reduced FADT, the pvpanic port, and port 0x61 (no NMI sources).
 * Guest requests become calls of the hooks below.
 */
#ifndef NITRO_HV_PLATFORM_H
#define NITRO_HV_PLATFORM_H

#include "hv/pio.h"

struct platform_hooks {
	void (*poweroff)(void);
	void (*reset)(const char *how);
	void (*panic)(void);
};

int platform_register(struct pio_bus *b, const struct platform_hooks *hooks);

#endif
