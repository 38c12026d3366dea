/* nitrod's shared state, the registry (ctl.c): instances, volumes and the locks around
 * them (issue 5). The bottom of the controller: it uses no other controller module.
 *
 * One mutex (ctl.c_lock) guards everything below: the HTTP worker threads take it for a
 * whole request, the supervisor thread for each process event. Every change of an
 * instance or a volume is written through to SQLite (store.h) before the lock is dropped,
 * so a restarted nitrod finds exactly what the API last reported.
 *
 * Instance lifecycle: pending -> running -> stopping -> stopped | terminated; failed with
 * a reason when a launch is refused (measurement) or nitro-hv ends with an error. A guest
 * that powers itself off ends `stopped`.
 */
#ifndef NITRO_CONTROLLER_CTL_H
#define NITRO_CONTROLLER_CTL_H

#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "controller/spec.h"
#include "lib/util.h"

struct chip;
struct audit;
struct store;

enum inst_state {
	ST_PENDING,
	ST_RUNNING,
	ST_STOPPING,
	ST_STOPPED,
	ST_TERMINATED,
	ST_FAILED,
};
const char *state_name(int st);
int state_parse(const char *s); /* -1 if unknown */

/* What a stop in progress ends in. */
enum inst_goal {
	GOAL_RUN,
	GOAL_STOP,
	GOAL_TERMINATE,
	GOAL_REBOOT, /* nitro-hv only, cards stay */
	GOAL_FAIL,   /* nitro-hv failed: stop the cards, then failed */
};

/* PK_IGW: a NIC's internet gateway NAT (nitro-vpc-igw), started with its VPC card. */
/* PK_CARD_VSOCK, PK_CARD_NSM: the vsock card and the enclaves' NSM card ("enclaves": true). */
enum proc_kind { PK_HV, PK_CARD_EBS, PK_CARD_VPC, PK_CARD_TPM, PK_IGW, PK_CARD_VSOCK, PK_CARD_NSM };

/* One supervised process (nitro-hv or a card). pid 0: not running. */
struct proc {
	int p_kind;
	pid_t p_pid;
	unsigned long long p_start; /* /proc/PID/stat start time, for re-adoption */
	int p_pidfd;		    /* -1 when not watched */
	bool p_child;		    /* ours (waitid gives the status), else adopted */
	unsigned p_restarts;
	int64_t p_restart_window; /* monotonic ms of the first restart counted */
	unsigned p_restarts_window;
};

#define INST_ID_LEN 19 /* "i-" + 17 hex digits */
/* the volumes' cards, per NIC its card and its gateway's NAT, the TPM card */
#define INST_MAX_CARDS (SPEC_MAX_VOLUMES + 2 * SPEC_MAX_NICS + 1)

struct inst_view;

struct instance {
	char i_id[INST_ID_LEN + 1];
	int i_state;
	int i_goal;
	char i_reason[512];
	struct inst_spec i_spec;
	uid_t i_uid; /* the jailed processes' uid and gid */
	gid_t i_gid;
	uid_t i_owner;	   /* the API caller that created it (api.h: who sees what) */
	int64_t i_created; /* unix seconds */
	int64_t i_launched;
	int64_t i_stop_deadline; /* monotonic ms: SIGKILL what is left after it; 0 none */
	unsigned i_launches;
	int64_t i_reboot_window; /* monotonic ms of the first guest reboot counted */
	unsigned i_reboots_window;
	struct proc i_hv;
	struct proc i_cards[INST_MAX_CARDS]; /* the launch plan's order (launch.h): volumes,
					      the NATs, the nics, the TPM */
	unsigned i_ncards;
	struct inst_view *i_view; /* the API's view, last rendered (records.h) */
	struct instance *i_next;
};

#define VOL_REC_ID_LEN 21
struct volrec {
	char v_id[VOL_REC_ID_LEN + 1];
	char v_path[PATH_MAX];
	uint64_t v_size_mib;
	bool v_encrypted;
	int64_t v_iops, v_throughput_mib; /* QoS (vol_spec): SPEC_UNSET = gp3's default */
	bool v_gp2;
	char v_attached[INST_ID_LEN + 1]; /* "" when available */
	uid_t v_owner;			  /* the API caller that created it */
	int64_t v_created;
	struct volrec *v_next;
};

/* A VPC record (POST /v1/vpcs, docs/api.md): its CIDR and whether it has an internet
 * gateway. A NIC in a VPC without a record works as before (its subnet is the VPC). */
struct vpcrec {
	uint32_t vp_id; /* 1..16777215, the Geneve VNI a NIC's "vpc" names */
	char vp_cidr[20];
	bool vp_igw;
	uid_t vp_owner; /* the (admin) caller that created it */
	int64_t vp_created;
	struct vpcrec *vp_next;
};

struct ctl {
	pthread_mutex_t c_lock;
	char c_state_dir[PATH_MAX];
	char c_bin_dir[PATH_MAX]; /* nitro-hv and the cards */
	char c_images_dir[PATH_MAX];
	char c_file_dirs[8][PATH_MAX]; /* real paths: --images and each --files */
	unsigned c_nfile_dirs;
	char c_istore_dirs[5][PATH_MAX]; /* real paths: STATE/instance-store, each
					    --instance-store-dir (istore.h) */
	unsigned c_nistore_dirs;
	struct chip *c_chip;
	struct audit *c_audit;
	struct store *c_store;
	struct instance *c_instances;
	struct volrec *c_volumes;
	struct vpcrec *c_vpcs;
	uid_t c_allow[16];
	unsigned c_nallow;
	uid_t c_admin[16]; /* --admin-uid: see and act on every instance and volume */
	unsigned c_nadmin;
	bool c_jail; /* processes go through the jailer */
	/* cgroup v2 limits for jailed processes (cgroup.h): usable when c_cgroups; else
	 * c_cgroup_err says why, and jailed launches are refused unless c_no_cgroups. */
	bool c_cgroups, c_no_cgroups;
	char c_cgroup_root[PATH_MAX];
	char c_cgroup_err[512];
	uid_t c_uid_base;
	int c_epoll;	    /* the supervisor's: pidfds and a timer */
	bool c_save_failed; /* a record could not be written (see inst_save) */
	char c_save_err[512];
	uint64_t c_console_max; /* --console-max: console.log's size cap in bytes */
};

extern struct ctl g_ctl;

/* Lookups in g_ctl's lists (caller holds c_lock); NULL when absent. Saving a record is
 * records.h's (inst_save, vol_save). */
struct instance *inst_find(const char *id);
struct volrec *vol_find(const char *id);
struct vpcrec *vpc_find(uint32_t id);

int64_t now_ms(void); /* CLOCK_MONOTONIC */

/* snprintf for messages and for paths under the state folder (whose length nitrod bounds
 * at start-up, CTL_MAX_STATE_DIR): cutting a message short is intended. */
#define CTL_MAX_STATE_DIR 512
#define CTL_CONSOLE_MAX (1 << 20) /* --console-max's default */
static inline void __attribute__((format(printf, 3, 4)))
sfmt(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}
#undef RETURN_ERR
#define RETURN_ERR(ret, ...)                                                                       \
	do {                                                                                       \
		sfmt(err, errlen, __VA_ARGS__);                                                    \
		return (ret);                                                                      \
	} while (0)

#endif
