/* `nitro volume create PATH (--size SIZE | --from-image IMG [--size SIZE] | --from-snapshot
 * SNAPDIR [--snapshot ID] [--size SIZE]) [--unencrypted]` and `nitro volume info PATH`. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "lib/util.h"
#include "snapshot/snapshot.h"
#include "volume/volume.h"

static const char volume_usage[] =
    "usage: nitro volume create PATH --size SIZE [--unencrypted]\n"
    "       nitro volume create PATH --from-image IMG [--size SIZE] [--unencrypted]\n"
    "       nitro volume create PATH --from-snapshot SNAPDIR [--snapshot ID] [--size SIZE]\n"
    "       nitro volume info PATH\n"
    "  SIZE like 512M, 1G (a multiple of 512 bytes); volumes are encrypted with a data key\n"
    "  wrapped by the host master key ($NITRO_STATE/master.key, default\n"
    "  ~/.local/state/nitro/master.key, created on first use). IMG: raw or qcow2 (read\n"
    "  with qemu-img); the volume grows to --size. SNAPDIR: a snapshot store (`nitro\n"
    "  snapshot`); without --snapshot its newest snapshot.\n";

static int volume_create(int argc, char **argv)
{
	const char *path = NULL, *size_arg = NULL, *image = NULL, *snapdir = NULL, *snap = NULL;
	bool encrypted = true;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--size") && i + 1 < argc)
			size_arg = argv[++i];
		else if (!strcmp(argv[i], "--from-image") && i + 1 < argc)
			image = argv[++i];
		else if (!strcmp(argv[i], "--from-snapshot") && i + 1 < argc)
			snapdir = argv[++i];
		else if (!strcmp(argv[i], "--snapshot") && i + 1 < argc)
			snap = argv[++i];
		else if (!strncmp(argv[i], "--size=", 7))
			size_arg = argv[i] + 7;
		else if (!strcmp(argv[i], "--unencrypted"))
			encrypted = false;
		else if (argv[i][0] == '-')
			die_usage("volume create: unknown option %s\n%s", argv[i], volume_usage);
		else if (!path)
			path = argv[i];
		else
			die_usage("volume create: unexpected argument %s\n%s", argv[i],
				  volume_usage);
	}
	if (!path || (!size_arg && !image && !snapdir))
		die_usage("volume create: PATH and --size (or --from-image/--from-snapshot) are "
			  "required\n%s",
			  volume_usage);
	if (image && snapdir)
		die_usage("volume create: --from-image and --from-snapshot exclude each other");
	if (snap && !snapdir)
		die_usage("volume create: --snapshot needs --from-snapshot SNAPDIR");
	uint64_t size = 0;
	if (size_arg && (!parse_size(size_arg, &size) || size == 0 || size % VOL_SECTOR))
		die_usage("volume create: --size %s: expected a positive size in whole 512-byte "
			  "sectors, like 1G or 512M",
			  size_arg);
	char id[VOL_ID_LEN + 1], err[1024];
	struct snap_progress pr;
	if (image) {
		snap_progress_begin(&pr, "importing the image");
		if (snap_import_image(image, path, size, encrypted, snap_progress_stderr, &pr, id,
				      err, sizeof(err)))
			die("%s", err);
		snap_progress_end(&pr);
	} else if (snapdir) {
		struct snap_store st;
		if (snap_store_open(snapdir, false, &st, err, sizeof(err)))
			die("%s", err);
		snap_progress_begin(&pr, "restoring the snapshot");
		int r = snap_restore(&st, snap, path, size, encrypted, snap_progress_stderr, &pr,
				     id, err, sizeof(err));
		snap_store_close(&st);
		if (r)
			die("%s", err);
		snap_progress_end(&pr);
	} else if (vol_create(path, size, encrypted, id, err, sizeof(err))) {
		die("%s", err);
	}
	printf("%s\n", id);
	return 0;
}

static int volume_info(int argc, char **argv)
{
	if (argc != 1 || argv[0][0] == '-')
		die_usage("volume info: expected one PATH\n%s", volume_usage);
	struct volume v;
	char err[512];
	if (vol_info(argv[0], &v, err, sizeof(err)))
		die("%s", err);
	printf("id: %s\nsize: %llu\nencrypted: %s\ndata_offset: %d\n", v.v_id,
	       (unsigned long long)v.v_size, v.v_encrypted ? "yes" : "no", VOL_DATA_OFFSET);
	return 0;
}

int cmd_volume(int argc, char **argv)
{
	if (argc < 1)
		die_usage("volume: expected create or info\n%s", volume_usage);
	if (!strcmp(argv[0], "create"))
		return volume_create(argc - 1, argv + 1);
	if (!strcmp(argv[0], "info"))
		return volume_info(argc - 1, argv + 1);
	if (!strcmp(argv[0], "help") || !strcmp(argv[0], "--help")) {
		fputs(volume_usage, stdout);
		return 0;
	}
	die_usage("volume %s: unknown subcommand (create, info)\n%s", argv[0], volume_usage);
}
