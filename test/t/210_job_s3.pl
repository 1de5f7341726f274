# vproxy-transcode job with S3 storage (the test S3 server, every request's
# signature checked by botocore): the original downloaded and verified, proxy
# and thumbnail uploaded and read back with the AWS CLI, transient faults
# retried, permanent ones failing with the right status, the secret never
# printed, and no temp files left whatever happens.
use strict;
use warnings;
use utf8;
use Test::More;
use Digest::SHA;
use Encode qw(encode_utf8);
use VproxyTest::Media;
use VproxyTest::Job;
use VproxyTest::S3;

plan skip_all => 'ffmpeg/ffprobe not installed' unless have_program('ffmpeg') && have_program('ffprobe');

my $s3 = VproxyTest::S3->start(buckets => ['media']);
my $tmp = scratch_dir();
my $back = scratch_dir();
my $secret = $s3->secret_access_key;
my $original_key = encode_utf8('uploads/m1/Café clip (1)+final.mov');
my $proxy_key = 'videos/m1/proxy/video-1.mp4';
my $thumb_key = 'thumbnails/m1/video-1.jpg';

my $clip = fixture('prores_mov');
ok($s3->aws_put($clip, 'media', "tenant/$original_key"), 'original uploaded with the AWS CLI');
my $sha = Digest::SHA->new(256)->addfile($clip)->hexdigest;

# A spec for this server under the prefix "tenant".
sub spec
{
	my (%over) = @_;
	return {
		job_id => 'job-1', video_id => 'video-1', attempt => 1,
		job_type => 'proxy_generation',
		storage => $s3->storage_spec('media', 'tenant'),
		original => { key => $original_key, size_bytes => -s $clip, sha256 => $sha },
		outputs => { proxy_key => $proxy_key, thumbnail_key => $thumb_key },
		params => {}, temp_directory => $tmp,
		%over,
	};
}

# What every run must satisfy: no workspace left, the secret never printed.
sub clean_run
{
	my ($name, $r) = @_;
	is_deeply([ workspaces_in($tmp) ], [], "$name: temp directory removed");
	unlike($r->{stdout} . $r->{stderr}, qr/\Q$secret\E/, "$name: the secret is never printed");
}

# The whole job through S3
{
	my $r = run_job(spec());
	is($r->{status}, 0, 'S3 proxy job succeeds') or diag $r->{stderr};
	clean_run('S3 proxy job', $r);
	ok($s3->aws_get('media', "tenant/$proxy_key", "$back/proxy.mp4"), 'proxy read back with the AWS CLI');
	ok($s3->aws_get('media', "tenant/$thumb_key", "$back/thumb.jpg"), 'thumbnail read back with the AWS CLI');
	is(-s "$back/proxy.mp4", $r->{json}{metadata}{proxy}{file_size_bytes}, 'stored proxy is the one described');
	is(-s "$back/thumb.jpg", $r->{json}{metadata}{thumbnail}{file_size_bytes}, 'stored thumbnail is the one described');
	my $video = video_stream(ffprobe_json("$back/proxy.mp4"));
	is($video->{codec_name}, 'h264', 'proxy from S3 is H.264');
	is($r->{json}{original_sha256}, $sha, 'SHA-256 of the downloaded original');
	my @gets = grep { $_->{key} =~ /Caf/ && $_->{method} eq 'GET' } $s3->requests;
	is(scalar(grep { ($_->{auth} // "") eq "header" && $_->{status} =~ /^20[06]$/ } @gets), scalar @gets,
		"every GET of the original was signed and accepted") or diag explain \@gets;
	ok(@gets >= 1, "the original was downloaded") or diag explain [ $s3->requests ];
}

# Transient faults are retried inside the job.
{
	$s3->clear_requests;
	$s3->inject_fault(method => 'GET', key => 'Caf', status => 503, count => 1);
	$s3->inject_fault(method => 'PUT', key => 'proxy', action => 'drop', count => 1);
	my $r = run_job(spec());
	is($r->{status}, 0, 'a 503 on the download and a dropped upload are retried') or diag $r->{stderr};
	clean_run('faults retried', $r);
	ok((grep { ($_->{fault} // '') eq 'error' } $s3->requests(method => 'GET')), 'the 503 was served');
	ok((grep { ($_->{fault} // '') eq 'drop' } $s3->requests(method => 'PUT')), 'the drop was served');
	$s3->clear_faults;
}

# Permanent failures: no retry, the right status.
{
	my $r = run_job(spec(original => { key => 'uploads/m1/absent.mov' }));
	is($r->{status}, 66, 'missing original in S3: exit 66');
	like($r->{last_error}, qr/absent\.mov/, 'missing original: key named');
	clean_run('missing original', $r);

	my $wrong = spec();
	$wrong->{storage}{secret_access_key} = 'wrong' . $secret;
	$r = run_job($wrong);
	is($r->{status}, 77, 'wrong secret: exit 77');
	like($r->{last_error}, qr/SignatureDoesNotMatch|AccessDenied/, 'wrong secret: S3 error code named');
	clean_run('wrong secret', $r);
	unlike($r->{stderr}, qr/wrong\Q$secret\E/, 'wrong secret: not printed either');
}

# The original is checked after the download.
{
	my $r = run_job(spec(original => { key => $original_key, sha256 => 'f' x 64 }));
	is($r->{status}, 65, 'S3 original with the wrong SHA-256: exit 65');
	like($r->{last_error}, qr/checksum mismatch/, 'checksum mismatch named');
	clean_run('checksum mismatch', $r);
}

# SIGTERM while the download is stalled: the job stops at once and cleans up.
{
	$s3->inject_fault(method => 'GET', key => 'Caf', action => 'stall', seconds => 30, count => 1);
	my $start = time;
	my $sent = 0;
	my $r = run_job(spec(), on_progress => sub {
		my ($line, $harness) = @_;
		return if $sent || $line !~ / fetch$/;
		$harness->signal('TERM');
		$sent = 1;
	});
	ok($sent, 'SIGTERM sent during the fetch');
	is($r->{status}, 75, 'SIGTERM during a download: exit 75');
	cmp_ok(time - $start, '<', 25, 'the stalled download did not hold the stop');
	clean_run('SIGTERM during download', $r);
	$s3->clear_faults;
}

# A temp directory without room for the original: exit 75 before any byte is fetched.
SKIP:
{
	skip 'unprivileged mount namespaces not available', 4
	  unless system('unshare -rm true >/dev/null 2>&1') == 0;
	my $small = scratch_dir();
	my $spec_file = scratch_dir() . '/spec.json';
	open my $fh, '>:raw', $spec_file or die "$spec_file: $!";
	print $fh job_input(spec(temp_directory => $small));
	close $fh;
	my $program = transcode_program();
	$s3->clear_requests;
	my $out = `unshare -rm sh -c 'mount -t tmpfs -o size=64k none "$small" && exec "$program" job --progress-fd 1' <"$spec_file" 2>&1`;
	is($? >> 8, 75, "no room for the original: exit 75") or diag $out;
	like($out, qr/no room for \d+ bytes/, 'no room: cause named');
	like($out, qr/^error no_temp_space$/m, 'no room: error code no_temp_space');
	is(scalar(grep { $_->{key} =~ /Caf/ } $s3->requests(method => 'GET')), 0, 'no room: nothing downloaded');
}

# The S3 server gone: transient, after bounded retries.
{
	my $gone = spec();
	$s3->stop;
	my $start = time;
	my $r = run_job($gone);
	is($r->{status}, 75, 'S3 unreachable: exit 75');
	cmp_ok(time - $start, '<', 60, 'S3 unreachable: gives up in bounded time');
	clean_run('S3 unreachable', $r);
}

is_deeply([ sanitizer_reports() ], [], 'no job reported a sanitizer error');

done_testing();
