/* nitro run: fills in the default image, checks every argument, then runs nitro-hv
 * here (hardware KVM) or inside the emulated host. nitro images: builds the images. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "hv/config.h"
#include "lib/util.h"

int cmd_images(int argc, char **argv)
{
	(void)argv;
	if (argc > 0)
		die_usage("images: takes no arguments");
	return images_ensure();
}

int cmd_run(int argc, char **argv)
{
	char kernel[PATH_MAX], initrd[PATH_MAX], cache[PATH_MAX], err[512];
	struct hv_config c;
	hv_config_defaults(&c);
	/* The user's options are parsed first, alone; the default image goes in front of
	 * them only when they name no kernel (and then no initrd). */
	c.kernel_optional = true;
	if (hv_config_parse(argc, argv, &c, err, sizeof(err)))
		die_usage("run: %s (see `nitro run --help`)", err);
	if (c.help) {
		printf("usage: nitro run [options]\n%s", hv_options_help);
		return 0;
	}
	bool has_kernel = c.kernel != NULL;
	char *args[argc + 8];
	int n = 0;
	if (!has_kernel) {
		image_path("vmlinuz", kernel, sizeof(kernel));
		args[n++] = "--kernel";
		args[n++] = kernel;
		if (!c.initrd) {
			image_path("guest.img", initrd, sizeof(initrd));
			args[n++] = "--initrd";
			args[n++] = initrd;
		}
	}
	for (int i = 0; i < argc; i++)
		args[n++] = argv[i];
	args[n] = NULL;
	hv_config_defaults(&c);
	if (hv_config_parse(n, args, &c, err, sizeof(err)))
		die_usage("run: %s (see `nitro run --help`)", err);
	if (!has_kernel && access(kernel, R_OK) != 0) {
		fprintf(stderr, "nitro: the default guest image is missing; fetching it\n");
		if (images_ensure())
			die("run: cannot prepare the default guest image (see above)");
	}
	struct hv_images img;
	if (hv_config_check(&c, &img, err, sizeof(err)))
		die("%s", err);
	free(img.kernel);

	char why[256];
	if (!getenv("NITRO_EMULATED_HOST") && !kvm_usable(why, sizeof(why))) {
		if (c.require_kvm)
			die("run: %s, and --require-kvm was given", why);
		fprintf(stderr,
			"nitro: %s: running in an emulated host (QEMU TCG, -cpu max, kvm_amd)\n",
			why);
		char self[PATH_MAX];
		exe_sibling("nitro", self, sizeof(self));
		char *inner[n + 4];
		int k = 0;
		inner[k++] = self;
		inner[k++] = "run";
		for (int i = 0; i < n; i++)
			inner[k++] = args[i];
		inner[k] = NULL;
		unsigned mem = (unsigned)c.mem_mib + 768;
		return emuhost_exec(inner, mem < 1536 ? 1536 : mem, EMUHOST_CPUS);
	}
	/* nitro-hv gets the same arguments plus the kernel cache. */
	char hv[PATH_MAX];
	exe_sibling("nitro-hv", hv, sizeof(hv));
	snprintf(cache, sizeof(cache), "%s/kernels", cache_dir());
	mkdir(cache_dir(), 0755);
	char *hvargs[n + 4];
	int k = 0;
	hvargs[k++] = hv;
	for (int i = 0; i < n; i++)
		hvargs[k++] = args[i];
	if (mkdir(cache, 0755) == 0 || errno == EEXIST) {
		hvargs[k++] = "--cache-dir";
		hvargs[k++] = cache;
	}
	hvargs[k] = NULL;
	execv(hv, hvargs);
	die("run: cannot start %s: %s", hv, strerror(errno));
}
