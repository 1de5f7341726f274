# 50 jobs queued in one transaction with mixed priorities: one worker runs
# them in priority order (then age), each exactly once.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use VproxyTest::Cluster;
use VproxyTest::Media qw(fixture);

my $vp = VproxyTest::Cluster->start(workers => 1);
my $clip = fixture('three_frames');
my $video = $vp->add_video(file => $clip);

# priorities in a scrambled but fixed order, every value 0..9 used
my @priorities = map { ($_ * 7) % 10 } 1 .. 50;
my $sql = "BEGIN;\n";
for my $i (0 .. $#priorities)
{
	# one transaction gives every job the same now(): spread created_at
	# (and run_at) by a millisecond each so that age is defined; params of
	# their own, or the enqueue would return the job queued already
	$sql .= "SELECT vproxy.vproxy_enqueue('$video', 'metadata_extraction', $priorities[$i], "
	  . "'{\"timestamp_seconds\": $i}') AS job \\gset\n"
	  . "UPDATE vproxy.processing_jobs SET created_at = created_at - interval '1 s' + interval '$i ms', "
	  . "run_at = run_at - interval '1 s' + interval '$i ms' WHERE id = :'job';\n";
}
$sql .= "COMMIT;\n";
$vp->sql($sql);

ok($vp->wait_until("SELECT count(*) = 50 FROM vproxy.processing_jobs WHERE status = 'completed'", 120),
	'all 50 jobs completed');
my @run = split /\n/, $vp->sql(
	"SELECT priority || ' ' || attempts || ' ' || id FROM vproxy.processing_jobs ORDER BY started_at, completed_at");
is(scalar @run, 50, '50 jobs ran');
my @ran_priorities = map { (split / /)[0] } @run;
is_deeply(\@ran_priorities, [ sort { $a <=> $b } @priorities ], 'in priority order');
is(scalar(grep { (split / /)[1] != 1 } @run), 0, 'each in one attempt');

# within a priority, oldest first
my @fifo = split /\n/, $vp->sql(
	"SELECT bool_and(ordered) FROM (SELECT created_at >= lag(created_at) OVER (PARTITION BY priority ORDER BY started_at)
	   OR lag(created_at) OVER (PARTITION BY priority ORDER BY started_at) IS NULL AS ordered
	   FROM vproxy.processing_jobs) o");
is($fifo[0], 't', 'oldest first within a priority');

# exactly once: one start line per job in the log
my $log = $vp->log_text;
my %starts;
$starts{$1}++ while $log =~ /vproxy: job (\S+) \(metadata_extraction\) of video \S+ started/g;
is(scalar keys %starts, 50, 'fifty jobs started');
is(scalar(grep { $_ != 1 } values %starts), 0, 'each started exactly once');
$vp->assert_no_crash;
$vp->node->stop;
done_testing();
