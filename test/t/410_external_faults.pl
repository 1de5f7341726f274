# vproxy-worker under faults, on a fake transcode program: kill -9 of a
# worker mid-job (its child dies with it; the other worker takes the job
# after the lease and completes it on attempt 2), pg_terminate_backend of a
# worker's connection and a fast restart of the server mid-job, within the
# lease's fence (the job completes on attempt 1), and fencing: a worker cut
# off while its lease is taken over kills its child and writes nothing when
# it comes back.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use VproxyTest::Cluster;
use VproxyTest::ExternalWorker;

my $vp = VproxyTest::Cluster->start(workers => 0);
my $node = $vp->node;
my ($fake, $fake_dir) = VproxyTest::ExternalWorker::fake_transcode();
VproxyTest::ExternalWorker::create_role($vp, 'vproxy_worker');
my %env = (FAKE_TRANSCODE_DIR => $fake_dir);
my $listener = $vp->listen;

# Set how long the fake child of a video runs.
sub control
{
	my ($video, $seconds) = @_;
	open my $fh, '>', "$fake_dir/control/$video" or die $!;
	print $fh "$seconds 0\n";
	close $fh;
}

# A worker named $name.
sub worker
{
	my ($name) = @_;
	my $w = VproxyTest::ExternalWorker->start($vp, name => $name, transcode => $fake, env => \%env);
	$w->wait_for_log(qr/event=worker_start/) or die "worker $name did not start";
	return $w;
}

# The worker (of those given) that holds the job, once its child runs; and that child.
sub holder_of
{
	my ($job, @workers) = @_;
	my $deadline = time + 60;
	while (time < $deadline)
	{
		my $holder = $vp->value("SELECT lease_holder FROM vproxy.processing_jobs WHERE id = '$job' AND status = 'running'") // '';
		for my $w (@workers)
		{
			next unless $holder =~ m{^vproxy-worker \Q${\ $w->name}\E@};
			my ($child) = VproxyTest::Cluster::children_of($w->pid);
			return ($w, $child) if $child;
		}
		usleep(50_000);
	}
	return;
}

# The completion notifications of a job received so far.
sub completions
{
	my ($job) = @_;
	return scalar grep { $_->{job_id} eq $job && $_->{status} eq 'completed' } $vp->notifications($listener);
}

my $alpha = worker('alpha');
my $beta = worker('beta');

# --- kill -9 of the worker mid-job
my $video = $vp->add_video(key => 'uploads/m1/kill.mp4');
control($video, 4);
my $job = $vp->enqueue($video);
my ($victim, $child) = holder_of($job, $alpha, $beta);
ok($victim, 'a worker runs the job, with its child');
kill 'KILL', $victim->pid;
is($victim->wait_exit(10), 128 + 9, 'the worker was killed');
ok(VproxyTest::Cluster::process_gone_within($child, 5), 'its child died with it (PR_SET_PDEATHSIG), no orphan transcode');
my $survivor = $victim == $alpha ? $beta : $alpha;
my $row = $vp->wait_for_job($job, timeout => 60);
is("$row->{status} $row->{attempts}", 'completed 2', 'the other worker took it after the lease: completed on attempt 2');
like($survivor->log_text, qr/event=job_finish worker=${\ $survivor->name} job=$job .*attempt=2/, 'by the survivor');
is(completions($job), 1, 'one completion NOTIFY');
my $gamma = worker('gamma');

# --- pg_terminate_backend of the worker's connection mid-job
$video = $vp->add_video(key => 'uploads/m1/terminate.mp4');
control($video, 4);
$job = $vp->enqueue($video);
my ($holder, $holder_child) = holder_of($job, $survivor, $gamma);
ok($holder, 'a worker runs the job');
is($vp->value("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'vproxy-worker ${\ $holder->name}'"),
	1, 'its connection was terminated');
$row = $vp->wait_for_job($job, timeout => 60);
is("$row->{status} $row->{attempts}", 'completed 1', 'the job completed on attempt 1');
like($holder->log_text, qr/event=connection_lost.*\n(.*\n)*.*event=reconnected/, 'the worker reconnected');
like($holder->log_text, qr/event=job_finish worker=${\ $holder->name} job=$job /, 'and finished the job itself');
ok(!VproxyTest::Cluster::process_alive($holder_child), 'its child ended');
is(completions($job), 1, 'one completion NOTIFY');

# --- a fast restart of the server mid-job, within the lease's fence (a
# 60 s lease: 45 s without a renewal; the suite's 10 s lease leaves 3 s)
$node->safe_psql('vproxy', 'ALTER SYSTEM SET vproxy.lease_duration = 60');
$node->reload;
$vp->wait_until("SELECT current_setting('vproxy.lease_duration') = '1min'");
$video = $vp->add_video(key => 'uploads/m1/restart.mp4');
control($video, 5);
$job = $vp->enqueue($video);
($holder, $holder_child) = holder_of($job, $survivor, $gamma);
ok($holder, 'a worker runs the job');
$node->restart;
$vp->{start_time} = $vp->postmaster_start_time;
ok(VproxyTest::Cluster::process_alive($holder_child), 'the child runs on while the server restarts');
$row = $vp->wait_for_job($job, timeout => 60);
is("$row->{status} $row->{attempts}", 'completed 1', 'after a fast restart the job completed on attempt 1');
like($holder->log_text, qr/event=job_finish worker=${\ $holder->name} job=$job /, 'by the same worker');
$listener = $vp->listen;
$node->safe_psql('vproxy', 'ALTER SYSTEM RESET vproxy.lease_duration');
$node->reload;
$vp->wait_until("SELECT current_setting('vproxy.lease_duration') = '10s'");

# --- fencing: cut off while its lease is taken over
$video = $vp->add_video(key => 'uploads/m1/fenced.mp4');
control($video, 40);
$job = $vp->enqueue($video);
($holder, $holder_child) = holder_of($job, $survivor, $gamma);
ok($holder, 'a worker runs the job');
my $other = $holder == $gamma ? $survivor : $gamma;
kill 'STOP', $holder->pid;
# the lease runs out; the other worker claims the job (attempt 2) and runs it quickly
control($video, 1);
ok($vp->wait_until("SELECT attempts = 2 FROM vproxy.processing_jobs WHERE id = '$job'", 60),
	'the lease was taken over while the holder was cut off');
kill 'CONT', $holder->pid;
ok(VproxyTest::Cluster::process_gone_within($holder_child, 10), 'back, the old holder killed its child');
ok($holder->wait_for_log(qr/event=lease_lost worker=${\ $holder->name} job=$job /), 'on the lost lease');
$row = $vp->wait_for_job($job, timeout => 60);
is("$row->{status} $row->{attempts}", 'completed 2', 'the job completed on attempt 2');
like($other->log_text, qr/event=job_finish worker=${\ $other->name} job=$job .*attempt=2/, 'by the new holder');
unlike($holder->log_text, qr/event=job_(finish|retry|failed) worker=\S+ job=$job /, 'the old holder wrote nothing');
is(completions($job), 1, 'one completion NOTIFY');

is($alpha == $victim ? $beta->stop : $alpha->stop, 0, 'survivor stops with 0');
is($gamma->stop, 0, 'gamma stops with 0');
$vp->assert_no_crash;
done_testing();
