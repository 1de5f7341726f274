# vproxy-dashboard: the queue seen in a browser and by Prometheus.  Built
# from src/dashboard, src/common (shared by every program) and OpenSSL's
# hashes for the presigner (src/storage/openssl_hashes.c); links
# libmicrohttpd, libpq, jansson and libcrypto (also HMAC for the session
# cookie and the media links).  The page's files in src/dashboard/assets are built
# into the program.  Included by the top Makefile after PGXS, so $(bindir)
# is PostgreSQL's: it is installed beside vproxy-worker.

DASHBOARD_PKGS = libmicrohttpd libpq jansson libcrypto
DASHBOARD_SRCS = $(sort $(wildcard src/dashboard/*.c src/common/*.c) src/storage/openssl_hashes.c)
DASHBOARD_OBJS = $(DASHBOARD_SRCS:%.c=build/dashboard/%.o)
DASHBOARD_ASSETS = $(sort $(wildcard src/dashboard/assets/*))
DASHBOARD_VERSION = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" vproxy.control)

DASHBOARD_CFLAGS = -std=gnu11 -g -O2 -D_FORTIFY_SOURCE=2 -Wall -Wextra $(WERROR_FLAGS) \
	-Wno-unused-parameter -Isrc -DVPROXY_VERSION='"$(DASHBOARD_VERSION)"' \
	$(shell pkg-config --cflags $(DASHBOARD_PKGS))
DASHBOARD_LDLIBS = $(shell pkg-config --libs $(DASHBOARD_PKGS)) -pthread

all: build/dashboard/vproxy-dashboard

build/dashboard/vproxy-dashboard: $(DASHBOARD_OBJS)
	$(CC) $(PROGRAM_CFLAGS) $(PROGRAM_LDFLAGS) -o $@ $^ $(DASHBOARD_LDLIBS)

build/dashboard/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(DASHBOARD_CFLAGS) $(PROGRAM_CPPFLAGS) $(PROGRAM_CFLAGS) -MMD -MP -c -o $@ $<

# .incbin reads the assets when assets.c is assembled
build/dashboard/src/dashboard/assets.o: $(DASHBOARD_ASSETS)

-include $(DASHBOARD_OBJS:.o=.d)

.PHONY: install-dashboard uninstall-dashboard
install: install-dashboard
install-dashboard: build/dashboard/vproxy-dashboard
	$(MKDIR_P) '$(DESTDIR)$(bindir)'
	$(INSTALL_PROGRAM) build/dashboard/vproxy-dashboard '$(DESTDIR)$(bindir)/vproxy-dashboard'

uninstall: uninstall-dashboard
uninstall-dashboard:
	rm -f '$(DESTDIR)$(bindir)/vproxy-dashboard'
