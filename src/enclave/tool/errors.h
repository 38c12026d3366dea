/* nitro-enclave's messages for the Nitro Enclaves driver's errno values (the NE_ERR_*
 * codes 256-275 of include/uapi/linux/nitro_enclaves.h, and the usual ones the ioctls
 * return): each one line that says what to change.
 *
 * Contract: pure, thread-safe; returns a static string (never NULL). */
#ifndef NITRO_ENCLAVE_TOOL_ERRORS_H
#define NITRO_ENCLAVE_TOOL_ERRORS_H

/* The text for errno e returned by an NE ioctl; NULL for a value with no special text
 * (the caller prints strerror). */
const char *net_ne_error(int e);

/* "NE_ERR_NO_CPUS_AVAIL_IN_POOL" etc., or NULL outside 256-275. */
const char *net_ne_error_name(int e);

#endif
