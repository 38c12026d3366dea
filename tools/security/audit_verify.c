/* nitro-audit-verify FILE: checks an audit log's hash chain (src/controller/audit.h).
 * Exit 0 and "FILE: N lines, chain intact", or 1 naming the first bad line.
 * nitro-audit-verify --append FILE UID METHOD ROUTE STATUS [DETAIL] appends one line
 * (what nitrod does per API call; for tests and tools). */
#include "controller/audit.h"
#include "lib/util.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	util_set_prog("nitro-audit-verify");
	char err[512];
	if (argc >= 7 && argc <= 8 && !strcmp(argv[1], "--append")) {
		uint64_t uid, status;
		if (!parse_u64(argv[3], 0, 0xffffffff, &uid) ||
		    !parse_u64(argv[6], 0, 999, &status))
			die_usage("--append: UID and STATUS must be numbers");
		struct audit *a = audit_open(argv[2], err, sizeof(err));
		if (!a)
			die("%s", err);
		if (audit_append(a, (uid_t)uid, argv[4], argv[5], (int)status,
				 argc == 8 ? argv[7] : NULL) < 0)
			die("audit log %s: append failed", argv[2]);
		audit_close(a);
		return 0;
	}
	if (argc != 2 || argv[1][0] == '-')
		die_usage("usage: nitro-audit-verify FILE | --append FILE UID METHOD ROUTE STATUS "
			  "[DETAIL]");
	long n = audit_verify(argv[1], err, sizeof(err));
	if (n < 0)
		die("%s", err);
	printf("%s: %ld lines, chain intact\n", argv[1], n);
	return 0;
}
