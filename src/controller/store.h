/* nitrod's state in SQLite: STATE_DIR/nitrod.db, one row per instance, per volume and per VPC record,
 * each a JSON document (records.h) keyed by id. Written through on every change
 * (WAL, synchronous=NORMAL: a row survives a nitrod crash; a power cut may lose the last
 * transactions, never corrupt the file). A state folder without the file is read as empty
 * and the file is created by the first write (so a fresh nitrod serves without waiting
 * for the database's creation and its fsyncs). Thread-safe. */
#ifndef NITRO_CONTROLLER_STORE_H
#define NITRO_CONTROLLER_STORE_H

#include <stddef.h>

struct store;

/* Opens path, an existing database (NULL with err when it cannot be read), or remembers
 * it for the first write when there is no file. */
struct store *store_open(const char *path, char *err, size_t errlen);
void store_close(struct store *s);
/* table is "instances", "volumes" or "vpcs". 0, or -1 with err set. */
int store_put(struct store *s, const char *table, const char *id, const char *doc, char *err,
	      size_t errlen);
int store_delete(struct store *s, const char *table, const char *id, char *err, size_t errlen);
/* A transaction (one API call's writes): after store_txn_begin the next write opens it
 * (BEGIN IMMEDIATE) and the writes up to store_txn_commit are all or nothing. Commit: 0,
 * or -1 with err and everything since the begin rolled back; store_txn_rollback drops
 * them. Without a begin every write is its own transaction. */
void store_txn_begin(struct store *s);
int store_txn_commit(struct store *s, char *err, size_t errlen);
void store_txn_rollback(struct store *s);
/* Calls fn for every row, in id order; stops at the first non-zero return. */
int store_each(struct store *s, const char *table,
	       int (*fn)(const char *id, const char *doc, void *arg), void *arg, char *err,
	       size_t errlen);

#endif
