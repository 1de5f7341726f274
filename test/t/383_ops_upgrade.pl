# Upgrades and restores.  A database on vproxy 1.0.0, then one on 1.1.0,
# with jobs in every state (one running under a live worker, two repeating
# one another) is updated with ALTER EXTENSION vproxy UPDATE: its catalog
# (every function's definition, every table's columns, constraints, indexes
# and triggers, views, privileges, comments, the extension's members, both
# schemas) equals that of a fresh 1.2.0 install, every row is intact but the
# repeated job (cancelled, with a WARNING), and the running job completes as
# the same attempt.  A 1.0.0 database with blank checksums updates without a
# warning, every rule valid; one whose rows break a rule updates with a
# WARNING that says how to find them.  Then a pg_dump / pg_restore of the
# database into a new one (vproxy.database names it first: CREATE EXTENSION
# elsewhere is refused), which the workers then serve: the same catalog, the
# same rows, and the queued and running jobs complete.  The comparison is
# updated against fresh, never against a list, so that new SQL in the update
# script needs no change here.
use strict;
use warnings;
use File::Spec;
use PostgreSQL::Test::Utils;
use Test::More;
use VproxyTest::Grants;
use VproxyTest::Cluster;

# the fake child: $FAKE_TRANSCODE_DIR/control/<video id> holds "SECONDS EXIT"
my $fake = File::Spec->rel2abs('test/lib/VproxyTest/fake-transcode');
my $fake_dir = PostgreSQL::Test::Utils::tempdir();
mkdir "$fake_dir/control" or die "$fake_dir/control: $!";
$ENV{FAKE_TRANSCODE_DIR} = $fake_dir;    # the postmaster's children inherit it
my $vp = VproxyTest::Cluster->start(workers => 1, no_database => 1, settings => {
	'vproxy.transcode_path' => "'$fake'",
	'vproxy.lease_duration' => '10',
});
my $node = $vp->node;
$node->safe_psql('postgres', 'CREATE DATABASE vproxy');
$vp->sql("CREATE EXTENSION vproxy VERSION '1.0.0'");
is($vp->value("SELECT extversion FROM pg_extension WHERE extname = 'vproxy'"), '1.0.0', 'version 1.0.0 installed');

# fresh installs, on a server of their own without workers (vproxy.database is its "vproxy")
my $other = VproxyTest::Cluster->start(workers => 0, name => 'fresh');
my $fresh_node = $other->node;

# A description of everything the extension makes, one line per fact.
sub describe_catalog
{
	my ($on, $db) = @_;
	return $on->safe_psql($db, <<'SQL');
WITH ns AS (SELECT oid FROM pg_namespace WHERE nspname IN ('vproxy', 'vproxy_internal')),
facts AS (
	SELECT 'function ' || p.oid::regprocedure::text || E'\n' || pg_get_functiondef(p.oid)
		   || E'\nacl ' || coalesce(p.proacl::text, 'default')
		   || E'\ncomment ' || coalesce(obj_description(p.oid, 'pg_proc'), '') AS fact
	  FROM pg_proc p WHERE p.pronamespace IN (SELECT oid FROM ns)
	UNION ALL
	SELECT 'relation ' || c.relname || ' kind ' || c.relkind::text || ' acl ' || coalesce(c.relacl::text, 'default')
		   || ' comment ' || coalesce(obj_description(c.oid, 'pg_class'), '')
		   || CASE WHEN c.relkind = 'v' THEN E'\n' || pg_get_viewdef(c.oid) ELSE '' END
		   || CASE WHEN c.relkind = 'i' THEN E'\n' || pg_get_indexdef(c.oid) ELSE '' END
	  FROM pg_class c WHERE c.relnamespace IN (SELECT oid FROM ns)
	UNION ALL
	SELECT 'column ' || c.relname || '.' || a.attname || ' #' || a.attnum || ' ' || format_type(a.atttypid, a.atttypmod)
		   || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
		   || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
		   || coalesce(' acl ' || a.attacl::text, '')
		   || coalesce(' comment ' || col_description(c.oid, a.attnum), '')
	  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
	  LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
	 WHERE c.relnamespace IN (SELECT oid FROM ns) AND a.attnum > 0 AND NOT a.attisdropped
	UNION ALL
	SELECT 'constraint ' || conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid)
		   || ' validated ' || convalidated || ' comment ' || coalesce(obj_description(oid, 'pg_constraint'), '')
	  FROM pg_constraint WHERE connamespace IN (SELECT oid FROM ns)
	UNION ALL
	SELECT 'trigger ' || pg_get_triggerdef(t.oid) || ' enabled ' || t.tgenabled::text
	  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
	 WHERE c.relnamespace IN (SELECT oid FROM ns) AND NOT t.tgisinternal
	UNION ALL
	SELECT 'type ' || t.typname || ' ' || t.typtype::text
	  FROM pg_type t WHERE t.typnamespace IN (SELECT oid FROM ns)
	UNION ALL
	SELECT 'member ' || pg_describe_object(d.classid, d.objid, d.objsubid)
	  FROM pg_depend d
	 WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
	   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'vproxy')
	UNION ALL
	SELECT 'extension ' || extname || ' ' || extversion || ' schema ' || extnamespace::regnamespace::text
		   || ' config ' || coalesce((SELECT string_agg(t::regclass::text, ',' ORDER BY t::regclass::text)
									  FROM unnest(extconfig) t), '')
		   || ' conditions ' || coalesce(array_to_string(extcondition, ','), '')
	  FROM pg_extension WHERE extname = 'vproxy'
	UNION ALL
	SELECT 'schema ' || nspname || ' acl ' || coalesce(nspacl::text, 'default')
		   || ' comment ' || coalesce(obj_description(oid, 'pg_namespace'), '')
	  FROM pg_namespace WHERE oid IN (SELECT oid FROM ns))
SELECT string_agg(fact, E'\n' ORDER BY fact) FROM facts;
SQL
}

# Every row of both tables (the columns 1.0.0 had), in a stable order, but
# those of the job named (its progress and lease move) and of its video, and
# those of the videos of mall "dup" (the update cancels one of their jobs).
sub rows
{
	my ($db, $skip_job) = @_;
	my $skip = defined $skip_job ? "'$skip_job'" : 'NULL';
	return $node->safe_psql($db, "
		SELECT string_agg(row_to_json(v)::text, E'\\n' ORDER BY v.id) FROM vproxy.videos v
		 WHERE v.id IS DISTINCT FROM (SELECT video_id FROM vproxy.processing_jobs WHERE id = $skip)
		   AND v.mall_id <> 'dup';
		SELECT string_agg((to_jsonb(j) - 'parent_job_id' - 'error_code' - 'attempt_errors' - 'planned_outputs')::text,
						  E'\\n' ORDER BY j.id) FROM vproxy.processing_jobs j
		 WHERE j.id IS DISTINCT FROM $skip
		   AND j.video_id NOT IN (SELECT id FROM vproxy.videos WHERE mall_id = 'dup');");
}

# Set how long the child of a video runs and its exit status.
sub control
{
	my ($video, $seconds, $status) = @_;
	open my $control, '>', "$fake_dir/control/$video" or die "control of $video: $!";
	print $control "$seconds $status\n";
	close $control;
}

# A video whose child exits with $status after $seconds.
sub fake_video
{
	my ($db, $mall, $status, $seconds) = @_;
	my $video = $node->safe_psql($db, "INSERT INTO vproxy.videos (mall_id, pin_id, filename, original_path,
			checksum_sha256, file_size_bytes)
		VALUES ('$mall', 'pin-1', 'clip.mov', 'uploads/$mall/clip.mov',
				encode(sha256('$mall'::bytea), 'hex'), 1234) RETURNING id");
	control($video, $seconds, $status);
	return $video;
}

# Jobs in every state in $db: completed, failed, cancelled, pending (due
# later), pending (a retry with an error), a job queued twice (allowed
# before 1.2.0), and one running (returned).
sub fill
{
	my ($db, $running_seconds) = @_;
	my $q = sub { $node->safe_psql($db, $_[0]) };
	my $wait = sub { $vp->wait_until($_[0], undef, $db) or die "timed out: $_[0]" };
	my $done = $q->("SELECT vproxy.vproxy_enqueue('" . fake_video($db, 'done', 0, 0) . "')");
	my $failed = $q->("SELECT vproxy.vproxy_enqueue('" . fake_video($db, 'bad', 65, 0) . "', 'proxy_generation', 3)");
	$wait->("SELECT count(*) = 2 FROM vproxy.processing_jobs WHERE id IN ('$done', '$failed') AND status IN ('completed', 'failed')");
	my $later = fake_video($db, 'later', 0, 0);
	my $dup = fake_video($db, 'dup', 0, 0);
	$q->("BEGIN;
		SELECT vproxy.vproxy_enqueue('$later', 'metadata_extraction', 9, '{\"height\": 240}');
		SELECT vproxy.vproxy_enqueue('$later', 'thumbnail_generation', 1, '{\"timestamp_seconds\": 2}');
		SELECT vproxy.vproxy_enqueue('$later', 'proxy_generation', 0, '{\"crf\": 30, \"preset\": \"fast\"}');
		SELECT vproxy.vproxy_enqueue('$dup', 'metadata_extraction', 9);
		SELECT vproxy.vproxy_enqueue('$dup', 'metadata_extraction', 9);
		UPDATE vproxy.processing_jobs SET run_at = now() + interval '1 day', error_message = 'waits'
		 WHERE video_id IN ('$later', '$dup');
		COMMIT;");
	my $cancel = $q->("SELECT id FROM vproxy.processing_jobs WHERE video_id = '$later' AND job_type = 'thumbnail_generation'");
	$q->("SELECT vproxy.vproxy_cancel('$cancel')");
	my $running = $q->("SELECT vproxy.vproxy_enqueue('" . fake_video($db, 'long', 0, $running_seconds) . "')");
	$wait->("SELECT status = 'running' FROM vproxy.processing_jobs WHERE id = '$running'");
	$q->("INSERT INTO vproxy.videos (mall_id, original_path) VALUES ('idle', 'uploads/idle/never.mov')");
	is($q->("SELECT string_agg(DISTINCT status, ',' ORDER BY status) FROM vproxy.processing_jobs"),
		'cancelled,completed,failed,pending,running', "$db: jobs in every state");
	is($q->("SELECT string_agg(DISTINCT processing_status, ',' ORDER BY processing_status) FROM vproxy.videos"),
		'completed,failed,pending,processing', "$db: videos in every state");
	return $running;
}

# The catalog of a fresh install.
my $fresh = describe_catalog($fresh_node, 'vproxy');
like($fresh, qr/^function vproxy\.vproxy_enqueue/m, 'the description names the functions');
like($fresh, qr/^function vproxy_internal\.claim_job|^function vproxy\.claim_job/m, 'of both schemas');
like($fresh, qr/^constraint vproxy\.videos /m, 'and the constraints');

# Update a database at $version, with jobs in every state and one running
# under the worker, to 1.2.0: the catalog of a fresh install, the rows kept,
# the repeated job cancelled, the running job completed as the same attempt.
sub update_under_a_running_job
{
	my ($version) = @_;
	my $running = fill('vproxy', 8);
	my ($worker) = $vp->wait_for_child($running);
	ok($worker, "$version: the job runs under worker $worker");
	my $before = rows('vproxy', $running);

	my ($ret, $out, $err) = $node->psql('vproxy', 'ALTER EXTENSION vproxy UPDATE');
	is($ret, 0, "$version: ALTER EXTENSION vproxy UPDATE");
	like($err, qr/WARNING:  cancelled 1 queued job\(s\) that repeated an earlier one/,
		"$version: the repeated job is cancelled, with a WARNING (CREATE and ALTER EXTENSION show no NOTICE)");
	is(scalar(() = $err =~ /WARNING/g), 1, "$version: no other warning");
	is($vp->value("SELECT extversion FROM pg_extension WHERE extname = 'vproxy'"), '1.2.0',
		"$version: updated to 1.2.0");
	is($vp->job($running)->{status}, 'running', "$version: the job still runs after the update");
	is(rows('vproxy', $running), $before, "$version: every other row is intact");
	is($vp->value("SELECT string_agg(j.status, ',' ORDER BY j.created_at, j.id) FROM vproxy.processing_jobs j
			JOIN vproxy.videos v ON v.id = j.video_id WHERE v.mall_id = 'dup'"),
		'pending,cancelled', "$version: of the repeated jobs the first stays queued");
	is(describe_catalog($node, 'vproxy'), $fresh, "$version: the updated catalog equals a fresh 1.2.0 install");

	my $row = $vp->wait_for_job($running);
	is($row->{status}, 'completed', "$version: the job that ran during the update completed");
	is($row->{attempts}, 1, "$version: in its first attempt");
	is($vp->value("SELECT pid FROM vproxy.workers"), $worker, "$version: by the same worker");
	is($vp->video($row->{video_id})->{proxy_path}, "videos/long/proxy/$row->{video_id}.mp4",
		"$version: with the keys planned by the update");
}

update_under_a_running_job('1.0.0');
$vp->sql('DROP EXTENSION vproxy');
$vp->sql("CREATE EXTENSION vproxy VERSION '1.1.0'");
is($vp->value("SELECT extversion FROM pg_extension WHERE extname = 'vproxy'"), '1.1.0', 'version 1.1.0 installed');
update_under_a_running_job('1.1.0');

# a 1.0.0 database with blank checksums updates without a warning, every
# rule valid (they are blanked before the rules are validated)
$fresh_node->safe_psql('vproxy', "DROP EXTENSION vproxy; CREATE EXTENSION vproxy VERSION '1.0.0';
	INSERT INTO vproxy.videos (mall_id, original_path, checksum_sha256)
	VALUES ('m1', 'uploads/m1/a.mov', ''), ('m1', 'uploads/m1/b.mov', '');");
my ($ret, $out, $err) = $fresh_node->psql('vproxy', 'ALTER EXTENSION vproxy UPDATE');
is($ret, 0, 'a 1.0.0 database with blank checksums updates');
unlike($err, qr/WARNING/, 'without a warning');
is($fresh_node->safe_psql('vproxy', "SELECT count(*) FROM pg_constraint
		WHERE connamespace = 'vproxy'::regnamespace AND NOT convalidated"), '0', 'every rule is valid');
is($fresh_node->safe_psql('vproxy', "SELECT count(*) FROM vproxy.videos WHERE checksum_sha256 IS NULL"), '2',
	'the blank checksums are unknown (NULL)');

# a 1.0.0 database whose rows break the new rules still updates: those
# rules are added NOT VALID with a WARNING that says how to find the rows
$fresh_node->safe_psql('vproxy', "DROP EXTENSION vproxy; CREATE EXTENSION vproxy VERSION '1.0.0';
	INSERT INTO vproxy.videos (mall_id, original_path, checksum_sha256)
	VALUES ('mall-7/proxy', 'uploads/a.mov', 'not hex'), ('m1', '../b.mov', '');");
($ret, $out, $err) = $fresh_node->psql('vproxy', 'ALTER EXTENSION vproxy UPDATE');
is($ret, 0, 'a database with rows that break the new rules updates');
like($err, qr/WARNING:  existing rows of vproxy.videos break the new rule videos_mall_id_is_a_safe_name/,
	'with a WARNING naming the rule');
like($err, qr/HINT:  Find them with SELECT \* FROM vproxy.videos WHERE NOT/, 'and how to find the rows');
like($err, qr/WARNING:  2 row\(s\) of vproxy.videos have an original_path that vproxy 1.2.0 refuses for new rows/,
	'and a WARNING for the keys the rules of 1.2.0 refuse');
like($err, qr/HINT:  List them with SELECT id, mall_id, original_path/, 'with the query that lists them');
is($fresh_node->safe_psql('vproxy', "SELECT string_agg(conname || '=' || convalidated, ',' ORDER BY conname)
		FROM pg_constraint WHERE conrelid = 'vproxy.videos'::regclass AND contype = 'c'
		   AND (conname LIKE '%safe%' OR conname LIKE '%is_hex')"),
	'videos_checksum_sha256_is_hex=false,videos_mall_id_is_a_safe_name=false,videos_pin_id_is_a_safe_name=true',
	'the rules broken by old rows are not validated, the others are');
is($fresh_node->safe_psql('vproxy', "SELECT count(*) FROM vproxy.videos"), '2', 'the old rows are kept');
($ret, $out, $err) = $fresh_node->psql('vproxy', "INSERT INTO vproxy.videos (mall_id, original_path) VALUES ('../x', 'u.mov')");
like($err, qr/violates check constraint "videos_mall_id_is_a_safe_name"/, 'a new row is checked all the same');

# the update makes every function and view again, which drops their grants:
# a WARNING names the roles, and the README's grants give them back
$fresh_node->safe_psql('vproxy', "DROP EXTENSION vproxy; CREATE EXTENSION vproxy VERSION '1.1.0';
	CREATE ROLE app; CREATE ROLE monitor;
	GRANT USAGE ON SCHEMA vproxy TO app, monitor;
	GRANT EXECUTE ON FUNCTION vproxy.vproxy_job_status(uuid) TO app;
	GRANT SELECT ON vproxy.workers TO monitor;");
($ret, $out, $err) = $fresh_node->psql('vproxy', 'ALTER EXTENSION vproxy UPDATE');
is($ret, 0, '1.1.0 with grants to app and monitor updates');
like($err, qr/WARNING:  the update drops the grants on vproxy's functions and views held by app, monitor\n/,
	'with a WARNING naming the roles whose grants it drops');
like($err, qr/HINT:  Run the grants of the README again/, 'and what to do');
is($fresh_node->safe_psql('vproxy', "SELECT has_function_privilege('app', 'vproxy.vproxy_job_status(uuid)', 'EXECUTE'),
		has_table_privilege('monitor', 'vproxy.workers', 'SELECT')"), 'f|f', 'the grants are gone indeed');
$fresh_node->safe_psql('vproxy', VproxyTest::Grants::sql('application') . VproxyTest::Grants::sql('monitor'));
is($fresh_node->safe_psql('vproxy', "SELECT has_function_privilege('app', 'vproxy.vproxy_job_status(uuid)', 'EXECUTE'),
		has_table_privilege('monitor', 'vproxy.workers', 'SELECT')"), 't|t', 'the README\'s grants give them back');
$fresh_node->stop;

# pg_dump / pg_restore of the 1.2.0 database, with jobs in every state, into
# a new database: vproxy.database names it first (CREATE EXTENSION elsewhere
# is refused), and no worker runs while it is restored
my $running = fill('vproxy', 30);
my ($worker) = $vp->wait_for_child($running);
my $before = rows('vproxy', $running);
my $dump = PostgreSQL::Test::Utils::tempdir() . '/vproxy.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-d', $node->connstr('vproxy'), '-f', $dump ], 'pg_dump of the 1.2.0 database');
$node->safe_psql('postgres', 'CREATE DATABASE restored');
($ret, $out, $err) = $node->psql('restored', 'CREATE EXTENSION vproxy');
like($err, qr/ERROR:  vproxy can only be created in database "vproxy" \(vproxy.database\), not in "restored"/,
	'CREATE EXTENSION outside vproxy.database is refused, naming it');
$node->append_conf('postgresql.conf', "vproxy.database = 'restored'\nvproxy.workers = 0\n");
$node->restart;
$node->command_ok([ 'pg_restore', '--exit-on-error', '-d', $node->connstr('restored'), $dump ],
	'pg_restore into a new database');
is(describe_catalog($node, 'restored'), $fresh, 'the restored catalog equals a fresh 1.2.0 install');
is(rows('restored', $running), $before, 'every row was restored');
is($node->safe_psql('restored', "SELECT status || ' ' || attempts FROM vproxy.processing_jobs WHERE id = '$running'"),
	'running 1', 'the running job too, running');

# the workers serve the restored database: its queued jobs run, and the
# running one (its worker's life has ended) is taken over
$node->safe_psql('restored', "UPDATE vproxy.processing_jobs SET run_at = now() WHERE status = 'pending'");
control($node->safe_psql('restored', "SELECT video_id FROM vproxy.processing_jobs WHERE id = '$running'"), 0, 0);
my $failed_before = $node->safe_psql('restored', "SELECT count(*) FROM vproxy.processing_jobs WHERE status = 'failed'");
my $queued = $node->safe_psql('restored', "SELECT count(*) FROM vproxy.processing_jobs WHERE status IN ('pending', 'running')");
ok($queued >= 3, "$queued jobs queued or running in the restored database");
$node->append_conf('postgresql.conf', "vproxy.workers = 1\n");
$node->restart;
$vp->{start_time} = $vp->postmaster_start_time;
ok($vp->wait_until("SELECT NOT EXISTS (SELECT FROM vproxy.processing_jobs WHERE status IN ('pending', 'running'))",
		undef, 'restored'),
	'the workers carry on: every queued and running job of the restored database ended');
is($node->safe_psql('restored', "SELECT status || ' ' || attempts FROM vproxy.processing_jobs WHERE id = '$running'"),
	'completed 2', 'the restored running job was taken over and completed');
is($node->safe_psql('restored', "SELECT count(*) FROM vproxy.processing_jobs WHERE status = 'failed'"),
	$failed_before, 'only the jobs that had failed before the dump are failed');

$vp->assert_no_crash;
$node->stop;
done_testing();
