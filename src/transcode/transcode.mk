# vproxy-transcode: built from src/media, src/storage, src/transcode and src/common.
# Included by the top Makefile after PGXS, so $(bindir) is PostgreSQL's.

TRANSCODE_PKGS = libavformat libavcodec libavfilter libswscale libswresample libavutil \
	libturbojpeg libcurl libcrypto jansson expat libseccomp
TRANSCODE_SRCS = $(sort $(wildcard src/media/*.c src/storage/*.c src/transcode/*.c src/common/*.c))

TRANSCODE_CFLAGS = -std=gnu11 -g -Wall -Wextra $(WERROR_FLAGS) -pthread -Isrc \
	$(shell pkg-config --cflags $(TRANSCODE_PKGS))
TRANSCODE_LDLIBS = $(shell pkg-config --libs $(TRANSCODE_PKGS)) -lm -pthread

RELEASE_FLAGS = -O2 -D_FORTIFY_SOURCE=2
ASAN_FLAGS = -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all

RELEASE_OBJS = $(TRANSCODE_SRCS:%.c=build/release/%.o)
ASAN_OBJS = $(TRANSCODE_SRCS:%.c=build/asan/%.o)

all: build/release/vproxy-transcode

.PHONY: asan install-transcode clean-transcode
asan: build/asan/vproxy-transcode

build/release/vproxy-transcode: $(RELEASE_OBJS)
	$(CC) $(RELEASE_FLAGS) $(PROGRAM_CFLAGS) $(PROGRAM_LDFLAGS) -o $@ $^ $(TRANSCODE_LDLIBS)

build/asan/vproxy-transcode: $(ASAN_OBJS)
	$(CC) $(ASAN_FLAGS) -o $@ $^ $(TRANSCODE_LDLIBS)

build/release/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(TRANSCODE_CFLAGS) $(RELEASE_FLAGS) $(PROGRAM_CPPFLAGS) $(PROGRAM_CFLAGS) -MMD -MP -c -o $@ $<

build/asan/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(TRANSCODE_CFLAGS) $(ASAN_FLAGS) -MMD -MP -c -o $@ $<

-include $(RELEASE_OBJS:.o=.d) $(ASAN_OBJS:.o=.d)

install: install-transcode
install-transcode: build/release/vproxy-transcode
	$(MKDIR_P) '$(DESTDIR)$(bindir)'
	$(INSTALL_PROGRAM) build/release/vproxy-transcode '$(DESTDIR)$(bindir)/vproxy-transcode'

uninstall: uninstall-transcode
uninstall-transcode:
	rm -f '$(DESTDIR)$(bindir)/vproxy-transcode'

clean: clean-transcode
clean-transcode:
	rm -rf build
