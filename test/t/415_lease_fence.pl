# Self-fencing by lease (issue 18), with vproxy-worker and the real
# vproxy-transcode on file storage.  A worker is cut off while its child is
# stopped (SIGSTOP): its role is set NOLOGIN and its backend terminated.
# The video is deleted by another worker, or (second case) its job cancelled
# and the video reprocessed by another worker; the child is resumed after
# that.  The cut-off worker stops its child at the fence it cannot renew,
# so nothing lands after the deletion and the stored proxy is the one the
# row describes.  Third case, the child's own fence: the supervisor is
# stopped too, the child alone resumed after the fence: it writes nothing.
use strict;
use warnings;
use Digest::SHA;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use VproxyTest::Cluster;
use VproxyTest::ExternalWorker;

my $vp = VproxyTest::Cluster->start(workers => 0);
my $store = $vp->storage_dir;
VproxyTest::ExternalWorker::create_role($vp, 'vproxy_worker');
$vp->sql('CREATE ROLE cut_a LOGIN; GRANT vproxy_worker TO cut_a; CREATE ROLE cut_b LOGIN; GRANT vproxy_worker TO cut_b');
my $clip = VproxyTest::Cluster::make_clip(PostgreSQL::Test::Utils::tempdir() . '/clip.mp4', seconds => 4);

# A worker that has started.
sub worker
{
	my ($name, $role) = @_;
	my $w = VproxyTest::ExternalWorker->start($vp, name => $name, role => $role);
	$w->wait_for_log(qr/event=worker_start/) or die "worker $name did not start";
	return $w;
}

# The child of worker $w once it runs job $job.
sub child_running
{
	my ($w, $job) = @_;
	my $deadline = time + 60;
	while (time < $deadline)
	{
		my $holder = $vp->value("SELECT lease_holder FROM vproxy.processing_jobs WHERE id = '$job' AND status = 'running'") // '';
		if ($holder =~ m{^vproxy-worker \Q${\ $w->name}\E@})
		{
			my ($child) = VproxyTest::Cluster::children_of($w->pid);
			return $child if $child;
		}
		usleep(20_000);
	}
	return;
}

# Cut a worker off: its role may no longer log in, its backend is terminated.
sub cut_off
{
	my ($w, $role) = @_;
	$vp->sql("ALTER ROLE $role NOLOGIN");
	return $vp->value("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'vproxy-worker ${\ $w->name}'");
}

# The stored files of a video (its outputs under the default keys).
sub outputs_of
{
	my ($video) = @_;
	return grep { -e $_ } ("$store/videos/m1/proxy/$video.mp4", "$store/thumbnails/m1/$video.jpg");
}

# --- deleted while its worker is cut off
my $video = $vp->add_video(file => $clip);
my $job = $vp->enqueue($video);
my $a = worker('alpha', 'cut_a');
my $child = child_running($a, $job);
ok($child, 'alpha runs the job');
kill 'STOP', $child;
is(cut_off($a, 'cut_a'), 1, 'alpha is cut off: NOLOGIN, its backend terminated');
ok(VproxyTest::Cluster::process_gone_within($child, 30),
	'alpha stopped its child at the fence it could not renew');
ok($a->wait_for_log(qr/event=job_abandoned worker=alpha job=$job .*lease not renewed in time/),
	'and wrote nothing for it');
$vp->sql("SELECT vproxy.vproxy_delete_video('$video')");
my $b = worker('beta', 'vproxy_worker');
ok($vp->wait_until("SELECT count(*) = 0 FROM vproxy.videos WHERE id = '$video'", 90),
	'beta deleted the video once the lease had run out');
kill 'CONT', $child;
ok(VproxyTest::Cluster::process_gone_within($child, 60), 'the child is gone');
sleep 2;
is_deeply([ outputs_of($video) ], [], 'no proxy or thumbnail landed after the deletion');
ok(!-e "$store/uploads/m1/clip.mp4", 'the original is gone too');
unlike($a->log_text, qr/event=job_(finish|retry|failed) worker=alpha job=$job /, 'alpha recorded nothing');
like($a->log_text, qr/event=connection_lost/, 'alpha could not reconnect');
is($a->stop, 0, 'alpha stops while cut off');
is($b->stop, 0, 'beta stops');

# --- reprocessed by another worker while the first is cut off
$video = $vp->add_video(file => $clip, key => 'uploads/m1/again.mp4');
$job = $vp->enqueue($video);
my $g = worker('gamma', 'cut_b');
$child = child_running($g, $job);
ok($child, 'gamma runs the job');
kill 'STOP', $child;
is(cut_off($g, 'cut_b'), 1, 'gamma is cut off');
$vp->sql("SELECT vproxy.vproxy_cancel('$job')");
my $again = $vp->value("SELECT vproxy.vproxy_reprocess('$video', '{\"height\": 240}')");
ok(VproxyTest::Cluster::process_gone_within($child, 30), 'gamma stopped its child at the fence');
$b = worker('beta2', 'vproxy_worker');
my $row = $vp->wait_for_job($again, timeout => 120);
is($row->{status}, 'completed', 'beta2 reprocessed the video');
kill 'CONT', $child;
ok(VproxyTest::Cluster::process_gone_within($child, 60), 'the stale child is gone');
sleep 2;
my $stored = $vp->video($video);
is($stored->{proxy_path}, "videos/m1/proxy/$video.mp4", 'the row names the proxy');
is(Digest::SHA->new(256)->addfile("$store/$stored->{proxy_path}")->hexdigest,
	$row->{result_data}{metadata}{proxy}{sha256}, 'the stored proxy is the reprocessed one the row describes');
is($stored->{height}, 360, 'and the row still describes the original');
unlike($g->log_text, qr/event=job_(finish|retry|failed) worker=gamma job=$job /, 'gamma recorded nothing');
is($b->stop, 0, 'beta2 stops');

# --- the child's own fence: its supervisor is stopped as well
$video = $vp->add_video(file => $clip, key => 'uploads/m1/own.mp4');
$job = $vp->enqueue($video);
my $d = worker('delta', 'vproxy_worker');
$child = child_running($d, $job);
ok($child, 'delta runs the job');
kill 'STOP', $child;
kill 'STOP', $d->pid;
$vp->sql("SELECT vproxy.vproxy_delete_video('$video')");
$b = worker('beta3', 'vproxy_worker');
ok($vp->wait_until("SELECT count(*) = 0 FROM vproxy.videos WHERE id = '$video'", 90),
	'beta3 deleted the video while delta and its child were stopped');
kill 'CONT', $child;
ok(VproxyTest::Cluster::process_gone_within($child, 60), 'the child, resumed alone past its fence, ended by itself');
sleep 2;
is_deeply([ outputs_of($video) ], [], 'and stored nothing');
kill 'CONT', $d->pid;
ok($d->wait_for_log(qr/event=job_abandoned worker=delta job=$job /), 'delta, resumed, wrote nothing either');
unlike($d->log_text, qr/event=job_(finish|retry|failed) worker=delta job=$job /, 'no outcome recorded');

is($b->stop, 0, 'beta3 stops');
is($d->stop, 0, 'delta stops');
is($g->stop, 0, 'gamma stops while cut off');
$vp->assert_no_crash;
done_testing();
