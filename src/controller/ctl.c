/* nitrod's registry: the shared state and its lookups (see ctl.h). */
#include "controller/ctl.h"

#include <string.h>
#include <time.h>

struct ctl g_ctl = {.c_lock = PTHREAD_MUTEX_INITIALIZER, .c_epoll = -1};

static const char *const state_names[] = {"pending", "running",	   "stopping",
					  "stopped", "terminated", "failed"};

const char *state_name(int st)
{
	return st >= 0 && st < (int)ARRAY_SIZE(state_names) ? state_names[st] : "unknown";
}

int state_parse(const char *s)
{
	for (unsigned i = 0; s && i < ARRAY_SIZE(state_names); i++)
		if (!strcmp(s, state_names[i]))
			return (int)i;
	return -1;
}

int64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

struct instance *inst_find(const char *id)
{
	for (struct instance *in = g_ctl.c_instances; in; in = in->i_next)
		if (!strcmp(in->i_id, id))
			return in;
	return NULL;
}

struct volrec *vol_find(const char *id)
{
	for (struct volrec *v = g_ctl.c_volumes; v; v = v->v_next)
		if (!strcmp(v->v_id, id))
			return v;
	return NULL;
}

struct vpcrec *vpc_find(uint32_t id)
{
	for (struct vpcrec *v = g_ctl.c_vpcs; v; v = v->vp_next)
		if (v->vp_id == id)
			return v;
	return NULL;
}
