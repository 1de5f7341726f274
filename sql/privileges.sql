-- An application role without superuser: the documented grants are enough
-- to store videos, queue, watch and cancel jobs, and nothing more.
CREATE EXTENSION IF NOT EXISTS vproxy;
CREATE ROLE vproxy_regress_app LOGIN;
CREATE ROLE vproxy_regress_monitor LOGIN;

-- without grants: nothing
SET ROLE vproxy_regress_app;
SELECT vproxy.vproxy_enqueue('00000000-0000-0000-0000-0000000000d1');
RESET ROLE;

-- the grants of the README
GRANT USAGE ON SCHEMA vproxy TO vproxy_regress_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON vproxy.videos TO vproxy_regress_app;
GRANT SELECT ON vproxy.processing_jobs TO vproxy_regress_app;
GRANT EXECUTE ON FUNCTION vproxy.vproxy_enqueue(uuid, text, int, jsonb),
	vproxy.vproxy_job_status(uuid), vproxy.vproxy_cancel(uuid) TO vproxy_regress_app;
GRANT USAGE ON SCHEMA vproxy TO vproxy_regress_monitor;
GRANT SELECT ON vproxy.workers, vproxy.job_statistics, vproxy.recent_failures,
	vproxy.slow_jobs TO vproxy_regress_monitor;
GRANT SELECT ON vproxy.videos, vproxy.processing_jobs TO vproxy_regress_monitor;
GRANT EXECUTE ON FUNCTION vproxy.worker_activity() TO vproxy_regress_monitor;

SET ROLE vproxy_regress_app;
SET search_path = vproxy;
INSERT INTO videos (id, mall_id, original_path)
VALUES ('00000000-0000-0000-0000-0000000000d1', 'm9', 'uploads/m9/x.mov');
SELECT vproxy_enqueue('00000000-0000-0000-0000-0000000000d1', priority => 3) AS app_job \gset
SELECT vproxy_job_status(:'app_job') ->> 'status' AS status;
SELECT processing_status FROM videos WHERE id = '00000000-0000-0000-0000-0000000000d1';
SELECT vproxy_cancel(:'app_job') AS cancelled;
-- the app cannot play worker, nor write the queue directly
SELECT * FROM claim_job('intruder');
SELECT finish_job(:'app_job', gen_random_uuid(), '{}');
UPDATE processing_jobs SET status = 'completed';
INSERT INTO processing_jobs (video_id) VALUES ('00000000-0000-0000-0000-0000000000d1');
SELECT vproxy_internal.wake_workers_at_commit();
-- nor see the secret
SHOW vproxy.s3_secret_access_key;
RESET ROLE;

SET ROLE vproxy_regress_monitor;
SELECT count(*) >= 0 AS can_watch FROM vproxy.workers;
SELECT count(*) >= 0 AS can_watch FROM vproxy.job_statistics;
SELECT vproxy.vproxy_enqueue('00000000-0000-0000-0000-0000000000d1');
RESET ROLE;

DROP OWNED BY vproxy_regress_app, vproxy_regress_monitor;
DROP ROLE vproxy_regress_app, vproxy_regress_monitor;
