# vproxy-worker, the queue served over libpq with vproxy.workers = 0, on a
# fake transcode program (the media does not matter here): the documented
# non-superuser role; claims woken by LISTEN; concurrency; the failure
# policy by exit status; cancel within a second; SIGTERM hands jobs back
# without spending an attempt; vproxy.workers shows external workers;
# --once, --poll-interval, a wrong password.
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

# Set how long the fake child of a video runs and how it exits.
sub control
{
	my ($video, $seconds, $exit) = @_;
	open my $fh, '>', "$fake_dir/control/$video" or die $!;
	print $fh "$seconds $exit\n";
	close $fh;
}

# The spec files of the runs of a job: (attempt => spec text).
sub runs_of
{
	my ($job) = @_;
	return map { m{/\Q$job\E\.(\d+)\.\d+$} ? ($1 => slurp_file($_)) : () } glob "$fake_dir/runs/$job.*";
}

my %env = (AWS_ACCESS_KEY_ID => 'AKIDWORKER', AWS_SECRET_ACCESS_KEY => 'secret-of-the-worker',
	AWS_SESSION_TOKEN => 'token-of-the-worker', FAKE_TRANSCODE_DIR => $fake_dir);
$node->safe_psql('vproxy', "ALTER SYSTEM SET vproxy.s3_secret_access_key = 'secret-of-the-server'");
$node->reload;

# --- the role: exactly what an external worker needs
my ($ret, $out, $err) = $node->psql('vproxy', 'SHOW vproxy.s3_secret_access_key',
	extra_params => [ '-U', 'vproxy_worker' ]);
like($err, qr/permission denied|must be superuser/, 'the worker role cannot read the secret setting');
($ret, $out, $err) = $node->psql('vproxy', "SELECT vproxy.vproxy_enqueue(gen_random_uuid())",
	extra_params => [ '-U', 'vproxy_worker' ]);
like($err, qr/permission denied/, 'nor enqueue');
($ret, $out, $err) = $node->psql('vproxy', "SELECT vproxy.vproxy_cancel(gen_random_uuid())",
	extra_params => [ '-U', 'vproxy_worker' ]);
like($err, qr/permission denied/, 'nor cancel');
($ret, $out, $err) = $node->psql('vproxy', "UPDATE vproxy.videos SET proxy_path = 'x'",
	extra_params => [ '-U', 'vproxy_worker' ]);
like($err, qr/permission denied/, 'nor write videos');
($ret, $out, $err) = $node->psql('vproxy', "SELECT count(*) FROM vproxy.processing_jobs",
	extra_params => [ '-U', 'vproxy_worker' ]);
like($err, qr/permission denied/, 'nor read the jobs (and their lease tokens)');
($ret, $out, $err) = $node->psql('vproxy', "SELECT vproxy.worker_checkin('h', 'n', 'host', 1, 1)::text",
	extra_params => [ '-U', 'vproxy_worker' ]);
like($out, qr/"lease_seconds": 10/, 'its check-in says the lease');
unlike($out, qr/secret-of-the-server/, 'and no secret');
($ret, $out, $err) = $node->psql('vproxy', "SELECT vproxy.worker_checkin('h', 'n', 'host', 1, 1, '{bogus}')",
	extra_params => [ '-U', 'vproxy_worker' ]);
like($err, qr/unknown job type "bogus"/, 'a check-in with an unknown job type is refused');
$vp->sql("SELECT vproxy.worker_checkout('h')");

# --- claim, finish and NOTIFY, woken by LISTEN; credentials from the environment
my $w1 = VproxyTest::ExternalWorker->start($vp, name => 'alpha', transcode => $fake, env => \%env,
	args => [ '--concurrency', 2 ]);
ok($w1->wait_for_log(qr/event=worker_start worker=alpha/), 'the worker started');
ok($vp->wait_until("SELECT count(*) = 1 FROM vproxy.workers WHERE kind = 'external' AND name = 'alpha' AND state = 'idle'"),
	'vproxy.workers shows it, idle');
my $listener = $vp->listen;
my @videos = map { $vp->add_video(key => "uploads/m1/clip$_.mp4") } 1 .. 4;
my @jobs = map { $vp->enqueue($_) } @videos;
for my $job (@jobs)
{
	my $row = $vp->wait_for_job($job);
	is("$row->{status} $row->{attempts}", 'completed 1', "job $job completed in attempt 1");
}
my @payloads = $vp->notifications($listener);
for my $job (@jobs)
{
	is(scalar(grep { $_->{job_id} eq $job && $_->{status} eq 'completed' } @payloads), 1,
		"one completion NOTIFY for $job");
}
is($vp->value("SELECT count(*) FROM vproxy.videos WHERE processing_status = 'completed' AND proxy_path LIKE 'videos/m1/proxy/%'"),
	4, 'the videos were finished with the default key template');
my %runs = runs_of($jobs[0]);
like($runs{1}, qr/"access_key_id":"AKIDWORKER"/, 'the child got the access key from the environment');
like($runs{1}, qr/"session_token":"token-of-the-worker"/, 'and the session token');
like($runs{1}, qr/"secret_access_key":"secret-of-the-worker"/, 'and the worker\'s secret');
unlike($runs{1}, qr/secret-of-the-server/, 'never the server\'s');
like($runs{1}, qr/"limits":\{/, 'the spec carries limits');
my $temp = $w1->temp_directory;
like($runs{1}, qr/"temp_directory":"\Q$temp\E"/, 'and the worker\'s temp directory');
my $log = $w1->log_text;
like($log, qr/^time=\S+Z level=info event=job_start worker=alpha job=\Q$jobs[0]\E video=\S+ type=proxy_generation attempt=1$/m,
	'logfmt line at job start');
like($log, qr/event=job_finish worker=alpha job=\Q$jobs[0]\E .* seconds=[\d.]+/, 'and at finish');

# two at once (concurrency 2): both children run together
my @pair = map { $vp->add_video(key => "uploads/m1/pair$_.mp4") } 1 .. 2;
control($_, 3, 0) for @pair;
my @pair_jobs = map { $vp->enqueue($_) } @pair;
ok($vp->wait_until("SELECT count(*) = 2 FROM vproxy.workers WHERE name = 'alpha' AND state = 'running'"),
	'two jobs run at once with --concurrency 2');
$vp->wait_for_job($_) for @pair_jobs;

# --- the failure policy by exit status, the same as the in-server workers'
my $bad = $vp->add_video(key => 'uploads/m1/bad.mp4');
control($bad, 0.1, 65);
my $row = $vp->wait_for_job($vp->enqueue($bad));
is("$row->{status} $row->{attempts}", 'failed 1', 'exit 65 fails at once');
like($row->{error_message}, qr/fake failure with status 65/, 'with the child\'s last line');
my $flaky = $vp->add_video(key => 'uploads/m1/flaky.mp4');
control($flaky, 0.1, 75);
$row = $vp->wait_for_job($vp->enqueue($flaky), timeout => 60);
is("$row->{status} $row->{attempts}", 'failed 3', 'exit 75 is retried up to max_attempts');
like($w1->log_text, qr/level=warning event=job_retry worker=alpha job=$row->{id} .*attempt=1 error=/,
	'a retry is logged');

# --- cancel reaches the child within a second
my $long = $vp->add_video(key => 'uploads/m1/long.mp4');
control($long, 30, 0);
my $long_job = $vp->enqueue($long);
ok($vp->wait_until("SELECT count(*) = 1 FROM vproxy.workers WHERE job_id = '$long_job' AND progress > 0"),
	'the long job runs, its progress shows');
my ($child) = grep { VproxyTest::Cluster::process_alive($_) } VproxyTest::Cluster::children_of($w1->pid);
ok($child, 'its child runs');
my $t0 = time;
$vp->sql("SELECT vproxy.vproxy_cancel('$long_job')");
usleep(20_000) while VproxyTest::Cluster::process_alive($child) && time - $t0 < 10;
my $took = time - $t0;
ok(!VproxyTest::Cluster::process_alive($child), "cancel stopped the child (after ${took}s)");
ok($w1->wait_for_log(qr/event=job_abandoned worker=alpha job=$long_job/), 'the worker wrote nothing');
is($vp->job($long_job)->{status}, 'cancelled', 'the job stays cancelled');

# --- vproxy.job_timeout, read from the database at the worker's check-in
$node->safe_psql('vproxy', "ALTER SYSTEM SET vproxy.job_timeout = 2");
$node->reload;
$vp->wait_until("SELECT current_setting('vproxy.job_timeout') = '2s'");
my $slow = $vp->add_video(key => 'uploads/m1/slow.mp4');
control($slow, 30, 0);
my $slow_job = $vp->enqueue($slow);
$vp->wait_until("SELECT error_message IS NOT NULL FROM vproxy.processing_jobs WHERE id = '$slow_job'", 60);
$row = $vp->job($slow_job);
like($row->{error_message} // '', qr/timed out after 2 s \(vproxy.job_timeout\)/,
	'the job timeout of the database stops the child; the attempt is retried');
$vp->sql("SELECT vproxy.vproxy_cancel('$slow_job')");
$node->safe_psql('vproxy', "ALTER SYSTEM RESET vproxy.job_timeout");
$node->reload;

# --- SIGTERM: the job goes back without spending an attempt; exit 0
my $handed = $vp->add_video(key => 'uploads/m1/handed.mp4');
control($handed, 30, 0);
my $handed_job = $vp->enqueue($handed);
ok($vp->wait_until("SELECT count(*) = 1 FROM vproxy.workers WHERE job_id = '$handed_job'"), 'a job runs');
($child) = VproxyTest::Cluster::children_of($w1->pid);
is($w1->stop, 0, 'SIGTERM: the worker exits 0');
ok(!VproxyTest::Cluster::process_alive($child), 'its child is gone');
$row = $vp->job($handed_job);
is("$row->{status} $row->{attempts}", 'pending 0', 'the job was handed back without spending an attempt');
like($w1->log_text, qr/event=job_released worker=alpha job=$handed_job/, 'logged');
ok($vp->wait_until("SELECT count(*) = 0 FROM vproxy.workers WHERE kind = 'external'"),
	'the stopped worker left vproxy.workers');
control($handed, 0.1, 0);

# --- --poll-interval (no LISTEN) picks jobs up; --once drains, then exits 0
my $poller = VproxyTest::ExternalWorker->start($vp, name => 'poller', transcode => $fake, env => \%env,
	args => [ '--poll-interval', '0.5' ]);
ok($poller->wait_for_log(qr/event=worker_start worker=poller .*listen=no/), 'polling worker started without LISTEN');
$row = $vp->wait_for_job($handed_job);
is("$row->{status} $row->{attempts}", 'completed 1', 'the handed-back job completed in attempt 1');
my $polled_job = $vp->enqueue($vp->add_video(key => 'uploads/m1/polled.mp4'));
$row = $vp->wait_for_job($polled_job);
is($row->{status}, 'completed', 'a new job is picked up by polling');
is($poller->stop, 0, 'the polling worker stops');

my $once = VproxyTest::ExternalWorker->start($vp, name => 'once', transcode => $fake, env => \%env,
	args => [ '--once' ]);
is($once->wait_exit(30), 0, '--once on an empty queue exits 0');
my @batch = map { $vp->enqueue($vp->add_video(key => "uploads/m1/batch$_.mp4")) } 1 .. 3;
$once = VproxyTest::ExternalWorker->start($vp, name => 'once2', transcode => $fake, env => \%env,
	args => [ '--once', '--concurrency', 2 ]);
is($once->wait_exit(60), 0, '--once drains the queue and exits 0');
is($vp->value('SELECT count(*) FROM vproxy.processing_jobs WHERE id IN (' . join(',', map {"'$_'"} @batch)
	  . ") AND status = 'completed'"), 3, 'having done every job');

# --- a wrong password: one clear line and an exit status, no loop
$vp->sql("CREATE ROLE vproxy_pw LOGIN PASSWORD 'right'; GRANT vproxy_worker TO vproxy_pw");
my $hba = $node->data_dir . '/pg_hba.conf';
my $rules = slurp_file($hba);
open my $fh, '>', $hba or die $!;
print $fh "local all vproxy_pw scram-sha-256\n$rules";
close $fh;
$node->reload;
my $wrong = VproxyTest::ExternalWorker->start($vp, name => 'wrong', role => 'vproxy_pw', transcode => $fake,
	env => { %env, PGPASSWORD => 'wrong' });
is($wrong->wait_exit(30), 77, 'a wrong password: exit status 77');
my @lines = split /\n/, $wrong->log_text;
is(scalar @lines, 1, 'one line');
like($lines[0], qr/level=error event=connect_failed sqlstate=28P01 error=".*password authentication failed/,
	'naming the cause, with its SQLSTATE');
my $right = VproxyTest::ExternalWorker->start($vp, name => 'right', role => 'vproxy_pw', transcode => $fake,
	env => { %env, PGPASSWORD => 'right', FAKE_TRANSCODE_DIR => $fake_dir }, args => [ '--once' ]);
is($right->wait_exit(30), 0, 'the right password works (member of the worker role)');

$vp->assert_no_crash;
done_testing();
