# A split proxy on local-directory storage with two in-server workers: a
# source of a few minutes with white flashes and beeps at known times, split
# into 10 s segments, against `vproxy-transcode proxy` of the same source:
# the same frames at the same times, flashes on the same frames, beeps at
# the same times, SSIM against the source no worse overall (in the worst
# second within 0.003), the size within 6%, the same thumbnail, one NOTIFY,
# and no object left but the original, the proxy and the thumbnail.
use strict;
use warnings;
use Digest::SHA;
use File::Compare;
use PostgreSQL::Test::Utils;
use Test::More;
use VproxyTest::Cluster;
use VproxyTest::Media;
use VproxyTest::Split;

my $seconds = 150;
my $source = VproxyTest::Split::source(seconds => $seconds);
my $dir = PostgreSQL::Test::Utils::tempdir();
my $single = "$dir/single.mp4";
my $result = VproxyTest::Media::run_transcode('proxy', $source, $single);
is($result->{status}, 0, 'the single pass') or diag $result->{stderr};
$result = VproxyTest::Media::run_transcode('thumbnail', $source, "$dir/single.jpg");
is($result->{status}, 0, 'the thumbnail of the single pass') or diag $result->{stderr};

my $vp = VproxyTest::Cluster->start(workers => 2,
	settings => { 'vproxy.split_min_duration' => "'60s'", 'vproxy.segment_duration' => "'10s'" });
my $listener = $vp->listen;
my $video = $vp->add_video(file => $source, mall_id => 'm1', size => 'auto', checksum => 'auto');
my $job_id = $vp->enqueue($video);
my $job = $vp->wait_for_job($job_id, timeout => 900);
is($job->{status}, 'completed', 'the split proxy completed') or diag explain $job;
is($job->{result_data}{segments}, 15, 'in 15 segments of 10 s');
is_deeply([ sort keys %{ $job->{result_data} } ], [qw(metadata proxy_path segments status thumbnail_path)],
	'result_data as a single pass gives it, with "segments"');
my $storage = $vp->storage_dir;
$vp->check_proxy_job($job_id, $source, sub { "$storage/$_[0]" });

my $proxy = "$storage/$job->{result_data}{proxy_path}";
my ($single_times, $split_times) = map { VproxyTest::Split::frame_times($_) } $single, $proxy;
is(scalar @$split_times, scalar @$single_times, 'as many frames as the single pass (' . @$single_times . ')');
is_deeply($split_times, $single_times, 'at the same times');
my ($single_flashes, $split_flashes) = map { VproxyTest::Split::flash_frames($_) } $single, $proxy;
ok(@$single_flashes >= 3 * int($seconds / $VproxyTest::Split::PERIOD), 'the single pass shows the flashes');
is_deeply($split_flashes, $single_flashes, 'flashes on the same frames');
my ($single_beeps, $split_beeps) = map { VproxyTest::Split::beep_onsets($_) } $single, $proxy;
is(scalar @$split_beeps, int($seconds / $VproxyTest::Split::PERIOD), 'a beep every period');
my @late = grep { abs($split_beeps->[$_] - ($single_beeps->[$_] // -1)) > 0.025 } 0 .. $#$split_beeps;
is("@late", '', 'beep onsets within 25 ms of the single pass');
my ($single_ssim, $split_ssim) = map { VproxyTest::Split::ssim($_, $source) } $single, $proxy;
cmp_ok($split_ssim->{overall}, '>=', $single_ssim->{overall} - 0.0002,
	sprintf('SSIM overall %.5f, single pass %.5f', $split_ssim->{overall}, $single_ssim->{overall}));
# keyframes at other places than the single pass's (each segment starts
# with one, where a scene cut had moved the single pass's) move a few
# frames' quality either way: the worst second is allowed 0.003
cmp_ok($split_ssim->{worst_second}, '>=', $single_ssim->{worst_second} - 0.003,
	sprintf('SSIM in the worst second %.5f, single pass %.5f',
		$split_ssim->{worst_second}, $single_ssim->{worst_second}));
my $ratio = (-s $proxy) / (-s $single);
ok(abs($ratio - 1) <= 0.06, sprintf('size within 6%% of the single pass (%.3f)', $ratio));
is(compare("$storage/$job->{result_data}{thumbnail_path}", "$dir/single.jpg"), 0,
	'the thumbnail the single pass makes');

# the units ran on both workers, beside each other; one NOTIFY, the parent's
my $log = $vp->log_text;
my %workers = map { $_ => 1 } $log =~ /\[(\d+)\] vproxy worker LOG:  vproxy: job \S+ \(proxy_segment\) of video \S+ started/g;
is(scalar keys %workers, 2, 'both workers ran segments');
ok($vp->wait_until("SELECT NOT EXISTS (SELECT FROM vproxy.processing_jobs
	WHERE parent_job_id = '$job_id' AND status IN ('pending', 'running'))", 120), 'the cleanup ran');
my @payloads = $vp->notifications($listener);
is(scalar @payloads, 1, 'one NOTIFY');
is($payloads[0]{job_id}, $job_id, 'for the job the application queued');
is_deeply(VproxyTest::Split::stored_objects($storage),
	[ sort "uploads/m1/" . (split m{/}, $source)[-1], $job->{result_data}{proxy_path},
	  $job->{result_data}{thumbnail_path} ],
	'no object left but the original, the proxy and the thumbnail');
is($vp->value("SELECT count(*) FROM vproxy.processing_jobs WHERE parent_job_id = '$job_id'
	AND params ->> 'unit' = 'video' AND status = 'completed'"), 15, 'fifteen segments completed');

$vp->assert_no_crash;
$vp->node->stop;
done_testing();
