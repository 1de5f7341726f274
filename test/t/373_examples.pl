# The example applications of examples/ run end to end against the test S3
# server with two workers: Python (psycopg 3) and Node.js (node-postgres).
# Each inserts a video, uploads it through its presigned PUT URL, queues,
# waits for the NOTIFY, fetches the proxy through its presigned URL (its
# SHA-256 equals the job's result), deletes the video and hears that too;
# afterwards no object and no row of the video is left.  An upload or a
# deletion the storage refuses ends each with a non-zero exit, and a
# deletion that failed is never printed as done.
use strict;
use warnings;
use File::Basename qw(dirname);
use File::Spec;
use IPC::Run ();
use JSON::PP;
use PostgreSQL::Test::Utils;
use Test::More;
use VproxyTest::Cluster;
use VproxyTest::Media qw(fixture);
use VproxyTest::S3;

my $examples = File::Spec->rel2abs(dirname(__FILE__) . '/../../examples');
my $s3 = VproxyTest::S3->start(buckets => ['media']);
my $vp = VproxyTest::Cluster->start(workers => 2, storage => $s3->storage_spec('media', 'apps'));
my $node = $vp->node;

# Run an example; its steps (decoded JSON lines) and exit status.
sub run_example
{
	my (@cmd) = @_;
	local $ENV{PGHOST} = $node->host;
	local $ENV{PGPORT} = $node->port;
	local $ENV{PGDATABASE} = 'vproxy';
	local $ENV{PGUSER} = 'postgres';
	IPC::Run::run(\@cmd, '<', \'', '>', \my $out, '2>', \my $err, IPC::Run::timeout(600));
	my @steps = map { decode_json($_) } grep { /^\{/ } split /\n/, $out;
	diag("@cmd: $err") if $?;
	return ($? >> 8, @steps);
}

# What every run must show.
sub check_run
{
	my ($name, $exit, @steps) = @_;
	my %step = map { $_->{step} => $_ } @steps;
	is($exit, 0, "$name: exit 0");
	is_deeply([ map { $_->{step} } @steps ],
		[qw(inserted uploaded enqueued notified urls fetched deleting deleted)], "$name: every step");
	my $video = $step{inserted}{video_id};
	is($step{notified}{payload}{status}, 'completed', "$name: NOTIFY of the completed proxy job");
	like($step{urls}{proxy_url}, qr{^http://127\.0\.0\.1:\d+/media/apps/videos/example-mall/proxy/\Q$video\E\.mp4\?.*X-Amz-Signature=},
		"$name: a presigned proxy URL");
	like($step{urls}{thumbnail_url}, qr{/media/apps/thumbnails/example-mall/\Q$video\E\.jpg\?}, "$name: and thumbnail URL");
	is($step{fetched}{proxy_sha256}, $step{fetched}{result_sha256}, "$name: the proxy fetched is the one the job made");
	cmp_ok($step{fetched}{thumbnail_bytes}, '>', 0, "$name: the thumbnail fetched");
	is_deeply($step{deleted}{payload}, { job_id => $step{deleting}{job_id}, video_id => $video,
		job_type => 'video_deletion', status => 'completed' }, "$name: NOTIFY of the deletion");
	is($vp->value("SELECT count(*) FROM vproxy.videos WHERE id = '$video'"), '0', "$name: the row is gone");
	my $r = $s3->aws('s3api', 'list-objects-v2', '--bucket', 'media', '--output', 'json');
	my @left = $r->{stdout} =~ /\S/ ? map { $_->{Key} } @{ decode_json($r->{stdout})->{Contents} // [] } : ();
	is_deeply([ grep { index($_, $video) >= 0 || m{/uploads/example-mall/} } @left ], [],
		"$name: no object of the video is left");
}

my $clip = fixture('vp9_opus_webm');
my %example = (
	python => [ '/usr/bin/python3', "$examples/python/vproxy_example.py" ],
	node => [ 'node', "$examples/node/vproxy_example.js" ]);
check_run('python', run_example(@{ $example{python} }, '--file', $clip));
ok(-d "$examples/node/node_modules/pg", 'node-postgres is installed (test/install-deps runs npm ci in examples/node)');
check_run('node', run_example(@{ $example{node} }, '--file', $clip));

# A step that fails stops the example with a non-zero exit, and a deletion
# that did not complete is never reported as done.  Each case with a mall of
# its own, so that no key is shared with another run.
for my $name (qw(python node))
{
	$s3->inject_fault(method => 'PUT', key => "uploads/$name-upload-refused/", status => 403,
		code => 'AccessDenied', message => 'Access Denied', count => -1);
	my ($exit, @steps) = run_example(@{ $example{$name} }, '--file', $clip, '--mall', "$name-upload-refused");
	isnt($exit, 0, "$name: a refused upload exits non-zero");
	is_deeply([ map { $_->{step} } @steps ], ['inserted'], "$name: and stops after the insert");
	$s3->clear_faults;

	# every way of deleting an object refused: one by one, or in batches
	$s3->inject_fault(method => 'DELETE', status => 403, code => 'AccessDenied',
		message => 'Access Denied', count => -1);
	$s3->inject_fault(method => 'POST', query => { delete => undef }, status => 403,
		code => 'AccessDenied', message => 'Access Denied', count => -1);
	($exit, @steps) = run_example(@{ $example{$name} }, '--file', $clip, '--mall', "$name-delete-refused");
	$s3->clear_faults;
	my %step = map { $_->{step} => $_ } @steps;
	isnt($exit, 0, "$name: a deletion that fails exits non-zero");
	is_deeply([ map { $_->{step} } @steps ],
		[qw(inserted uploaded enqueued notified urls fetched deleting delete_failed)],
		"$name: and says delete_failed, never deleted");
	is($step{delete_failed}{payload}{status}, 'failed', "$name: with the failed deletion's NOTIFY");
	my $video = $step{inserted}{video_id};
	is($vp->value("SELECT processing_status FROM vproxy.videos WHERE id = '$video'"), 'deleting',
		"$name: the video is still there, being deleted");
}

$vp->assert_no_crash;
done_testing();
