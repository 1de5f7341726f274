# A first mistake of a new DBA: CREATE EXTENSION vproxy on a server that
# does not preload it.  The answer is an ERROR with a hint (pg_cron's way),
# and the session goes on; once the library is preloaded, the same command
# works.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use VproxyTest::Cluster;

my $vp = VproxyTest::Cluster->start(workers => 0, no_database => 1,
	settings => { shared_preload_libraries => "''" });
my $node = $vp->node;
$node->safe_psql('postgres', 'CREATE DATABASE vproxy');

my ($ret, $out, $err) = $node->psql('vproxy', "CREATE EXTENSION vproxy; SELECT 'still here'",
	on_error_stop => 0);
like($err, qr/ERROR:  vproxy can only be loaded through shared_preload_libraries/,
	'CREATE EXTENSION without the preload: an ERROR');
like($err, qr/HINT:  Add vproxy to shared_preload_libraries in postgresql.conf, restart the server/,
	'with the hint');
unlike($err, qr/FATAL/, 'not a FATAL');
is($out, 'still here', 'the session goes on');
is($node->safe_psql('vproxy', "SELECT count(*) FROM pg_extension WHERE extname = 'vproxy'"), '0',
	'nothing was created');

$node->append_conf('postgresql.conf', "shared_preload_libraries = 'vproxy'\n");
$node->restart;
$node->safe_psql('vproxy', 'CREATE EXTENSION vproxy');
is($node->safe_psql('vproxy', "SELECT extversion FROM pg_extension WHERE extname = 'vproxy'"), '1.2.0',
	'preloaded, the extension is created');
$node->stop;
done_testing();
