# vproxy: the extension (vproxy.so, PGXS) and its child program vproxy-transcode.
#
#   make && make install        build and install both
#   make installcheck           pg_regress, isolation and TAP suites (as a non-root user)
#   make asan                   build/asan/vproxy-transcode with ASan+UBSan, for the test suites

EXTENSION = vproxy

# the server room: MODULE_big, OBJS, DATA, REGRESS, ISOLATION
include src/server/server.mk

TAP_TESTS = 1
PROVE_TESTS = test/t/*.pl

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# after PGXS, whose Makefile.global empties PROVE_FLAGS
PROVE_FLAGS = -I test/lib --timer
# after PGXS, so that the first rule stays `all`
-include $(OBJS:.o=.d)

# the child program: media, storage and transcode rooms
include src/transcode/transcode.mk

# vproxy-worker: the workers on other machines (libpq, src/worker + src/supervise)
include src/worker/worker.mk

# vproxy-dashboard: the queue in a browser and in Prometheus (libmicrohttpd, libpq)
include src/dashboard/dashboard.mk
