/* KVM VM and vCPU set-up and run loops. */
#include "hv/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "boot/boot.h"
#include "hv/cpuid.h"
#include "hv/kvmstats.h"
#include "lib/util.h"

#define TSS_ADDR 0xfffbd000ull
#define IDENTITY_MAP_ADDR 0xfffbc000ull
#define CPUID_MAX_ENTRIES 256

#define MSR_IA32_SYSENTER_CS 0x174
#define MSR_IA32_SYSENTER_ESP 0x175
#define MSR_IA32_SYSENTER_EIP 0x176
#define MSR_STAR 0xc0000081
#define MSR_LSTAR 0xc0000082
#define MSR_CSTAR 0xc0000083
#define MSR_SYSCALL_MASK 0xc0000084
#define MSR_KERNEL_GS_BASE 0xc0000102
#define MSR_IA32_TSC 0x10
#define MSR_IA32_MISC_ENABLE 0x1a0
#define MSR_MTRR_DEF_TYPE 0x2ff
#define MISC_ENABLE_FAST_STRING 1
#define MTRR_ENABLE (1u << 11)
#define MTRR_TYPE_WB 6

#define APIC_LVT0 0x350
#define APIC_LVT1 0x360
#define APIC_MODE_EXTINT 0x7
#define APIC_MODE_NMI 0x4

#define FAIL(...) RETURN_ERR(-1, __VA_ARGS__)

static void (*exit_hook)(void);
static pthread_mutex_t exit_lock = PTHREAD_MUTEX_INITIALIZER;

void vm_set_exit_hook(void (*hook)(void))
{
	exit_hook = hook;
}

void vm_exit(int status)
{
	pthread_mutex_lock(&exit_lock); /* never unlocked: the first caller ends the process */
	if (exit_hook)
		exit_hook();
	fflush(stdout);
	fflush(stderr);
	_exit(status);
}

int vm_open(struct vm *vm, char *err, size_t errlen)
{
	memset(vm, 0, sizeof(*vm));
	vm->vm_fd = -1;
	vm->vm_kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->vm_kvm_fd < 0) {
		int e = errno;
		snprintf(err, errlen, "/dev/kvm: %s", strerror(e));
		return e;
	}
	int api = ioctl(vm->vm_kvm_fd, KVM_GET_API_VERSION, 0);
	if (api != KVM_API_VERSION) {
		snprintf(err, errlen, "/dev/kvm: API version %d, expected %d", api,
			 KVM_API_VERSION);
		return EINVAL;
	}
	static const struct {
		int cap;
		const char *name;
	} need[] = {
	    {KVM_CAP_IRQCHIP, "IRQCHIP"},
	    {KVM_CAP_USER_MEMORY, "USER_MEMORY"},
	    {KVM_CAP_EXT_CPUID, "EXT_CPUID"},
	    {KVM_CAP_PIT2, "PIT2"},
	    {KVM_CAP_IMMEDIATE_EXIT, "IMMEDIATE_EXIT"},
	    {KVM_CAP_SET_TSS_ADDR, "SET_TSS_ADDR"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(need); i++)
		if (ioctl(vm->vm_kvm_fd, KVM_CHECK_EXTENSION, need[i].cap) <= 0) {
			snprintf(err, errlen, "/dev/kvm: lacks KVM_CAP_%s", need[i].name);
			return ENOTSUP;
		}
	int max = ioctl(vm->vm_kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (max <= 0)
		max = ioctl(vm->vm_kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	if (max <= 0)
		max = 4;
	vm->vm_max_vcpus = (unsigned)max < VM_MAX_VCPUS ? (unsigned)max : VM_MAX_VCPUS;
	int rs = ioctl(vm->vm_kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (rs <= 0) {
		snprintf(err, errlen, "/dev/kvm: KVM_GET_VCPU_MMAP_SIZE failed");
		return EINVAL;
	}
	vm->vm_run_size = (size_t)rs;
	return 0;
}

static int vm_create_common(struct vm *vm, uint64_t mem_size, int pieces_fd,
			    const struct mem_piece *pieces, unsigned npieces, unsigned ncpus,
			    char *err, size_t errlen)
{
	if (ncpus == 0 || ncpus > vm->vm_max_vcpus)
		FAIL("--cpus %u: KVM on this host allows 1 to %u", ncpus, vm->vm_max_vcpus);
	vm->vm_ncpus = ncpus;
	mmio_init(&vm->vm_mmio);
	pthread_mutex_init(&vm->vm_route_lock, NULL);
	pthread_mutex_init(&vm->vm_pause_lock, NULL);
	pthread_mutex_init(&vm->vm_park_lock, NULL);
	pthread_cond_init(&vm->vm_pause_cond, NULL);
	vm->vm_fd = ioctl(vm->vm_kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0)
		FAIL("KVM_CREATE_VM: %s", strerror(errno));
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, TSS_ADDR) < 0)
		FAIL("KVM_SET_TSS_ADDR: %s", strerror(errno));
	uint64_t idmap = IDENTITY_MAP_ADDR;
	if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0)
		FAIL("KVM_SET_IDENTITY_MAP_ADDR: %s", strerror(errno));
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		FAIL("KVM_CREATE_IRQCHIP: %s", strerror(errno));
	struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
	if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
		FAIL("KVM_CREATE_PIT2: %s", strerror(errno));

	if (npieces) {
		int e = mem_map_pieces(&vm->vm_mem, pieces_fd, pieces, npieces);
		if (e)
			FAIL("enclave memory (%u ranges of fd %d): %s", npieces, pieces_fd,
			     e == EINVAL
				 ? "misaligned, empty, or a total under 64 MiB or over 1 TiB"
			     : e == ENXIO ? "a range past the end of the memfd"
					  : strerror(e));
	} else {
		int e = mem_create(&vm->vm_mem, mem_size);
		if (e)
			FAIL("guest memory (%llu MiB): %s", (unsigned long long)(mem_size >> 20),
			     strerror(e));
	}
	for (unsigned i = 0; i < vm->vm_mem.gm_nregions; i++) {
		const struct mem_region *r = &vm->vm_mem.gm_regions[i];
		struct kvm_userspace_memory_region slot = {
		    .slot = i,
		    .guest_phys_addr = r->mr_gpa,
		    .memory_size = r->mr_size,
		    .userspace_addr = (uint64_t)(uintptr_t)(vm->vm_mem.gm_base + r->mr_offset),
		};
		if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0)
			FAIL("KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
	}
	vm->vm_vcpus = calloc(ncpus, sizeof(struct vcpu));
	if (!vm->vm_vcpus)
		FAIL("out of memory");
	for (unsigned i = 0; i < ncpus; i++) {
		struct vcpu *v = &vm->vm_vcpus[i];
		v->vc_vm = vm;
		v->vc_index = i;
		v->vc_fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, i);
		if (v->vc_fd < 0)
			FAIL("KVM_CREATE_VCPU %u: %s", i, strerror(errno));
		v->vc_stats_fd = kvmstats_open(v->vc_fd);
		v->vc_run =
		    mmap(NULL, vm->vm_run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->vc_fd, 0);
		if (v->vc_run == MAP_FAILED)
			FAIL("mmap of vCPU %u: %s", i, strerror(errno));
	}
	return 0;
}

int vm_create(struct vm *vm, uint64_t mem_size, unsigned ncpus, char *err, size_t errlen)
{
	return vm_create_common(vm, mem_size, -1, NULL, 0, ncpus, err, errlen);
}

int vm_create_pieces(struct vm *vm, int fd, const struct mem_piece *pieces, unsigned n,
		     unsigned ncpus, char *err, size_t errlen)
{
	if (!n)
		FAIL("enclave memory: no range");
	return vm_create_common(vm, 0, fd, pieces, n, ncpus, err, errlen);
}

int vm_msi_alloc(struct vm *vm)
{
	pthread_mutex_lock(&vm->vm_route_lock);
	int gsi = -1;
	if (vm->vm_msi_next < VM_GSI_MAX - VM_GSI_FIRST_MSI)
		gsi = VM_GSI_FIRST_MSI + (int)vm->vm_msi_next++;
	pthread_mutex_unlock(&vm->vm_route_lock);
	return gsi;
}

/* KVM_SET_GSI_ROUTING replaces the table: the irqchip routes KVM starts with (GSI n to
 * PIC pin n and I/O APIC pin n, GSI 0 to I/O APIC pin 2) go in again with the MSIs. */
static int routes_commit(struct vm *vm)
{
	size_t n = 16 + 24 + vm->vm_msi_next;
	struct kvm_irq_routing *t = calloc(1, sizeof(*t) + n * sizeof(t->entries[0]));
	if (!t)
		return -1;
	unsigned k = 0;
	for (unsigned i = 0; i < 16; i++)
		if (i != 2)
			t->entries[k++] = (struct kvm_irq_routing_entry){
			    .gsi = i,
			    .type = KVM_IRQ_ROUTING_IRQCHIP,
			    .u.irqchip = {.irqchip = i < 8 ? KVM_IRQCHIP_PIC_MASTER
							   : KVM_IRQCHIP_PIC_SLAVE,
					  .pin = i % 8}};
	for (unsigned i = 0; i < 24; i++)
		t->entries[k++] = (struct kvm_irq_routing_entry){
		    .gsi = i,
		    .type = KVM_IRQ_ROUTING_IRQCHIP,
		    .u.irqchip = {.irqchip = KVM_IRQCHIP_IOAPIC, .pin = i == 0 ? 2 : i}};
	for (unsigned i = 0; i < vm->vm_msi_next; i++)
		if (vm->vm_msi[i].type == KVM_IRQ_ROUTING_MSI)
			t->entries[k++] = vm->vm_msi[i];
	t->nr = k;
	int r = ioctl(vm->vm_fd, KVM_SET_GSI_ROUTING, t);
	free(t);
	return r;
}

int vm_msi_set(struct vm *vm, int gsi, uint64_t addr, uint32_t data)
{
	if (gsi < VM_GSI_FIRST_MSI || gsi >= VM_GSI_MAX)
		return -1;
	pthread_mutex_lock(&vm->vm_route_lock);
	vm->vm_msi[gsi - VM_GSI_FIRST_MSI] = (struct kvm_irq_routing_entry){
	    .gsi = (uint32_t)gsi,
	    .type = KVM_IRQ_ROUTING_MSI,
	    .u.msi = {
		.address_lo = (uint32_t)addr, .address_hi = (uint32_t)(addr >> 32), .data = data}};
	int r = routes_commit(vm);
	pthread_mutex_unlock(&vm->vm_route_lock);
	return r;
}

int vm_irqfd(struct vm *vm, int gsi, int fd, bool assign)
{
	struct kvm_irqfd f = {.fd = (uint32_t)fd,
			      .gsi = (uint32_t)gsi,
			      .flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN};
	return ioctl(vm->vm_fd, KVM_IRQFD, &f);
}

int vm_signal_msi(struct vm *vm, uint64_t addr, uint32_t data)
{
	struct kvm_msi m = {
	    .address_lo = (uint32_t)addr, .address_hi = (uint32_t)(addr >> 32), .data = data};
	return ioctl(vm->vm_fd, KVM_SIGNAL_MSI, &m);
}

int vm_ioeventfd(struct vm *vm, uint64_t addr, unsigned len, int fd, bool assign)
{
	struct kvm_ioeventfd e = {
	    .addr = addr, .len = len, .fd = fd, .flags = assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN};
	return ioctl(vm->vm_fd, KVM_IOEVENTFD, &e);
}

void vm_irq_line(struct vm *vm, unsigned irq, int level)
{
	struct kvm_irq_level l = {.irq = irq, .level = level};
	ioctl(vm->vm_fd, KVM_IRQ_LINE, &l);
}

static int setup_cpuid(struct vcpu *v, char *err, size_t errlen)
{
	struct vm *vm = v->vc_vm;
	size_t sz = sizeof(struct kvm_cpuid2) + CPUID_MAX_ENTRIES * sizeof(struct kvm_cpuid_entry2);
	struct kvm_cpuid2 *c = calloc(1, sz);
	if (!c)
		FAIL("out of memory");
	c->nent = CPUID_MAX_ENTRIES - CPUID_FILTER_SPARE; /* room for what cpuid_filter adds */
	if (ioctl(vm->vm_kvm_fd, KVM_GET_SUPPORTED_CPUID, c) < 0) {
		free(c);
		FAIL("KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
	}
	int nent = cpuid_filter(c->entries, c->nent, CPUID_MAX_ENTRIES, v->vc_index, vm->vm_ncpus);
	if (nent < 0) {
		free(c);
		FAIL("CPUID: no room for the topology leaves");
	}
	c->nent = (unsigned)nent;
	int r = ioctl(v->vc_fd, KVM_SET_CPUID2, c);
	free(c);
	if (r < 0)
		FAIL("KVM_SET_CPUID2: %s", strerror(errno));
	return 0;
}

static int setup_msrs(struct vcpu *v, char *err, size_t errlen)
{
	static const struct {
		uint32_t index;
		uint64_t value;
	} init[] = {
	    {MSR_IA32_SYSENTER_CS, 0},
	    {MSR_IA32_SYSENTER_ESP, 0},
	    {MSR_IA32_SYSENTER_EIP, 0},
	    {MSR_STAR, 0},
	    {MSR_CSTAR, 0},
	    {MSR_KERNEL_GS_BASE, 0},
	    {MSR_SYSCALL_MASK, 0},
	    {MSR_LSTAR, 0},
	    {MSR_IA32_TSC, 0},
	    {MSR_IA32_MISC_ENABLE, MISC_ENABLE_FAST_STRING},
	    {MSR_MTRR_DEF_TYPE, MTRR_ENABLE | MTRR_TYPE_WB},
	};
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[ARRAY_SIZE(init)];
	} m;
	memset(&m, 0, sizeof(m));
	m.hdr.nmsrs = ARRAY_SIZE(init);
	for (size_t i = 0; i < ARRAY_SIZE(init); i++) {
		m.e[i].index = init[i].index;
		m.e[i].data = init[i].value;
	}
	int r = ioctl(v->vc_fd, KVM_SET_MSRS, &m);
	if (r != (int)ARRAY_SIZE(init))
		FAIL("KVM_SET_MSRS: set %d of %zu", r, ARRAY_SIZE(init));
	return 0;
}

static int setup_fpu_lapic(struct vcpu *v, char *err, size_t errlen)
{
	struct kvm_fpu fpu = {.fcw = 0x37f, .mxcsr = 0x1f80};
	if (ioctl(v->vc_fd, KVM_SET_FPU, &fpu) < 0)
		FAIL("KVM_SET_FPU: %s", strerror(errno));
	struct kvm_lapic_state lapic;
	if (ioctl(v->vc_fd, KVM_GET_LAPIC, &lapic) < 0)
		FAIL("KVM_GET_LAPIC: %s", strerror(errno));
	uint32_t *lvt0 = (uint32_t *)&lapic.regs[APIC_LVT0];
	uint32_t *lvt1 = (uint32_t *)&lapic.regs[APIC_LVT1];
	*lvt0 = (*lvt0 & ~0x700u) | (APIC_MODE_EXTINT << 8);
	*lvt1 = (*lvt1 & ~0x700u) | (APIC_MODE_NMI << 8);
	if (ioctl(v->vc_fd, KVM_SET_LAPIC, &lapic) < 0)
		FAIL("KVM_SET_LAPIC: %s", strerror(errno));
	return 0;
}

/* Boot CPU: 64-bit long mode with the identity page tables and flat segments. */
static int setup_boot_regs(struct vcpu *v, char *err, size_t errlen)
{
	struct kvm_sregs s;
	if (ioctl(v->vc_fd, KVM_GET_SREGS, &s) < 0)
		FAIL("KVM_GET_SREGS: %s", strerror(errno));
	struct kvm_segment code = {.base = 0,
				   .limit = 0xffffffff,
				   .selector = 0x10,
				   .type = 0xb,
				   .present = 1,
				   .dpl = 0,
				   .db = 0,
				   .s = 1,
				   .l = 1,
				   .g = 1};
	struct kvm_segment data = code;
	data.selector = 0x18;
	data.type = 0x3;
	data.db = 1;
	data.l = 0;
	s.cs = code;
	s.ds = s.es = s.fs = s.gs = s.ss = data;
	s.gdt.base = BOOT_GDT;
	s.gdt.limit = 4 * 8 - 1;
	s.idt.base = 0;
	s.idt.limit = 0;
	s.cr0 = 0x80050033; /* PG, AM, WP, NE, ET, MP, PE */
	s.cr3 = BOOT_PML4;
	s.cr4 = 0x20;	/* PAE */
	s.efer = 0x500; /* LME, LMA */
	if (ioctl(v->vc_fd, KVM_SET_SREGS, &s) < 0)
		FAIL("KVM_SET_SREGS: %s", strerror(errno));
	struct kvm_regs r = {.rflags = 2,
			     .rip = v->vc_vm->vm_entry,
			     .rsp = BOOT_STACK,
			     .rbp = BOOT_STACK,
			     .rsi = BOOT_ZERO_PAGE};
	if (ioctl(v->vc_fd, KVM_SET_REGS, &r) < 0)
		FAIL("KVM_SET_REGS: %s", strerror(errno));
	return 0;
}

static void dump_regs(struct vcpu *v)
{
	struct kvm_regs r;
	struct kvm_sregs s;
	if (ioctl(v->vc_fd, KVM_GET_REGS, &r) < 0 || ioctl(v->vc_fd, KVM_GET_SREGS, &s) < 0) {
		fprintf(stderr, "  (registers unavailable: %s)\n", strerror(errno));
		return;
	}
	fprintf(stderr,
		"  vCPU %u: rip=%016llx rsp=%016llx rflags=%08llx\n"
		"  rax=%016llx rbx=%016llx rcx=%016llx rdx=%016llx\n"
		"  rsi=%016llx rdi=%016llx rbp=%016llx r8=%016llx\n"
		"  cr0=%016llx cr2=%016llx cr3=%016llx cr4=%016llx efer=%llx\n"
		"  cs=%04x(base %llx) ss=%04x gdt=%llx/%x idt=%llx/%x\n",
		v->vc_index, r.rip, r.rsp, r.rflags, r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi,
		r.rbp, r.r8, s.cr0, s.cr2, s.cr3, s.cr4, s.efer, s.cs.selector, s.cs.base,
		s.ss.selector, s.gdt.base, s.gdt.limit, s.idt.base, s.idt.limit);
}

static _Noreturn void vcpu_fail(struct vcpu *v, const char *what)
{
	static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;
	pthread_mutex_lock(&fail_lock); /* one report, from the first failing vCPU */
	fprintf(stderr, "%s: %s on vCPU %u; registers:\n", util_prog(), what, v->vc_index);
	dump_regs(v);
	vm_exit(1);
}

static void handle_io(struct vcpu *v)
{
	struct kvm_run *run = v->vc_run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	bool write = run->io.direction == KVM_EXIT_IO_OUT;
	for (uint32_t i = 0; i < run->io.count; i++, data += run->io.size)
		pio_access(&v->vc_vm->vm_pio, run->io.port, data, run->io.size, write);
}

#define VM_KICK_SIGNAL SIGUSR2

static void kick_handler(int sig)
{
	(void)sig; /* KVM_RUN returns EINTR */
}

static void park(struct vcpu *v)
{
	struct vm *vm = v->vc_vm;
	pthread_mutex_lock(&vm->vm_park_lock);
	while (atomic_load(&vm->vm_pause_req) || atomic_load(&v->vc_held))
		pthread_cond_wait(&vm->vm_pause_cond, &vm->vm_park_lock);
	pthread_mutex_unlock(&vm->vm_park_lock);
}

void vm_pause(struct vm *vm)
{
	pthread_mutex_lock(&vm->vm_pause_lock);
	atomic_store(&vm->vm_pause_req, true);
	for (;;) {
		bool busy = false;
		for (unsigned i = 0; i < vm->vm_ncpus; i++) {
			struct vcpu *v = &vm->vm_vcpus[i];
			if (!atomic_load(&v->vc_in_run))
				continue;
			busy = true;
			v->vc_run->immediate_exit = 1;
			pthread_kill(v->vc_thread, VM_KICK_SIGNAL);
		}
		if (!busy)
			return;
		struct timespec t = {0, 200000};
		nanosleep(&t, NULL);
	}
}

void vm_resume(struct vm *vm)
{
	pthread_mutex_lock(&vm->vm_park_lock);
	atomic_store(&vm->vm_pause_req, false);
	pthread_cond_broadcast(&vm->vm_pause_cond);
	pthread_mutex_unlock(&vm->vm_park_lock);
	pthread_mutex_unlock(&vm->vm_pause_lock);
}

bool vm_vcpu_hold(struct vm *vm, unsigned index)
{
	if (index == 0 || index >= vm->vm_ncpus || !vm->vm_vcpus)
		return false;
	atomic_store(&vm->vm_vcpus[index].vc_held, true);
	return true;
}

/* Drops an INIT pending in the vCPU's in-kernel LAPIC (KVM takes it at the next KVM_RUN);
 * a SIPI pending with it is then ignored (KVM delivers a SIPI only in wait-for-SIPI). */
static void drop_pending_init(struct vcpu *v)
{
	struct kvm_vcpu_events ev;
	if (ioctl(v->vc_fd, KVM_GET_VCPU_EVENTS, &ev) < 0 ||
	    !(ev.flags & KVM_VCPUEVENT_VALID_SMM) || !ev.smi.latched_init)
		return;
	ev.smi.latched_init = 0;
	if (ioctl(v->vc_fd, KVM_SET_VCPU_EVENTS, &ev) < 0)
		fprintf(stderr, "%s: vCPU %u: dropping a pending INIT: %s\n", util_prog(),
			v->vc_index, strerror(errno));
}

void vm_vcpu_release(struct vm *vm, unsigned index)
{
	if (index == 0 || index >= vm->vm_ncpus || !vm->vm_vcpus)
		return;
	struct vcpu *v = &vm->vm_vcpus[index];
	if (!atomic_load(&v->vc_held))
		return;
	if (vm->vm_fd >= 0)
		drop_pending_init(v); /* out of KVM_RUN: held */
	pthread_mutex_lock(&vm->vm_park_lock);
	atomic_store(&v->vc_held, false);
	pthread_cond_broadcast(&vm->vm_pause_cond);
	pthread_mutex_unlock(&vm->vm_park_lock);
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	char name[16];
	snprintf(name, sizeof(name), "vcpu%u", v->vc_index);
	pthread_setname_np(pthread_self(), name);
	for (;;) {
		atomic_store(&v->vc_in_run, true);
		if (atomic_load(&v->vc_vm->vm_pause_req) || atomic_load(&v->vc_held)) {
			atomic_store(&v->vc_in_run, false);
			park(v);
			continue;
		}
		int r = ioctl(v->vc_fd, KVM_RUN, 0);
		v->vc_run->immediate_exit = 0;
		atomic_store(&v->vc_in_run, false);
		atomic_fetch_add_explicit(&v->vc_exits, 1, memory_order_relaxed);
		if (r < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			char what[96];
			snprintf(what, sizeof(what), "KVM_RUN failed (%s)", strerror(errno));
			vcpu_fail(v, what);
		}
		struct kvm_run *run = v->vc_run;
		switch (run->exit_reason) {
		case KVM_EXIT_IO:
			atomic_fetch_add_explicit(&v->vc_io_exits, 1, memory_order_relaxed);
			handle_io(v);
			break;
		case KVM_EXIT_MMIO:
			atomic_fetch_add_explicit(&v->vc_mmio_exits, 1, memory_order_relaxed);
			mmio_access(&v->vc_vm->vm_mmio, run->mmio.phys_addr, run->mmio.data,
				    run->mmio.len > 8 ? 8 : run->mmio.len, run->mmio.is_write);
			break;
		case KVM_EXIT_HLT:
			break;
		case KVM_EXIT_SHUTDOWN:
			vcpu_fail(v, "guest triple fault (shutdown exit)");
		case KVM_EXIT_FAIL_ENTRY: {
			char what[96];
			snprintf(what, sizeof(what), "KVM entry failure (reason 0x%llx)",
				 (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
			vcpu_fail(v, what);
		}
		case KVM_EXIT_INTERNAL_ERROR: {
			char what[96];
			snprintf(what, sizeof(what), "KVM internal error (suberror %u)",
				 run->internal.suberror);
			vcpu_fail(v, what);
		}
		case KVM_EXIT_SYSTEM_EVENT:
			vm_exit(0);
		default: {
			char what[64];
			snprintf(what, sizeof(what), "unexpected KVM exit %u", run->exit_reason);
			vcpu_fail(v, what);
		}
		}
	}
	return NULL;
}

int vm_start(struct vm *vm, char *err, size_t errlen)
{
	for (unsigned i = 0; i < vm->vm_ncpus; i++) {
		struct vcpu *v = &vm->vm_vcpus[i];
		if (setup_cpuid(v, err, errlen) < 0 || setup_msrs(v, err, errlen) < 0 ||
		    setup_fpu_lapic(v, err, errlen) < 0)
			return -1;
		if (i == 0 && setup_boot_regs(v, err, errlen) < 0)
			return -1;
	}
	struct sigaction sa = {.sa_handler = kick_handler}; /* no SA_RESTART */
	sigaction(VM_KICK_SIGNAL, &sa, NULL);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 << 10);
	for (unsigned i = 0; i < vm->vm_ncpus; i++)
		if (pthread_create(&vm->vm_vcpus[i].vc_thread, &attr, vcpu_thread,
				   &vm->vm_vcpus[i]) != 0)
			FAIL("cannot start the thread of vCPU %u", i);
	pthread_attr_destroy(&attr);
	return 0;
}
