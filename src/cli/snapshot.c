/* `nitro snapshot create VOLUME SNAPDIR`, `list SNAPDIR`, `delete SNAPDIR ID`: snapshots of
 * a volume file that no card has open (a running instance's volume is snapshotted through
 * nitrod, which pauses its card: a card holds its volume locked, so vol_open refuses). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "lib/util.h"
#include "snapshot/snapshot.h"

static const char snapshot_usage[] =
    "usage: nitro snapshot create VOLUME SNAPDIR [--card CTL]\n"
    "       nitro snapshot list SNAPDIR\n"
    "       nitro snapshot delete SNAPDIR ID\n"
    "  SNAPDIR is a snapshot store (made on first use): chunks of 1 MiB stored once by a\n"
    "  keyed hash of their content, encrypted under the store's key (wrapped by the host\n"
    "  master key); each snapshot writes only the chunks the store does not hold yet.\n"
    "  Restore with `nitro volume create PATH --from-snapshot SNAPDIR [--snapshot ID]`.\n"
    "  A volume a card serves: --card CTL names that nitro-card-ebs's control socket\n"
    "  (--ctl); the card pauses (drains, flushes) while the snapshot reads it.\n";

static int snapshot_create(int argc, char **argv)
{
	const char *card = NULL;
	if (argc == 4 && !strcmp(argv[2], "--card"))
		card = argv[3];
	else if (argc != 2)
		die_usage("snapshot create: expected VOLUME SNAPDIR [--card CTL]\n%s",
			  snapshot_usage);
	if (argv[0][0] == '-' || argv[1][0] == '-')
		die_usage("snapshot create: expected VOLUME SNAPDIR\n%s", snapshot_usage);
	struct volume v;
	struct snap_store st;
	struct snap_stats s;
	struct snap_progress pr;
	char err[1024], id[SNAP_SNAPID_LEN + 1];
	int r;
	if (card) {
		if (snap_store_open(argv[1], true, &st, err, sizeof(err)))
			die("%s", err);
		snap_progress_begin(&pr, "snapshot");
		r = snap_create_paused(&st, argv[0], card, snap_progress_stderr, &pr, id, &s, err,
				       sizeof(err));
		snap_store_close(&st);
		if (r)
			die("%s", err);
		vol_info(argv[0], &v, err, sizeof(err));
	} else {
		/* Read-only and locked (shared): a card serving it holds it exclusively. */
		if (vol_open(argv[0], true, &v, err, sizeof(err)))
			die("%s", err);
		if (snap_store_open(argv[1], true, &st, err, sizeof(err)))
			die("%s", err);
		snap_progress_begin(&pr, "snapshot");
		r = snap_create(&st, &v, snap_progress_stderr, &pr, id, &s, err, sizeof(err));
		snap_store_close(&st);
		vol_close(&v);
	}
	if (r)
		die("%s", err);
	snap_progress_end(&pr);
	printf("%s\n", id);
	fprintf(stderr, "%s: %s of %s: %llu chunks, %llu zero, %llu new (%llu KiB written)\n",
		util_prog(), id, v.v_id, (unsigned long long)s.st_chunks,
		(unsigned long long)s.st_zero, (unsigned long long)s.st_new,
		(unsigned long long)(s.st_new_bytes >> 10));
	return 0;
}

static int snapshot_list(int argc, char **argv)
{
	if (argc != 1 || argv[0][0] == '-')
		die_usage("snapshot list: expected SNAPDIR\n%s", snapshot_usage);
	struct snap_store st;
	struct snap_manifest *all;
	size_t n;
	char err[1024];
	if (snap_store_open(argv[0], false, &st, err, sizeof(err)))
		die("%s", err);
	int r = snap_list(&st, &all, &n, err, sizeof(err));
	snap_store_close(&st);
	if (r)
		die("%s", err);
	for (size_t i = 0; i < n; i++) {
		char when[32];
		time_t t = (time_t)(all[i].sm_created_ns / 1000000000ull);
		struct tm tm;
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
		printf("%s %s %llu %s\n", all[i].sm_id, all[i].sm_vol,
		       (unsigned long long)all[i].sm_size, when);
	}
	free(all);
	return 0;
}

static int snapshot_delete(int argc, char **argv)
{
	if (argc != 2 || argv[0][0] == '-')
		die_usage("snapshot delete: expected SNAPDIR ID\n%s", snapshot_usage);
	struct snap_store st;
	struct snap_stats s;
	char err[1024];
	if (snap_store_open(argv[0], false, &st, err, sizeof(err)))
		die("%s", err);
	int r = snap_delete(&st, argv[1], &s, err, sizeof(err));
	snap_store_close(&st);
	if (r)
		die("%s", err);
	fprintf(stderr, "%s: deleted %s; %llu chunks freed (%llu KiB)\n", util_prog(), argv[1],
		(unsigned long long)s.st_freed, (unsigned long long)(s.st_freed_bytes >> 10));
	return 0;
}

int cmd_snapshot(int argc, char **argv)
{
	if (argc < 1)
		die_usage("snapshot: expected create, list or delete\n%s", snapshot_usage);
	if (!strcmp(argv[0], "create"))
		return snapshot_create(argc - 1, argv + 1);
	if (!strcmp(argv[0], "list"))
		return snapshot_list(argc - 1, argv + 1);
	if (!strcmp(argv[0], "delete"))
		return snapshot_delete(argc - 1, argv + 1);
	if (!strcmp(argv[0], "help") || !strcmp(argv[0], "--help")) {
		fputs(snapshot_usage, stdout);
		return 0;
	}
	die_usage("snapshot %s: unknown subcommand (create, list, delete)\n%s", argv[0],
		  snapshot_usage);
}
