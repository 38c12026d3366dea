/* Instance-store folders: where an instance's instance-storage card makes its nameless
 * backing file (docs/nvme.md, docs/api.md "instance_store").
 *
 * nitrod serves instance stores from STATE/instance-store and each --instance-store-dir
 * folder (g_ctl.c_istore_dirs, real paths). A request's "dir" is hostile: it must be one of
 * those folders or a folder beneath one, reached with openat2(RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS) (without openat2: one O_NOFOLLOW component at a time), and every
 * folder from the served one down must be a directory owned by root or nitrod's uid that
 * no one else may write (or sticky), so no caller can swap a component afterwards. No
 * component may be named like an instance (i-<17 hex>): those are the per-instance folders.
 * At each launch nitrod makes DIR/ID (0700, the card's uid) and the card's jail binds only
 * that folder: a card never sees another instance's store or anything else of DIR. After
 * the last process of the instance ended, nitrod empties and removes DIR/ID (everything a
 * card left, folders nested to any depth too, unlinked, never followed). The card's key
 * never leaves the card (crypto-erase).
 * Call with g_ctl.c_lock held (or before other threads run). */
#ifndef NITRO_CONTROLLER_ISTORE_H
#define NITRO_CONTROLLER_ISTORE_H

#include <stddef.h>

#include "controller/ctl.h"

/* Checks dir ("" = the default folder) as a create request names it: 0, or -1 with err. */
int istore_check(const char *dir, char *err, size_t errlen);
/* The folder the card of in gets (DIR/ID), lexically; no file is touched. */
void istore_path(const struct instance *in, char *out, size_t len);
/* Before a launch: checks the folder again and makes DIR/ID for the card's uid. */
int istore_prepare(const struct instance *in, char *err, size_t errlen);
/* After the last process ended: empties and removes DIR/ID (nothing if none). */
void istore_remove(const struct instance *in);

#endif
