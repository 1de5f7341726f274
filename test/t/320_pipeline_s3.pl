# The whole pipeline on S3 (the test server of the storage room): clips
# complete with outputs at the default keys under the prefix; a transient
# outage (connections dropped) fails an attempt with exit 75 and the job
# recovers through the backoff; the secret reaches neither the log nor the
# child's command line, nor does a new one set by a failing statement.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use VproxyTest::Cluster;
use VproxyTest::Media qw(fixture);
use VproxyTest::S3;

my $s3 = VproxyTest::S3->start(buckets => ['media']);
my $vp = VproxyTest::Cluster->start(workers => 2, storage => $s3->storage_spec('media', 'vp'),
	settings => { 'vproxy.retry_delay' => 2 });
my $scratch = PostgreSQL::Test::Utils::tempdir();
my $listener = $vp->listen;

# Upload an original under the prefix; returns the video id.
sub upload
{
	my ($file, $key) = @_;
	$s3->aws_put($file, 'media', "vp/$key") or die "upload of $key failed";
	return $vp->add_video(file => $file, key => $key, no_store => 1, size => 'auto');
}

# Fetch a stored object (key under the prefix) into a local file.
my $fetched = 0;
sub fetch
{
	my ($key) = @_;
	my ($ext) = $key =~ /(\.\w+)$/;
	my $path = "$scratch/fetched-" . $fetched++ . $ext;
	$s3->aws_get('media', "vp/$key", $path) or die "cannot fetch $key";
	return $path;
}

my %original = map { $_ => fixture($_) } qw(phone_rotated vp9_opus_webm);
my %job_of;
for my $clip (sort keys %original)
{
	$job_of{$clip} = $vp->enqueue(upload($original{$clip}, "uploads/m3/$clip"));
}
for my $clip (sort keys %original)
{
	$vp->wait_for_job($job_of{$clip});
	$vp->check_proxy_job($job_of{$clip}, $original{$clip}, \&fetch);
}

# a transient outage: every GET of the original dropped until we clear it
$s3->inject_fault(method => 'GET', key => 'uploads/m3/outage', action => 'drop', count => -1);
my $job = $vp->enqueue(upload(fixture('cctv_5fps'), 'uploads/m3/outage'));
my $row = $vp->wait_for_job($job, statuses => ['pending'], timeout => 120);
is($row->{status}, 'pending', 'outage: the failed attempt is queued again');
is($row->{attempts}, 1, 'outage: after attempt 1');
ok(length($row->{error_message} // ''), "outage: the cause is kept: $row->{error_message}");
is($vp->value("SELECT run_at > now() FROM vproxy.processing_jobs WHERE id = '$job'"), 't',
	'outage: the retry waits for the backoff');
$s3->clear_faults;
$row = $vp->wait_for_job($job, timeout => 120);
is($row->{status}, 'completed', 'outage: the job recovers through the backoff');
is($row->{attempts}, 2, 'outage: on attempt 2');
like($vp->log_text, qr/job $job attempt 1 failed, will retry/, 'outage: the retry is logged');

my %notified = map { $_->{job_id} => $_->{status} } $vp->notifications($listener);
is_deeply([ map { $notified{$_} } sort values %job_of ], [qw(completed completed)], 'a NOTIFY per S3 job');
is($notified{$job}, 'completed', 'and for the recovered one, once');
$listener->quit;

# the secret: set, used, but never in the log
my $secret = $s3->secret_access_key;
unlike($vp->log_text, qr/\Q$secret\E/, 'the secret is not in the server log');
is($vp->value('SHOW vproxy.s3_secret_access_key'), '********', 'SHOW stars the secret');
$vp->sql("SET client_min_messages = log; SELECT 1 WHERE '$secret' = ''");
unlike($vp->log_text, qr/\Q$secret\E/, 'not even when a statement quotes it');

# a failing statement that sets a new secret: the new one stays out too
my %failing = (
	'fresh-secret-in-block' => [
		"BEGIN;\nALTER SYSTEM SET vproxy.s3_secret_access_key = 'fresh-secret-in-block';\nROLLBACK;",
		qr/ALTER SYSTEM cannot run inside a transaction block/ ],
	'fresh-secret-set' => [ "SET vproxy.S3_Secret_Access_Key = 'fresh-secret-set'",
		qr/cannot be changed now/ ],
	'fresh-secret-in-function' => [
		"DO \$\$BEGIN EXECUTE 'ALTER SYSTEM SET vproxy.s3_secret_access_key = ''fresh-secret-in-function'''; END\$\$",
		qr/ALTER SYSTEM cannot be executed from a function/ ],
	'fresh-secret-logged' => [
		"SET log_statement = 'all';\nSELECT set_config('vproxy.s3_secret_access_key', 'fresh-secret-logged', false);",
		qr/cannot be changed now/ ]);
for my $new_secret (sort keys %failing)
{
	my ($sql, $error) = @{ $failing{$new_secret} };
	my ($ret, $out, $err) = $vp->node->psql('vproxy', $sql);
	like($err, $error, "$new_secret: the statement fails");
	like($vp->log_text, $error, "$new_secret: the error is logged");
	unlike($vp->log_text, qr/\Q$new_secret\E/, "$new_secret: the new secret is not");
}

$vp->assert_no_crash;
$vp->node->stop;
$s3->stop;
done_testing();
