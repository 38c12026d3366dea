/* nitro: the command-line front end. */
#include <stdio.h>
#include <string.h>

#include "boot/config.h"
#include "cli/cli.h"
#include "cli/client.h"
#include "cli/nic.h"
#include "lib/util.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: nitro COMMAND [options]\n"
		"commands:\n"
		"  run [options]        boot a guest in the foreground (serial console on stdio)\n"
		"  images               fetch the stock Debian kernel and build the guest images\n"
		"  volume create PATH --size SIZE [--unencrypted] | volume info PATH\n"
		"                       create or describe an EBS volume file (or\n"
		"                       --from-image IMG, --from-snapshot SNAPDIR)\n"
		"  snapshot create|list|delete ...\n"
		"                       encrypted incremental snapshots of volumes\n"
		"  vpc create ID --cidr A.B.C.D/P [--internet-gateway]\n"
		"  vpc list | vpc delete ID\n"
		"                       this host's VPC records (CIDR, internet gateway)\n"
		"  net stats [--map PATH] [--vpc ID]\n"
		"                       counters of the running network interfaces (VPC cards)\n"
		"  emuhost [--memory MiB] [--cpus N] -- CMD [ARG...]\n"
		"                       run CMD inside the emulated host (QEMU TCG + kvm_amd)\n"
		"%s"
		"  --host SOCKET instances|volumes|vpc|host ...\n"
		"                       call nitrod's API (`nitro --host SOCKET help`)\n"
		"run options:\n%s"
		"Without /dev/kvm (or with one that is not hardware-assisted) `nitro run` boots an\n"
		"emulated x86 server and runs there; set NITRO_CACHE to move ~/.cache/nitro.\n",
		eif_commands_help, hv_options_help);
}

int main(int argc, char **argv)
{
	util_set_prog("nitro");
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[1];
	if (!strcmp(cmd, "--host")) { /* the API client: nitro --host SOCKET COMMAND ... */
		if (argc < 3)
			die_usage("--host: expected a nitrod socket and a command");
		return cmd_client(argv[2], argc - 3, argv + 3);
	}
	if (!strcmp(cmd, "run"))
		return cmd_run(argc - 2, argv + 2);
	if (!strcmp(cmd, "images"))
		return cmd_images(argc - 2, argv + 2);
	if (!strcmp(cmd, "volume"))
		return cmd_volume(argc - 2, argv + 2);
	if (!strcmp(cmd, "snapshot"))
		return cmd_snapshot(argc - 2, argv + 2);
	if (!strcmp(cmd, "net"))
		return cmd_net(argc - 2, argv + 2);
	if (!strcmp(cmd, "vpc"))
		return cmd_vpc(argc - 2, argv + 2);
	if (!strcmp(cmd, "emuhost"))
		return cmd_emuhost(argc - 2, argv + 2);
	if (!strcmp(cmd, "eif"))
		return cmd_eif(argc - 2, argv + 2);
	if (!strcmp(cmd, "enclave"))
		return cmd_enclave(argc - 2, argv + 2);
	if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
		usage(stdout);
		return 0;
	}
	die_usage("%s: unknown command (try `nitro help`)", cmd);
}
