/* `nitro --host SOCKET ...`: commands that call nitrod's API (see client.h). */
#include "cli/client.h"

#include <curl/curl.h>
#include <jansson.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "launch/launch.h"
#include "lib/util.h"

#define MAX_REPLY (8u << 20)

static const char client_usage[] =
    "usage: nitro --host SOCKET COMMAND [--json]\n"
    "  instances run [--cpus N] [--memory MiB] [--kernel PATH] [--initrd PATH | --no-initrd]\n"
    "                [--cmdline TEXT] [--console] [--tpm] [--region R] [--enclaves]\n"
    "                [--volume VOL-ID[,readonly][,bus=nvme|virtio][,device=NAME]]...\n"
    "                [--instance-store MiB[,dir=DIR]]\n"
    "  instances list | describe ID | stop ID | start ID | reboot ID | terminate ID\n"
    "  instances console ID [--raw]\n"
    "                             the serial output so far (launched with --console only);\n"
    "                             control characters shown as \\xHH unless --raw\n"
    "  instances tpm-ek ID        the TPM's endorsement key and certificate, PEM (--tpm only)\n"
    "  (stop, start, reboot and terminate take --wait: return once the change is done)\n"
    "  volumes create --size MiB [--unencrypted] [--iops N | --gp2] [--throughput MiB]\n"
    "  volumes list | describe VOL | delete VOL\n"
    "  volumes attach VOL INSTANCE [--readonly] | detach VOL\n"
    "  vpc create ID --cidr A.B.C.D/P [--internet-gateway]   (admins: root, --admin-uid)\n"
    "  vpc list | describe ID | delete ID\n"
    "  host attest [--nonce TEXT]\n"
    "  host identity-cert   the certificate that verifies instance identity documents\n"
    "  enclave root-cert    the root of the enclaves' attestation documents, PEM\n";

struct reply {
	char *r_buf;
	size_t r_len;
	long r_status;
	bool r_too_big;
};

static const char *host_socket;
static bool want_json;

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
	struct reply *r = arg;
	size_t len = size * n;
	if (r->r_len + len > MAX_REPLY) {
		r->r_too_big = true;
		return 0;
	}
	char *b = realloc(r->r_buf, r->r_len + len + 1);
	if (!b)
		return 0;
	memcpy(b + r->r_len, p, len);
	r->r_buf = b;
	r->r_len += len;
	b[r->r_len] = 0;
	return len;
}

/* nitrod refuses a connection at accept (a uid not allowed, too many connections) with a
 * short answer and closes it at once: libcurl, still sending, then reports a failure to
 * connect or send. A fresh connection that sends nothing reads that answer: its error
 * message, or NULL when there is none (nitrod down, or the connection admitted). */
static char *refusal(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(host_socket) >= sizeof(sa.sun_path))
		return NULL;
	memcpy(sa.sun_path, host_socket, strlen(host_socket));
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return NULL;
	char buf[1024];
	size_t n = 0;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		while (n < sizeof(buf) - 1 && poll(&p, 1, 1000) == 1) {
			ssize_t k = read(fd, buf + n, sizeof(buf) - 1 - n);
			if (k <= 0)
				break;
			n += (size_t)k;
		}
	}
	close(fd);
	buf[n] = 0;
	char *body = strstr(buf, "\r\n\r\n");
	if (strncmp(buf, "HTTP/1.1 ", 9) || !body)
		return NULL;
	json_t *j = json_loads(body + 4, 0, NULL);
	const char *msg = json_string_value(json_object_get(j, "error"));
	char *out = msg ? strdup(msg) : NULL;
	json_decref(j);
	return out;
}

/* One API call; dies on a transport failure. Returns the reply (status and body). */
static struct reply call(const char *method, const char *path, const char *body)
{
	struct reply r = {0};
	CURL *c = curl_easy_init();
	if (!c)
		die("--host %s: cannot initialise libcurl", host_socket);
	char url[1024];
	snprintf(url, sizeof(url), "http://nitrod%s", path);
	struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
	curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, host_socket);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	if (body)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	CURLcode e = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.r_status);
	curl_slist_free_all(hdr);
	curl_easy_cleanup(c);
	if (r.r_too_big)
		die("--host %s: the reply is larger than %u bytes", host_socket, MAX_REPLY);
	if (e != CURLE_OK) {
		char *msg = e == CURLE_COULDNT_CONNECT || e == CURLE_SEND_ERROR ||
				    e == CURLE_RECV_ERROR || e == CURLE_GOT_NOTHING
				? refusal()
				: NULL;
		if (msg)
			die("%s", msg);
		die("--host %s: %s", host_socket, curl_easy_strerror(e));
	}
	if (!r.r_buf)
		r.r_buf = strdup("");
	return r;
}

/* The reply as JSON; an error status dies with the API's message. */
static json_t *call_json(const char *method, const char *path, json_t *body)
{
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	struct reply r = call(method, path, text);
	free(text);
	json_t *j = json_loadb(r.r_buf, r.r_len, 0, NULL);
	if (r.r_status >= 400) {
		const char *msg = json_string_value(json_object_get(j, "error"));
		die("%s", msg ? msg : r.r_buf);
	}
	if (!j)
		die("--host %s: the reply to %s %s is not JSON", host_socket, method, path);
	free(r.r_buf);
	return j;
}

static void print_json(json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (s)
		puts(s);
	free(s);
}

static const char *str(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "-";
}

/* One record of a kind: as JSON with --json, else the kind's header line and its row. */
static void show(json_t *v, void (*header)(void), void (*row)(json_t *))
{
	if (want_json) {
		print_json(v);
	} else {
		header();
		row(v);
	}
}

/* GET path, a list of records under key: as JSON with --json, else the header line and a
 * row per record. */
static int show_list(const char *path, const char *key, void (*header)(void), void (*row)(json_t *))
{
	json_t *j = call_json("GET", path, NULL), *v;
	if (want_json) {
		print_json(j);
	} else {
		header();
		size_t i;
		json_array_foreach(json_object_get(j, key), i, v) row(v);
	}
	json_decref(j);
	return 0;
}

/* GET path, a PEM certificate: as JSON with --json, else the PEM. */
static int show_cert(const char *path)
{
	json_t *j = call_json("GET", path, NULL);
	if (want_json)
		print_json(j);
	else
		fputs(str(j, "certificate"), stdout);
	json_decref(j);
	return 0;
}

static void join_array(json_t *a, char *out, size_t len)
{
	out[0] = 0;
	size_t i;
	json_t *e;
	json_array_foreach(a, i, e)
	{
		/* a volume id, or {id, readonly, bus, device}: vol-...(ro):sdf, vol-...:virtio */
		const char *s = json_is_object(e) ? json_string_value(json_object_get(e, "id"))
						  : json_string_value(e);
		const char *dev = json_string_value(json_object_get(e, "device"));
		const char *bus = json_string_value(json_object_get(e, "bus"));
		snprintf(out + strlen(out), len - strlen(out), "%s%s%s%s%s", i ? "," : "",
			 s ? s : "?", json_is_true(json_object_get(e, "readonly")) ? "(ro)" : "",
			 dev || bus ? ":" : "",
			 dev   ? dev
			 : bus ? bus
			       : "");
	}
	if (!out[0])
		snprintf(out, len, "-");
}

static void inst_row(json_t *in)
{
	char vols[512];
	join_array(json_object_get(in, "volumes"), vols, sizeof(vols));
	printf("%-20s %-11s %4lld %8lld  %-7s %s\n", str(in, "id"), str(in, "state"),
	       (long long)json_integer_value(json_object_get(in, "cpus")),
	       (long long)json_integer_value(json_object_get(in, "memory_mib")),
	       json_is_true(json_object_get(in, "console")) ? "on" : "off", vols);
}

static void inst_header(void)
{
	printf("%-20s %-11s %4s %8s  %-7s %s\n", "ID", "STATE", "CPUS", "MEMORY", "CONSOLE",
	       "VOLUMES");
}

static void describe_inst(json_t *in)
{
	char vols[512];
	join_array(json_object_get(in, "volumes"), vols, sizeof(vols));
	printf("id:            %s\n", str(in, "id"));
	printf("state:         %s\n", str(in, "state"));
	if (json_is_string(json_object_get(in, "reason")))
		printf("reason:        %s\n", str(in, "reason"));
	printf("cpus:          %lld\n", (long long)json_integer_value(json_object_get(in, "cpus")));
	printf("memory_mib:    %lld\n",
	       (long long)json_integer_value(json_object_get(in, "memory_mib")));
	printf("kernel:        %s\n", str(in, "kernel"));
	printf("initrd:        %s\n", str(in, "initrd"));
	printf("cmdline:       %s\n", str(in, "cmdline"));
	printf("volumes:       %s\n", vols);
	json_t *st = json_object_get(in, "instance_store");
	if (st)
		printf("instance_store: %lld MiB%s%s\n",
		       (long long)json_integer_value(json_object_get(st, "size_mib")),
		       json_object_get(st, "dir") ? " in " : "", str(st, "dir"));
	printf("console:       %s\n", json_is_true(json_object_get(in, "console")) ? "on" : "off");
	printf("tpm:           %s\n", json_is_true(json_object_get(in, "tpm")) ? "on" : "off");
	printf("enclaves:      %s\n", json_is_true(json_object_get(in, "enclaves")) ? "on" : "off");
	printf("card_restarts: %lld\n",
	       (long long)json_integer_value(json_object_get(in, "card_restarts")));
	if (json_is_integer(json_object_get(in, "owner")))
		printf("owner:         uid %lld\n",
		       (long long)json_integer_value(json_object_get(in, "owner")));
}

static const char *need_id(int argc, char **argv, const char *what)
{
	if (argc < 2 || argv[1][0] == '-')
		die_usage("%s: expected an id\n%s", what, client_usage);
	if (argc > 2 && strcmp(argv[2], "--wait"))
		die_usage("%s: unexpected argument %s\n%s", what, argv[2], client_usage);
	return argv[1];
}

/* The length of the UTF-8 sequence at p (at most n bytes) and its code point, or 0 when
 * it is not well-formed (overlong, surrogate, past U+10FFFF, cut short). */
static size_t utf8_seq(const unsigned char *p, size_t n, uint32_t *cp)
{
	size_t len;
	uint32_t c, min;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2, c = p[0] & 0x1f, min = 0x80;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		len = 3, c = p[0] & 0x0f, min = 0x800;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		len = 4, c = p[0] & 0x07, min = 0x10000;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (p[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

/* Guest bytes made inert for the operator's terminal (issue 10 item 16): a guest must not
 * drive the terminal that reads its console (set the title, clear the screen, move the
 * cursor, answer back through OSC/DCS queries, switch to 8-bit controls). Newline,
 * carriage return and tab pass; every other C0 control, DEL and every byte that is not
 * part of well-formed UTF-8 is written as \xHH (ESC as \x1b); C1 controls written as
 * UTF-8 (U+0080..U+009F) as \u0080..\u009f. Well-formed UTF-8 text passes unchanged. */
static void write_inert(const unsigned char *p, size_t n, FILE *out)
{
	for (size_t i = 0; i < n;) {
		unsigned char b = p[i];
		uint32_t cp;
		size_t l;
		if (b == '\n' || b == '\r' || b == '\t' || (b >= 0x20 && b < 0x7f)) {
			putc(b, out);
			i++;
		} else if (b >= 0x80 && (l = utf8_seq(p + i, n - i, &cp))) {
			if (cp <= 0x9f)
				fprintf(out, "\\u%04x", (unsigned)cp);
			else
				fwrite(p + i, 1, l, out);
			i += l;
		} else {
			fprintf(out, "\\x%02x", b);
			i++;
		}
	}
}

/* Polls until the instance's state is none of the transitional ones. */
static json_t *wait_settled(const char *id, json_t *in)
{
	char path[256];
	snprintf(path, sizeof(path), "/v1/instances/%s", id);
	for (int i = 0; i < 6000; i++) {
		const char *st = str(in, "state");
		if (strcmp(st, "pending") && strcmp(st, "stopping"))
			return in;
		json_decref(in);
		nanosleep(&(struct timespec){0, 20000000}, NULL);
		in = call_json("GET", path, NULL);
	}
	die("instance %s: still %s after two minutes", id, str(in, "state"));
}

static int instances_run(int argc, char **argv)
{
	json_t *spec = json_object(), *vols = json_array();
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		uint64_t n;
		if (!strcmp(a, "--console")) {
			json_object_set_new(spec, "console", json_true());
			continue;
		}
		if (!strcmp(a, "--tpm")) {
			json_object_set_new(spec, "tpm", json_true());
			continue;
		}
		if (!strcmp(a, "--enclaves")) {
			json_object_set_new(spec, "enclaves", json_true());
			continue;
		}
		if (!strcmp(a, "--no-initrd")) {
			json_object_set_new(spec, "initrd", json_null());
			continue;
		}
		if (!v)
			die_usage("instances run: %s: missing value\n%s", a, client_usage);
		i++;
		if (!strcmp(a, "--cpus")) {
			if (!parse_u64(v, 1, 254, &n))
				die_usage("instances run: --cpus %s: expected 1 to 254", v);
			json_object_set_new(spec, "cpus", json_integer((json_int_t)n));
		} else if (!strcmp(a, "--memory")) {
			if (!parse_u64(v, 1, 1u << 20, &n))
				die_usage("instances run: --memory %s: expected MiB", v);
			json_object_set_new(spec, "memory_mib", json_integer((json_int_t)n));
		} else if (!strcmp(a, "--kernel")) {
			json_object_set_new(spec, "kernel", json_string(v));
		} else if (!strcmp(a, "--initrd")) {
			json_object_set_new(spec, "initrd", json_string(v));
		} else if (!strcmp(a, "--cmdline")) {
			json_object_set_new(spec, "cmdline", json_string(v));
		} else if (!strcmp(a, "--region")) { /* nitrod checks it */
			json_object_set_new(spec, "region", json_string(v));
		} else if (!strcmp(a, "--volume")) {
			/* VOL-ID[,readonly][,bus=nvme|virtio][,device=NAME]: nitrod checks
			 * the values */
			char buf[256];
			if (strlen(v) >= sizeof(buf))
				die_usage("instances run: --volume %s: too long", v);
			snprintf(buf, sizeof(buf), "%s", v);
			char *save = NULL, *tok = strtok_r(buf, ",", &save);
			json_t *o = json_pack("{s:s}", "id", tok ? tok : "");
			while ((tok = strtok_r(NULL, ",", &save))) {
				if (!strcmp(tok, "readonly"))
					json_object_set_new(o, "readonly", json_true());
				else if (!strncmp(tok, "bus=", 4))
					json_object_set_new(o, "bus", json_string(tok + 4));
				else if (!strncmp(tok, "device=", 7))
					json_object_set_new(o, "device", json_string(tok + 7));
				else
					die_usage(
					    "instances run: --volume %s: expected "
					    "VOL-ID[,readonly][,bus=nvme|virtio][,device=NAME]",
					    v);
			}
			json_array_append_new(vols, o);
		} else if (!strcmp(a, "--instance-store")) {
			char buf[PATH_MAX];
			if (strlen(v) >= sizeof(buf))
				die_usage("instances run: --instance-store %s: too long", v);
			snprintf(buf, sizeof(buf), "%s", v);
			char *save = NULL, *tok = strtok_r(buf, ",", &save);
			if (!tok || !parse_u64(tok, 1, 1u << 20, &n))
				die_usage(
				    "instances run: --instance-store %s: expected MiB[,dir=DIR]",
				    v);
			json_t *o = json_pack("{s:I}", "size_mib", (json_int_t)n);
			while ((tok = strtok_r(NULL, ",", &save))) {
				if (strncmp(tok, "dir=", 4))
					die_usage("instances run: --instance-store %s: expected "
						  "MiB[,dir=DIR]",
						  v);
				json_object_set_new(o, "dir", json_string(tok + 4));
			}
			json_object_set_new(spec, "instance_store", o);
		} else {
			die_usage("instances run: unknown option %s\n%s", a, client_usage);
		}
	}
	if (json_array_size(vols))
		json_object_set_new(spec, "volumes", vols);
	else
		json_decref(vols);
	json_t *in = call_json("POST", "/v1/instances", spec);
	show(in, inst_header, inst_row);
	int rc = 0;
	if (!strcmp(str(in, "state"), "failed")) {
		fprintf(stderr, "nitro: instance %s failed: %s\n", str(in, "id"),
			str(in, "reason"));
		rc = 1;
	}
	json_decref(in);
	return rc;
}

static int cmd_instances(int argc, char **argv)
{
	if (argc < 1)
		die_usage("instances: expected a subcommand\n%s", client_usage);
	const char *sub = argv[0];
	char path[256];
	if (!strcmp(sub, "run"))
		return instances_run(argc, argv);
	if (!strcmp(sub, "list")) {
		if (argc > 1)
			die_usage("instances list: unexpected argument %s", argv[1]);
		return show_list("/v1/instances", "instances", inst_header, inst_row);
	}
	if (!strcmp(sub, "console")) {
		const char *id = NULL;
		bool raw = false;
		for (int i = 1; i < argc; i++) {
			if (!strcmp(argv[i], "--raw"))
				raw = true;
			else if (argv[i][0] == '-' || id)
				die_usage("instances console: unexpected argument %s\n%s", argv[i],
					  client_usage);
			else
				id = argv[i];
		}
		if (!id)
			die_usage("instances console: expected an id\n%s", client_usage);
		snprintf(path, sizeof(path), "/v1/instances/%s/console", id);
		struct reply r = call("GET", path, NULL);
		if (r.r_status >= 400) {
			json_t *j = json_loadb(r.r_buf, r.r_len, 0, NULL);
			const char *msg = json_string_value(json_object_get(j, "error"));
			die("%s", msg ? msg : r.r_buf);
		}
		if (raw)
			fwrite(r.r_buf, 1, r.r_len, stdout);
		else
			write_inert((const unsigned char *)r.r_buf, r.r_len, stdout);
		free(r.r_buf);
		return 0;
	}
	if (!strcmp(sub, "tpm-ek")) {
		if (argc != 2 || argv[1][0] == '-')
			die_usage("instances tpm-ek: expected an id\n%s", client_usage);
		snprintf(path, sizeof(path), "/v1/instances/%s/tpm/ek", argv[1]);
		json_t *ek = call_json("GET", path, NULL);
		if (want_json)
			print_json(ek);
		else
			printf("%s%s", str(ek, "public_key"), str(ek, "certificate"));
		json_decref(ek);
		return 0;
	}
	const char *id = need_id(argc, argv, sub);
	bool wait = argc > 2;
	json_t *in;
	if (!strcmp(sub, "describe")) {
		snprintf(path, sizeof(path), "/v1/instances/%s", id);
		in = call_json("GET", path, NULL);
		if (want_json)
			print_json(in);
		else
			describe_inst(in);
		json_decref(in);
		return 0;
	}
	if (!strcmp(sub, "terminate")) {
		snprintf(path, sizeof(path), "/v1/instances/%s", id);
		in = call_json("DELETE", path, NULL);
	} else if (!strcmp(sub, "stop") || !strcmp(sub, "start") || !strcmp(sub, "reboot")) {
		snprintf(path, sizeof(path), "/v1/instances/%s/%s", id, sub);
		in = call_json("POST", path, NULL);
	} else {
		die_usage("instances %s: unknown subcommand\n%s", sub, client_usage);
	}
	if (wait)
		in = wait_settled(id, in);
	show(in, inst_header, inst_row);
	int rc = 0;
	if (!strcmp(sub, "start") && !strcmp(str(in, "state"), "failed")) {
		fprintf(stderr, "nitro: instance %s failed: %s\n", id, str(in, "reason"));
		rc = 1;
	}
	json_decref(in);
	return rc;
}

static void vol_header(void)
{
	printf("%-22s %-10s %10s  %-9s %s\n", "ID", "STATE", "SIZE_MIB", "ENCRYPTED",
	       "ATTACHED_TO");
}

static void vol_row(json_t *v)
{
	printf("%-22s %-10s %10lld  %-9s %s\n", str(v, "id"), str(v, "state"),
	       (long long)json_integer_value(json_object_get(v, "size_mib")),
	       json_is_true(json_object_get(v, "encrypted")) ? "yes" : "no", str(v, "attached_to"));
}

static int cmd_volumes(int argc, char **argv)
{
	if (argc < 1)
		die_usage("volumes: expected a subcommand\n%s", client_usage);
	const char *sub = argv[0];
	char path[256];
	json_t *v;
	if (!strcmp(sub, "create")) {
		json_t *spec = json_object();
		for (int i = 1; i < argc; i++) {
			uint64_t n;
			if (!strcmp(argv[i], "--unencrypted")) {
				json_object_set_new(spec, "encrypted", json_false());
			} else if (!strcmp(argv[i], "--size") && i + 1 < argc) {
				if (!parse_u64(argv[++i], 1, 1u << 20, &n))
					die_usage("volumes create: --size %s: expected MiB (1 to "
						  "1048576)",
						  argv[i]);
				json_object_set_new(spec, "size_mib", json_integer((json_int_t)n));
			} else if (!strcmp(argv[i], "--iops") && i + 1 < argc) {
				if (!parse_u64(argv[++i], 0, LAUNCH_MAX_IOPS, &n))
					die_usage("volumes create: --iops %s: expected 0 to %u",
						  argv[i], LAUNCH_MAX_IOPS);
				json_object_set_new(spec, "iops", json_integer((json_int_t)n));
			} else if (!strcmp(argv[i], "--throughput") && i + 1 < argc) {
				if (!parse_u64(argv[++i], 0, LAUNCH_MAX_THROUGHPUT_MIB, &n))
					die_usage(
					    "volumes create: --throughput %s: expected MiB/s 0 "
					    "to %u",
					    argv[i], LAUNCH_MAX_THROUGHPUT_MIB);
				json_object_set_new(spec, "throughput_mib",
						    json_integer((json_int_t)n));
			} else if (!strcmp(argv[i], "--gp2")) {
				json_object_set_new(spec, "gp2", json_true());
			} else {
				die_usage("volumes create: unexpected argument %s\n%s", argv[i],
					  client_usage);
			}
		}
		v = call_json("POST", "/v1/volumes", spec);
		show(v, vol_header, vol_row);
	} else if (!strcmp(sub, "list")) {
		return show_list("/v1/volumes", "volumes", vol_header, vol_row);
	} else if (!strcmp(sub, "describe") || !strcmp(sub, "delete") || !strcmp(sub, "detach")) {
		if (argc != 2)
			die_usage("volumes %s: expected a volume id\n%s", sub, client_usage);
		bool detach = !strcmp(sub, "detach");
		snprintf(path, sizeof(path), "/v1/volumes/%s%s", argv[1], detach ? "/detach" : "");
		v = call_json(detach		       ? "POST"
			      : !strcmp(sub, "delete") ? "DELETE"
						       : "GET",
			      path, NULL);
		if (!strcmp(sub, "delete") && !want_json)
			printf("%s deleted\n", str(v, "id"));
		else
			show(v, vol_header, vol_row);
	} else if (!strcmp(sub, "attach")) {
		bool ro = argc == 4 && !strcmp(argv[3], "--readonly");
		if (argc != 3 && !ro)
			die_usage("volumes attach: expected VOL INSTANCE [--readonly]\n%s",
				  client_usage);
		snprintf(path, sizeof(path), "/v1/volumes/%s/attach", argv[1]);
		json_t *body = json_pack("{s:s}", "instance_id", argv[2]);
		if (ro)
			json_object_set_new(body, "readonly", json_true());
		v = call_json("POST", path, body);
		show(v, vol_header, vol_row);
	} else {
		die_usage("volumes %s: unknown subcommand\n%s", sub, client_usage);
	}
	json_decref(v);
	return 0;
}

static void vpc_header(void)
{
	printf("%-9s %-19s %-4s %s\n", "VPC", "CIDR", "IGW", "OWNER");
}

static void vpc_row(json_t *v)
{
	printf("%-9lld %-19s %-4s %lld\n", (long long)json_integer_value(json_object_get(v, "id")),
	       str(v, "cidr"), json_is_true(json_object_get(v, "internet_gateway")) ? "yes" : "no",
	       (long long)json_integer_value(json_object_get(v, "owner")));
}

/* nitro --host S vpc create|list|describe|delete: nitrod's VPC records (as `nitro vpc` keeps
 * them for `nitro run`). */
static int cmd_vpc(int argc, char **argv)
{
	if (argc < 1)
		die_usage("vpc: expected a subcommand\n%s", client_usage);
	const char *sub = argv[0];
	char path[64];
	uint64_t id = 0;
	json_t *v;
	if (!strcmp(sub, "create")) {
		const char *cidr = NULL;
		bool igw = false;
		for (int i = 1; i < argc; i++) {
			if (!strcmp(argv[i], "--cidr") && i + 1 < argc)
				cidr = argv[++i];
			else if (!strcmp(argv[i], "--internet-gateway"))
				igw = true;
			else if (!id && parse_u64(argv[i], 1, 0xffffff, &id))
				continue;
			else
				die_usage("vpc create: unexpected argument %s\n%s", argv[i],
					  client_usage);
		}
		if (!id || !cidr)
			die_usage("vpc create: ID (1..16777215) and --cidr are required\n%s",
				  client_usage);
		/* the API checks the CIDR (its message names what is wrong) */
		v = call_json("POST", "/v1/vpcs",
			      json_pack("{s:I, s:s, s:b}", "id", (json_int_t)id, "cidr", cidr,
					"internet_gateway", igw));
	} else if (!strcmp(sub, "list") && argc == 1) {
		return show_list("/v1/vpcs", "vpcs", vpc_header, vpc_row);
	} else if ((!strcmp(sub, "describe") || !strcmp(sub, "delete")) && argc == 2) {
		if (!parse_u64(argv[1], 1, 0xffffff, &id))
			die_usage("vpc %s: expected a VPC id (1..16777215)", sub);
		snprintf(path, sizeof(path), "/v1/vpcs/%llu", (unsigned long long)id);
		v = call_json(!strcmp(sub, "delete") ? "DELETE" : "GET", path, NULL);
		if (!strcmp(sub, "delete") && !want_json) {
			printf("VPC %llu deleted\n", (unsigned long long)id);
			json_decref(v);
			return 0;
		}
	} else {
		die_usage("vpc %s: unknown subcommand or arguments\n%s", sub, client_usage);
	}
	show(v, vpc_header, vpc_row);
	json_decref(v);
	return 0;
}

static int cmd_host(int argc, char **argv)
{
	if (argc == 1 && !strcmp(argv[0], "identity-cert"))
		return show_cert("/v1/host/identity-cert");
	if (argc < 1 || strcmp(argv[0], "attest"))
		die_usage("host: expected attest or identity-cert\n%s", client_usage);
	char path[512] = "/v1/host/attestation";
	if (argc == 3 && !strcmp(argv[1], "--nonce")) {
		for (const char *c = argv[2]; *c; c++)
			if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
				    "._:-",
				    *c))
				die_usage("host attest: --nonce: letters, digits and ._:- only");
		if (strlen(argv[2]) > 128)
			die_usage("host attest: --nonce: at most 128 characters");
		snprintf(path, sizeof(path), "/v1/host/attestation?nonce=%s", argv[2]);
	} else if (argc != 1) {
		die_usage("host attest: expected [--nonce TEXT]\n%s", client_usage);
	}
	json_t *j = call_json("GET", path, NULL);
	if (want_json) {
		print_json(j);
	} else {
		printf("nonce:  %s\nevents: %zu\n", str(j, "nonce"),
		       json_array_size(json_object_get(j, "event_log")));
		json_t *pcrs = json_object_get(j, "pcrs");
		for (int i = 0; i < 8; i++) {
			char k[12];
			snprintf(k, sizeof(k), "%d", i);
			printf("pcr%d:   %s\n", i, str(pcrs, k));
		}
		printf("signed by the host attestation key (--json for the document; "
		       "docs/security.md\n"
		       "shows how to verify it with openssl)\n");
	}
	json_decref(j);
	return 0;
}

/* nitro --host SOCKET enclave root-cert: GET /v1/host/enclave-root, printed as `nitro
 * enclave root-cert` prints the local state's. */
static int cmd_enclave_remote(int argc, char **argv)
{
	if (argc != 1 || strcmp(argv[0], "root-cert"))
		die_usage("enclave: expected root-cert\n%s", client_usage);
	return show_cert("/v1/host/enclave-root");
}

int cmd_client(const char *socket, int argc, char **argv)
{
	host_socket = socket;
	/* --json may come anywhere. */
	int n = 0;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			want_json = true;
		else
			argv[n++] = argv[i];
	}
	argc = n;
	if (argc < 1 || !strcmp(argv[0], "help") || !strcmp(argv[0], "--help")) {
		fputs(client_usage, argc < 1 ? stderr : stdout);
		return argc < 1 ? 2 : 0;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	int rc;
	if (!strcmp(argv[0], "instances"))
		rc = cmd_instances(argc - 1, argv + 1);
	else if (!strcmp(argv[0], "volumes"))
		rc = cmd_volumes(argc - 1, argv + 1);
	else if (!strcmp(argv[0], "host"))
		rc = cmd_host(argc - 1, argv + 1);
	else if (!strcmp(argv[0], "vpc") || !strcmp(argv[0], "vpcs"))
		rc = cmd_vpc(argc - 1, argv + 1);
	else if (!strcmp(argv[0], "enclave"))
		rc = cmd_enclave_remote(argc - 1, argv + 1);
	else
		die_usage("%s: unknown command with --host (instances, volumes, vpc, host, "
			  "enclave)\n%s",
			  argv[0], client_usage);
	curl_global_cleanup();
	return rc;
}
