# The database comes first: a child runs at vproxy.child_nice with the
# lowest best-effort IO priority, oom_score_adj 1000, the address-space limit
# of vproxy.child_memory_limit and the threads of vproxy.transcode_threads
# (plus the one that reads the lease lines of its stdin), read from /proc
# while its job runs.  A child that needs more memory than
# the limit (an 8K 4:4:4 10-bit upload: 200 MB a frame, at a 300MB limit)
# fails with "out of memory", is retried like any transient failure, and
# leaves the server as it was (same postmaster, no crash restart); the same
# upload completes at the default 4GB.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use VproxyTest::Cluster;
use VproxyTest::Media qw(proxy_threads);

# ASan's shadow memory needs terabytes of address space: no limit there
my $asan = ($ENV{VPROXY_TRANSCODE} // '') =~ /asan/;

my $vp = VproxyTest::Cluster->start(
	workers => 1,
	settings => {
		'vproxy.child_nice' => 13,
		'vproxy.transcode_threads' => 1,
		'vproxy.child_memory_limit' => "'1GB'",
		'vproxy.max_attempts' => 2,
	});
my $node = $vp->node;
my $dir = PostgreSQL::Test::Utils::tempdir();
my $clip = VproxyTest::Cluster::make_clip("$dir/small.mp4", seconds => 8);
# a slow preset keeps the child busy while we look at it
my %slow = (params => { preset => 'veryslow' });

# Field $n (1-based, as in proc(5)) of /proc/$pid/stat.
sub stat_field
{
	my ($pid, $n) = @_;
	my $stat = slurp_file("/proc/$pid/stat");
	$stat =~ s/^.*\) //s;    # the name may hold spaces
	return (split / /, $stat)[ $n - 3 ];
}

# The postmaster's PID, from postmaster.pid.
sub postmaster_pid
{
	return (split /\n/, slurp_file($node->data_dir . '/postmaster.pid'))[0];
}

# The IO priority of a process as ionice prints it.
sub io_priority
{
	my ($pid) = @_;
	my $out = `ionice -p $pid 2>&1`;
	chomp $out;
	return $out;
}

# The soft address-space limit of a process in bytes ('unlimited' if none).
sub address_space_limit
{
	my ($pid) = @_;
	my ($limit) = slurp_file("/proc/$pid/limits") =~ /^Max address space\s+(\S+)/m;
	return $limit;
}

# Look at a running child while its proxy is being made.
sub running_child
{
	my ($video_file) = @_;
	my $video = $vp->add_video(file => $video_file);
	my $job = $vp->enqueue($video, %slow);
	my ($worker, $child) = $vp->wait_for_child($job, min_progress => 0.3);
	my %seen = (job => $job, worker => $worker, child => $child);
	return \%seen unless $child;
	$seen{nice} = stat_field($child, 19);
	$seen{worker_nice} = stat_field($worker, 19);
	$seen{oom} = slurp_file("/proc/$child/oom_score_adj") =~ s/\s+//gr;
	$seen{worker_oom} = slurp_file("/proc/$worker/oom_score_adj") =~ s/\s+//gr;
	$seen{io} = io_priority($child);
	$seen{limit} = address_space_limit($child);
	$seen{threads} = scalar(() = glob "/proc/$child/task/*");
	$seen{stage} = $vp->value("SELECT stage FROM vproxy.workers WHERE pid = $worker");
	return \%seen;
}

# the server's own niceness (the suite may itself run under nice): a child
# already nicer than asked stays so
my $base_nice = stat_field(postmaster_pid(), 19);
sub expected_nice { my ($asked) = @_; return $asked > $base_nice ? $asked : $base_nice }

# the settings as the workers see them
my $seen = running_child($clip);
ok($seen->{child}, "a child runs (pid $seen->{child}, stage $seen->{stage})");
is($seen->{stage}, 'proxy', 'looked at it while it makes the proxy');
is($seen->{nice}, expected_nice(13), "the child runs at vproxy.child_nice (server at nice $base_nice)");
is($seen->{worker_nice}, $base_nice, 'its worker (a server process) keeps the server\'s priority');
is($seen->{oom}, 1000, 'the child is the OOM killer\'s first choice (oom_score_adj 1000)');
isnt($seen->{worker_oom}, 1000, 'its worker is not');
is($seen->{io}, 'best-effort: prio 7', 'the child has the lowest best-effort IO priority');
SKIP:
{
	skip 'ASan builds set no address-space limit', 1 if $asan;
	is($seen->{limit}, 1024 * 1024 * 1024, 'its address space is limited to vproxy.child_memory_limit');
}
is($seen->{threads}, proxy_threads(1) + 1,
	'transcode_threads = 1: the pipeline\'s threads and the decoder\'s, and the lease reader');
is($vp->wait_for_job($seen->{job})->{status}, 'completed', 'the job completes within the limits');

# the settings apply on reload, to the next child
$node->append_conf('postgresql.conf',
	"vproxy.child_nice = 16\nvproxy.transcode_threads = 4\nvproxy.child_memory_limit = 0\n");
$node->reload;
ok($vp->wait_until("SELECT current_setting('vproxy.transcode_threads') = '4'"), 'reloaded');
sleep 1;    # the worker reloads at its next wake-up
$seen = running_child($clip);
is($seen->{nice}, expected_nice(16), 'after a reload the next child runs at the new nice value');
is($seen->{limit}, 'unlimited', 'child_memory_limit = 0: no address-space limit');
is($seen->{threads}, proxy_threads(4) + 1,
	'transcode_threads = 4: the pipeline\'s threads and the decoder\'s, and the lease reader');
is($vp->wait_for_job($seen->{job})->{status}, 'completed', 'that job completes too');

# The state letter of a process (R, S, T for stopped...), '' once gone.
sub state_of
{
	my ($pid) = @_;
	open my $fh, '<', "/proc/$pid/stat" or return '';
	my $line = <$fh> // '';
	return $line =~ /^\d+ \(.*\) (\S) / ? $1 : '';
}

# Whether the process is seen stopped (paused) within $seconds.
sub paused_within
{
	my ($pid, $seconds) = @_;
	my $deadline = time + $seconds;
	while (time < $deadline)
	{
		return 1 if state_of($pid) eq 'T';
		usleep(20_000);
	}
	return 0;
}

# A backend that keeps one CPU busy until cancelled.  The session must outlive
# the cancel (no ON_ERROR_STOP), or quit() may write to a psql already gone.
sub busy_database
{
	my $session = $node->background_psql('vproxy', on_error_stop => 0);
	$session->query_until(qr/burning/, "\\echo burning\nSELECT count(*) FROM generate_series(1, 4000000000) /* burn */;\n");
	return $session;
}

# Cancel the busy backend.
sub quiet_database
{
	my ($session) = @_;
	$vp->sql("SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE '%/* burn */%' AND pid <> pg_backend_pid()");
	$session->quit;
}

# the database is busy: the child steps aside (stopped), and a cancel still
# ends it at once
$node->append_conf('postgresql.conf', "vproxy.child_yield_db_cpu = 10\n");
$node->reload;
sleep 1;
{
	my $video = $vp->add_video(file => $clip);
	my $job = $vp->enqueue($video, %slow);
	my (undef, $child) = $vp->wait_for_child($job, min_progress => 0.1);
	ok($child, 'a child runs');
	my $burner = busy_database();
	ok(paused_within($child, 20), 'while a backend keeps a CPU busy the child is paused (stopped)');
	my $cancelled_at = time;
	is($vp->value("SELECT vproxy.vproxy_cancel('$job')"), 't', 'its job is cancelled');
	my $gone = 0;
	while (time < $cancelled_at + 3)
	{
		last if ($gone = state_of($child) eq '' || state_of($child) eq 'Z');
		usleep(20_000);
	}
	ok($gone, sprintf('the paused child ended at once (%.2f s)', time - $cancelled_at));
	quiet_database($burner);

	# without yielding, the same load never stops it
	$node->append_conf('postgresql.conf', "vproxy.child_yield_db_cpu = 0\n");
	$node->reload;
	ok($vp->wait_until("SELECT current_setting('vproxy.child_yield_db_cpu') = '0'"), 'yielding off');
	sleep 1;
	$video = $vp->add_video(file => $clip);
	$job = $vp->enqueue($video, %slow);
	(undef, $child) = $vp->wait_for_child($job, min_progress => 0.1);
	$burner = busy_database();
	ok(!paused_within($child, 3), 'child_yield_db_cpu = 0: the child is never paused');
	quiet_database($burner);
	is($vp->wait_for_job($job)->{status}, 'completed', 'and its job completes');
}

SKIP:
{
	skip 'ASan builds set no address-space limit', 11 if $asan;

	# a child over the limit: one 8K frame in 4:4:4 10-bit is 200 MB, the
	# libraries alone take about 250 MB of address space
	$node->append_conf('postgresql.conf',
		"vproxy.child_nice = 10\nvproxy.transcode_threads = 1\nvproxy.child_memory_limit = '300MB'\n");
	$node->reload;
	ok($vp->wait_until("SELECT current_setting('vproxy.child_memory_limit') = '300MB'"), 'limit at 300MB');
	sleep 1;
	my $big = "$dir/8k.mp4";
	system('ffmpeg', qw(-nostdin -hide_banner -loglevel error -y -f lavfi -i testsrc2=size=7680x4320:rate=1
		  -t 1 -c:v libx264 -preset ultrafast -pix_fmt yuv444p10le), $big) == 0 or die 'ffmpeg failed';
	my $postmaster = $node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()');
	my $pid_before = postmaster_pid();
	my $video = $vp->add_video(file => $big);
	my $job = $vp->enqueue($video);
	my $row = $vp->wait_for_job($job, timeout => 120);
	is($row->{status}, 'failed', 'over the memory limit: the job failed');
	is($row->{attempts}, 2, 'after the retry the policy allows (max_attempts 2)');
	like($row->{error_message}, qr/out of memory/, "the reason says out of memory: $row->{error_message}");
	like($vp->log_text, qr/job $job attempt 1 failed, will retry: .*out of memory/,
		'the first attempt was retried as a transient failure');
	is(postmaster_pid(), $pid_before,
		'the postmaster PID is unchanged');
	is($node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()'), $postmaster,
		'the server did not restart');
	$vp->assert_no_crash;

	# the limit was the cause: with room the same upload completes
	$node->append_conf('postgresql.conf', "vproxy.child_memory_limit = '4GB'\n");
	$node->reload;
	ok($vp->wait_until("SELECT current_setting('vproxy.child_memory_limit') = '4GB'"), 'limit at 4GB');
	sleep 1;
	$job = $vp->enqueue($video);
	is($vp->wait_for_job($job, timeout => 120)->{status}, 'completed',
		'the same 8K upload completes within the default 4GB');
}

$node->stop;
done_testing();
