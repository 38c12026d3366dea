/* The KVM virtual machine: one VM fd, guest memory slots, the in-kernel irqchip and
 * PIT, and one thread per vCPU running KVM_RUN.
 *
 * vm_open() checks /dev/kvm and its capabilities; vm_create() builds the VM for a
 * memory layout; vm_start() sets up every vCPU (CPUID, MSRs, FPU, LAPIC; registers for
 * the boot CPU) and starts their threads. Port I/O exits go to vm->pio. A vCPU that hits
 * an unrecoverable exit (triple fault, internal error) reports it with a register dump
 * and ends the process through vm_exit().
 */
#ifndef NITRO_HV_VM_H
#define NITRO_HV_VM_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "boot/memory.h"
#include "hv/mmio.h"
#include "hv/pio.h"

#define VM_MAX_VCPUS 254

struct vcpu {
	struct vm *vc_vm;
	unsigned vc_index;
	int vc_fd;
	int vc_stats_fd; /* KVM's counters of this vCPU (kvmstats.h), -1 when none */
	struct kvm_run *vc_run;
	pthread_t vc_thread;
	atomic_ulong vc_exits; /* KVM_RUN returns, all reasons */
	atomic_ulong vc_io_exits;
	atomic_ulong vc_mmio_exits;
	atomic_bool vc_in_run; /* between the pause check and the end of KVM_RUN */
	atomic_bool vc_held;   /* vm_vcpu_hold: out of KVM_RUN until vm_vcpu_release */
};

#define VM_GSI_MAX 256
#define VM_GSI_FIRST_MSI 24 /* after the I/O APIC's pins */

struct vm {
	int vm_kvm_fd;
	int vm_fd;
	size_t vm_run_size;
	unsigned vm_max_vcpus; /* what KVM allows */
	struct guest_mem vm_mem;
	struct pio_bus vm_pio;
	unsigned vm_ncpus;
	struct vcpu *vm_vcpus;
	uint64_t vm_entry; /* boot CPU: rip; rsi = zero page */
	struct mmio_bus vm_mmio;
	pthread_mutex_t vm_route_lock;
	unsigned vm_msi_next; /* next free MSI GSI */
	struct kvm_irq_routing_entry vm_msi[VM_GSI_MAX - VM_GSI_FIRST_MSI];
	/* vm_pause: vCPUs do not enter KVM_RUN while vm_pause_req is set */
	atomic_bool vm_pause_req;
	pthread_mutex_t vm_pause_lock; /* one pauser at a time; vCPUs park on vm_pause_cond */
	pthread_mutex_t vm_park_lock;
	pthread_cond_t vm_pause_cond;
};

/* Opens /dev/kvm; returns 0, or an errno value with a message in err. */
int vm_open(struct vm *vm, char *err, size_t errlen);
int vm_create(struct vm *vm, uint64_t mem_size, unsigned ncpus, char *err, size_t errlen);
/* The same with an enclave's RAM: the ranges of memfd fd (mem_map_pieces), which the VM
 * then owns (closed with it). */
int vm_create_pieces(struct vm *vm, int fd, const struct mem_piece *pieces, unsigned n,
		     unsigned ncpus, char *err, size_t errlen);
int vm_start(struct vm *vm, char *err, size_t errlen);
/* Drives an ISA interrupt line (in-kernel PIC + I/O APIC). */
void vm_irq_line(struct vm *vm, unsigned irq, int level);
/* MSI routes for irqfds: allocate a GSI, point it at an MSI address/data (the whole
 * routing table, with the default irqchip routes, is rewritten), attach an eventfd. */
int vm_msi_alloc(struct vm *vm);
int vm_msi_set(struct vm *vm, int gsi, uint64_t addr, uint32_t data);
int vm_irqfd(struct vm *vm, int gsi, int fd, bool assign);
/* Injects one MSI now (KVM_SIGNAL_MSI). */
int vm_signal_msi(struct vm *vm, uint64_t addr, uint32_t data);
/* A KVM ioeventfd: a guest write of len bytes at addr signals fd, with no exit. */
int vm_ioeventfd(struct vm *vm, uint64_t addr, unsigned len, int fd, bool assign);
/* Holds every vCPU out of KVM_RUN (kicked with a signal and immediate_exit) until
 * vm_resume: guest memory slots can then change with no vCPU using them. Callable from a
 * vCPU thread (an MMIO exit: that vCPU is out of KVM_RUN already) or any other thread of
 * the running VM; a vCPU blocked elsewhere (a device lock) counts as out. */
void vm_pause(struct vm *vm);
void vm_resume(struct vm *vm);
/* Holds vCPU index (never 0: refused) out of KVM_RUN past vm_resume, until
 * vm_vcpu_release: an enclave's donated vCPUs, which the parent must not run while the
 * enclave does. Call between vm_pause and vm_resume (the vCPU is out of KVM_RUN then).
 * What the guest sends it meanwhile (INIT/SIPI, IPIs) stays pending in its in-kernel
 * LAPIC. Returns false (nothing done) for vCPU 0 or an index past vm_ncpus. */
bool vm_vcpu_hold(struct vm *vm, unsigned index);
/* Lets a held vCPU run again (any thread, no pause needed). An INIT the guest sent it
 * while held is dropped first (with a KVM VM): the guest gave up on that wake-up (Linux:
 * "failed to come online"), so the vCPU goes back to where it was (an offline CPU's halt
 * loop) rather than start the guest's abandoned bring-up; its next wake-up works as usual. */
void vm_vcpu_release(struct vm *vm, unsigned index);
/* Ends the process with status (once; concurrent callers wait to die with it). */
_Noreturn void vm_exit(int status);
/* Registers a hook vm_exit runs first (the hypervisor restores the terminal there). */
void vm_set_exit_hook(void (*hook)(void));

#endif
