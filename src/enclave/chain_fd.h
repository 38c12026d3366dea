/* The attestation chain handed from a launcher to nitro-card-nsm on an fd (--chain-fd N):
 * PEM text, in this order: the host intermediate's private key, the host intermediate's
 * certificate, the root certificate; then end of file. The launcher (nitro run; nitrod
 * later) reads the state folder's chain with pki_chain_open() and writes it into a pipe;
 * the card reads it once at start-up and closes the fd. The root's key never leaves the
 * state folder; nitro-hv and the guest never see any of it.
 *
 * chain_fd_read() trusts nothing it reads beyond the pipe's origin: it bounds the size
 * (CHAIN_FD_MAX), requires exactly one key and two certificates, the key to be the host
 * certificate's, the host certificate to be signed by the root, the root self-signed.
 * Thread-safe (no shared state); errors into (err, errlen).
 */
#ifndef NITRO_ENCLAVE_CHAIN_FD_H
#define NITRO_ENCLAVE_CHAIN_FD_H

#include <stddef.h>

#include "enclave/pki.h"

#define CHAIN_FD_MAX (64u << 10)

/* Writes host's key, host's certificate and root's certificate as PEM to fd (a pipe: the
 * text is a few KiB, below any pipe's capacity). 0, or -1 with err. */
int chain_fd_write(int fd, const struct pki_cert *root, const struct pki_cert *host, char *err,
		   size_t errlen);
/* Reads fd to its end and fills root (certificate only, key NULL) and host (key and
 * certificate), each with its DER. 0, or -1 with err (nothing left allocated). */
int chain_fd_read(int fd, struct pki_cert *root, struct pki_cert *host, char *err, size_t errlen);

#endif
