-- The worker's side with workers off: claim, heartbeat, finish, fail, hand
-- back and lease takeover, called as a worker would through SPI.
CREATE EXTENSION IF NOT EXISTS vproxy;
SET search_path = vproxy, public;
TRUNCATE videos CASCADE;

INSERT INTO videos (id, mall_id, pin_id, filename, original_path, checksum_sha256, file_size_bytes)
VALUES ('00000000-0000-0000-0000-0000000000b1', 'm1', 'p9', 'one.mov', 'uploads/m1/one.mov', NULL, 1000),
       ('00000000-0000-0000-0000-0000000000b2', 'm2', NULL, 'two.mp4', 'uploads/m2/two.mp4', 'AB12FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF', NULL);

-- nothing queued: no claim, nothing to wait for
SELECT * FROM claim_job('test-worker');
SELECT next_claim_at() AS next_claim_at;

-- queue: priority first, then age; a delayed job is not claimed early
INSERT INTO processing_jobs (id, video_id, job_type, priority, created_at, run_at) VALUES
	('00000000-0000-0000-0000-00000000c001', '00000000-0000-0000-0000-0000000000b1', 'proxy_generation', 5, now() - interval '3 min', now() - interval '3 min'),
	('00000000-0000-0000-0000-00000000c002', '00000000-0000-0000-0000-0000000000b2', 'proxy_generation', 1, now() - interval '1 min', now() - interval '1 min'),
	('00000000-0000-0000-0000-00000000c003', '00000000-0000-0000-0000-0000000000b1', 'metadata_extraction', 5, now() - interval '2 min', now() - interval '2 min'),
	('00000000-0000-0000-0000-00000000c004', '00000000-0000-0000-0000-0000000000b2', 'thumbnail_generation', 0, now(), now() + interval '1 hour');
UPDATE processing_jobs SET params = '{"timestamp_seconds": 2}' WHERE id = '00000000-0000-0000-0000-00000000c004';
SELECT next_claim_at() < now() AS work_is_due;

SELECT job_id, video_id, job_type, attempt, lease_token IS NOT NULL AS leased, spec
  FROM claim_job('test-worker');
SELECT job_id, attempt, lease_seconds, timeout_seconds, spec -> 'outputs' AS outputs, spec -> 'original' AS original
  FROM claim_job('test-worker');
SELECT job_id, job_type, spec -> 'outputs' AS outputs FROM claim_job('test-worker');
-- the delayed one stays queued
SELECT * FROM claim_job('test-worker');
SELECT id, status, attempts, lease_holder, lease_expires_at > now() AS lease_valid,
	   started_at IS NOT NULL AS started
  FROM processing_jobs ORDER BY id;
-- the earliest lease expiry or delayed retry is when to look again
SELECT next_claim_at() = (SELECT min(lease_expires_at) FROM processing_jobs) AS wakes_at_lease_expiry;

-- heartbeat: the right token extends the lease and records progress
SELECT lease_token AS token_c002 FROM processing_jobs WHERE id = '00000000-0000-0000-0000-00000000c002' \gset
SELECT heartbeat_job('00000000-0000-0000-0000-00000000c002', :'token_c002', 0.25) AS held;
SELECT progress, lease_expires_at > now() + interval '50 s' AS extended,
	   lease_expires_at <= now() + interval '60 s' AS by_lease_duration_only
  FROM processing_jobs WHERE id = '00000000-0000-0000-0000-00000000c002';
-- progress never goes back; a wrong token is refused
SELECT heartbeat_job('00000000-0000-0000-0000-00000000c002', :'token_c002', 0.1) AS held;
SELECT heartbeat_job('00000000-0000-0000-0000-00000000c002', gen_random_uuid(), 0.9) AS held_by_stranger;
SELECT progress FROM processing_jobs WHERE id = '00000000-0000-0000-0000-00000000c002';

-- finish: a stranger's result is refused and writes nothing
SELECT finish_job('00000000-0000-0000-0000-00000000c002', gen_random_uuid(), '{"status": "success"}') AS finished;
SELECT status FROM processing_jobs WHERE id = '00000000-0000-0000-0000-00000000c002';
-- the holder's result must name the keys its claim planned, and no other
SELECT finish_job('00000000-0000-0000-0000-00000000c002', :'token_c002',
	'{"status": "success", "proxy_path": "videos/m1/proxy/00000000-0000-0000-0000-0000000000b1.mp4",
	  "thumbnail_path": "thumbnails/m2/00000000-0000-0000-0000-0000000000b2.jpg"}');
SELECT finish_job('00000000-0000-0000-0000-00000000c002', :'token_c002',
	'{"status": "success", "proxy_path": "/etc/passwd"}');
SELECT status, planned_outputs FROM processing_jobs WHERE id = '00000000-0000-0000-0000-00000000c002';
-- the holder's result updates the job and the video in one go
SELECT finish_job('00000000-0000-0000-0000-00000000c002', :'token_c002', $$
	{"status": "success", "proxy_path": "videos/m2/proxy/00000000-0000-0000-0000-0000000000b2.mp4",
	 "thumbnail_path": "thumbnails/m2/00000000-0000-0000-0000-0000000000b2.jpg",
	 "original_sha256": "ffee",
	 "metadata": {"original": {"width": 1920, "height": 1080, "fps": 29.97, "duration_seconds": 12.5,
							   "codec": "h264", "bitrate": 5000000, "file_size_bytes": 7812500},
				  "proxy": {"width": 854, "height": 480, "fps": 10, "duration_seconds": 12.5,
							"codec": "h264", "bitrate": 300000, "file_size_bytes": 470000},
				  "thumbnail": {"width": 320, "height": 180, "file_size_bytes": 9000, "timestamp_seconds": 5}}}
	$$) AS finished;
SELECT status, progress, error_message, completed_at IS NOT NULL AS done, lease_token IS NULL AS lease_gone,
	   result_data ? 'original_sha256' AS keeps_sha, result_data ->> 'proxy_path' AS proxy_path
  FROM processing_jobs WHERE id = '00000000-0000-0000-0000-00000000c002';
-- the checksum the video had is kept (the child checked it)
SELECT width, height, fps, duration_seconds, codec, bitrate, file_size_bytes, checksum_sha256,
	   proxy_path, thumbnail_path, processing_status, processing_error,
	   processing_completed_at IS NOT NULL AS completed_at_set
  FROM videos WHERE id = '00000000-0000-0000-0000-0000000000b2';
-- finishing twice is refused
SELECT finish_job('00000000-0000-0000-0000-00000000c002', :'token_c002', '{}') AS finished_again;

-- metadata_extraction refreshes the metadata only, and fills a missing checksum
SELECT lease_token AS token_c003 FROM processing_jobs WHERE id = '00000000-0000-0000-0000-00000000c003' \gset
SELECT finish_job('00000000-0000-0000-0000-00000000c003', :'token_c003', $$
	{"status": "success", "original_sha256": "ABCDEF9999999999999999999999999999999999999999999999999999999999",
	 "metadata": {"original": {"width": 640, "height": 360, "fps": 25, "duration_seconds": 3,
							   "codec": "hevc", "bitrate": 800000, "file_size_bytes": 1000}}}$$) AS finished;
SELECT width, height, codec, checksum_sha256, proxy_path, thumbnail_path, processing_status
  FROM videos WHERE id = '00000000-0000-0000-0000-0000000000b1';

-- a result of the wrong shape is an error (the worker records it as the failure)
SELECT lease_token AS token_c001 FROM processing_jobs WHERE id = '00000000-0000-0000-0000-00000000c001' \gset
SELECT finish_job('00000000-0000-0000-0000-00000000c001', :'token_c001',
				  '{"proxy_path": "videos/m1/proxy/00000000-0000-0000-0000-0000000000b1.mp4",
					"thumbnail_path": "thumbnails/m1/00000000-0000-0000-0000-0000000000b1.jpg",
					"metadata": {"original": {"width": "wide"}}}');
SELECT status FROM processing_jobs WHERE id = '00000000-0000-0000-0000-00000000c001';

-- fail, retryable with attempts left: queued again after the backoff
-- (vproxy.retry_delay, 5 minutes), the error code and the attempt recorded
SELECT fail_job('00000000-0000-0000-0000-00000000c001', :'token_c001', 'storage_unavailable', 'storage unreachable', true) AS new_status;
SELECT status, attempts, error_code, error_message, lease_token IS NULL AS lease_gone,
	   jsonb_path_query_array(attempt_errors, '$[*].attempt') AS failed_attempts,
	   attempt_errors -> 0 ->> 'worker' AS worker, attempt_errors -> 0 ->> 'code' AS code,
	   run_at >= now() + interval '300 s' AND run_at <= now() + interval '375 s' AS backoff_with_jitter
  FROM processing_jobs WHERE id = '00000000-0000-0000-0000-00000000c001';
SELECT processing_status FROM videos WHERE id = '00000000-0000-0000-0000-0000000000b1';
-- the old token is worthless now
SELECT fail_job('00000000-0000-0000-0000-00000000c001', :'token_c001', 'internal', 'late', false) AS new_status;

-- second attempt: the delay doubles
UPDATE processing_jobs SET run_at = now() - interval '1 s' WHERE id = '00000000-0000-0000-0000-00000000c001';
SELECT job_id, attempt FROM claim_job('test-worker');
SELECT lease_token AS token_c001 FROM processing_jobs WHERE id = '00000000-0000-0000-0000-00000000c001' \gset
SELECT fail_job('00000000-0000-0000-0000-00000000c001', :'token_c001', 'timeout', 'timed out after 3600 s', true) AS new_status;
SELECT run_at >= now() + interval '600 s' AND run_at <= now() + interval '750 s' AS doubled
  FROM processing_jobs WHERE id = '00000000-0000-0000-0000-00000000c001';

-- handing back on shutdown does not spend the attempt
UPDATE processing_jobs SET run_at = now() - interval '1 s' WHERE id = '00000000-0000-0000-0000-00000000c001';
SELECT job_id, attempt FROM claim_job('test-worker');
SELECT lease_token AS token_c001 FROM processing_jobs WHERE id = '00000000-0000-0000-0000-00000000c001' \gset
SELECT release_job('00000000-0000-0000-0000-00000000c001', :'token_c001') AS released;
SELECT status, attempts, run_at <= now() AS runnable, lease_token IS NULL AS lease_gone
  FROM processing_jobs WHERE id = '00000000-0000-0000-0000-00000000c001';
SELECT release_job('00000000-0000-0000-0000-00000000c001', :'token_c001') AS released_again;

-- last attempt, retryable failure: failed for good, with the video
SELECT job_id, attempt FROM claim_job('test-worker');
SELECT lease_token AS token_c001 FROM processing_jobs WHERE id = '00000000-0000-0000-0000-00000000c001' \gset
SELECT fail_job('00000000-0000-0000-0000-00000000c001', :'token_c001', 'storage_unavailable', 'storage unreachable', true) AS new_status;
SELECT status, attempts, error_code, error_message,
	   jsonb_path_query_array(attempt_errors, '$[*].code') AS codes
  FROM processing_jobs WHERE id = '00000000-0000-0000-0000-00000000c001';
SELECT processing_status, processing_error FROM videos WHERE id = '00000000-0000-0000-0000-0000000000b1';

-- a non-retryable failure fails at once, on the first attempt
INSERT INTO processing_jobs (id, video_id) VALUES
	('00000000-0000-0000-0000-00000000c005', '00000000-0000-0000-0000-0000000000b1');
SELECT job_id, attempt FROM claim_job('test-worker');
SELECT lease_token AS token_c005 FROM processing_jobs WHERE id = '00000000-0000-0000-0000-00000000c005' \gset
SELECT fail_job('00000000-0000-0000-0000-00000000c005', :'token_c005', 'checksum_mismatch', 'checksum mismatch', false) AS new_status;
SELECT status, attempts, error_message FROM processing_jobs WHERE id = '00000000-0000-0000-0000-00000000c005';
SELECT processing_status, processing_error FROM videos WHERE id = '00000000-0000-0000-0000-0000000000b1';

-- the backoff stops doubling at a day: 2^59 times the delay would overflow
-- an interval (and fail_job with it)
INSERT INTO processing_jobs (id, video_id, job_type, attempts, max_attempts) VALUES
	('00000000-0000-0000-0000-00000000c00a', '00000000-0000-0000-0000-0000000000b2', 'metadata_extraction', 59, 100);
SELECT job_id, attempt FROM claim_job('test-worker');
SELECT lease_token AS token_c00a FROM processing_jobs WHERE id = '00000000-0000-0000-0000-00000000c00a' \gset
SELECT fail_job('00000000-0000-0000-0000-00000000c00a', :'token_c00a', 'storage_unavailable', 'storage unreachable', true) AS new_status;
SELECT status, attempts,
	   run_at >= now() + interval '1 day' AND run_at <= now() + interval '30 hours' AS capped_at_a_day
  FROM processing_jobs WHERE id = '00000000-0000-0000-0000-00000000c00a';
DELETE FROM processing_jobs WHERE id = '00000000-0000-0000-0000-00000000c00a';

-- a vanished worker: its lease expires and another claim takes over;
-- the first holder can no longer write anything
INSERT INTO processing_jobs (id, video_id, max_attempts) VALUES
	('00000000-0000-0000-0000-00000000c006', '00000000-0000-0000-0000-0000000000b1', 2);
SELECT job_id, attempt FROM claim_job('worker-a');
SELECT lease_token AS token_a FROM processing_jobs WHERE id = '00000000-0000-0000-0000-00000000c006' \gset
SELECT * FROM claim_job('worker-b');
UPDATE processing_jobs SET lease_expires_at = now() - interval '1 s' WHERE id = '00000000-0000-0000-0000-00000000c006';
SELECT job_id, attempt FROM claim_job('worker-b');
SELECT lease_holder, attempts, lease_token <> :'token_a' AS new_token
  FROM processing_jobs WHERE id = '00000000-0000-0000-0000-00000000c006';
SELECT heartbeat_job('00000000-0000-0000-0000-00000000c006', :'token_a', 0.5) AS a_held;
SELECT finish_job('00000000-0000-0000-0000-00000000c006', :'token_a', '{"status": "success"}') AS a_finished;
SELECT fail_job('00000000-0000-0000-0000-00000000c006', :'token_a', 'internal', 'x', false) AS a_failed;
SELECT release_job('00000000-0000-0000-0000-00000000c006', :'token_a') AS a_released;
SELECT status FROM processing_jobs WHERE id = '00000000-0000-0000-0000-00000000c006';
-- worker b vanishes too, on the last attempt: the next claim fails the job
UPDATE processing_jobs SET lease_expires_at = now() - interval '1 s' WHERE id = '00000000-0000-0000-0000-00000000c006';
SELECT * FROM claim_job('worker-c');
SELECT status, attempts, error_code, error_message, jsonb_path_query_array(attempt_errors, '$[*].code') AS codes,
	   jsonb_path_query_array(attempt_errors, '$[*].worker') AS workers
  FROM processing_jobs WHERE id = '00000000-0000-0000-0000-00000000c006';

-- leases of an earlier life of this server expire at once; others stay
-- (c008 and c009 only read the video, so c007 may run beside them)
INSERT INTO processing_jobs (id, video_id, job_type, params, status, attempts, lease_token, lease_expires_at, lease_holder) VALUES
	('00000000-0000-0000-0000-00000000c007', '00000000-0000-0000-0000-0000000000b2', 'proxy_generation', '{}', 'running', 1, gen_random_uuid(), now() + interval '1 h', 'postgres 42/1000/77'),
	('00000000-0000-0000-0000-00000000c008', '00000000-0000-0000-0000-0000000000b2', 'metadata_extraction', '{}', 'running', 1, gen_random_uuid(), now() + interval '1 h', 'postgres 42/2000/78'),
	('00000000-0000-0000-0000-00000000c009', '00000000-0000-0000-0000-0000000000b2', 'metadata_extraction', '{"fps": 5}', 'running', 1, gen_random_uuid(), now() + interval '1 h', 'host-b:4242');
SELECT vproxy_internal.expire_leases_of_earlier_lives('postgres 42/', 'postgres 42/2000/') AS expired;
SELECT id, lease_expires_at <= now() AS expired FROM processing_jobs
 WHERE id IN ('00000000-0000-0000-0000-00000000c007', '00000000-0000-0000-0000-00000000c008',
			  '00000000-0000-0000-0000-00000000c009') ORDER BY id;
SELECT job_id, attempt FROM claim_job('postgres 42/2000/79');

-- the job status has the old API's shape
SELECT jsonb_object_keys(vproxy_job_status('00000000-0000-0000-0000-00000000c002')) AS keys ORDER BY 1;
SELECT vproxy_job_status('00000000-0000-0000-0000-00000000c002') ->> 'status' AS status,
	   (vproxy_job_status('00000000-0000-0000-0000-00000000c002') ->> 'duration_seconds')::float >= 0 AS has_duration,
	   vproxy_job_status('00000000-0000-0000-0000-00000000c002') #>> '{result_data,metadata,proxy,height}' AS proxy_height;

-- a cancelled job's lease is void: the worker's heartbeat tells it to stop
SELECT lease_token AS token_c007 FROM processing_jobs WHERE id = '00000000-0000-0000-0000-00000000c007' \gset
SELECT vproxy_cancel('00000000-0000-0000-0000-00000000c007') AS cancelled;
SELECT heartbeat_job('00000000-0000-0000-0000-00000000c007', :'token_c007', 0.5) AS still_held;
SELECT finish_job('00000000-0000-0000-0000-00000000c007', :'token_c007', '{"status": "success"}') AS finished;

SELECT job_type, status, jobs FROM job_statistics ORDER BY 1, 2;
SELECT job_id, error_message FROM recent_failures ORDER BY job_id;

-- one writer per video: a deletion waits for every running job of its
-- video (a metadata job included); its spec names every object to remove
-- but the keys outside the tenant's prefixes, which its plan says it skips
TRUNCATE videos CASCADE;
INSERT INTO videos (id, mall_id, original_path, proxy_path, thumbnail_path)
VALUES ('00000000-0000-0000-0000-0000000000b3', 'm3', 'uploads/m3/three.mov',
		'videos/m3/old/b3.mp4', 'thumbnails/m9/b3.jpg');
INSERT INTO processing_jobs (id, video_id, job_type, priority) VALUES
	('00000000-0000-0000-0000-00000000c010', '00000000-0000-0000-0000-0000000000b3', 'metadata_extraction', 0),
	('00000000-0000-0000-0000-00000000c011', '00000000-0000-0000-0000-0000000000b3', 'video_deletion', 1);
SELECT job_id, job_type FROM claim_job('test-worker');
SELECT * FROM claim_job('test-worker');
-- nothing to claim until the metadata job's lease expires
SELECT next_claim_at() = (SELECT lease_expires_at FROM processing_jobs
						   WHERE id = '00000000-0000-0000-0000-00000000c010') AS waits_for_the_running_job;
-- a claim for other job types only does not see it
SELECT * FROM claim_job('test-worker', job_types => ARRAY['video_deletion']);
SELECT next_claim_at(ARRAY['thumbnail_generation']) = (SELECT lease_expires_at FROM processing_jobs
						   WHERE id = '00000000-0000-0000-0000-00000000c010') AS only_the_lease_expiry;
UPDATE processing_jobs SET status = 'completed', lease_token = NULL, lease_expires_at = NULL
 WHERE id = '00000000-0000-0000-0000-00000000c010';
SELECT job_id, job_type, jsonb_pretty(spec - 'job_id' - 'video_id') AS spec
  FROM claim_job('test-worker', job_types => ARRAY['video_deletion']);
SELECT jsonb_pretty(planned_outputs -> 'skipped_keys') AS skipped
  FROM processing_jobs WHERE id = '00000000-0000-0000-0000-00000000c011';
