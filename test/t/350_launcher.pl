# The launcher and the workers' lives: a launcher terminated or failing by
# hand comes back and adopts the workers still running (never two workers
# per slot, the running job undisturbed); workers ignore the application's
# database settings (read-only, serializable, statement timeout); after a
# crash-restart the jobs of the dead workers are taken over at once.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use VproxyTest::Cluster;

my $vp = VproxyTest::Cluster->start(workers => 2);
my $node = $vp->node;
my $clip = VproxyTest::Cluster::make_clip(PostgreSQL::Test::Utils::tempdir() . '/long.mp4', seconds => 8);
my %slow = (params => { preset => 'veryslow' });
my $worker;

sub launcher_pid
{
	return $vp->value("SELECT pid FROM pg_stat_activity WHERE backend_type = 'vproxy launcher'");
}

sub worker_pids
{
	return join ',', split /\n/,
	  $vp->sql("SELECT pid FROM pg_stat_activity WHERE backend_type = 'vproxy worker' ORDER BY pid");
}

# The launcher is replaced by a new one; the worker processes stay the same
# ones, and for a while after, no third one appears.
sub launcher_comes_back
{
	my ($how, $old_launcher, $workers, $offset) = @_;
	ok($vp->wait_until("SELECT count(*) = 1 FROM pg_stat_activity
			WHERE backend_type = 'vproxy launcher' AND pid <> $old_launcher", 60),
		"$how: the launcher comes back");
	ok($vp->wait_for_log(qr/adopted worker 2 \(process \d+\)/, 10, $offset),
		"$how: it adopts the running workers");
	my $same = 1;
	for (1 .. 20)
	{
		$same &&= worker_pids() eq $workers;
		usleep(100_000);
	}
	ok($same, "$how: still the same two workers ($workers), none started twice");
}

ok($vp->wait_until("SELECT count(*) = 2 FROM vproxy.workers WHERE state = 'idle'"), 'two workers idle');
my $workers = worker_pids();

# pg_terminate_backend of the launcher, while a job runs
my $video = $vp->add_video(file => $clip);
my $job = $vp->enqueue($video, %slow);
$vp->wait_for_child($job);
my $launcher = launcher_pid();
my $offset = length $vp->log_text;
$vp->sql("SELECT pg_terminate_backend($launcher)");
launcher_comes_back('terminated', $launcher, $workers, $offset);
my $row = $vp->wait_for_job($job);
is($row->{status}, 'completed', 'the job running meanwhile completed');
is($row->{attempts}, 1, 'undisturbed, in attempt 1');

# an ERROR in the launcher (a cancel) restarts it too
$launcher = launcher_pid();
$offset = length $vp->log_text;
$vp->sql("SELECT pg_cancel_backend($launcher)");
launcher_comes_back('cancelled', $launcher, $workers, $offset);

# the adopted workers are still woken at commit and can be paused
$video = $vp->add_video(file => $clip);
$job = $vp->enqueue($video, job_type => 'metadata_extraction');
is($vp->wait_for_job($job)->{status}, 'completed', 'a job queued after the adoption completes');
my ($ret, $out, $err) = $node->psql('postgres', 'ALTER DATABASE vproxy RENAME TO vproxy_renamed', timeout => 60);
is($ret, 0, 'the adopted workers are stopped for ALTER DATABASE RENAME') or diag($err);
$node->safe_psql('postgres', 'ALTER DATABASE vproxy_renamed RENAME TO vproxy');
ok($vp->wait_until("SELECT count(*) = 2 FROM vproxy.workers WHERE state = 'idle'"),
	'and two workers run again afterwards');
$vp->assert_no_crash;

# the application's settings for its database do not reach the workers
# (this session keeps its own settings through PGOPTIONS)
$vp->sql("ALTER DATABASE vproxy SET default_transaction_read_only = on;
	ALTER DATABASE vproxy SET default_transaction_isolation = 'serializable';
	ALTER DATABASE vproxy SET statement_timeout = '1ms';
	ALTER DATABASE vproxy SET lock_timeout = 0");
$ENV{PGOPTIONS} = '-c default_transaction_read_only=off -c default_transaction_isolation=read\ committed'
  . ' -c statement_timeout=0';
$workers = worker_pids();
$vp->sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'vproxy worker'");
ok($vp->wait_until("SELECT count(*) = 2 FROM vproxy.workers WHERE state = 'idle' AND pid NOT IN ($workers)"),
	'workers restarted under the database settings');
is($vp->value("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'vproxy worker'"), 2,
	'two of them');
my @jobs;
for my $n (1 .. 3)
{
	$video = $vp->add_video(file => $clip, key => "uploads/m1/settings-$n.mp4");
	push @jobs, $vp->enqueue($video, job_type => 'metadata_extraction');
}
is($vp->wait_for_job($_)->{status}, 'completed', 'a job completes under those settings') for @jobs;
unlike($vp->log_text, qr/vproxy worker (ERROR|FATAL)/, 'no worker error');
$vp->sql('ALTER DATABASE vproxy RESET ALL');
delete $ENV{PGOPTIONS};
$vp->assert_no_crash;

# a crash-restart (a server process killed): the dead workers' leases are
# expired by the next workers at once, though the postmaster start time is
# the same and the lease is an hour long
$node->append_conf('postgresql.conf', "vproxy.lease_duration = 3600\nrestart_after_crash = on\n");
$node->reload;
sleep 1;
$video = $vp->add_video(file => $clip);
$job = $vp->enqueue($video, %slow);
($worker) = $vp->wait_for_child($job, min_progress => 0.05);
kill 'KILL', $worker;
ok($vp->wait_until("SELECT status = 'completed' FROM vproxy.processing_jobs WHERE id = '$job'", 90),
	'after a crash-restart the job is taken over and completed without waiting for the lease');
is($vp->job($job)->{attempts}, 2, 'as attempt 2');
like($vp->log_text, qr/terminating any other active server processes/, 'there was a crash-restart');
like($vp->log_text, qr/released the jobs of workers from before the last restart/,
	'the lease of the dead worker was released at start');

$node->stop;
done_testing();
