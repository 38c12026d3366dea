/* Temporary folders of the unit tests: made under /tmp, removed with all they hold. */
#ifndef NITRO_TESTS_UNIT_TESTLIB_TMPDIR_H
#define NITRO_TESTS_UNIT_TESTLIB_TMPDIR_H

#include <stddef.h>

/* Makes /tmp/nitro-test-NAME-XXXXXX into dir (len bytes); 0, or -1 with errno. */
int tmpdir_make(char *dir, size_t len, const char *name);
/* Removes dir and everything below it (links are removed, not followed). */
void tmpdir_remove(const char *dir);

#endif
