# Unsafe storage keys in a job spec (an original_path or an output key that
# could leave its tree, or an output key with a brace an unknown template
# placeholder left) fail as a bad job spec (exit 64) before anything is
# fetched, made or stored, on both backends: no S3 request, no workspace,
# no object, no progress.  Also: a killed job's workspace is swept even
# when its pid has been reused.
use strict;
use warnings;
use Fcntl qw(:flock);
use File::Find;
use Test::More;
use VproxyTest::Media;
use VproxyTest::Job;
use VproxyTest::S3;

my $s3 = VproxyTest::S3->start(buckets => ['media']);
my $root = scratch_dir();
my $tmp = scratch_dir();
my $original = 'uploads/m1/clip.mp4';
my %proxy = (proxy_key => 'videos/m1/proxy/v.mp4', thumbnail_key => 'thumbnails/m1/v.jpg');

my @cases = (
	[ 'original key ../x', { original => { key => '../x' } } ],
	[ 'original key with ..', { original => { key => 'uploads/../../etc/passwd' } } ],
	[ 'absolute original key', { original => { key => '/etc/passwd' } } ],
	[ 'original key with an empty component', { original => { key => 'uploads//clip.mp4' } } ],
	[ 'original key .', { original => { key => '.' } } ],
	[ 'original key with a control character', { original => { key => "uploads/a\x01b.mp4" } } ],
	[ 'proxy key with ..', { outputs => { %proxy, proxy_key => 'videos/../proxy/v.mp4' } } ],
	[ 'proxy key with an empty mall_id', { outputs => { %proxy, proxy_key => 'videos//proxy/v.mp4' } } ],
	[ 'proxy key with an unknown placeholder', { outputs => { %proxy, proxy_key => 'videos/{mallid}/proxy/v.mp4' } } ],
	[ 'thumbnail key ending in /', { outputs => { %proxy, thumbnail_key => 'thumbnails/m1/' } } ],
	[ 'thumbnail key with a brace', { outputs => { %proxy, thumbnail_key => 'thumbnails/{m1}/v.jpg' } } ],
);

# Every file below a directory.
sub files_below
{
	my ($dir) = @_;
	my @files;
	find(sub { push @files, $File::Find::name if -f }, $dir);
	return @files;
}

for my $backend ('file', 's3')
{
	my $storage = $backend eq 'file' ? { url => "file://$root" } : $s3->storage_spec('media', 'tenant');
	for my $case (@cases)
	{
		my ($name, $over) = @$case;
		$s3->clear_requests;
		my $spec = job_spec($root, $original, storage => $storage, temp_directory => $tmp, %$over);
		my $run = run_job($spec);
		is($run->{status}, 64, "$backend, $name: exit 64 (bad job spec)");
		like($run->{last_error}, qr/unsafe key/, "$backend, $name: the reason says so")
		  or diag($run->{stderr});
		is(scalar(grep { /^progress / } @{ $run->{progress} }), 0, "$backend, $name: no progress (nothing started)");
		is(join(' ', grep { /^error / } @{ $run->{progress} }), 'error internal',
			"$backend, $name: the code of a bad spec, internal");
		is(scalar($s3->requests), 0, "$backend, $name: no request reached S3");
		is(scalar(workspaces_in($tmp)), 0, "$backend, $name: no workspace made");
	}
}
is(scalar(files_below($root)), 0, 'nothing was written to the file storage');

# a safe spec still runs (it fails only because the original is missing)
my $run = run_job(job_spec($root, $original, temp_directory => $tmp));
is($run->{status}, 66, 'a safe key passes the check (the original is missing: 66)');

# workspaces of killed jobs are swept even when their pid lives again in
# another process (here: this test's own pid): nobody holds their lock; a
# workspace whose owner holds its lock is kept, and so is a new one (its
# maker may not have locked it yet)
my $reused = "$tmp/vproxy-job-$$-reused";
my $owned = "$tmp/vproxy-job-$$-owned";
my $young = "$tmp/vproxy-job-$$-young";
mkdir $_ or die "$_: $!" for ($reused, $owned, $young);
my $old = time - 120;
utime $old, $old, $reused, $owned;
open my $lock, '<', $owned or die "$owned: $!";
flock($lock, LOCK_EX) or die "flock: $!";
$run = run_job(job_spec($root, $original, temp_directory => $tmp));
is($run->{status}, 66, 'a job ran next to the workspaces');
ok(!-e $reused, 'the workspace of a killed job whose pid was reused is swept');
ok(-d $owned, 'a workspace whose owner holds its lock is kept');
ok(-d $young, 'a new unlocked workspace is kept');
close $lock;
rmdir $_ for ($owned, $young);

is_deeply([ sanitizer_reports() ], [], 'no job reported a sanitizer error');
$s3->stop;
done_testing();
