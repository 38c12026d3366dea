/* nitro-enclave: launch and manage Nitro Enclaves from inside a parent instance, like
 * nitro-cli's run-enclave / describe-enclaves / console / terminate-enclave, with the
 * driver's raw ioctls and no daemon (tool.h; docs/enclaves.md). Static: the default
 * guest image has no libc. */
#include <stdio.h>

#include "enclave/tool/tool.h"

int main(int argc, char **argv)
{
	struct net_args a;
	char err[512];
	if (net_parse(argc, argv, &a, err, sizeof(err))) {
		fprintf(stderr, "nitro-enclave: %s\n", err);
		return 2;
	}
	switch (a.cmd) {
	case NET_RUN:
		return net_cmd_run(&a);
	case NET_DESCRIBE:
		return net_cmd_describe();
	case NET_CONSOLE:
		return net_cmd_console(&a);
	case NET_TERMINATE:
		return net_cmd_terminate(&a);
	default:
		fputs(net_usage(), stdout);
		return 0;
	}
}
