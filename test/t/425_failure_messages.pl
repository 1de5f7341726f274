# A failure's message always reaches the job (issue 18, item 5).  A tenant
# of 128 non-ASCII characters on S3: the child's message names its key, cut
# to fit; it is cut on a character boundary and valid, so fail_job takes it
# and the job fails at once instead of staying running.  A message the
# database refuses anyway (here an application's trigger) is replaced by a
# plain one, by vproxy-worker and by the in-server workers alike.
use strict;
use warnings;
use Encode qw(decode);
use PostgreSQL::Test::Utils;
use Test::More;
use VproxyTest::Cluster;
use VproxyTest::ExternalWorker;
use VproxyTest::S3;

my $refuse = q{
	CREATE FUNCTION refuse_fake_messages() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		IF NEW.error_message LIKE '%fake failure%' THEN
			RAISE EXCEPTION 'the application refuses this message';
		END IF;
		RETURN NEW;
	END $$;
	CREATE TRIGGER refuse_fake_messages BEFORE UPDATE ON vproxy.processing_jobs
		FOR EACH ROW EXECUTE FUNCTION refuse_fake_messages();
};

# --- vproxy-worker on S3, the real child
my $s3 = VproxyTest::S3->start(buckets => ['media']);
my $spec = $s3->storage_spec('media', 'vp');
my $vp = VproxyTest::Cluster->start(workers => 0, storage => { %$spec, access_key_id => '', secret_access_key => '' });
VproxyTest::ExternalWorker::create_role($vp, 'vproxy_worker');
my $w = VproxyTest::ExternalWorker->start($vp, name => 'tenant',
	env => { AWS_ACCESS_KEY_ID => $s3->access_key_id, AWS_SECRET_ACCESS_KEY => $s3->secret_access_key });
my $tenant = "\x{20ac}" x 128;
my $video = $vp->add_video(mall_id => $tenant);
my $row = $vp->wait_for_job($vp->enqueue($video), timeout => 60);
is("$row->{status} $row->{attempts}", 'failed 1',
	'a 128-character non-ASCII tenant\'s missing original: failed at once (exit 66), not left running');
my $message = decode('UTF-8', $row->{error_message} // '');
like($message, qr/\x{20ac}{40}/, 'the message names the key, characters whole');
is($row->{error_code}, 'missing_original', 'error code missing_original');
unlike($w->log_text, qr/call=fail_job/, 'fail_job took the message the first time');

# the code the child names wins over its exit status's (65 would say bad_media)
my $notes = PostgreSQL::Test::Utils::tempdir() . '/notes.txt';
open my $fh, '>', $notes or die $!;
print $fh "not what the row says\n";
close $fh;
$s3->aws_put($notes, 'media', 'vp/uploads/m1/sum.mp4') or die 'upload failed';
$row = $vp->wait_for_job($vp->enqueue($vp->add_video(key => 'uploads/m1/sum.mp4', no_store => 1,
	checksum => '0' x 64)), timeout => 60);
is("$row->{status} $row->{attempts} $row->{error_code}", 'failed 1 checksum_mismatch',
	'a checksum mismatch: failed at once, error code checksum_mismatch (from the child\'s line)');

# an application's trigger refuses the message: a plain one is recorded instead
my ($fake, $fake_dir) = VproxyTest::ExternalWorker::fake_transcode();
$vp->sql($refuse);
my $plain = VproxyTest::ExternalWorker->start($vp, name => 'plain', transcode => $fake,
	env => { FAKE_TRANSCODE_DIR => $fake_dir });
is($w->stop, 0, 'the first worker stops');
$row = $vp->wait_for_job($vp->enqueue($vp->add_video(key => 'uploads/m1/fake-exit-65-sleep-0.1.mp4')), timeout => 60);
is("$row->{status} $row->{attempts}", 'failed 1', 'vproxy-worker: a refused message does not leave the job running');
is($row->{error_message}, 'the error message could not be stored', 'a plain message is recorded instead');
is($row->{error_code}, 'bad_media', 'with the code of exit 65');
like($plain->log_text, qr/call=fail_job sqlstate=P0001 error="the application refuses this message"/,
	'the refusal is logged');
is($plain->stop, 0, 'the worker stops');
$vp->assert_no_crash;

# --- an in-server worker, on the same fake child
my $local = VproxyTest::Cluster->start(name => 'local', workers => 1,
	settings => { 'vproxy.transcode_path' => "'$fake'" });
$local->sql($refuse);
$row = $local->wait_for_job($local->enqueue($local->add_video(key => 'uploads/m1/fake-exit-65-sleep-0.1.mp4')),
	timeout => 60);
is("$row->{status} $row->{attempts}", 'failed 1', 'in-server worker: a refused message does not leave the job running');
is($row->{error_message}, 'the error message could not be stored', 'the same plain message');
is($row->{error_code}, 'bad_media', 'with the code of exit 65');
$local->assert_no_crash;
done_testing();
