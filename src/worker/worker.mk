# vproxy-worker: the queue served from other machines over libpq.  Built
# from src/worker and the shared room src/supervise (the same child
# supervision as the in-server workers); links libpq and jansson, no libav,
# no libcurl.  Included by the top Makefile after PGXS, so $(bindir) is
# PostgreSQL's: it is installed beside vproxy-transcode.

WORKER_PKGS = libpq jansson
WORKER_SRCS = $(sort $(wildcard src/worker/*.c src/supervise/*.c src/common/*.c))
WORKER_OBJS = $(WORKER_SRCS:%.c=build/worker/%.o)
WORKER_VERSION = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" vproxy.control)

WORKER_CFLAGS = -std=gnu11 -g -O2 -D_FORTIFY_SOURCE=2 -Wall -Wextra $(WERROR_FLAGS) -Isrc \
	-DVPROXY_VERSION='"$(WORKER_VERSION)"' $(shell pkg-config --cflags $(WORKER_PKGS))
WORKER_LDLIBS = $(shell pkg-config --libs $(WORKER_PKGS))

all: build/worker/vproxy-worker

build/worker/vproxy-worker: $(WORKER_OBJS)
	$(CC) $(PROGRAM_CFLAGS) $(PROGRAM_LDFLAGS) -o $@ $^ $(WORKER_LDLIBS)

build/worker/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(WORKER_CFLAGS) $(PROGRAM_CPPFLAGS) $(PROGRAM_CFLAGS) -MMD -MP -c -o $@ $<

-include $(WORKER_OBJS:.o=.d)

.PHONY: install-worker uninstall-worker
install: install-worker
install-worker: build/worker/vproxy-worker
	$(MKDIR_P) '$(DESTDIR)$(bindir)'
	$(INSTALL_PROGRAM) build/worker/vproxy-worker '$(DESTDIR)$(bindir)/vproxy-worker'

uninstall: uninstall-worker
uninstall-worker:
	rm -f '$(DESTDIR)$(bindir)/vproxy-worker'
