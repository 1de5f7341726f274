# The whole pipeline on local-directory storage with two workers: real-world
# clips queued at once all complete exactly once, rows agree with ffprobe,
# outputs sit at the default keys, every NOTIFY arrives; a garbage upload
# and a wrong checksum fail after one attempt; the server never restarts.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use VproxyTest::Cluster;
use VproxyTest::Media qw(fixture bad_input);

my $vp = VproxyTest::Cluster->start(workers => 2);
my $listener = $vp->listen;

my @clips = qw(phone_rotated vp9_opus_webm mpeg4_mp3_avi anamorphic_interlaced_ts cctv_5fps);
my (%original, %job_of);
for my $clip (@clips)
{
	$original{$clip} = fixture($clip);
	my $video = $vp->add_video(file => $original{$clip}, mall_id => 'mall-7', size => 'auto');
	$job_of{$clip} = $vp->enqueue($video);
}
# and the failures, in the same queue
my ($garbage) = bad_input('random_bytes');
my $garbage_video = $vp->add_video(file => $garbage, mall_id => 'mall-7');
my $garbage_job = $vp->enqueue($garbage_video);
my $mismatch_video = $vp->add_video(file => fixture('cctv_5fps'), key => 'uploads/mall-7/mismatch.mp4',
	checksum => 'ab' x 32);
my $mismatch_job = $vp->enqueue($mismatch_video);

for my $job (values %job_of, $garbage_job, $mismatch_job)
{
	$vp->wait_for_job($job);
}

# a thumbnail job at another time refreshes the thumbnail only
my $thumb_video = $vp->value("SELECT video_id FROM vproxy.processing_jobs WHERE id = '$job_of{phone_rotated}'");
my $thumb_job = $vp->enqueue($thumb_video, job_type => 'thumbnail_generation',
	params => { timestamp_seconds => 1.5 });
my $thumb = $vp->wait_for_job($thumb_job);
is($thumb->{status}, 'completed', 'thumbnail job completed');
is($thumb->{result_data}{metadata}{thumbnail}{timestamp_seconds}, 1.5, 'at the time asked for');
ok(!exists $thumb->{result_data}{proxy_path}, 'and made no proxy');
is($vp->video($thumb_video)->{thumbnail_path}, "thumbnails/mall-7/$thumb_video.jpg", 'at the default key');
is($vp->video($thumb_video)->{processing_status}, 'completed', 'the video status is left alone');
my $storage = $vp->storage_dir;
for my $clip (@clips)
{
	$vp->check_proxy_job($job_of{$clip}, $original{$clip}, sub { "$storage/$_[0]" });
}

# exactly once: one start line per job, both workers took part
my $log = $vp->log_text;
for my $clip (@clips)
{
	my @starts = $log =~ /job $job_of{$clip} \(proxy_generation\) of video \S+ started/g;
	is(scalar @starts, 1, "$clip: started exactly once");
}
my %workers = map { $_ => 1 } $log =~ /\[(\d+)\] vproxy worker LOG:  vproxy: job \S+ \(proxy_generation\) of video \S+ started/g;
is(scalar keys %workers, 2, 'both workers ran jobs')
  or diag(join "\n", grep { /vproxy (worker|launcher)|postmaster/ && !/statement:/ } split /\n/, $log);

# the garbage upload: failed at once, the reason on the video
my $job = $vp->job($garbage_job);
is($job->{status}, 'failed', 'garbage upload: job failed');
is($job->{attempts}, 1, 'garbage upload: after one attempt');
my $video = $vp->video($garbage_video);
is($video->{processing_status}, 'failed', 'garbage upload: video failed');
ok(length($video->{processing_error} // '') > 10, "garbage upload: reason kept: $video->{processing_error}");
is($video->{processing_error}, $job->{error_message}, 'the video and the job give the same reason');
ok(!-e "$storage/videos/mall-7/proxy/$garbage_video.mp4", 'garbage upload: no proxy left');

# the wrong checksum
$job = $vp->job($mismatch_job);
is($job->{status}, 'failed', 'wrong checksum: job failed');
is($job->{attempts}, 1, 'wrong checksum: after one attempt');
like($vp->video($mismatch_video)->{processing_error}, qr/checksum mismatch/, 'wrong checksum: "checksum mismatch"');

# the NOTIFY of every job, from its ending transaction
my %notified = map { $_->{job_id} => $_ } $vp->notifications($listener);
for my $clip (@clips)
{
	my $n = $notified{ $job_of{$clip} };
	is_deeply($n && [ sort keys %$n ], [qw(job_id job_type status video_id)], "$clip: NOTIFY payload keys");
	is($n && $n->{status}, 'completed', "$clip: NOTIFY says completed");
}
is($notified{$garbage_job} && $notified{$garbage_job}{status}, 'failed', 'garbage upload: NOTIFY says failed');
is($notified{$mismatch_job} && $notified{$mismatch_job}{status}, 'failed', 'wrong checksum: NOTIFY says failed');
is(scalar keys %notified, @clips + 3, 'one NOTIFY per job, no more');

# the status function and the statistics
my $status = $vp->value("SELECT vproxy.vproxy_job_status('$job_of{cctv_5fps}')");
like($status, qr/"status": "completed"/, 'vproxy_job_status says completed');
like($status, qr/"duration_seconds": [\d.]+/, 'with a duration');
is($vp->value("SELECT jobs FROM vproxy.job_statistics WHERE job_type = 'proxy_generation' AND status = 'completed'"),
	scalar @clips, 'job_statistics counts the completed jobs');
is($vp->value('SELECT count(*) FROM vproxy.recent_failures'), 2, 'recent_failures lists the two failures');

$listener->quit;
$vp->assert_no_crash;
$vp->node->stop;
done_testing();
