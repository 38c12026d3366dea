/* EBS volumes: a self-describing file, a 4 KiB header and then the data, shared by the
 * card (nitro-card-ebs), `nitro volume` and nitrod's volume API.
 *
 * Header (little-endian): magic "NITROVOL", version 1, flags (VOL_F_ENCRYPTED), size in
 * bytes (a multiple of 512), the volume id "vol-" + 17 lowercase hex digits (NUL padded),
 * the data key wrapped with AES-256-GCM under the host master key (12-byte nonce, 64-byte
 * ciphertext, 16-byte tag; the magic..id fields are the additional data, so a key cannot
 * be moved to another volume), a key check value (at 144: HMAC-SHA-256 under the data
 * key of a label and the magic..id fields; zeroes in volumes made before it), and a
 * SHA-256 of every header byte before it. Data starts
 * at VOL_DATA_OFFSET; sector s of the guest is at VOL_DATA_OFFSET + 512 s.
 *
 * Encrypted volumes hold only AES-256-XTS ciphertext (512-bit data key, the 512-byte
 * sector number little-endian as the 16-byte tweak). A sector that is all zero bytes in
 * the file (never written, or discarded: a hole) reads as zeroes; any other ciphertext
 * has that form with probability 2^-4096. The plaintext data key exists only in
 * a locked page of the opening process and is wiped by vol_close(). The master key is
 * $NITRO_STATE/master.key (default ~/.local/state/nitro/master.key): 32 random bytes,
 * created 0600 (directory 0700) by vol_create() when missing; vol_open() never creates it.
 *
 * Every function reports through (err, errlen) with a message naming the file and the
 * reason, and returns 0 or a negative errno value.
 */
#ifndef NITRO_CARDS_EBS_VOLUME_H
#define NITRO_CARDS_EBS_VOLUME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VOL_MAGIC "NITROVOL"
#define VOL_VERSION 1
#define VOL_F_ENCRYPTED 1u
#define VOL_DATA_OFFSET 4096
#define VOL_SECTOR 512
#define VOL_ID_LEN 21 /* "vol-" + 17 hex digits */
#define VOL_KEY_BYTES 64
#define VOL_MASTER_KEY_BYTES 32

struct vol_crypt;

struct volume {
	int v_fd;
	char v_path[4096];
	char v_id[VOL_ID_LEN + 1];
	uint64_t v_size; /* bytes of data */
	bool v_encrypted;
	bool v_readonly;
	struct vol_crypt *v_crypt; /* NULL when not encrypted */
};

/* The master key's path for this environment ($NITRO_STATE or the default). */
void vol_master_key_path(char *out, size_t len);

/* Loads the master key, creating it when missing (for keys derived from it: the TPM
 * card's state key, docs/tpm.md). 0 or a negative errno value. */
int vol_master_key(uint8_t key[VOL_MASTER_KEY_BYTES], char *err, size_t errlen);
/* The master key only when it exists (snapshot stores unwrap their key with it:
 * src/snapshot). The caller wipes it. */
int vol_master_key_existing(uint8_t key[VOL_MASTER_KEY_BYTES], char *err, size_t errlen);

/* Creates a sparse volume of size bytes at path (which must not exist) with a random id
 * (and data key, wrapped by the master key, when encrypted). Fills *id. */
int vol_create(const char *path, uint64_t size, bool encrypted, char id[VOL_ID_LEN + 1], char *err,
	       size_t errlen);
/* Reads and checks the header without unwrapping the key (for `nitro volume info`). */
int vol_info(const char *path, struct volume *v, char *err, size_t errlen);
/* Opens a volume for I/O, unwrapping its data key with the master key when encrypted. */
int vol_open(const char *path, bool readonly, struct volume *v, char *err, size_t errlen);
/* The same with the plaintext data key given (key != NULL, VOL_KEY_BYTES: what a card
 * gets from its launcher, which alone reads the master key): checked against the
 * header's key check value (HMAC-SHA-256 of the header's identity under the key), so a
 * wrong key fails here with -EKEYREJECTED and never touches data. key == NULL: vol_open. */
int vol_open_key(const char *path, bool readonly, const uint8_t *key, struct volume *v, char *err,
		 size_t errlen);
/* The launcher's side: the data key of the encrypted volume at path, unwrapped with the
 * master key into dk (the caller wipes it). A volume whose header predates key check
 * values gets one written (the key was authenticated by the unwrap). */
int vol_unwrap_key(const char *path, uint8_t dk[VOL_KEY_BYTES], char *err, size_t errlen);
/* Read-only without the shared lock: for a snapshot of a volume whose card holds it
 * (exclusively) and has paused it (src/cards/bdev/blkctl.h); nothing else may use it. */
int vol_open_paused(const char *path, struct volume *v, char *err, size_t errlen);
void vol_close(struct volume *v);

/* Whole sectors [sector, sector + len / 512) through buf (len a multiple of 512, range
 * checked by the caller): encrypts a copy on the way out, decrypts in place on the way in. */
int vol_read(struct volume *v, uint64_t sector, void *buf, size_t len, char *err, size_t errlen);
int vol_write(struct volume *v, uint64_t sector, const void *buf, size_t len, char *err,
	      size_t errlen);
/* Zeroes sectors: encrypted zeroes when encrypted, else a hole (unmap) or zeroed range. */
int vol_write_zeroes(struct volume *v, uint64_t sector, uint64_t nsectors, bool unmap, char *err,
		     size_t errlen);
/* Drops sectors: a hole in the file (reads return zeroes, or noise when encrypted). */
int vol_discard(struct volume *v, uint64_t sector, uint64_t nsectors, char *err, size_t errlen);
int vol_flush(struct volume *v, char *err, size_t errlen);

/* A volume without a header of its own (an NBD export, a null volume): no file, no
 * encryption; the id is "vol-" and 17 hex digits of SHA-256(name), stable for a name. */
void vol_init_raw(struct volume *v, const char *name, uint64_t size, bool readonly);
/* Encrypts v with a fresh random data key that exists only in this process (null
 * volumes: measures the cost of encryption without storage). */
int vol_set_ephemeral_key(struct volume *v, char *err, size_t errlen);
/* Sector crypto for the card's request layer (len a multiple of 512; v encrypted), in ->
 * out (the same buffer or disjoint ones); decryption turns all-zero ciphertext sectors
 * (holes) into zero sectors. 0 or -EIO. */
int vol_encrypt(struct volume *v, uint64_t sector, const void *in, void *out, size_t len);
int vol_decrypt(struct volume *v, uint64_t sector, const void *in, void *out, size_t len);

#endif
