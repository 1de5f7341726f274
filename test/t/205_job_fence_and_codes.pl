# vproxy-transcode job as its supervisor drives it now: the stdin stays open
# after the spec and the local part, whose "lease_until_ms" is the first
# lease fence (a CLOCK_MONOTONIC instant); every later line {"lease_until_ms":
# N} moves it, and past the fence
# the job starts no write to the storage and stops (exit 75, error code
# storage_unavailable).  A failing job names its error code on the progress
# channel ("error <code>") just before it exits: one case per cause.
use strict;
use warnings;
use Digest::SHA;
use File::Copy qw(copy);
use File::Path qw(make_path);
use IPC::Run qw(start pump finish timeout);
use JSON::PP;
use Test::More;
use Time::HiRes qw(CLOCK_MONOTONIC clock_gettime usleep);
use VproxyTest::Media;
use VproxyTest::Job;

plan skip_all => 'ffmpeg not installed' unless have_program('ffmpeg');

my $root = scratch_dir();
my $tmp = scratch_dir();
my $clip = scratch_dir() . '/clip.mp4';
system(qw(ffmpeg -nostdin -hide_banner -loglevel error -y -f lavfi -i testsrc2=size=640x360:rate=30 -t 6
	  -c:v libx264 -preset ultrafast -pix_fmt yuv420p), $clip) == 0 or die 'ffmpeg failed';
my $proxy_key = 'videos/m1/proxy/video-1.mp4';
my $thumb_key = 'thumbnails/m1/video-1.jpg';

# Put a file into the storage root under $key; its SHA-256.
sub upload
{
	my ($file, $key) = @_;
	(my $dir = "$root/$key") =~ s{/[^/]+$}{};
	make_path($dir);
	copy($file, "$root/$key") or die "copy $file: $!";
	return Digest::SHA->new(256)->addfile("$root/$key")->hexdigest;
}

# A job's spec with the temp directory of this test.
sub spec { my ($key, %over) = @_; return job_spec($root, $key, temp_directory => $tmp, %over) }

# Milliseconds of the monotonic clock, the supervisor's and the child's.
sub now_ms { return int(clock_gettime(CLOCK_MONOTONIC) * 1000) }

# A lease line.
sub lease { return sprintf("{\"lease_until_ms\": %d}\n", $_[0]) }

# Run a job as a fencing supervisor does: the spec and the local part with
# the fence $until, stdin left open until the job has said its last word;
# $during->(\$in, $progress) is called as it runs and may add lines.
# Returns status, last_error, progress lines.
sub run_fenced
{
	my ($spec, $until, $during) = @_;
	my $in = job_input({ %$spec, lease_until_ms => $until });
	my ($out, $err, $progress) = ('', '', '');
	my $h = start([ transcode_program(), 'job', '--progress-fd', '3' ], '<', \$in, '>', \$out,
		'2>', \$err, '3>', \$progress, timeout(120));
	my $deadline = time + 120;
	while ($out !~ /\n\z/ && $err !~ /\n\z/)
	{
		die 'the job did not end' if time > $deadline;
		$h->pump_nb;
		$during->(\$in, $progress) if $during;
		usleep(20_000);
	}
	$h->finish;
	my $raw = $h->full_result(0);
	my @err = grep { length } split /\n/, $err;
	return { status => $raw & 127 ? 128 + ($raw & 127) : $raw >> 8, stdout => $out,
		last_error => @err ? $err[-1] : '', progress => [ split /\n/, $progress ] };
}

# The "error <code>" lines of a run.
sub codes { return join ' ', map { /^error (\S+)$/ ? $1 : () } @{ $_[0]{progress} } }

my $sha = upload($clip, 'uploads/m1/clip.mp4');

# --- the fence
my $renewed = 0;
my $r = run_fenced(spec('uploads/m1/clip.mp4', original => { key => 'uploads/m1/clip.mp4', sha256 => $sha }),
	now_ms() + 600_000, sub {
		my ($in, $progress) = @_;
		return if $renewed || $progress !~ /^progress 0\.[2-9]/m;
		$$in .= lease(now_ms() + 600_000);
		$renewed = 1;
	});
ok($renewed, 'the fence was renewed while the job ran');
is($r->{status}, 0, 'a fence ahead, renewed, stdin open to the end: the job completes')
  or diag($r->{last_error});
ok(-e "$root/$proxy_key" && -e "$root/$thumb_key", 'and stores its outputs');
unlink "$root/$proxy_key", "$root/$thumb_key";

my $moved = 0;
$r = run_fenced(spec('uploads/m1/clip.mp4'), now_ms() + 600_000, sub {
		my ($in, $progress) = @_;
		return if $moved || $progress !~ /^progress \S+ proxy$/m;
		$$in .= lease(now_ms() - 1);
		$moved = 1;
	});
ok($moved, 'the fence was moved into the past while the proxy was being made');
is($r->{status}, 75, 'the job stops: exit 75');
like($r->{last_error}, qr/^vproxy-transcode: the lease fence passed \d+ ms ago: stopped, nothing more is written/,
	'saying why');
is(codes($r), 'storage_unavailable', 'error storage_unavailable');
ok(!-e "$root/$proxy_key" && !-e "$root/$thumb_key", 'nothing stored');

upload($clip, 'uploads/m1/keep.mp4');
$r = run_fenced(spec('uploads/m1/keep.mp4', job_type => 'video_deletion'), now_ms() - 1);
is($r->{status}, 75, 'video_deletion past its fence: exit 75');
like($r->{last_error}, qr/the lease fence passed \d+ ms ago: not starting the delete of "uploads\/m1\/keep.mp4"/,
	'the write gate refused the first delete');
ok(-e "$root/uploads/m1/keep.mp4", 'the original is still there');
is(codes($r), 'storage_unavailable', 'error storage_unavailable');

$r = run_fenced(spec('uploads/m1/keep.mp4', job_type => 'video_deletion'), 1.5);
is($r->{status}, 64, 'a fence that is not a whole number: exit 64');
like($r->{last_error}, qr/"lease_until_ms" must be an integer/, 'named');

$r = run_job(spec('uploads/m1/keep.mp4', job_type => 'metadata_extraction', outputs => {}));
is($r->{status}, 0, 'no fence given (none in the local part): no fence kept');

# --- error codes, one per cause
$r = run_job(spec('uploads/m1/missing.mp4'));
is("$r->{status} " . codes($r), '66 missing_original', 'a missing original');
$r = run_job(spec('uploads/m1/clip.mp4', original => { key => 'uploads/m1/clip.mp4', sha256 => '0' x 64 }));
is("$r->{status} " . codes($r), '65 checksum_mismatch', 'a checksum mismatch');
$r = run_job(spec('uploads/m1/clip.mp4', original => { key => 'uploads/m1/clip.mp4', size_bytes => 5 }));
is("$r->{status} " . codes($r), '65 checksum_mismatch', 'a size mismatch');
make_path("$root/uploads/m1");
open my $fh, '>', "$root/uploads/m1/text.mp4" or die;
print $fh "not a video at all\n" x 100;
close $fh;
$r = run_job(spec('uploads/m1/text.mp4'));
is("$r->{status} " . codes($r), '65 bad_media', 'not a video');
$r = run_job(spec('uploads/m1/clip.mp4', job_type => 'bogus'));
is("$r->{status} " . codes($r), '64 internal', 'a bad spec');
my $locked = scratch_dir();
make_path("$locked/uploads/m1");
copy($clip, "$locked/uploads/m1/clip.mp4") or die;
chmod 0555, $locked;
$r = run_job(job_spec($locked, 'uploads/m1/clip.mp4', temp_directory => $tmp, job_type => 'thumbnail_generation'));
is("$r->{status} " . codes($r), '77 storage_refused', 'a store that refuses the outputs');
chmod 0755, $locked;
$r = run_job(spec('uploads/m1/clip.mp4'), on_progress => sub {
		my ($line, $h) = @_;
		$h->signal('TERM') if $line =~ /^progress \S+ proxy$/;
	});
is($r->{status}, 75, 'SIGTERM: exit 75');
is(codes($r), '', 'with no code: its supervisor knows why it stopped the job');
SKIP:
{
	skip 'unprivileged mount namespaces not available', 1
	  unless system('unshare -rm true >/dev/null 2>&1') == 0;
	my $small = scratch_dir();
	my $text = job_input(spec('uploads/m1/clip.mp4', temp_directory => $small));
	my $program = transcode_program();
	my $out = `unshare -rm sh -c 'mount -t tmpfs -o size=1m none "$small" && exec "$program" job --progress-fd 1' <<'EOF' 2>&1
$text
EOF`;
	like($out, qr/^error no_temp_space$/m, 'no room in the temp directory: error no_temp_space');
}

done_testing();
