/* hv <-> card message framing (contract in proto.h). Little-endian on the wire. */
#include "tpm/proto.h"

#include <errno.h>
#include <string.h>

#include "lib/le.h"

void tpm_msg_encode(uint8_t out[TPM_PROTO_MSG], const struct tpm_msg *m)
{
	le32_put(out, TPM_PROTO_MAGIC);
	le16_put(out + 4, TPM_PROTO_VERSION);
	le16_put(out + 6, m->type);
	le32_put(out + 8, m->len);
	le32_put(out + 12, m->status);
}

int tpm_msg_decode(const uint8_t *buf, size_t n, struct tpm_msg *m)
{
	memset(m, 0, sizeof(*m));
	if (n < TPM_PROTO_MSG || le32_get(buf) != TPM_PROTO_MAGIC ||
	    le16_get(buf + 4) != TPM_PROTO_VERSION)
		return -EPROTO;
	uint16_t type = le16_get(buf + 6);
	uint16_t base = type & (uint16_t)~TPM_PROTO_REPLY;
	if ((type & ~(TPM_PROTO_REPLY | 0xffu)) || base < TPM_MSG_HELLO || base > TPM_MSG_XCMD)
		return -EPROTO;
	uint32_t len = le32_get(buf + 8);
	if (len > TPM_PROTO_BUF || n != TPM_PROTO_MSG + (base == TPM_MSG_XCMD ? len : 0))
		return -EPROTO;
	m->type = type;
	m->len = len;
	m->status = le32_get(buf + 12);
	return 0;
}
