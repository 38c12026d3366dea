/* nitro eif build|describe and nitro enclave attest|root-cert: thin front ends of
 * src/enclave (EIF images, the NSM, the attestation PKI). See docs/enclaves.md. */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "enclave/cbw.h"
#include "enclave/eif.h"
#include "enclave/nsm.h"
#include "enclave/pki.h"
#include "lib/util.h"

const char eif_commands_help[] =
    "  eif build --kernel K --ramdisk R [--ramdisk R ...] [--cmdline S] --output F\n"
    "      [--signing-certificate C --private-key K] | eif describe F\n"
    "                       build or describe an enclave image (EIF), print its PCRs\n"
    "  enclave root-cert | enclave attest --eif F --output DOC [--nonce HEX] ...\n"
    "                       the enclave attestation root; an NSM attestation document\n"
    "  enclave console RUN_DIR [--slot UID]\n"
    "                       a debug-mode enclave's console kept in a parent's run folder\n";

#define EIF_INPUT_MAX (16ull << 30)

static uint8_t *slurp(const char *what, const char *path, size_t *len)
{
	uint8_t *buf = NULL;
	int e = read_file(path, EIF_INPUT_MAX, &buf, len);
	if (e)
		die("%s %s: %s", what, path, strerror(e));
	return buf;
}

static void hex(const uint8_t *d, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
}

static json_t *measurements(const struct eif_pcrs *p)
{
	char h[2 * EIF_DIGEST_LEN + 1];
	json_t *m = json_object();
	json_object_set_new(m, "HashAlgorithm", json_string("Sha384 { ... }"));
	hex(p->pcr0, EIF_DIGEST_LEN, h);
	json_object_set_new(m, "PCR0", json_string(h));
	hex(p->pcr1, EIF_DIGEST_LEN, h);
	json_object_set_new(m, "PCR1", json_string(h));
	hex(p->pcr2, EIF_DIGEST_LEN, h);
	json_object_set_new(m, "PCR2", json_string(h));
	if (p->has_pcr8) {
		hex(p->pcr8, EIF_DIGEST_LEN, h);
		json_object_set_new(m, "PCR8", json_string(h));
	}
	return m;
}

static void print_json(json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (!s)
		die("out of memory");
	puts(s);
	free(s);
	json_decref(j);
}

static void write_out(const char *path, const uint8_t *buf, size_t len)
{
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof(tmp), "%s.tmp%d", path, (int)getpid()) >= (int)sizeof(tmp))
		die("%s: path too long", path);
	FILE *f = fopen(tmp, "wxe");
	if (!f)
		die("%s: %s", tmp, strerror(errno));
	if (fwrite(buf, 1, len, f) != len || fflush(f) != 0 || fsync(fileno(f)) != 0) {
		fclose(f);
		unlink(tmp);
		die("%s: write failed", path);
	}
	fclose(f);
	if (rename(tmp, path) < 0) {
		unlink(tmp);
		die("%s: %s", path, strerror(errno));
	}
}

/* Reads and parses an EIF; dies with the parser's reason. */
static uint8_t *load_eif(const char *path, size_t *len, struct eif_info *info,
			 struct eif_pcrs *pcrs)
{
	uint8_t *img = slurp("EIF", path, len);
	char err[256] = "";
	enum eif_err e = eif_parse(img, *len, info, err, sizeof(err));
	if (e != EIF_OK)
		die("%s: invalid EIF (%s, code %d): %s", path, eif_err_name(e), e, err);
	if (eif_measure(info, pcrs, err, sizeof(err)))
		die("%s: %s", path, err);
	return img;
}

static const char eif_usage[] =
    "usage: nitro eif build --kernel K --ramdisk R [--ramdisk R2 ...] [--cmdline STR]\n"
    "                       [--signing-certificate CERT.pem --private-key KEY.pem] --output F\n"
    "       nitro eif describe F\n";

static int eif_build_cmd(int argc, char **argv)
{
	struct eif_build_in in = {0};
	const char *kernel = NULL, *out = NULL, *cert = NULL, *key = NULL;
	const char *rd[EIF_MAX_RAMDISKS];
	unsigned nrd = 0;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (i + 1 >= argc)
			die_usage("eif build: %s needs a value\n%s", a, eif_usage);
		const char *v = argv[++i];
		if (!strcmp(a, "--kernel"))
			kernel = v;
		else if (!strcmp(a, "--ramdisk")) {
			if (nrd >= EIF_MAX_RAMDISKS)
				die_usage("eif build: at most %d ramdisks", EIF_MAX_RAMDISKS);
			rd[nrd++] = v;
		} else if (!strcmp(a, "--cmdline"))
			in.cmdline = v;
		else if (!strcmp(a, "--signing-certificate"))
			cert = v;
		else if (!strcmp(a, "--private-key"))
			key = v;
		else if (!strcmp(a, "--output"))
			out = v;
		else
			die_usage("eif build: unknown option %s\n%s", a, eif_usage);
	}
	if (!kernel || !nrd || !out)
		die_usage("eif build: --kernel, --ramdisk and --output are required\n%s",
			  eif_usage);
	if (!cert != !key)
		die_usage("eif build: --signing-certificate and --private-key go together");
	in.kernel = slurp("kernel", kernel, &in.kernel_len);
	if (!in.kernel_len)
		die("kernel %s is empty", kernel);
	for (unsigned i = 0; i < nrd; i++)
		in.ramdisk[i] = slurp("ramdisk", rd[i], &in.ramdisk_len[i]);
	in.nramdisks = nrd;
	if (cert) {
		in.cert_pem = slurp("signing certificate", cert, &in.cert_pem_len);
		in.key_pem = slurp("private key", key, &in.key_pem_len);
	}
	char err[256] = "";
	size_t len;
	uint8_t *img = eif_build(&in, &len, err, sizeof(err));
	if (!img)
		die("eif build: %s", err);
	struct eif_info info;
	struct eif_pcrs pcrs;
	if (eif_parse(img, len, &info, err, sizeof(err)) != EIF_OK ||
	    eif_measure(&info, &pcrs, err, sizeof(err)))
		die("eif build: the built image does not read back: %s", err);
	write_out(out, img, len);
	json_t *j = json_object();
	json_object_set_new(j, "Measurements", measurements(&pcrs));
	print_json(j);
	free(img);
	free((void *)in.kernel);
	for (unsigned i = 0; i < nrd; i++)
		free((void *)in.ramdisk[i]);
	free((void *)in.cert_pem);
	free((void *)in.key_pem);
	return 0;
}

static int eif_describe_cmd(int argc, char **argv)
{
	if (argc != 1)
		die_usage("%s", eif_usage);
	size_t len;
	struct eif_info info;
	struct eif_pcrs pcrs;
	uint8_t *img = load_eif(argv[0], &len, &info, &pcrs);
	json_t *j = json_object();
	char crc[9];
	snprintf(crc, sizeof(crc), "%08x", info.crc);
	json_object_set_new(j, "Version", json_integer(info.version));
	json_object_set_new(j, "Flags", json_integer(info.flags));
	json_object_set_new(j, "Architecture", json_string(info.flags & 1 ? "aarch64" : "x86_64"));
	json_object_set_new(j, "DefaultMemory", json_integer((json_int_t)info.default_mem));
	json_object_set_new(j, "DefaultCpus", json_integer((json_int_t)info.default_cpus));
	json_object_set_new(j, "Size", json_integer((json_int_t)len));
	json_object_set_new(j, "CRC32", json_string(crc));
	json_t *secs = json_array();
	for (unsigned i = 0; i < info.num_sections; i++) {
		const struct eif_section *s = &info.sec[i];
		json_t *o = json_object();
		json_object_set_new(o, "Type", json_string(eif_section_name(s->type)));
		json_object_set_new(o, "Offset", json_integer((json_int_t)s->offset));
		json_object_set_new(o, "Size", json_integer((json_int_t)s->size));
		json_array_append_new(secs, o);
		if (s->type == EIF_SEC_CMDLINE) {
			json_t *c = json_stringn((const char *)s->body, s->size);
			if (c) /* only if it is UTF-8 */
				json_object_set_new(j, "Cmdline", c);
		}
	}
	json_object_set_new(j, "Sections", secs);
	json_object_set_new(j, "Measurements", measurements(&pcrs));
	print_json(j);
	free(img);
	return 0;
}

int cmd_eif(int argc, char **argv)
{
	if (argc >= 1 && !strcmp(argv[0], "build"))
		return eif_build_cmd(argc - 1, argv + 1);
	if (argc >= 1 && !strcmp(argv[0], "describe"))
		return eif_describe_cmd(argc - 1, argv + 1);
	die_usage("%s", eif_usage);
}

static const char enclave_usage[] =
    "usage: nitro enclave root-cert [--state DIR]\n"
    "       nitro enclave attest --eif F [--state DIR] [--nonce HEX] [--user-data HEX]\n"
    "                            [--public-key FILE] [--debug-mode] [--module-id ID] --output F\n"
    "       nitro enclave console RUN_DIR [--slot UID]\n"
    "                            a debug-mode enclave's console (the newest, or slot UID's),\n"
    "                            kept by the parent's nitro-hv in its run folder\n";

void enclave_state_dir(const char *given, char *out, size_t n)
{
	const char *nst = getenv("NITRO_STATE"), *home = getenv("HOME");
	if (given)
		snprintf(out, n, "%s", given);
	else if (nst && *nst)
		snprintf(out, n, "%s", nst);
	else
		snprintf(out, n, "%s/.local/state/nitro", home && *home ? home : "/root");
	/* mkdir -p, 0700 */
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s", out);
	for (char *s = p + 1; *s; s++)
		if (*s == '/') {
			*s = 0;
			mkdir(p, 0700);
			*s = '/';
		}
	mkdir(p, 0700);
}

static uint8_t *unhex(const char *what, const char *s, size_t *n)
{
	size_t l = strlen(s);
	if (l % 2)
		die_usage("%s: an even number of hex digits", what);
	uint8_t *b = malloc(l / 2 + 1);
	for (size_t i = 0; i < l / 2; i++) {
		unsigned v;
		if (sscanf(s + 2 * i, "%2x", &v) != 1 ||
		    !strchr("0123456789abcdefABCDEF", s[2 * i]) ||
		    !strchr("0123456789abcdefABCDEF", s[2 * i + 1]))
			die_usage("%s: not hex", what);
		b[i] = (uint8_t)v;
	}
	*n = l / 2;
	return b;
}

static int rand_cb(void *ctx, uint8_t *buf, size_t len)
{
	(void)ctx;
	FILE *f = fopen("/dev/urandom", "re");
	int ok = f && fread(buf, 1, len, f) == len;
	if (f)
		fclose(f);
	return ok ? 0 : -1;
}

static uint64_t now_cb(void *ctx)
{
	(void)ctx;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Writes the CBOR request {"Attestation": {...}} with the optional fields. */
static size_t attest_request(uint8_t *out, size_t cap, const uint8_t *ud, size_t udl,
			     const uint8_t *nonce, size_t nl, const uint8_t *pk, size_t pkl)
{
	struct cbw w;
	cbw_init(&w, cap);
	cbw_map(&w, 1);
	cbw_text(&w, "Attestation");
	cbw_map(&w, 3);
	const char *names[3] = {"user_data", "nonce", "public_key"};
	const uint8_t *v[3] = {ud, nonce, pk};
	size_t l[3] = {udl, nl, pkl};
	for (int i = 0; i < 3; i++) {
		cbw_text(&w, names[i]);
		if (v[i])
			cbw_bytes(&w, v[i], l[i]);
		else
			cbw_null(&w);
	}
	size_t n = w.failed ? 0 : w.len;
	if (n)
		memcpy(out, w.buf, n);
	cbw_free(&w);
	return n;
}

static int enclave_attest(int argc, char **argv)
{
	const char *eif = NULL, *state = NULL, *out = NULL, *pkf = NULL,
		   *mod = "i-nitro-enc0000000000000";
	uint8_t *nonce = NULL, *ud = NULL, *pk = NULL;
	size_t nl = 0, udl = 0, pkl = 0;
	const char *parent_id = NULL, *role = NULL;
	bool debug = false;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--debug-mode")) {
			debug = true;
			continue;
		}
		if (i + 1 >= argc)
			die_usage("enclave attest: %s needs a value\n%s", a, enclave_usage);
		const char *v = argv[++i];
		if (!strcmp(a, "--eif"))
			eif = v;
		else if (!strcmp(a, "--state"))
			state = v;
		else if (!strcmp(a, "--output"))
			out = v;
		else if (!strcmp(a, "--nonce"))
			nonce = unhex("--nonce", v, &nl);
		else if (!strcmp(a, "--user-data"))
			ud = unhex("--user-data", v, &udl);
		else if (!strcmp(a, "--public-key"))
			pkf = v;
		else if (!strcmp(a, "--module-id"))
			mod = v;
		else if (!strcmp(a, "--parent-instance-id"))
			parent_id = v;
		else if (!strcmp(a, "--iam-role"))
			role = v;
		else
			die_usage("enclave attest: unknown option %s\n%s", a, enclave_usage);
	}
	if (!eif || !out)
		die_usage("enclave attest: --eif and --output are required\n%s", enclave_usage);
	if (pkf)
		pk = slurp("public key", pkf, &pkl);
	size_t len;
	struct eif_info info;
	struct eif_pcrs pcrs;
	uint8_t *img = load_eif(eif, &len, &info, &pcrs);
	char dir[PATH_MAX], err[512] = "";
	enclave_state_dir(state, dir, sizeof(dir));
	struct pki_cert root, host, leaf;
	if (pki_chain_open(dir, &root, &host, err, sizeof(err)))
		die("enclave attest: %s", err);
	if (pki_leaf(&host, mod, 3 * 3600, &leaf, err, sizeof(err)))
		die("enclave attest: %s", err);
	const uint8_t *boot[NSM_LOCKED_AT_BOOT] = {0};
	if (!debug) { /* debug-mode enclaves report PCR0-2 as zeros, like AWS */
		boot[0] = pcrs.pcr0;
		boot[1] = pcrs.pcr1;
		boot[2] = pcrs.pcr2;
	}
	if (pcrs.has_pcr8)
		boot[8] = pcrs.pcr8;
	uint8_t pcr3[EIF_DIGEST_LEN], pcr4[EIF_DIGEST_LEN];
	if (role && !eif_pcr_of_text(role, pcr3))
		boot[3] = pcr3;
	if (parent_id && !eif_pcr_of_text(parent_id, pcr4))
		boot[4] = pcr4;
	struct nsm_ops ops = {
	    .sign = pki_es384_sign, .sign_ctx = leaf.key, .random = rand_cb, .now_ms = now_cb};
	static struct nsm_state s;
	nsm_init(&s, mod, boot, &ops);
	s.cert = leaf.der;
	s.cert_len = leaf.der_len;
	s.cabundle[0] = root.der;
	s.cabundle_len[0] = root.der_len;
	s.cabundle[1] = host.der;
	s.cabundle_len[1] = host.der_len;
	s.ncabundle = 2;
	static uint8_t req[NSM_REQUEST_MAX + 1], resp[NSM_RESPONSE_MAX];
	size_t rl = attest_request(req, sizeof(req), ud, udl, nonce, nl, pk, pkl);
	if (!rl)
		die("enclave attest: the request does not fit in %d bytes", NSM_REQUEST_MAX);
	size_t n = nsm_handle(&s, req, rl, resp, sizeof(resp));
	/* A1 6B "Attestation" A1 68 "document" <bstr>; anything else is an error reply. */
	static const uint8_t pre[] = {0xa1, 0x6b, 'A',	't', 't', 'e', 's', 't', 'a', 't', 'i', 'o',
				      'n',  0xa1, 0x68, 'd', 'o', 'c', 'u', 'm', 'e', 'n', 't'};
	if (n < sizeof(pre) + 3 || memcmp(resp, pre, sizeof(pre)))
		die("enclave attest: the NSM answered %.*s", (int)(n > 40 ? 40 : n),
		    resp + (n > 8 ? 8 : 0));
	const uint8_t *d = resp + sizeof(pre);
	size_t dl, hl;
	if (d[0] == 0x59) {
		dl = (size_t)d[1] << 8 | d[2];
		hl = 3;
	} else if (d[0] == 0x58) {
		dl = d[1];
		hl = 2;
	} else {
		die("enclave attest: unexpected document encoding");
	}
	if (sizeof(pre) + hl + dl != n)
		die("enclave attest: document length mismatch");
	write_out(out, d + hl, dl);
	pki_cert_free(&leaf);
	pki_cert_free(&host);
	pki_cert_free(&root);
	free(img);
	free(nonce);
	free(ud);
	free(pk);
	return 0;
}

static int enclave_root_cert(int argc, char **argv)
{
	const char *state = NULL;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--state") && i + 1 < argc)
			state = argv[++i];
		else
			die_usage("%s", enclave_usage);
	}
	char dir[PATH_MAX], err[512] = "";
	enclave_state_dir(state, dir, sizeof(dir));
	struct pki_cert root, host;
	if (pki_chain_open(dir, &root, &host, err, sizeof(err)))
		die("enclave root-cert: %s", err);
	PEM_write_X509(stdout, root.cert);
	pki_cert_free(&host);
	pki_cert_free(&root);
	return 0;
}

/* nitro enclave console RUN_DIR [--slot UID]: RUN_DIR/enclave-UID.log (the spawner's, see
 * src/hv/enclave_spawn.h) to stdout; without --slot the most recently written one. */
static int enclave_console(int argc, char **argv)
{
	const char *dir = NULL, *slot = NULL;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--slot") && i + 1 < argc)
			slot = argv[++i];
		else if (!dir && argv[i][0] != '-')
			dir = argv[i];
		else
			die_usage("%s", enclave_usage);
	}
	if (!dir)
		die_usage("%s", enclave_usage);
	char path[PATH_MAX] = "";
	if (slot) {
		char *end;
		unsigned long long uid = strtoull(slot, &end, 10);
		if (!*slot || *end || !uid)
			die_usage("enclave console: --slot %s: expected a slot uid (1, 2, ...)",
				  slot);
		snprintf(path, sizeof(path), "%s/enclave-%llu.log", dir, uid);
	} else {
		DIR *d = opendir(dir);
		if (!d)
			die("enclave console: %s: %s", dir, strerror(errno));
		struct timespec newest = {0};
		for (struct dirent *de; (de = readdir(d));) {
			struct stat st;
			unsigned long long uid;
			char tail[8];
			if (sscanf(de->d_name, "enclave-%llu%7s", &uid, tail) != 2 ||
			    strcmp(tail, ".log") || fstatat(dirfd(d), de->d_name, &st, 0) < 0)
				continue;
			if (st.st_mtim.tv_sec > newest.tv_sec ||
			    (st.st_mtim.tv_sec == newest.tv_sec &&
			     st.st_mtim.tv_nsec >= newest.tv_nsec)) {
				newest = st.st_mtim;
				snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			}
		}
		closedir(d);
		if (!path[0])
			die("enclave console: no debug-mode enclave console in %s (only enclaves "
			    "run with --debug-mode have one)",
			    dir);
	}
	FILE *f = fopen(path, "rb");
	if (!f)
		die("enclave console: %s: %s", path, strerror(errno));
	char buf[65536];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		fwrite(buf, 1, n, stdout);
	fclose(f);
	return 0;
}

int cmd_enclave(int argc, char **argv)
{
	if (argc >= 1 && !strcmp(argv[0], "console"))
		return enclave_console(argc - 1, argv + 1);
	if (argc >= 1 && !strcmp(argv[0], "attest"))
		return enclave_attest(argc - 1, argv + 1);
	if (argc >= 1 && !strcmp(argv[0], "root-cert"))
		return enclave_root_cert(argc - 1, argv + 1);
	die_usage("%s", enclave_usage);
}
