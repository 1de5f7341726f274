# vproxy-dashboard on S3 storage: a job's proxy and thumbnail links are
# presigned with the dashboard's own credentials (its environment, never
# the database's), fetched with curl through the test S3 server's
# SigV4-verifying front (a key with spaces and unicode, with a session
# token); the page's CSP lets media come from that S3 origin and nowhere
# else; without credentials the page says why it shows no media.
use strict;
use warnings;
use IPC::Run ();
use PostgreSQL::Test::Utils;
use Test::More;
use VproxyTest::Cluster;
use VproxyTest::Dashboard;
use VproxyTest::S3 qw(random_file same_file);

my $s3 = VproxyTest::S3->start(buckets => ['media'], session_token => 'the-session-token');
my $vp = VproxyTest::Cluster->start(workers => 0, storage => $s3->storage_spec('media', 'tenant'));
VproxyTest::Dashboard::create_role($vp, 'vproxy_monitor');
my $scratch = PostgreSQL::Test::Utils::tempdir();

# a finished job whose proxy and thumbnail are in the bucket
my $proxy_key = "videos/m1/proxy/caf\x{e9} clip+1.mp4";
my $thumb_key = 'thumbnails/m1/clip.jpg';
random_file("$scratch/proxy", 5000);
random_file("$scratch/thumb", 700);
my $sql_key = $proxy_key;
utf8::encode($sql_key);
ok($s3->aws_put("$scratch/proxy", 'media', "tenant/$sql_key"), 'the proxy is in the bucket');
ok($s3->aws_put("$scratch/thumb", 'media', "tenant/$thumb_key"), 'and the thumbnail');
my $video = $vp->value("INSERT INTO vproxy.videos (mall_id, original_path, proxy_path, thumbnail_path, processing_status)
	VALUES ('m1', 'uploads/m1/clip.mov', " . VproxyTest::Cluster::quote($sql_key) . ", '$thumb_key', 'completed') RETURNING id");
my $job = $vp->value("INSERT INTO vproxy.processing_jobs (video_id, status, attempts, started_at, completed_at, progress)
	VALUES ('$video', 'completed', 1, now() - interval '3 seconds', now(), 1) RETURNING id");

# curl: the HTTP status of a GET into $file.
sub curl
{
	my ($url, $file) = @_;
	IPC::Run::run([ 'curl', '-sS', '-g', '-w', '%{http_code}', '-o', $file, $url ],
		'<', \'', '>', \my $status, '2>', \my $err);
	return $status;
}

# --- with the dashboard's credentials (the test server's), in its environment
my $d = do
{
	local $ENV{AWS_ACCESS_KEY_ID} = $s3->access_key_id;
	local $ENV{AWS_SECRET_ACCESS_KEY} = $s3->secret_access_key;
	local $ENV{AWS_SESSION_TOKEN} = $s3->session_token;
	VproxyTest::Dashboard->start($vp);
};
my $view = $d->json("/api/job/$job");
my $endpoint = $s3->endpoint;
like($view->{media}{proxy} // '', qr{^\Q$endpoint\E/media/tenant/videos/m1/proxy/caf%C3%A9%20clip%2B1\.mp4\?X-Amz-Algorithm=AWS4-HMAC-SHA256&},
	'the proxy link is a presigned URL of the object, path-style');
like($view->{media}{proxy} // '', qr/X-Amz-Security-Token=the-session-token/, 'with the session token signed in');
like($view->{media}{proxy} // '', qr/X-Amz-Expires=3600/, 'valid an hour');
is(curl($view->{media}{proxy}, "$scratch/proxy.back"), '200', 'the S3 front accepts its signature');
ok(same_file("$scratch/proxy", "$scratch/proxy.back"), 'and serves the proxy');
is(curl($view->{media}{thumbnail}, "$scratch/thumb.back"), '200', 'the thumbnail too');
ok(same_file("$scratch/thumb", "$scratch/thumb.back"), 'byte for byte');
(my $tampered = $view->{media}{proxy}) =~ s/clip%2B1/clip%2B2/;
is(curl($tampered, "$scratch/other"), '403', 'another key under that signature: 403');
my $csp = $d->get('/')->{headers}{'content-security-policy'} // '';
like($csp, qr/media-src 'self' \Q$endpoint\E;/, 'the page may play media from the S3 origin');
like($csp, qr/img-src 'self' \Q$endpoint\E;/, 'and show its images');
like($csp, qr/default-src 'none'/, 'and nothing else from anywhere');
unlike($d->get("/api/job/$job")->{content}, qr/\Q${\ $s3->secret_access_key }\E/, 'the secret is never in an answer');
unlike($d->log_text, qr/\Q${\ $s3->secret_access_key }\E/, 'nor in the log');
is($d->stop, 0, 'the dashboard stops');

# --- without credentials: no link, and the page says why
my $bare = do
{
	local $ENV{AWS_ACCESS_KEY_ID};
	local $ENV{AWS_SECRET_ACCESS_KEY};
	delete $ENV{AWS_ACCESS_KEY_ID};
	delete $ENV{AWS_SECRET_ACCESS_KEY};
	VproxyTest::Dashboard->start($vp);
};
$view = $bare->json("/api/job/$job");
ok(!defined $view->{media}{proxy}, 'no credentials: no proxy link');
like($view->{media}{note} // '', qr/AWS_ACCESS_KEY_ID/, 'the page says what is missing');
is($bare->stop, 0, 'it stops');
done_testing();
