/* SMBIOS tables: what /sys/class/dmi/id and cloud-init's ds-identify read to know the
 * guest is on EC2.
 *
 * Contract: smbios_build() writes a SMBIOS 3.0 64-bit entry point ("_SM3_", SMBIOS_EP_LEN
 * bytes at ep; nitro-hv puts it at BOOT_SMBIOS_EP, which Linux without EFI finds by
 * scanning 0xF0000..0xFFFFF on 16-byte boundaries) and the structure table at table (len
 * bytes, which the guest sees at table_gpa, named by the entry point; nitro-hv puts it
 * after the ACPI tables): types 0 (BIOS), 1 (system), 3 (chassis), 4 (one processor: the
 * package of cpu_topo_of, its cores and threads), 16 and 17 (the memory), 127 (end). Manufacturer,
 * BIOS vendor and asset tag "Amazon EC2"; product name the instance type; system UUID and serial
 * the same "ec2..." UUID (serial in lower case, as EC2 does). Returns the table's length, or -1
 * (nothing written) when len is too small or a field is out of range. It touches nothing but ep and
 * table.
 */
#ifndef NITRO_HV_SMBIOS_H
#define NITRO_HV_SMBIOS_H

#include <stddef.h>
#include <stdint.h>

#define SMBIOS_EP_LEN 0x18 /* the 64-bit entry point */
#define SMBIOS_MAX_STR 64  /* instance type and ids */

struct smbios_config {
	unsigned ncpus;		   /* 1..254 */
	uint64_t mem_mib;	   /* guest RAM */
	const char *instance_type; /* NULL: hv_default_instance_type(ncpus, mem_mib) */
	const char *instance_id;   /* "i-" + 17 hex; NULL: "i-0000000000000000" + 0 */
};

/* The system UUID string for an instance id: "ec2" + its 17 hex digits + 12 more from a
 * hash of the id, as 8-4-4-4-12 lower-case hex. out needs 37 bytes. -1 for a bad id. */
int smbios_uuid(const char *instance_id, char out[37]);

long smbios_build(uint8_t *ep, uint8_t *table, size_t len, uint64_t table_gpa,
		  const struct smbios_config *cfg);

#endif
