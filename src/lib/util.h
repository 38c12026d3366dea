/* Small helpers every nitro process uses: error reporting and strict number parsing.
 *
 * Messages go to stderr as "PROG: message" (PROG set once by util_set_prog). die() exits
 * with status 1, die_usage() with 2. The parsers accept only a whole decimal number
 * (parse_size also takes a K/M/G/T suffix) and fail on signs, junk or overflow.
 */
#ifndef NITRO_LIB_UTIL_H
#define NITRO_LIB_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* For functions that report through (char *err, size_t errlen): writes the message and
 * returns ret. */
#define RETURN_ERR(ret, ...)                                                                       \
	do {                                                                                       \
		snprintf(err, errlen, __VA_ARGS__);                                                \
		return (ret);                                                                      \
	} while (0)

void util_set_prog(const char *name);
const char *util_prog(void);
void warnmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Whole decimal number in [min, max]; false on anything else. */
bool parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/* Decimal number with optional K, M, G or T (binary) suffix, scaled to bytes. */
bool parse_size(const char *s, uint64_t *out);

/* Writes s[0..n) to out with every byte outside '!'..'~' and every '%' as %XX (upper-case
 * hex), NUL-terminated; out needs 3 * n + 1 bytes. Returns the length written. For log
 * and event lines whose fields must stay one printable word. */
size_t pct_escape(const char *s, size_t n, char *out);

/* Brings the loopback interface up if it is down (in the emulated host nothing else does,
 * and the VPC cards' default underlay is on it); warns, naming who, when it cannot. */
void loopback_up(const char *who);

/* Reads a whole file (at most max bytes) into a malloc'd buffer. Returns 0, or an errno
 * value (EFBIG when the file is larger than max). */
int read_file(const char *path, size_t max, uint8_t **buf, size_t *len);
/* The same for an open file (read with pread from offset 0: the fd's offset, which a
 * process it came from may share, is left alone). */
int read_fd(int fd, size_t max, uint8_t **buf, size_t *len);

#endif
