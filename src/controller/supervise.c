/* Supervision of instances: watch, restart, stop, adopt (see supervise.h). */
#include "controller/supervise.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "controller/audit.h"
#include "controller/istore.h"
#include "controller/launcher.h"
#include "controller/proc.h"
#include "controller/records.h"
#include "lib/util.h"

#define HV_EXIT_GUEST_REBOOT 4 /* nitro-hv's status for a guest reboot (src/hv/main.c) */
#define RESTART_WINDOW_MS 60000

static int timer_fd = -1;
static pthread_t sup_thread;

static void audit_event(const struct instance *in, const char *what, int status, const char *detail)
{
	char route[64];
	sfmt(route, sizeof(route), "/v1/instances/%s", in->i_id);
	if (g_ctl.c_audit &&
	    audit_append(g_ctl.c_audit, geteuid(), what, route, status, detail) < 0)
		warnmsg("audit log: %s", strerror(errno));
}

/* --- watching --- */

static void watch(struct proc *p)
{
	if (p->p_pid <= 0) /* nothing started (a NAT starts with its card) */
		return;
	p->p_pidfd = (int)syscall(SYS_pidfd_open, p->p_pid, 0);
	if (p->p_pidfd < 0) {
		warnmsg("pidfd_open %d: %s", (int)p->p_pid, strerror(errno));
		return;
	}
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = p->p_pidfd};
	epoll_ctl(g_ctl.c_epoll, EPOLL_CTL_ADD, p->p_pidfd, &ev);
}

static void unwatch(struct proc *p)
{
	if (p->p_pidfd >= 0) {
		epoll_ctl(g_ctl.c_epoll, EPOLL_CTL_DEL, p->p_pidfd, NULL);
		close(p->p_pidfd);
	}
	p->p_pidfd = -1;
}

static bool alive(const struct proc *p)
{
	return p->p_pid > 0;
}

/* Watches every card process a launch started and nobody watches yet: the card launch_card
 * was asked for, and a NAT started with its card (launcher.c). */
static void watch_new(struct instance *in)
{
	for (unsigned i = 0; i < in->i_ncards; i++)
		if (alive(&in->i_cards[i]) && in->i_cards[i].p_pidfd < 0)
			watch(&in->i_cards[i]);
}

static bool any_alive(const struct instance *in)
{
	if (alive(&in->i_hv))
		return true;
	for (unsigned i = 0; i < in->i_ncards; i++)
		if (alive(&in->i_cards[i]))
			return true;
	return false;
}

static void signal_proc(struct proc *p, int sig)
{
	if (!alive(p))
		return;
	if (p->p_pidfd >= 0 && syscall(SYS_pidfd_send_signal, p->p_pidfd, sig, NULL, 0) == 0)
		return;
	kill(p->p_pid, sig);
}

/* Ends a stop: every process is gone. */
static void finish(struct instance *in)
{
	switch (in->i_goal) {
	case GOAL_TERMINATE:
		in->i_state = ST_TERMINATED;
		for (struct volrec *v = g_ctl.c_volumes; v; v = v->v_next)
			if (!strcmp(v->v_attached, in->i_id)) {
				v->v_attached[0] = 0;
				vol_save(v);
			}
		launch_tpm_destroy(in); /* NitroTPM: its state goes with the instance */
		break;
	case GOAL_FAIL:
		in->i_state = ST_FAILED;
		break;
	default:
		in->i_state = ST_STOPPED;
	}
	in->i_goal = GOAL_RUN;
	in->i_stop_deadline = 0;
	in->i_hv.p_pid = 0;
	launch_cleanup(in);
	inst_save(in);
}

static void stop_cards(struct instance *in)
{
	for (unsigned i = 0; i < in->i_ncards; i++)
		signal_proc(&in->i_cards[i], SIGTERM);
	if (!in->i_stop_deadline)
		in->i_stop_deadline = now_ms() + SUP_STOP_MS;
	if (!any_alive(in))
		finish(in);
}

void inst_stop(struct instance *in, int goal)
{
	in->i_goal = goal;
	if (goal != GOAL_REBOOT)
		in->i_state = ST_STOPPING;
	in->i_stop_deadline = now_ms() + SUP_STOP_MS;
	if (alive(&in->i_hv))
		signal_proc(&in->i_hv, SIGTERM);
	else if (goal == GOAL_REBOOT)
		in->i_goal = GOAL_RUN;
	else
		stop_cards(in);
	inst_save(in);
}

/* --- launching (the processes themselves: launcher.h) --- */

static void kill_all(struct instance *in)
{
	struct proc *all[INST_MAX_CARDS + 1];
	unsigned n = 0;
	all[n++] = &in->i_hv;
	for (unsigned i = 0; i < in->i_ncards; i++)
		all[n++] = &in->i_cards[i];
	for (unsigned i = 0; i < n; i++)
		if (alive(all[i])) {
			signal_proc(all[i], SIGKILL);
			if (all[i]->p_child)
				waitpid(all[i]->p_pid, NULL, 0);
			unwatch(all[i]);
			all[i]->p_pid = 0;
		}
}

int inst_launch(struct instance *in)
{
	char err[768];
	bool refused = false;
	in->i_state = ST_PENDING;
	in->i_goal = GOAL_RUN;
	in->i_reason[0] = 0;
	in->i_stop_deadline = 0;
	in->i_reboot_window = 0;
	in->i_reboots_window = 0;
	for (unsigned i = 0; i < INST_MAX_CARDS; i++) {
		memset(&in->i_cards[i], 0, sizeof(in->i_cards[i]));
		in->i_cards[i].p_pidfd = -1;
	}
	memset(&in->i_hv, 0, sizeof(in->i_hv));
	in->i_hv.p_pidfd = -1;
	in->i_ncards = 0;
	if (launch_prepare(in, &refused, err, sizeof(err)))
		goto fail;
	/* The cards first, each listening before the next; nitro-hv last. */
	for (unsigned i = 0; i < in->i_ncards; i++) {
		if (launch_card(in, i, err, sizeof(err)))
			goto fail;
		watch_new(in);
	}
	if (launch_tpm_endorse(in, err, sizeof(err)))
		goto fail;
	int hr = launch_hv(in, err, sizeof(err));
	if (hr) {
		refused = hr == LAUNCH_REFUSED;
		goto fail;
	}
	watch(&in->i_hv);
	in->i_state = ST_RUNNING;
	in->i_launched = (int64_t)time(NULL);
	in->i_launches++;
	inst_save(in);
	return 0;
fail:
	if (refused)
		audit_event(in, "LAUNCH", 403, err);
	kill_all(in);
	istore_remove(in); /* its card is gone (waited for): its key, and now its folder */
	in->i_state = ST_FAILED;
	sfmt(in->i_reason, sizeof(in->i_reason), "launch refused: %s", err);
	in->i_goal = GOAL_RUN;
	inst_save(in);
	return -1;
}

/* --- events --- */

static void restart_card(struct instance *in, unsigned idx)
{
	struct proc *p = &in->i_cards[idx];
	/* A NAT is started again with its card, never alone (its card's end of the link is
	 * gone): until then the nic has no gateway, as under `nitro run`. */
	if (p->p_kind == PK_IGW) {
		warnmsg("%s: card %u (the internet gateway's NAT) ended; its nic has no gateway "
			"until its card restarts",
			in->i_id, idx);
		audit_event(in, "IGW-ENDED", 200, "the internet gateway's NAT ended");
		inst_save(in);
		return;
	}
	int64_t now = now_ms();
	if (!p->p_restart_window || now - p->p_restart_window > RESTART_WINDOW_MS) {
		p->p_restart_window = now;
		p->p_restarts_window = 0;
	}
	char err[768];
	if (++p->p_restarts_window > SUP_MAX_RESTARTS) {
		sfmt(err, sizeof(err), "card %u crashed more than %u times in a minute", idx,
		     SUP_MAX_RESTARTS);
	} else if (launch_card(in, idx, err, sizeof(err)) == 0) {
		watch_new(in);
		p->p_restarts++;
		warnmsg("%s: card %u restarted (pid %d)", in->i_id, idx, (int)p->p_pid);
		audit_event(in, "RESTART-CARD", 200, "card restarted");
		inst_save(in);
		return;
	}
	watch_new(in); /* a NAT started before its card failed: stopped below */
	warnmsg("%s: %s", in->i_id, err);
	audit_event(in, "RESTART-CARD", 500, err);
	sfmt(in->i_reason, sizeof(in->i_reason), "%s", err);
	inst_stop(in, GOAL_FAIL);
}

static void on_hv_exit(struct instance *in, int status, bool known)
{
	char why[300];
	/* A jailed nitro-hv cannot exec itself: a guest reboot ends it with status 4, and the
	 * supervisor starts it again (the cards stay). */
	if (in->i_goal == GOAL_RUN && in->i_state == ST_RUNNING && known && WIFEXITED(status) &&
	    WEXITSTATUS(status) == HV_EXIT_GUEST_REBOOT) {
		/* Each reboot appends a launch event to the chip's event log: a guest may
		 * reboot at most SUP_MAX_REBOOTS times a minute (a POST reboot is the caller's,
		 * audited, and not counted). */
		int64_t now = now_ms();
		if (!in->i_reboot_window || now - in->i_reboot_window > RESTART_WINDOW_MS) {
			in->i_reboot_window = now;
			in->i_reboots_window = 0;
		}
		if (++in->i_reboots_window > SUP_MAX_REBOOTS) {
			sfmt(in->i_reason, sizeof(in->i_reason),
			     "the guest rebooted more than %u times in a minute (a reboot loop): "
			     "not relaunched",
			     SUP_MAX_REBOOTS);
			warnmsg("%s: %s", in->i_id, in->i_reason);
			audit_event(in, "REBOOT", 429, in->i_reason);
			in->i_goal = GOAL_FAIL;
		} else {
			in->i_goal = GOAL_REBOOT;
		}
	}
	if (in->i_goal == GOAL_REBOOT && in->i_state == ST_RUNNING) {
		char err[768];
		in->i_goal = GOAL_RUN;
		in->i_stop_deadline = 0;
		/* A reboot is a launch: the boot files are opened and measured again. */
		int hr = launch_hv(in, err, sizeof(err));
		if (hr == 0) {
			watch(&in->i_hv);
			in->i_launches++;
			inst_save(in);
			return;
		}
		if (hr == LAUNCH_REFUSED)
			audit_event(in, "REBOOT", 403, err);
		sfmt(in->i_reason, sizeof(in->i_reason), "reboot%s: %s",
		     hr == LAUNCH_REFUSED ? " refused" : "", err);
		in->i_goal = GOAL_FAIL;
	} else if (in->i_goal == GOAL_RUN) {
		if (!known) {
			in->i_goal = GOAL_STOP;
			sfmt(in->i_reason, sizeof(in->i_reason),
			     "nitro-hv ended (status unknown: it was adopted after a nitrod "
			     "restart)");
		} else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
			in->i_goal = GOAL_STOP; /* the guest powered off */
		} else {
			inst_log_last_line(in, "hv.log", why, sizeof(why));
			in->i_goal = GOAL_FAIL;
			if (WIFEXITED(status))
				sfmt(in->i_reason, sizeof(in->i_reason),
				     "nitro-hv exited with status %d%s%s", WEXITSTATUS(status),
				     why[0] ? ": " : "", why);
			else
				sfmt(in->i_reason, sizeof(in->i_reason),
				     "nitro-hv was killed by signal %d%s%s", WTERMSIG(status),
				     why[0] ? ": " : "", why);
		}
	}
	in->i_state = ST_STOPPING;
	stop_cards(in);
	inst_save(in);
}

static void on_exit_fd(int fd)
{
	for (struct instance *in = g_ctl.c_instances; in; in = in->i_next) {
		struct proc *p = NULL;
		int idx = -1;
		if (in->i_hv.p_pidfd == fd)
			p = &in->i_hv;
		for (unsigned i = 0; !p && i < in->i_ncards; i++)
			if (in->i_cards[i].p_pidfd == fd) {
				p = &in->i_cards[i];
				idx = (int)i;
			}
		if (!p)
			continue;
		int status = 0;
		bool known = false;
		if (p->p_child) {
			pid_t r;
			while ((r = waitpid(p->p_pid, &status, WNOHANG)) < 0 && errno == EINTR)
				;
			if (r == 0)
				return; /* not yet: a spurious wake-up */
			known = r == p->p_pid;
		}
		unwatch(p);
		p->p_pid = 0;
		if (idx < 0)
			on_hv_exit(in, status, known);
		else if (in->i_state == ST_RUNNING && in->i_goal == GOAL_RUN)
			restart_card(in, (unsigned)idx);
		else if (in->i_state == ST_STOPPING && !any_alive(in))
			finish(in);
		else
			inst_save(in);
		return;
	}
	/* An fd nobody owns any more: drop it. */
	epoll_ctl(g_ctl.c_epoll, EPOLL_CTL_DEL, fd, NULL);
}

static void on_tick(void)
{
	int64_t now = now_ms();
	for (struct instance *in = g_ctl.c_instances; in; in = in->i_next) {
		if (!in->i_stop_deadline || now < in->i_stop_deadline || !any_alive(in))
			continue;
		signal_proc(&in->i_hv, SIGKILL);
		for (unsigned i = 0; i < in->i_ncards; i++)
			signal_proc(&in->i_cards[i], SIGKILL);
		in->i_stop_deadline = now + SUP_STOP_MS;
	}
}

static void *sup_main(void *arg)
{
	(void)arg;
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	for (;;) {
		struct epoll_event ev[16];
		int n = epoll_wait(g_ctl.c_epoll, ev, 16, -1);
		if (n < 0 && errno != EINTR) {
			warnmsg("supervisor: epoll_wait: %s", strerror(errno));
			sleep(1);
			continue;
		}
		pthread_mutex_lock(&g_ctl.c_lock);
		for (int i = 0; i < n; i++) {
			if (ev[i].data.fd == timer_fd) {
				uint64_t ticks;
				if (read(timer_fd, &ticks, sizeof(ticks)) < 0)
					continue;
				on_tick();
			} else {
				on_exit_fd(ev[i].data.fd);
			}
		}
		pthread_mutex_unlock(&g_ctl.c_lock);
	}
	return NULL;
}

int sup_init(char *err, size_t errlen)
{
	g_ctl.c_epoll = epoll_create1(EPOLL_CLOEXEC);
	timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (g_ctl.c_epoll < 0 || timer_fd < 0)
		RETURN_ERR(-1, "supervisor: %s", strerror(errno));
	struct itimerspec its = {{0, 250000000}, {0, 250000000}};
	timerfd_settime(timer_fd, 0, &its, NULL);
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = timer_fd};
	if (epoll_ctl(g_ctl.c_epoll, EPOLL_CTL_ADD, timer_fd, &ev) < 0)
		RETURN_ERR(-1, "supervisor: %s", strerror(errno));
	return 0;
}

int sup_start(char *err, size_t errlen)
{
	int r = pthread_create(&sup_thread, NULL, sup_main, NULL);
	if (r)
		RETURN_ERR(-1, "supervisor thread: %s", strerror(r));
	return 0;
}

/* --- after a restart --- */

static void adopt_proc(struct proc *p)
{
	p->p_pidfd = -1;
	p->p_child = false;
	if (p->p_pid <= 0 || !p->p_start || proc_start_time(p->p_pid) != p->p_start) {
		p->p_pid = 0;
		return;
	}
	watch(p);
	/* The pid may have ended between the check and pidfd_open: check again. */
	if (p->p_pidfd < 0 || proc_start_time(p->p_pid) != p->p_start) {
		unwatch(p);
		p->p_pid = 0;
	}
}

void inst_adopt(struct instance *in)
{
	adopt_proc(&in->i_hv);
	for (unsigned i = 0; i < in->i_ncards; i++)
		adopt_proc(&in->i_cards[i]);
	if (in->i_state != ST_RUNNING && in->i_state != ST_STOPPING && in->i_state != ST_PENDING)
		return;
	if (alive(&in->i_hv) && in->i_state == ST_RUNNING) {
		/* Re-adopted; a card that ended meanwhile is restarted now. */
		for (unsigned i = 0; i < in->i_ncards; i++)
			if (!alive(&in->i_cards[i]))
				restart_card(in, i);
		inst_save(in);
		return;
	}
	if (alive(&in->i_hv)) { /* a stop in progress: carry on */
		in->i_stop_deadline = now_ms() + SUP_STOP_MS;
		signal_proc(&in->i_hv, SIGTERM);
		inst_save(in);
		return;
	}
	if (in->i_goal == GOAL_RUN || in->i_goal == GOAL_REBOOT) {
		in->i_goal = GOAL_STOP;
		sfmt(in->i_reason, sizeof(in->i_reason),
		     "nitro-hv ended while nitrod was not running");
	}
	in->i_state = ST_STOPPING;
	stop_cards(in);
	inst_save(in);
}
