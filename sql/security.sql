-- Security (1.2.0): no role gains power through vproxy, no tenant reaches
-- another tenant's rows or files.  The roles have exactly the grants of
-- src/server/README.md (read from it), and the row-level security recipe
-- runs as the README writes it.
CREATE EXTENSION IF NOT EXISTS vproxy;
TRUNCATE vproxy.videos CASCADE;
SELECT current_user AS admin, current_database() AS regress_db \gset
-- error positions inside the functions are not part of the contract
\set SHOW_CONTEXT never

-- every function of the extension sets a search_path that ends in pg_temp
SELECT p.oid::regprocedure AS without_pg_temp_last
  FROM pg_proc p JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
 WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'vproxy')
   AND NOT EXISTS (SELECT FROM unnest(p.proconfig) c WHERE c ~ '^search_path=.*\mpg_temp$');
SELECT count(*) > 60 AS functions_checked
  FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.deptype = 'e'
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'vproxy');
-- SECURITY DEFINER only where the owner's rights are needed
SELECT p.oid::regprocedure AS security_definer
  FROM pg_proc p WHERE p.prosecdef AND p.pronamespace IN ('vproxy'::regnamespace, 'vproxy_internal'::regnamespace)
 ORDER BY p.oid::regprocedure::text;

-- the roles of the README, with its grants
CREATE ROLE app LOGIN;
CREATE ROLE monitor LOGIN;
CREATE ROLE vproxy_worker LOGIN;
\set grants `test/lib/readme-block 'grants: application'`
:grants
\set grants `test/lib/readme-block 'grants: monitor'`
:grants
\set grants `test/lib/readme-block 'grants: worker'`
:grants
-- nothing of vproxy_internal is theirs
SELECT r AS role, has_schema_privilege(r, 'vproxy_internal', 'USAGE') AS internal_usage,
	   (SELECT count(*) FROM pg_proc p WHERE p.pronamespace = 'vproxy_internal'::regnamespace
		   AND has_function_privilege(r, p.oid, 'EXECUTE')) AS internal_functions
  FROM unnest(ARRAY['app', 'monitor', 'vproxy_worker']) r;
-- what each may execute of schema vproxy
SELECT r AS role, string_agg(p.proname, ', ' ORDER BY p.proname) AS executes
  FROM unnest(ARRAY['app', 'monitor', 'vproxy_worker']) r, pg_proc p
 WHERE p.pronamespace = 'vproxy'::regnamespace AND has_function_privilege(r, p.oid, 'EXECUTE')
 GROUP BY r ORDER BY r;

-- ---------------------------------------------------------------------------
-- The temporary-schema attack: domains pg_temp.<type> whose CHECK calls the
-- attacker's function, in force while the attacker calls every function it
-- may call (the SECURITY DEFINER ones behind them included).  Were one of
-- them to resolve a type name in pg_temp, the attacker's function would run
-- as the extension's owner and make the attacker a superuser.
-- ---------------------------------------------------------------------------
CREATE SCHEMA attacker;
CREATE TABLE attacker.calls (who name, superuser boolean);
GRANT ALL ON SCHEMA attacker TO PUBLIC;
GRANT ALL ON attacker.calls TO PUBLIC;
CREATE FUNCTION attacker.pwn(value text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO attacker.calls SELECT current_user, r.rolsuper FROM pg_roles r WHERE r.rolname = current_user;
	IF (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = current_user) THEN
		EXECUTE format('ALTER ROLE %I SUPERUSER', session_user);
	END IF;
	RETURN true;
END
$$;
GRANT EXECUTE ON FUNCTION attacker.pwn(text) TO PUBLIC;
INSERT INTO vproxy.videos (id, mall_id, original_path)
VALUES ('00000000-0000-0000-0000-0000000000b1', 'm1', 'uploads/m1/b.mov');
SELECT vproxy.vproxy_enqueue('00000000-0000-0000-0000-0000000000b1', 'metadata_extraction', 0) IS NOT NULL AS queued,
	   vproxy.vproxy_enqueue('00000000-0000-0000-0000-0000000000b1', 'proxy_generation', 1) IS NOT NULL AS queued,
	   vproxy.vproxy_enqueue('00000000-0000-0000-0000-0000000000b1', 'thumbnail_generation', 2) IS NOT NULL AS queued;

-- as the application
\c - app
SELECT format('CREATE DOMAIN pg_temp.%I AS pg_catalog.%I CHECK (attacker.pwn(VALUE::pg_catalog.text))', t, t)
  FROM unnest(ARRAY['text', 'jsonb', 'uuid', 'timestamptz', 'bytea', 'bool', 'name', 'varchar',
					'numeric', 'int4', 'int8', 'float4', 'float8']) t \gexec
SELECT 'the domains are in force'::text AS attacker_own_cast;
INSERT INTO vproxy.videos (id, mall_id, original_path)
VALUES ('00000000-0000-0000-0000-0000000000a1', 'm1', 'uploads/m1/a.mov');
SELECT vproxy.vproxy_enqueue('00000000-0000-0000-0000-0000000000a1') AS job \gset
SELECT vproxy.vproxy_enqueue('00000000-0000-0000-0000-0000000000a1', 'thumbnail_generation', 3,
							 '{"thumbnail_width": 160}') IS NOT NULL AS queued;
SELECT vproxy.vproxy_enqueue('00000000-0000-0000-0000-0000000000a1') = :'job' AS same_job;
SELECT vproxy.vproxy_job_status(:'job') ->> 'status' AS status;
SELECT vproxy.vproxy_url('00000000-0000-0000-0000-0000000000a1', 'original', '1 minute') LIKE 'file://%' AS url,
	   vproxy.vproxy_upload_url('00000000-0000-0000-0000-0000000000a1') LIKE 'file://%' AS upload_url;
SELECT vproxy.vproxy_cancel(:'job') AS cancelled;
SELECT vproxy.vproxy_retry(:'job') AS retried;
SELECT vproxy.vproxy_reprocess('00000000-0000-0000-0000-0000000000a1', '{"height": 720}') IS NOT NULL AS reprocessing;
SELECT vproxy.vproxy_delete_video('00000000-0000-0000-0000-0000000000a1') IS NOT NULL AS deleting;
SELECT count(*) AS deletions FROM vproxy.vproxy_delete_videos(ARRAY['00000000-0000-0000-0000-0000000000a1']::uuid[]);

-- as the worker
\c - vproxy_worker
SELECT format('CREATE DOMAIN pg_temp.%I AS pg_catalog.%I CHECK (attacker.pwn(VALUE::pg_catalog.text))', t, t)
  FROM unnest(ARRAY['text', 'jsonb', 'uuid', 'timestamptz', 'bytea', 'bool', 'name', 'varchar',
					'numeric', 'int4', 'int8', 'float4', 'float8']) t \gexec
SELECT 'the domains are in force'::text AS attacker_own_cast;
SELECT vproxy.worker_checkin('attacker', 'attacker', 'host', 1, 1) ->> 'extension_version' AS version;
SELECT job_id, lease_token FROM vproxy.claim_job('attacker') \gset w_
SELECT vproxy.heartbeat_job(:'w_job_id', :'w_lease_token', 0.5) > 0 AS held;
SELECT vproxy.finish_job(:'w_job_id', gen_random_uuid(), '{"status": "success"}') AS stranger_finished;
SELECT vproxy.finish_job(:'w_job_id', :'w_lease_token', '{"status": "success",
	"metadata": {"original": {"width": 64, "height": 48}}}') AS finished;
SELECT job_id, lease_token FROM vproxy.claim_job('attacker', ARRAY['proxy_generation']) \gset w_
SELECT vproxy.fail_job(:'w_job_id', :'w_lease_token', 'storage_unavailable', 'a failure', true) AS failed;
SELECT job_id, lease_token FROM vproxy.claim_job('attacker', ARRAY['thumbnail_generation']) \gset w_
SELECT vproxy.release_job(:'w_job_id', :'w_lease_token') AS released;
SELECT vproxy.next_claim_at() IS NOT NULL AS work_ahead;
SELECT vproxy.worker_checkout('attacker');

-- the attacker gained nothing: its function never ran as anybody else
\c - :admin
SELECT rolname, rolsuper FROM pg_roles WHERE rolname IN ('app', 'vproxy_worker') ORDER BY 1;
SELECT who, bool_or(superuser) AS ran_as_a_superuser, count(*) > 0 AS ran
  FROM attacker.calls GROUP BY who ORDER BY who;

-- ---------------------------------------------------------------------------
-- Keys the application writes: the one key rule and the tenant's upload
-- prefix; proxy_path and thumbnail_path are vproxy's
-- ---------------------------------------------------------------------------
TRUNCATE vproxy.videos CASCADE;
\c - app
INSERT INTO vproxy.videos (mall_id, original_path) VALUES ('m1', '/etc/passwd');
INSERT INTO vproxy.videos (mall_id, original_path) VALUES ('m1', 'uploads/m1/../../etc/passwd');
INSERT INTO vproxy.videos (mall_id, original_path) VALUES ('m1', 'uploads/m1//x.mov');
INSERT INTO vproxy.videos (mall_id, original_path) VALUES ('m1', E'uploads/m1/x\tmov');
INSERT INTO vproxy.videos (mall_id, original_path) VALUES ('m1', 'uploads/m1/' || repeat('x', 1020));
INSERT INTO vproxy.videos (mall_id, original_path) VALUES ('m1', 'uploads/m2/x.mov');
INSERT INTO vproxy.videos (mall_id, original_path) VALUES ('m1', 'uploads/m10/x.mov');
-- a key vproxy writes its outputs to is never an upload
INSERT INTO vproxy.videos (mall_id, original_path) VALUES ('m1', 'videos/m1/proxy/00000000-0000-0000-0000-0000000000c1.mp4');
INSERT INTO vproxy.videos (mall_id, original_path) VALUES ('m1', 'vproxy-split/00000000-0000-0000-0000-0000000000c1/1/video-0.chunk');
INSERT INTO vproxy.videos (mall_id, original_path, proxy_path)
VALUES ('m1', 'uploads/m1/x.mov', 'videos/m2/proxy/x.mp4');
INSERT INTO vproxy.videos (id, mall_id, original_path)
VALUES ('00000000-0000-0000-0000-0000000000c1', 'm1', 'uploads/m1/x.mov');
UPDATE vproxy.videos SET thumbnail_path = 'thumbnails/m2/x.jpg';
UPDATE vproxy.videos SET mall_id = 'm2';
UPDATE vproxy.videos SET original_path = 'uploads/m1/sub dir/ü.mov' RETURNING original_path;
SELECT 'the session is alive' AS alive;
\c - :admin
-- the owner and superusers pass (a restore writes what was there)
UPDATE vproxy.videos SET proxy_path = 'videos/m2/proxy/x.mp4' RETURNING proxy_path;
-- a key outside the tenant's prefixes is never signed
\c - app
SELECT vproxy.vproxy_url('00000000-0000-0000-0000-0000000000c1');
SELECT vproxy.vproxy_url('00000000-0000-0000-0000-0000000000c1', 'original') LIKE '%/uploads/m1/sub%20dir/%C3%BC.mov' AS own_key;
\c - :admin
-- nor a key the child would refuse (a row a superuser wrote, or one from before 1.2.0)
INSERT INTO vproxy.videos (id, mall_id, original_path)
VALUES ('00000000-0000-0000-0000-0000000000c2', 'm1', 'uploads/m1/../../etc/passwd');
\c - app
SELECT vproxy.vproxy_url('00000000-0000-0000-0000-0000000000c2', 'original');
SELECT vproxy.vproxy_upload_url('00000000-0000-0000-0000-0000000000c2');
\c - :admin
SELECT vproxy_internal.key_problem(k, o) AS problem, k AS key
  FROM (VALUES ('a/b.mp4', false), ('', false), ('/a', false), ('a//b', false), ('a/./b', false), ('a/..', false),
			   (E'a\x7f', false), (E'a\u0085b', false), ('a/{x}.mp4', false), ('a/{x}.mp4', true),
			   (repeat('é', 513), false)) AS t (k, o);

-- ---------------------------------------------------------------------------
-- Row-level security: the README's recipe, two tenants sharing the app role
-- ---------------------------------------------------------------------------
TRUNCATE vproxy.videos CASCADE;
\set recipe `test/lib/readme-block 'recipe: rls'`
:recipe
GRANT SELECT ON vproxy.job_statistics TO app;
-- every view runs as its reader, so that row-level security holds through it
SELECT c.relname AS view, 'security_invoker=true' = ANY (c.reloptions) AS runs_as_reader
  FROM pg_class c WHERE c.relnamespace = 'vproxy'::regnamespace AND c.relkind = 'v' ORDER BY 1;
\c - app
SET app.mall_id = 'm1';
INSERT INTO vproxy.videos (id, mall_id, original_path)
VALUES ('00000000-0000-0000-0000-0000000000d1', 'm1', 'uploads/m1/one.mov');
SELECT vproxy.vproxy_enqueue('00000000-0000-0000-0000-0000000000d1') AS m1_job \gset
SELECT vproxy.vproxy_delete_video('00000000-0000-0000-0000-0000000000d1') AS m1_deletion \gset
SELECT vproxy.vproxy_cancel(:'m1_deletion') AS cancelled;
INSERT INTO vproxy.videos (mall_id, original_path) VALUES ('m2', 'uploads/m2/two.mov');
SET app.mall_id = 'm2';
INSERT INTO vproxy.videos (id, mall_id, original_path)
VALUES ('00000000-0000-0000-0000-0000000000d2', 'm2', 'uploads/m2/two.mov');
SELECT count(*) AS videos_seen FROM vproxy.videos;
SELECT count(*) AS jobs_seen FROM vproxy.processing_jobs;
-- a view of the queue granted to the application shows its tenant's rows only
SELECT coalesce(sum(jobs), 0) AS jobs_in_statistics FROM vproxy.job_statistics;
-- tenant m2 names tenant m1's video and jobs: they do not exist for it
-- (SQLSTATE P0002, as for an id nobody has)
\set VERBOSITY sqlstate
SELECT vproxy.vproxy_enqueue('00000000-0000-0000-0000-0000000000d1');
SELECT vproxy.vproxy_reprocess('00000000-0000-0000-0000-0000000000d1');
SELECT vproxy.vproxy_url('00000000-0000-0000-0000-0000000000d1', 'original');
SELECT vproxy.vproxy_upload_url('00000000-0000-0000-0000-0000000000d1');
SELECT vproxy.vproxy_delete_video('00000000-0000-0000-0000-0000000000d1');
SELECT * FROM vproxy.vproxy_delete_videos(ARRAY['00000000-0000-0000-0000-0000000000d1']::uuid[]);
SELECT vproxy.vproxy_cancel(:'m1_job');
SELECT vproxy.vproxy_retry(:'m1_deletion');
SELECT vproxy.vproxy_retry('00000000-0000-0000-0000-0000000000ff');
\set VERBOSITY default
SELECT vproxy.vproxy_job_status(:'m1_job') AS status_of_m1_job;
-- its own work goes on
SELECT vproxy.vproxy_enqueue('00000000-0000-0000-0000-0000000000d2') IS NOT NULL AS queued;
SELECT vproxy.vproxy_url('00000000-0000-0000-0000-0000000000d2', 'original') LIKE '%/uploads/m2/two.mov' AS own_url;
-- a request that forgot its tenant sees nothing
RESET app.mall_id;
SELECT count(*) FROM vproxy.videos;
\c - monitor
SELECT count(*) AS monitor_sees_videos FROM vproxy.videos;
SELECT count(*) AS monitor_sees_jobs FROM vproxy.processing_jobs;
SELECT count(*) >= 0 AS monitor_sees_workers FROM vproxy.workers;
SELECT vproxy.vproxy_enqueue('00000000-0000-0000-0000-0000000000d2');
\c - :admin
-- tenant m1's jobs were untouched by m2
SELECT job_type, status FROM vproxy.processing_jobs j
  JOIN vproxy.videos v ON v.id = j.video_id WHERE v.mall_id = 'm1' ORDER BY j.created_at, job_type;
DROP POLICY videos_of_the_tenant ON vproxy.videos;
DROP POLICY monitor_sees_all ON vproxy.videos;
DROP POLICY jobs_of_the_tenant ON vproxy.processing_jobs;
DROP POLICY monitor_sees_all ON vproxy.processing_jobs;
ALTER TABLE vproxy.videos DISABLE ROW LEVEL SECURITY;
ALTER TABLE vproxy.processing_jobs DISABLE ROW LEVEL SECURITY;

-- ---------------------------------------------------------------------------
-- The log: the secret's value is hidden, the statement never
-- ---------------------------------------------------------------------------
SET log_statement = 'all';
SELECT 'vproxy-redact-1' /* vproxy.s3_secret_access_key = 'not a value' */ AS logged;
SET ROLE app;
ALTER SYSTEM SET vproxy.s3_secret_access_key = 'vproxy-redact-candidate-2';
SELECT set_config('vproxy.s3_session_token', 'vproxy-redact-candidate-3', false);
RESET ROLE;
DO $$BEGIN EXECUTE 'ALTER SYSTEM SET vproxy.s3_secret_access_key = ''vproxy-redact-candidate-4'''; END$$;
-- a role that cannot give the secret a value hides nothing by naming it:
-- its statements are logged as written (here, one that runs a string
-- that follows the name)
SET SESSION AUTHORIZATION app;
DO $$DECLARE s3_secret_access_key text; a text[]; BEGIN a := ARRAY[s3_secret_access_key, $q$SELECT 'vproxy-redact-5'$q$]; EXECUTE a[2]; END$$;
RESET SESSION AUTHORIZATION;
RESET log_statement;
-- the temporary instance's log: tmp_check/data's server writes log/postmaster.log
CREATE TEMP TABLE server_log AS
	SELECT pg_read_file(current_setting('data_directory') || '/../../log/postmaster.log') AS text;
SELECT position($$statement: SELECT 'vproxy-redact-1' /* vproxy.s3_secret_access_key = 'not a value' */ AS logged;$$
				IN text) > 0 AS comment_statement_logged,
	   position($$statement: ALTER SYSTEM SET vproxy.s3_secret_access_key = '********';$$ IN text) > 0 AS alter_logged,
	   position($$STATEMENT:  ALTER SYSTEM SET vproxy.s3_secret_access_key = '********';$$ IN text) > 0 AS failed_alter_logged,
	   position($$STATEMENT:  SELECT set_config('vproxy.s3_session_token', '********', false);$$ IN text) > 0
		   AS failed_set_config_logged,
	   position($q$STATEMENT:  DO $$BEGIN EXECUTE 'ALTER SYSTEM SET vproxy.s3_secret_access_key = ''********'''; END$$;$q$
				IN text) > 0 AS nested_logged,
	   position($x$statement: DO $$DECLARE s3_secret_access_key text; a text[]; BEGIN a := ARRAY[s3_secret_access_key, $q$SELECT 'vproxy-redact-5'$q$]; EXECUTE a[2]; END$$;$x$
				IN text) > 0 AS app_statement_logged_whole,
	   position('vproxy-redact-candidate' IN text) = 0 AS no_candidate_value,
	   position('regress-secret-do-not-show' IN text) = 0 AS no_secret
  FROM server_log;

-- ---------------------------------------------------------------------------
-- Schema vproxy must be a superuser's alone: PostgreSQL makes it at CREATE
-- EXTENSION, but a role with CREATE on the database (its owner) may make it
-- first, then rename it and put tables of its own under vproxy's names,
-- which the SECURITY DEFINER functions would then use as the extension's
-- owner.  CREATE EXTENSION and ALTER EXTENSION UPDATE refuse a schema
-- vproxy that another role owns, may create objects in, or has objects in.
-- ---------------------------------------------------------------------------
DROP EXTENSION vproxy;
ALTER SCHEMA vproxy OWNER TO app;
CREATE EXTENSION vproxy;
ALTER SCHEMA vproxy OWNER TO :admin;
GRANT CREATE ON SCHEMA vproxy TO app;
CREATE EXTENSION vproxy;
REVOKE CREATE ON SCHEMA vproxy FROM app;
CREATE FUNCTION vproxy.vproxy_prune(text) RETURNS bigint LANGUAGE sql AS 'SELECT 0::bigint';
ALTER FUNCTION vproxy.vproxy_prune(text) OWNER TO app;
CREATE EXTENSION vproxy VERSION '1.0.0';
DROP FUNCTION vproxy.vproxy_prune(text);
-- an update from an older version refuses it too
CREATE EXTENSION vproxy VERSION '1.1.0';
ALTER SCHEMA vproxy OWNER TO app;
ALTER EXTENSION vproxy UPDATE;
ALTER SCHEMA vproxy OWNER TO :admin;
DROP EXTENSION vproxy;
-- a schema of a superuser's, and no other's objects in it: installed
CREATE EXTENSION vproxy;
SELECT extversion FROM pg_extension WHERE extname = 'vproxy';
\set grants `test/lib/readme-block 'grants: application'`
:grants
\set grants `test/lib/readme-block 'grants: monitor'`
:grants
\set grants `test/lib/readme-block 'grants: worker'`
:grants

-- ---------------------------------------------------------------------------
-- A mistake: CREATE EXTENSION outside vproxy.database is an ERROR naming it
-- ---------------------------------------------------------------------------
CREATE DATABASE vproxy_regress_other;
\c vproxy_regress_other
CREATE EXTENSION vproxy;
SELECT 'the session is alive' AS alive;
\c :regress_db
DROP DATABASE vproxy_regress_other;

TRUNCATE vproxy.videos CASCADE;
DROP SCHEMA attacker CASCADE;
DROP OWNED BY app, monitor, vproxy_worker;
DROP ROLE app, monitor, vproxy_worker;
