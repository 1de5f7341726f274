# A split proxy that does not complete, with two in-server workers on
# local-directory storage: cancelled by the application while its segments
# run, and with a segment failing for good (the original turned to garbage
# once planned).  Either way the parent ends once, with one NOTIFY, its
# units stop, and its temporary objects are removed.  First, the job
# runner's deletion of temporary prefixes.
use strict;
use warnings;
use File::Path qw(make_path);
use PostgreSQL::Test::Utils;
use Test::More;
use VproxyTest::Cluster;
use VproxyTest::Job;
use VproxyTest::Media;
use VproxyTest::Split;

# the job runner's deletion empties the temporary prefixes it is given
{
	my $root = PostgreSQL::Test::Utils::tempdir();
	make_path("$root/vproxy-split/p1/1", "$root/vproxy-split/p10/1");
	VproxyTest::Media::write_file("$root/vproxy-split/p1/1/$_", $_) for qw(video-00000.chunk audio.chunk);
	VproxyTest::Media::write_file("$root/vproxy-split/p10/1/video-00000.chunk", 'another run');
	my $r = run_job(job_spec($root, 'uploads/m1/gone.mp4', job_type => 'video_deletion',
		outputs => { proxy_key => 'videos/m1/proxy/v.mp4', thumbnail_key => 'thumbnails/m1/v.jpg' },
		stale_prefixes => ['vproxy-split/p1/1/']));
	is($r->{status}, 0, 'a deletion with temporary prefixes succeeds') or diag $r->{stderr};
	is_deeply($r->{json}{deleted_prefixes}, ['vproxy-split/p1/1/'], 'it says which prefixes it emptied');
	ok(!-e "$root/vproxy-split/p1/1/audio.chunk" && -e "$root/vproxy-split/p10/1/video-00000.chunk",
		'their objects are gone, and no other');
	$r = run_job(job_spec($root, 'uploads/m1/gone.mp4', job_type => 'video_deletion',
		outputs => { proxy_key => 'videos/m1/proxy/v.mp4', thumbnail_key => 'thumbnails/m1/v.jpg' },
		stale_prefixes => ['../up/']));
	is($r->{status}, 64, 'a prefix the key rule refuses is a bad spec');
}

my $source = VproxyTest::Split::source(seconds => 60, size => '320x240');
my $vp = VproxyTest::Cluster->start(workers => 2,
	settings => { 'vproxy.split_min_duration' => "'30s'", 'vproxy.segment_duration' => "'10s'" });
my $listener = $vp->listen;
my $storage = $vp->storage_dir;

# The units of a parent still queued or running.
sub units_left
{
	my ($job) = @_;
	return $vp->value("SELECT count(*) FROM vproxy.processing_jobs
		WHERE parent_job_id = '$job' AND status IN ('pending', 'running')");
}

# Whether the run's temporary prefix is gone and its cleanup completed.
sub cleaned
{
	my ($job) = @_;
	return $vp->wait_until("SELECT EXISTS (SELECT FROM vproxy.processing_jobs WHERE parent_job_id = '$job'
		AND params ->> 'unit' = 'cleanup' AND status = 'completed')", 120)
	  && !-e "$storage/vproxy-split/$job";
}

# cancelled while its segments run
my $video = $vp->add_video(file => $source, key => 'uploads/m1/cancelled.mp4', size => 'auto');
my $job = $vp->enqueue($video);
ok($vp->wait_until("SELECT count(*) >= 2 FROM vproxy.processing_jobs
	WHERE parent_job_id = '$job' AND status = 'running'", 300, undef, 0.02), 'segments running');
is($vp->value("SELECT vproxy.vproxy_cancel('$job')"), 't', 'the parent cancelled');
is($vp->job($job)->{status}, 'cancelled', 'the parent is cancelled');
is(units_left($job), 1, 'its units are stopped, but the cleanup');
ok(cleaned($job), 'the cleanup ran once their leases were over, and removed the temporary objects');
is($vp->video($video)->{processing_status}, 'failed', 'the video has no proxy');

# a segment failing for good
$video = $vp->add_video(file => $source, key => 'uploads/m1/garbage.mp4', size => 'auto', checksum => 'auto');
$job = $vp->enqueue($video);
ok($vp->wait_until("SELECT count(*) > 0 FROM vproxy.processing_jobs WHERE parent_job_id = '$job'", 300, undef, 0.02),
	'planned');
open my $fh, '+<', "$storage/uploads/m1/garbage.mp4" or die "open: $!";
print $fh "\0" x (-s $source);
close $fh;
my $row = $vp->wait_for_job($job, timeout => 300);
is($row->{status}, 'failed', 'the parent failed');
like($row->{error_code}, qr/^(bad_media|checksum_mismatch)$/, "with its unit's code ($row->{error_code})");
like($row->{error_message}, qr/^(segment \d+ of 6|the audio|the check of the original) of the split proxy failed: /,
	"and cause: $row->{error_message}");
ok(cleaned($job), 'the temporary objects are removed');
is(units_left($job), 0, 'no unit left');
is($vp->value("SELECT count(*) FROM vproxy.processing_jobs WHERE parent_job_id = '$job' AND status = 'failed'"), 1,
	'one unit failed, the others were stopped');
like($vp->video($video)->{processing_error}, qr/of the split proxy failed/, 'the video has the cause');

my @payloads = $vp->notifications($listener);
is(scalar @payloads, 2, 'one NOTIFY per parent, none for the units');
is_deeply([ map { $_->{status} } @payloads ], [qw(cancelled failed)], 'cancelled, then failed');
is_deeply([ grep { !m{^uploads/} } @{ VproxyTest::Split::stored_objects($storage) } ], [],
	'nothing stored but the uploads');

$vp->assert_no_crash;
$vp->node->stop;
done_testing();
