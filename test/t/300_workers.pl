# The launcher and its workers: they start, show in vproxy.workers and
# pg_stat_activity, wake at the commit of an enqueue (not at a rollback),
# apply the failure policy to a missing original, wait quietly without the
# extension or the program, reload settings, and do not block DROP DATABASE
# (which only its owner, outside a transaction block, can make them leave).
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use VproxyTest::Cluster;
use VproxyTest::Media qw(fixture);

my $vp = VproxyTest::Cluster->start(workers => 2);
my $node = $vp->node;

ok($vp->wait_until("SELECT count(*) = 2 FROM vproxy.workers WHERE state = 'idle'"),
	'two workers start and go idle');
is($vp->value("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'vproxy worker' AND datname = 'vproxy'"),
	2, 'the workers are connected to vproxy.database');
ok($vp->wait_until("SELECT count(*) = 2 FROM pg_stat_activity WHERE backend_type = 'vproxy worker' AND state = 'idle'"),
	'idle, pg_stat_activity shows them idle');
is($vp->value("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'vproxy launcher' AND datname IS NULL"),
	1, 'the launcher is connected to no database');

# A rolled-back enqueue wakes nobody and leaves nothing.
my $clip = fixture('cctv_5fps');
my $video = $vp->add_video(file => $clip);
$vp->sql("BEGIN; SELECT vproxy.vproxy_enqueue('$video'); ROLLBACK;");
is($vp->value('SELECT count(*) FROM vproxy.processing_jobs'), 0, 'rolled-back enqueue leaves no job');

# A committed one is picked up at once and completed.
my $job = $vp->enqueue($video, job_type => 'metadata_extraction');
my $row = $vp->wait_for_job($job);
is($row->{status}, 'completed', 'metadata job completed');
is($row->{attempts}, 1, 'in one attempt');
is($vp->value("SELECT width || 'x' || height FROM vproxy.videos WHERE id = '$video'"), '640x360',
	'the video has its metadata');
like($vp->log_text, qr/vproxy: job $job \(metadata_extraction\) of video $video started, attempt 1/,
	'start is logged');
# (the line is written after the commit the test saw)
ok($vp->wait_for_log(qr/vproxy: job $job \(metadata_extraction\) of video $video completed in [\d.]+ s/),
	'finish is logged');

# A missing original (exit 66) fails at once, with the cause on the video.
my $missing = $vp->add_video(key => 'uploads/m1/not-there.mp4');
$job = $vp->enqueue($missing);
$row = $vp->wait_for_job($job);
is($row->{status}, 'failed', 'missing original: job failed');
is($row->{attempts}, 1, 'after one attempt');
my $v = $vp->video($missing);
is($v->{processing_status}, 'failed', 'video failed');
like($v->{processing_error}, qr/not-there\.mp4|not found|no such/i, 'the reason names the missing original');
ok($vp->wait_for_log(qr/vproxy: job $job failed after 1 attempt\(s\)/), 'failure is logged');

# A program that cannot be run: the workers take no job and say so once.
$node->append_conf('postgresql.conf', "vproxy.transcode_path = '/nonexistent/vproxy-transcode'\n");
$node->reload;
ok($vp->wait_until("SELECT count(*) = 2 FROM vproxy.workers WHERE state = 'waiting for vproxy-transcode'"),
	'workers wait for the program after a reload');
$job = $vp->enqueue($video, job_type => 'metadata_extraction');
sleep 1;
is($vp->job($job)->{status}, 'pending', 'no job is taken meanwhile');
my @warnings = $vp->log_text =~ /cannot execute "\/nonexistent\/vproxy-transcode"/g;
is(scalar @warnings, 2, 'said once per worker');
$node->append_conf('postgresql.conf', "vproxy.transcode_path = '"
	  . ($ENV{VPROXY_TRANSCODE} ? File::Spec->rel2abs($ENV{VPROXY_TRANSCODE}) : '') . "'\n");
$node->reload;
is($vp->wait_for_job($job)->{status}, 'completed', 'the job runs once the program is back');

# Only a user who may drop or rename the database pauses the workers, and
# only where the command can run: anybody else's attempt fails without
# touching a running job.
$node->safe_psql('postgres', 'CREATE ROLE intruder LOGIN');
my $slow_clip = VproxyTest::Cluster::make_clip(PostgreSQL::Test::Utils::tempdir() . '/slow.mp4',
	seconds => 6);
my $slow_video = $vp->add_video(file => $slow_clip);
my $slow_job = $vp->enqueue($slow_video, params => { preset => 'veryslow' });
my ($worker, $child) = $vp->wait_for_child($slow_job, min_progress => 0.01);
ok($child, "a job runs (child $child under worker $worker)");

# The child starts from the default signal actions with nothing blocked:
# none of the worker's handlers or ignored signals (SIGUSR2) survive the
# exec; vproxy-transcode itself only ignores SIGPIPE.  Signals 32 and 33
# are glibc's own (no sigaction can change them): whatever the machine's
# first process set for them is inherited by everybody and not looked at.
my %signals = slurp_file("/proc/$child/status") =~ /^(Sig\w+):\s*([0-9a-f]+)$/mg;
my %worker_signals = slurp_file("/proc/$worker/status") =~ /^(Sig\w+):\s*([0-9a-f]+)$/mg;
my $glibc_signals = 0x3 << 31;
ok(hex($worker_signals{SigIgn}) & (1 << (12 - 1)), 'the worker ignores SIGUSR2 (what must not leak)');
is(hex $signals{SigBlk}, 0, 'the child blocks no signal');
is(sprintf('%x', hex($signals{SigIgn}) & ~$glibc_signals), sprintf('%x', 1 << (13 - 1)),
	'the child ignores SIGPIPE only');
my ($ret, $out, $err) = $node->psql('postgres', 'DROP DATABASE vproxy',
	extra_params => [ '-U', 'intruder' ], timeout => 60);
like($err, qr/must be owner of database vproxy/, 'a non-owner cannot DROP DATABASE vproxy');
($ret, $out, $err) = $node->psql('postgres', 'ALTER DATABASE vproxy RENAME TO vproxy_stolen',
	extra_params => [ '-U', 'intruder' ], timeout => 60);
like($err, qr/must be owner of database vproxy/, 'nor rename it');
($ret, $out, $err) = $node->psql('postgres', "BEGIN;\nDROP DATABASE vproxy;\nROLLBACK;", timeout => 60);
like($err, qr/DROP DATABASE cannot run inside a transaction block/,
	'the owner cannot DROP DATABASE in a transaction block');
ok(VproxyTest::Cluster::process_alive($child), 'the running child was not stopped');
is($vp->value("SELECT pid FROM vproxy.workers WHERE job_id = '$slow_job'"), $worker,
	'its worker still runs the job');
my $slow_row = $vp->wait_for_job($slow_job);
is($slow_row->{status}, 'completed', 'the job completed');
is($slow_row->{attempts}, 1, 'in its first attempt');
unlike($vp->log_text, qr/job $slow_job handed back/, 'the job was never handed back');

# DROP DATABASE is not blocked by the workers; they wait for the database
# and the extension, then come back.
($ret, $out, $err) = $node->psql('postgres', 'DROP DATABASE vproxy', timeout => 60);
is($ret, 0, 'DROP DATABASE vproxy succeeds with workers running') or diag($err);
ok($vp->wait_until("SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'vproxy worker'",
		30, 'postgres'),
	'no worker left');
$node->safe_psql('postgres', 'CREATE DATABASE vproxy');
sleep 1;
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'vproxy worker'"),
	0, 'no worker without the extension');
$node->safe_psql('vproxy', 'CREATE EXTENSION vproxy');
ok($vp->wait_until("SELECT count(*) = 2 FROM vproxy.workers WHERE state = 'idle'", 30),
	'CREATE EXTENSION brings the workers back at once');
$video = $vp->add_video(file => $clip);
$job = $vp->enqueue($video, job_type => 'metadata_extraction');
is($vp->wait_for_job($job)->{status}, 'completed', 'and they run jobs');

# DROP EXTENSION while the workers idle: they leave quietly, and come back.
$vp->sql('DROP EXTENSION vproxy');
ok($vp->wait_until("SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'vproxy worker'",
		30, 'postgres'),
	'DROP EXTENSION: the workers leave');
$vp->sql('CREATE EXTENSION vproxy');
ok($vp->wait_until("SELECT count(*) = 2 FROM vproxy.workers WHERE state = 'idle'", 30),
	'CREATE EXTENSION: they are back');

# Renaming the database away and back.
($ret, $out, $err) = $node->psql('postgres', 'ALTER DATABASE vproxy RENAME TO vproxy_old', timeout => 60);
is($ret, 0, 'ALTER DATABASE RENAME is not blocked') or diag($err);
$node->safe_psql('postgres', 'ALTER DATABASE vproxy_old RENAME TO vproxy');
ok($vp->wait_until("SELECT count(*) = 2 FROM vproxy.workers WHERE state = 'idle'", 30),
	'the workers return when the name does');

my $log = $vp->log_text;
my @launches = $log =~ /vproxy launcher started/g;
is(scalar @launches, 1, 'the launcher started once');
my @waits = $log =~ /extension vproxy is not installed/g;
ok(@waits <= 3, 'waiting for the extension is not spammed');
$vp->assert_no_crash;
$node->stop;
done_testing();
