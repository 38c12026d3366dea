/* KVM's per-vCPU binary statistics (see kvmstats.h). */
#include "hv/kvmstats.h"

#include <fcntl.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define KVMSTATS_MAX_NAME 256
#define KVMSTATS_MAX_DESC 4096

int kvmstats_open(int vcpu_fd)
{
	int fd = ioctl(vcpu_fd, KVM_GET_STATS_FD, NULL);
	if (fd >= 0)
		fcntl(fd, F_SETFD, FD_CLOEXEC);
	return fd < 0 ? -1 : fd;
}

bool kvmstats_get(int stats_fd, const char *name, uint64_t *value)
{
	struct kvm_stats_header h;
	if (stats_fd < 0 || pread(stats_fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h))
		return false;
	if (!h.name_size || h.name_size > KVMSTATS_MAX_NAME || h.num_desc > KVMSTATS_MAX_DESC)
		return false;
	size_t dsz = sizeof(struct kvm_stats_desc) + h.name_size;
	union {
		struct kvm_stats_desc d;
		char raw[sizeof(struct kvm_stats_desc) + KVMSTATS_MAX_NAME];
	} u;
	for (uint32_t i = 0; i < h.num_desc; i++) {
		if (pread(stats_fd, &u, dsz, (off_t)h.desc_offset + (off_t)i * (off_t)dsz) !=
		    (ssize_t)dsz)
			return false;
		u.raw[dsz - 1] = 0;
		if (strcmp(u.d.name, name) || u.d.size < 1 ||
		    (u.d.flags & KVM_STATS_TYPE_MASK) != KVM_STATS_TYPE_CUMULATIVE)
			continue;
		return pread(stats_fd, value, sizeof(*value), (off_t)h.data_offset + u.d.offset) ==
		       (ssize_t)sizeof(*value);
	}
	return false;
}
