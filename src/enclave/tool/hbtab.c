/* The heartbeat broker's matching table (hbtab.h). */
#include "enclave/tool/hbtab.h"

#include <string.h>

void net_hb_init(struct net_hb_table *t)
{
	memset(t, 0, sizeof(*t));
}

static int find(const struct net_hb_table *t, int key)
{
	for (unsigned i = 0; i < t->nwait; i++)
		if (t->wait[i].key == key)
			return (int)i;
	return -1;
}

/* Kept CIDs are forgotten once no waiter can still claim one. */
static void forget_seen(struct net_hb_table *t)
{
	for (unsigned i = 0; i < t->nwait; i++)
		if (!t->wait[i].has_cid)
			return;
	t->nseen = 0;
}

static void drop(struct net_hb_table *t, unsigned i)
{
	memmove(&t->wait[i], &t->wait[i + 1], (t->nwait - i - 1) * sizeof(t->wait[0]));
	t->nwait--;
	forget_seen(t);
}

int net_hb_add(struct net_hb_table *t, int key)
{
	if (t->nwait >= NET_HB_MAX || find(t, key) >= 0)
		return -1;
	t->wait[t->nwait++] = (struct net_hb_waiter){.key = key};
	return 0;
}

bool net_hb_set_cid(struct net_hb_table *t, int key, uint64_t cid)
{
	int i = find(t, key);
	if (i < 0 || t->wait[i].has_cid)
		return false;
	t->wait[i].has_cid = true;
	t->wait[i].cid = cid;
	for (unsigned k = 0; k < t->nseen; k++)
		if (t->seen[k] == cid) {
			memmove(&t->seen[k], &t->seen[k + 1], (t->nseen - k - 1) * sizeof(cid));
			t->nseen--;
			drop(t, (unsigned)i);
			return true;
		}
	forget_seen(t);
	return false;
}

int net_hb_heartbeat(struct net_hb_table *t, uint64_t cid)
{
	bool open = false;
	for (unsigned i = 0; i < t->nwait; i++) {
		if (t->wait[i].has_cid && t->wait[i].cid == cid) {
			int key = t->wait[i].key;
			drop(t, i);
			return key;
		}
		open |= !t->wait[i].has_cid;
	}
	if (!open)
		return -1;
	for (unsigned k = 0; k < t->nseen; k++)
		if (t->seen[k] == cid)
			return -1;
	if (t->nseen == NET_HB_MAX) {
		memmove(&t->seen[0], &t->seen[1], (NET_HB_MAX - 1) * sizeof(cid));
		t->nseen--;
	}
	t->seen[t->nseen++] = cid;
	return -1;
}

void net_hb_remove(struct net_hb_table *t, int key)
{
	int i = find(t, key);
	if (i >= 0)
		drop(t, (unsigned)i);
}

bool net_hb_idle(const struct net_hb_table *t)
{
	return t->nwait == 0;
}
