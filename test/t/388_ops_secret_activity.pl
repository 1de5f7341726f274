# The secret is never shown to the monitor role: pg_monitor reads every
# session's statement in pg_stat_activity, and a DBA's session that gave
# the secret a new value with ALTER SYSTEM shows that statement until its
# next one.  It shows it with the value starred, as the log does; the
# statements of roles that cannot set the secret are shown as written (to
# them, stars would tell whether a guess of the secret is right).
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use VproxyTest::Cluster;
use VproxyTest::Grants;

my $vp = VproxyTest::Cluster->start(workers => 0);
my $node = $vp->node;
$vp->sql('CREATE ROLE app LOGIN; CREATE ROLE monitor LOGIN; CREATE ROLE vproxy_worker LOGIN;');
$vp->sql(VproxyTest::Grants::sql($_)) for qw(application monitor worker);

# What the monitor role sees of the other sessions' statements.
sub activity
{
	return $node->safe_psql('vproxy',
		"SELECT string_agg(query, E'\\n' ORDER BY pid) FROM pg_stat_activity
		  WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'",
		extra_params => [ '-U', 'monitor' ]);
}

my $dba = $node->background_psql('vproxy');
$dba->query_safe("ALTER SYSTEM SET vproxy.s3_secret_access_key = 'vproxy-activity-secret-1'");
my $seen = activity();
unlike($seen, qr/vproxy-activity-secret/, 'the new secret is not in pg_stat_activity');
like($seen, qr/ALTER SYSTEM SET vproxy\.s3_secret_access_key = '\*{8}'/,
	'the statement is, with the value starred');

# the secret in force, quoted by a superuser's statement, is starred too
$dba->query_safe("ALTER SYSTEM RESET ALL");
$node->append_conf('postgresql.conf',
	"vproxy.s3_secret_access_key = 'vproxy-activity-secret-2'\nvproxy.job_retention = 4242\n");
$node->reload;
# the session has read the file again once it shows the other setting
for (1 .. 100)
{
	last if $dba->query_safe("SHOW vproxy.job_retention") =~ /4242/;
	select(undef, undef, undef, 0.1);
}
$dba->query_safe("DO \$\$BEGIN PERFORM 'vproxy-activity-secret-2'; END\$\$");
$seen = activity();
unlike($seen, qr/vproxy-activity-secret/, 'the secret in force is not in pg_stat_activity');
like($seen, qr/PERFORM '\*{8}'/, 'a statement quoting it is, starred');

# another role's statement naming the setting is shown as written
my $app = $node->background_psql('vproxy', extra_params => [ '-U', 'app' ]);
$app->query_safe("DO \$\$DECLARE s3_secret_access_key text; a text[]; BEGIN "
	  . "a := ARRAY[s3_secret_access_key, \$q\$SELECT 'vproxy-activity-3'\$q\$]; EXECUTE a[2]; END\$\$");
like(activity(), qr/\$q\$SELECT 'vproxy-activity-3'\$q\$/, 'the application\'s statement is shown whole');
# and one quoting the secret in force too: stars there would tell that a guess is right
$app->query_safe("DO \$\$BEGIN PERFORM 'vproxy-activity-secret-2'; END\$\$");
like(activity(), qr/PERFORM 'vproxy-activity-secret-2'/, 'no oracle: the application\'s guess is shown as written');

$dba->quit;
$app->quit;
done_testing();
