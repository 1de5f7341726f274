# One writer per video: two proxy jobs and a reprocess queued for the same
# video at once, two workers.  They run one after another (never two at a
# time), and the stored proxy and thumbnail are those the video row and the
# last job's result_data describe (size and SHA-256 compared), made with
# that job's parameters.  Meanwhile other videos' jobs use the free worker.
use strict;
use warnings;
use Digest::SHA;
use JSON::PP;
use PostgreSQL::Test::Utils;
use Test::More;
use VproxyTest::Cluster;
use VproxyTest::Media qw(fixture ffprobe_json video_stream);

my $scratch = PostgreSQL::Test::Utils::tempdir();
my $vp = VproxyTest::Cluster->start(workers => 2);
my $clip = VproxyTest::Cluster::make_clip("$scratch/clip.mp4", seconds => 8);
my $video = $vp->add_video(file => $clip);
my $other = $vp->add_video(file => fixture('vp9_opus_webm'), mall_id => 'm2');

# all at once, in one transaction: same priority, same run_at and created_at
my @jobs = split /\n/, $vp->sql("BEGIN;
	SELECT vproxy.vproxy_enqueue('$video', params => '{\"height\": 160}');
	SELECT vproxy.vproxy_enqueue('$video', params => '{\"height\": 240}');
	SELECT vproxy.vproxy_reprocess('$video', '{\"height\": 320, \"thumbnail_width\": 200}');
	SELECT vproxy.vproxy_enqueue('$other');
	COMMIT;");
is(scalar @jobs, 4, 'four jobs queued');
my $other_job = pop @jobs;
my @rows = map { $vp->wait_for_job($_, timeout => 300) } @jobs, $other_job;
is($_->{status}, 'completed', "job $_->{id} completed") for @rows;
pop @rows;

# one after another: each starts after the previous one ended
@rows = sort { $a->{started_at} cmp $b->{started_at} } @rows;
for my $i (1 .. $#rows)
{
	is($vp->value("SELECT " . VproxyTest::Cluster::quote($rows[$i]{started_at}) . "::timestamptz >= "
			  . VproxyTest::Cluster::quote($rows[ $i - 1 ]{completed_at}) . "::timestamptz"),
		't', "job $i started after job " . ($i - 1) . ' ended');
}
my $overlapping = $vp->value("SELECT count(*) FROM vproxy.processing_jobs a JOIN vproxy.processing_jobs b
	ON a.video_id = b.video_id AND a.id < b.id
	WHERE a.video_id = '$video' AND a.started_at < b.completed_at AND b.started_at < a.completed_at");
is($overlapping, '0', 'no two jobs of the video ran at the same time');
is($vp->value("SELECT count(*) FROM vproxy.processing_jobs j1 JOIN vproxy.processing_jobs j2
	ON j1.video_id <> j2.video_id
	WHERE j1.id = '$other_job' AND j2.video_id = '$video'
	  AND j1.started_at < j2.completed_at AND j2.started_at < j1.completed_at") > 0 ? 1 : 0,
	1, "another video's job ran beside them on the free worker");

# the stored files are those of the last run, as the row and its result say
my $last = $rows[-1];
my $result = $last->{result_data};
my $row = $vp->video($video);
is($row->{proxy_path}, $result->{proxy_path}, 'the video row names the last job\'s proxy');
is($row->{thumbnail_path}, $result->{thumbnail_path}, 'and its thumbnail');
my $proxy = $vp->storage_dir . '/' . $row->{proxy_path};
my $thumbnail = $vp->storage_dir . '/' . $row->{thumbnail_path};
is(-s $proxy, $result->{metadata}{proxy}{file_size_bytes}, 'stored proxy size = last result');
is(Digest::SHA->new(256)->addfile($proxy)->hexdigest, $result->{metadata}{proxy}{sha256},
	'stored proxy SHA-256 = last result');
is(-s $thumbnail, $result->{metadata}{thumbnail}{file_size_bytes}, 'stored thumbnail size = last result');
is(Digest::SHA->new(256)->addfile($thumbnail)->hexdigest, $result->{metadata}{thumbnail}{sha256},
	'stored thumbnail SHA-256 = last result');
my $height = $last->{params}{height};
is(video_stream(ffprobe_json($proxy))->{height}, $height, "the stored proxy is ${height}p as its job asked");
is($result->{metadata}{proxy}{height}, $height, 'as its result says');
is($row->{processing_status}, 'completed', 'the video is completed');
my %sha = map { $_->{result_data}{metadata}{proxy}{sha256} => 1 } @rows;
is(scalar keys %sha, 3, 'the three runs made three different proxies (the comparison means something)');

$vp->assert_no_crash;
done_testing();
