# A split proxy on S3 storage with vproxy-worker processes (no in-server
# worker): each segment reads only what it needs of the original through
# ranged reads, a worker killed with SIGKILL mid-segment leaves its segment
# to another after the lease, the proxy equals the single pass's frames and
# no temporary object is left in the bucket.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use VproxyTest::Cluster;
use VproxyTest::ExternalWorker;
use VproxyTest::Media;
use VproxyTest::S3;
use VproxyTest::Split;

my $seconds = 80;
my $source = VproxyTest::Split::source(seconds => $seconds, size => '640x360');
my $s3 = VproxyTest::S3->start(buckets => ['media']);
my $vp = VproxyTest::Cluster->start(workers => 0, storage => $s3->storage_spec('media', 'vp'),
	settings => { 'vproxy.split_min_duration' => "'30s'", 'vproxy.segment_duration' => "'10s'" });
VproxyTest::ExternalWorker::create_role($vp, 'vproxy_worker');
my %env = (AWS_ACCESS_KEY_ID => $s3->access_key_id, AWS_SECRET_ACCESS_KEY => $s3->secret_access_key);
my $dir = PostgreSQL::Test::Utils::tempdir();
my $single = "$dir/single.mp4";
is(VproxyTest::Media::run_transcode('proxy', $source, $single)->{status}, 0, 'the single pass');

$s3->aws_put($source, 'media', 'vp/uploads/m1/long.mp4') or die 'upload failed';
my $video = $vp->add_video(key => 'uploads/m1/long.mp4', no_store => 1, size => -s $source);
my $job = $vp->enqueue($video);
my @workers = map { VproxyTest::ExternalWorker->start($vp, name => $_, env => \%env) } qw(east west);

# kill -9 of the worker running a segment
my ($victim, $unit);
for (1 .. 3000)
{
	my $holder = $vp->value("SELECT lease_holder || ' ' || id FROM vproxy.processing_jobs
		WHERE parent_job_id = '$job' AND params ->> 'unit' = 'video' AND status = 'running' LIMIT 1") // '';
	($victim) = grep { $holder =~ m{^vproxy-worker \Q${\ $_->name}\E@} } @workers;
	($unit) = $holder =~ / (\S+)$/;
	last if $victim;
	usleep(20_000);
}
ok($victim, 'a worker runs a segment');
kill 'KILL', $victim->pid;
is($victim->wait_exit(10), 128 + 9, 'that worker was killed');
push @workers, VproxyTest::ExternalWorker->start($vp, name => 'north', env => \%env);
my $row = $vp->wait_for_job($job, timeout => 900);
is($row->{status}, 'completed', 'the split proxy completed');
my $lost = $vp->job($unit);
is("$lost->{status} $lost->{attempts}", 'completed 2', 'the killed segment completed on its second attempt');
is($lost->{attempt_errors}[0]{code}, 'worker_lost', 'its first attempt was lost with the worker');

# the proxy: the single pass's frames at its times
my $fetch = $s3->fetch_tree('media', 'vp');
$vp->check_proxy_job($job, $source, $fetch);
is_deeply(VproxyTest::Split::frame_times($fetch->($row->{result_data}{proxy_path})),
	VproxyTest::Split::frame_times($single), "the single pass's frames at its times");

# each segment read its share of the original (and its keyframe's run-up,
# the encoder's warm-up and cool-down) and the index, and little more: the
# header, the index and the first packets in small blocks, a last block
# past the segment's end
my $size = -s $source;
my $index = $size - VproxyTest::Split::mdat_bytes($source);
my $segments = $vp->sql("SELECT params ->> 'first_slot', params ->> 'next_slot', result_data ->> 'bytes_read'
	FROM vproxy.processing_jobs WHERE parent_job_id = '$job' AND params ->> 'unit' = 'video' ORDER BY 1::int");
for my $line (split /\n/, $segments)
{
	my ($first, $next, $bytes) = split /\|/, $line;
	$next = $seconds * 10 if $next < 0;
	# 2 s of warm-up, 1 s of cool-down, up to 2 s back to the source's keyframe
	my $share = $size * (($next - $first) / 10 + 5) / $seconds;
	cmp_ok($bytes, '<=', 1.15 * $share + $index + 1024 * 1024,
		sprintf('segment from slot %d read %.1f MB of %.1f MB', $first, $bytes / 1e6, $size / 1e6));
}
ok($vp->wait_until("SELECT NOT EXISTS (SELECT FROM vproxy.processing_jobs
	WHERE parent_job_id = '$job' AND status IN ('pending', 'running'))", 120), 'the cleanup ran');
my $listing = $s3->aws('s3', 'ls', '--recursive', 's3://media/vp/');
is($listing->{exit}, 0, 'the bucket listed');
my @left = grep { m{ vp/vproxy-split/} } split /\n/, $listing->{stdout};
is("@left", '', 'no temporary object left in the bucket');

$_->stop for grep { $_ != $victim } @workers;
$vp->assert_no_crash;
$vp->node->stop;
done_testing();
