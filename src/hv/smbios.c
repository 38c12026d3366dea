/* SMBIOS tables (contract: smbios.h). Layouts: DMTF DSP0134 3.0. */
#include "hv/smbios.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "boot/config.h"
#include "hv/cpuid.h"
#include "lib/le.h"

#define VENDOR "Amazon EC2"

static bool hex17(const char *id)
{
	if (strncmp(id, "i-", 2) || strlen(id) != 19)
		return false;
	for (int i = 2; i < 19; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
			return false;
	return true;
}

int smbios_uuid(const char *id, char out[37])
{
	if (!hex17(id))
		return -1;
	char hex[33];
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a of the id */
	for (const char *p = id; *p; p++)
		h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
	snprintf(hex, sizeof(hex), "ec2%s%012llx", id + 2,
		 (unsigned long long)(h & 0xffffffffffffull));
	snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
	return 0;
}

/* ---- structures ---- */

struct tbl {
	uint8_t *b;
	size_t len, o;
	bool full;
	uint16_t handle;
};

/* Starts a structure of type t and formatted length flen; returns its bytes (zeroed). */
static uint8_t *st_begin(struct tbl *t, uint8_t type, uint8_t flen)
{
	if (t->full || t->o + flen + 2 > t->len) {
		t->full = true;
		return NULL;
	}
	uint8_t *s = t->b + t->o;
	memset(s, 0, flen);
	s[0] = type;
	s[1] = flen;
	le16_put(s + 2, t->handle++);
	t->o += flen;
	return s;
}

/* Appends the structure's strings (NULL-terminated list; empty strings are not allowed
 * by the spec: "Not Specified" stands in), then the double NUL. */
static void st_strings(struct tbl *t, const char *const *strs)
{
	size_t n = 0;
	for (; strs && strs[n]; n++) {
		const char *s = strs[n][0] ? strs[n] : "Not Specified";
		size_t l = strlen(s) + 1;
		if (t->full || t->o + l + 1 > t->len) {
			t->full = true;
			return;
		}
		memcpy(t->b + t->o, s, l);
		t->o += l;
	}
	if (t->full || t->o + (n ? 1 : 2) > t->len) {
		t->full = true;
		return;
	}
	if (!n)
		t->b[t->o++] = 0;
	t->b[t->o++] = 0;
}

static uint8_t sum8(const uint8_t *p, size_t n)
{
	uint8_t s = 0;
	for (size_t i = 0; i < n; i++)
		s = (uint8_t)(s + p[i]);
	return s;
}

/* The UUID's 16 bytes in SMBIOS 2.6+ order: the first three fields little-endian. */
static void uuid_bytes(const char *u, uint8_t out[16])
{
	uint8_t raw[16];
	for (int i = 0, k = 0; i < 16; k++) {
		if (u[k] == '-')
			continue;
		unsigned v;
		sscanf(u + k, "%2x", &v);
		raw[i++] = (uint8_t)v;
		k++;
	}
	static const int order[16] = {3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15};
	for (int i = 0; i < 16; i++)
		out[i] = raw[order[i]];
}

long smbios_build(uint8_t *ep, uint8_t *table, size_t len, uint64_t table_gpa,
		  const struct smbios_config *c)
{
	if (!c->ncpus || c->ncpus > 254 || !c->mem_mib)
		return -1;
	char deftype[32];
	const char *type = c->instance_type
			       ? c->instance_type
			       : hv_default_instance_type(c->ncpus, c->mem_mib, deftype);
	const char *id = c->instance_id ? c->instance_id : "i-00000000000000000";
	char uuid[37];
	if (strlen(type) > SMBIOS_MAX_STR || !type[0] || smbios_uuid(id, uuid) < 0)
		return -1;
	for (const char *p = type; *p; p++)
		if (*p < 0x21 || *p > 0x7e)
			return -1;
	struct tbl t = {.b = table, .len = len, .o = 0, .handle = 0};

	/* Type 0: BIOS */
	uint8_t *s = st_begin(&t, 0, 0x18);
	if (s) {
		s[4] = 1;		       /* vendor */
		s[5] = 2;		       /* version */
		le16_put(s + 6, 0xe800);       /* start segment */
		s[8] = 3;		       /* release date */
		s[9] = 0;		       /* ROM size: 64 KiB */
		le64_put(s + 0x0a, 1ull << 3); /* characteristics not supported */
		s[0x12] = 0;
		s[0x13] = 1u << 4; /* byte 2: virtual machine */
		s[0x14] = 1;	   /* BIOS 1.0 */
		s[0x15] = 0;
		s[0x16] = 0xff; /* no embedded controller */
		s[0x17] = 0xff;
	}
	st_strings(&t, (const char *const[]){VENDOR, "1.0", "10/16/2017", NULL});

	/* Type 1: system */
	s = st_begin(&t, 1, 0x1b);
	if (s) {
		s[4] = 1; /* manufacturer */
		s[5] = 2; /* product */
		s[6] = 3; /* version */
		s[7] = 4; /* serial */
		uuid_bytes(uuid, s + 8);
		s[0x18] = 6; /* wake-up: power switch */
		s[0x19] = 5; /* SKU */
		s[0x1a] = 6; /* family */
	}
	st_strings(&t, (const char *const[]){VENDOR, type, "", uuid, "", "", NULL});

	/* Type 2: baseboard. As on EC2, its asset tag is the instance id (what nitro-cli and
	 * nitro-enclave read from /sys/devices/virtual/dmi/id/board_asset_tag). */
	s = st_begin(&t, 2, 0x0f);
	if (s) {
		s[4] = 1;		      /* manufacturer */
		s[5] = 2;		      /* product */
		s[6] = 2;		      /* version */
		s[7] = 2;		      /* serial */
		s[8] = 3;		      /* asset tag */
		s[9] = 0x01;		      /* a hosting board */
		s[0x0a] = 2;		      /* location in chassis */
		le16_put(s + 0x0b, t.handle); /* the chassis: the next structure */
		s[0x0d] = 0x0a;		      /* motherboard */
		s[0x0e] = 0;		      /* no contained objects */
	}
	st_strings(&t, (const char *const[]){VENDOR, "", id, NULL});

	/* Type 3: chassis */
	s = st_begin(&t, 3, 0x15);
	if (s) {
		s[4] = 1;		  /* manufacturer */
		s[5] = 0x01;		  /* type: other */
		s[6] = 2;		  /* version */
		s[7] = 3;		  /* serial */
		s[8] = 4;		  /* asset tag */
		s[9] = s[10] = s[11] = 3; /* boot-up, power, thermal: safe */
		s[12] = 2;		  /* security: unknown */
	}
	st_strings(&t, (const char *const[]){VENDOR, "", "", VENDOR, NULL});

	/* Type 4: one processor, the package of cpu_topo_of (EC2's: "CPU 0", its cores and
	 * threads), as the CPUID leaves and the MADT describe it */
	struct cpu_topo topo;
	cpu_topo_of(&topo, c->ncpus);
	s = st_begin(&t, 4, 0x2a);
	if (s) {
		s[4] = 1;		    /* socket designation */
		s[5] = 3;		    /* central processor */
		s[6] = 0xfe;		    /* family: see family 2 */
		s[7] = 2;		    /* manufacturer */
		s[0x10] = 3;		    /* version */
		s[0x11] = 0;		    /* voltage: unknown */
		le16_put(s + 0x12, 0);	    /* external clock unknown */
		le16_put(s + 0x14, 0);	    /* max speed unknown */
		le16_put(s + 0x16, 0);	    /* current speed unknown */
		s[0x18] = 0x41;		    /* populated, enabled */
		s[0x19] = 0x01;		    /* upgrade: other */
		le16_put(s + 0x1a, 0xffff); /* no cache structures */
		le16_put(s + 0x1c, 0xffff);
		le16_put(s + 0x1e, 0xffff);
		s[0x23] = s[0x24] = (uint8_t)topo.cores; /* cores, enabled */
		s[0x25] = (uint8_t)topo.ncpus;		 /* threads */
		/* 64-bit capable; multi-core; hardware threads */
		le16_put(s + 0x26, 1u << 2 | (topo.cores > 1 ? 1u << 3 : 0) |
				       (topo.threads_per_core > 1 ? 1u << 4 : 0));
		le16_put(s + 0x28, 0x01); /* family 2: other */
	}
	st_strings(&t, (const char *const[]){"CPU 0", VENDOR, "", NULL});

	/* Type 16: the memory array (type 17 points at it) */
	uint16_t array = t.handle;
	s = st_begin(&t, 16, 0x17);
	if (s) {
		s[4] = 0x03;			       /* location: system board */
		s[5] = 0x03;			       /* use: system memory */
		s[6] = 0x03;			       /* no error correction */
		le32_put(s + 7, 0x80000000u);	       /* max capacity: see the extended field */
		le16_put(s + 0x0b, 0xfffe);	       /* no error information */
		le16_put(s + 0x0d, 1);		       /* one device */
		le64_put(s + 0x0f, c->mem_mib * 1024); /* extended max capacity, bytes/1K */
	}
	st_strings(&t, NULL);

	/* Type 17: one memory device of the whole RAM */
	s = st_begin(&t, 17, 0x28);
	if (s) {
		le16_put(s + 4, array);
		le16_put(s + 6, 0xfffe);
		le16_put(s + 8, 0xffff);    /* total width unknown */
		le16_put(s + 0x0a, 0xffff); /* data width unknown */
		if (c->mem_mib < 0x7fff) {
			le16_put(s + 0x0c, (uint16_t)c->mem_mib);
		} else {
			le16_put(s + 0x0c, 0x7fff);
			le32_put(s + 0x1c, (uint32_t)c->mem_mib); /* extended size, MiB */
		}
		s[0x0e] = 0x09;		     /* form factor: DIMM */
		s[0x10] = 1;		     /* device locator */
		s[0x11] = 2;		     /* bank locator */
		s[0x12] = 0x07;		     /* type: RAM */
		le16_put(s + 0x13, 1u << 1); /* type detail: other */
		s[0x17] = 3;		     /* manufacturer */
	}
	st_strings(&t, (const char *const[]){"DIMM 0", "", VENDOR, NULL});

	/* Type 127: end of table */
	st_begin(&t, 127, 4);
	st_strings(&t, NULL);
	if (t.full)
		return -1;

	/* The 64-bit entry point */
	uint8_t *e = ep;
	memset(e, 0, SMBIOS_EP_LEN);
	memcpy(e, "_SM3_", 5);
	e[6] = 0x18; /* length */
	e[7] = 3;    /* SMBIOS 3.0.0 */
	e[8] = 0;
	e[9] = 0;
	e[10] = 1;			 /* entry point revision */
	le32_put(e + 12, (uint32_t)t.o); /* structure table maximum size */
	le64_put(e + 16, table_gpa);
	e[5] = (uint8_t)(0x100 - sum8(e, 0x18));
	return (long)t.o;
}
