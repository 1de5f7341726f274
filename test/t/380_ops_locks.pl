# The application's locks and cancels never end a worker nor cost a job an
# attempt.  A fake vproxy-transcode (test/lib/VproxyTest/fake-transcode:
# the time and exit status of each video's run are set in a control file)
# keeps this fast.
# While the application holds the video row of a running job, the child
# exits 65, 75 or 0 and the worker's call to record it waits; it is cancelled
# (pg_cancel_backend) and times out (lock_timeout) again and again, and
# is tried again, keeping the lease.  Meanwhile the other worker takes and
# completes a job of another video.  Once the lock goes, the outcome is
# recorded with the right attempt count.  Also: an abandoned last attempt
# whose video the application holds does not block the claims; COMMIT
# PREPARED of an enqueue wakes a worker; the secret never reaches the log.
use strict;
use warnings;
use File::Spec;
use PostgreSQL::Test::Utils;
use Test::More;
use VproxyTest::Cluster;

# the fake child: $FAKE_TRANSCODE_DIR/control/<video id> holds "SECONDS EXIT"
my $fake = File::Spec->rel2abs('test/lib/VproxyTest/fake-transcode');
my $fake_dir = PostgreSQL::Test::Utils::tempdir();
mkdir "$fake_dir/control" or die "$fake_dir/control: $!";
$ENV{FAKE_TRANSCODE_DIR} = $fake_dir;    # the postmaster's children inherit it

my $secret = 'ops-secret-' . int(rand(1e9));
my $vp = VproxyTest::Cluster->start(workers => 2, settings => {
	'vproxy.transcode_path' => "'$fake'",
	'vproxy.retry_delay' => '1',
	'vproxy.lease_duration' => '10',
	'vproxy.max_attempts' => '3',
	'vproxy.s3_secret_access_key' => "'$secret'",
	max_prepared_transactions => 2,
});
my $node = $vp->node;
ok($vp->wait_until("SELECT count(*) = 2 FROM vproxy.workers WHERE state = 'idle'"), 'two workers idle');
my @workers = split /\n/, $vp->sql("SELECT pid FROM vproxy.workers ORDER BY pid");

# A video whose child exits with $status after $seconds.
sub fake_video
{
	my ($mall, $status, $seconds) = @_;
	my $video = $vp->add_video(mall_id => $mall, key => "uploads/$mall/clip.mp4");
	open my $control, '>', "$fake_dir/control/$video" or die "control of $video: $!";
	print $control "$seconds $status\n";
	close $control;
	return $video;
}

my %expect = (
	65 => { status => 'failed', attempts => 1, error => qr/fake failure with status 65/ },
	0 => { status => 'completed', attempts => 1, error => undef },
);
for my $exit (65, 75, 0)
{
	my $offset = length $vp->log_text;
	my $video = fake_video("lock-$exit", $exit, 2);
	my $job = $vp->enqueue($video);
	my ($worker, $child) = $vp->wait_for_child($job);
	ok($child, "exit $exit: the child runs under worker $worker");
	# the application locks the video row in a long transaction
	my $app = $node->background_psql('vproxy');
	$app->query_safe("BEGIN; SELECT 1 FROM vproxy.videos WHERE id = '$video' FOR UPDATE");
	if ($exit != 75)
	{
		# the worker's call waits for the row; cancelling it and the
		# lock_timeout make it try again, keeping the lease
		ok($vp->wait_until("SELECT count(*) = 1 FROM pg_stat_activity
				WHERE pid = $worker AND wait_event_type = 'Lock'"),
			"exit $exit: the worker's call waits for the video the application holds");
		$vp->sql("SELECT pg_cancel_backend($worker)");
		ok($vp->wait_for_log(qr/of job $job failed \(try \d+\), trying again every second: canceling statement due to user request/, undef, $offset),
			"exit $exit: a cancelled call is tried again");
		ok($vp->wait_for_log(qr/of job $job failed \(try \d+\), trying again every second: canceling statement due to lock timeout/, undef, $offset),
			"exit $exit: a call that timed out on the lock is tried again");
		ok($vp->wait_until("SELECT count(*) = 1 FROM pg_stat_activity
				WHERE pid = $worker AND wait_event_type = 'Lock'"),
			"exit $exit: and waits again");
		$vp->sql("SELECT pg_cancel_backend($worker)");
		is($vp->job($job)->{status}, 'running', "exit $exit: the job still runs (its lease kept)");
		ok($vp->value("SELECT lease_expires_at > now() FROM vproxy.processing_jobs WHERE id = '$job'") eq 't',
			"exit $exit: its lease has not expired");
	}
	else
	{
		# a retryable failure writes the job only; the retry waits for the
		# video the application holds, and no claim blocks on it
		my $row = $vp->wait_for_job($job, statuses => ['pending']);
		is($row->{attempts}, 1, 'exit 75: attempt 1 recorded as a retry at once');
		sleep 2;    # the retry is due: claims pass over the locked video
		is($vp->job($job)->{status}, 'pending', 'exit 75: not claimed while the application holds its video');
	}
	# a job of another video is claimed and completed meanwhile
	my $other = $vp->enqueue(fake_video("other-$exit", 0, 0));
	is($vp->wait_for_job($other)->{status}, 'completed', "exit $exit: a job of another video completed meanwhile");
	$app->query_safe('COMMIT');
	$app->quit;
	next if $exit == 75;    # its next attempts run at once: checked below
	my $row = $vp->wait_for_job($job, statuses => [ $expect{$exit}{status} ]);
	is($row->{status}, $expect{$exit}{status}, "exit $exit: $expect{$exit}{status} once the lock is gone");
	is($row->{attempts}, $expect{$exit}{attempts}, "exit $exit: attempt count $expect{$exit}{attempts}");
	if (defined $expect{$exit}{error})
	{
		like($row->{error_message}, $expect{$exit}{error}, "exit $exit: the child's reason is recorded");
	}
	else
	{
		is($vp->video($video)->{processing_status}, 'completed', 'exit 0: the video is completed');
	}
}
# the exit-75 job runs its two other attempts and fails for good after 3
my ($retried) = $vp->value("SELECT j.id FROM vproxy.processing_jobs j JOIN vproxy.videos v ON v.id = j.video_id
	WHERE v.mall_id = 'lock-75'");
my $row = $vp->wait_for_job($retried);
is($row->{status}, 'failed', 'exit 75 every time: failed in the end');
is($row->{attempts}, 3, 'after 3 attempts, none lost to the lock');

# an abandoned last attempt (lease expired) whose video the application
# holds: claims pass over it, the workers stay up, other jobs run
my $abandoned_video = fake_video('abandoned', 0, 0);
my $abandoned = $vp->value("INSERT INTO vproxy.processing_jobs (video_id, status, attempts, max_attempts,
		started_at, lease_token, lease_expires_at, lease_holder)
	VALUES ('$abandoned_video', 'running', 3, 3, now() - interval '1 min', gen_random_uuid(),
			now() - interval '1 s', 'gone') RETURNING id");
my $app = $node->background_psql('vproxy');
$app->query_safe("BEGIN; SELECT 1 FROM vproxy.videos WHERE id = '$abandoned_video' FOR UPDATE");
my $other = $vp->enqueue(fake_video('unrelated', 0, 0));
is($vp->wait_for_job($other)->{status}, 'completed', 'a job of another mall completes while an abandoned job\'s video is held');
is($vp->job($abandoned)->{status}, 'running', 'the abandoned job waits for its video');
$app->query_safe('COMMIT');
$app->quit;
$row = $vp->wait_for_job($abandoned);
is($row->{status}, 'failed', 'the abandoned last attempt fails once its video is free');
like($row->{error_message}, qr/abandoned \(lease expired\)/, 'and says why');

# COMMIT PREPARED of an enqueue wakes a worker: the workers sleep up to 60 s
# when the queue is empty, and the wait below is shorter than that
ok($vp->wait_until("SELECT count(*) = 2 FROM vproxy.workers WHERE state = 'idle'"), 'both workers idle');
ok($vp->wait_until("SELECT NOT EXISTS (SELECT FROM vproxy.processing_jobs WHERE status IN ('pending', 'running'))"),
	'nothing queued');
my $prepared_video = fake_video('prepared', 0, 0);
$vp->sql("BEGIN; SELECT vproxy.vproxy_enqueue('$prepared_video'); PREPARE TRANSACTION 'ops-enqueue'");
sleep 1;
$vp->sql("COMMIT PREPARED 'ops-enqueue'");
my $prepared_job = $vp->value("SELECT id FROM vproxy.processing_jobs WHERE video_id = '$prepared_video'");
$row = $vp->wait_for_job($prepared_job, timeout => 30);
is($row->{status}, 'completed', 'an enqueue committed by COMMIT PREPARED is taken at once');

# the secret: a client that sends it gets its own text back (no oracle);
# the log never holds it, and shows a starred copy instead
my ($ret, $out, $err) = $node->psql('vproxy', "SELECT '$secret'::int");
like($err, qr/invalid input syntax for type integer: "\Q$secret\E"/, 'the client gets its own text back');
($ret, $out, $err) = $node->psql('vproxy', "SELECT '${secret}x'::int");
like($err, qr/invalid input syntax for type integer: "\Q$secret\Ex"/, 'a wrong guess comes back the same way');
ok($vp->wait_for_log(qr/LOG:  ERROR: invalid input syntax for type integer: "\*{8}"/), 'the log has a starred copy');
unlike($vp->log_text, qr/\Q$secret\E/, 'the secret is not in the log');

# no worker ever ended: the same two processes, no error exit in the log
is(join(",", split(/\n/, $vp->sql("SELECT pid FROM vproxy.workers ORDER BY pid"))), join(",", @workers),
	'the same two workers ran throughout');
unlike($vp->log_text, qr/background worker "vproxy worker" \(PID \d+\) exited with exit code 1/,
	'no worker exited with an error');
$vp->assert_no_crash;
$node->stop;
done_testing();
