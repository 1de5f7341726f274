# VproxyTest::Job: run `vproxy-transcode job` as a worker would: on stdin
# the job spec (line 1, as claim_job makes it) and the worker's local part
# (line 2: credentials, CA file, temp directory, limits); the result on
# stdout, the cause on stderr, progress on fd 3.
package VproxyTest::Job;

use strict;
use warnings;
use Exporter 'import';
use IPC::Run qw(start pump finish timeout);
use JSON::PP;
use VproxyTest::Media qw(transcode_program);

our @EXPORT = qw(run_job job_spec job_input workspaces_in sanitizer_reports);

my @reports;

# A proxy_generation spec for file storage below $root (undef: %over names
# the storage); %over replaces members.
sub job_spec
{
	my ($root, $key, %over) = @_;
	return {
		job_id => 'job-1', video_id => 'video-1', attempt => 1,
		job_type => 'proxy_generation',
		storage => defined $root ? { url => "file://$root" } : undef,
		original => { key => $key },
		outputs => { proxy_key => 'videos/m1/proxy/video-1.mp4',
			thumbnail_key => 'thumbnails/m1/video-1.jpg' },
		params => {},
		%over,
	};
}

# The two lines a worker writes for a spec given as one hash, whose
# "storage" may hold the credentials and the CA file and whose
# "temp_directory", "limits" and "lease_until_ms" are the worker's: those go
# to the local part, the rest is the spec.
sub job_input
{
	my ($flat) = @_;
	my %spec = %$flat;
	my %storage = %{ delete $spec{storage} // {} };
	my %local = (credentials => {});
	for my $field (qw(access_key_id secret_access_key session_token))
	{
		$local{credentials}{$field} = delete $storage{$field} if exists $storage{$field};
	}
	$local{ca_file} = delete $storage{ca_file} if exists $storage{ca_file};
	for my $field (qw(temp_directory limits lease_until_ms))
	{
		$local{$field} = delete $spec{$field} if exists $spec{$field};
	}
	$spec{storage} = \%storage if exists $flat->{storage};
	my $json = JSON::PP->new->canonical;
	return $json->encode(\%spec) . "\n" . $json->encode(\%local) . "\n";
}

# Run a job.  $spec is a hash (made into the two lines by job_input) or a
# string (sent as is).  Options:
# env (extra environment), on_progress (sub called with each progress line
# and the IPC::Run harness, e.g. to signal the child), timeout (seconds).
# Returns status (exit status or 128+signal), stdout, stderr, last_error,
# json, progress (lines).
sub run_job
{
	my ($spec, %opt) = @_;
	my $in = ref $spec ? job_input($spec) : $spec;
	my ($out, $err, $progress) = ('', '', '');
	# stdin from a file: a scalar would stay open (and the child waiting) until finish
	my $spec_file = VproxyTest::Media::scratch_dir() . '/spec.json';
	open my $fh, '>', $spec_file or die "$spec_file: $!";
	print $fh $in;
	close $fh;
	my @cmd = (transcode_program(), 'job', '--progress-fd', '3');
	local %ENV = (%ENV, VproxyTest::Media::sanitizer_environment(), %{ $opt{env} // {} });
	my $harness = start(\@cmd, '<', $spec_file, '>', \$out, '2>', \$err, '3>', \$progress,
		timeout($opt{timeout} // 300));
	my $seen = 0;
	while ($harness->pumpable)
	{
		$harness->pump;
		my @lines = split /\n/, $progress;
		while ($opt{on_progress} && $seen < @lines && ($seen < $#lines || $progress =~ /\n\z/))
		{
			$opt{on_progress}->($lines[ $seen++ ], $harness);
		}
	}
	$harness->finish;
	my $raw = $harness->full_result(0);
	my $status = $raw & 127 ? 128 + ($raw & 127) : $raw >> 8;
	my @err_lines = grep { length } split /\n/, $err;
	my $report = VproxyTest::Media::sanitizer_report({ stderr => $err });
	push @reports, $report if $report ne '';
	return {
		status => $status, stdout => $out, stderr => $err,
		last_error => @err_lines ? $err_lines[-1] : '',
		json => ($out =~ /^\{/ ? eval { decode_json($out) } : undef),
		progress => [ split /\n/, $progress ],
	};
}

# The sanitizer reports of every job run so far (none with a clean build).
sub sanitizer_reports { return @reports }

# The job workspaces (vproxy-job-*) below a temp directory.
sub workspaces_in
{
	my ($dir) = @_;
	opendir my $dh, $dir or die "$dir: $!";
	my @found = grep { /^vproxy-job-/ } readdir $dh;
	closedir $dh;
	return @found;
}

1;
