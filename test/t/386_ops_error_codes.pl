# The error code of each kind of failure, as the workers record it from the
# child's end (src/supervise: the exit status, a signal, the job timeout)
# with the fake child: processing_jobs.error_code, the attempt in
# attempt_errors with its worker, and vproxy_job_status.
use strict;
use warnings;
use File::Spec;
use JSON::PP;
use PostgreSQL::Test::Utils;
use Test::More;
use VproxyTest::Cluster;

my $fake = File::Spec->rel2abs('test/lib/VproxyTest/fake-transcode');
my $fake_dir = PostgreSQL::Test::Utils::tempdir();
mkdir "$fake_dir/control" or die "$fake_dir/control: $!";
$ENV{FAKE_TRANSCODE_DIR} = $fake_dir;
# one attempt each: the first failure is the job's
my $vp = VproxyTest::Cluster->start(workers => 2, settings => {
	'vproxy.transcode_path' => "'$fake'",
	'vproxy.max_attempts' => '1',
	'vproxy.job_timeout' => '2',
});

my %cases = (
	64 => 'internal', 65 => 'bad_media', 66 => 'missing_original', 70 => 'internal',
	75 => 'storage_unavailable', 77 => 'storage_refused', 3 => 'internal', KILL => 'crashed',
	timeout => 'timeout');
my %job_of;
for my $case (sort keys %cases)
{
	my $video = $vp->add_video(mall_id => 'm1', key => "uploads/m1/$case.mov");
	open my $control, '>', "$fake_dir/control/$video" or die "control of $video: $!";
	print $control $case eq 'timeout' ? "30 0\n" : "0 $case\n";
	close $control;
	$job_of{$case} = $vp->enqueue($video, job_type => 'metadata_extraction');
}
for my $case (sort keys %cases)
{
	my $row = $vp->wait_for_job($job_of{$case}, timeout => 60);
	is($row->{status}, 'failed', "$case: failed");
	is($row->{error_code}, $cases{$case}, "$case: error_code $cases{$case}");
	is(scalar @{ $row->{attempt_errors} }, 1, "$case: one failed attempt recorded");
	is($row->{attempt_errors}[0]{code}, $cases{$case}, "$case: with its code");
	like($row->{attempt_errors}[0]{worker}, qr/^postgres \d+\/\d+\/\d+$/, "$case: and its worker");
	is($row->{attempt_errors}[0]{message}, $row->{error_message}, "$case: and its message");
	my $status = decode_json($vp->value("SELECT vproxy.vproxy_job_status('$job_of{$case}')"));
	is($status->{error_code}, $cases{$case}, "$case: vproxy_job_status says it");
}
like($vp->job($job_of{timeout})->{error_message}, qr/timed out after 2 s/, 'the timeout says so');
like($vp->job($job_of{KILL})->{error_message}, qr/killed by signal 9/, 'the crash says so');

$vp->assert_no_crash;
done_testing();
