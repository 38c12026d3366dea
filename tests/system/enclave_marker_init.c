/* /init of test_enclave_vm.py's enclave ramdisk (static, the only file in it): writes a
 * marker with the kernel's uptime on ttyS0 and powers the enclave off. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <unistd.h>

int main(void)
{
	mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
	mount("proc", "/proc", "proc", 0, NULL);
	char up[64] = "?";
	int u = open("/proc/uptime", O_RDONLY);
	if (u >= 0) {
		ssize_t n = read(u, up, sizeof(up) - 1);
		up[n > 0 ? n : 0] = 0;
		up[strcspn(up, " \n")] = 0;
		close(u);
	}
	int fd = open("/dev/ttyS0", O_WRONLY | O_NOCTTY);
	if (fd >= 0) {
		char line[128];
		int n = snprintf(line, sizeof(line), "\nNITRO-ENCLAVE-MARKER uptime=%s\n", up);
		if (write(fd, line, (size_t)n) != n)
			return 1;
		fsync(fd);
	}
	sync();
	reboot(RB_POWER_OFF);
	return 0;
}
