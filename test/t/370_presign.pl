# Presigned URLs signed inside PostgreSQL (vproxy_url, vproxy_upload_url):
# every URL is checked by botocore recomputing its signature
# (test/s3/presign_check.py) and used with curl against the test S3 server,
# whose front verifies it again; keys with spaces, +, % and unicode, GET and
# PUT, path-style and virtual-hosted, with and without a session token.  A
# wrong secret, a tampered key and an expired URL are refused.
use strict;
use warnings;
use File::Basename qw(dirname);
use File::Spec;
use IPC::Run ();
use PostgreSQL::Test::Utils;
use Test::More;
use VproxyTest::Cluster;
use VproxyTest::Grants;
use VproxyTest::S3 qw(random_file same_file);

my $checker = File::Spec->rel2abs(dirname(__FILE__) . '/../s3/presign_check.py');
my $s3 = VproxyTest::S3->start(buckets => ['media']);
my $vp = VproxyTest::Cluster->start(workers => 0, storage => $s3->storage_spec('media', 'tenant'));
my $scratch = PostgreSQL::Test::Utils::tempdir();
my $q = \&VproxyTest::Cluster::quote;

# botocore's verdict on a URL: "ok" or the S3 error.
sub check
{
	my ($method, $url, %opts) = @_;
	local $ENV{S3_CHECK_ACCESS_KEY_ID} = $s3->access_key_id;
	local $ENV{S3_CHECK_SECRET_ACCESS_KEY} = $opts{secret} // $s3->secret_access_key;
	local $ENV{S3_CHECK_REGION} = $s3->region;
	IPC::Run::run([ '/usr/bin/python3', $checker, $method, $url,
			defined $opts{token} ? ('--token', $opts{token}) : (),
			$opts{at_signing_time} ? ('--at-signing-time') : () ],
		'<', \'', '>', \my $out, '2>', \my $err);
	chomp $out;
	return $out || "checker failed: $err";
}

# curl: the HTTP status of a GET into $file, or of a PUT of $file.  An AWS
# URL (virtual-hosted, https) goes to the test server instead, over plain
# HTTP (the signature covers host, path and query, not the scheme).
sub curl
{
	my ($method, $url, $file) = @_;
	my @io = $method eq 'PUT' ? ('-T', $file) : ('-o', $file);
	my @to;
	if ($url =~ s{^https://([^/]+\.amazonaws\.com)/}{http://$1/})
	{
		@to = ('--connect-to', "$1:80:127.0.0.1:" . $s3->port);
	}
	IPC::Run::run([ 'curl', '-sS', '-g', '-w', '%{http_code}', @to, @io, $url ],
		'<', \'', '>', \my $status, '2>', \my $err);
	return $status;
}

# Wait until a new setting is in force for new sessions.
sub reload_until
{
	my ($sql) = @_;
	$vp->node->reload;
	ok($vp->wait_until($sql, 30), "setting in force: $sql");
}

# (below the upload prefix of their tenant m1: uploads/m1/)
my @keys = ('uploads/m1/plain.mov', 'uploads/m1/with space.mov', 'uploads/m1/a+b=c&d.mov',
	'uploads/m1/100%.mov', "uploads/m1/\x{fc}nic\x{f8}de/\x{30d5}\x{30a1}\x{30a4}\x{30eb}.mov",
	'uploads/m1/~tilde_(1)!*\'.mov');
my $n = 0;
my %video;
for my $key (@keys)
{
	my $bytes = "$scratch/upload-$n";
	random_file($bytes, 1000 + 997 * $n);
	my $sql_key = $key;
	utf8::encode($sql_key);
	my $id = $vp->value("INSERT INTO vproxy.videos (mall_id, original_path) VALUES ('m1', "
		  . $q->($sql_key) . ") RETURNING id");
	$video{$key} = $id;
	my $put = $vp->value("SELECT vproxy.vproxy_upload_url('$id')");
	like($put, qr{^http://127\.0\.0\.1:\d+/media/tenant/uploads/}, "path-style PUT URL ($n)");
	is(check('PUT', $put), 'ok', "PUT URL of key $n verified by botocore");
	is(curl('PUT', $put, $bytes), '200', "PUT with curl ($n)");
	ok($s3->aws_get('media', "tenant/$sql_key", "$scratch/aws-$n"), "the AWS CLI finds key $n");
	ok(same_file($bytes, "$scratch/aws-$n"), "the stored bytes are those uploaded ($n)");

	my $get = $vp->value("SELECT vproxy.vproxy_url('$id', 'original', '10 minutes')");
	is(check('GET', $get), 'ok', "GET URL of key $n verified by botocore");
	like($get, qr/X-Amz-Expires=600&/, 'expiry as asked');
	is(curl('GET', $get, "$scratch/get-$n"), '200', "GET with curl ($n)");
	ok(same_file($bytes, "$scratch/get-$n"), "the bytes fetched are those uploaded ($n)");
	$n++;
}

my $id = $video{'uploads/m1/with space.mov'};
my $get = $vp->value("SELECT vproxy.vproxy_url('$id', 'original')");
like($get, qr{/tenant/uploads/m1/with%20space\.mov\?}, 'a space is %20 in the path');
like(check('GET', $get, secret => 'not-the-secret'), qr/^SignatureDoesNotMatch/,
	'a wrong secret is refused');
(my $tampered = $get) =~ s/with%20space/with%20spaces/;
like(check('GET', $tampered), qr/^SignatureDoesNotMatch/, 'a tampered key is refused by botocore');
is(curl('GET', $tampered, "$scratch/tampered"), '403', 'and by the S3 server');
my $short = $vp->value("SELECT vproxy.vproxy_url('$id', 'original', '1 second')");
is(check('GET', $short, at_signing_time => 1), 'ok', 'a 1-second URL is valid when signed');
sleep 3;
like(check('GET', $short), qr/^AccessDenied: Request has expired/, 'then expired for botocore');
is(curl('GET', $short, "$scratch/expired"), '403', 'and for the S3 server');
my $week = $vp->value("SELECT vproxy.vproxy_url('$id', 'original', '7 days')");
is(check('GET', $week), 'ok', 'a 7-day URL is valid');

# a proxy or thumbnail still to be made: NULL; unknown video or kind: errors
is($vp->value("SELECT vproxy.vproxy_url('$id') IS NULL"), 't', 'no proxy yet: NULL');
is($vp->value("SELECT vproxy.vproxy_url('$id', 'thumbnail') IS NULL"), 't', 'no thumbnail yet: NULL');
my ($ret, $out, $err) = $vp->node->psql('vproxy', "SELECT vproxy.vproxy_url(gen_random_uuid())");
like($err, qr/video .* does not exist/, 'unknown video: an error');
($ret, $out, $err) = $vp->node->psql('vproxy', "SELECT vproxy.vproxy_url('$id', 'poster')");
like($err, qr/unknown kind "poster"/, 'unknown kind: an error');

# the application role of the README (its grants only) gets URLs, never the secret
$vp->sql("CREATE ROLE app LOGIN;\n" . VproxyTest::Grants::sql('application'));
my $app_url = $vp->node->safe_psql('vproxy', "SET ROLE app; SELECT vproxy.vproxy_url('$id', 'original')");
is(check('GET', $app_url), 'ok', 'the application role gets a valid URL');
($ret, $out, $err) = $vp->node->psql('vproxy', "SET ROLE app; SHOW vproxy.s3_secret_access_key");
like($err, qr/permission denied|must be superuser/, 'but cannot read the secret');
unlike($app_url, qr/\Q${\ $s3->secret_access_key }\E/, 'the URL does not hold the secret');

# a session token: signed into every URL
my $token = 'FQoGZXIvYXdzE+token/with=chars';
$vp->sql("ALTER SYSTEM SET vproxy.s3_session_token = " . $q->($token));
reload_until("SELECT vproxy.vproxy_url('$id', 'original') LIKE '%X-Amz-Security-Token=%'");
$get = $vp->value("SELECT vproxy.vproxy_url('$id', 'original')");
like($get, qr/X-Amz-Security-Token=FQoGZXIvYXdzE%2Btoken%2Fwith%3Dchars&/, 'the token is in the URL, encoded');
is(check('GET', $get, token => $token), 'ok', 'GET URL with a token verified by botocore');
is(check('GET', $get), 'InvalidToken: the security token is not the expected one',
	'the checker notices the token');
is(curl('GET', $get, "$scratch/token-get"), '200', 'GET with a token, with curl');
ok(same_file("$scratch/token-get", "$scratch/upload-1"), 'the bytes are right');
my $put = $vp->value("SELECT vproxy.vproxy_upload_url('$id')");
is(check('PUT', $put, token => $token), 'ok', 'PUT URL with a token verified by botocore');
is(curl('PUT', $put, "$scratch/upload-0"), '200', 'PUT with a token, with curl');
is($vp->node->safe_psql('vproxy', 'SHOW vproxy.s3_session_token'), '********', 'the token is shown as stars');

# AWS itself (empty endpoint): virtual-hosted, https, the token still signed
$vp->sql("ALTER SYSTEM SET vproxy.s3_endpoint = ''");
reload_until("SELECT vproxy.vproxy_url('$id', 'original') LIKE 'https://media.s3.%'");
$get = $vp->value("SELECT vproxy.vproxy_url('$id', 'original')");
like($get, qr{^https://media\.s3\.us-east-1\.amazonaws\.com/tenant/uploads/m1/with%20space\.mov\?},
	'virtual-hosted URL on AWS');
is(check('GET', $get, token => $token), 'ok', 'virtual-hosted GET verified by botocore');
is(curl('GET', $get, "$scratch/virtual-get"), '200', 'virtual-hosted GET with curl (the test server as AWS)');
ok(same_file("$scratch/virtual-get", "$scratch/upload-0"), 'the bytes are right');
$put = $vp->value("SELECT vproxy.vproxy_upload_url('" . $video{ $keys[4] } . "')");
like($put, qr{/tenant/uploads/m1/%C3%BCnic%C3%B8de/%E3%83%95}, 'unicode keys are UTF-8, percent-encoded');
is(check('PUT', $put, token => $token), 'ok', 'virtual-hosted PUT of a unicode key verified by botocore');
random_file("$scratch/virtual-put", 4321);
is(curl('PUT', $put, "$scratch/virtual-put"), '200', 'virtual-hosted PUT with curl');
is(curl('GET', $vp->value("SELECT vproxy.vproxy_url('" . $video{ $keys[4] } . "', 'original')"),
	"$scratch/virtual-back"), '200', 'and GET it back');
ok(same_file("$scratch/virtual-put", "$scratch/virtual-back"), 'the bytes are those uploaded');
(my $tampered_virtual = $get) =~ s{^https://media\.}{https://other.};
is(curl('GET', $tampered_virtual, "$scratch/tampered-virtual"), '403', 'another bucket in the host is refused');
like(check('PUT', $put, token => $token, secret => 'wrong'), qr/^SignatureDoesNotMatch/,
	'and refused with a wrong secret');
$vp->sql("ALTER SYSTEM RESET vproxy.s3_session_token");
reload_until("SELECT vproxy.vproxy_url('$id', 'original') NOT LIKE '%X-Amz-Security-Token=%'");
$get = $vp->value("SELECT vproxy.vproxy_url('$id', 'original')");
is(check('GET', $get), 'ok', 'virtual-hosted without a token verified by botocore');
$vp->sql("ALTER SYSTEM SET vproxy.storage_url = 's3://media.dotted'");
reload_until("SELECT vproxy.vproxy_url('$id', 'original') LIKE 'https://s3.us-east-1.amazonaws.com/media.dotted/%'");
is(check('GET', $vp->value("SELECT vproxy.vproxy_url('$id', 'original')")), 'ok',
	'a bucket with dots is path-style on AWS, verified by botocore');

# an upload prefix that overlaps the output keys: tenant "videos" below
# "{mall_id}/" could name tenant m1's proxy as its upload, and sign it; a key
# vproxy writes its outputs to is never an upload
$vp->sql("ALTER SYSTEM SET vproxy.upload_prefix_template = '{mall_id}/'");
reload_until("SELECT current_setting('vproxy.upload_prefix_template') = '{mall_id}/'");
for my $key ("videos/m1/proxy/$id.mp4", "thumbnails/m1/$id.jpg", "vproxy-split/$id/1/video-0.chunk")
{
	my ($mall) = $key =~ m{^([^/]+)/};
	($ret, $out, $err) = $vp->node->psql('vproxy', "SET ROLE app;
		INSERT INTO vproxy.videos (mall_id, original_path) VALUES ('$mall', '$key')");
	like($err, qr/ERROR:  original_path "\Q$key\E" is a key vproxy writes its outputs to/,
		"tenant $mall below {mall_id}/ cannot take $key as its upload");
}
is($vp->value("SELECT count(*) FROM vproxy.videos WHERE mall_id IN ('videos', 'thumbnails', 'vproxy-split')"), '0',
	'no such row was written');
is($vp->value("SELECT vproxy_internal.split_prefix('$id', 1)"), "vproxy-split/$id/1/",
	'the parts of a split proxy are where the rule looks for them');
($ret, $out, $err) = $vp->node->psql('vproxy', "SET ROLE app;
	INSERT INTO vproxy.videos (mall_id, original_path) VALUES ('videos', 'videos/own.mov')");
is("$ret $err", '0 ', 'tenant videos still stores its uploads below its prefix');
$vp->sql("ALTER SYSTEM RESET vproxy.upload_prefix_template");
reload_until("SELECT current_setting('vproxy.upload_prefix_template') = 'uploads/{mall_id}/'");

# the reloads logged "parameter ... changed": stars, never the token
like($vp->log_text, qr/vproxy\.s3_session_token/, 'the log speaks of the token setting');
unlike($vp->log_text, qr/\Q$token\E/, 'the token never reaches the log');
$vp->assert_no_crash;
done_testing();
