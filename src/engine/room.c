#include "engine/room.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"

struct room {
	struct room *next;
	struct room_member *members; /* head; new members are appended at the tail (head->prev) */
	size_t count;
	size_t name_len;
	char name[];
};

struct room_set {
	int locked;
	pthread_mutex_t mu;
	struct room *rooms;
	size_t nrooms;
	size_t max_rooms; /* 0 = no bound */
};

static void lock(struct room_set *rs)
{
	if (rs->locked)
		pthread_mutex_lock(&rs->mu);
}

static void unlock(struct room_set *rs)
{
	if (rs->locked)
		pthread_mutex_unlock(&rs->mu);
}

struct room_set *room_set_new(int locked, size_t max_rooms)
{
	struct room_set *rs = calloc(1, sizeof(*rs));
	if (!rs)
		return NULL;
	rs->locked = locked;
	rs->max_rooms = max_rooms;
	pthread_mutex_init(&rs->mu, NULL);
	return rs;
}

void room_set_free(struct room_set *rs)
{
	if (!rs)
		return;
	while (rs->rooms) {
		struct room *r = rs->rooms;
		rs->rooms = r->next;
		free(r);
	}
	pthread_mutex_destroy(&rs->mu);
	free(rs);
}

/* with the lock held */
static void leave_locked(struct room_set *rs, struct room_member *m)
{
	struct room *r = m->room;
	if (!r)
		return;
	if (m->next == m) {
		r->members = NULL;
	} else {
		m->prev->next = m->next;
		m->next->prev = m->prev;
		if (r->members == m)
			r->members = m->next;
	}
	m->next = m->prev = NULL;
	m->room = NULL;
	if (--r->count == 0) {
		struct room **pp = &rs->rooms;
		while (*pp && *pp != r)
			pp = &(*pp)->next;
		if (*pp)
			*pp = r->next;
		rs->nrooms--;
		free(r);
	}
}

int room_join(struct room_set *rs, struct room_member *m, const char *name, size_t len)
{
	lock(rs);
	if (m->room && m->room->name_len == len && !memcmp(m->room->name, name, len)) {
		unlock(rs);
		return 0;
	}
	struct room *r = rs->rooms;
	while (r && !(r->name_len == len && !memcmp(r->name, name, len)))
		r = r->next;
	if (!r) {
		if (rs->max_rooms && rs->nrooms >= rs->max_rooms) {
			unlock(rs);
			return -ENOSPC;
		}
		r = calloc(1, sizeof(*r) + len + 1);
		if (!r) {
			unlock(rs);
			return -ENOMEM;
		}
		memcpy(r->name, name, len);
		r->name_len = len;
		r->next = rs->rooms;
		rs->rooms = r;
		rs->nrooms++;
	}
	/* count the new membership first so that leaving the old room cannot free r */
	r->count++;
	leave_locked(rs, m);
	if (!r->members) {
		m->next = m->prev = m;
		r->members = m;
	} else {
		struct room_member *head = r->members, *tail = head->prev;
		m->prev = tail;
		m->next = head;
		tail->next = m;
		head->prev = m;
	}
	m->room = r;
	unlock(rs);
	return 0;
}

void room_leave(struct room_set *rs, struct room_member *m)
{
	lock(rs);
	leave_locked(rs, m);
	unlock(rs);
}

int room_publish(struct room_set *rs, struct room_member *from, const char *msg, size_t len)
{
	lock(rs);
	struct room *r = from->room;
	if (!r) {
		unlock(rs);
		return -ENOENT;
	}
	int n = 0;
	struct room_member *m = r->members;
	do {
		if (m != from) {
			m->deliver(m, msg, len);
			n++;
		}
		m = m->next;
	} while (m != r->members);
	unlock(rs);
	return n;
}

int room_env_join(struct proto_env *env, const char *name, size_t len)
{
	struct room_member *m = env->engine_ud;
	return room_join(m->set, m, name, len);
}

int room_env_publish(struct proto_env *env, const char *msg, size_t len)
{
	struct room_member *m = env->engine_ud;
	int r = room_publish(m->set, m, msg, len);
	return r < 0 && r != -ENOENT ? r : 0;
}
