/* Guest-side client of test_ne.py: drives /dev/nitro_enclaves with the raw ioctls of
 * the kernel's Documentation/virt/ne_overview.rst (<linux/nitro_enclaves.h>) against
 * nitro's NE device, and prints one line per step, "NAME ok ..." or "NAME errno N", that
 * the test asserts. Static (the guest image has no libc).
 *
 * Expects: the nitro_enclaves module bound, ne_cpus = 2,3 of a 4-vCPU parent (core 1 of
 * two cores of two threads; CPUs 0 and 1, core 0, not in the pool), at least 66 free 2 MiB
 * hugepages.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/nitro_enclaves.h>

#define MiB (1ull << 20)

static void result(const char *name, int r)
{
	if (r < 0)
		printf("%s errno %d\n", name, errno);
	else
		printf("%s ok\n", name);
}

static int add_vcpu(int fd, const char *name, uint32_t id)
{
	int r = ioctl(fd, NE_ADD_VCPU, &id);
	if (r < 0)
		printf("%s errno %d\n", name, errno);
	else
		printf("%s ok vcpu=%u\n", name, id);
	return r;
}

static int mem(int fd, const char *name, uint64_t flags, void *addr, uint64_t size)
{
	struct ne_user_memory_region m = {
	    .flags = flags, .memory_size = size, .userspace_addr = (uint64_t)(uintptr_t)addr};
	int r = ioctl(fd, NE_SET_USER_MEMORY_REGION, &m);
	result(name, r);
	return r;
}

static int start(int fd, const char *name, uint64_t flags, uint64_t cid)
{
	struct ne_enclave_start_info s = {.flags = flags, .enclave_cid = cid};
	int r = ioctl(fd, NE_START_ENCLAVE, &s);
	if (r < 0)
		printf("%s errno %d\n", name, errno);
	else
		printf("%s ok cid=%llu\n", name, (unsigned long long)s.enclave_cid);
	return r;
}

static int create(int dev, const char *name)
{
	uint64_t uid = 0;
	int fd = ioctl(dev, NE_CREATE_VM, &uid);
	if (fd < 0)
		printf("%s errno %d\n", name, errno);
	else
		printf("%s ok slot_uid=%llu\n", name, (unsigned long long)uid);
	return fd;
}

int main(void)
{
	int dev = open("/dev/nitro_enclaves", O_RDWR | O_CLOEXEC);
	if (dev < 0) {
		printf("open errno %d\n", errno);
		return 1;
	}
	printf("open ok\n");
	/* Hugepages: 64 MiB for the enclave and one more page for the second enclave. */
	uint8_t *huge = mmap(NULL, 66 * MiB, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	if (huge == MAP_FAILED) {
		printf("hugepages errno %d\n", errno);
		return 1;
	}
	memset(huge, 0x5a, 66 * MiB);
	/* Ordinary memory, 2 MiB aligned inside a larger mapping. */
	uint8_t *plain =
	    mmap(NULL, 8 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t *plain2m =
	    (uint8_t *)(((uintptr_t)plain + 2 * MiB - 1) & ~(uintptr_t)(2 * MiB - 1));
	madvise(plain2m, 2 * MiB, MADV_NOHUGEPAGE);
	memset(plain2m, 1, 2 * MiB);

	/* Two enclaves at once: the driver takes CPUs from the pool only when they are added. */
	int fd = create(dev, "create_vm");
	int fd2 = create(dev, "create_vm2");
	if (fd < 0 || fd2 < 0)
		return 1;

	/* Image load info: flags must be NE_EIF_IMAGE; the EIF goes at 8 MiB. */
	struct ne_image_load_info li = {.flags = 0};
	result("load_info_flags0", ioctl(fd, NE_GET_IMAGE_LOAD_INFO, &li));
	li.flags = NE_EIF_IMAGE;
	if (ioctl(fd, NE_GET_IMAGE_LOAD_INFO, &li) == 0)
		printf("load_info ok offset=%llu\n", (unsigned long long)li.memory_offset);
	else
		printf("load_info errno %d\n", errno);

	/* START refusals the driver makes before asking the device. */
	start(fd, "start_no_mem", 0, 0);
	start(fd, "start_flags2", 2, 0);
	start(fd, "start_cid2", 0, 2);
	start(fd, "start_cid3", 0, 3);
	start(fd, "start_cid_u32max", 0, 0xffffffffull);
	start(fd, "start_cid_64bit", 0, 1ull << 32);

	/* Memory: bad inputs first. */
	mem(fd, "mem_flags1", 1, huge, 2 * MiB);
	mem(fd, "mem_size_odd", 0, huge, 3 * MiB);
	mem(fd, "mem_unaligned", 0, huge + 4096, 2 * MiB);
	mem(fd, "mem_not_huge", 0, plain2m, 2 * MiB);
	/* 2 MiB only: below the 64 MiB an enclave needs */
	mem(fd, "mem_first", 0, huge, 2 * MiB);
	mem(fd, "mem_again", 0, huge, 2 * MiB);
	/* The same hugepage for the second enclave: the driver cannot see that it is taken
	 * (another enclave's region), the device refuses it (SLOT_ADD_MEM overlap). */
	mem(fd2, "vm2_mem_shared", 0, huge, 2 * MiB);
	mem(fd2, "vm2_mem_own", 0, huge + 64 * MiB, 2 * MiB);
	start(fd, "start_small", 0, 0);
	mem(fd, "mem_rest", 0, huge + 2 * MiB, 62 * MiB);
	start(fd, "start_no_vcpu", 0, 0);

	/* vCPUs: out of range, not in the pool, from the pool, twice; half a core cannot
	 * start; the other thread of the core. */
	add_vcpu(fd, "vcpu_99", 99);
	add_vcpu(fd, "vcpu_1_not_pool", 1);
	add_vcpu(fd, "vcpu_auto", 0);
	add_vcpu(fd, "vcpu_2_again", 2);
	start(fd, "start_half_core", 0, 0);
	add_vcpu(fd, "vcpu_3", 3);
	/* the pool is empty now */
	add_vcpu(fd2, "vm2_vcpu_auto", 0);

	/* All the driver checks pass: now the enclave's nitro-hv reads the EIF at enclave
	 * offset 8 MiB (here huge + 8 MiB: the ranges in the order they were added) and
	 * refuses it: no EIF at all (the pages hold 0x5a), then a header whose one section
	 * is well laid out but whose CRC32 is wrong. Either way ENOEXEC, and the slot stays
	 * in INIT (its CPUs and memory went back to it). */
	start(fd, "start", 0, 0);
	uint8_t *eif = huge + 8 * MiB;
	memset(eif, 0, 548);
	memcpy(eif, ".eif", 4);
	eif[5] = 4;		/* version 4 */
	eif[27] = 1;		/* one section */
	eif[28 + 6] = 548 >> 8; /* at 548 (big-endian u64 offsets[0]) */
	eif[28 + 7] = 548 & 0xff;
	eif[28 + 256 + 7] = 16;	  /* of 16 bytes (sizes[0]) */
	memset(eif + 548, 0, 12); /* its header: kernel, 16 bytes; the CRC field stays 0 */
	eif[549] = 1;
	eif[548 + 11] = 16;
	start(fd, "start_bad_crc", NE_ENCLAVE_DEBUG_MODE, 16);

	/* Closing frees the slots: a new one gets the next uid, the CPUs and pages are back. */
	close(fd2);
	close(fd);
	fd = create(dev, "create_vm3");
	if (fd >= 0) {
		add_vcpu(fd, "vm3_vcpu_2", 2);
		mem(fd, "vm3_mem", 0, huge, 2 * MiB);
		close(fd);
	}
	printf("ne_ioctl done\n");
	return 0;
}
