/* ACPI tables for a hardware-reduced x86-64 guest.
 *
 * Contract: acpi_build() lays out RSDP, XSDT, FADT (HW_REDUCED_ACPI), MADT, MCFG (only
 * with cfg->pci), TPM2 (only with cfg->tpm) and DSDT in buf, which the guest sees at guest-physical address gpa; the
 * RSDP is at offset 0 (so gpa is also the value for boot_params.acpi_rsdp_addr). Every
 * table has a valid checksum and passes `iasl -d`. It returns the number of bytes used,
 * or -1 when buf is too small or the configuration is out of range (ncpus 0 or above
 * ACPI_MAX_CPUS). It touches nothing but buf.
 */
#ifndef NITRO_HV_ACPI_H
#define NITRO_HV_ACPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ACPI_MAX_CPUS 254 /* xAPIC ids 0..253; the I/O APIC takes id 254 */

/* Fixed I/O ports the hypervisor handles for the tables' registers. */
#define ACPI_SLEEP_CTL_PORT 0x600 /* FADT SLEEP_CONTROL_REG: (SLP_TYP << 2) | SLP_EN */
#define ACPI_SLEEP_STS_PORT 0x601 /* FADT SLEEP_STATUS_REG */
#define ACPI_RESET_PORT 0x604     /* FADT RESET_REG, written with ACPI_RESET_VALUE */
#define ACPI_RESET_VALUE 0x01
#define ACPI_SLP_EN (1u << 5)
#define ACPI_S5_TYP 5 /* \_S5 package value: SLP_TYP for soft-off */

#define ACPI_IOAPIC_ADDR 0xfec00000u
#define ACPI_LAPIC_ADDR 0xfee00000u

#define ACPI_COM1_PORT 0x3f8
#define ACPI_COM1_IRQ 4
#define ACPI_PVPANIC_PORT 0x505 /* QEMU0001 device: guest writes 1 on panic */

/* PCIe host bridge (cfg->pci): segment 0, bus 0 only, configured through ECAM; the DSDT
 * has \_SB.PCI0 (PNP0A08) decoding bus 0 and the 32-bit BAR window, and \_SB.MRES
 * (PNP0C02) reserving the ECAM window. No _PRT: devices are to use MSI/MSI-X. */
#define ACPI_PCI_ECAM_BASE 0xe0000000u
#define ACPI_PCI_ECAM_SIZE 0x100000u /* 1 MiB: bus 0 */
#define ACPI_PCI_MMIO_BASE 0xc0000000u
#define ACPI_PCI_MMIO_SIZE 0x20000000u
#define ACPI_PCI_BUS_END 0

/* NitroTPM (cfg->tpm): a TPM2 table (revision 4, start method CRB, control area at
 * tpm_ctrl, event log area tpm_log/tpm_log_len) and \_SB.TPM (MSFT0101) whose _CRS is
 * the CRB range [tpm_base, tpm_base + tpm_size). */
#define ACPI_TPM2_START_CRB 7

struct acpi_config {
	unsigned ncpus; /* 1..ACPI_MAX_CPUS, APIC ids 0..ncpus-1 */
	bool pci;	/* MCFG and the PCI0/MRES devices; false: none of them */
	bool tpm;
	uint32_t tpm_base, tpm_size;
	uint64_t tpm_ctrl;
	uint64_t tpm_log;
	uint32_t tpm_log_len;
};

long acpi_build(uint8_t *buf, size_t len, uint64_t gpa, const struct acpi_config *cfg);

#endif
