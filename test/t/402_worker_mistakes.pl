# vproxy-worker refuses mistakes where they are made, in one line and with
# an exit status a service manager can act on (issue 20): children's limits
# the child would refuse (64, before connecting, in the child's own words),
# unknown job types (64), a role or database that does not exist or may
# not log in (77, as a wrong password), a database whose vproxy is another
# version (77), a server that cannot be reached (69).
use strict;
use warnings;
use IPC::Run qw(run);
use PostgreSQL::Test::Utils;
use Test::More;
use VproxyTest::Cluster;
use VproxyTest::ExternalWorker;

my $vp = VproxyTest::Cluster->start(workers => 0);
my $node = $vp->node;
my ($fake, $fake_dir) = VproxyTest::ExternalWorker::fake_transcode();
VproxyTest::ExternalWorker::create_role($vp, 'vproxy_worker');
my $nobody = sprintf('host=%s port=1 dbname=vproxy user=vproxy_worker', $node->host);

# Run vproxy-worker with these options to its end: (exit status, its log lines).
sub worker_exit
{
	my ($name, %opts) = @_;
	my $w = VproxyTest::ExternalWorker->start($vp, name => $name, transcode => $fake,
		env => { FAKE_TRANSCODE_DIR => $fake_dir }, %opts);
	my $status = $w->wait_exit(30);
	$w->stop unless defined $status;
	return ($status, grep { length } split /\n/, $w->log_text);
}

# What vproxy-transcode says of the same limit on its command line.
sub child_says
{
	my ($option, $value) = @_;
	my ($out, $err) = ('', '');
	my $transcode = $ENV{VPROXY_TRANSCODE} // `pg_config --bindir` =~ s/\n//r . '/vproxy-transcode';
	run([ $transcode, 'probe', '/dev/null', $option, $value ], '>', \$out, '2>', \$err);
	my ($why) = $err =~ /invalid value for \Q$option\E: \Q$value\E: (.*)$/m;
	return $why // "(nothing in: $err)";
}

# --- the children's limits: refused before connecting (the server named does not exist)
for my $bad ([ '--nice', '-5' ], [ '--threads', '1000' ], [ '--memory-limit', '10MB' ])
{
	my ($option, $value) = @$bad;
	my ($status, @lines) = worker_exit('limits', conninfo => $nobody, args => [ $option, $value ]);
	is($status, 64, "$option $value: exit 64, before any connection");
	my $why = child_says($option, $value);
	is($lines[0], "vproxy-worker: invalid value for $option: $value: $why",
		"$option $value: in the child's own words ($why)");
}
my ($status, @lines) = worker_exit('fine', conninfo => $nobody,
	args => [ '--nice', '19', '--threads', '256', '--memory-limit', '4GB' ]);
is($status, 69, 'limits the child takes pass; then the server cannot be reached: 69');
like($lines[0], qr/level=error event=connect_failed sqlstate=none error=/, 'in one line');
is(scalar @lines, 1, 'only one');

# --- job types
($status, @lines) = worker_exit('types', conninfo => $nobody, args => [ '--job-types', 'proxy_generation,bogus' ]);
is($status, 64, '--job-types with an unknown type: exit 64 before connecting');
like($lines[0], qr/^vproxy-worker: --job-types: unknown job type: "bogus": the types are proxy_generation, /,
	'naming it and the known ones');
($status, @lines) = worker_exit('empty-type', conninfo => $nobody, args => [ '--job-types', 'video_deletion,' ]);
is($status, 64, '--job-types with an empty item: exit 64');
($status) = worker_exit('known-types', args => [ '--job-types', 'video_deletion,metadata_extraction', '--once' ]);
is($status, 0, 'known job types are taken');

# --- refused by the server: 77, one line, whatever the reason
my %refusals = (
	'a role that does not exist' => [ 'nosuchrole', 'vproxy', '28000' ],
	'a database that does not exist' => [ 'vproxy_worker', 'nosuchdb', '3D000' ],
	'a role that may not log in' => [ 'vproxy_nologin', 'vproxy', '28000' ],
);
$vp->sql('CREATE ROLE vproxy_nologin NOLOGIN; GRANT vproxy_worker TO vproxy_nologin');
for my $case (sort keys %refusals)
{
	my ($role, $db, $sqlstate) = @{ $refusals{$case} };
	($status, @lines) = worker_exit('refused',
		conninfo => sprintf('host=%s port=%d dbname=%s user=%s', $node->host, $node->port, $db, $role));
	is($status, 77, "$case: exit 77 (no restart loop)");
	is(scalar @lines, 1, "$case: one line");
	like($lines[0] // '', qr/level=error event=connect_failed sqlstate=$sqlstate error="/, "$case: with its SQLSTATE");
}

# --- a database whose vproxy is another version: refused at the check-in
my $old = VproxyTest::Cluster->start(name => 'old', workers => 0, no_database => 1);
$old->sql('CREATE DATABASE vproxy', 'postgres');
$old->sql("CREATE EXTENSION vproxy VERSION '1.1.0'");
my $stale = VproxyTest::ExternalWorker->start($old, name => 'stale', transcode => $fake,
	conninfo => sprintf('host=%s port=%d dbname=vproxy', $old->node->host, $old->node->port));
is($stale->wait_exit(30), 77, 'vproxy 1.1.0 in the database: exit 77');
@lines = grep { length } split /\n/, $stale->log_text;
is(scalar @lines, 1, 'one line');
like($lines[0], qr/level=error event=version_mismatch worker=stale worker_version=\S+ extension_version="" note="run ALTER EXTENSION vproxy UPDATE/,
	'saying what to do');
$old->node->stop;

# --- a server that is down: 69, worth a restart
$node->stop;
($status, @lines) = worker_exit('down');
is($status, 69, 'the server is down: exit 69');
like($lines[0], qr/level=error event=connect_failed sqlstate=none error=".*(No such file|Connection refused)/,
	'naming the cause');
done_testing();
