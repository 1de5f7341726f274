-- The application's API with workers off: vproxy_enqueue, vproxy_job_status,
-- vproxy_cancel, the NOTIFY and the monitoring views.
CREATE EXTENSION vproxy;
SET search_path = vproxy, public;
-- error positions inside the functions are not part of the contract
\set SHOW_CONTEXT never

\dx vproxy
SELECT count(*) AS extension_objects FROM pg_depend
 WHERE refclassid = 'pg_extension'::regclass
   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'vproxy');
-- both tables are dumped with their data
SELECT unnest(extconfig)::regclass AS dumped_tables FROM pg_extension WHERE extname = 'vproxy';
-- the catalog explains the API: every table, view, table column and
-- function of schema vproxy has a comment (the internals have a schema of
-- their own)
SELECT c.oid::regclass::text AS uncommented FROM pg_class c
 WHERE c.relnamespace = 'vproxy'::regnamespace AND c.relkind IN ('r', 'v')
   AND obj_description(c.oid, 'pg_class') IS NULL
UNION ALL
SELECT c.oid::regclass::text || '.' || a.attname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
 WHERE c.relnamespace = 'vproxy'::regnamespace AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
   AND col_description(c.oid, a.attnum) IS NULL
UNION ALL
SELECT p.oid::regprocedure::text FROM pg_proc p
 WHERE p.pronamespace = 'vproxy'::regnamespace AND obj_description(p.oid, 'pg_proc') IS NULL;
SELECT p.oid::regprocedure AS api, obj_description(p.oid, 'pg_proc') AS says FROM pg_proc p
 WHERE p.pronamespace = 'vproxy'::regnamespace AND p.proname LIKE 'vproxy\_%' ORDER BY 1::text;

INSERT INTO videos (id, mall_id, pin_id, filename, original_path, checksum_sha256)
VALUES ('00000000-0000-0000-0000-0000000000a1', 'm1', 'p1', 'a.mov', 'uploads/m1/a.mov', NULL),
       ('00000000-0000-0000-0000-0000000000a2', 'm1', NULL, 'b.mp4', 'uploads/m1/b.mp4', 'ab12000000000000000000000000000000000000000000000000000000000000');
SELECT id, processing_status, created_at = updated_at AS untouched FROM videos ORDER BY id;

-- validation: each bad input has a clear error
SELECT vproxy_enqueue('00000000-0000-0000-0000-0000000000ff');
SELECT vproxy_enqueue(NULL);
SELECT vproxy_enqueue('00000000-0000-0000-0000-0000000000a1', 'transcode_to_4k');
SELECT vproxy_enqueue('00000000-0000-0000-0000-0000000000a1', NULL);
SELECT vproxy_enqueue('00000000-0000-0000-0000-0000000000a1', priority => 10);
SELECT vproxy_enqueue('00000000-0000-0000-0000-0000000000a1', priority => -1);
SELECT vproxy_enqueue('00000000-0000-0000-0000-0000000000a1', 'thumbnail_generation', 5, '{"timestamp_seconds": -1}');
SELECT vproxy_enqueue('00000000-0000-0000-0000-0000000000a1', 'thumbnail_generation', 5, '{"timestamp_seconds": "5"}');
SELECT vproxy_enqueue('00000000-0000-0000-0000-0000000000a1', params => '{"crf": 28.5}');
SELECT vproxy_enqueue('00000000-0000-0000-0000-0000000000a1', params => '{"preset": "turbo"}');
SELECT vproxy_enqueue('00000000-0000-0000-0000-0000000000a1', params => '{"colour": "red"}');
SELECT vproxy_enqueue('00000000-0000-0000-0000-0000000000a1', params => '[1, 2]');
SELECT vproxy_enqueue('00000000-0000-0000-0000-0000000000a1', params => '{"height": 17}');
SELECT vproxy_enqueue('00000000-0000-0000-0000-0000000000a1', params => '{"height": null}');
-- nothing was left behind by the failed calls
SELECT count(*) AS jobs FROM processing_jobs;
SELECT processing_status FROM videos WHERE id = '00000000-0000-0000-0000-0000000000a1';

-- a rolled-back enqueue leaves nothing behind
BEGIN;
SELECT vproxy_enqueue('00000000-0000-0000-0000-0000000000a1') IS NOT NULL AS enqueued;
ROLLBACK;
SELECT count(*) AS jobs FROM processing_jobs;
SELECT processing_status FROM videos WHERE id = '00000000-0000-0000-0000-0000000000a1';

-- a proxy job marks its video processing; other types leave it alone
SELECT vproxy_enqueue('00000000-0000-0000-0000-0000000000a1') AS proxy_job \gset
SELECT vproxy_enqueue('00000000-0000-0000-0000-0000000000a2', 'thumbnail_generation', 2,
					  '{"timestamp_seconds": 1.5, "thumbnail_width": 160}') AS thumb_job \gset
SELECT vproxy_enqueue('00000000-0000-0000-0000-0000000000a2', 'metadata_extraction', 0, NULL) AS meta_job \gset
SELECT id, processing_status, processing_error FROM videos ORDER BY id;
SELECT job_type, status, priority, params, attempts, max_attempts, progress,
	   run_at <= now() AS runnable, lease_token IS NULL AS no_lease
  FROM processing_jobs ORDER BY priority;

-- the status of a queued job
SELECT vproxy_job_status(:'proxy_job') - 'job_id' AS status;
SELECT vproxy_job_status(:'proxy_job') ->> 'job_id' = :'proxy_job' AS names_the_job;
SELECT vproxy_job_status('00000000-0000-0000-0000-0000000000ff') AS unknown_job;

-- cancelling: the job, the video (the NOTIFY is checked by the isolation and TAP tests,
-- psql would print the sender's PID here)
SELECT vproxy_cancel(:'proxy_job') AS cancelled;
SELECT status, error_message, completed_at IS NOT NULL AS completed_at_set
  FROM processing_jobs WHERE id = :'proxy_job';
SELECT processing_status, processing_error FROM videos WHERE id = '00000000-0000-0000-0000-0000000000a1';
-- a second cancel does nothing
SELECT vproxy_cancel(:'proxy_job') AS cancelled_again;
SELECT vproxy_cancel('00000000-0000-0000-0000-0000000000ff');
-- what the NOTIFY payload is made of (the job id left out: it is random)
CREATE FUNCTION pg_temp.payload_of(job uuid) RETURNS jsonb LANGUAGE sql AS
	$$ SELECT json_build_object('job_id', job, 'video_id', video_id, 'job_type', job_type,
								'status', status)::jsonb FROM vproxy.processing_jobs WHERE id = job $$;
SELECT pg_temp.payload_of(:'proxy_job') - 'job_id' AS payload;

-- a cancelled proxy job on a video that already had a proxy leaves it completed
UPDATE videos SET proxy_path = 'videos/m1/proxy/old.mp4', processing_status = 'completed'
 WHERE id = '00000000-0000-0000-0000-0000000000a1';
SELECT vproxy_enqueue('00000000-0000-0000-0000-0000000000a1') AS again_job \gset
SELECT processing_status FROM videos WHERE id = '00000000-0000-0000-0000-0000000000a1';
SELECT vproxy_cancel(:'again_job');
SELECT processing_status, proxy_path FROM videos WHERE id = '00000000-0000-0000-0000-0000000000a1';

-- two proxy jobs for a video: cancelling one keeps the video processing
SELECT vproxy_enqueue('00000000-0000-0000-0000-0000000000a2') AS first_job \gset
SELECT vproxy_enqueue('00000000-0000-0000-0000-0000000000a2', params => '{"crf": 30}') AS second_job \gset
SELECT vproxy_cancel(:'first_job');
SELECT processing_status FROM videos WHERE id = '00000000-0000-0000-0000-0000000000a2';
SELECT vproxy_cancel(:'second_job');
SELECT processing_status, processing_error FROM videos WHERE id = '00000000-0000-0000-0000-0000000000a2';

-- the statistics views
SELECT job_type, status, jobs, avg_duration_seconds >= 0 AS has_duration
  FROM job_statistics ORDER BY job_type, status;
SELECT job_type, error_message FROM recent_failures;
SELECT count(*) AS slow FROM slow_jobs;
-- no workers configured: the view is empty
SELECT * FROM workers;

-- deleting a video deletes its jobs
DELETE FROM videos WHERE id = '00000000-0000-0000-0000-0000000000a2';
SELECT count(*) AS jobs_left FROM processing_jobs;
