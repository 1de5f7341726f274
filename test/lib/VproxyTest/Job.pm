# VproxyTest::Job: run `vproxy-transcode job` as a worker would: the spec on
# stdin, the result on stdout, the cause on stderr, progress on fd 3.
package VproxyTest::Job;

use strict;
use warnings;
use Exporter 'import';
use IPC::Run qw(start pump finish timeout);
use JSON::PP;
use VproxyTest::Media qw(transcode_program);

our @EXPORT = qw(run_job job_spec workspaces_in sanitizer_reports);

my @reports;

# A proxy_generation spec for file storage below $root; %over replaces members.
sub job_spec
{
	my ($root, $key, %over) = @_;
	return {
		job_id => 'job-1', video_id => 'video-1', attempt => 1,
		job_type => 'proxy_generation',
		storage => { url => "file://$root" },
		original => { key => $key },
		outputs => { proxy_key => 'videos/m1/proxy/video-1.mp4',
			thumbnail_key => 'thumbnails/m1/video-1.jpg' },
		params => {},
		%over,
	};
}

# Run a job.  $spec is a hash (encoded) or a string (sent as is).  Options:
# env (extra environment), on_progress (sub called with each progress line
# and the IPC::Run harness, e.g. to signal the child), timeout (seconds).
# Returns status (exit status or 128+signal), stdout, stderr, last_error,
# json, progress (lines).
sub run_job
{
	my ($spec, %opt) = @_;
	my $in = ref $spec ? JSON::PP->new->canonical->encode($spec) : $spec;
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
