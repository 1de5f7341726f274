# The S3 backend under faults injected by the test server's front: the server
# not running (75 within seconds), 503s and dropped connections on single
# PUTs, parts, HEAD and GET (retried, result intact), a download cut off
# (resumed where it stopped), CompleteMultipartUpload failing inside an HTTP
# 200, a part failing for good (75 or 77, upload aborted, nothing left
# behind), error documents with entities or a DOCTYPE, hostile ETags in the
# completion, a stop request in mid-transfer, and a full local disk.
use strict;
use warnings;
use File::Temp qw(tempdir);
use IPC::Run qw(start finish);
use Test::More;
use Time::HiRes qw(sleep time);
use VproxyTest::S3 qw(run_storage random_file same_file transcode_program);

my $dir = tempdir(CLEANUP => 1);
my $s3 = VproxyTest::S3->start(buckets => ['media']);
my $env = $s3->storage_env('media');
my $large = random_file("$dir/large.bin", 30 * 1024 * 1024 + 999);	# 4 parts
my $small = random_file("$dir/small.bin", 2 * 1024 * 1024);

# Read an object back with the AWS CLI and compare it with a file.
sub intact
{
	my ($key, $file, $name) = @_;
	unlink "$dir/check.bin";
	ok($s3->aws_get('media', $key, "$dir/check.bin") && same_file($file, "$dir/check.bin"),
		"$name: the object is intact");
}

# The statuses answered to requests that match, in order.
sub statuses
{
	return [ map { $_->{status} } $s3->requests(@_) ];
}

# the server not running: 75 after a few quick retries
{
	my $dead = VproxyTest::S3->start;
	my $dead_env = { %$env, VPROXY_S3_ENDPOINT => $dead->endpoint };
	$dead->stop;
	for my $op ([ 'get', 'k', "$dir/dead.bin" ], [ 'put', $large, 'k' ], [ 'head', 'k' ])
	{
		my $r = run_storage($dead_env, @$op);
		is($r->{exit}, 75, "$op->[0] with the server down: 75");
		like($r->{last_error}, qr/gave up after 5 attempts/, 'after the bounded retries');
		cmp_ok($r->{seconds}, '<', 20, 'in seconds, not minutes');
	}
	ok(!-e "$dir/dead.bin", 'no output file');
}

# 503 SlowDown twice on a single PUT, then on HEAD and GET
$s3->clear_requests;
$s3->inject_fault(method => 'PUT', status => 503, code => 'SlowDown', count => 2);
my $r = run_storage($env, 'put', $small, 'retried/single.bin');
is($r->{exit}, 0, 'a PUT answered 503 twice succeeds') or diag $r->{stderr};
is_deeply(statuses(method => 'PUT'), [ 503, 503, 200 ], 'on the third attempt');
intact('retried/single.bin', $small, 'single PUT');
$s3->clear_requests;
$s3->inject_fault(method => 'HEAD', status => 500, code => 'InternalError', count => 1);
$s3->inject_fault(method => 'GET', status => 503, code => 'ServiceUnavailable', count => 1);
$r = run_storage($env, 'get', 'retried/single.bin', "$dir/single-back.bin");
is($r->{exit}, 0, 'HEAD 500 and GET 503 are retried') or diag $r->{stderr};
ok(same_file($small, "$dir/single-back.bin"), 'download intact');
is_deeply(statuses(method => 'HEAD'), [ 500, 200 ], 'HEAD retried');

# a multipart upload whose middle parts fail: 503 twice on part 2, part 3's
# connection dropped once
$s3->clear_requests;
$s3->inject_fault(method => 'PUT', query => { partNumber => 2 }, status => 503, code => 'SlowDown',
	count => 2);
$s3->inject_fault(method => 'PUT', query => { partNumber => 3 }, action => 'drop');
$r = run_storage($env, 'put', $large, 'retried/multipart.bin');
is($r->{exit}, 0, 'a multipart upload with failing middle parts succeeds') or diag $r->{stderr};
is_deeply(statuses(method => 'PUT', query => { partNumber => 2 }), [ 503, 503, 200 ],
	'part 2 retried after two 503s');
is(scalar($s3->requests(method => 'PUT', query => { partNumber => 3 })), 2, 'part 3 sent again');
is(scalar($s3->requests(method => 'PUT', query => { partNumber => 1 })), 1,
	'the other parts only once');
intact('retried/multipart.bin', $large, 'multipart with retried parts');
is_deeply([ $s3->multipart_uploads('media') ], [], 'no unfinished upload');

# CompleteMultipartUpload answering HTTP 200 with an <Error> inside
$s3->clear_requests;
$s3->inject_fault(method => 'POST', query => { uploadId => undef }, status => 200,
	code => 'InternalError', message => 'We encountered an internal error. Please try again.');
$r = run_storage($env, 'put', $large, 'retried/complete.bin');
is($r->{exit}, 0, 'an error inside a 200 to CompleteMultipartUpload is seen and retried')
  or diag $r->{stderr};
is_deeply(statuses(method => 'POST', query => { uploadId => undef }), [ 200, 200 ],
	'Complete sent twice');
intact('retried/complete.bin', $large, 'after the retried completion');

# a part that keeps failing: 75, the upload aborted, nothing left behind
$s3->clear_requests;
$s3->inject_fault(method => 'PUT', query => { partNumber => 3 }, status => 503, count => -1);
$r = run_storage($env, 'put', $large, 'failed/multipart.bin');
is($r->{exit}, 75, 'a part failing on every attempt: 75');
like($r->{last_error}, qr/UploadPart \(part 3\) of key "failed\/multipart.bin" in bucket media: SlowDown \(HTTP 503\).*gave up after 5 attempts/,
	'the message names part, key, bucket, code and the attempts');
is(scalar($s3->requests(method => 'DELETE', query => { uploadId => undef })), 1, 'the upload was aborted');
is_deeply([ $s3->multipart_uploads('media') ], [], 'no unfinished upload left');
is(run_storage($env, 'head', 'failed/multipart.bin')->{exit}, 66, 'and no object');
$s3->clear_faults;

# a part refused: 77 at once, aborted too
$s3->clear_requests;
$s3->inject_fault(method => 'PUT', query => { partNumber => 2 }, status => 403, code => 'AccessDenied');
$r = run_storage($env, 'put', $large, 'failed/refused.bin');
is($r->{exit}, 77, 'a part refused with 403: 77');
like($r->{last_error}, qr/AccessDenied/, 'AccessDenied named');
is(scalar($s3->requests(method => 'PUT', query => { partNumber => 2 })), 1, 'not retried');
is_deeply([ $s3->multipart_uploads('media') ], [], 'aborted, nothing left');

# other 4xx: 70 naming the code
$s3->inject_fault(method => 'PUT', status => 400, code => 'EntityTooSmall',
	message => 'Your proposed upload is smaller than the minimum allowed object size.');
$r = run_storage($env, 'put', $small, 'failed/small.bin');
is($r->{exit}, 70, 'another 4xx: 70');
like($r->{last_error}, qr/EntityTooSmall \(HTTP 400\)/, 'the S3 error code is named');

# error documents read by an XML parser: entities and character references
# decoded, a document type declaration (entities of the server's own, here a
# "billion laughs") refused without expanding anything
is(run_storage($env, 'put', $small, 'xml/errors.bin')->{exit}, 0, 'an object to fail reading');
$s3->inject_fault(method => 'GET', key => 'xml/errors', status => 400,
	body => '<?xml version="1.0" encoding="UTF-8"?>' . "\n"
	  . '<Error><Code>Invalid&#65;rgument</Code><Message>caf&#xe9; &lt;b&gt; &amp; '
	  . '&quot;q&quot; &apos;s&apos;<![CDATA[ <raw> ]]></Message><RequestId>1</RequestId></Error>');
$r = run_storage($env, 'get', 'xml/errors.bin', "$dir/xml.bin");
is($r->{exit}, 70, 'an S3 error document with entities: 70');
my $expected_error = "InvalidArgument (HTTP 400): caf\x{e9} <b> & \"q\" 's' <raw> ";
utf8::encode($expected_error);
like($r->{last_error}, qr/\Q$expected_error\E$/, 'code and message decoded');
my $laughs = '<!ENTITY a "aaaaaaaaaa">'
  . join('', map { my $p = chr(ord('a') + $_ - 1); "<!ENTITY " . chr(ord('a') + $_) . " \"" . ("&$p;" x 10) . "\">" } 1 .. 8);
$s3->inject_fault(method => 'GET', key => 'xml/errors', status => 400,
	body => "<?xml version=\"1.0\"?><!DOCTYPE Error [$laughs]><Error><Code>&i;</Code></Error>");
$r = run_storage($env, 'get', 'xml/errors.bin', "$dir/xml.bin");
is($r->{exit}, 70, 'an error document with a DOCTYPE: 70');
like($r->{last_error}, qr/BadRequest \(HTTP 400\)$/, 'read as no document: the code from the status');
unlike($r->{last_error}, qr/aaaa/, 'no entity expanded');

# hostile ETags (<, &, ", ', ]]>) in the answers to UploadPart: the
# CompleteMultipartUpload body escapes them, and the front reads it with a
# real XML parser and finds them whole
$s3->clear_requests;
$s3->inject_fault(method => 'PUT', query => { partNumber => undef }, action => 'etag',
	etag => q{<&"]]>'}, count => -1);
$r = run_storage($env, 'put', $large, 'xml/hostile-etags.bin');
is($r->{exit}, 0, 'a multipart upload whose parts have hostile ETags') or diag $r->{stderr};
is(scalar(grep { ($_->{fault} // '') eq 'etag' } $s3->requests(method => 'PUT')), 4,
	'every part was answered a hostile ETag');
is_deeply(statuses(method => 'POST', query => { uploadId => undef }), [200],
	'CompleteMultipartUpload accepted at once');
$s3->clear_faults;
intact('xml/hostile-etags.bin', $large, 'hostile ETags');

# a download cut off twice: resumed from where it stopped, not restarted
ok($s3->aws_put($large, 'media', 'cut/large.bin'), 'an object to download');
$s3->clear_requests;
$s3->inject_fault(method => 'GET', action => 'truncate', bytes => 3_000_000, count => 2);
$r = run_storage($env, 'get', 'cut/large.bin', "$dir/cut.bin");
is($r->{exit}, 0, 'a download cut off twice succeeds') or diag $r->{stderr};
ok(same_file($large, "$dir/cut.bin"), 'intact');
my @resumed = grep { ($_->{range} // '') =~ /^bytes=(\d+)-/ && $1 % (16 * 1024 * 1024) != 0 }
  $s3->requests(method => 'GET');
is(scalar(@resumed), 2, 'two requests resumed inside their range') or diag explain [ $s3->requests ];

# a stop request (SIGTERM) in mid-upload and mid-download: 75 at once, no leftovers
for my $case ([ 'put', $large, 'stopped/up.bin' ], [ 'get', 'cut/large.bin', "$dir/stopped.bin" ])
{
	$s3->clear_requests;
	$s3->inject_fault(method => $case->[0] eq 'put' ? 'PUT' : 'GET', action => 'stall',
		seconds => 30, count => -1);
	local %ENV = (%ENV, %$env);
	my ($out, $err) = ('', '');
	my $h = start([ transcode_program(), 'storage', @$case ], '<', \'', '>', \$out, '2>', \$err);
	my $deadline = time + 30;
	sleep 0.1 until $s3->requests(fault => 'stall') || time > $deadline;
	my $signalled = time;
	$h->signal('TERM');
	finish($h);
	is($? >> 8, 75, "$case->[0] stopped by SIGTERM: 75");
	cmp_ok(time - $signalled, '<', 5, 'promptly');
	like($err, qr/interrupted by a stop request/, 'says why');
	$s3->clear_faults;
}
ok(!-e "$dir/stopped.bin", 'no partial download left');
is_deeply([ $s3->multipart_uploads('media') ], [], 'the stopped upload was aborted');

# out of local space while downloading (RLIMIT_FSIZE, SIGXFSZ ignored: EFBIG)
$r = run_storage($env, [ 'sh', '-c', "ulimit -f 2048; trap '' XFSZ; exec \"\$@\"", 'sh' ],
	'get', 'cut/large.bin', "$dir/full.bin");
is($r->{exit}, 75, 'no room for the download: 75');
like($r->{last_error}, qr/File too large|No space/, 'says so');
ok(!-e "$dir/full.bin", 'nothing left behind');

$s3->stop;
done_testing();
