# The test S3 server itself: the front must refuse what S3 refuses, or the S3
# tests of vproxy-transcode could pass with a signing bug.  Independent
# clients (the AWS CLI, curl's own SigV4) show that correct requests pass and
# wrong ones get S3's errors.
use strict;
use warnings;
use File::Temp qw(tempdir);
use HTTP::Tiny;
use IPC::Run qw(run);
use Test::More;
use VproxyTest::S3 qw(random_file same_file);

my $dir = tempdir(CLEANUP => 1);
my $s3 = VproxyTest::S3->start(buckets => ['media']);
my $file = random_file("$dir/object.bin", 10 * 1024 * 1024 + 123);
my $key = 'uploads/m 1/clip+1 (é).mov';

# the AWS CLI, multipart upload and ranged download, passes
ok($s3->aws_put($file, 'media', $key), 'aws s3 cp up through the front');
ok($s3->aws_get('media', $key, "$dir/back.bin"), 'aws s3 cp down');
ok(same_file($file, "$dir/back.bin"), 'same bytes');
my @verified = grep { ($_->{auth} // '') eq 'header' } $s3->requests;
ok(@verified >= 4, 'the requests were signature-checked') or diag explain [ $s3->requests ];
ok((grep { defined $_->{query}{partNumber} } $s3->requests(method => 'PUT')) >= 2,
	'the upload was multipart');
is_deeply([ $s3->multipart_uploads('media') ], [], 'no unfinished upload after it');

# wrong credentials
{
	local $s3->{secret_access_key} = 'not-the-secret';
	my $r = $s3->aws('s3api', 'get-object', '--bucket', 'media', '--key', $key, "$dir/x");
	isnt($r->{exit}, 0, 'a wrong secret fails');
	like($r->{stderr}, qr/SignatureDoesNotMatch/, 'with SignatureDoesNotMatch');
}
{
	local $s3->{access_key_id} = 'AKIANOBODY';
	my $r = $s3->aws('s3api', 'get-object', '--bucket', 'media', '--key', $key, "$dir/x");
	like($r->{stderr}, qr/InvalidAccessKeyId/, 'an unknown key id: InvalidAccessKeyId');
}
my $anonymous = HTTP::Tiny->new->get($s3->endpoint . '/media/uploads/x');
is($anonymous->{status}, 403, 'an unsigned request: 403');
like($anonymous->{content}, qr{<Code>AccessDenied</Code>}, 'AccessDenied');

# curl's SigV4 signs the path as it sends it: fine when the path is encoded as
# S3 canonicalises it, refused when it is not ('+' must be %2B)
my $empty_sha = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
sub curl_signed
{
	my ($path, @extra) = @_;
	my ($out, $err) = ('', '');
	run([ 'curl', '-s', '-o', '-', '-w', '\n%{http_code}', '--aws-sigv4',
			'aws:amz:' . $s3->region . ':s3',
			'--user', $s3->access_key_id . ':' . $s3->secret_access_key,
			'-H', "x-amz-content-sha256: $empty_sha", @extra, $s3->endpoint . $path ],
		'>', \$out, '2>', \$err);
	my ($body, $status) = $out =~ /\A(.*)\n(\d+)\z/s;
	return ($status // 0, $body // '');
}
my ($status, $body) = curl_signed('/media/uploads/m%201/clip%2B1%20%28%C3%A9%29.mov', '-I');
is($status, 200, 'curl --aws-sigv4 HEAD with a canonical path passes');
($status, $body) = curl_signed('/media/uploads/m%201/clip+1%20%28%C3%A9%29.mov');
is($status, 403, 'a path signed with a raw "+" is refused, as S3 does');
like($body, qr{<Code>SignatureDoesNotMatch</Code>}, 'SignatureDoesNotMatch');
($status, $body) = curl_signed('/media/no-such-key');
is($status, 404, 'a signed GET of a missing key reaches s3rver');
like($body, qr{<Code>NoSuchKey</Code>}, 'NoSuchKey');

# a body that does not match its signed SHA-256 is refused and not stored
my ($out, $err) = ('', '');
run([ 'curl', '-s', '-o', '-', '-w', '\n%{http_code}', '--aws-sigv4',
		'aws:amz:' . $s3->region . ':s3',
		'--user', $s3->access_key_id . ':' . $s3->secret_access_key,
		'-H', "x-amz-content-sha256: $empty_sha", '-X', 'PUT', '--data-binary', 'not empty',
		$s3->endpoint . '/media/tampered' ], '>', \$out, '2>', \$err);
like($out, qr{XAmzContentSHA256Mismatch.*\n400\z}s, 'a body not matching its hash: 400');
($status) = curl_signed('/media/tampered', '-I');
is($status, 404, 'and nothing was stored');

# presigned URLs from the AWS CLI: valid, tampered, expired
my $presign = $s3->aws('s3', 'presign', "s3://media/$key", '--expires-in', '2');
chomp(my $url = $presign->{stdout});
like($url, qr/X-Amz-Signature=/, 'aws s3 presign');
my $fetched = HTTP::Tiny->new->get($url);
is($fetched->{status}, 200, 'a presigned URL works');
is(length($fetched->{content}), -s $file, 'and gives the object');
(my $tampered = $url) =~ s/(X-Amz-Signature=)([0-9a-f])/$1 . ($2 eq 'a' ? 'b' : 'a')/e;
is(HTTP::Tiny->new->get($tampered)->{status}, 403, 'a tampered presigned URL: 403');
(my $other_key = $url) =~ s{/uploads/}{/uploadz/};
is(HTTP::Tiny->new->get($other_key)->{status}, 403, 'a presigned URL for another key: 403');
sleep 3;
my $expired = HTTP::Tiny->new->get($url);
is($expired->{status}, 403, 'an expired presigned URL: 403');
like($expired->{content}, qr/Request has expired/, 'Request has expired');

# faults fire as many times as asked, on matching requests only
$s3->clear_requests;
$s3->inject_fault(method => 'HEAD', key => 'clip', status => 503, code => 'SlowDown', count => 2);
my $head = $s3->aws('s3api', 'head-object', '--bucket', 'media', '--key', $key);
is($head->{exit}, 0, 'the AWS CLI retries through two 503s');
is_deeply([ map { $_->{status} } $s3->requests(method => 'HEAD') ], [ 503, 503, 200 ],
	'two faults, then the real answer');

$s3->stop;
done_testing();
