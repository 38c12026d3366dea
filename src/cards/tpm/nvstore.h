/* The TPM card's non-volatile state: libtpms' blobs ("permall", "volatilestate",
 * "savestate") and the card's own "resume" (libtpms' volatile state after the last command
 * that changed it, for a restarted card: main.c), each in a file NAME.nvs of the state folder,
 * encrypted with AES-256-GCM under the per-instance state key (file: "NTPMNV01", 12-byte nonce,
 * 16-byte tag, ciphertext; the magic and the name are the additional data, so a blob cannot be
 * moved to another name). Written to NAME.tmp, fsync'd, renamed over NAME.nvs, folder fsync'd: a
 * crash leaves the old or the new blob, never a torn one. The folder is opened once (a dirfd); no
 * path is followed later. Without a folder the blobs live in memory only. Single-threaded (the
 * card's loop).
 */
#ifndef NITRO_CARDS_TPM_NVSTORE_H
#define NITRO_CARDS_TPM_NVSTORE_H

#include <stddef.h>
#include <stdint.h>

#define NV_KEY_BYTES 32
#define NV_MAX_BLOB (1u << 20)

/* dirfd -1: memory only. Takes a copy of key. 0 or -1 with err. */
int nv_init(int dirfd, const uint8_t key[NV_KEY_BYTES], char *err, size_t errlen);
/* 0 with a malloc'd copy (*data, *len); 1 when there is no such blob; -1 when it cannot be
 * read or does not decrypt (wrong key, tampered). */
int nv_load(const char *name, uint8_t **data, uint32_t *len);
int nv_store(const char *name, const uint8_t *data, uint32_t len);
/* As nv_store without the fsyncs: survives the card's death (the page cache), not the
 * host's, which the guest does not survive either. */
int nv_store_fast(const char *name, const uint8_t *data, uint32_t len);
int nv_delete(const char *name);

#endif
