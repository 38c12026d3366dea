/* ELF dependency closure for the jailer (contract in jail_elf.h). */
#include "controller/jail_elf.h"
#include "lib/util.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ELF_READ_MAX (64u << 20)

static bool in_bounds(size_t len, uint64_t off, uint64_t size)
{
	return off <= len && size <= len - off;
}

/* File offset of virtual address va (in a PT_LOAD), or UINT64_MAX. */
static uint64_t va_to_off(const Elf64_Phdr *ph, unsigned n, uint64_t va)
{
	for (unsigned i = 0; i < n; i++)
		if (ph[i].p_type == PT_LOAD && va >= ph[i].p_vaddr &&
		    va - ph[i].p_vaddr < ph[i].p_filesz)
			return ph[i].p_offset + (va - ph[i].p_vaddr);
	return UINT64_MAX;
}

static int copy_name(const uint8_t *buf, size_t len, uint64_t off, char *out)
{
	if (off >= len)
		return -1;
	size_t max = len - off < JAIL_ELF_NAME_MAX ? len - off : JAIL_ELF_NAME_MAX;
	const void *z = memchr(buf + off, 0, max);
	if (!z || z == buf + off)
		return -1;
	memcpy(out, buf + off, (size_t)((const uint8_t *)z - (buf + off)) + 1);
	return 0;
}

int jail_elf_parse(const uint8_t *buf, size_t len, struct jail_elf_info *out, char *err,
		   size_t errlen)
{
	memset(out, 0, sizeof(*out));
	if (len < sizeof(Elf64_Ehdr) || memcmp(buf, ELFMAG, SELFMAG) != 0)
		RETURN_ERR(-1, "not an ELF file");
	Elf64_Ehdr eh;
	memcpy(&eh, buf, sizeof(eh));
	if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB)
		RETURN_ERR(-1, "not a 64-bit little-endian ELF");
	if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > 256 ||
	    !in_bounds(len, eh.e_phoff, (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr)))
		RETURN_ERR(-1, "program headers outside the file");
	unsigned nph = eh.e_phnum;
	Elf64_Phdr ph[256];
	memcpy(ph, buf + eh.e_phoff, nph * sizeof(Elf64_Phdr));
	const Elf64_Phdr *dyn = NULL;
	for (unsigned i = 0; i < nph; i++) {
		if (ph[i].p_type == PT_INTERP) {
			if (!in_bounds(len, ph[i].p_offset, ph[i].p_filesz) ||
			    ph[i].p_filesz > JAIL_ELF_NAME_MAX || ph[i].p_filesz < 2 ||
			    buf[ph[i].p_offset + ph[i].p_filesz - 1] != 0 ||
			    copy_name(buf, len, ph[i].p_offset, out->ei_interp) < 0 ||
			    out->ei_interp[0] != '/')
				RETURN_ERR(-1, "bad PT_INTERP");
		} else if (ph[i].p_type == PT_DYNAMIC) {
			dyn = &ph[i];
		}
	}
	if (!dyn)
		return 0;
	if (!in_bounds(len, dyn->p_offset, dyn->p_filesz))
		RETURN_ERR(-1, "PT_DYNAMIC outside the file");
	size_t ndyn = dyn->p_filesz / sizeof(Elf64_Dyn);
	uint64_t strtab = UINT64_MAX, strsz = 0;
	for (size_t i = 0; i < ndyn; i++) {
		Elf64_Dyn d;
		memcpy(&d, buf + dyn->p_offset + i * sizeof(d), sizeof(d));
		if (d.d_tag == DT_NULL)
			break;
		if (d.d_tag == DT_STRTAB)
			strtab = va_to_off(ph, nph, d.d_un.d_ptr);
		else if (d.d_tag == DT_STRSZ)
			strsz = d.d_un.d_val;
	}
	if (strtab == UINT64_MAX || !in_bounds(len, strtab, strsz))
		RETURN_ERR(-1, "DT_STRTAB missing or outside the file");
	for (size_t i = 0; i < ndyn; i++) {
		Elf64_Dyn d;
		memcpy(&d, buf + dyn->p_offset + i * sizeof(d), sizeof(d));
		if (d.d_tag == DT_NULL)
			break;
		if (d.d_tag != DT_NEEDED)
			continue;
		if (out->ei_nneeded == JAIL_ELF_MAX_NEEDED)
			RETURN_ERR(-1, "more than %d DT_NEEDED entries", JAIL_ELF_MAX_NEEDED);
		if (d.d_un.d_val >= strsz ||
		    copy_name(buf, strtab + strsz, strtab + d.d_un.d_val,
			      out->ei_needed[out->ei_nneeded]) < 0 ||
		    strchr(out->ei_needed[out->ei_nneeded], '/'))
			RETURN_ERR(-1, "bad DT_NEEDED name");
		out->ei_nneeded++;
	}
	return 0;
}

static int parse_fd(int fd, const char *path, struct jail_elf_info *info, char *err, size_t errlen)
{
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		RETURN_ERR(-1, "%s: not a regular file", path);
	size_t len = st.st_size > ELF_READ_MAX ? ELF_READ_MAX : (size_t)st.st_size;
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		RETURN_ERR(-1, "%s: out of memory", path);
	size_t got = 0;
	while (got < len) {
		ssize_t r = pread(fd, buf + got, len - got, (off_t)got);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	char e[200];
	int rc = jail_elf_parse(buf, got, info, e, sizeof(e));
	free(buf);
	if (rc < 0)
		RETURN_ERR(-1, "%s: %s", path, e);
	return 0;
}

static const char *const lib_dirs[] = {"/lib/x86_64-linux-gnu",
				       "/usr/lib/x86_64-linux-gnu",
				       "/lib64",
				       "/usr/lib64",
				       "/lib",
				       "/usr/lib",
				       "/usr/local/lib"};

static int add_path(char ***paths, size_t *n, const char *p)
{
	for (size_t i = 0; i < *n; i++)
		if (!strcmp((*paths)[i], p))
			return 0;
	char **np = realloc(*paths, (*n + 1) * sizeof(*np));
	if (!np)
		return -1;
	*paths = np;
	if (!(np[*n] = strdup(p)))
		return -1;
	(*n)++;
	return 1;
}

int jail_elf_closure(int fd, const char *path, char ***paths, size_t *npaths, char *err,
		     size_t errlen)
{
	*paths = NULL;
	*npaths = 0;
	struct jail_elf_info *info = malloc(sizeof(*info));
	if (!info)
		RETURN_ERR(-1, "%s: out of memory", path);
	if (parse_fd(fd, path, info, err, errlen) < 0)
		goto fail;
	if (info->ei_interp[0] && add_path(paths, npaths, info->ei_interp) < 0)
		goto oom;
	/* Breadth-first over the libraries: paths[k] for k >= first_lib are libraries. */
	size_t first_lib = *npaths;
	struct jail_elf_info *cur = info;
	const char *cur_path = path;
	for (size_t k = first_lib;; k++) {
		for (unsigned i = 0; i < cur->ei_nneeded; i++) {
			char cand[512];
			bool found = false;
			for (size_t d = 0; d < ARRAY_SIZE(lib_dirs) && !found; d++) {
				snprintf(cand, sizeof(cand), "%s/%s", lib_dirs[d],
					 cur->ei_needed[i]);
				found = access(cand, R_OK) == 0;
			}
			if (!found) {
				snprintf(err, errlen, "%s: library %s not found", cur_path,
					 cur->ei_needed[i]);
				goto fail;
			}
			/* Skip a library already found under another directory name. */
			bool dup = false;
			for (size_t j = first_lib; j < *npaths && !dup; j++) {
				const char *b = strrchr((*paths)[j], '/');
				dup = b && !strcmp(b + 1, cur->ei_needed[i]);
			}
			if (!dup && add_path(paths, npaths, cand) < 0)
				goto oom;
		}
		if (k >= *npaths)
			break;
		cur_path = (*paths)[k];
		int lfd = open(cur_path, O_RDONLY | O_CLOEXEC);
		if (lfd < 0) {
			snprintf(err, errlen, "%s: %s", cur_path, strerror(errno));
			goto fail;
		}
		int rc = parse_fd(lfd, cur_path, info, err, errlen);
		close(lfd);
		if (rc < 0)
			goto fail;
		cur = info;
	}
	free(info);
	return 0;
oom:
	snprintf(err, errlen, "%s: out of memory", path);
fail:
	free(info);
	jail_elf_free(*paths, *npaths);
	*paths = NULL;
	*npaths = 0;
	return -1;
}

void jail_elf_free(char **paths, size_t npaths)
{
	for (size_t i = 0; i < npaths; i++)
		free(paths[i]);
	free(paths);
}
