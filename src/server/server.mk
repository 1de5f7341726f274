# The server room: vproxy.so (no libav, no libcurl), its SQL scripts and the
# SQL-level test suites.  Included by the top Makefile before PGXS.
#
# `make installcheck` (as a non-root user, after `make install`) runs the
# pg_regress and isolation suites in throwaway instances of their own, with
# vproxy preloaded and no workers (test/regress.conf): no running server needed.

MODULE_big = vproxy
# the shared rooms of plain C: src/supervise (spawning and supervising the
# child, linked into vproxy.so and vproxy-worker alike) and src/common (what
# every program and vproxy.so share: storage keys, S3 signing, sizes)
OBJS = $(patsubst %.c,%.o,$(sort $(wildcard src/server/*.c src/supervise/*.c src/common/*.c)))
DATA = $(sort $(wildcard sql/vproxy--*.sql))
PG_CFLAGS = -Wall -Wextra $(WERROR_FLAGS) -Wno-unused-parameter -Wno-missing-field-initializers
# rebuild an object when a header it includes changes (state.h is shared
# memory layout: a stale object would read the wrong fields); the top
# Makefile includes the .d files after PGXS has set the default goal
PG_CPPFLAGS = -MMD -MP -Isrc
EXTRA_CLEAN = $(OBJS:.o=.d)

REGRESS = api queue_calls queue_features privileges settings video_life operations security
REGRESS_OPTS = --temp-instance=tmp_check --temp-config=test/regress.conf

ISOLATION = claim_skip_locked cancel_vs_finish lease_takeover enqueue_vs_failure \
	one_writer_claim delete_vs_enqueue enqueue_once
ISOLATION_OPTS = --temp-instance=tmp_check_iso --temp-config=test/regress.conf \
	--temp-config=test/isolation/database.conf \
	--inputdir=test/isolation
