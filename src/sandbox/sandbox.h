/* Per-process seccomp allow-lists, installed by each jailed binary itself (issue 5).
 *
 * A jailed process does its set-up (opens /dev/kvm, creates the VM and guest memory,
 * connects its sockets, reads its kernel) and then calls sandbox_enter_from_env(): if the
 * environment has NITRO_SECCOMP=KIND (set by the jailer) it installs KIND's allow-list
 * with libseccomp, default action SCMP_ACT_KILL_PROCESS (the whole process dies with
 * SIGSYS on any other system call), synchronised over all threads (TSYNC), and sets
 * PR_SET_DUMPABLE 0 (no core dumps, no ptrace by the same uid). execve is in no list.
 * Kinds: "hv" (nitro-hv), "hv-enclave" (nitro-hv --enclave, which takes it instead of
 * any inherited kind: no socket, connect or fallocate), "card-ebs", "card-vpc", "card-tpm",
 * "card-vsock", "card-nsm", "igw" (nitro-vpc-igw, the internet gateway's NAT, which installs it
 * itself, always); each list and why each call is there is in docs/security.md and beside the list
 * in sandbox.c.
 */
#ifndef NITRO_SANDBOX_SANDBOX_H
#define NITRO_SANDBOX_SANDBOX_H

#include <stddef.h>

/* Installs the allow-list of kind. Returns 0, or -1 with err set (unknown kind, libseccomp
 * failure). */
int sandbox_enter(const char *kind, char *err, size_t errlen);

/* The enclave spawner's child, just before it execs an enclave's nitro-hv (which keeps the
 * filter for good; its own list "hv-enclave" comes on top once its set-up is done): every
 * call allowed but those no enclave nitro-hv makes from its exec on: socket, socketpair,
 * connect, bind, listen, accept, fork (clone without CLONE_THREAD), fallocate, ptrace,
 * kill, process_vm_readv/writev kill the process. So even the set-up before its own list
 * (which parses the parent's EIF) cannot open a connection to a card. Sets no_new_privs.
 * 0, or -1 with err. */
int sandbox_enter_enclave_exec(char *err, size_t errlen);

/* Does nothing (returns 0) when NITRO_SECCOMP is unset or empty; else sandbox_enter with
 * its value. A caller that gets -1 must exit: running without its filter is not allowed. */
int sandbox_enter_from_env(char *err, size_t errlen);

#endif
