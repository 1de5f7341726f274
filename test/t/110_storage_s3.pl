# The S3 backend through `vproxy-transcode storage`, against s3rver behind the
# front that checks every signature with botocore: round trips of small and
# multipart-sized files with odd keys, read back and written by the AWS CLI,
# head/delete, presigned URLs, refusals, configuration errors, and no secret
# in any output.
use strict;
use warnings;
use File::Copy ();
use File::Path ();
use File::Temp qw(tempdir);
use HTTP::Tiny;
use IPC::Run ();
use Test::More;
use VproxyTest::S3 qw(run_storage random_file same_file);

my $dir = tempdir(CLEANUP => 1);
my $s3 = VproxyTest::S3->start(buckets => [ 'media', 'other.bucket' ]);
my $env = $s3->storage_env('media');
my @outputs;	# everything the program printed, to look for the secret

# Run the storage command, keeping its output.
sub storage
{
	my $r = run_storage(@_);
	push @outputs, $r->{stdout}, $r->{stderr};
	return $r;
}

my %files = (
	empty => random_file("$dir/empty.bin", 0),
	one => random_file("$dir/one.bin", 1),
	small => random_file("$dir/small.bin", 100_000),
	single => random_file("$dir/single.bin", 3 * 1024 * 1024 + 7),
	multipart => random_file("$dir/multipart.bin", 40 * 1024 * 1024 + 12345),
);

my @cases = (
	[ 'uploads/m1/clip.mp4', 'multipart' ],
	[ 'uploads/m 1/with space.mov', 'single' ],
	[ 'uploads/plus+sign/a+b=c&d.mp4', 'small' ],
	[ "uploads/unicod\x{e9}/\x{1f3ac} vid\x{e9}o \x{65e5}\x{672c}.mp4", 'one' ],
	[ 'uploads/odd/100% done?#frag~tilde;semi,comma@at$dollar\'quote(1)!*.mp4', 'small' ],
	[ '-dash/.hidden/x..y.mp4', 'empty' ],
	[ 'top-level.bin', 'single' ],
);
utf8::encode($_->[0]) for @cases;

for my $case (@cases)
{
	my ($key, $name) = @$case;
	my $src = $files{$name};
	$s3->clear_requests;
	my $put = storage($env, 'put', $src, $key, '--content-type', 'video/mp4');
	is($put->{exit}, 0, "put $name as '$key'") or diag $put->{stderr};
	my @requests = $s3->requests;
	ok(@requests && !grep({ ($_->{auth} // '') ne 'header' } @requests),
		'every request was signed and the signature checked')
	  or diag explain \@requests;
	is(scalar(grep { defined $_->{query}{partNumber} } @requests),
		$name eq 'multipart' ? 6 : 0, $name eq 'multipart' ? 'in 6 parts' : 'in one PUT');

	ok($s3->aws_get('media', $key, "$dir/aws.bin"), 'the AWS CLI reads it back');
	ok(same_file($src, "$dir/aws.bin"), 'byte for byte');
	unlink "$dir/aws.bin";

	my $head = storage($env, 'head', $key);
	is($head->{exit}, 0, 'head') or diag $head->{stderr};
	is($head->{json}{size_bytes}, -s $src, 'head size');
	is($head->{json}{content_type}, 'video/mp4', 'head content type');
	like($head->{json}{etag}, qr/^"[^"]+"$/, 'head etag');

	my $get = storage($env, 'get', $key, "$dir/got.bin");
	is($get->{exit}, 0, 'get') or diag $get->{stderr};
	ok(same_file($src, "$dir/got.bin"), 'got the same bytes');
	unlink "$dir/got.bin";
}

# objects written by the AWS CLI (multipart, its own way) are read by us
my $aws_key = "from aws/\x{e9}t\x{e9} + hiver.mov";
utf8::encode($aws_key);
ok($s3->aws_put($files{multipart}, 'media', $aws_key), 'the AWS CLI writes a large object');
my $get = storage($env, 'get', $aws_key, "$dir/from-aws.bin");
is($get->{exit}, 0, 'we read it') or diag $get->{stderr};
ok(same_file($files{multipart}, "$dir/from-aws.bin"), 'byte for byte');
ok(scalar($s3->requests(method => 'GET')) >= 3, 'in parallel ranges');

# progress on its own channel, monotonic, up to the whole
for my $op ([ 'put', $files{multipart}, 'progress.bin' ], [ 'get', 'progress.bin', "$dir/progress.bin" ])
{
	local %ENV = (%ENV, %$env);
	my ($out, $err, $progress) = ('', '', '');
	IPC::Run::run([ VproxyTest::S3::transcode_program(), 'storage', @$op, '--progress-fd', '3' ],
		'<', \'', '>', \$out, '2>', \$err, '3>', \$progress);
	is($? >> 8, 0, "$op->[0] with --progress-fd") or diag $err;
	my @fractions = $progress =~ /^progress ([0-9.]+) \w+$/mg;
	ok(@fractions >= 3, 'reports progress') or diag $progress;
	is_deeply([ sort { $a <=> $b } @fractions ], \@fractions, 'monotonic');
	is($fractions[-1], '1.0000', 'up to 1');
}

# a prefix in the storage URL, a bucket name with dots
my $prefixed = { %$env, VPROXY_STORAGE_URL => 's3://media/tenant one/' };
is(storage($prefixed, 'put', $files{small}, 'a/b.bin')->{exit}, 0, 'put below a prefix');
ok($s3->aws_get('media', 'tenant one/a/b.bin', "$dir/prefixed.bin"), 'lands below the prefix');
ok(same_file($files{small}, "$dir/prefixed.bin"), 'intact');
my $dotted = $s3->storage_env('other.bucket', 'x');
is(storage($dotted, 'put', $files{one}, 'y')->{exit}, 0, 'a bucket name with dots');
is(storage($dotted, 'get', 'y', "$dir/dotted.bin")->{exit}, 0, 'and back');

# AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY when VPROXY_S3_* are not set
my %aws_env = %$env;
$aws_env{AWS_ACCESS_KEY_ID} = delete $aws_env{VPROXY_S3_ACCESS_KEY_ID};
$aws_env{AWS_SECRET_ACCESS_KEY} = delete $aws_env{VPROXY_S3_SECRET_ACCESS_KEY};
is(storage(\%aws_env, 'head', 'top-level.bin')->{exit}, 0, 'credentials from AWS_* variables');

# presigned URLs, checked by the front as botocore would
my $key = $cases[1][0];
my $presign = storage($env, 'presign', $key, '--expires', '600');
is($presign->{exit}, 0, 'presign') or diag $presign->{stderr};
my $url = $presign->{json}{url};
like($url, qr/X-Amz-Expires=600&X-Amz-SignedHeaders=host&X-Amz-Signature=[0-9a-f]{64}$/,
	'a SigV4 query-signed URL');
$s3->clear_requests;
my $fetched = HTTP::Tiny->new->get($url);
is($fetched->{status}, 200, 'fetched with a plain HTTP client');
open(my $fh, '<:raw', $files{single}) or die;
my $expected = do { local $/; <$fh> };
ok($fetched->{content} eq $expected, 'it gives the object');
is(($s3->requests(method => 'GET'))[0]{auth}, 'query', 'the front checked the query signature');
system('curl', '-sf', '-o', "$dir/curl.bin", $url) == 0 or fail('curl fetches it');
ok(same_file($files{single}, "$dir/curl.bin"), 'curl too');
(my $tampered = $url) =~ s/X-Amz-Expires=600/X-Amz-Expires=6000/;
is(HTTP::Tiny->new->get($tampered)->{status}, 403, 'a URL with a changed expiry is refused');
my $short = storage($env, 'presign', $key, '--expires', '1')->{json}{url};
sleep 2;
my $late = HTTP::Tiny->new->get($short);
is($late->{status}, 403, 'a URL used after its expiry is refused');
like($late->{content}, qr/Request has expired/, 'as expired');
for my $bad ('0', '604801', '-1', 'x')
{
	is(storage($env, 'presign', $key, '--expires', $bad)->{exit}, 64, "expiry $bad: 64");
}
is(storage($env, 'presign', $key, '--expires', '604800')->{exit}, 0, 'seven days is fine');

# ranged reads: one GET with Range per read, on one kept-open connection,
# If-Match on the ETag of the HeadObject, bytes counted
my $ranged_key = $cases[0][0];
my @ranges = ([ 0, 1 ], [ 5_000_000, 1_000_000 ], [ 40 * 1024 * 1024 + 12000, 1000 ],
	[ 50 * 1024 * 1024, 10 ]);
$s3->clear_requests;
my $read = storage($env, 'read', $ranged_key, "$dir/ranges.bin",
	map { ('--range', "$_->[0]:$_->[1]") } @ranges);
is($read->{exit}, 0, 'ranged reads of an S3 object') or diag $read->{stderr};
is($read->{json}{size_bytes}, -s $files{multipart}, 'its size, from HeadObject');
is_deeply([ map { $_->{got} } @{ $read->{json}{ranges} } ], [ 1, 1_000_000, 345, 0 ],
	'whole ranges, cut at the end');
open(my $whole, '<:raw', $files{multipart}) or die;
my $expected_ranges = '';
for my $range (@ranges)
{
	seek($whole, $range->[0], 0);
	read($whole, my $part, $range->[1]);
	$expected_ranges .= $part // '';
}
close($whole);
ok(do { open(my $in, '<:raw', "$dir/ranges.bin") or die; local $/; <$in> } eq $expected_ranges,
	'the bytes of each range');
my @gets = $s3->requests(method => 'GET');
is_deeply([ map { $_->{range} } @gets ],
	[ 'bytes=0-0', 'bytes=5000000-5999999', 'bytes=41955040-41955384' ],
	'one GET with a Range header per read, nothing past the end asked');
is(scalar(keys %{ { map { $_->{peer} => 1 } $s3->requests } }), 1,
	'HeadObject and every range on one connection');
is($read->{json}{bytes_fetched}, 1 + 1_000_000 + 345, 'bytes fetched counted');
is($read->{json}{requests}, 3, 'reads counted');
$s3->clear_requests;
$read = storage($env, 'read', $ranged_key, "$dir/ranges.bin", '--readahead', 1048576,
	map { ('--range', ($_ * 32768) . ':32768') } 0 .. 63);
is($read->{json}{requests}, 2, '64 reads of 32 KiB with 1 MiB read-ahead: two GETs');
is(scalar($s3->requests(method => 'GET')), 2, 'as the server saw them');
is(storage($env, 'read', 'no/such key', "$dir/ranges.bin", '--range', '0:1')->{exit}, 66,
	'ranged read of a missing object: 66');

# prefix removal: every page of the listing (50 keys a page), nothing beside it
my @below = map { sprintf('seg+%03d/chunk&%d.bin', $_ % 7, $_) } 1 .. 120;
for my $name (@below)
{
	File::Path::make_path("$dir/tree/" . ($name =~ s{/[^/]*$}{}r));
	File::Copy::copy($files{one}, "$dir/tree/$name") or die "copy: $!";
}
$s3->put_tree("$dir/tree", 'media', 'tmp/job 1');
is(storage($env, 'put', $files{one}, $_)->{exit}, 0, "put $_") for ('tmp/job 10/keep.bin', 'tmp/job 1.bin');
$s3->clear_requests;
my $removal = storage($env, 'delete-prefix', 'tmp/job 1/');
is($removal->{exit}, 0, 'delete-prefix on S3') or diag $removal->{stderr};
is($removal->{json}{removed}, 120, 'every object below the prefix, over three pages');
is(scalar($s3->requests(method => 'GET', query => { 'list-type' => 2 })), 3, 'three listing pages');
is(scalar(grep { $_->{status} eq '204' } $s3->requests(method => 'DELETE')), 120,
	'one DeleteObject each (s3rver answers some concurrent ones with a 500: retried)');
is(storage($env, 'head', "tmp/job 1/$below[-1]")->{exit}, 66, 'they are gone');
is(storage($env, 'head', 'tmp/job 10/keep.bin')->{exit}, 0, 'a prefix that only starts alike stays');
is(storage($env, 'head', 'tmp/job 1.bin')->{exit}, 0, 'so does a key that starts alike');
is(storage($env, 'delete-prefix', 'tmp/job 1/')->{json}{removed}, 0, 'nothing left: 0 removed');
is(storage($prefixed, 'put', $files{one}, 'tmp/x/y.bin')->{exit}, 0, 'an object below a URL prefix');
is(storage($prefixed, 'delete-prefix', 'tmp/')->{json}{removed}, 1, 'removed below the URL prefix');
is(storage($prefixed, 'head', 'tmp/x/y.bin')->{exit}, 66, 'gone');
is(storage($env, 'delete-prefix', 'tmp')->{exit}, 64, 'a prefix without its slash: 64');

# temporary credentials: the session token from AWS_SESSION_TOKEN rides in
# every request and is signed into presigned URLs, which botocore accepts
my $token = 'IQoJb3JpZ2luX2VjE/temporary+token==';
my $temporary = VproxyTest::S3->start(buckets => ['media'], session_token => $token);
my %token_env = %{ $temporary->storage_env('media') };
$token_env{AWS_SESSION_TOKEN} = delete $token_env{VPROXY_S3_SESSION_TOKEN};
is(storage(\%token_env, 'put', $files{small}, 'temporary/a b.bin')->{exit}, 0,
	'put with temporary credentials');
my $token_url = storage(\%token_env, 'presign', 'temporary/a b.bin')->{json}{url} // '';
like($token_url, qr/&X-Amz-Security-Token=IQoJb3JpZ2luX2VjE%2Ftemporary%2Btoken%3D%3D&X-Amz-SignedHeaders=host&/,
	'the presigned URL carries the session token, encoded, in its sorted place');
$temporary->clear_requests;
my $token_get = HTTP::Tiny->new->get($token_url);
is($token_get->{status}, 200, 'botocore (the front) accepts the presigned URL with its token');
is(($temporary->requests(method => 'GET'))[0]{auth}, 'query', 'checked as a query signature');
ok($token_get->{content} eq do { open(my $in, '<:raw', $files{small}) or die; local $/; <$in> },
	'it gives the object');
(my $tokenless = $token_url) =~ s/&X-Amz-Security-Token=[^&]*//;
is(HTTP::Tiny->new->get($tokenless)->{status}, 403, 'without its token the URL is refused');
my %no_token_env = %token_env;
delete $no_token_env{AWS_SESSION_TOKEN};
is(storage(\%no_token_env, 'head', 'temporary/a b.bin')->{exit}, 77,
	'temporary credentials without their token: refused, 77');
$temporary->stop;

# delete; a missing object or bucket is 66, named
is(storage($env, 'delete', $key)->{exit}, 0, 'delete');
my $gone = storage($env, 'head', $key);
is($gone->{exit}, 66, 'head after delete: 66');
like($gone->{last_error}, qr/NoSuchKey/, 'NoSuchKey');
is(storage($env, 'delete', $key)->{exit}, 0, 'deleting again succeeds, as on S3');
my $missing = storage($env, 'get', 'no/such key.mp4', "$dir/none.bin");
is($missing->{exit}, 66, 'get of a missing key: 66');
like($missing->{last_error}, qr/key "no\/such key.mp4" in bucket media: NoSuchKey/,
	'the message names key, bucket and S3 error code');
ok(!-e "$dir/none.bin", 'no output file');
my $no_bucket = storage($s3->storage_env('nobucket'), 'get', 'k', "$dir/none.bin");
is($no_bucket->{exit}, 66, 'a missing bucket: 66');
like($no_bucket->{last_error}, qr/NoSuchBucket/, 'NoSuchBucket');

# refused credentials: 77, and nothing half-done
for my $wrong ([ VPROXY_S3_SECRET_ACCESS_KEY => 'W' x 40, 'SignatureDoesNotMatch' ],
	[ VPROXY_S3_ACCESS_KEY_ID => 'AKIANOBODY', 'InvalidAccessKeyId' ])
{
	my $bad = { %$env, $wrong->[0] => $wrong->[1] };
	for my $op ([ 'get', 'top-level.bin', "$dir/refused.bin" ], [ 'put', $files{multipart}, 'refused.bin' ],
		[ 'head', 'top-level.bin' ], [ 'delete', 'top-level.bin' ])
	{
		my $r = storage($bad, @$op);
		is($r->{exit}, 77, "$op->[0] with a wrong $wrong->[0]: 77");
		like($r->{last_error}, qr/\Q$wrong->[2]\E/, "names $wrong->[2]");
	}
}
ok(!-e "$dir/refused.bin", 'no output file');
is_deeply([ $s3->multipart_uploads('media') ], [], 'no unfinished multipart upload anywhere');
is(storage($env, 'head', 'top-level.bin')->{exit}, 0, 'the refused delete deleted nothing');

# configurations that cannot work: 64
for my $bad ([ VPROXY_S3_ENDPOINT => 'ftp://127.0.0.1:21' ], [ VPROXY_S3_ENDPOINT => 'not a url' ],
	[ VPROXY_STORAGE_URL => 's3://UPPER_case' ], [ VPROXY_STORAGE_URL => 's3://' ],
	[ VPROXY_S3_SECRET_ACCESS_KEY => '' ], [ VPROXY_S3_REGION => 'us:east' ])
{
	my $r = storage({ %$env, @$bad }, 'head', 'top-level.bin');
	is($r->{exit}, 64, "$bad->[0]='$bad->[1]': 64");
}

# the secret never shows
my $secret = $s3->secret_access_key;
ok(!grep({ index($_, $secret) >= 0 } @outputs), 'the secret appears in no output');

$s3->stop;
done_testing();
