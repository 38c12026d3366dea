/* i8042 reset, ACPI power registers, pvpanic, port 0x61. */
#include "hv/platform.h"

#include <string.h>

#include "hv/acpi.h"

#define I8042_DATA 0x60
#define I8042_CMD 0x64
#define I8042_CMD_RESET 0xfe
#define PORT_NMI_SC 0x61
#define PVPANIC_PANICKED 0x01
#define PVPANIC_CRASH_LOADED 0x02

static const struct platform_hooks *hk;

static void i8042_pio(void *opaque, uint16_t port, uint8_t *data, unsigned size, bool write)
{
	(void)opaque;
	if (!write) {
		memset(data, 0, size); /* status 0: input and output buffers empty */
		return;
	}
	if (port == I8042_CMD && data[0] == I8042_CMD_RESET)
		hk->reset("i8042 reset");
}

static void acpi_pio(void *opaque, uint16_t port, uint8_t *data, unsigned size, bool write)
{
	(void)opaque;
	if (!write) {
		memset(data, 0, size);
		return;
	}
	if (port == ACPI_SLEEP_CTL_PORT && (data[0] & ACPI_SLP_EN) &&
	    ((data[0] >> 2) & 7) == ACPI_S5_TYP)
		hk->poweroff();
	else if (port == ACPI_RESET_PORT && data[0] == ACPI_RESET_VALUE)
		hk->reset("ACPI reset");
}

static void pvpanic_pio(void *opaque, uint16_t port, uint8_t *data, unsigned size, bool write)
{
	(void)opaque;
	(void)port;
	if (!write) {
		memset(data, 0, size);
		data[0] = PVPANIC_PANICKED; /* the events this device reports */
		return;
	}
	if (data[0] & PVPANIC_PANICKED)
		hk->panic();
}

static void nmi_sc_pio(void *opaque, uint16_t port, uint8_t *data, unsigned size, bool write)
{
	(void)opaque;
	(void)port;
	if (!write)
		memset(data, 0, size);
}

int platform_register(struct pio_bus *b, const struct platform_hooks *hooks)
{
	hk = hooks;
	if (pio_register(b, I8042_DATA, 1, i8042_pio, NULL) < 0 ||
	    pio_register(b, I8042_CMD, 1, i8042_pio, NULL) < 0 ||
	    pio_register(b, PORT_NMI_SC, 1, nmi_sc_pio, NULL) < 0 ||
	    pio_register(b, ACPI_SLEEP_CTL_PORT, ACPI_RESET_PORT - ACPI_SLEEP_CTL_PORT + 1, acpi_pio,
			 NULL) < 0 ||
	    pio_register(b, ACPI_PVPANIC_PORT, 1, pvpanic_pio, NULL) < 0)
		return -1;
	return 0;
}
