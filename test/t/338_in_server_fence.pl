# The lease fence of an in-server worker (issue 18): while the application
# holds the row of a running job, the heartbeats cannot renew the lease; at
# the fence (the lease granted minus its margin) the worker stops its child
# and records nothing, whatever the lock's length.  Once the lock is gone
# and the lease has run out, the job is taken again and completes.  A fake
# vproxy-transcode (test/lib/VproxyTest/fake-transcode) keeps this fast.
use strict;
use warnings;
use File::Spec;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use VproxyTest::Cluster;

my $fake = File::Spec->rel2abs('test/lib/VproxyTest/fake-transcode');
my $fake_dir = PostgreSQL::Test::Utils::tempdir();
mkdir "$fake_dir/control" or die "$fake_dir/control: $!";
$ENV{FAKE_TRANSCODE_DIR} = $fake_dir;    # the postmaster's children inherit it
my $vp = VproxyTest::Cluster->start(workers => 1, settings => { 'vproxy.transcode_path' => "'$fake'" });
my $node = $vp->node;

my $video = $vp->add_video(key => 'uploads/m1/locked.mp4');
open my $fh, '>', "$fake_dir/control/$video" or die $!;
print $fh "30 0\n";
close $fh;
my $job = $vp->enqueue($video);
my ($worker, $child) = $vp->wait_for_child($job, min_progress => 0.01);
ok($child, 'the job runs, with its child');

my $locker = $node->background_psql('vproxy');
$locker->query_safe("BEGIN; SELECT 1 FROM vproxy.processing_jobs WHERE id = '$job' FOR UPDATE");
my $locked_at = time;
# the fence is at most 10 - 7 = 3 s after the last renewal (vproxy.lease_duration = 10)
ok(VproxyTest::Cluster::process_gone_within($child, 8),
	sprintf('the application holds the job\'s row: the child was stopped at the fence (%.1f s)', time - $locked_at));
ok($vp->wait_for_log(qr/vproxy: job $job: its lease was not renewed in time; its child was stopped and nothing is recorded/),
	'logged: nothing recorded');
$locker->query_safe('COMMIT');
$locker->quit;

open $fh, '>', "$fake_dir/control/$video" or die $!;
print $fh "0.2 0\n";
close $fh;
my $row = $vp->wait_for_job($job, timeout => 60);
is("$row->{status} $row->{attempts}", 'completed 2', 'once the lease had run out, attempt 2 completed the job');
unlike($vp->log_text, qr/job $job attempt 1 failed/, 'attempt 1 recorded nothing');
is($vp->value("SELECT pid FROM vproxy.workers"), $worker, 'by the same worker');
$vp->assert_no_crash;
done_testing();
