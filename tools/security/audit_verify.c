/* nitro-audit-verify FILE: checks an audit log's hash chain (src/controller/audit.h).
 * Exit 0 and "FILE: N lines, chain intact", or 1 naming the first bad line. */
#include "controller/audit.h"
#include "lib/util.h"

#include <stdio.h>

int main(int argc, char **argv)
{
	util_set_prog("nitro-audit-verify");
	if (argc != 2)
		die_usage("usage: nitro-audit-verify FILE");
	char err[512];
	long n = audit_verify(argv[1], err, sizeof(err));
	if (n < 0)
		die("%s", err);
	printf("%s: %ld lines, chain intact\n", argv[1], n);
	return 0;
}
