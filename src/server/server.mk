# The server room: vproxy.so (no libav, no libcurl), its SQL scripts and the
# SQL-level test suites.  Included by the top Makefile before PGXS.

MODULE_big = vproxy
OBJS = $(patsubst %.c,%.o,$(sort $(wildcard src/server/*.c)))
DATA = $(sort $(wildcard sql/vproxy--*.sql))
PG_CFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers
