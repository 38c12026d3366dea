/* What a dynamically linked ELF needs to run inside a jail: its interpreter and the
 * libraries named by DT_NEEDED, found like ld.so does (default x86-64 Debian paths; no
 * ld.so.cache, RPATH or RUNPATH). The parser takes hostile bytes: every offset and count
 * is checked against the buffer.
 */
#ifndef NITRO_CONTROLLER_JAIL_ELF_H
#define NITRO_CONTROLLER_JAIL_ELF_H

#include <stddef.h>
#include <stdint.h>

#define JAIL_ELF_NAME_MAX 256
#define JAIL_ELF_MAX_NEEDED 64

struct jail_elf_info {
	char ei_interp[JAIL_ELF_NAME_MAX]; /* "" for a static executable */
	unsigned ei_nneeded;
	char ei_needed[JAIL_ELF_MAX_NEEDED][JAIL_ELF_NAME_MAX];
};

/* Parses an ELF64 little-endian image (the first len bytes of the file). 0, or -1 with
 * err set when it is not one or a table points outside it. */
int jail_elf_parse(const uint8_t *buf, size_t len, struct jail_elf_info *out, char *err,
		   size_t errlen);

/* Every file the executable at fd (path for messages) needs: the interpreter first, then
 * each library's full path, transitive, without duplicates. *paths is a malloc'd array of
 * malloc'd strings (free with jail_elf_free). 0, or -1 with err set (a library not found). */
int jail_elf_closure(int fd, const char *path, char ***paths, size_t *npaths, char *err,
		     size_t errlen);
void jail_elf_free(char **paths, size_t npaths);

#endif
