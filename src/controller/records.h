/* Instances and volumes as JSON: the API's view (public) and the stored document
 * (public fields plus the supervisor's: uid, pids and start times), and their rows in
 * the store (store.h). A stored document read back is checked like any input: a bad one
 * is skipped with a message. The save/forget/load calls run under g_ctl.c_lock (or before
 * any other thread starts) and need g_ctl.c_store open. */
#ifndef NITRO_CONTROLLER_RECORDS_H
#define NITRO_CONTROLLER_RECORDS_H

#include <jansson.h>
#include <stdbool.h>

#include "controller/ctl.h"

json_t *inst_json(const struct instance *in, bool stored);
json_t *vol_json(const struct volrec *v, bool stored);
/* The API's view of in (inst_json(in, false)) as compact JSON text, malloc'd, *len its
 * length: rendered again only when a field the view shows changed since the last render
 * (compared byte for byte with the copy kept in in->i_view), else a copy of that render.
 * NULL when out of memory. The caller holds g_ctl.c_lock. */
char *inst_view_text(struct instance *in, size_t *len);
/* 0, or -1 with err set. */
int inst_from_json(json_t *j, struct instance *in, char *err, size_t errlen);
int vol_from_json(json_t *j, struct volrec *v, char *err, size_t errlen);

/* Writes one record through to SQLite: 0, or -1 (logged; g_ctl.c_save_failed set and the
 * reason in c_save_err). Inside an API call that changes state the writes are one
 * transaction the call commits (api.c) before it acts: a call whose records cannot be
 * written fails with 503 and changes nothing. The supervisor's own writes (a process
 * ended ...) log a failure and keep the state in memory, which describes the processes. */
int inst_save(const struct instance *in);
int vol_save(const struct volrec *v);
/* Removes a volume's row. */
int vol_forget(const char *id, char *err, size_t errlen);
/* VPC records: {id, cidr, internet_gateway, owner, created} (the API's view and the row). */
json_t *vpc_json(const struct vpcrec *v);
int vpc_from_json(json_t *j, struct vpcrec *v, char *err, size_t errlen);
int vpc_save(const struct vpcrec *v);
int vpc_forget(uint32_t id, char *err, size_t errlen);
/* Puts v into g_ctl.c_vpcs in id order. */
void vpc_insert(struct vpcrec *v);
/* Appends every stored volume, instance and VPC record to g_ctl's lists; 0, or -1 with err set. */
int records_load(char *err, size_t errlen);

#endif
