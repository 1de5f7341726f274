# Retention: with short settings the launcher's pruner removes completed and
# cancelled jobs past vproxy.job_retention and failed ones past
# vproxy.failed_job_retention, and keeps queued and running jobs and the
# newest job of each video; 0 keeps everything; vproxy_prune() does it now
# for a role it is granted to.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use VproxyTest::Cluster;

my $vp = VproxyTest::Cluster->start(workers => 1, settings => {
	# no job runs here: the rows are written by hand
	'vproxy.transcode_path' => "'/nonexistent/vproxy-transcode'",
	'vproxy.job_retention' => '0',
	'vproxy.failed_job_retention' => '0',
});
my $node = $vp->node;

my $video = $vp->add_video(mall_id => 'r1', key => 'uploads/r1/a.mp4');
my $other = $vp->add_video(mall_id => 'r2', key => 'uploads/r2/b.mp4');
# Insert a job of $video_id in $status, created $age seconds ago; its id.
sub job_row
{
	my ($video_id, $status, $age) = @_;
	my $ended = $status =~ /^(completed|failed|cancelled)$/ ? "now() - interval '$age s'" : 'NULL';
	my $run_at = $status eq 'pending' ? "now() + interval '1 day'" : 'now()';
	my $lease = $status eq 'running' ? "gen_random_uuid(), now() + interval '1 day'" : 'NULL, NULL';
	# params of their own: one queued or running job per video, type and params
	return $vp->value("INSERT INTO vproxy.processing_jobs (video_id, status, created_at, completed_at, run_at,
			lease_token, lease_expires_at, params)
		VALUES ('$video_id', '$status', now() - interval '$age s', $ended, $run_at, $lease,
				jsonb_build_object('fps', $age)) RETURNING id");
}
my %job = (
	completed => job_row($video, 'completed', 50),
	cancelled => job_row($video, 'cancelled', 40),
	failed => job_row($video, 'failed', 30),
	running => job_row($video, 'running', 20),
	pending => job_row($video, 'pending', 10),
	newest_of_other => job_row($other, 'completed', 60),
);
my $count = sub { $vp->value("SELECT count(*) FROM vproxy.processing_jobs") };
is($count->(), 6, 'six jobs');

# retention 0 (off): the launcher starts no pruner and nothing goes
sleep 2;
is($count->(), 6, 'retention 0 keeps every job');

# completed and cancelled jobs past 1 s go; the failed one (1 h) stays
my $offset = length $vp->log_text;
$node->append_conf('postgresql.conf', "vproxy.job_retention = 1\nvproxy.failed_job_retention = '1h'\n");
$node->reload;
ok($vp->wait_until("SELECT NOT EXISTS (SELECT FROM vproxy.processing_jobs
		WHERE id IN ('$job{completed}', '$job{cancelled}'))"),
	'completed and cancelled jobs past vproxy.job_retention are removed');
ok($vp->wait_for_log(qr/vproxy: removed 2 ended job\(s\) past their retention/, undef, $offset),
	'the pruner says what it removed');
like($vp->log_text, qr/vproxy pruner/, 'by the launcher\'s pruner');
my %left = map { $_ => 1 } split /\n/, $vp->sql("SELECT id FROM vproxy.processing_jobs");
ok($left{ $job{failed} }, 'the failed job stays (1 h)');
ok($left{ $job{running} } && $left{ $job{pending} }, 'running and pending jobs stay');
ok($left{ $job{newest_of_other} }, 'the newest job of a video stays, whatever its age');

# failed jobs past vproxy.failed_job_retention go too
$node->append_conf('postgresql.conf', "vproxy.failed_job_retention = 1\n");
$node->reload;
ok($vp->wait_until("SELECT NOT EXISTS (SELECT FROM vproxy.processing_jobs WHERE id = '$job{failed}')"),
	'a failed job past vproxy.failed_job_retention is removed');
%left = map { $_ => 1 } split /\n/, $vp->sql("SELECT id FROM vproxy.processing_jobs");
is(scalar(keys %left), 3, 'three jobs left');
ok($left{ $job{running} } && $left{ $job{pending} } && $left{ $job{newest_of_other} },
	'the running, the pending and the newest job of the other video');

# vproxy_prune() now, for a role it is granted to: the newest job of a
# video goes once a newer one exists
$node->append_conf('postgresql.conf', "vproxy.job_retention = 0\nvproxy.failed_job_retention = 0\n");
$node->reload;
my $newer = job_row($other, 'completed', 0);
$vp->sql("CREATE ROLE ops_admin LOGIN; GRANT USAGE ON SCHEMA vproxy TO ops_admin;
	GRANT EXECUTE ON FUNCTION vproxy.vproxy_prune(interval) TO ops_admin");
my ($ret, $out, $err) = $node->psql('vproxy', "SELECT vproxy.vproxy_prune('30 s')", extra_params => [ '-U', 'ops_admin' ]);
is($out, '1', 'vproxy_prune(\'30 s\') by a granted role removed the older job of the other video') or diag($err);
ok(!$vp->value("SELECT count(*) FROM vproxy.processing_jobs WHERE id = '$job{newest_of_other}'"),
	'the job that is no longer the newest is gone');
($ret, $out, $err) = $node->psql('vproxy', "SELECT vproxy.vproxy_prune()", extra_params => [ '-U', 'ops_admin' ]);
is($out, '0', 'vproxy_prune() with retention 0 removes nothing');
is($count->(), 3, 'the running, the pending and the newest jobs are left');

$vp->assert_no_crash;
$node->stop;
done_testing();
