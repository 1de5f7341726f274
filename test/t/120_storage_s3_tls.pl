# S3 over https: the peer is verified by default (a self-signed certificate is
# refused with 77, at once), and trusted when VPROXY_S3_CA_FILE names it; a
# job too, in its sandbox, which lets it read the CA file of its local part
# and the system's certificates, and connect to the endpoint's port.
use strict;
use warnings;
use File::Temp qw(tempdir);
use Test::More;
use VproxyTest::Job;
use VproxyTest::Media;
use VproxyTest::S3 qw(run_storage random_file same_file);

my $dir = tempdir(CLEANUP => 1);
my $s3 = VproxyTest::S3->start(buckets => ['media'], tls => 1);
like($s3->endpoint, qr{^https://}, 'the test server speaks https');
my $env = $s3->storage_env('media');
my $file = random_file("$dir/clip.bin", 20 * 1024 * 1024 + 1);
my $key = 'tls/clip 1.mp4';

my $put = run_storage($env, 'put', $file, $key);
is($put->{exit}, 0, 'put over https with the CA file') or diag $put->{stderr};
ok($s3->aws_get('media', $key, "$dir/aws.bin"), 'the AWS CLI reads it back');
ok(same_file($file, "$dir/aws.bin"), 'byte for byte');
my $get = run_storage($env, 'get', $key, "$dir/got.bin");
is($get->{exit}, 0, 'get over https') or diag $get->{stderr};
ok(same_file($file, "$dir/got.bin"), 'intact');

my $url = run_storage($env, 'presign', $key)->{json}{url};
like($url, qr{^https://127\.0\.0\.1:\d+/media/tls/clip%201\.mp4\?}, 'presigned https URL');
is(system('curl', '-sf', '--cacert', $s3->ca_file, '-o', "$dir/presigned.bin", $url), 0,
	'curl fetches it');
ok(same_file($file, "$dir/presigned.bin"), 'intact');

my %untrusted = %$env;
delete $untrusted{VPROXY_S3_CA_FILE};
$s3->clear_requests;
my $r = run_storage(\%untrusted, 'get', $key, "$dir/untrusted.bin");
is($r->{exit}, 77, 'a certificate the system does not trust: 77');
like($r->{last_error}, qr/certificate/i, 'the message says so');
cmp_ok($r->{seconds}, '<', 5, 'at once, without retries');
is(scalar($s3->requests), 0, 'no request was sent');
ok(!-e "$dir/untrusted.bin", 'no output file');

$r = run_storage({ %$env, VPROXY_S3_CA_FILE => "$dir/no-such-ca.pem" }, 'head', $key);
is($r->{exit}, 77, 'a CA file that does not exist: 77');

SKIP:
{
	skip 'ffmpeg/ffprobe not installed', 6 unless have_program('ffmpeg') && have_program('ffprobe');
	ok($s3->aws_put(fixture('three_frames'), 'media', 'uploads/m1/clip.mp4'), 'an original uploaded');
	my $spec = job_spec(undef, 'uploads/m1/clip.mp4', job_type => 'thumbnail_generation',
		storage => $s3->storage_spec('media'), temp_directory => $dir, params => { timestamp_seconds => 0 });
	my $job = run_job($spec);
	is($job->{status}, 0, 'a job over https with the CA file succeeds in its sandbox')
		or diag $job->{stderr};
	ok($s3->aws_get('media', 'thumbnails/m1/video-1.jpg', "$dir/thumb.jpg"), 'its thumbnail is stored');
	is_deeply([ workspaces_in($dir) ], [], 'its temp directory is removed');
	$spec->{storage}{ca_file} = '';
	$job = run_job($spec);
	is($job->{status}, 77, 'without it, the system\'s certificates do not trust the server: 77');
	like($job->{last_error}, qr/certificate/i, 'and the message says so');
}

$s3->stop;
done_testing();
