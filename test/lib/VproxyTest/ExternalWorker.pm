# VproxyTest::ExternalWorker: vproxy-worker processes against a test
# cluster, the documented worker role, and a fake transcode program for the
# suites where the media does not matter.
#
#   VproxyTest::ExternalWorker::create_role($vp, 'vproxy_worker');
#   my $w = VproxyTest::ExternalWorker->start($vp, name => 'w1', role => 'vproxy_worker',
#       args => ['--concurrency', 2], env => {...});
#   $w->wait_for_log(qr/event=job_finish/);
#   $w->stop;            # SIGTERM; returns the exit status
package VproxyTest::ExternalWorker;

use strict;
use warnings;
use Carp;
use File::Basename qw(dirname);
use File::Path qw(make_path);
use File::Spec;
use POSIX ();
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use VproxyTest::Grants;

# The README's worker role, with its grants as src/server/README.md has them
# (the worker functions and nothing else).
sub create_role
{
	my ($vp, $role, $password) = @_;
	my $pw = defined $password ? " PASSWORD '$password'" : '';
	my $grants = VproxyTest::Grants::sql('worker');
	$grants =~ s/\bvproxy_worker\b/$role/g;
	$vp->sql("CREATE ROLE $role LOGIN$pw;\n$grants");
	return $role;
}

# The installed vproxy-worker (next to vproxy-transcode and postgres).
sub program
{
	my $bindir = `pg_config --bindir`;
	chomp $bindir;
	return "$bindir/vproxy-worker";
}

# The fake transcode program, and a fresh directory for its records and controls.
sub fake_transcode
{
	my $dir = PostgreSQL::Test::Utils::tempdir('fake-transcode-XXXX');
	make_path("$dir/runs", "$dir/control");
	return (dirname(__FILE__) . '/fake-transcode', $dir);
}

# Start a vproxy-worker.  Options: name, role, args (more options), env
# (more environment), conninfo (instead of the cluster's socket), transcode.
sub start
{
	my ($class, $vp, %opts) = @_;
	my $node = $vp->node;
	my $name = $opts{name} // 'w1';
	my $self = bless { name => $name, vp => $vp }, $class;
	$self->{log} = $node->basedir . "/vproxy-worker-$name-" . int(time * 1000) . '.log';
	$self->{temp} = PostgreSQL::Test::Utils::tempdir("worker-$name-XXXX");
	my $conninfo = $opts{conninfo}
	  // sprintf('host=%s port=%d dbname=vproxy user=%s', $node->host, $node->port,
		$opts{role} // 'vproxy_worker');
	# the ASan child when the suites run with it (ASAN=1 test/run-some)
	my $transcode = $opts{transcode} // $ENV{VPROXY_TRANSCODE};
	$transcode = File::Spec->rel2abs($transcode) if defined $transcode && $transcode !~ m{^/};
	my @cmd = (program(), '-d', $conninfo, '--name', $name, '--temp-directory', $self->{temp},
		($transcode ? ('--transcode', $transcode) : ()), @{ $opts{args} // [] });
	my $pid = fork;
	croak "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		open STDIN, "<", "/dev/null";
		# the worker names its connection itself (fallback_application_name)
		delete $ENV{PGAPPNAME};
		open STDOUT, '>>', $self->{log};
		open STDERR, '>>', $self->{log};
		$ENV{$_} = $opts{env}{$_} for keys %{ $opts{env} // {} };
		delete $ENV{$_} for grep { !defined $opts{env}{$_} } keys %{ $opts{env} // {} };
		exec @cmd or POSIX::_exit(127);
	}
	$self->{pid} = $pid;
	return $self;
}

sub pid { return $_[0]{pid} }
sub name { return $_[0]{name} }
sub temp_directory { return $_[0]{temp} }

# The worker's log (stderr) so far.
sub log_text
{
	my ($self) = @_;
	return -e $self->{log} ? slurp_file($self->{log}) : '';
}

# Wait until the log matches; false on timeout.
sub wait_for_log
{
	my ($self, $regexp, $timeout) = @_;
	my $deadline = time + ($timeout // $PostgreSQL::Test::Utils::timeout_default);
	while (time < $deadline)
	{
		return 1 if $self->log_text =~ $regexp;
		usleep(50_000);
	}
	diag("$self->{name}: no $regexp in its log:\n" . $self->log_text);
	return 0;
}

# Wait for the process to exit; its exit status (or 128 + signal), undef on timeout.
sub wait_exit
{
	my ($self, $timeout) = @_;
	return $self->{status} if defined $self->{status};
	my $deadline = time + ($timeout // $PostgreSQL::Test::Utils::timeout_default);
	while (time < $deadline)
	{
		my $got = waitpid($self->{pid}, POSIX::WNOHANG());
		if ($got == $self->{pid})
		{
			$self->{status} = POSIX::WIFEXITED($?) ? POSIX::WEXITSTATUS($?) : 128 + POSIX::WTERMSIG($?);
			return $self->{status};
		}
		usleep(20_000);
	}
	return undef;
}

# SIGTERM and wait; the exit status.
sub stop
{
	my ($self) = @_;
	kill 'TERM', $self->{pid} unless defined $self->{status};
	return $self->wait_exit;
}

# Stop at the end of a test whatever happened.
sub DESTROY
{
	my ($self) = @_;
	return if defined $self->{status} || !$self->{pid};
	kill 'KILL', $self->{pid};
	waitpid($self->{pid}, 0);
}

1;
