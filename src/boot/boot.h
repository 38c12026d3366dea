/* The x86-64 Linux boot protocol (Documentation/arch/x86/boot.rst), 64-bit entry.
 *
 * bzimage_parse() checks a bzImage's setup header (0xAA55, "HdrS", protocol >= 2.12,
 * 64-bit entry) and records what the loader needs; every offset and length it keeps lies
 * inside the file. boot_plan() places command line, kernel and initrd in guest RAM and
 * refuses what does not fit. boot_write() then writes the zero page (boot_params with the
 * e820 map), the command line, the GDT and identity page tables into guest memory.
 * Errors are written to err as one line naming the reason.
 */
#ifndef NITRO_BOOT_BOOT_H
#define NITRO_BOOT_BOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "boot/memory.h"

/* Fixed guest-physical layout below 1 MiB. */
#define BOOT_GDT 0x500
#define BOOT_ZERO_PAGE 0x7000
#define BOOT_STACK 0x8ff0
#define BOOT_PML4 0x9000
#define BOOT_PDPT 0xa000
#define BOOT_PD 0xb000 /* 4 pages: identity map of the first 4 GiB with 2 MiB pages */
#define BOOT_CMDLINE 0x20000
#define BOOT_ACPI 0xe0000 /* ACPI tables, up to BOOT_ACPI_END */
#define BOOT_ACPI_END 0x100000
/* With a TPM, the ACPI tables end at BOOT_TPM_LOG and the TPM event log takes the rest of
 * the reserved range (the kernel maps the log as I/O memory: it must not be RAM). */
#define BOOT_TPM_LOG 0xf0000
#define BOOT_TPM_LOG_SIZE (BOOT_SMBIOS_EP - BOOT_TPM_LOG)
/* The SMBIOS 3 entry point (src/hv/smbios.h): the last 32 bytes of 0xF0000..0xFFFFF that
 * Linux scans for it; its structure table follows the ACPI tables. */
#define BOOT_SMBIOS_EP 0xfffe0
#define BOOT_EBDA 0x9fc00
#define BOOT_HIGH 0x100000 /* protected-mode kernel of a bzImage */

#define E820_RAM 1
#define E820_RESERVED 2
#define E820_MAX 128

struct e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
} __attribute__((packed));

struct bzimage {
	const uint8_t *bz_data; /* the whole file */
	size_t bz_len;
	size_t bz_hdr_end;  /* end of the setup header in the file (exclusive) */
	size_t bz_pm_off;   /* protected-mode kernel: offset and length in the file */
	size_t bz_pm_len;
	uint16_t bz_version;
	uint32_t bz_cmdline_max;  /* longest command line, bytes without the NUL */
	uint32_t bz_initrd_max;   /* highest address an initrd byte may have */
	uint64_t bz_pref_address; /* where the kernel runs (decompressed) */
	uint32_t bz_init_size;    /* memory the kernel needs from bz_pref_address */
	size_t bz_payload_off;    /* compressed vmlinux: offset and length in the file */
	size_t bz_payload_len;
	bool bz_above_4g; /* XLF_CAN_BE_LOADED_ABOVE_4G */
};

struct boot_plan {
	uint64_t bp_entry;      /* 64-bit entry point */
	uint64_t bp_kernel;     /* guest range the kernel occupies while it boots */
	uint64_t bp_kernel_end;
	uint64_t bp_initrd;     /* 0 when there is none */
	uint64_t bp_initrd_size;
	uint64_t bp_rsdp;       /* 0 when there are no ACPI tables */
};

int bzimage_parse(const uint8_t *data, size_t len, struct bzimage *bz, char *err, size_t errlen);

/* Fills bp (entry, kernel range from the image type) and places an initrd of initrd_size
 * bytes (0 for none) as high as the image allows, above the kernel. kernel_end is where
 * the kernel's own memory ends. */
int boot_plan(const struct bzimage *bz, const struct guest_mem *m, uint64_t entry,
	      uint64_t kernel_start, uint64_t kernel_end, uint64_t initrd_size,
	      struct boot_plan *bp, char *err, size_t errlen);

/* The e820 map for a memory layout; returns the number of entries. */
unsigned e820_build(const struct guest_mem *m, struct e820_entry *out, unsigned max);

/* Checks the command line against the image's limit. */
int boot_check_cmdline(const struct bzimage *bz, const char *cmdline, char *err, size_t errlen);

/* Writes zero page, command line, GDT and page tables into guest memory. */
int boot_write(const struct guest_mem *m, const struct bzimage *bz, const struct boot_plan *bp,
	       const char *cmdline, char *err, size_t errlen);

#endif
