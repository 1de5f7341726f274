# Deleting a video with its files: vproxy_delete_video() on S3 with two
# workers.  The objects are gone (the AWS CLI's head-object answers 404),
# the row and its jobs are gone, the NOTIFY arrives and the deletion job's
# status stays readable; a delete while the proxy job runs stops its child
# and leaves no object of the video; a delete during an S3 outage completes
# after it; keys the rules refuse are skipped, reported, and the row goes.
# First, the job runner's video_deletion on its own.
use strict;
use warnings;
use File::Basename qw(dirname);
use File::Path qw(make_path);
use IPC::Run ();
use JSON::PP;
use Time::HiRes qw(sleep time);
use PostgreSQL::Test::Utils;
use Test::More;
use VproxyTest::Cluster;
use VproxyTest::Job;
use VproxyTest::Media qw(fixture);
use VproxyTest::S3;

my $scratch = PostgreSQL::Test::Utils::tempdir();

# --- the job runner: removes every key it is given; idempotent
{
	my $root = "$scratch/files";
	for my $key ('uploads/m1/a b.mp4', 'videos/m1/proxy/v.mp4', 'old/v.mp4')
	{
		make_path(dirname("$root/$key"));
		VproxyTest::Media::write_file("$root/$key", "bytes of $key");
	}
	my $spec = job_spec($root, 'uploads/m1/a b.mp4', job_type => 'video_deletion',
		outputs => { proxy_key => 'videos/m1/proxy/v.mp4', thumbnail_key => 'thumbnails/m1/v.jpg' },
		stale_keys => ['old/v.mp4']);
	my $r = run_job($spec);
	is($r->{status}, 0, 'video_deletion succeeds') or diag $r->{stderr};
	is_deeply($r->{json}, { status => 'success', deleted_keys => [ 'uploads/m1/a b.mp4',
		'videos/m1/proxy/v.mp4', 'thumbnails/m1/v.jpg', 'old/v.mp4' ] }, 'result lists the keys removed');
	ok(!-e "$root/uploads/m1/a b.mp4" && !-e "$root/videos/m1/proxy/v.mp4" && !-e "$root/old/v.mp4",
		'the files are gone');
	is(run_job($spec)->{status}, 0, 'a second run (a retry) succeeds: objects already gone are fine');
	# a key the claim skipped (the rules refuse it) is not in the spec: the
	# others are removed all the same
	VproxyTest::Media::write_file("$root/videos/m1/proxy/v.mp4", 'again');
	delete $spec->{outputs}{thumbnail_key};
	delete $spec->{original};
	$r = run_job($spec);
	is($r->{status}, 0, 'a deletion spec without some keys succeeds') or diag $r->{stderr};
	is_deeply($r->{json}{deleted_keys}, [ 'videos/m1/proxy/v.mp4', 'old/v.mp4' ], 'removing the keys it has');
	ok(!-e "$root/videos/m1/proxy/v.mp4", 'the file is gone');
	$spec->{stale_keys} = ['../outside'];
	$r = run_job($spec);
	is($r->{status}, 64, 'an unsafe key in a deletion spec is refused');
	like($r->{last_error}, qr/unsafe key "stale_keys"/, 'naming the field');
}

my $s3 = VproxyTest::S3->start(buckets => ['media']);
my $vp = VproxyTest::Cluster->start(workers => 2, storage => $s3->storage_spec('media', 'tenant'));
my $listener = $vp->listen;
my $q = \&VproxyTest::Cluster::quote;

# head-object of a key below the prefix: 'found', '404' or the error.
sub head
{
	my ($key) = @_;
	my $r = $s3->aws('s3api', 'head-object', '--bucket', 'media', '--key', "tenant/$key");
	return 'found' if $r->{exit} == 0;
	return $r->{stderr} =~ /\b404\b|Not Found/ ? '404' : $r->{stderr};
}

# Every key of the bucket that names the video (or is its original).
sub objects_of
{
	my ($video, $original) = @_;
	my $r = $s3->aws('s3api', 'list-objects-v2', '--bucket', 'media', '--output', 'json');
	die "list-objects-v2: $r->{stderr}" if $r->{exit} != 0;
	return () unless $r->{stdout} =~ /\S/;
	return grep { index($_, $video) >= 0 || $_ eq "tenant/$original" }
	  map { $_->{Key} } @{ decode_json($r->{stdout})->{Contents} // [] };
}

# A video whose original is uploaded through its presigned PUT URL.
sub video_with_upload
{
	my ($file, $key) = @_;
	my $id = $vp->add_video(key => $key, mall_id => (split m{/}, $key)[1], no_store => 1, size => -s $file);
	my $url = $vp->value("SELECT vproxy.vproxy_upload_url('$id')");
	IPC::Run::run([ 'curl', '-sS', '-g', '-w', '%{http_code}', '-T', $file, $url ],
		'<', \'', '>', \my $status, '2>', \my $err);
	is($status, '200', "original $key uploaded through its presigned URL") or diag $err;
	return $id;
}

# --- delete a processed video: objects, row and jobs gone, NOTIFY, status kept
my $clip = fixture('vp9_opus_webm');
my $v1 = video_with_upload($clip, 'uploads/m1/one clip+1.webm');
my $proxy_job = $vp->enqueue($v1);
is($vp->wait_for_job($proxy_job)->{status}, 'completed', 'the proxy job completes');
my $row = $vp->video($v1);
is(head($_), 'found', "$_ is stored") for $row->{original_path}, $row->{proxy_path}, $row->{thumbnail_path};
my $deletion = $vp->value("SELECT vproxy.vproxy_delete_video('$v1')");
is($vp->wait_for_job($deletion)->{status}, 'completed', 'the deletion job completes');
is(head($_), '404', "head-object of $_: 404")
  for $row->{original_path}, $row->{proxy_path}, $row->{thumbnail_path};
is($vp->value("SELECT count(*) FROM vproxy.videos WHERE id = '$v1'"), '0', 'the video row is gone');
is($vp->value("SELECT count(*) FROM vproxy.processing_jobs WHERE video_id = '$v1' OR id = '$proxy_job'"),
	'0', 'its jobs are gone');
my $status = decode_json($vp->value("SELECT vproxy.vproxy_job_status('$deletion')"));
is($status->{status}, 'completed', 'the deletion job status is still readable');
is($status->{result_data}{video_id}, $v1, 'and names the video');
my @heard = grep { $_->{job_id} eq $deletion } $vp->notifications($listener);
is_deeply(\@heard, [ { job_id => $deletion, video_id => $v1, job_type => 'video_deletion',
	status => 'completed' } ], 'NOTIFY of the completed deletion');

# --- delete while the proxy job runs: its child is stopped, the deletion
# waits for the stopped job's lease, then no object of the video is left
my $long = VproxyTest::Cluster::make_clip("$scratch/long.mp4", size => '1280x720', seconds => 20);
my $v2 = video_with_upload($long, 'uploads/m1/long.mp4');
my $running = $vp->enqueue($v2);
my ($worker, $child) = $vp->wait_for_child($running, min_progress => 0.05);
ok($child, 'the proxy job runs in a child');
$deletion = $vp->value("SELECT vproxy.vproxy_delete_video('$v2')");
my $lease_end = $vp->value("SELECT lease_expires_at FROM vproxy.processing_jobs WHERE id = '$running'");
is($vp->value("SELECT status FROM vproxy.processing_jobs WHERE id = '$running'"), 'cancelled',
	'the proxy job is cancelled at once');
is($vp->value("SELECT processing_status FROM vproxy.videos WHERE id = '$v2'"), 'deleting', 'the video is deleting');
my ($ret, $out, $err) = $vp->node->psql('vproxy', "SELECT vproxy.vproxy_enqueue('$v2')");
like($err, qr/is being deleted/, 'no job can be queued meanwhile');
my $deadline = time + 30;
sleep 0.1 while VproxyTest::Cluster::process_alive($child) && time < $deadline;
ok(!VproxyTest::Cluster::process_alive($child), 'the child of the proxy job is stopped');
my $done = $vp->wait_for_job($deletion);
is($done->{status}, 'completed', 'the deletion completes');
ok($vp->value("SELECT started_at >= " . $q->($lease_end) . " FROM vproxy.processing_jobs WHERE id = '$deletion'") eq 't',
	'it started only once the stopped job\'s lease had expired');
is_deeply([ objects_of($v2, 'uploads/m1/long.mp4') ], [], 'no object of the video is left');
is($vp->value("SELECT count(*) FROM vproxy.videos WHERE id = '$v2'"), '0', 'the row is gone');

# --- delete during an S3 outage: the attempt fails, the job is retried and
# completes after the outage
my $v3 = video_with_upload($clip, 'uploads/m1/three.webm');
$s3->inject_fault(method => 'DELETE', count => -1, status => 503);
$deletion = $vp->value("SELECT vproxy.vproxy_delete_video('$v3')");
ok($vp->wait_until("SELECT attempts >= 1 AND status = 'pending' AND error_message IS NOT NULL
	FROM vproxy.processing_jobs WHERE id = '$deletion'", 120), 'the attempt during the outage fails and is retried');
is(head('uploads/m1/three.webm'), 'found', 'the original is still there during the outage');
$s3->clear_faults;
$done = $vp->wait_for_job($deletion, timeout => 120);
is($done->{status}, 'completed', 'the deletion completes after the outage');
cmp_ok($done->{attempts}, '>=', 2, 'on a later attempt');
is(head('uploads/m1/three.webm'), '404', 'the original is gone');
is($vp->value("SELECT count(*) FROM vproxy.videos WHERE id = '$v3'"), '0', 'the row is gone');

# --- keys the rules refuse (rows written before 1.2.0, or by a superuser):
# the deletion skips them, says so, and the row still goes; another
# tenant's object is left alone
my $other = video_with_upload($clip, 'uploads/m2/other.webm');
my $odd = $vp->value("INSERT INTO vproxy.videos (mall_id, original_path, proxy_path, thumbnail_path)
	VALUES ('m1', 'uploads/m1/../m2/other.webm', 'videos/m2/proxy/x.mp4', 'thumbnails/m1/odd.jpg') RETURNING id");
$deletion = $vp->value("SELECT vproxy.vproxy_delete_video('$odd')");
$done = $vp->wait_for_job($deletion);
is($done->{status}, 'completed', 'a deletion with refused keys completes');
is($vp->value("SELECT count(*) FROM vproxy.videos WHERE id = '$odd'"), '0', 'the row is gone');
is_deeply([ map { $_->{key} } @{ $done->{result_data}{skipped_keys} } ],
	[ 'uploads/m1/../m2/other.webm', 'videos/m2/proxy/x.mp4' ], 'the refused keys are reported as skipped');
like($done->{result_data}{skipped_keys}[1]{reason}, qr/outside the prefixes of tenant m1/, 'with the reason');
is(head('uploads/m2/other.webm'), 'found', 'the other tenant\'s original is untouched');
ok($vp->value("SELECT count(*) = 1 FROM vproxy.videos WHERE id = '$other'"), 'and its row');

$vp->assert_no_crash;
done_testing();
