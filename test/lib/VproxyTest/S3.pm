package VproxyTest::S3;

# Helpers for the storage tests: running `vproxy-transcode storage`, making
# random files and comparing them.

use strict;
use warnings;
use Exporter 'import';
use File::Compare ();
use IPC::Run ();
use JSON::PP ();

our @EXPORT_OK = qw(transcode_program run_storage random_file same_file);

# The program under test: $VPROXY_TRANSCODE, else vproxy-transcode on PATH.
sub transcode_program
{
	return $ENV{VPROXY_TRANSCODE} // 'vproxy-transcode';
}

# run_storage(\%env, [\@wrapper,] @args): run `vproxy-transcode storage @args`
# with the storage settings of %env only (other VPROXY_STORAGE_URL, VPROXY_S3_*
# and AWS_* credentials removed), optionally under a wrapper command such as
# ['sh', '-c', 'ulimit -f 10; exec "$@"', 'sh'].  Returns a hash:
# exit (status, or 128 + signal), stdout, stderr, last_error (last stderr
# line), json (stdout decoded, on exit 0), seconds (wall clock).
sub run_storage
{
	my ($env, @args) = @_;
	my @wrapper = ref $args[0] eq 'ARRAY' ? @{ shift @args } : ();
	my ($out, $err) = ('', '');
	my $program = transcode_program();

	local %ENV = %ENV;
	delete $ENV{$_}
	  for grep { /^(VPROXY_STORAGE_URL|VPROXY_S3_.*|AWS_ACCESS_KEY_ID|AWS_SECRET_ACCESS_KEY)$/ }
	  keys %ENV;
	$ENV{$_} = $env->{$_} for keys %$env;
	my $started = time;
	my $start_hires = eval { require Time::HiRes; Time::HiRes::time() } // $started;
	IPC::Run::run([ @wrapper, $program, 'storage', @args ], '<', \'', '>', \$out, '2>', \$err);
	my $status = $?;
	my %result = (
		exit => ($status & 127) ? 128 + ($status & 127) : $status >> 8,
		stdout => $out,
		stderr => $err,
		seconds => Time::HiRes::time() - $start_hires,
	);
	my @lines = grep { /\S/ } split /\n/, $err;
	$result{last_error} = @lines ? $lines[-1] : '';
	$result{json} = eval { JSON::PP->new->utf8->decode($out) }
	  if $result{exit} == 0;
	return \%result;
}

# random_file($path, $bytes): a file of random bytes; returns $path.
sub random_file
{
	my ($path, $bytes) = @_;
	open(my $random, '<:raw', '/dev/urandom') or die "/dev/urandom: $!";
	open(my $out, '>:raw', $path) or die "$path: $!";
	while ($bytes > 0)
	{
		my $chunk = $bytes < 1 << 20 ? $bytes : 1 << 20;
		sysread($random, my $buffer, $chunk) == $chunk or die "short read of /dev/urandom";
		print $out $buffer or die "$path: $!";
		$bytes -= $chunk;
	}
	close($out) or die "$path: $!";
	return $path;
}

# same_file($a, $b): both exist and hold the same bytes.
sub same_file
{
	my ($a, $b) = @_;
	return -f $a && -f $b && -s $a == -s $b && File::Compare::compare($a, $b) == 0;
}

1;
