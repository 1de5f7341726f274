# Faults in the middle of a job: query cancels sent to the worker (the job
# goes on), kill -9 of the child (retried, completed
# on attempt 2), a fast restart of the server (handed back, completed after
# the restart without spending an attempt), the job timeout, a cancel (the
# child ends within a second), a finish the database fails for a moment
# (offered again), and the death of the postmaster (the child dies too; the
# next life takes the job over at once).  No zombies, and no crash-restart
# of the server except the one we cause.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use VproxyTest::Cluster;

my $vp = VproxyTest::Cluster->start(workers => 1);
my $node = $vp->node;
my $clip = VproxyTest::Cluster::make_clip(PostgreSQL::Test::Utils::tempdir() . '/long.mp4', seconds => 8);
# a slow preset keeps the child busy for a few seconds
my %slow = (params => { preset => 'veryslow' });

# The process group of a process.
sub process_group
{
	my ($pid) = @_;
	my $stat = slurp_file("/proc/$pid/stat");
	$stat =~ s/^.*\) //s;
	return (split / /, $stat)[2];
}

# Wait until the child's process is gone (reaped, not a zombie).
sub gone_within
{
	my ($pid, $seconds) = @_;
	my $deadline = time + $seconds;
	while (time < $deadline)
	{
		return 1 unless VproxyTest::Cluster::process_alive($pid);
		usleep(20_000);
	}
	return 0;
}

# pg_cancel_backend of a worker while its child runs: nothing to cancel
# between its calls, and a cancelled call is tried again; the worker, its
# child and the attempt go on
my $video = $vp->add_video(file => $clip);
my $job = $vp->enqueue($video, %slow);
my ($worker, $child) = $vp->wait_for_child($job);
for (1 .. 10)
{
	$vp->sql("SELECT pg_cancel_backend($worker)");
	usleep(150_000);
}
my $row = $vp->wait_for_job($job);
is($row->{status}, 'completed', 'cancels sent to the worker: the job completed');
is($row->{attempts}, 1, 'in attempt 1');
is($vp->value("SELECT pid FROM pg_stat_activity WHERE backend_type = 'vproxy worker'"), $worker,
	'by the same worker');

# kill -9 of the child: a retry, then success on attempt 2
$video = $vp->add_video(file => $clip);
$job = $vp->enqueue($video, %slow);
($worker, $child) = $vp->wait_for_child($job, min_progress => 0.05);
ok($child, "the child runs (pid $child under worker $worker)");
like($vp->value("SELECT query FROM pg_stat_activity WHERE pid = $worker"),
	qr/^vproxy: proxy_generation job $job of video $video, attempt 1: \d+% \w+/,
	'pg_stat_activity shows the job and its progress');
my $shown = $vp->row('vproxy.workers', "pid = $worker");
ok($shown->{state} eq 'running' && $shown->{job_id} eq $job && $shown->{progress} > 0
	  && length $shown->{stage} && $shown->{filename} eq 'long.mp4',
	"vproxy.workers shows the job: $shown->{state} $shown->{progress} $shown->{stage}");
is(process_group($child), $child, 'the child leads its own process group');
# an upgrade script's DDL on the queue is not blocked by a running job
my ($ret, $out, $err) = $node->psql('vproxy', "SET lock_timeout = '5s';
	ALTER TABLE vproxy.processing_jobs ADD COLUMN upgrade_test int;
	ALTER TABLE vproxy.processing_jobs DROP COLUMN upgrade_test;");
is($ret, 0, 'DDL on processing_jobs goes through while a job runs') or diag($err);
kill 'KILL', $child;
$row = $vp->wait_for_job($job, statuses => ['pending'], timeout => 20);
like($row->{error_message}, qr/killed by signal 9/, 'the attempt failed as killed by signal 9');
$row = $vp->wait_for_job($job);
is($row->{status}, 'completed', 'kill -9: the job completed');
is($row->{attempts}, 2, 'on attempt 2');
is($row->{error_message}, undef, 'no error left on the completed job');
like($vp->log_text, qr/job $job attempt 1 failed, will retry: vproxy-transcode was killed by signal 9/,
	'the retry is logged');
is(scalar(VproxyTest::Cluster::children_of($worker)), 0, 'no child (nor zombie) left under the worker');

# a fast restart mid-job: handed back, completed after the restart
$video = $vp->add_video(file => $clip);
$job = $vp->enqueue($video, %slow);
($worker, $child) = $vp->wait_for_child($job, min_progress => 0.05);
ok($child, 'the child runs before the restart');
$node->restart;
ok(!VproxyTest::Cluster::process_alive($child), 'the child is gone after the restart');
like($vp->log_text, qr/job $job handed back on shutdown, attempt not counted/, 'the job was handed back');
$row = $vp->wait_for_job($job);
is($row->{status}, 'completed', 'fast restart: the job completed after the restart');
is($row->{attempts}, 1, 'the handed-back attempt was not counted');
$vp->{start_time} = $vp->postmaster_start_time;

# the job timeout: the child is killed, the outcome recorded
$node->append_conf('postgresql.conf', "vproxy.job_timeout = 1\nvproxy.max_attempts = 1\n");
$node->reload;
sleep 1;
$video = $vp->add_video(file => $clip);
$job = $vp->enqueue($video, %slow);
($worker, $child) = $vp->wait_for_child($job);
$row = $vp->wait_for_job($job, timeout => 30);
is($row->{status}, 'failed', 'timeout: failed (one attempt allowed)');
like($row->{error_message}, qr/timed out after 1 s/, 'timeout: the reason says so');
like($vp->video($video)->{processing_error}, qr/timed out/, 'timeout: the video says so');
ok(gone_within($child, 10), 'timeout: the child is gone');
$node->append_conf('postgresql.conf', "vproxy.job_timeout = 3600\nvproxy.max_attempts = 3\n");
$node->reload;
sleep 1;

# cancel mid-job: the child ends within a second, the job stays cancelled
my $listener = $vp->listen;
$video = $vp->add_video(file => $clip);
$job = $vp->enqueue($video, %slow);
($worker, $child) = $vp->wait_for_child($job, min_progress => 0.05);
my $cancelled_at = time;
is($vp->value("SELECT vproxy.vproxy_cancel('$job')"), 't', 'vproxy_cancel returns true');
ok(gone_within($child, 1.5), sprintf('cancel: the child is gone within a second (%.2f s)', time - $cancelled_at));
ok($vp->wait_for_log(qr/job $job was cancelled or taken over; its child was stopped/), 'cancel: logged');
$row = $vp->job($job);
is($row->{status}, 'cancelled', 'cancel: the job stays cancelled');
is($vp->video($video)->{processing_status}, 'failed', 'cancel: the video without a proxy is failed');
my ($note) = grep { $_->{job_id} eq $job } $vp->notifications($listener);
is($note && $note->{status}, 'cancelled', 'cancel: NOTIFY says cancelled');
$listener->quit;
ok($vp->wait_until("SELECT state = 'idle' FROM vproxy.workers"), 'the worker is idle again');

# the database fails to take a result for a moment (a cancel, then the
# worker's lock timeout, while the finish waits for the video row the
# application has locked): the result is offered again, and the job is not
# failed for good
$video = $vp->add_video(file => $clip);
$job = $vp->enqueue($video);
($worker) = $vp->wait_for_child($job);
my $locker = $node->background_psql('vproxy');
$locker->query_safe("BEGIN; SELECT 1 FROM vproxy.videos WHERE id = '$video' FOR UPDATE");
ok($vp->wait_until("SELECT count(*) = 1 FROM pg_stat_activity
		WHERE backend_type = 'vproxy worker' AND wait_event_type = 'Lock'"),
	'the finish waits for the video the application locked');
$vp->sql("SELECT pg_cancel_backend($worker)");
ok($vp->wait_for_log(qr/recording the result of job $job failed \(try \d+\), trying again every second: canceling statement due to user request/),
	'the cancelled finish is tried again');
ok($vp->wait_for_log(qr/recording the result of job $job failed \(try \d+\), trying again every second: canceling statement due to lock timeout/),
	'a lock held too long times the finish out, and it is tried again');
$locker->query_safe('COMMIT');
$locker->quit;
$row = $vp->wait_for_job($job);
is($row->{status}, 'completed', 'a finish that failed for a moment completes the job');
is($row->{attempts}, 1, 'in the same attempt');
is($vp->value("SELECT pid FROM pg_stat_activity WHERE backend_type = 'vproxy worker'"), $worker,
	'by the same worker');
$vp->assert_no_crash;

# the postmaster dies: the child dies with its worker; the next life takes
# the job over at once, without waiting for the lease to expire
$node->append_conf('postgresql.conf', "vproxy.lease_duration = 3600\n");
$node->reload;
sleep 1;
$video = $vp->add_video(file => $clip);
$job = $vp->enqueue($video, %slow);
($worker, $child) = $vp->wait_for_child($job, min_progress => 0.05);
$node->kill9;
ok(gone_within($child, 10), 'postmaster killed: the child is gone too');
ok(gone_within($worker, 10), 'and its worker');
sleep 2;    # the other orphaned server processes leave too
$node->start;
$row = $vp->wait_for_job($job, timeout => 60);
is($row->{status}, 'completed', 'the next life of the server completed the job');
is($row->{attempts}, 2, 'as attempt 2');
like($vp->log_text, qr/released the jobs of workers from before the last restart/,
	'the lease of the dead worker was released at start');

$node->stop;
done_testing();
