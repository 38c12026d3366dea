/* nitro-enclave's commands (src/enclave/tool; docs/enclaves.md), each returning the
 * process's exit status. They talk to the Nitro Enclaves driver (/dev/nitro_enclaves),
 * sysfs/procfs and the enclave processes' control sockets under NET_RUN_DIR.
 *
 * An enclave lives as long as its fd: `run` forks an enclave process (own session, stdio on
 * /dev/null) that creates the enclave, reports the result to `run` through a pipe, then
 * holds the fd and answers "describe" / "terminate" lines on NET_RUN_DIR/ID.sock (root
 * only, 0600) until told to terminate or the enclave exits by itself (the fd polls HUP). */
#ifndef NITRO_ENCLAVE_TOOL_TOOL_H
#define NITRO_ENCLAVE_TOOL_TOOL_H

#include "enclave/tool/args.h"
#include "enclave/tool/json.h"

#define NET_RUN_DIR "/run/nitro_enclaves"
#define NET_CTL_MAX 4096 /* a control reply's size limit */

int net_cmd_run(const struct net_args *a);
int net_cmd_describe(void);
int net_cmd_terminate(const struct net_args *a);
int net_cmd_console(const struct net_args *a);

/* The enclave process's loop (ctl.c): listens on path, hands run-enclave's JSON to `run`
 * (net_report_ready), then answers control lines until the enclave ends or is terminated;
 * never returns. efd is the enclave's fd; cleanup (which unlinks path) runs once before
 * exit, after efd is closed. */
_Noreturn void net_serve(int efd, const struct net_enclave *e, const char *path,
			 void (*cleanup)(void));

/* Hands a success (JSON) to the waiting `run` and closes the pipe (run.c). */
void net_report_ready(const char *json);

/* A line on stderr, then exit status 1 of the enclave process (with cleanup, run.c). */
__attribute__((format(printf, 1, 2))) _Noreturn void net_fail(const char *fmt, ...);

#endif
