/* The EIF in enclave memory: copied, parsed, measured (see enclave_image.h). */
#include "hv/enclave_image.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/be.h"

enum eif_err enclave_eif_extent(const uint8_t *hdr, uint64_t avail, uint64_t *len, char *err,
				size_t errlen)
{
	*len = 0;
	if (avail < EIF_HDR_SIZE) {
		snprintf(err, errlen, "no room for an EIF header at 8 MiB (%llu bytes of memory)",
			 (unsigned long long)avail);
		return EIF_E_TRUNCATED;
	}
	if (memcmp(hdr, EIF_MAGIC, 4)) {
		snprintf(err, errlen,
			 "no EIF at enclave memory offset 8 MiB (magic is not \".eif\")");
		return EIF_E_MAGIC;
	}
	unsigned n = be16_get(hdr + 26);
	if (n == 0 || n > EIF_MAX_SECTIONS) {
		snprintf(err, errlen, "EIF has %u sections (1..%d allowed)", n, EIF_MAX_SECTIONS);
		return EIF_E_NUM_SECTIONS;
	}
	uint64_t end = EIF_HDR_SIZE;
	for (unsigned i = 0; i < n; i++) {
		uint64_t off = be64_get(hdr + 28 + 8 * i),
			 size = be64_get(hdr + 28 + 8 * EIF_MAX_SECTIONS + 8 * i);
		if (off > avail || size > avail || avail - off < EIF_SEC_HDR_SIZE ||
		    avail - off - EIF_SEC_HDR_SIZE < size) {
			snprintf(err, errlen,
				 "EIF section %u (%llu bytes at %llu) ends past the %llu bytes of "
				 "enclave memory after 8 MiB",
				 i, (unsigned long long)size, (unsigned long long)off,
				 (unsigned long long)avail);
			return EIF_E_TRUNCATED;
		}
		if (off + EIF_SEC_HDR_SIZE + size > end)
			end = off + EIF_SEC_HDR_SIZE + size;
	}
	*len = end;
	return EIF_OK;
}

int enclave_image_read(const struct guest_mem *m, struct enclave_image *im, char *err,
		       size_t errlen)
{
	memset(im, 0, sizeof(*im));
	if (!m->gm_base || m->gm_size <= ENCLAVE_EIF_OFFSET) {
		snprintf(err, errlen, "enclave memory ends before 8 MiB: no EIF");
		return EIF_E_TRUNCATED;
	}
	/* The mapping holds the ranges one after the other: enclave offset = mapping offset. */
	const uint8_t *at = m->gm_base + ENCLAVE_EIF_OFFSET;
	uint64_t avail = m->gm_size - ENCLAVE_EIF_OFFSET, len;
	uint8_t hdr[EIF_HDR_SIZE];
	if (avail >= EIF_HDR_SIZE)
		memcpy(hdr, at, EIF_HDR_SIZE);
	enum eif_err e = enclave_eif_extent(hdr, avail, &len, err, errlen);
	if (e != EIF_OK)
		return e;
	im->buf = malloc(len);
	if (!im->buf) {
		snprintf(err, errlen, "EIF of %llu bytes: out of memory", (unsigned long long)len);
		return EIF_E_TRUNCATED;
	}
	memcpy(im->buf, at, len); /* from here on only the private copy is read */
	im->len = len;
	/* the header again from the copy: the section table may have changed meanwhile, and
	 * eif_parse checks it against the copied length */
	char why[256];
	e = eif_parse(im->buf, im->len, &im->info, why, sizeof(why));
	if (e != EIF_OK) {
		snprintf(err, errlen, "EIF refused (%s): %s", eif_err_name(e), why);
		return e;
	}
	const struct eif_section *kernel = NULL, *cmdline = NULL;
	for (unsigned i = 0; i < im->info.num_sections; i++) {
		const struct eif_section *s = &im->info.sec[i];
		if (s->type == EIF_SEC_KERNEL)
			kernel = s;
		else if (s->type == EIF_SEC_CMDLINE)
			cmdline = s;
		else if (s->type == EIF_SEC_RAMDISK)
			im->ramdisk_size += s->size;
	}
	if (bzimage_parse(kernel->body, kernel->size, &im->bz, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "EIF refused: its kernel section is not a bzImage: %s", why);
		return ENCLAVE_E_CONTENT;
	}
	if (memchr(cmdline->body, 0, cmdline->size)) {
		snprintf(err, errlen, "EIF refused: its command line holds a NUL byte");
		return ENCLAVE_E_CONTENT;
	}
	im->cmdline = malloc(cmdline->size + 1);
	if (!im->cmdline) {
		snprintf(err, errlen, "EIF: out of memory");
		return ENCLAVE_E_CONTENT;
	}
	memcpy(im->cmdline, cmdline->body, cmdline->size);
	im->cmdline[cmdline->size] = 0;
	if (boot_check_cmdline(&im->bz, im->cmdline, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "EIF refused: command line: %s", why);
		return ENCLAVE_E_CONTENT;
	}
	if (eif_measure(&im->info, &im->pcrs, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "EIF refused: %s", why);
		return ENCLAVE_E_CONTENT;
	}
	return 0;
}

int enclave_image_put_ramdisks(const struct enclave_image *im, const struct guest_mem *m,
			       uint64_t gpa)
{
	uint8_t *dst = gpa_ptr(m, gpa, im->ramdisk_size);
	if (!dst)
		return -1;
	for (unsigned i = 0; i < im->info.num_sections; i++) {
		const struct eif_section *s = &im->info.sec[i];
		if (s->type != EIF_SEC_RAMDISK)
			continue;
		memcpy(dst, s->body, s->size);
		dst += s->size;
	}
	return 0;
}

void enclave_image_free(struct enclave_image *im)
{
	free(im->buf);
	free(im->cmdline);
	memset(im, 0, sizeof(*im));
}

int enclave_hello_fill(struct enw_hello *h, bool debug, uint64_t cid, uint64_t slot_uid,
		       const char *parent_id)
{
	memset(h, 0, sizeof(*h));
	h->version = ENW_VERSION;
	h->flags = debug ? ENW_FLAG_DEBUG : 0;
	h->cid = cid;
	h->slot_uid = slot_uid;
	if (parent_id && eif_pcr_of_text(parent_id, h->pcr[4]) < 0)
		return -1;
	snprintf(h->module_id, sizeof(h->module_id), "%s-enc%016llx",
		 parent_id ? parent_id : "i-00000000000000000", (unsigned long long)slot_uid);
	return 0;
}

void enclave_pcrs_fill(struct enw_pcrs *p, const struct eif_pcrs *pcrs, bool debug)
{
	memset(p, 0, sizeof(*p));
	p->version = ENW_VERSION;
	if (!debug) {
		memcpy(p->pcr[0], pcrs->pcr0, ENW_PCR_LEN);
		memcpy(p->pcr[1], pcrs->pcr1, ENW_PCR_LEN);
		memcpy(p->pcr[2], pcrs->pcr2, ENW_PCR_LEN);
	}
	if (pcrs->has_pcr8)
		memcpy(p->pcr[3], pcrs->pcr8, ENW_PCR_LEN);
}
