# vproxy: the extension (vproxy.so, PGXS) and its child program vproxy-transcode.
#
#   make && make install        build and install both (DESTDIR=… for a staged install)
#   make WERROR=1               warnings are errors (what the test scripts build)
#   make installcheck           pg_regress, isolation and TAP suites (as a non-root user)
#   make asan                   build/asan/vproxy-transcode with ASan+UBSan, for the test suites

EXTENSION = vproxy

# -Werror only in the test builds (test/run-all and test/run-some set
# WERROR=1): a packager's newer compiler may warn where ours does not, and a
# release build must not break on that
WERROR_FLAGS = $(if $(filter 1,$(WERROR)),-Werror)

# the server room: MODULE_big, OBJS, DATA, REGRESS, ISOLATION
include src/server/server.mk

TAP_TESTS = 1
PROVE_TESTS = test/t/*.pl

# the build flags of the environment (a distribution's hardening flags, e.g.
# dpkg-buildflags') for the programs: PGXS replaces CFLAGS, CPPFLAGS and
# LDFLAGS with PostgreSQL's own, which vproxy.so uses
PROGRAM_CFLAGS := $(CFLAGS)
PROGRAM_CPPFLAGS := $(CPPFLAGS)
PROGRAM_LDFLAGS := $(LDFLAGS)

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
