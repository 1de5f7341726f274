-- An application role and a monitor role without superuser, with exactly
-- the grants of src/server/README.md (read from it): enough to store videos,
-- queue, watch and cancel jobs, and nothing more.
CREATE EXTENSION IF NOT EXISTS vproxy;
CREATE ROLE app LOGIN;
CREATE ROLE monitor LOGIN;

-- without grants: nothing
SET ROLE app;
SELECT vproxy.vproxy_enqueue('00000000-0000-0000-0000-0000000000d1');
RESET ROLE;

-- the grants of the README
\set grants `test/lib/readme-block 'grants: application'`
:grants
\set grants `test/lib/readme-block 'grants: monitor'`
:grants

SET ROLE app;
SET search_path = vproxy;
INSERT INTO videos (id, mall_id, original_path)
VALUES ('00000000-0000-0000-0000-0000000000d1', 'm9', 'uploads/m9/x.mov');
SELECT vproxy_enqueue('00000000-0000-0000-0000-0000000000d1', priority => 3) AS app_job \gset
SELECT vproxy_job_status(:'app_job') ->> 'status' AS status;
SELECT processing_status FROM videos WHERE id = '00000000-0000-0000-0000-0000000000d1';
SELECT vproxy_cancel(:'app_job') AS cancelled;
SELECT vproxy_retry(:'app_job') AS retried;
-- the app cannot play worker, nor write the queue directly, nor call internals
SELECT * FROM claim_job('intruder');
SELECT finish_job(:'app_job', gen_random_uuid(), '{}');
UPDATE processing_jobs SET status = 'completed';
INSERT INTO processing_jobs (video_id) VALUES ('00000000-0000-0000-0000-0000000000d1');
SELECT vproxy_internal.wake_workers_at_commit();
SELECT vproxy_prune();
-- nor see the secret
SHOW vproxy.s3_secret_access_key;
RESET ROLE;

SET ROLE monitor;
SELECT count(*) >= 0 AS can_watch FROM vproxy.workers;
SELECT count(*) >= 0 AS can_watch FROM vproxy.job_statistics;
SELECT count(*) AS sees_jobs FROM vproxy.processing_jobs;
SELECT vproxy.vproxy_enqueue('00000000-0000-0000-0000-0000000000d1');
UPDATE vproxy.videos SET filename = 'x';
RESET ROLE;

TRUNCATE vproxy.videos CASCADE;
DROP OWNED BY app, monitor;
DROP ROLE app, monitor;
