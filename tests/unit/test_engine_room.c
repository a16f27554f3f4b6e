/* room: the bound on rooms at once (--max-rooms) for the in-process engines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "engine/room.h"

static int delivered;

static void deliver(struct room_member *to, const char *msg, size_t len)
{
	(void)to;
	(void)msg;
	(void)len;
	delivered++;
}

static void test_max_rooms(void **state)
{
	(void)state;
	struct room_set *rs = room_set_new(1, 2);
	assert_non_null(rs);
	struct room_member a = {.deliver = deliver}, b = {.deliver = deliver},
			   c = {.deliver = deliver};
	assert_int_equal(room_join(rs, &a, "lobby", 5), 0);
	assert_int_equal(room_join(rs, &b, "one", 3), 0);
	/* a third room is refused; the member stays where it was */
	assert_int_equal(room_join(rs, &a, "two", 3), -ENOSPC);
	assert_int_equal(room_publish(rs, &b, "x", 1), 0);
	assert_int_equal(room_join(rs, &c, "lobby", 5), 0);
	assert_int_equal(room_publish(rs, &c, "x", 1), 1); /* a is still in the lobby */
	/* existing rooms can still be joined */
	assert_int_equal(room_join(rs, &c, "one", 3), 0);
	/* an emptied room frees its place */
	room_leave(rs, &b);
	room_leave(rs, &c);
	assert_int_equal(room_join(rs, &b, "two", 3), 0);
	assert_int_equal(room_join(rs, &c, "three", 5), -ENOSPC);
	room_leave(rs, &a);
	room_leave(rs, &b);
	room_set_free(rs);
	/* 0: no bound */
	rs = room_set_new(0, 0);
	assert_non_null(rs);
	struct room_member m[40];
	memset(m, 0, sizeof(m));
	char name[8];
	for (int i = 0; i < 40; i++) {
		m[i].deliver = deliver;
		int n = snprintf(name, sizeof(name), "r%d", i);
		assert_int_equal(room_join(rs, &m[i], name, (size_t)n), 0);
	}
	for (int i = 0; i < 40; i++)
		room_leave(rs, &m[i]);
	room_set_free(rs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_max_rooms),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
