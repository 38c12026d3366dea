/* Supervision of instances: the lifecycle around their processes: launching them in
 * order, watching them, restarting a crashed card, stopping everything of an instance,
 * re-adopting after a nitrod restart (issue 5). Starting one process (its argv from the
 * shared launch plan, measured, jailed) is the launcher's (launcher.h); this file never
 * builds an argv.
 *
 * Launch (inst_launch): launch_prepare measures nitro-hv and every card executable (each
 * must carry a valid signature) and the kernel, initrd and command line; any failure
 * refuses the launch (audited) and leaves the instance `failed` with the reason. Then each
 * card of the plan starts (one per volume, then per nic, then the TPM's) and is listening
 * before the next; a new TPM is endorsed (launch_tpm_endorse); nitro-hv last. A failure
 * kills what started and leaves it `failed`. Terminate removes the TPM's state once every
 * process is gone (launch_tpm_destroy).
 *
 * Watching: a thread polls a pidfd per process. nitro-hv ending stops the cards, and the
 * instance ends `stopped` (guest power-off or a stop/terminate request), `failed` (any
 * other status, with the last line nitro-hv wrote) or relaunches nitro-hv (reboot). A card
 * that ends while its instance runs is measured and started again on the same socket
 * (nitro-hv reconnects), at most SUP_MAX_RESTARTS times a minute, else the instance fails.
 * A guest reboot is a launch (a new measurement, one more chip event log line that is never
 * rewritten): at most SUP_MAX_REBOOTS a minute, else the instance fails, so a guest in a
 * reboot loop cannot grow the state disk at its own pace (issue 10 item 6).
 * A stop sends SIGTERM, then SIGKILL after SUP_STOP_MS to whatever is left.
 *
 * Processes outlive nitrod (own session, no parent-death signal). A restarted nitrod
 * re-adopts each recorded pid whose start time still matches (same process, not a reused
 * pid); instances whose processes are gone are reported `stopped` with a reason.
 *
 * All functions are called with g_ctl.c_lock held, except sup_start.
 */
#ifndef NITRO_CONTROLLER_SUPERVISE_H
#define NITRO_CONTROLLER_SUPERVISE_H

#include <stddef.h>

#include "controller/ctl.h"

#define SUP_STOP_MS 5000
#define SUP_MAX_RESTARTS 5
#define SUP_MAX_REBOOTS 5

/* Sets up the supervisor's epoll set and timer; 0 or -1 with err. */
int sup_init(char *err, size_t errlen);
/* Starts the watching thread. */
int sup_start(char *err, size_t errlen);

/* Measures and starts everything of in (state pending). Leaves it running, or failed with
 * the reason in i_reason and returns -1. */
int inst_launch(struct instance *in);
/* Begins stopping a running instance toward goal (GOAL_STOP, GOAL_TERMINATE, GOAL_REBOOT). */
void inst_stop(struct instance *in, int goal);
/* After a nitrod restart: re-adopts or reports one recorded instance. */
void inst_adopt(struct instance *in);

#endif
