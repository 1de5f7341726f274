# VproxyTest::Dashboard: vproxy-dashboard processes against a test cluster,
# the documented monitor role, HTTP and server-sent-events clients, the
# Prometheus text format read by the reference parser (python3
# prometheus_client), and the browser driver of test/browser.
#
#   VproxyTest::Dashboard::create_role($vp, 'vproxy_monitor');
#   my $d = VproxyTest::Dashboard->start($vp, role => 'vproxy_monitor', token => 'secret');
#   my $r = $d->get('/api/summary', token => 'secret');   # HTTP::Tiny response
#   my @samples = $d->metrics(token => 'secret');         # ({name, labels, value}, ...)
#   my $events = $d->events(token => 'secret');           # an /events stream
#   my $event = $events->next(2);                          # {event, data, id, at} or undef
#   my $browser = VproxyTest::Dashboard::Browser->start;
#   my $answer = $browser->do({cmd => 'goto', url => $d->url . '/'});
package VproxyTest::Dashboard;

use strict;
use warnings;
use Carp;
use File::Basename qw(dirname);
use HTTP::Tiny;
use IO::Select;
use IO::Socket::INET;
use IPC::Run ();
use JSON::PP;
use POSIX ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use VproxyTest::Grants;

my $JSON = JSON::PP->new->canonical;

# The README's monitor role (pg_monitor, USAGE on schema vproxy, SELECT on
# its tables and views, EXECUTE on vproxy.worker_activity(), nothing more),
# its grants read from src/server/README.md.
sub create_role
{
	my ($vp, $role) = @_;
	my $grants = VproxyTest::Grants::sql('monitor');
	$grants =~ s/\bmonitor\b/$role/g;
	$vp->sql("CREATE ROLE $role LOGIN;\n$grants");
	return $role;
}

# The installed vproxy-dashboard (next to vproxy-worker and postgres).
sub program
{
	my $bindir = `pg_config --bindir`;
	chomp $bindir;
	return "$bindir/vproxy-dashboard";
}

# Start a dashboard on a free port.  Options: role (default vproxy_monitor),
# token (written to a token file), args (more options), conninfo, wait
# (default 1: until it listens).
sub start
{
	my ($class, $vp, %opts) = @_;
	my $node = $vp->node;
	my $self = bless { vp => $vp }, $class;
	my $dir = PostgreSQL::Test::Utils::tempdir('dashboard-XXXX');
	$self->{log} = "$dir/dashboard.log";
	$self->{port} = PostgreSQL::Test::Cluster::get_free_port();
	my @token;
	if (defined $opts{token})
	{
		open my $fh, '>', "$dir/token" or die $!;
		print $fh "$opts{token}\n";
		close $fh;
		chmod 0600, "$dir/token";
		@token = ('--token-file', "$dir/token");
	}
	my $conninfo = $opts{conninfo}
	  // sprintf('host=%s port=%d dbname=vproxy user=%s', $node->host, $node->port,
		$opts{role} // 'vproxy_monitor');
	my @cmd = (program(), '-d', $conninfo, '--listen', "127.0.0.1:$self->{port}", @token,
		@{ $opts{args} // [] });
	my $pid = fork;
	croak "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		open STDIN, '<', '/dev/null';
		delete $ENV{PGAPPNAME};
		open STDOUT, '>>', $self->{log};
		open STDERR, '>>', $self->{log};
		exec @cmd or POSIX::_exit(127);
	}
	$self->{pid} = $pid;
	$self->wait_for_log(qr/event=listening address=/) if $opts{wait} // 1;
	return $self;
}

sub pid { return $_[0]{pid} }
sub url { return "http://127.0.0.1:$_[0]{port}" }
sub port { return $_[0]{port} }

# The dashboard's log (stderr) so far.
sub log_text
{
	my ($self) = @_;
	return -e $self->{log} ? slurp_file($self->{log}) : '';
}

# Wait until the log matches; false on timeout (or when the process exited).
sub wait_for_log
{
	my ($self, $regexp, $timeout) = @_;
	my $deadline = time + ($timeout // $PostgreSQL::Test::Utils::timeout_default);
	while (time < $deadline)
	{
		return 1 if $self->log_text =~ $regexp;
		return 0 if defined $self->wait_exit(0);
		usleep(50_000);
	}
	diag("dashboard: no $regexp in its log:\n" . $self->log_text);
	return 0;
}

# Wait for the process to exit: its exit status (or 128 + signal), undef on timeout.
sub wait_exit
{
	my ($self, $timeout) = @_;
	return $self->{status} if defined $self->{status};
	my $deadline = time + ($timeout // $PostgreSQL::Test::Utils::timeout_default);
	do
	{
		my $got = waitpid($self->{pid}, POSIX::WNOHANG());
		if ($got == $self->{pid})
		{
			$self->{status} = POSIX::WIFEXITED($?) ? POSIX::WEXITSTATUS($?) : 128 + POSIX::WTERMSIG($?);
			return $self->{status};
		}
		usleep(20_000) if $timeout;
	} while (time < $deadline);
	return undef;
}

# SIGTERM and wait; the exit status.
sub stop
{
	my ($self) = @_;
	kill 'TERM', $self->{pid} unless defined $self->{status};
	return $self->wait_exit;
}

# GET a path.  Options: token (Bearer), cookie, headers (more).
sub get
{
	my ($self, $path, %opts) = @_;
	my %headers = %{ $opts{headers} // {} };
	$headers{Authorization} = "Bearer $opts{token}" if defined $opts{token};
	$headers{Cookie} = $opts{cookie} if defined $opts{cookie};
	return HTTP::Tiny->new(timeout => 10, max_redirect => 0)->get($self->url . $path, { headers => \%headers });
}

# GET a path and decode its JSON body (dies unless 200).
sub json
{
	my ($self, $path, %opts) = @_;
	my $r = $self->get($path, %opts);
	croak "GET $path: $r->{status} $r->{content}" unless $r->{status} == 200;
	return $JSON->decode($r->{content});
}

# POST a form.
sub post_form
{
	my ($self, $path, $form) = @_;
	return HTTP::Tiny->new(timeout => 10, max_redirect => 0)->post_form($self->url . $path, $form);
}

# /metrics read by prometheus_client's parser: a list of samples
# {name, labels, value}; dies if the parser refuses the text.
sub metrics
{
	my ($self, %opts) = @_;
	my $r = $self->get('/metrics', %opts);
	croak "GET /metrics: $r->{status} $r->{content}" unless $r->{status} == 200;
	return parse_metrics($r->{content});
}

# Prometheus text format through the reference parser.
sub parse_metrics
{
	my ($text) = @_;
	my ($out, $err);
	IPC::Run::run([ dirname(__FILE__) . '/prometheus-samples' ], \$text, \$out, \$err)
	  or croak "the Prometheus parser refused /metrics: $err";
	return @{ $JSON->decode($out) };
}

# The value of the sample with this name and these labels, or undef.
sub sample
{
	my ($samples, $name, %labels) = @_;
	for my $s (@$samples)
	{
		next unless $s->{name} eq $name;
		next if grep { ($s->{labels}{$_} // '') ne $labels{$_} } keys %labels;
		return $s->{value};
	}
	return undef;
}

# An /events stream.  Options: token, last_event_id.
sub events
{
	my ($self, %opts) = @_;
	return VproxyTest::Dashboard::Events->connect($self->{port}, %opts);
}

# Stop at the end of a test whatever happened.
sub DESTROY
{
	my ($self) = @_;
	return if defined $self->{status} || !$self->{pid};
	kill 'KILL', $self->{pid};
	waitpid($self->{pid}, 0);
}

package VproxyTest::Dashboard::Events;

use strict;
use warnings;
use Carp;
use IO::Select;
use IO::Socket::INET;
use Time::HiRes qw(time);

# Connect to /events and read the response head.
sub connect
{
	my ($class, $port, %opts) = @_;
	my $socket = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Timeout => 5)
	  or croak "connect: $!";
	my $request = "GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n";
	$request .= "Authorization: Bearer $opts{token}\r\n" if defined $opts{token};
	$request .= "Last-Event-ID: $opts{last_event_id}\r\n" if defined $opts{last_event_id};
	print $socket "$request\r\n";
	my $self = bless { socket => $socket, buffer => '', events => [] }, $class;
	$self->fill(5) until $self->{buffer} =~ /\r\n\r\n/ || $self->{eof};
	$self->{buffer} =~ s/^(.*?)\r\n\r\n//s;
	$self->{head} = $1 // '';
	($self->{status}) = $self->{head} =~ m{^HTTP/1\.1 (\d+)};
	return $self;
}

sub status { return $_[0]{status} }
sub head { return $_[0]{head} }

# Read what arrives within $timeout seconds; false at end of stream.
sub fill
{
	my ($self, $timeout) = @_;
	my $select = IO::Select->new($self->{socket});
	return 0 unless $select->can_read($timeout);
	my $n = sysread($self->{socket}, my $chunk, 65536);
	if (!$n)
	{
		$self->{eof} = 1;
		return 0;
	}
	$self->{buffer} .= $chunk;
	$self->{raw} .= $chunk;
	return 1;
}

# The next event (chunked transfer decoded): {event, data, id, at}, where at
# is when it was read; undef after $timeout seconds.
sub next
{
	my ($self, $timeout) = @_;
	my $deadline = time + ($timeout // 5);
	while (1)
	{
		# decode the chunks read so far into the event text
		while ($self->{buffer} =~ s/^([0-9a-fA-F]+)\r\n//)
		{
			my $size = hex $1;
			if (length($self->{buffer}) < $size + 2)
			{
				$self->{buffer} = sprintf("%x\r\n", $size) . $self->{buffer};
				last;
			}
			$self->{text} .= substr($self->{buffer}, 0, $size);
			$self->{buffer} = substr($self->{buffer}, $size + 2);
		}
		$self->{text} //= '';
		while ($self->{text} =~ s/^(.*?)\n\n//s)
		{
			my %event = (at => time);
			for my $line (split /\n/, $1)
			{
				next if $line =~ /^:/;
				my ($field, $value) = $line =~ /^(\w+): ?(.*)$/ or next;
				$event{$field} = $field eq 'data' && defined $event{data} ? "$event{data}\n$value" : $value;
			}
			push @{ $self->{events} }, \%event if defined $event{data};
		}
		return shift @{ $self->{events} } if @{ $self->{events} };
		my $left = $deadline - time;
		return undef if $left <= 0 || $self->{eof};
		$self->fill($left);
	}
}

# Events until one matches $test (a code ref), or undef after $timeout seconds.
sub next_matching
{
	my ($self, $test, $timeout) = @_;
	my $deadline = time + ($timeout // 5);
	while ((my $left = $deadline - time) > 0)
	{
		my $event = $self->next($left) // return undef;
		return $event if $test->($event);
	}
	return undef;
}

sub finish { close $_[0]{socket} }

package VproxyTest::Dashboard::Browser;

use strict;
use warnings;
use Carp;
use File::Basename qw(dirname);
use IPC::Run ();
use JSON::PP;

# Start the driver of test/browser (Debian's chromium through playwright-core).
sub start
{
	my ($class) = @_;
	my $self = bless { in => '', out => '' }, $class;
	my $driver = dirname(__FILE__) . '/../../browser/drive.js';
	$self->{harness} = IPC::Run::start([ 'node', $driver ], \$self->{in}, \$self->{out}, \$self->{err},
		IPC::Run::timeout(300));
	return $self;
}

# Send one command (a hash); its answer {ok, value | error}.
sub do
{
	my ($self, $command) = @_;
	$self->{in} .= JSON::PP->new->canonical->encode($command) . "\n";
	$self->{harness}->pump until $self->{out} =~ s/^(.*)\n//;
	return JSON::PP->new->decode($1);
}

# The value of a command, or undef (with the error as a diagnostic).
sub value
{
	my ($self, $command) = @_;
	my $answer = $self->do($command);
	Test::More::diag("browser: $command->{cmd}: $answer->{error}") unless $answer->{ok};
	return $answer->{ok} ? $answer->{value} : undef;
}

# Whether a command succeeded.
sub ok
{
	my ($self, $command) = @_;
	my $answer = $self->do($command);
	Test::More::diag("browser: $command->{cmd}: $answer->{error}") unless $answer->{ok};
	return $answer->{ok};
}

sub quit
{
	my ($self) = @_;
	return unless $self->{harness};
	$self->do({ cmd => 'quit' });
	$self->{harness}->finish;
	delete $self->{harness};
}

sub DESTROY
{
	my ($self) = @_;
	$self->{harness}->kill_kill if $self->{harness};
}

1;
