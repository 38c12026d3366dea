/* ACPI tables for a hardware-reduced x86-64 guest: RSDP, XSDT, FADT, MADT, MCFG (with
 * cfg->pci) and DSDT, laid out in that order, each 16-byte aligned, in a caller buffer
 * (see acpi.h).
 *
 * Tables are packed structs filled on the stack and copied into buf; all multi-byte
 * fields are little-endian, as is every host nitro runs on (x86-64).
 */
#include "hv/acpi.h"

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "hv/aml.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "ACPI tables are little-endian");

#define ACPI_OEM_ID "NITRO "
#define ACPI_OEM_TABLE_ID "NITROHV "
#define ACPI_CREATOR_ID "NITR"
#define ACPI_OEM_REVISION 1
#define ACPI_CREATOR_REVISION 1
#define ACPI_HV_VENDOR_ID "NITROHV" /* FADT Hypervisor Vendor Identity, NUL-padded */
#define ACPI_TABLE_ALIGN 16

#define FADT_REVISION 6
#define FADT_MINOR_REVISION 3
#define FADT_F_RESET_REG_SUP (1u << 10)
#define FADT_F_HW_REDUCED_ACPI (1u << 20)
#define FADT_BOOT_VGA_NOT_PRESENT (1u << 2)
#define FADT_BOOT_CMOS_RTC_NOT_PRESENT (1u << 5)

#define MADT_REVISION 5
#define MADT_PCAT_COMPAT 1u
#define MADT_LAPIC_ENABLED 1u
#define MADT_ALL_PROCESSORS 0xff
#define MADT_LINT1 1

#define DSDT_REVISION 2 /* 2 and up: 64-bit AML integers */
#define XSDT_REVISION 1
#define XSDT_MAX_ENTRIES 4 /* FADT, MADT, MCFG, TPM2 */
#define TPM2_REVISION 4 /* with the log area fields (LAML, LASA) */
#define MCFG_REVISION 1
#define RSDP_REVISION 2

#define GAS_SYSTEM_IO 1
#define GAS_ACCESS_BYTE 1

enum { MADT_LAPIC = 0, MADT_IOAPIC = 1, MADT_ISO = 2, MADT_LAPIC_NMI = 4 };

struct __attribute__((packed)) acpi_rsdp {
	char signature[8];
	uint8_t checksum; /* over the first 20 bytes (the ACPI 1.0 part) */
	char oem_id[6];
	uint8_t revision;
	uint32_t rsdt_address;
	uint32_t length;
	uint64_t xsdt_address;
	uint8_t ext_checksum; /* over all 36 bytes */
	uint8_t reserved[3];
};
_Static_assert(sizeof(struct acpi_rsdp) == 36, "RSDP size");

#define RSDP_V1_LEN 20

struct __attribute__((packed)) acpi_header {
	char signature[4];
	uint32_t length;
	uint8_t revision;
	uint8_t checksum;
	char oem_id[6];
	char oem_table_id[8];
	uint32_t oem_revision;
	char creator_id[4];
	uint32_t creator_revision;
};
_Static_assert(sizeof(struct acpi_header) == 36, "SDT header size");

struct __attribute__((packed)) acpi_gas {
	uint8_t space_id;
	uint8_t bit_width;
	uint8_t bit_offset;
	uint8_t access_size;
	uint64_t address;
};
_Static_assert(sizeof(struct acpi_gas) == 12, "GAS size");

struct __attribute__((packed)) acpi_xsdt {
	struct acpi_header h;
	uint64_t entry[XSDT_MAX_ENTRIES]; /* FADT, MADT, [MCFG]; the length says how many */
};

/* MCFG with one ECAM allocation (PCI Firmware Specification 3.x, 4.1.2). */
struct __attribute__((packed)) acpi_mcfg {
	struct acpi_header h;
	uint8_t reserved[8];
	uint64_t base;
	uint16_t segment;
	uint8_t start_bus;
	uint8_t end_bus;
	uint32_t reserved1;
};
_Static_assert(sizeof(struct acpi_mcfg) == 60, "MCFG size");

struct __attribute__((packed)) acpi_fadt {
	struct acpi_header h;
	uint32_t firmware_ctrl;
	uint32_t dsdt;
	uint8_t reserved0;
	uint8_t preferred_pm_profile;
	uint16_t sci_int;
	uint32_t smi_cmd;
	uint8_t acpi_enable;
	uint8_t acpi_disable;
	uint8_t s4bios_req;
	uint8_t pstate_cnt;
	uint32_t pm1a_evt_blk;
	uint32_t pm1b_evt_blk;
	uint32_t pm1a_cnt_blk;
	uint32_t pm1b_cnt_blk;
	uint32_t pm2_cnt_blk;
	uint32_t pm_tmr_blk;
	uint32_t gpe0_blk;
	uint32_t gpe1_blk;
	uint8_t pm1_evt_len;
	uint8_t pm1_cnt_len;
	uint8_t pm2_cnt_len;
	uint8_t pm_tmr_len;
	uint8_t gpe0_blk_len;
	uint8_t gpe1_blk_len;
	uint8_t gpe1_base;
	uint8_t cst_cnt;
	uint16_t p_lvl2_lat;
	uint16_t p_lvl3_lat;
	uint16_t flush_size;
	uint16_t flush_stride;
	uint8_t duty_offset;
	uint8_t duty_width;
	uint8_t day_alrm;
	uint8_t mon_alrm;
	uint8_t century;
	uint16_t iapc_boot_arch;
	uint8_t reserved1;
	uint32_t flags;
	struct acpi_gas reset_reg;
	uint8_t reset_value;
	uint16_t arm_boot_arch;
	uint8_t minor_revision;
	uint64_t x_firmware_ctrl;
	uint64_t x_dsdt;
	struct acpi_gas x_pm1a_evt_blk;
	struct acpi_gas x_pm1b_evt_blk;
	struct acpi_gas x_pm1a_cnt_blk;
	struct acpi_gas x_pm1b_cnt_blk;
	struct acpi_gas x_pm2_cnt_blk;
	struct acpi_gas x_pm_tmr_blk;
	struct acpi_gas x_gpe0_blk;
	struct acpi_gas x_gpe1_blk;
	struct acpi_gas sleep_control_reg;
	struct acpi_gas sleep_status_reg;
	char hypervisor_vendor_id[8];
};
_Static_assert(sizeof(struct acpi_fadt) == 276, "FADT size");
_Static_assert(offsetof(struct acpi_fadt, flags) == 112, "FADT flags offset");
_Static_assert(offsetof(struct acpi_fadt, reset_reg) == 116, "FADT RESET_REG offset");
_Static_assert(offsetof(struct acpi_fadt, x_dsdt) == 140, "FADT X_DSDT offset");
_Static_assert(offsetof(struct acpi_fadt, sleep_control_reg) == 244, "FADT sleep ctl offset");
_Static_assert(offsetof(struct acpi_fadt, hypervisor_vendor_id) == 268, "FADT HV id offset");

struct __attribute__((packed)) acpi_madt {
	struct acpi_header h;
	uint32_t lapic_addr;
	uint32_t flags;
};

struct __attribute__((packed)) madt_lapic {
	uint8_t type, length;
	uint8_t uid;
	uint8_t apic_id;
	uint32_t flags;
};

struct __attribute__((packed)) madt_ioapic {
	uint8_t type, length;
	uint8_t id;
	uint8_t reserved;
	uint32_t address;
	uint32_t gsi_base;
};

struct __attribute__((packed)) madt_iso {
	uint8_t type, length;
	uint8_t bus;
	uint8_t source;
	uint32_t gsi;
	uint16_t flags;
};

struct __attribute__((packed)) madt_lapic_nmi {
	uint8_t type, length;
	uint8_t uid;
	uint16_t flags;
	uint8_t lint;
};
_Static_assert(sizeof(struct madt_lapic) == 8 && sizeof(struct madt_ioapic) == 12 &&
		   sizeof(struct madt_iso) == 10 && sizeof(struct madt_lapic_nmi) == 6,
	       "MADT entry sizes");

/* TCG ACPI Specification, TPM2 table revision 4: start-method parameters (12 bytes for
 * CRB: none), then LAML at 64 and LASA at 68. */
struct __attribute__((packed)) acpi_tpm2 {
	struct acpi_header h;
	uint16_t platform_class; /* 0: client */
	uint16_t reserved;
	uint64_t control_address;
	uint32_t start_method;
	uint8_t start_method_params[12];
	uint32_t laml;
	uint64_t lasa;
};
_Static_assert(sizeof(struct acpi_tpm2) == 76 && offsetof(struct acpi_tpm2, laml) == 64 &&
		   offsetof(struct acpi_tpm2, lasa) == 68,
	       "TPM2 table layout");

/* Where each table goes, as offsets into buf (the guest sees buf at gpa). */
struct acpi_layout {
	uint8_t *buf;
	uint64_t gpa;
	size_t xsdt, fadt, madt, mcfg, tpm2, dsdt; /* mcfg, tpm2: 0 when absent */
};

static size_t align_up(size_t x)
{
	return (x + ACPI_TABLE_ALIGN - 1) & ~(size_t)(ACPI_TABLE_ALIGN - 1);
}

static uint8_t checksum(const uint8_t *p, size_t n)
{
	uint8_t sum = 0;

	for (size_t i = 0; i < n; i++)
		sum = (uint8_t)(sum + p[i]);
	return (uint8_t)-sum;
}

static void header_init(struct acpi_header *h, const char *sig, uint32_t length, uint8_t revision)
{
	memset(h, 0, sizeof(*h));
	memcpy(h->signature, sig, sizeof(h->signature));
	h->length = length;
	h->revision = revision;
	memcpy(h->oem_id, ACPI_OEM_ID, sizeof(h->oem_id));
	memcpy(h->oem_table_id, ACPI_OEM_TABLE_ID, sizeof(h->oem_table_id));
	h->oem_revision = ACPI_OEM_REVISION;
	memcpy(h->creator_id, ACPI_CREATOR_ID, sizeof(h->creator_id));
	h->creator_revision = ACPI_CREATOR_REVISION;
}

/* Sets the checksum byte of the table at p, whose header holds its length. */
static void table_checksum(uint8_t *p)
{
	struct acpi_header h;

	memcpy(&h, p, sizeof(h));
	p[offsetof(struct acpi_header, checksum)] = 0;
	p[offsetof(struct acpi_header, checksum)] = checksum(p, h.length);
}

static struct acpi_gas gas_io8(uint16_t port)
{
	return (struct acpi_gas){
	    .space_id = GAS_SYSTEM_IO,
	    .bit_width = 8,
	    .bit_offset = 0,
	    .access_size = GAS_ACCESS_BYTE,
	    .address = port,
	};
}

static void build_rsdp(const struct acpi_layout *l)
{
	struct acpi_rsdp r;

	memset(&r, 0, sizeof(r));
	memcpy(r.signature, "RSD PTR ", sizeof(r.signature));
	memcpy(r.oem_id, ACPI_OEM_ID, sizeof(r.oem_id));
	r.revision = RSDP_REVISION;
	r.rsdt_address = 0;
	r.length = sizeof(r);
	r.xsdt_address = l->gpa + l->xsdt;
	r.checksum = checksum((const uint8_t *)&r, RSDP_V1_LEN);
	r.ext_checksum = checksum((const uint8_t *)&r, sizeof(r));
	memcpy(l->buf, &r, sizeof(r));
}

static size_t xsdt_size(bool pci, bool tpm)
{
	return sizeof(struct acpi_header) + (2u + pci + tpm) * sizeof(uint64_t);
}

static void build_xsdt(const struct acpi_layout *l)
{
	size_t len = xsdt_size(l->mcfg != 0, l->tpm2 != 0);
	struct acpi_xsdt x;
	unsigned n = 0;

	memset(&x, 0, sizeof(x));
	header_init(&x.h, "XSDT", (uint32_t)len, XSDT_REVISION);
	x.entry[n++] = l->gpa + l->fadt;
	x.entry[n++] = l->gpa + l->madt;
	if (l->mcfg)
		x.entry[n++] = l->gpa + l->mcfg;
	if (l->tpm2)
		x.entry[n++] = l->gpa + l->tpm2;
	memcpy(l->buf + l->xsdt, &x, len);
	table_checksum(l->buf + l->xsdt);
}

static void build_mcfg(const struct acpi_layout *l)
{
	struct acpi_mcfg m;

	memset(&m, 0, sizeof(m));
	header_init(&m.h, "MCFG", sizeof(m), MCFG_REVISION);
	m.base = ACPI_PCI_ECAM_BASE;
	m.segment = 0;
	m.start_bus = 0;
	m.end_bus = ACPI_PCI_BUS_END;
	memcpy(l->buf + l->mcfg, &m, sizeof(m));
	table_checksum(l->buf + l->mcfg);
}

static void build_tpm2(const struct acpi_layout *l, const struct acpi_config *cfg)
{
	struct acpi_tpm2 t;

	memset(&t, 0, sizeof(t));
	header_init(&t.h, "TPM2", sizeof(t), TPM2_REVISION);
	t.platform_class = 0;
	t.control_address = cfg->tpm_ctrl;
	t.start_method = ACPI_TPM2_START_CRB;
	t.laml = cfg->tpm_log_len;
	t.lasa = cfg->tpm_log;
	memcpy(l->buf + l->tpm2, &t, sizeof(t));
	table_checksum(l->buf + l->tpm2);
}

static void build_fadt(const struct acpi_layout *l)
{
	uint64_t dsdt = l->gpa + l->dsdt;
	struct acpi_fadt f;

	memset(&f, 0, sizeof(f));
	header_init(&f.h, "FACP", sizeof(f), FADT_REVISION);
	f.minor_revision = FADT_MINOR_REVISION;
	f.dsdt = dsdt <= UINT32_MAX ? (uint32_t)dsdt : 0;
	f.x_dsdt = dsdt;
	f.sci_int = 0;
	f.iapc_boot_arch = FADT_BOOT_VGA_NOT_PRESENT | FADT_BOOT_CMOS_RTC_NOT_PRESENT;
	f.flags = FADT_F_HW_REDUCED_ACPI | FADT_F_RESET_REG_SUP;
	f.reset_reg = gas_io8(ACPI_RESET_PORT);
	f.reset_value = ACPI_RESET_VALUE;
	f.sleep_control_reg = gas_io8(ACPI_SLEEP_CTL_PORT);
	f.sleep_status_reg = gas_io8(ACPI_SLEEP_STS_PORT);
	memcpy(f.hypervisor_vendor_id, ACPI_HV_VENDOR_ID, sizeof(ACPI_HV_VENDOR_ID));
	memcpy(l->buf + l->fadt, &f, sizeof(f));
	table_checksum(l->buf + l->fadt);
}

static size_t madt_size(unsigned ncpus)
{
	return sizeof(struct acpi_madt) + ncpus * sizeof(struct madt_lapic) +
	       sizeof(struct madt_ioapic) + sizeof(struct madt_iso) + sizeof(struct madt_lapic_nmi);
}

/* Appends n bytes at *p (the space is part of the layout). */
static void put(uint8_t **p, const void *src, size_t n)
{
	memcpy(*p, src, n);
	*p += n;
}

static void build_madt(const struct acpi_layout *l, unsigned ncpus)
{
	uint8_t *p = l->buf + l->madt;
	struct acpi_madt m;

	memset(&m, 0, sizeof(m));
	header_init(&m.h, "APIC", (uint32_t)madt_size(ncpus), MADT_REVISION);
	m.lapic_addr = ACPI_LAPIC_ADDR;
	m.flags = MADT_PCAT_COMPAT;
	put(&p, &m, sizeof(m));
	for (unsigned i = 0; i < ncpus; i++) {
		struct madt_lapic lapic = {MADT_LAPIC, sizeof(lapic), (uint8_t)i, (uint8_t)i,
					   MADT_LAPIC_ENABLED};
		put(&p, &lapic, sizeof(lapic));
	}
	struct madt_ioapic io = {MADT_IOAPIC, sizeof(io), ACPI_MAX_CPUS, 0, ACPI_IOAPIC_ADDR, 0};
	struct madt_iso iso = {MADT_ISO, sizeof(iso), 0, 0, 2, 0}; /* IRQ0 -> GSI 2 */
	struct madt_lapic_nmi nmi = {MADT_LAPIC_NMI, sizeof(nmi), MADT_ALL_PROCESSORS, 0,
				     MADT_LINT1};
	put(&p, &io, sizeof(io));
	put(&p, &iso, sizeof(iso));
	put(&p, &nmi, sizeof(nmi));
	table_checksum(l->buf + l->madt);
}

/* Device(name) { Name(_HID, hid), Name(_UID, uid), [Name(_CRS, Buffer(crs))] } */
static void dsdt_device(struct aml *a, const char *name, const char *hid, bool eisa, uint64_t uid,
			const struct aml *crs)
{
	size_t dev = aml_device_begin(a, name);

	aml_name(a, "_HID");
	if (eisa)
		aml_eisaid(a, hid);
	else
		aml_string(a, hid);
	aml_name(a, "_UID");
	aml_integer(a, uid);
	if (crs) {
		aml_name(a, "_CRS");
		if (crs->error)
			a->error = true;
		aml_buffer(a, crs->buf, crs->len);
	}
	aml_end(a, dev);
}

static void dsdt_s5(struct aml *a)
{
	size_t pkg;

	aml_name(a, "_S5");
	pkg = aml_package_begin(a, 4);
	aml_integer(a, ACPI_S5_TYP);
	aml_integer(a, 0);
	aml_integer(a, 0);
	aml_integer(a, 0);
	aml_end(a, pkg);
}

static void dsdt_com1(struct aml *a)
{
	uint8_t buf[32];
	struct aml crs;

	aml_init(&crs, buf, sizeof(buf));
	aml_res_io(&crs, true, ACPI_COM1_PORT, ACPI_COM1_PORT, 0, 8);
	aml_res_irq_noflags(&crs, ACPI_COM1_IRQ);
	aml_res_end(&crs);
	dsdt_device(a, "COM1", "PNP0501", true, 1, &crs);
}

static void dsdt_pvpanic(struct aml *a)
{
	uint8_t buf[16];
	struct aml crs;

	aml_init(&crs, buf, sizeof(buf));
	aml_res_io(&crs, true, ACPI_PVPANIC_PORT, ACPI_PVPANIC_PORT, 1, 1);
	aml_res_end(&crs);
	dsdt_device(a, "PEVT", "QEMU0001", false, 0, &crs);
}

/* The PCIe host bridge: segment 0, bus 0..ACPI_PCI_BUS_END, the 32-bit BAR window. */
static void dsdt_pci0(struct aml *a)
{
	uint8_t buf[48];
	struct aml crs;
	size_t dev;

	aml_init(&crs, buf, sizeof(buf));
	aml_res_word_bus_number(&crs, 0, ACPI_PCI_BUS_END);
	aml_res_dword_memory(&crs, ACPI_PCI_MMIO_BASE,
			     ACPI_PCI_MMIO_BASE + (ACPI_PCI_MMIO_SIZE - 1));
	aml_res_end(&crs);
	if (crs.error)
		a->error = true;

	dev = aml_device_begin(a, "PCI0");
	aml_name(a, "_HID");
	aml_eisaid(a, "PNP0A08"); /* PCI Express root bridge */
	aml_name(a, "_CID");
	aml_eisaid(a, "PNP0A03"); /* PCI root bridge */
	aml_name(a, "_SEG");
	aml_integer(a, 0);
	aml_name(a, "_BBN");
	aml_integer(a, 0);
	aml_name(a, "_UID");
	aml_integer(a, 0);
	aml_name(a, "_CRS");
	aml_buffer(a, crs.buf, crs.len);
	aml_end(a, dev);
}

/* Motherboard resources: the ECAM window, which Linux wants reserved before it trusts
 * the MCFG. */
static void dsdt_mres(struct aml *a)
{
	uint8_t buf[16];
	struct aml crs;

	aml_init(&crs, buf, sizeof(buf));
	aml_res_memory32_fixed(&crs, true, ACPI_PCI_ECAM_BASE, ACPI_PCI_ECAM_SIZE);
	aml_res_end(&crs);
	dsdt_device(a, "MRES", "PNP0C02", true, 1, &crs);
}

/* The TPM: MSFT0101 with the CRB registers and buffer as its memory (tpm_crb maps the
 * control area and the command/response buffer from this range). */
static void dsdt_tpm(struct aml *a, const struct acpi_config *cfg)
{
	uint8_t buf[16];
	struct aml crs;

	aml_init(&crs, buf, sizeof(buf));
	aml_res_memory32_fixed(&crs, true, cfg->tpm_base, cfg->tpm_size);
	aml_res_end(&crs);
	dsdt_device(a, "TPM0", "MSFT0101", false, 0, &crs);
}

/* One ACPI0007 processor device per CPU, _UID matching the MADT processor UID. */
static void dsdt_cpus(struct aml *a, unsigned ncpus)
{
	for (unsigned i = 0; i < ncpus; i++) {
		char name[8];

		snprintf(name, sizeof(name), "CP%02X", i & 0xffu);
		dsdt_device(a, name, "ACPI0007", false, i, NULL);
	}
}

/* Builds the DSDT's AML in place after its header, within len bytes of buf; returns the
 * table's length, or 0 when it does not fit. */
static size_t build_dsdt(const struct acpi_layout *l, size_t len, const struct acpi_config *cfg)
{
	size_t hdr = sizeof(struct acpi_header), scope;
	uint8_t *p = l->buf + l->dsdt;
	struct acpi_header h;
	struct aml a;

	aml_init(&a, p + hdr, len - l->dsdt - hdr);
	dsdt_s5(&a);
	scope = aml_scope_begin(&a, "\\_SB");
	dsdt_com1(&a);
	dsdt_pvpanic(&a);
	if (cfg->pci) {
		dsdt_pci0(&a);
		dsdt_mres(&a);
	}
	if (cfg->tpm)
		dsdt_tpm(&a, cfg);
	dsdt_cpus(&a, cfg->ncpus);
	aml_end(&a, scope);
	if (a.error || a.len > UINT32_MAX - hdr)
		return 0;
	header_init(&h, "DSDT", (uint32_t)(hdr + a.len), DSDT_REVISION);
	memcpy(p, &h, hdr);
	table_checksum(p);
	return hdr + a.len;
}

/* The fixed-size part (RSDP up to the DSDT header) is checked and zeroed up front; the
 * DSDT's AML is bounded by what is left. */
long acpi_build(uint8_t *buf, size_t len, uint64_t gpa, const struct acpi_config *cfg)
{
	struct acpi_layout l = {.buf = buf, .gpa = gpa};
	size_t fixed, dsdt_len;

	if (!buf || !cfg || cfg->ncpus == 0 || cfg->ncpus > ACPI_MAX_CPUS)
		return -1;
	l.xsdt = align_up(sizeof(struct acpi_rsdp));
	l.fadt = align_up(l.xsdt + xsdt_size(cfg->pci, cfg->tpm));
	l.madt = align_up(l.fadt + sizeof(struct acpi_fadt));
	l.dsdt = align_up(l.madt + madt_size(cfg->ncpus));
	if (cfg->pci) {
		l.mcfg = l.dsdt;
		l.dsdt = align_up(l.mcfg + sizeof(struct acpi_mcfg));
	}
	if (cfg->tpm) {
		l.tpm2 = l.dsdt;
		l.dsdt = align_up(l.tpm2 + sizeof(struct acpi_tpm2));
	}
	fixed = l.dsdt + sizeof(struct acpi_header);
	if (len < fixed || gpa > UINT64_MAX - l.dsdt)
		return -1;
	memset(buf, 0, fixed);
	dsdt_len = build_dsdt(&l, len, cfg);
	if (dsdt_len == 0 || l.dsdt + dsdt_len > LONG_MAX)
		return -1;
	build_rsdp(&l);
	build_xsdt(&l);
	build_fadt(&l);
	build_madt(&l, cfg->ncpus);
	if (l.mcfg)
		build_mcfg(&l);
	if (l.tpm2)
		build_tpm2(&l, cfg);
	return (long)(l.dsdt + dsdt_len);
}
