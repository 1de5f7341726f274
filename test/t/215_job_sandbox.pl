# vproxy-transcode job in its sandbox, end to end: a stand-in for a decoder
# taken over by an upload (preloaded, it runs its attempts where libav opens
# the original, then lets libav go on) tries, inside a real job whose file
# storage is the default one inside a data directory, what such an upload
# would: read the data directory's configuration, connect to a listening
# Unix socket, exec, signal its parent.  Run at the process's start, before
# the sandbox, the same attempts succeed: the test fails without it.  The
# job still makes its proxy and thumbnail.
use strict;
use warnings;
use Test::More;
use File::Copy qw(copy);
use File::Path qw(make_path);
use IO::Socket::UNIX;
use Socket qw(SOCK_STREAM);
use VproxyTest::Media;
use VproxyTest::Job;

plan skip_all => 'ffmpeg/ffprobe not installed' unless have_program('ffmpeg') && have_program('ffprobe');
my $cc = $ENV{CC} // 'cc';
plan skip_all => 'no C compiler for the stand-in' unless have_program($cc);

my $base = scratch_dir();
my $data = "$base/data";
my $root = "$data/vproxy_storage";
my $secret = "$data/postgresql.auto.conf";
my $socket_path = "$base/run/.s.PGSQL.5432";
my $original = "$root/uploads/m1/clip.mp4";
make_path("$root/uploads/m1", "$base/run", "$base/tmp");
open my $fh, '>', $secret or die "$secret: $!";
print $fh "vproxy.s3_secret_access_key = 'not for uploads'\n";
close $fh;
copy(fixture('three_frames'), $original) or die "copy: $!";
my $server = IO::Socket::UNIX->new(Type => SOCK_STREAM, Local => $socket_path, Listen => 5)
  or die "listen on $socket_path: $!";

open $fh, '>', "$base/takeover.c" or die;
print $fh <<'C';
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* "0" or the errno's name. */
static const char *
outcome(int error)
{
	return error == 0 ? "0" : strerrorname_np(error);
}

/* Open a file for reading: 0 or the errno. */
static int
try_read(const char *path)
{
	int fd = open(path, O_RDONLY);

	return fd < 0 ? errno : close(fd);
}

/* Connect to a Unix socket: 0 or the errno. */
static int
try_connect(const char *path)
{
	struct sockaddr_un address = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	if (fd < 0)
		return errno;
	snprintf(address.sun_path, sizeof(address.sun_path), "%s", path);
	return connect(fd, (struct sockaddr *) &address, sizeof(address)) == 0 ? 0 : errno;
}

/* What an upload that took over the process would try, on one stderr line. */
static void
attempt(const char *when)
{
	char *const argv[] = {"/nonexistent/takeover-shell", NULL};
	int exec = execve(argv[0], argv, NULL) == 0 ? 0 : errno;
	int signal = kill(getppid(), 0) == 0 ? 0 : errno;

	fprintf(stderr, "takeover %s: secret %s, socket %s, exec %s, signal %s, original %s\n", when,
			outcome(try_read(getenv("TAKEOVER_SECRET"))), outcome(try_connect(getenv("TAKEOVER_SOCKET"))),
			outcome(exec), outcome(signal), outcome(try_read(getenv("TAKEOVER_ORIGINAL"))));
}

__attribute__((constructor)) static void
at_start(void)
{
	if (getenv("TAKEOVER_SECRET") != NULL)
		attempt("at start");
}

int
avformat_open_input(void *context, const char *url, const void *format, void **options)
{
	static int done;
	int (*real) (void *, const char *, const void *, void **) = dlsym(RTLD_NEXT, "avformat_open_input");

	if (!done++)
		attempt("in the decoder");
	return real(context, url, format, options);
}
C
close $fh;
is(system($cc, '-shared', '-fPIC', '-o', "$base/takeover.so", "$base/takeover.c", '-ldl'), 0,
	'the stand-in builds');

my %sanitizer = VproxyTest::Media::sanitizer_environment();
my $r = run_job(job_spec($root, 'uploads/m1/clip.mp4', temp_directory => "$base/tmp"), env => {
	LD_PRELOAD => "$base/takeover.so",
	# the ASan build wants its runtime first; the stand-in only wraps one call
	ASAN_OPTIONS => "$sanitizer{ASAN_OPTIONS}:verify_asan_link_order=0",
	TAKEOVER_SECRET => $secret, TAKEOVER_SOCKET => $socket_path, TAKEOVER_ORIGINAL => $original });
is($r->{status}, 0, 'the job succeeds') or diag $r->{stderr};
like($r->{stderr}, qr/^takeover at start: secret 0, socket 0, exec ENOENT, signal 0, original 0$/m,
	'at its start, unconfined, the process reads the configuration, connects, execs and signals');
# the ASan build's filter lets exec through (LeakSanitizer, the symbolizer): a program
# that is not there is then looked for
my $exec = (transcode_program() =~ m{/asan/}) ? 'ENOENT' : 'EPERM';
like($r->{stderr},
	qr/^takeover in the decoder: secret EACCES, socket EPERM, exec $exec, signal EPERM, original 0$/m,
	'where it decodes: the configuration is unreadable, no Unix socket, no exec, no signal; the original reads');
ok(-s "$root/videos/m1/proxy/video-1.mp4" && -s "$root/thumbnails/m1/video-1.jpg",
	'its proxy and thumbnail are stored beside the data directory\'s files');
is_deeply([ workspaces_in("$base/tmp") ], [], 'its temp directory is removed');

done_testing();
