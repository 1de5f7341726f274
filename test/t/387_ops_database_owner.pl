# The application role may own its database, as it often does: PostgreSQL
# then gives it schema public (owned by pg_database_owner) and ALTER
# DATABASE ... SET.  vproxy's background workers (the in-server worker and
# the pruner) connect to that database as the bootstrap superuser, a
# vproxy-worker as the worker role, vproxy-dashboard as the monitor role: nothing the owner puts in public, and
# no search_path it sets for the database, may run in them.  The owner's
# functions, operators and domains named like the built-in ones the
# workers' calls use record who ran them; none ran as anybody but the
# owner, and the owner did not become a superuser.
use strict;
use warnings;
use File::Spec;
use PostgreSQL::Test::Utils;
use Test::More;
use VproxyTest::Cluster;
use VproxyTest::Dashboard;
use VproxyTest::ExternalWorker;
use VproxyTest::Grants;

my $fake = File::Spec->rel2abs('test/lib/VproxyTest/fake-transcode');
my $fake_dir = PostgreSQL::Test::Utils::tempdir();
$ENV{FAKE_TRANSCODE_DIR} = $fake_dir;
# the test's own sessions keep a safe search_path whatever the database's
$ENV{PGOPTIONS} = '-c search_path=pg_catalog';
my $vp = VproxyTest::Cluster->start(workers => 1, settings => {
	'vproxy.transcode_path' => "'$fake'",
	# the pruner runs every second
	'vproxy.job_retention' => '1',
	'vproxy.failed_job_retention' => '1',
});
my $node = $vp->node;

$vp->sql('CREATE ROLE app LOGIN; CREATE ROLE monitor LOGIN; CREATE ROLE vproxy_worker LOGIN;');
$vp->sql(VproxyTest::Grants::sql($_)) for qw(application monitor worker);
$vp->sql('ALTER DATABASE vproxy OWNER TO app');

# what the owner of the database does, with no privilege beyond the README's grants
$node->safe_psql('vproxy', <<'SQL', extra_params => ['-U', 'app']);
CREATE TABLE public.calls (who name, superuser boolean, what text);
GRANT INSERT ON public.calls TO PUBLIC;
CREATE FUNCTION public.pwn(what text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO public.calls
	SELECT current_user, r.rolsuper, what FROM pg_catalog.pg_roles r WHERE r.rolname = current_user;
	IF (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user) THEN
		EXECUTE 'ALTER ROLE app SUPERUSER';
	END IF;
	RETURN true;
END
$$;
-- a better match than pg_catalog's for the pruner's make_interval(secs => int4)
CREATE FUNCTION public.make_interval(secs int) RETURNS interval LANGUAGE sql
	AS $$ SELECT pg_catalog.make_interval(secs => secs::float8) WHERE public.pwn('make_interval') $$;
-- types of the workers' calls, found first once public comes before pg_catalog
CREATE DOMAIN public.jsonb AS pg_catalog.jsonb CHECK (public.pwn('jsonb'));
CREATE DOMAIN public.text AS pg_catalog.text CHECK (public.pwn('text'));
CREATE DOMAIN public.uuid AS pg_catalog.uuid CHECK (public.pwn('uuid'));
ALTER DATABASE vproxy SET search_path = public, pg_catalog;
SQL
# the workers connect again, under the database's settings
$node->restart;
$vp->{start_time} = $vp->postmaster_start_time;

my $video = $vp->add_video(mall_id => 'm1', key => 'uploads/m1/a.mov');
my $first = $vp->enqueue($video, job_type => 'metadata_extraction');
is($vp->wait_for_job($first)->{status}, 'completed', 'the in-server worker ran a job');
my $second = $vp->enqueue($video, job_type => 'thumbnail_generation');
is($vp->wait_for_job($second)->{status}, 'completed', 'and another');
ok($vp->wait_until("SELECT NOT EXISTS (SELECT FROM vproxy.processing_jobs WHERE id = '$first')", 30),
	'the pruner removed the older job');

is($vp->sql("SELECT string_agg(DISTINCT what, ', ') FROM public.calls WHERE superuser"), '',
	'none of the owner\'s functions ran as a superuser');

# nor in the session of a vproxy-worker on another machine, as its role
my $worker = VproxyTest::ExternalWorker->start($vp, name => 'other', transcode => $fake,
	args => [ '--once', '--job-types', 'metadata_extraction' ],
	env => { PGOPTIONS => undef, FAKE_TRANSCODE_DIR => $fake_dir });
is($worker->wait_exit(60), 0, 'a vproxy-worker checked in and left');
# nor in the dashboard's, as the monitor role
{
	local %ENV = %ENV;
	delete $ENV{PGOPTIONS};
	my $dashboard = VproxyTest::Dashboard->start($vp, role => 'monitor');
	is($dashboard->get('/api/summary')->{status}, 200, 'the dashboard read the queue');
	$dashboard->stop;
}
is($vp->sql("SELECT string_agg(DISTINCT who::text, ', ') FROM public.calls WHERE who <> 'app'"), '',
	'none of the owner\'s functions ran as anybody else');
is($vp->value("SELECT rolsuper FROM pg_roles WHERE rolname = 'app'"), 'f', 'the owner is no superuser');

$vp->assert_no_crash;
done_testing();
