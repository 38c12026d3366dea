/* The NE driver's errno values as one-line advice (errors.h). */
#include "enclave/tool/errors.h"

#include <errno.h>
#include <linux/nitro_enclaves.h>
#include <stddef.h>

#define POOL "/sys/module/nitro_enclaves/parameters/ne_cpus"

static const struct {
	int e;
	const char *name, *text;
} ne[] = {
    {NE_ERR_VCPU_ALREADY_USED, "NE_ERR_VCPU_ALREADY_USED",
     "the vCPU is already used by another enclave: terminate that enclave or let the tool "
     "pick CPUs from the pool"},
    {NE_ERR_VCPU_NOT_IN_CPU_POOL, "NE_ERR_VCPU_NOT_IN_CPU_POOL",
     "the vCPU is not in the enclave CPU pool: add it to " POOL " while no enclave runs"},
    {NE_ERR_VCPU_INVALID_CPU_CORE, "NE_ERR_VCPU_INVALID_CPU_CORE",
     "the vCPU's core is not one of the pool's cores: the pool (" POOL ") must list whole "
     "cores"},
    {NE_ERR_INVALID_MEM_REGION_SIZE, "NE_ERR_INVALID_MEM_REGION_SIZE",
     "the memory is not a multiple of 2 MiB: give an even --memory"},
    {NE_ERR_INVALID_MEM_REGION_ADDR, "NE_ERR_INVALID_MEM_REGION_ADDR",
     "the memory region's address is not usable user memory backed by huge pages"},
    {NE_ERR_UNALIGNED_MEM_REGION_ADDR, "NE_ERR_UNALIGNED_MEM_REGION_ADDR",
     "the memory region is not 2 MiB aligned"},
    {NE_ERR_MEM_REGION_ALREADY_USED, "NE_ERR_MEM_REGION_ALREADY_USED",
     "the memory region is already given to an enclave"},
    {NE_ERR_MEM_NOT_HUGE_PAGE, "NE_ERR_MEM_NOT_HUGE_PAGE",
     "the memory is not backed by huge pages: check /proc/sys/vm/nr_hugepages and "
     "/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages"},
    {NE_ERR_MEM_DIFFERENT_NUMA_NODE, "NE_ERR_MEM_DIFFERENT_NUMA_NODE",
     "the huge pages and the pool's CPUs are on different NUMA nodes: reserve huge pages "
     "on the node of the CPUs in " POOL},
    {NE_ERR_MEM_MAX_REGIONS, "NE_ERR_MEM_MAX_REGIONS",
     "the memory is split into more physically contiguous pieces than the device takes: "
     "lower --memory, or reserve the huge pages early (vm.nr_hugepages at boot) so that "
     "they are contiguous"},
    {NE_ERR_NO_MEM_REGIONS_ADDED, "NE_ERR_NO_MEM_REGIONS_ADDED",
     "the enclave has no memory: give --memory 64 or more"},
    {NE_ERR_NO_VCPUS_ADDED, "NE_ERR_NO_VCPUS_ADDED",
     "the enclave has no vCPU: give --cpu-count 1 or more"},
    {NE_ERR_ENCLAVE_MEM_MIN_SIZE, "NE_ERR_ENCLAVE_MEM_MIN_SIZE",
     "the memory is below the device's minimum: raise --memory (64 MiB at least)"},
    {NE_ERR_FULL_CORES_NOT_USED, "NE_ERR_FULL_CORES_NOT_USED",
     "an enclave takes whole cores: make --cpu-count a multiple of the threads per core "
     "(/sys/devices/system/cpu/cpu1/topology/thread_siblings_list)"},
    {NE_ERR_NOT_IN_INIT_STATE, "NE_ERR_NOT_IN_INIT_STATE",
     "the enclave has already started or is being stopped: its resources cannot change"},
    {NE_ERR_INVALID_VCPU, "NE_ERR_INVALID_VCPU", "the vCPU is out of range of the instance's CPUs"},
    {NE_ERR_NO_CPUS_AVAIL_IN_POOL, "NE_ERR_NO_CPUS_AVAIL_IN_POOL",
     "the enclave CPU pool has no free CPU left: lower --cpu-count, terminate an enclave, "
     "or (while no enclave runs) write a longer list of whole cores, never CPU 0's, to " POOL},
    {NE_ERR_INVALID_PAGE_SIZE, "NE_ERR_INVALID_PAGE_SIZE",
     "the memory is not backed by pages of a multiple of 2 MiB: use huge pages of 2 MiB"},
    {NE_ERR_INVALID_FLAG_VALUE, "NE_ERR_INVALID_FLAG_VALUE",
     "the device refused a flags value (a newer tool than driver?)"},
    {NE_ERR_INVALID_ENCLAVE_CID, "NE_ERR_INVALID_ENCLAVE_CID",
     "the enclave CID is reserved or already taken: give another --enclave-cid (4 to "
     "4294967294) or omit it"},
};

const char *net_ne_error_name(int e)
{
	for (size_t i = 0; i < sizeof(ne) / sizeof(ne[0]); i++)
		if (ne[i].e == e)
			return ne[i].name;
	return NULL;
}

const char *net_ne_error(int e)
{
	for (size_t i = 0; i < sizeof(ne) / sizeof(ne[0]); i++)
		if (ne[i].e == e)
			return ne[i].text;
	switch (e) {
	case ENOMEM:
		return "the instance is out of memory for the enclave: lower --memory or give the "
		       "parent more (nitro run --memory)";
	case EACCES:
	case EPERM:
		return "permission denied: run nitro-enclave as root";
	case ENOENT:
	case ENODEV:
		return "no Nitro Enclaves device: start the instance with enclaves (nitro run "
		       "--enclaves) and load the driver (modprobe nitro_enclaves)";
	case EBUSY:
		return "the device is busy (another command is running): try again";
	case EINVAL:
		return "the device refused the request (for START: the image is malformed; check "
		       "it with `nitro eif describe`)";
	case ENOEXEC: /* nitro's enclave nitro-hv refused what it found at 8 MiB */
		return "the enclave's hypervisor refused the image: not a bootable EIF (its kernel "
		       "must be a bzImage; check it with `nitro eif describe`)";
	case EIO:
		return "the enclave's hypervisor could not start the enclave (the host's log "
		       "says why): try again";
	case ETIMEDOUT:
		return "the device did not answer in time: the instance's hypervisor may be "
		       "overloaded; try again";
	}
	return NULL;
}
