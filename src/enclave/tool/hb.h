/* The boot heartbeat of concurrent `nitro-enclave run`s (hb.c). An enclave's init
 * connects to the parent's vsock port 9000 and sends 0xB7; only one socket can listen on
 * that port, so one `run` listening alone (nitro-cli's way) makes a second concurrent run
 * fail (aws-nitro-enclaves-cli #516), and a lock around the whole boot serialises them.
 * Instead a small broker process listens on the port for every run that waits: it is
 * started by the first run that finds none (NET_RUN_DIR/heartbeat.sock), answers each
 * heartbeat, passes it to the run that waits for that CID (hbtab.h) and ends when no run
 * waits. Starting and ending happen under NET_RUN_DIR/heartbeat.lock, so a run never
 * connects to a broker that is going away.
 *
 * Contract: called by the enclave process before it maps memory or opens the NE device
 * (the broker is forked from it and closes every fd but its sockets). Root only: the
 * directory is 0700, the socket 0600. */
#ifndef NITRO_ENCLAVE_TOOL_HB_H
#define NITRO_ENCLAVE_TOOL_HB_H

#include <stddef.h>
#include <stdint.h>

/* Registers a waiter with the broker (starting one if none runs): the connection's fd, or
 * -1 with a one-line reason in err (port 9000 held by another program, ...). */
int net_hb_join(char *err, size_t errlen);
/* Names the CID the waiter's enclave got (after NE_START_ENCLAVE). 0, or -1. */
int net_hb_name_cid(int fd, uint64_t cid);

#endif
