/* nitrod's launcher: an instance's processes, measured and jailed (issue 11, item 3).
 *
 * What runs comes from the shared launch description (src/launch/launch.h): launch_fill
 * turns the instance's API spec and its volumes' records into a launch_spec on this host's
 * launch_env, and the plan (the same function `nitro run` uses) gives each process's
 * executable, argv, socket, kept fds, paths and environment. Here each one is measured by
 * the security chip (its Ed25519 signature checked) and started through the jailer
 * (proc.h) from the very fd the chip measured: the plan's paths become the jail's binds,
 * its kept fds the process's stdio (nitro-hv: the console file or /dev/null, hv.log; a
 * card: cardN.log), and a card without LAUNCH_HOST_NET gets its own network namespace.
 *
 * The launcher starts processes and reports what it started (pid, start time in the
 * instance's struct proc); it neither watches nor restarts them: that is the supervisor's
 * (supervise.h), which calls in here. All functions are called with g_ctl.c_lock held.
 * Errors come back as a message naming the process and the reason.
 */
#ifndef NITRO_CONTROLLER_LAUNCHER_H
#define NITRO_CONTROLLER_LAUNCHER_H

#include <stdbool.h>
#include <stddef.h>

#include "controller/ctl.h"
#include "launch/launch.h"

/* The launch description of in on this host. 0, or -1 with err (a volume gone). */
int launch_fill(const struct instance *in, struct launch_spec *s, struct launch_env *e, char *err,
		size_t errlen);

/* Before the first process: the instance's folders, the measurement of every executable
 * of the plan, the kernel, initrd and command line (nothing starts unless everything
 * verifies: *refused then), the kernel cache, the cards' key copy, and the plan written to
 * STATE/instances/ID/launch.json (launch_plan_json). in->i_ncards is set. 0 or -1 with err. */
int launch_prepare(struct instance *in, bool *refused, char *err, size_t errlen);
/* Starts card idx (measured, jailed) and waits for its socket, or nitro-hv. On success
 * in->i_cards[idx] / in->i_hv holds the new pid (a child of nitrod); on failure no
 * process of this call is left. */
int launch_card(struct instance *in, unsigned idx, char *err, size_t errlen);
/* launch_hv opens and measures the boot files for this nitro-hv (bootfile.h): -1 with err,
 * or LAUNCH_REFUSED when they do not open or measure (a refusal to audit). */
#define LAUNCH_REFUSED (-2)
int launch_hv(struct instance *in, char *err, size_t errlen);
/* NitroTPM (docs/tpm.md). Once the cards listen and before nitro-hv starts: endorses a new
 * TPM (endorse.h: the ECC and RSA EKs and their certificates from the chip's EK CA in
 * STATE/ek-ca, at NV 0x01c0000a and 0x01c00002) and keeps a copy of each certificate in
 * the instance's folder (tpm-ek-ecc.der, tpm-ek-rsa.der: root's, out of the card's reach:
 * what GET /v1/instances/ID/tpm/ek serves). 0 (also for an instance
 * without a TPM or a TPM endorsed already) or -1 with err. */
int launch_tpm_endorse(struct instance *in, char *err, size_t errlen);
/* On terminate, with every process gone: the TPM's state folder and certificate copy. */
void launch_tpm_destroy(const struct instance *in);
/* The TPM's state folder (STATE/instances/ID/tpm), the EK certificate copy (DER) and the
 * chip's EK CA folder. */
void inst_tpm_dir(const struct instance *in, char *out, size_t len);
void inst_tpm_cert_path(const struct instance *in, bool rsa, char *out, size_t len);
void launch_ek_ca_dir(char *out, size_t len);

/* After the last process ended: removes the sockets, the key copy and the run folder. */
void launch_cleanup(const struct instance *in);

/* The control socket (--ctl) of the card serving volume vol_id of in (snapshots pause the
 * card through it): 0, or -1 when in has no such volume. */
int inst_volume_ctl(const struct instance *in, const char *vol_id, char *out, size_t len);
/* The instance's folder of logs and console (STATE/instances/ID). */
void inst_dir(const struct instance *in, char *out, size_t len);
/* The console file (serial output) of an instance launched with console on. */
void inst_console_path(const struct instance *in, char *out, size_t len);
/* The last line of one of the instance's logs ("hv.log"), printable ASCII; "" if none. */
void inst_log_last_line(const struct instance *in, const char *log, char *out, size_t len);

#endif
