-- The queue features of 1.2.0: idempotent enqueue, vproxy_retry with a
-- fresh attempt budget, error codes and the history of failed attempts
-- across retries, and one SQLSTATE per kind of mistake.
CREATE EXTENSION IF NOT EXISTS vproxy;
SET search_path = vproxy, public;
TRUNCATE videos CASCADE;
\set SHOW_CONTEXT never

INSERT INTO videos (id, mall_id, original_path)
VALUES ('00000000-0000-0000-0000-0000000000a1', 'm1', 'uploads/m1/a.mov'),
	   ('00000000-0000-0000-0000-0000000000a2', 'm1', 'uploads/m1/b.mov'),
	   ('00000000-0000-0000-0000-0000000000a3', 'm1', 'uploads/m1/c.mov');

-- enqueue is idempotent while the same job (video, type, params) is queued
-- or running; other params, another type or another video make another job
SELECT vproxy_enqueue('00000000-0000-0000-0000-0000000000a1') AS job \gset
SELECT vproxy_enqueue('00000000-0000-0000-0000-0000000000a1') = :'job' AS same,
	   vproxy_enqueue('00000000-0000-0000-0000-0000000000a1', 'proxy_generation', 0) = :'job' AS same_whatever_the_priority,
	   vproxy_enqueue('00000000-0000-0000-0000-0000000000a1', params => '{"crf": 23}') = :'job' AS same_params,
	   vproxy_enqueue('00000000-0000-0000-0000-0000000000a1', 'metadata_extraction') = :'job' AS same_type,
	   vproxy_reprocess('00000000-0000-0000-0000-0000000000a1') = :'job' AS reprocess_same;
SELECT count(*) AS jobs FROM processing_jobs;
-- running, it is still the same job; once it has ended, a new one
SELECT job_id = :'job' AS claimed FROM claim_job('w', ARRAY['proxy_generation']);
SELECT vproxy_enqueue('00000000-0000-0000-0000-0000000000a1') = :'job' AS same_while_running;

-- a failure records its code and the attempt; retry gives a fresh budget
SELECT fail_job(:'job', lease_token, 'bad_media', 'not a usable video: no video stream', false)
  FROM processing_jobs WHERE id = :'job';
SELECT status, attempts, max_attempts, error_code, error_message FROM processing_jobs WHERE id = :'job';
SELECT processing_status, processing_error FROM videos WHERE id = '00000000-0000-0000-0000-0000000000a1';
SELECT vproxy_enqueue('00000000-0000-0000-0000-0000000000a1') <> :'job' AS new_job_once_ended;
SELECT count(*) FILTER (WHERE vproxy_cancel(id)) AS others_cancelled
  FROM processing_jobs WHERE id <> :'job' AND status = 'pending';
SELECT vproxy_retry(:'job') AS retried;
SELECT status, attempts, max_attempts, error_code, error_message, completed_at IS NULL AS reopened,
	   run_at <= now() AS due_now, jsonb_array_length(attempt_errors) AS failed_attempts
  FROM processing_jobs WHERE id = :'job';
SELECT processing_status, processing_error FROM videos WHERE id = '00000000-0000-0000-0000-0000000000a1';
-- the second run fails twice more, retryable: attempt numbers keep counting
SELECT job_id = :'job' AS claimed, attempt FROM claim_job('w', ARRAY['proxy_generation']);
SELECT fail_job(:'job', lease_token, 'storage_unavailable', 'storage unreachable', true)
  FROM processing_jobs WHERE id = :'job';
UPDATE processing_jobs SET run_at = now() WHERE id = :'job';
SELECT job_id = :'job' AS claimed, attempt FROM claim_job('w', ARRAY['proxy_generation']);
SELECT fail_job(:'job', lease_token, NULL, 'the child said nothing', true)
  FROM processing_jobs WHERE id = :'job';
SELECT status, jsonb_path_query_array(attempt_errors, '$[*].attempt') AS attempts,
	   jsonb_path_query_array(attempt_errors, '$[*].code') AS codes,
	   jsonb_path_query_array(attempt_errors, '$[*].message') AS messages,
	   jsonb_path_query_array(attempt_errors, '$[*].worker') AS workers,
	   (SELECT bool_and((e ->> 'at')::timestamptz <= now()) FROM jsonb_array_elements(attempt_errors) e) AS timed
  FROM processing_jobs WHERE id = :'job';
SELECT vproxy_job_status(:'job') ->> 'error_code' AS error_code,
	   jsonb_array_length(vproxy_job_status(:'job') -> 'attempt_errors') AS history_length;

-- nothing to retry: queued, running or completed jobs; a segment is never retried alone
SELECT vproxy_retry(:'job') AS retried_pending;
SELECT vproxy_enqueue('00000000-0000-0000-0000-0000000000a2', 'metadata_extraction') AS meta \gset
SELECT job_id = :'meta' AS claimed FROM claim_job('w', ARRAY['metadata_extraction']);
SELECT vproxy_retry(:'meta') AS retried_running;
SELECT finish_job(:'meta', lease_token, '{"status": "success"}') FROM processing_jobs WHERE id = :'meta';
SELECT vproxy_retry(:'meta') AS retried_completed;
INSERT INTO processing_jobs (id, video_id, job_type, status, parent_job_id, completed_at)
VALUES ('00000000-0000-0000-0000-00000000e001', '00000000-0000-0000-0000-0000000000a2', 'proxy_segment', 'failed',
		:'meta', now());
\set VERBOSITY terse
SELECT vproxy_retry('00000000-0000-0000-0000-00000000e001') AS segment_retried;
\set VERBOSITY default
-- the same job queued again meanwhile: the retry leaves it to that one
SELECT vproxy_cancel(:'job') AS cancelled;
SELECT vproxy_enqueue('00000000-0000-0000-0000-0000000000a1') AS again \gset
SELECT vproxy_retry(:'job') AS retried_beside_the_same_job;
SELECT vproxy_cancel(:'again') AS cancelled;

-- a cancelled running job: its lease lingers, and the retry waits for it;
-- the cancel is in its history
SELECT vproxy_retry(:'job') AS retried;
SELECT job_id = :'job' AS claimed FROM claim_job('w', ARRAY['proxy_generation']);
SELECT vproxy_cancel(:'job') AS cancelled;
SELECT error_code, attempt_errors -> -1 ->> 'code' AS last_attempt, lease_expires_at > now() AS lease_lingers
  FROM processing_jobs WHERE id = :'job';
SELECT vproxy_retry(:'job') AS retried;
SELECT run_at = lease_expires_at AS waits_for_the_lease, status FROM processing_jobs WHERE id = :'job';
SELECT * FROM claim_job('w', ARRAY['proxy_generation']);
SELECT vproxy_cancel(:'job') AS cancelled;

-- a worker that vanished: the claim that takes the job over records it, and
-- the one after the last attempt fails the job with worker_lost
SELECT vproxy_enqueue('00000000-0000-0000-0000-0000000000a2', 'thumbnail_generation') AS lost \gset
UPDATE processing_jobs SET max_attempts = 2 WHERE id = :'lost';
SELECT attempt FROM claim_job('gone-1', ARRAY['thumbnail_generation']);
UPDATE processing_jobs SET lease_expires_at = now() - interval '1 s' WHERE id = :'lost';
SELECT attempt FROM claim_job('gone-2', ARRAY['thumbnail_generation']);
UPDATE processing_jobs SET lease_expires_at = now() - interval '1 s' WHERE id = :'lost';
SELECT * FROM claim_job('w', ARRAY['thumbnail_generation']);
SELECT status, error_code, jsonb_path_query_array(attempt_errors, '$[*].worker') AS workers,
	   jsonb_path_query_array(attempt_errors, '$[*].code') AS codes
  FROM processing_jobs WHERE id = :'lost';

-- a video being deleted: nothing is retried but its deletion
SELECT vproxy_delete_video('00000000-0000-0000-0000-0000000000a2') AS deletion \gset
SELECT vproxy_retry(:'lost');
SELECT job_id = :'deletion' AS claimed FROM claim_job('w', ARRAY['video_deletion']);
SELECT fail_job(:'deletion', lease_token, 'storage_refused', 'storage refused: AccessDenied', false)
  FROM processing_jobs WHERE id = :'deletion';
SELECT vproxy_retry(:'deletion') AS deletion_retried;

-- the error codes are a closed set
SELECT vproxy_enqueue('00000000-0000-0000-0000-0000000000a3', 'thumbnail_generation') AS thumb \gset
SELECT job_id = :'thumb' AS claimed FROM claim_job('w', ARRAY['thumbnail_generation']);
SELECT fail_job(:'thumb', lease_token, 'gremlins', 'x', false) FROM processing_jobs WHERE id = :'thumb';
SELECT status FROM processing_jobs WHERE id = :'thumb';
SELECT unnest(vproxy_internal.error_codes()) AS error_code;

-- one SQLSTATE per kind of mistake
\set VERBOSITY sqlstate
-- P0002: no such video or job (or not visible)
SELECT vproxy_enqueue('00000000-0000-0000-0000-0000000000ff');
SELECT vproxy_url('00000000-0000-0000-0000-0000000000ff');
SELECT vproxy_delete_video('00000000-0000-0000-0000-0000000000ff');
SELECT vproxy_cancel('00000000-0000-0000-0000-0000000000ff');
SELECT vproxy_retry('00000000-0000-0000-0000-0000000000ff');
-- 22004: a required value is NULL
SELECT vproxy_enqueue(NULL);
SELECT vproxy_url(NULL);
SELECT vproxy_upload_url(NULL);
SELECT vproxy_delete_video(NULL);
-- 22023: a value is not one of those allowed
SELECT vproxy_enqueue('00000000-0000-0000-0000-0000000000a1', 'transcode');
SELECT vproxy_enqueue('00000000-0000-0000-0000-0000000000a1', priority => 10);
SELECT vproxy_enqueue('00000000-0000-0000-0000-0000000000a1', params => '{"height": 17}');
SELECT vproxy_url('00000000-0000-0000-0000-0000000000a1', 'poster');
SELECT vproxy_url('00000000-0000-0000-0000-0000000000a1', 'original', '8 days');
SELECT vproxy_prune('-1 day');
SELECT * FROM claim_job('w', ARRAY['bogus']);
-- 55000: the video is being deleted
SELECT vproxy_enqueue('00000000-0000-0000-0000-0000000000a2');
SELECT vproxy_upload_url('00000000-0000-0000-0000-0000000000a2');
\set VERBOSITY default
TRUNCATE videos CASCADE;
