package VproxyTest::S3;

=head1 NAME

VproxyTest::S3 - the test S3 server, and helpers for the storage tests

=head1 SYNOPSIS

  use VproxyTest::S3 qw(run_storage random_file same_file);

  my $s3 = VproxyTest::S3->start(buckets => ['media']);
  my $env = $s3->storage_env('media', 'some/prefix');  # VPROXY_* settings
  my $r = run_storage($env, 'put', $file, 'videos/a b.mp4');   # {exit, json, ...}
  $s3->aws_get('media', 'some/prefix/videos/a b.mp4', "$dir/back.mp4");
  $s3->inject_fault(method => 'PUT', query => {partNumber => 2}, status => 503);
  my @parts = $s3->requests(method => 'PUT');
  $s3->stop;                                           # also at exit

=head1 DESCRIPTION

start() runs test/s3/front.py: s3rver (npm, pinned in test/s3/package-lock.json;
run C<npm ci> there first, test/install-deps does) behind a front that checks
the SigV4 signature of every request with botocore and the server's
credentials (403 SignatureDoesNotMatch when wrong), answers
ListMultipartUploads and AbortMultipartUpload, injects faults and records
requests.  Each server has its own temp directory, free port and random
secret, and stops when the test ends.

=head2 Server

=over

=item VproxyTest::S3->start(%options)

Options: C<buckets> (names to create), C<region> (default us-east-1),
C<access_key_id>, C<secret_access_key> (default: fresh random ones),
C<tls> (serve https with a fresh self-signed certificate for 127.0.0.1),
C<session_token> (temporary credentials: every request must carry this
token, signed, as x-amz-security-token).

=item $s3->endpoint, port, region, access_key_id, secret_access_key, session_token

=item $s3->ca_file

The certificate to trust with C<tls>, else undef.

=item $s3->storage_env($bucket [, $prefix])

The environment of C<vproxy-transcode storage> for s3://$bucket/$prefix on this
server, with VPROXY_S3_CA_FILE under C<tls> (a hash reference; merge into it to
change a setting).

=item $s3->storage_spec($bucket [, $prefix])

The C<storage> object of a job spec for the same (a hash reference).

=item $s3->create_bucket($name)

=item $s3->stop

Stops the server (also done when the object goes away).

=back

=head2 Faults and requests

=over

=item $s3->inject_fault(%rule)

Fail requests that match: C<method>, C<key> (a regular expression searched in
the key), C<query> (a hash: parameter => value, or undef for "present").
C<action>: C<error> (default; answer C<status> 503 with S3 error C<code>
SlowDown), C<drop> (close the connection), C<truncate> (cut the response body
after C<bytes>), C<stall> (wait C<seconds> first).  C<count>: how many times
(default 1, -1 forever).

=item $s3->clear_faults

=item $s3->requests(%filter)

The requests seen so far, oldest first, as hashes: method, bucket, key,
query (hash), auth (header, query, or undef when refused before the check),
status (HTTP status answered, 'client-gone' when the client vanished),
error_code, fault (the action that fired), bytes_in, range (the Range
header), time (epoch seconds).  The filter keeps those
whose fields equal the values given (C<query> compares the given parameters).

=item $s3->clear_requests

=back

=head2 The AWS CLI against this server

=over

=item $s3->aws(@arguments)

Runs Debian's C</usr/bin/aws> with this server's endpoint and credentials,
no config files; returns {exit, stdout, stderr}.

=item $s3->aws_get($bucket, $key, $file), $s3->aws_put($file, $bucket, $key)

C<aws s3 cp> of one object; true on success.

=item $s3->multipart_uploads($bucket)

The unfinished multipart uploads (C<aws s3api list-multipart-uploads>), as a
list of {Key, UploadId}; dies if the listing fails.

=back

=head2 Functions

=over

=item run_storage(\%env, [\@wrapper,] @args)

Runs C<vproxy-transcode storage @args> ($VPROXY_TRANSCODE, else from PATH) with
only the storage settings of %env, under an optional wrapper command. Returns
{exit (status, or 128 + signal), stdout, stderr, last_error, json, seconds}.

=item random_file($path, $bytes), same_file($a, $b)

=back

=cut

use strict;
use warnings;
use Exporter 'import';
use File::Basename qw(dirname);
use File::Compare ();
use File::Spec;
use File::Temp qw(tempdir);
use HTTP::Tiny;
use IPC::Run ();
use JSON::PP ();
use POSIX ();
use Scalar::Util qw(weaken);
use Time::HiRes ();

our @EXPORT_OK = qw(transcode_program run_storage random_file same_file);

my $s3_dir = File::Spec->rel2abs(dirname(__FILE__) . '/../../s3');
my $json = JSON::PP->new->utf8->canonical;

# Servers still running, stopped at exit before File::Temp removes their folders.
my %running;
END { $_->stop for grep { defined } values %running }

# Random letters and digits.
sub random_text
{
	my ($length) = @_;
	my @chars = ('A' .. 'Z', 'a' .. 'z', 0 .. 9);
	return join '', map { $chars[ int(rand(@chars)) ] } 1 .. $length;
}

sub start
{
	my ($class, %options) = @_;
	my $self = bless {
		region => $options{region} // 'us-east-1',
		access_key_id => $options{access_key_id} // 'AKIAVPROXY' . uc(random_text(10)),
		secret_access_key => $options{secret_access_key} // random_text(40),
		dir => tempdir('vproxy-s3-XXXXXX', TMPDIR => 1, CLEANUP => 1),
		owner => $$,
		tls => $options{tls},
		session_token => $options{session_token},
	}, $class;
	my $port_file = "$self->{dir}/port";
	my $log = "$self->{dir}/front.log";
	my @tls;
	if ($self->{tls})
	{
		$self->{ca_file} = "$self->{dir}/cert.pem";
		my $err = '';
		IPC::Run::run([ 'openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
				'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1',
				'-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', "$self->{dir}/key.pem",
				'-out', $self->{ca_file} ], '<', \'', '>', \my $out, '2>', \$err)
		  or die "openssl could not make a certificate: $err";
		@tls = ('--tls-cert', $self->{ca_file}, '--tls-key', "$self->{dir}/key.pem");
	}

	my $pid = fork();
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		open(STDIN, '<', '/dev/null');
		open(STDOUT, '>', $log);
		open(STDERR, '>&', \*STDOUT);
		$ENV{S3_FRONT_ACCESS_KEY_ID} = $self->{access_key_id};
		$ENV{S3_FRONT_SECRET_ACCESS_KEY} = $self->{secret_access_key};
		$ENV{S3_FRONT_SESSION_TOKEN} = $self->{session_token} if defined $self->{session_token};
		exec('/usr/bin/python3', "$s3_dir/front.py", '--data', "$self->{dir}/data",
			'--port-file', $port_file, '--region', $self->{region}, @tls)
		  or POSIX::_exit(127);
	}
	$self->{pid} = $pid;
	$running{$pid} = $self;
	weaken($running{$pid});
	my $deadline = Time::HiRes::time() + 60;
	until (-s $port_file)
	{
		if (waitpid($pid, POSIX::WNOHANG()) == $pid || Time::HiRes::time() > $deadline)
		{
			delete $self->{pid};
			my $output = -e $log ? do { local (@ARGV, $/) = ($log); <> } : '';
			die "the test S3 server did not start:\n$output";
		}
		Time::HiRes::sleep(0.05);
	}
	open(my $fh, '<', $port_file) or die "$port_file: $!";
	($self->{port}, $self->{control_port}) = split ' ', <$fh>;
	$self->{http} = HTTP::Tiny->new(timeout => 120);
	$self->create_bucket($_) for @{ $options{buckets} // [] };
	return $self;
}

sub endpoint { return ($_[0]{tls} ? 'https' : 'http') . "://127.0.0.1:$_[0]{port}" }
sub ca_file { return $_[0]{ca_file} }
sub port { return $_[0]{port} }
sub region { return $_[0]{region} }
sub access_key_id { return $_[0]{access_key_id} }
sub secret_access_key { return $_[0]{secret_access_key} }
sub session_token { return $_[0]{session_token} }

sub storage_env
{
	my ($self, $bucket, $prefix) = @_;
	return {
		VPROXY_STORAGE_URL => "s3://$bucket" . (defined $prefix && length $prefix ? "/$prefix" : ''),
		VPROXY_S3_ENDPOINT => $self->endpoint,
		VPROXY_S3_REGION => $self->{region},
		VPROXY_S3_ACCESS_KEY_ID => $self->{access_key_id},
		VPROXY_S3_SECRET_ACCESS_KEY => $self->{secret_access_key},
		(defined $self->{session_token} ? (VPROXY_S3_SESSION_TOKEN => $self->{session_token}) : ()),
		($self->{tls} ? (VPROXY_S3_CA_FILE => $self->{ca_file}) : ()),
	};
}

sub storage_spec
{
	my ($self, $bucket, $prefix) = @_;
	my $env = $self->storage_env($bucket, $prefix);
	return {
		url => $env->{VPROXY_STORAGE_URL},
		s3_endpoint => $self->endpoint,
		s3_region => $self->{region},
		access_key_id => $self->{access_key_id},
		secret_access_key => $self->{secret_access_key},
		ca_file => $self->{ca_file} // '',
	};
}

# A request to the front's control endpoint; dies unless it succeeds.
sub control
{
	my ($self, $method, $what, $body) = @_;
	my $response = $self->{http}->request($method,
		"http://127.0.0.1:$self->{control_port}/__front__/$what",
		defined $body ? { content => $json->encode($body) } : {});
	die "test S3 server: $method $what: $response->{status} $response->{content}\n"
	  unless $response->{success};
	return $response->{content};
}

sub create_bucket
{
	my ($self, $name) = @_;
	$self->control('PUT', "buckets/$name");
	return;
}

sub inject_fault
{
	my ($self, %rule) = @_;
	$self->control('POST', 'faults', \%rule);
	return;
}

sub clear_faults { $_[0]->control('DELETE', 'faults'); return }
sub clear_requests { $_[0]->control('DELETE', 'requests'); return }

sub requests
{
	my ($self, %filter) = @_;
	my $all = $json->decode($self->control('GET', 'requests'));
	return grep {
		my $request = $_;
		my $keep = 1;
		for my $field (keys %filter)
		{
			if ($field eq 'query')
			{
				for my $name (keys %{ $filter{query} })
				{
					my $want = $filter{query}{$name};
					my $got = $request->{query}{$name};
					$keep = 0 unless defined $got && (!defined $want || $got eq $want);
				}
			}
			else
			{
				$keep = 0 unless ($request->{$field} // '') eq ($filter{$field} // '');
			}
		}
		$keep;
	} @$all;
}

sub aws
{
	my ($self, @args) = @_;
	my ($out, $err) = ('', '');
	local %ENV = %ENV;
	delete $ENV{$_} for grep { /^AWS_/ } keys %ENV;
	$ENV{AWS_ACCESS_KEY_ID} = $self->{access_key_id};
	$ENV{AWS_SECRET_ACCESS_KEY} = $self->{secret_access_key};
	$ENV{AWS_SESSION_TOKEN} = $self->{session_token} if defined $self->{session_token};
	$ENV{AWS_DEFAULT_REGION} = $self->{region};
	$ENV{AWS_CONFIG_FILE} = '/dev/null';
	$ENV{AWS_SHARED_CREDENTIALS_FILE} = '/dev/null';
	$ENV{AWS_EC2_METADATA_DISABLED} = 'true';
	$ENV{AWS_PAGER} = '';
	$ENV{AWS_CA_BUNDLE} = $self->{ca_file} if $self->{tls};
	IPC::Run::run([ '/usr/bin/aws', '--endpoint-url', $self->endpoint, @args ],
		'<', \'', '>', \$out, '2>', \$err);
	return { exit => $? >> 8, stdout => $out, stderr => $err };
}

sub aws_get
{
	my ($self, $bucket, $key, $file) = @_;
	my $r = $self->aws('s3', 'cp', '--only-show-errors', "s3://$bucket/$key", $file);
	warn "aws s3 cp s3://$bucket/$key: $r->{stderr}" if $r->{exit} != 0;
	return $r->{exit} == 0;
}

# Copy a local directory tree to $bucket under $prefix in one aws call
# (symbolic links are followed); dies on failure.
sub put_tree
{
	my ($self, $dir, $bucket, $prefix) = @_;
	my $r = $self->aws('s3', 'cp', '--recursive', '--only-show-errors', $dir, "s3://$bucket/$prefix");
	die "aws s3 cp --recursive $dir: $r->{stderr}" if $r->{exit} != 0;
	return;
}

# Fetch everything under $prefix in $bucket in one aws call; returns a sub
# that gives the local path of a key (the $fetch of Cluster::check_proxy_job).
sub fetch_tree
{
	my ($self, $bucket, $prefix) = @_;
	my $dir = tempdir('vproxy-fetched-XXXXXX', TMPDIR => 1, CLEANUP => 1);
	my $r = $self->aws('s3', 'cp', '--recursive', '--only-show-errors', "s3://$bucket/$prefix", $dir);
	die "aws s3 cp --recursive s3://$bucket/$prefix: $r->{stderr}" if $r->{exit} != 0;
	return sub {
		my ($key) = @_;
		-f "$dir/$key" or die "$key is not in s3://$bucket/$prefix";
		return "$dir/$key";
	};
}

sub aws_put
{
	my ($self, $file, $bucket, $key) = @_;
	my $r = $self->aws('s3', 'cp', '--only-show-errors', $file, "s3://$bucket/$key");
	warn "aws s3 cp to s3://$bucket/$key: $r->{stderr}" if $r->{exit} != 0;
	return $r->{exit} == 0;
}

sub multipart_uploads
{
	my ($self, $bucket) = @_;
	my $r = $self->aws('s3api', 'list-multipart-uploads', '--bucket', $bucket, '--output', 'json');
	die "list-multipart-uploads: $r->{stderr}" if $r->{exit} != 0;
	return () unless $r->{stdout} =~ /\S/;
	return @{ $json->decode($r->{stdout})->{Uploads} // [] };
}

sub stop
{
	my ($self) = @_;
	my $pid = delete $self->{pid};
	return unless $pid && $self->{owner} == $$;
	delete $running{$pid};
	kill 'TERM', $pid;
	waitpid($pid, 0);
	return;
}

sub DESTROY
{
	my ($self) = @_;
	local $?;
	$self->stop;
	return;
}

sub transcode_program
{
	return $ENV{VPROXY_TRANSCODE} // 'vproxy-transcode';
}

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
	my $started = Time::HiRes::time();
	IPC::Run::run([ @wrapper, $program, 'storage', @args ], '<', \'', '>', \$out, '2>', \$err);
	my $status = $?;
	my %result = (
		exit => ($status & 127) ? 128 + ($status & 127) : $status >> 8,
		stdout => $out,
		stderr => $err,
		seconds => Time::HiRes::time() - $started,
	);
	my @lines = grep { /\S/ } split /\n/, $err;
	$result{last_error} = @lines ? $lines[-1] : '';
	$result{json} = eval { JSON::PP->new->utf8->decode($out) }
	  if $result{exit} == 0;
	return \%result;
}

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

sub same_file
{
	my ($a, $b) = @_;
	return -f $a && -f $b && -s $a == -s $b && File::Compare::compare($a, $b) == 0;
}

1;
