/* nitrod's SQLite store (see store.h). */
#include "controller/store.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/util.h"

struct store {
	pthread_mutex_t s_lock; /* the creation of the database on the first write */
	char *s_path;
	sqlite3 *s_db; /* NULL until the file exists */
	sqlite3_stmt *s_put[3], *s_del[3];
	bool s_want_txn; /* store_txn_begin: the next write opens a transaction */
	bool s_in_txn;
	bool s_txn_failed; /* a write of the open transaction failed: no more, no commit */
};

static const char *const tables[3] = {"instances", "volumes", "vpcs"};

static int table_idx(const char *t)
{
	return strcmp(t, "instances") == 0 ? 0 : strcmp(t, "volumes") == 0 ? 1 : 2;
}

static void db_close(struct store *s)
{
	for (int i = 0; i < 3; i++) {
		sqlite3_finalize(s->s_put[i]);
		sqlite3_finalize(s->s_del[i]);
		s->s_put[i] = s->s_del[i] = NULL;
	}
	sqlite3_close(s->s_db);
	s->s_db = NULL;
}

/* Opens (creating if need be) the database and prepares the statements. */
static int db_open(struct store *s, char *err, size_t errlen)
{
	if (sqlite3_open_v2(s->s_path, &s->s_db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
			    NULL) != SQLITE_OK)
		goto fail;
	sqlite3_busy_timeout(s->s_db, 2000);
	/* synchronous first: the switch of a new database to WAL is then a NORMAL
	 * transaction too (fewer fsyncs); both tables in one transaction. */
	const char *schema =
	    "PRAGMA synchronous=NORMAL; PRAGMA journal_mode=WAL; BEGIN;"
	    "CREATE TABLE IF NOT EXISTS instances (id TEXT PRIMARY KEY, doc TEXT NOT NULL);"
	    "CREATE TABLE IF NOT EXISTS volumes (id TEXT PRIMARY KEY, doc TEXT NOT NULL);"
	    "CREATE TABLE IF NOT EXISTS vpcs (id TEXT PRIMARY KEY, doc TEXT NOT NULL);"
	    "COMMIT;";
	if (sqlite3_exec(s->s_db, schema, NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	for (int i = 0; i < 3; i++) {
		char q[128];
		snprintf(q, sizeof(q), "INSERT OR REPLACE INTO %s (id, doc) VALUES (?1, ?2)",
			 tables[i]);
		if (sqlite3_prepare_v2(s->s_db, q, -1, &s->s_put[i], NULL) != SQLITE_OK)
			goto fail;
		snprintf(q, sizeof(q), "DELETE FROM %s WHERE id = ?1", tables[i]);
		if (sqlite3_prepare_v2(s->s_db, q, -1, &s->s_del[i], NULL) != SQLITE_OK)
			goto fail;
	}
	return 0;
fail:
	snprintf(err, errlen, "state database %s: %s", s->s_path,
		 s->s_db ? sqlite3_errmsg(s->s_db) : "cannot open");
	db_close(s);
	return -1;
}

/* The database of an existing state; created on the first write; the call's transaction
 * opened when one is wanted. Lock held. */
static int db_ready(struct store *s, char *err, size_t errlen)
{
	if (!s->s_db && db_open(s, err, errlen) < 0)
		return -1;
	if (s->s_txn_failed)
		RETURN_ERR(-1, "state database: an earlier write of this call failed");
	if (s->s_want_txn && !s->s_in_txn) {
		if (sqlite3_exec(s->s_db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
			RETURN_ERR(-1, "state database: %s", sqlite3_errmsg(s->s_db));
		s->s_in_txn = true;
	}
	return 0;
}

void store_txn_begin(struct store *s)
{
	pthread_mutex_lock(&s->s_lock);
	s->s_want_txn = true;
	pthread_mutex_unlock(&s->s_lock);
}

static void rollback_locked(struct store *s)
{
	if (s->s_in_txn && !sqlite3_get_autocommit(s->s_db))
		sqlite3_exec(s->s_db, "ROLLBACK", NULL, NULL, NULL);
	s->s_in_txn = s->s_want_txn = s->s_txn_failed = false;
}

int store_txn_commit(struct store *s, char *err, size_t errlen)
{
	pthread_mutex_lock(&s->s_lock);
	int rc = 0;
	if (s->s_txn_failed) {
		snprintf(err, errlen, "state database: a write of this call failed");
		rc = -1;
	} else if (s->s_in_txn &&
		   (sqlite3_get_autocommit(s->s_db) || /* rolled back by SQLite itself */
		    sqlite3_exec(s->s_db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)) {
		snprintf(err, errlen, "state database: %s", sqlite3_errmsg(s->s_db));
		rc = -1;
	}
	if (rc == 0)
		s->s_in_txn = s->s_want_txn = s->s_txn_failed = false;
	else
		rollback_locked(s);
	pthread_mutex_unlock(&s->s_lock);
	return rc;
}

void store_txn_rollback(struct store *s)
{
	pthread_mutex_lock(&s->s_lock);
	rollback_locked(s);
	pthread_mutex_unlock(&s->s_lock);
}

struct store *store_open(const char *path, char *err, size_t errlen)
{
	struct store *s = calloc(1, sizeof(*s));
	if (!s || !(s->s_path = strdup(path))) {
		free(s);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&s->s_lock, NULL);
	struct stat st;
	if (lstat(path, &st) < 0 && errno == ENOENT)
		return s; /* a new state: nothing to read yet */
	if (db_open(s, err, errlen) < 0) {
		store_close(s);
		return NULL;
	}
	return s;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	db_close(s);
	pthread_mutex_destroy(&s->s_lock);
	free(s->s_path);
	free(s);
}

static int step(struct store *s, sqlite3_stmt *st, char *err, size_t errlen)
{
	int r = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (r != SQLITE_DONE)
		RETURN_ERR(-1, "state database: %s", sqlite3_errmsg(s->s_db));
	return 0;
}

int store_put(struct store *s, const char *table, const char *id, const char *doc, char *err,
	      size_t errlen)
{
	pthread_mutex_lock(&s->s_lock);
	int rc = db_ready(s, err, errlen);
	if (rc == 0) {
		sqlite3_stmt *st = s->s_put[table_idx(table)];
		sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 2, doc, -1, SQLITE_TRANSIENT);
		rc = step(s, st, err, errlen);
	}
	if (rc < 0 && s->s_want_txn)
		s->s_txn_failed = true;
	pthread_mutex_unlock(&s->s_lock);
	return rc;
}

int store_delete(struct store *s, const char *table, const char *id, char *err, size_t errlen)
{
	pthread_mutex_lock(&s->s_lock);
	int rc = db_ready(s, err, errlen);
	if (rc == 0) {
		sqlite3_stmt *st = s->s_del[table_idx(table)];
		sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
		rc = step(s, st, err, errlen);
	}
	if (rc < 0 && s->s_want_txn)
		s->s_txn_failed = true;
	pthread_mutex_unlock(&s->s_lock);
	return rc;
}

int store_each(struct store *s, const char *table,
	       int (*fn)(const char *id, const char *doc, void *arg), void *arg, char *err,
	       size_t errlen)
{
	if (!s->s_db)
		return 0; /* not created yet: no rows */
	char q[96];
	snprintf(q, sizeof(q), "SELECT id, doc FROM %s ORDER BY id", tables[table_idx(table)]);
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(s->s_db, q, -1, &st, NULL) != SQLITE_OK)
		RETURN_ERR(-1, "state database: %s", sqlite3_errmsg(s->s_db));
	int r, ret = 0;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		const char *id = (const char *)sqlite3_column_text(st, 0);
		const char *doc = (const char *)sqlite3_column_text(st, 1);
		if (id && doc && (ret = fn(id, doc, arg)) != 0)
			break;
	}
	if (r != SQLITE_ROW && r != SQLITE_DONE) {
		snprintf(err, errlen, "state database: %s", sqlite3_errmsg(s->s_db));
		ret = -1;
	}
	sqlite3_finalize(st);
	return ret;
}
