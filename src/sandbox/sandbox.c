/* Seccomp allow-lists per process kind (contract in sandbox.h; the why of each call is
 * also in docs/security.md). Default action: kill the process. */
#include "sandbox/sandbox.h"
#include "lib/util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <sched.h>
#include <seccomp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <termios.h>

/* Every process: memory, threads, time, signals, exit, plain fd I/O. */
static const int base_calls[] = {
    /* fd I/O on what set-up opened (console, sockets, eventfds, volume) */
    SCMP_SYS(read),
    SCMP_SYS(write),
    SCMP_SYS(readv),
    SCMP_SYS(writev),
    SCMP_SYS(pread64),
    SCMP_SYS(pwrite64),
    SCMP_SYS(preadv),
    SCMP_SYS(pwritev),
    SCMP_SYS(close),
    SCMP_SYS(lseek),
    SCMP_SYS(fstat),
    SCMP_SYS(newfstatat),
    SCMP_SYS(fcntl),
    SCMP_SYS(dup),
    SCMP_SYS(dup3),
    SCMP_SYS(fsync),
    SCMP_SYS(fdatasync),
    /* waiting: poll loops, epoll loops, eventfds made for new queues */
    SCMP_SYS(poll),
    SCMP_SYS(ppoll),
    SCMP_SYS(epoll_wait),
    SCMP_SYS(epoll_pwait),
    SCMP_SYS(epoll_ctl),
    SCMP_SYS(eventfd2),
    /* memory: malloc, thread stacks, guest memory tables from a (re)connecting peer (mmap and
     * mprotect are added below, without PROT_EXEC) */
    SCMP_SYS(munmap),
    SCMP_SYS(madvise),
    SCMP_SYS(mremap),
    SCMP_SYS(brk),
    /* threads and locks (clone is restricted to CLONE_THREAD below) */
    SCMP_SYS(futex),
    SCMP_SYS(set_robust_list),
    SCMP_SYS(rseq),
    SCMP_SYS(sched_yield),
    SCMP_SYS(gettid),
    SCMP_SYS(getpid),
    SCMP_SYS(sched_getaffinity),
    /* time */
    SCMP_SYS(clock_gettime),
    SCMP_SYS(clock_nanosleep),
    SCMP_SYS(nanosleep),
    SCMP_SYS(gettimeofday),
    /* signals: handlers return, threads are woken/stopped with tgkill, masks per thread */
    SCMP_SYS(rt_sigreturn),
    SCMP_SYS(rt_sigprocmask),
    SCMP_SYS(rt_sigaction),
    SCMP_SYS(sigaltstack),
    SCMP_SYS(tgkill),
    SCMP_SYS(restart_syscall),
    /* randomness for libc/OpenSSL; exit */
    SCMP_SYS(getrandom),
    SCMP_SYS(exit),
    SCMP_SYS(exit_group),
};

/* nitro-hv: vCPU threads in KVM_RUN, the serial console on stdin/stdout, eventfds and
 * vhost-user sockets to the cards (reconnect after a card restart). */
static const int hv_calls[] = {
    SCMP_SYS(connect),	 /* reconnect to a restarted card (AF_UNIX only, see socket) */
    SCMP_SYS(sendmsg),	 /* vhost-user requests with fds (memory table, eventfds) */
    SCMP_SYS(recvmsg),	 /* vhost-user replies */
    SCMP_SYS(fallocate), /* --enclaves: a stopped enclave's pages punched out of the memfd */
    SCMP_SYS(recvfrom),	 /* recv() of vhost-user replies (vCPU threads on a BAR write) */
    SCMP_SYS(sendto),	 /* send() of vhost-user requests without fds */
    SCMP_SYS(shutdown),	 /* drop a card connection */
    /* cutting a console file down to its cap (serial_set_cap, --console-max) */
    SCMP_SYS(ftruncate),
};

/* The ioctls of running vCPUs, both nitro-hv lists' (interrupts, ioeventfds, vCPU state). */
#define VCPU_IOCTLS                                                                                \
	KVM_RUN, KVM_GET_SUPPORTED_CPUID, /* each vCPU thread sets its CPUID from it */            \
	    KVM_IRQ_LINE, KVM_IRQ_LINE_STATUS, KVM_IOEVENTFD, KVM_IRQFD, KVM_SET_GSI_ROUTING,      \
	    KVM_SIGNAL_MSI, KVM_GET_REGS, KVM_SET_REGS, KVM_GET_SREGS, KVM_SET_SREGS,              \
	    KVM_SET_MSRS, KVM_GET_MSRS, KVM_SET_CPUID2, KVM_SET_FPU, KVM_GET_LAPIC, KVM_SET_LAPIC, \
	    KVM_GET_VCPU_EVENTS, KVM_SET_VCPU_EVENTS, KVM_SET_MP_STATE, KVM_GET_MP_STATE,          \
	    KVM_SET_SIGNAL_MASK

/* KVM ioctls nitro-hv makes after set-up: run vCPUs, raise interrupts, wire ioeventfds and
 * irqfds for card queues when the guest programs a BAR or MSI-X, read and write vCPU
 * state (start-up of each vCPU thread, the crash register dump). Plus the console tty. */
static const unsigned long hv_ioctls[] = {
    VCPU_IOCTLS, KVM_CREATE_VCPU, KVM_SET_USER_MEMORY_REGION, TCGETS, TCSETS, TCSETSW, TCSETSF,
    TIOCGWINSZ,	 FIONBIO,
};

/* An enclave's nitro-hv (nitro-hv --enclave, "hv-enclave"): its vCPU threads in KVM_RUN,
 * vhost-user on the card connections its spawner made and handed over (no socket, no
 * connect: it cannot open another connection or claim another enclave's CID), eventfds,
 * its console file. No fallocate (the parent scrubs), no tty, no memory slots (its RAM is
 * fixed at set-up), no vCPU creation (done at set-up). */
static const int hv_enclave_calls[] = {
    SCMP_SYS(sendmsg),	 /* vhost-user requests with fds (eventfds) */
    SCMP_SYS(recvmsg),	 /* vhost-user replies */
    SCMP_SYS(recvfrom),	 /* recv() of vhost-user replies */
    SCMP_SYS(sendto),	 /* send() of vhost-user requests without fds */
    SCMP_SYS(ftruncate), /* the debug console's cap (--console-max) */
};
static const unsigned long hv_enclave_ioctls[] = {VCPU_IOCTLS};

/* Cards: serve vhost-user frontends (accept a reconnecting nitro-hv, fds over SCM_RIGHTS,
 * guest memory mmap'ed from the memfd received), io_uring for the block back end, NBD
 * sockets already connected, timers for rate limiting, signalfd for SIGUSR1 stats. */
static const int card_calls[] = {
    SCMP_SYS(accept4),
    SCMP_SYS(accept),
    SCMP_SYS(sendmsg),
    SCMP_SYS(recvmsg),
    SCMP_SYS(sendto),
    SCMP_SYS(recvfrom),
    SCMP_SYS(shutdown),
    SCMP_SYS(getsockopt),
    SCMP_SYS(setsockopt),
    SCMP_SYS(io_uring_enter),
    SCMP_SYS(io_uring_register),
    SCMP_SYS(timerfd_create),
    SCMP_SYS(timerfd_settime),
    SCMP_SYS(timerfd_gettime),
    SCMP_SYS(signalfd4),
    SCMP_SYS(fallocate),
    SCMP_SYS(ftruncate),
    SCMP_SYS(mlock),
    SCMP_SYS(munlock),
    SCMP_SYS(getsockname),
    SCMP_SYS(getpeername),
    /* removing its own socket (and the VPC card its mapping-service entry) when it ends;
     * the jail shows a card only its run folder and the mapping folder */
    SCMP_SYS(unlink),
};

/* The VPC card also sends and receives the UDP underlay (bound before the filter: no
 * bind or connect after set-up). Reading mapping entries on a cache miss needs openat,
 * allowed read-only below. */
static const int vpc_calls[] = {
    SCMP_SYS(sendmmsg),
    SCMP_SYS(recvmmsg),
};

/* The TPM card: its NV blobs in the state folder it opened before (openat on that dirfd,
 * write to NAME.tmp, fsync, rename over NAME.nvs, unlink a deleted blob); the rest is
 * card_calls (accepting the next nitro-hv, the shared page's memfd over SCM_RIGHTS). */
static const int tpm_calls[] = {
    SCMP_SYS(renameat),
    SCMP_SYS(renameat2),
    SCMP_SYS(unlinkat),
};

static const unsigned long card_ioctls[] = {FIONBIO, FIONREAD, TCGETS};
/* The NSM card (nitro-card-nsm): fewer calls than the other cards. It accepts enclave
 * connections on the listener made before the filter, reads each one's hello and vhost-user
 * messages (fds over SCM_RIGHTS, guest memory mmap'ed from the memfd received; SO_RCVTIMEO
 * bounds a stalled peer), answers, and removes its socket when it ends. Keys and
 * signatures are computation (OpenSSL, getrandom). No file is opened after set-up. */
static const int nsm_calls[] = {
    SCMP_SYS(accept4),	  SCMP_SYS(sendmsg),  SCMP_SYS(recvmsg),
    SCMP_SYS(sendto),	  SCMP_SYS(recvfrom), SCMP_SYS(setsockopt),
    SCMP_SYS(getsockopt), SCMP_SYS(shutdown), SCMP_SYS(unlink),
};

/* The vsock card (nitro-card-vsock), on its own short list: no storage, no timers, no
 * io_uring, no ioctl. It accepts frontends (the parent's next nitro-hv, enclaves' on the
 * enclave socket), reads and writes vhost-user messages with fds (recvmsg/sendmsg; the
 * hello's timeout is poll, in base_calls), sets each connection's receive timeout, maps
 * guest memory (mmap without PROT_EXEC, base) and removes its sockets when it ends. */
static const int vsock_calls[] = {
    SCMP_SYS(accept4),	SCMP_SYS(sendmsg),    SCMP_SYS(recvmsg),    SCMP_SYS(sendto),
    SCMP_SYS(recvfrom), SCMP_SYS(setsockopt), SCMP_SYS(getsockopt), SCMP_SYS(unlink),
};

/* The internet gateway's NAT (nitro-vpc-igw, libslirp): the only process with sockets of
 * its own making after set-up, in the host's network namespace. It makes AF_INET TCP and
 * UDP sockets for the guest's flows (socket, rule below), connects them (non-blocking),
 * sets their options, reads and writes them and its SOCK_SEQPACKET link to the card,
 * polls; reads /etc/resolv.conf for the nameserver alias (openat read-only, below). No
 * bind, listen or accept (outbound only), no ICMP or raw socket, no guest memory. */
static const int igw_calls[] = {
    SCMP_SYS(connect),	   SCMP_SYS(sendto),	  SCMP_SYS(recvfrom),	SCMP_SYS(sendmsg),
    SCMP_SYS(recvmsg),	   SCMP_SYS(shutdown),	  SCMP_SYS(getsockopt), SCMP_SYS(setsockopt),
    SCMP_SYS(getsockname), SCMP_SYS(getpeername),
};
static const unsigned long igw_ioctls[] = {FIONBIO, FIONREAD};

static int add_all(scmp_filter_ctx ctx, const int *calls, size_t n, char *err, size_t errlen)
{
	for (size_t i = 0; i < n; i++) {
		int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, calls[i], 0);
		if (rc < 0) {
			char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, calls[i]);
			snprintf(err, errlen, "seccomp: allow %s: %s", name ? name : "?",
				 strerror(-rc));
			free(name);
			return -1;
		}
	}
	return 0;
}

static int add_ioctls(scmp_filter_ctx ctx, const unsigned long *req, size_t n, char *err,
		      size_t errlen)
{
	for (size_t i = 0; i < n; i++) {
		/* The kernel reads the request as 32 bits; compare those only. */
		int rc = seccomp_rule_add(
		    ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
		    SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffUL, req[i] & 0xffffffffUL));
		if (rc < 0)
			RETURN_ERR(-1, "seccomp: allow ioctl %#lx: %s", req[i], strerror(-rc));
	}
	return 0;
}

int sandbox_enter(const char *kind, char *err, size_t errlen)
{
	bool log = false;
	char k[32];
	if (errlen)
		err[0] = 0;
	snprintf(k, sizeof(k), "%s", kind ? kind : "");
	char *colon = strchr(k, ':');
	if (colon && !strcmp(colon, ":log")) { /* development: log instead of kill */
		*colon = 0;
		log = true;
	}
	bool hv = !strcmp(k, "hv"), hv_enclave = !strcmp(k, "hv-enclave"),
	     ebs = !strcmp(k, "card-ebs"), vpc = !strcmp(k, "card-vpc");
	bool tpm = !strcmp(k, "card-tpm"), igw = !strcmp(k, "igw");
	bool vsock = !strcmp(k, "card-vsock"), nsm = !strcmp(k, "card-nsm");
	if (!hv && !hv_enclave && !ebs && !vpc && !tpm && !igw && !vsock && !nsm)
		RETURN_ERR(
		    -1,
		    "seccomp: unknown process kind '%s' (hv, hv-enclave, card-ebs, card-vpc, "
		    "card-tpm, card-vsock, card-nsm, igw)",
		    kind ? kind : "");
	scmp_filter_ctx ctx = seccomp_init(log ? SCMP_ACT_LOG : SCMP_ACT_KILL_PROCESS);
	if (!ctx)
		RETURN_ERR(-1, "seccomp: cannot initialise libseccomp");
	int rc = 0;
	/* All threads, now and later; no_new_privs is set by the jailer already. */
	if (seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1) < 0 ||
	    seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 1) < 0)
		rc = -1;
	if (!rc)
		rc = add_all(ctx, base_calls, ARRAY_SIZE(base_calls), err, errlen);
	/* Threads only: clone must carry CLONE_THREAD (no new processes). clone3 passes its
	 * flags in memory a filter cannot read: ENOSYS makes glibc fall back to clone. */
	if (!rc && (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
				     SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD)) < 0 ||
		    seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0) < 0))
		rc = -1;
	/* execve is refused without a kill so nitro-hv's reboot path (re-exec) fails cleanly
	 * and exits; it is never allowed. */
	/* W^X after set-up: no new executable mappings (nothing is loaded any more). */
	if (!rc && (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
				     SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0)) < 0 ||
		    seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
				     SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0)) < 0))
		rc = -1;
	/* prctl only to name threads (pthread_setname_np: "vcpu0", "card-watch"). */
	if (!rc && seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
				    SCMP_A0(SCMP_CMP_EQ, PR_SET_NAME)) < 0)
		rc = -1;
	if (!rc && (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(execve), 0) < 0 ||
		    seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(execveat), 0) < 0))
		rc = -1;
	/* Sockets, family and type: nitro-hv makes only AF_UNIX SOCK_STREAM sockets after
	 * set-up (reconnecting to a restarted card; SOCK_CLOEXEC/SOCK_NONBLOCK may be set,
	 * protocol 0). The cards make none: their listeners, the VPC card's underlay socket
	 * (created by its launcher, --underlay-fd) and an NBD connection exist before the
	 * filter. No AF_INET/AF_INET6 or datagram socket anywhere. */
	if (!rc && hv &&
	    seccomp_rule_add(
		ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 3, SCMP_A0(SCMP_CMP_EQ, AF_UNIX),
		SCMP_A1(SCMP_CMP_MASKED_EQ,
			0xffffffffUL & ~(unsigned long)(SOCK_CLOEXEC | SOCK_NONBLOCK), SOCK_STREAM),
		SCMP_A2(SCMP_CMP_EQ, 0)) < 0)
		rc = -1;
	/* The NAT: AF_INET stream and datagram sockets only (protocol 0, TCP or UDP). */
	for (int t = 0; !rc && igw && t < 2; t++)
		if (seccomp_rule_add(
			ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 2, SCMP_A0(SCMP_CMP_EQ, AF_INET),
			SCMP_A1(SCMP_CMP_MASKED_EQ,
				0xffffffffUL & ~(unsigned long)(SOCK_CLOEXEC | SOCK_NONBLOCK),
				t ? SOCK_DGRAM : SOCK_STREAM)) < 0)
			rc = -1;
	if (rc && !err[0])
		snprintf(err, errlen, "seccomp: cannot add the base rules");
	if (!rc && hv)
		rc = add_all(ctx, hv_calls, ARRAY_SIZE(hv_calls), err, errlen) ||
		     add_ioctls(ctx, hv_ioctls, ARRAY_SIZE(hv_ioctls), err, errlen);
	if (!rc && hv_enclave)
		rc = add_all(ctx, hv_enclave_calls, ARRAY_SIZE(hv_enclave_calls), err, errlen) ||
		     add_ioctls(ctx, hv_enclave_ioctls, ARRAY_SIZE(hv_enclave_ioctls), err, errlen);
	if (!rc && (ebs || vpc || tpm))
		rc = add_all(ctx, card_calls, ARRAY_SIZE(card_calls), err, errlen) ||
		     add_ioctls(ctx, card_ioctls, ARRAY_SIZE(card_ioctls), err, errlen);
	if (!rc && tpm)
		rc = add_all(ctx, tpm_calls, ARRAY_SIZE(tpm_calls), err, errlen);
	if (!rc && vsock)
		rc = add_all(ctx, vsock_calls, ARRAY_SIZE(vsock_calls), err, errlen);
	/* The TPM card opens its blobs under the state folder's fd: read-only, or a new
	 * NAME.tmp for writing; never for appending, never a tmpfile. */
	if (!rc && tpm &&
	    (seccomp_rule_add(
		 ctx, SCMP_ACT_ALLOW, SCMP_SYS(openat), 1,
		 SCMP_A2(SCMP_CMP_MASKED_EQ, O_ACCMODE | O_APPEND | __O_TMPFILE, O_RDONLY)) < 0 ||
	     seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(openat), 1,
			      SCMP_A2(SCMP_CMP_MASKED_EQ,
				      O_ACCMODE | O_CREAT | O_TRUNC | O_APPEND | __O_TMPFILE,
				      O_WRONLY | O_CREAT | O_TRUNC)) < 0)) {
		snprintf(err, errlen, "seccomp: allow the TPM card's openat: cannot add the rule");
		rc = -1;
	}
	if (!rc && nsm)
		rc = add_all(ctx, nsm_calls, ARRAY_SIZE(nsm_calls), err, errlen);
	/* The NSM card's pool filler thread drops itself to SCHED_IDLE once its pool is first
	 * full (src/cards/nsm/refill.h): sched_setscheduler of the calling thread (pid 0) to
	 * SCHED_IDLE only, never to a real-time or a higher policy. */
	if (!rc && nsm &&
	    seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(sched_setscheduler), 2,
			     SCMP_A0(SCMP_CMP_EQ, 0), SCMP_A1(SCMP_CMP_EQ, SCHED_IDLE)) < 0) {
		snprintf(err, errlen,
			 "seccomp: allow the NSM card's SCHED_IDLE: cannot add the rule");
		rc = -1;
	}
	if (!rc && vpc)
		rc = add_all(ctx, vpc_calls, ARRAY_SIZE(vpc_calls), err, errlen);
	if (!rc && igw)
		rc = add_all(ctx, igw_calls, ARRAY_SIZE(igw_calls), err, errlen) ||
		     add_ioctls(ctx, igw_ioctls, ARRAY_SIZE(igw_ioctls), err, errlen);
	/* The VPC card opens mapping entries read-only (the NAT: /etc/resolv.conf): no
	 * create, truncate, append, tmpfile, no write access. */
	if (!rc && (vpc || igw) &&
	    seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(openat), 1,
			     SCMP_A2(SCMP_CMP_MASKED_EQ,
				     O_ACCMODE | O_CREAT | O_TRUNC | O_APPEND | __O_TMPFILE,
				     O_RDONLY)) < 0) {
		snprintf(err, errlen, "seccomp: allow openat read-only: cannot add the rule");
		rc = -1;
	}
	if (!rc && prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
		snprintf(err, errlen, "seccomp: PR_SET_DUMPABLE: %s", strerror(errno));
		rc = -1;
	}
	if (!rc) {
		int lr = seccomp_load(ctx);
		if (lr < 0) {
			snprintf(err, errlen, "seccomp: loading the %s filter: %s", k,
				 strerror(-lr));
			rc = -1;
		}
	}
	seccomp_release(ctx);
	return rc ? -1 : 0;
}

/* Calls no enclave nitro-hv makes at any time, from its exec on: it gets its card
 * connections from the spawner and never forks. */
static const int enclave_exec_denied[] = {
    SCMP_SYS(socket),  SCMP_SYS(socketpair),
    SCMP_SYS(connect), SCMP_SYS(bind),
    SCMP_SYS(listen),  SCMP_SYS(accept),
    SCMP_SYS(accept4), SCMP_SYS(fork),
    SCMP_SYS(vfork),   SCMP_SYS(fallocate),
    SCMP_SYS(ptrace),  SCMP_SYS(process_vm_readv),
    SCMP_SYS(kill),    SCMP_SYS(process_vm_writev),
};

int sandbox_enter_enclave_exec(char *err, size_t errlen)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (!ctx)
		RETURN_ERR(-1, "seccomp: cannot initialise libseccomp");
	int rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 1);
	for (size_t i = 0; !rc && i < ARRAY_SIZE(enclave_exec_denied); i++)
		rc = seccomp_rule_add(ctx, SCMP_ACT_KILL_PROCESS, enclave_exec_denied[i], 0);
	/* clone only for threads (pthread_create); clone3's flags are out of a filter's
	 * reach: ENOSYS makes glibc fall back to clone */
	if (!rc)
		rc = seccomp_rule_add(ctx, SCMP_ACT_KILL_PROCESS, SCMP_SYS(clone), 1,
				      SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, 0));
	if (!rc)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	if (!rc)
		rc = seccomp_load(ctx);
	seccomp_release(ctx);
	if (rc < 0)
		RETURN_ERR(-1, "seccomp: the enclave exec filter: %s", strerror(-rc));
	return 0;
}

int sandbox_enter_from_env(char *err, size_t errlen)
{
	const char *k = getenv("NITRO_SECCOMP");
	if (!k || !*k)
		return 0;
	return sandbox_enter(k, err, errlen);
}
