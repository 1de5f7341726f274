# The production topology: vproxy.workers = 0 and two vproxy-worker
# processes (different names and temp directories) on S3 storage, with the
# documented non-superuser role and temporary S3 credentials from their
# environment (the test S3 server refuses any request without the session
# token, signed).  Ten real clips enqueued at once: each completed exactly
# once, with one NOTIFY, outputs checked with ffprobe.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use VproxyTest::Cluster;
use VproxyTest::ExternalWorker;
use VproxyTest::Media qw(fixture);
use VproxyTest::S3;

my $token = 'FQoGZXIvYXdzE' . VproxyTest::S3::random_text(40);
my $s3 = VproxyTest::S3->start(buckets => ['media'], session_token => $token);
my $spec = $s3->storage_spec('media', 'vp');
# the server knows where files go, but holds no credentials at all
my $vp = VproxyTest::Cluster->start(workers => 0, storage => { %$spec, access_key_id => '', secret_access_key => '' });
VproxyTest::ExternalWorker::create_role($vp, 'vproxy_worker');
my $listener = $vp->listen;
my %env = (AWS_ACCESS_KEY_ID => $s3->access_key_id, AWS_SECRET_ACCESS_KEY => $s3->secret_access_key,
	AWS_SESSION_TOKEN => $token);


# a worker without the token is refused by the storage: the job fails at once (77)
my @clips = qw(phone_rotated vp9_opus_webm mpeg4_mp3_avi anamorphic_interlaced_ts cctv_5fps);
my $first = fixture($clips[0]);
$s3->aws_put($first, 'media', 'vp/uploads/m0/refused') or die 'upload failed';
my $refused = $vp->enqueue($vp->add_video(file => $first, key => 'uploads/m0/refused', no_store => 1));
my $no_token = VproxyTest::ExternalWorker->start($vp, name => 'no-token', env => { %env, AWS_SESSION_TOKEN => undef },
	args => [ '--once' ]);
is($no_token->wait_exit(120), 0, 'a --once worker without the session token ran the queue dry');
my $row = $vp->job($refused);
is("$row->{status} $row->{attempts}", 'failed 1', 'without the session token S3 refuses: failed at once');

# ten clips at once, two workers
my %original;
my $stage = PostgreSQL::Test::Utils::tempdir();
for my $copy (1, 2)
{
	mkdir "$stage/m$copy";
	for my $clip (@clips)
	{
		symlink(fixture($clip), "$stage/m$copy/$clip") or die "symlink: $!";
		$original{"$clip.$copy"} = fixture($clip);
	}
}
$s3->put_tree($stage, 'media', 'vp/uploads');
my $enqueue = join(";\n", map {
	my ($clip, $copy) = split /\./;
	"SELECT vproxy.vproxy_enqueue(vproxy_test_video('m$copy', '$clip', " . (-s fixture($clip)) . "))"
} sort keys %original);
$vp->sql(q{CREATE FUNCTION vproxy_test_video(mall text, clip text, size bigint) RETURNS uuid
	LANGUAGE sql AS $$ INSERT INTO vproxy.videos (mall_id, filename, original_path, file_size_bytes)
	VALUES (mall, clip, 'uploads/' || mall || '/' || clip, size) RETURNING id $$});
# one transaction: all ten become visible at once
my $ids = $vp->sql("BEGIN;\n$enqueue;\nCOMMIT;");
my @jobs = split /\n/, $ids;
is(scalar @jobs, 10, 'ten jobs enqueued in one transaction');

my @workers = map {
	VproxyTest::ExternalWorker->start($vp, name => "s3-$_", env => \%env)
} qw(east west);
for my $job (@jobs)
{
	$vp->wait_for_job($job, timeout => 600);
}
my $fetch = $s3->fetch_tree('media', 'vp');
for my $job (@jobs)
{
	my $video = $vp->video($vp->job($job)->{video_id});
	$vp->check_proxy_job($job, $original{"$video->{filename}.$1"}, $fetch) if $video->{mall_id} =~ /^m(\d)$/;
}
my @payloads = $vp->notifications($listener);
for my $job (@jobs)
{
	is(scalar(grep { $_->{job_id} eq $job } @payloads), 1, "exactly one NOTIFY for $job");
}
my %by_worker;
my $logs = join('', map { $_->log_text } @workers);
for my $job (@jobs)
{
	my $finishes = () = $logs =~ /event=job_finish worker=\S+ job=$job /g;
	is($finishes, 1, "$job finished exactly once across the workers");
}
for my $w (@workers)
{
	$by_worker{ $w->name } = () = $w->log_text =~ /event=job_finish /g;
}
ok($by_worker{'s3-east'} > 0 && $by_worker{'s3-west'} > 0,
	"both workers took jobs (east $by_worker{'s3-east'}, west $by_worker{'s3-west'})");
my @with_token = $s3->requests;
ok(scalar(@with_token) > 20, 'the S3 server saw the workers\' requests (all carrying the signed session token)');
unlike(join('', map { $_->log_text } @workers), qr/\Q$token\E|\Q${\ $s3->secret_access_key}\E/,
	'no credential in the workers\' logs');
is($_->stop, 0, $_->name . ' stops with 0') for @workers;
$vp->assert_no_crash;
done_testing();
