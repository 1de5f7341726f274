-- Split proxies in SQL, with workers off: a proxy job's plan queues its
-- units, the units run beside each other, the last one queues the stitch,
-- whose end completes the parent once; a unit failing for good fails the
-- parent; a cancel stops the units; the temporary objects get a cleanup.
CREATE EXTENSION IF NOT EXISTS vproxy;
SET search_path = vproxy, public;
TRUNCATE videos CASCADE;

INSERT INTO videos (id, mall_id, filename, original_path, file_size_bytes)
VALUES ('00000000-0000-0000-0000-0000000000d1', 'm1', 'long.mp4', 'uploads/m1/long.mp4', 5000),
       ('00000000-0000-0000-0000-0000000000d2', 'm1', 'bad.mp4', 'uploads/m1/bad.mp4', 5000),
       ('00000000-0000-0000-0000-0000000000d3', 'm1', 'gone.mp4', 'uploads/m1/gone.mp4', 5000);

-- the worker's result of a proxy job's first attempt that planned a split
CREATE FUNCTION pg_temp.plan() RETURNS jsonb LANGUAGE sql AS $$
	SELECT '{"status": "split",
			 "plan": {"fps_num": 10, "fps_den": 1, "slots": 250, "segment_slots": 100, "interlaced": false,
					  "segments": [{"first_slot": 0, "next_slot": 100}, {"first_slot": 100, "next_slot": 200},
								   {"first_slot": 200, "next_slot": -1}]},
			 "metadata": {"original": {"width": 1920, "height": 1080, "fps": 30, "duration_seconds": 25,
									   "codec": "h264", "bitrate": 1600, "file_size_bytes": 5000}}}'::jsonb;
$$;
-- an error's state and message, ids left out
CREATE FUNCTION pg_temp.try(statement text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE statement;
	RETURN 'done';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || regexp_replace(SQLERRM, '[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}', '<id>', 'g');
END
$$;
-- the units of a parent of one kind, in order
CREATE FUNCTION pg_temp.unit(parent uuid, kind text) RETURNS SETOF processing_jobs LANGUAGE sql AS $$
	SELECT * FROM vproxy.processing_jobs WHERE parent_job_id = parent AND params ->> 'unit' = kind
	 ORDER BY (params ->> 'index')::int, created_at;
$$;

-- proxy jobs queued as vproxy_enqueue queues them, with known ids
INSERT INTO processing_jobs (id, video_id, priority) VALUES
	('00000000-0000-0000-0000-0000000000e1', '00000000-0000-0000-0000-0000000000d1', 5);
UPDATE videos SET processing_status = 'processing';
\set parent 00000000-0000-0000-0000-0000000000e1
SELECT job_id = :'parent' AS is_parent, spec -> 'split' AS split, lease_token AS ptoken
  FROM claim_job('worker-a') \gset
SELECT :'split' AS split_settings;
-- a plan that names no segments is refused
SELECT pg_temp.try(format('SELECT finish_job(%L, %L, %L)', :'parent', :'ptoken',
	'{"status": "split", "plan": {"segments": []}}'));
SELECT finish_job(:'parent', :'ptoken', pg_temp.plan()) AS planned;
-- the parent runs on without a lease; three segments and the audio are queued at its priority
SELECT status, progress, lease_token IS NULL AS no_token, lease_expires_at IS NULL AS no_lease,
	   (planned_outputs -> 'split') - 'original' AS split
  FROM processing_jobs WHERE id = :'parent';
SELECT params - 'params' AS params, priority, status FROM processing_jobs
 WHERE parent_job_id = :'parent' ORDER BY params ->> 'unit' DESC, (params ->> 'index')::int;
SELECT vproxy_job_status(:'parent') - 'started_at' - 'attempt_errors' - 'duration_seconds' AS status_seen;
-- no unit can be retried or cancelled on its own
SELECT id AS unit0 FROM pg_temp.unit(:'parent', 'video') LIMIT 1 \gset
SELECT pg_temp.try(format('SELECT vproxy_cancel(%L)', :'unit0'));
SELECT pg_temp.try(format('SELECT vproxy_retry(%L)', :'unit0'));

-- one writer per video: a thumbnail job of the video waits for the split proxy
SELECT vproxy_enqueue('00000000-0000-0000-0000-0000000000d1', 'thumbnail_generation') AS thumb \gset
-- the units run beside each other, for a worker taking proxy jobs too
CREATE TEMP TABLE claimed AS SELECT * FROM claim_job('worker-b', ARRAY['proxy_generation']);
INSERT INTO claimed SELECT * FROM claim_job('worker-c');
INSERT INTO claimed SELECT * FROM claim_job('worker-d');
INSERT INTO claimed SELECT * FROM claim_job('worker-e');
INSERT INTO claimed SELECT * FROM claim_job('worker-f');
SELECT job_type, spec -> 'unit' AS unit, spec -> 'outputs' AS outputs, spec -> 'params' AS params,
	   spec -> 'original' AS original
  FROM claimed ORDER BY spec -> 'unit' ->> 'unit' DESC, (spec -> 'unit' ->> 'index')::int;
SELECT count(*) AS left_to_claim FROM claim_job('worker-g');
SELECT * FROM workers;
SELECT segments, segments_done, segments_running, audio_status, stitch_status FROM split_jobs;

-- progress: the share of the whole work
SELECT id AS u0, lease_token AS t0 FROM pg_temp.unit(:'parent', 'video') OFFSET 0 LIMIT 1 \gset
SELECT id AS u1, lease_token AS t1 FROM pg_temp.unit(:'parent', 'video') OFFSET 1 LIMIT 1 \gset
SELECT id AS u2, lease_token AS t2 FROM pg_temp.unit(:'parent', 'video') OFFSET 2 LIMIT 1 \gset
SELECT id AS ua, lease_token AS ta FROM pg_temp.unit(:'parent', 'audio') \gset
SELECT id AS uv, lease_token AS tv FROM pg_temp.unit(:'parent', 'verify') \gset
SELECT heartbeat_job(:'u0', :'t0', 0.5) > 0 AS held;
SELECT heartbeat_job(:'u1', :'t1', 0.2) > 0 AS held;
SELECT round(progress::numeric, 3) AS progress FROM processing_jobs WHERE id = :'parent';

-- the segments, the audio and the verify finish, in any order; no stitch before the last
SELECT finish_job(:'u2', :'t2', '{"status": "success", "frames": 50, "reached_end": true}');
SELECT finish_job(:'ua', :'ta', '{"status": "success", "has_audio": true,
	"thumbnail": {"width": 320, "height": 180, "file_size_bytes": 900, "timestamp_seconds": 5}}');
SELECT finish_job(:'uv', :'tv', '{"status": "success",
	"original_sha256": "AA00AA00AA00AA00AA00AA00AA00AA00AA00AA00AA00AA00AA00AA00AA00AA00"}');
SELECT finish_job(:'u0', :'t0', '{"status": "success", "frames": 100, "reached_end": false}');
SELECT count(*) AS stitches FROM pg_temp.unit(:'parent', 'stitch');
SELECT round(progress::numeric, 3) AS progress FROM processing_jobs WHERE id = :'parent';
SELECT finish_job(:'u1', :'t1', '{"status": "success", "frames": 100, "reached_end": false}');
SELECT params - 'params' AS stitch_params FROM pg_temp.unit(:'parent', 'stitch');
SELECT job_id <> :'parent' AS is_unit, spec -> 'unit' AS unit, spec -> 'outputs' AS outputs, lease_token AS st
  FROM claim_job('worker-b') \gset
SELECT :'unit' AS stitch_spec, :'outputs' AS stitch_outputs;
SELECT id AS us FROM pg_temp.unit(:'parent', 'stitch') \gset
-- the stitch must write the parent's keys; its end completes the parent, once
SELECT pg_temp.try(format('SELECT finish_job(%L, %L, %L)', :'us', :'st',
	'{"status": "success", "proxy_path": "elsewhere.mp4"}'));
SELECT finish_job(:'us', :'st', $$
	{"status": "success", "proxy_path": "videos/m1/proxy/00000000-0000-0000-0000-0000000000d1.mp4",
	 "thumbnail_path": "thumbnails/m1/00000000-0000-0000-0000-0000000000d1.jpg",
	 "original_sha256": "AA00AA00AA00AA00AA00AA00AA00AA00AA00AA00AA00AA00AA00AA00AA00AA00",
	 "metadata": {"original": {"width": 1920, "height": 1080, "fps": 30, "duration_seconds": 25,
							   "codec": "h264", "bitrate": 1600, "file_size_bytes": 5000},
				  "proxy": {"width": 854, "height": 480, "fps": 10, "duration_seconds": 25,
							"codec": "h264", "bitrate": 300000, "file_size_bytes": 900000},
				  "thumbnail": {"width": 320, "height": 180, "file_size_bytes": 900, "timestamp_seconds": 5}}}
	$$) AS finished;
SELECT status, progress, result_data -> 'segments' AS segments, result_data ? 'original_sha256' AS keeps_sha,
	   result_data ->> 'proxy_path' AS proxy_path
  FROM processing_jobs WHERE id = :'parent';
SELECT processing_status, proxy_path, checksum_sha256, duration_seconds
  FROM videos WHERE id = '00000000-0000-0000-0000-0000000000d1';
-- the cleanup of the temporary objects, then the thumbnail job that waited
SELECT params - 'params' AS cleanup FROM pg_temp.unit(:'parent', 'cleanup');
SELECT job_id = :'thumb' AS thumbnail_job_now FROM claim_job('worker-c', ARRAY['thumbnail_generation']);
-- the cleanup holds nothing back, and nothing but its run's units hold it back
SELECT job_type, spec -> 'unit' ->> 'unit' AS unit, spec -> 'outputs' AS outputs FROM claim_job('worker-d');
SELECT id AS uc, lease_token AS tc FROM pg_temp.unit(:'parent', 'cleanup') \gset
SELECT vproxy_prune(interval '0') AS pruned_with_the_cleanup_due;
SELECT finish_job(:'uc', :'tc', '{"status": "success", "removed": 5}');
SELECT segments, segments_done, audio_status, stitch_status, cleanup_status FROM split_jobs;

-- a segment failing for good fails the parent with its cause and stops the others
INSERT INTO processing_jobs (id, video_id) VALUES
	('00000000-0000-0000-0000-0000000000e2', '00000000-0000-0000-0000-0000000000d2');
\set bad 00000000-0000-0000-0000-0000000000e2
SELECT lease_token AS btoken FROM claim_job('worker-a') \gset
SELECT finish_job(:'bad', :'btoken', pg_temp.plan()) AS planned;
SELECT count(*) AS claimed FROM claim_job('worker-b');
SELECT count(*) AS claimed FROM claim_job('worker-c');
SELECT count(*) AS claimed FROM claim_job('worker-d');
SELECT count(*) AS claimed FROM claim_job('worker-e');
SELECT count(*) AS claimed FROM claim_job('worker-f');
SELECT id AS fu, lease_token AS ft FROM pg_temp.unit(:'bad', 'video') LIMIT 1 \gset
-- a retryable failure retries that segment alone
SELECT fail_job(:'fu', :'ft', 'storage_unavailable', 'S3 is away', true) AS retried;
SELECT status, attempts FROM processing_jobs WHERE id = :'fu';
UPDATE processing_jobs SET run_at = now() WHERE id = :'fu';
SELECT job_id = :'fu' AS the_segment_again, lease_token AS ft FROM claim_job('worker-b') \gset
SELECT :'the_segment_again' AS the_segment_again;
SELECT fail_job(:'fu', :'ft', 'bad_media', 'the segment does not decode', false) AS failed;
SELECT status, error_code, error_message FROM processing_jobs WHERE id = :'bad';
SELECT params ->> 'unit' AS unit, status, error_code, error_message, lease_expires_at > now() AS lease_lingers
  FROM processing_jobs WHERE parent_job_id = :'bad'
 ORDER BY params ->> 'unit', (params ->> 'index')::int, status;
SELECT processing_status, processing_error FROM videos WHERE id = '00000000-0000-0000-0000-0000000000d2';

-- a cancelled parent stops its units; the cleanup waits for their leases
INSERT INTO processing_jobs (id, video_id) VALUES
	('00000000-0000-0000-0000-0000000000e3', '00000000-0000-0000-0000-0000000000d3');
\set gone 00000000-0000-0000-0000-0000000000e3
SELECT lease_token AS gtoken FROM claim_job('worker-a') \gset
SELECT finish_job(:'gone', :'gtoken', pg_temp.plan()) AS planned;
SELECT count(*) AS claimed FROM claim_job('worker-b');
SELECT vproxy_cancel(:'gone') AS cancelled;
SELECT params ->> 'unit' AS unit, status, count(*) AS units,
	   count(*) FILTER (WHERE lease_expires_at > now()) AS leases_lingering
  FROM processing_jobs WHERE parent_job_id = :'gone' GROUP BY 1, 2 ORDER BY 1, 2;
SELECT count(*) AS claimed_while_a_lease_lingers FROM claim_job('worker-c');
UPDATE processing_jobs SET lease_expires_at = now() - interval '1 s' WHERE parent_job_id = :'gone';
SELECT spec -> 'unit' ->> 'unit' AS unit FROM claim_job('worker-c');

-- a deletion removes the prefixes not yet cleaned up, once the units' leases are over
SELECT vproxy_delete_video('00000000-0000-0000-0000-0000000000d2') AS deletion \gset
UPDATE processing_jobs SET lease_expires_at = now() - interval '1 s'
 WHERE video_id = '00000000-0000-0000-0000-0000000000d2' AND status <> 'running';
SELECT job_id = :'deletion' AS is_deletion,
	   spec -> 'stale_prefixes' = to_jsonb(ARRAY[format('vproxy-split/%s/1/', :'bad')]) AS removes_the_prefix
  FROM claim_job('worker-d', ARRAY['video_deletion']);

-- a parent whose units all ended without completing it fails at the next
-- prune, and the cleanups not done are queued again
INSERT INTO processing_jobs (id, video_id, priority, params) VALUES
	('00000000-0000-0000-0000-0000000000e4', '00000000-0000-0000-0000-0000000000d3', 0, '{"crf": 30}');
\set stuck 00000000-0000-0000-0000-0000000000e4
SELECT job_id = :'stuck' AS is_stuck, lease_token AS stoken FROM claim_job('worker-a') \gset
SELECT :'is_stuck' AS is_stuck;
SELECT finish_job(:'stuck', :'stoken', pg_temp.plan()) AS planned;
DELETE FROM processing_jobs WHERE parent_job_id = :'stuck';
SELECT vproxy_prune() >= 0 AS pruned;
SELECT status, error_code, error_message FROM processing_jobs WHERE id = :'stuck';
SELECT params ->> 'unit' AS unit, status FROM processing_jobs WHERE parent_job_id = :'stuck';
SELECT j.status AS parent_status, s.segments, s.segments_done, s.segments_ended_otherwise, s.audio_status,
	   s.stitch_status, s.cleanup_status
  FROM split_jobs s JOIN processing_jobs j ON j.id = s.job_id
 ORDER BY s.started_at, s.temporary_prefix;
