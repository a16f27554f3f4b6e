/* room: chat rooms for in-process engines (thread, epoll, coro, uring): rooms -> member lists.
 *
 * A member is embedded in the engine's connection. room_publish() delivers a message to every
 * *other* member of the sender's room by calling each member's deliver hook, in member order,
 * while holding the room set's lock: publishes are therefore totally ordered (the order in
 * which room_publish took the lock), and every member receives every other member's lines
 * exactly once, in that order. deliver runs on the publisher's thread with the room lock held:
 * it must not call back into room_* and must not block (append to a queue, wake the owner).
 *
 * Threads: a room set made with room_set_new(1) is safe from any thread; with (0) it belongs
 * to one thread (no locking). Memory: rooms are allocated on first join and freed when empty;
 * members are owned by the caller and must room_leave() before they are freed. At most
 * max_rooms rooms exist at once (--max-rooms; 0 = no bound): a join that would create one
 * more fails with -ENOSPC (the member stays where it was).
 * Returns 0 / -errno.
 */
#ifndef CTXLAB_ENGINE_ROOM_H
#define CTXLAB_ENGINE_ROOM_H

#include <stddef.h>

struct room;
struct room_set;
struct room_member;
struct proto_env;

typedef void room_deliver_fn(struct room_member *to, const char *msg, size_t len);

struct room_member {
	struct room_member *next, *prev; /* in room->members */
	struct room *room;               /* NULL when in no room */
	room_deliver_fn *deliver;
	struct room_set *set;            /* the set it joins through room_env_join */
};

struct room_set *room_set_new(int locked, size_t max_rooms);
void room_set_free(struct room_set *rs); /* every member must have left */

/* Moves m into room `name` (leaving its current room); creates the room, or fails with
 * -ENOSPC when max_rooms rooms exist (m stays in its room), -ENOMEM. */
int room_join(struct room_set *rs, struct room_member *m, const char *name, size_t len);
void room_leave(struct room_set *rs, struct room_member *m); /* no-op when in no room */
/* Delivers msg to every other member of from's room; returns how many received it, or
 * -ENOENT when `from` is in no room. */
int room_publish(struct room_set *rs, struct room_member *from, const char *msg, size_t len);

/* The protocol's join and publish hooks (econn_env_init) for a connection whose
 * env->engine_ud is its member m, m->set set: join is room_join(m->set, m, ...); publish is
 * room_publish from m, 0 once delivered or when m is in no room (nobody to deliver to), else
 * -errno. */
int room_env_join(struct proto_env *env, const char *name, size_t len);
int room_env_publish(struct proto_env *env, const char *msg, size_t len);

#endif
