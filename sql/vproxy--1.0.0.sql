-- vproxy 1.0.0: the queue of video jobs, its API for applications and the
-- claim / heartbeat / finish functions its workers call.
\echo Use "CREATE EXTENSION vproxy" to load this file. \quit

-- ---------------------------------------------------------------------------
-- Tables
-- ---------------------------------------------------------------------------

CREATE TABLE videos (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	mall_id text NOT NULL,
	pin_id text,
	filename text,
	original_path text NOT NULL,
	checksum_sha256 text,
	file_size_bytes bigint,
	width int,
	height int,
	fps double precision,
	duration_seconds double precision,
	codec text,
	bitrate bigint,
	proxy_path text,
	thumbnail_path text,
	processing_status text NOT NULL DEFAULT 'pending'
		CHECK (processing_status IN ('pending', 'processing', 'completed', 'failed')),
	processing_error text,
	processing_completed_at timestamptz,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE processing_jobs (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	video_id uuid NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
	job_type text NOT NULL DEFAULT 'proxy_generation'
		CHECK (job_type IN ('proxy_generation', 'metadata_extraction', 'thumbnail_generation')),
	status text NOT NULL DEFAULT 'pending'
		CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
	priority int NOT NULL DEFAULT 5 CHECK (priority BETWEEN 0 AND 9),
	params jsonb NOT NULL DEFAULT '{}',
	attempts int NOT NULL DEFAULT 0,
	max_attempts int NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
	run_at timestamptz NOT NULL DEFAULT now(),
	started_at timestamptz,
	completed_at timestamptz,
	error_message text,
	result_data jsonb,
	progress real NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 1),
	created_at timestamptz NOT NULL DEFAULT now(),
	-- the lease of the attempt in progress: a new token at every claim
	lease_token uuid,
	lease_expires_at timestamptz,
	lease_holder text
);

COMMENT ON COLUMN processing_jobs.lease_token IS
	'changes at every claim; every write by a worker must present it';
COMMENT ON COLUMN processing_jobs.lease_holder IS
	'who runs the attempt: "postgres <system id>/<postmaster start>/<pid>" for in-server workers';

-- the claim scans this in order: only queued and running jobs are in it
CREATE INDEX processing_jobs_queue ON processing_jobs (priority, run_at, created_at)
	WHERE status IN ('pending', 'running');
CREATE INDEX processing_jobs_video ON processing_jobs (video_id);
CREATE INDEX processing_jobs_finished ON processing_jobs (completed_at)
	WHERE status IN ('completed', 'failed', 'cancelled');

SELECT pg_catalog.pg_extension_config_dump('videos', '');
SELECT pg_catalog.pg_extension_config_dump('processing_jobs', '');

-- Keep videos.updated_at true whoever writes the row.
CREATE FUNCTION touch_updated_at() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
	NEW.updated_at := now();
	RETURN NEW;
END
$$;

CREATE TRIGGER videos_updated_at BEFORE UPDATE ON videos
	FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

-- ---------------------------------------------------------------------------
-- C helpers: wake-ups at commit and the live view of the workers
-- ---------------------------------------------------------------------------

-- At commit, wake the worker running job_id (to stop it), or an idle
-- worker when job_id is NULL (to claim).
CREATE FUNCTION wake_workers_at_commit(job_id uuid DEFAULT NULL) RETURNS void
	AS 'MODULE_PATHNAME', 'vproxy_wake_workers_at_commit' LANGUAGE C CALLED ON NULL INPUT VOLATILE;

-- At commit, wake the launcher (the extension appeared, say).
CREATE FUNCTION wake_launcher_at_commit() RETURNS void
	AS 'MODULE_PATHNAME', 'vproxy_wake_launcher_at_commit' LANGUAGE C VOLATILE;

CREATE FUNCTION worker_activity(
	OUT worker int, OUT pid int, OUT state text, OUT job_id uuid, OUT video_id uuid,
	OUT job_type text, OUT attempt int, OUT progress real, OUT stage text,
	OUT state_since timestamptz, OUT job_started_at timestamptz)
	RETURNS SETOF record
	AS 'MODULE_PATHNAME', 'vproxy_worker_activity' LANGUAGE C STRICT VOLATILE;

-- ---------------------------------------------------------------------------
-- Internal pieces shared by the API and the worker functions
-- ---------------------------------------------------------------------------

-- Check a job's params; raise an error naming the first bad one.
CREATE FUNCTION check_params(params jsonb) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog AS $$
DECLARE
	key text;
	value jsonb;
	kind text;
	presets constant text[] := ARRAY['ultrafast', 'superfast', 'veryfast', 'faster', 'fast',
		'medium', 'slow', 'slower', 'veryslow', 'placebo'];
	-- name -> [minimum, maximum, must be whole]
	limits constant jsonb := '{"timestamp_seconds": [0, 1e9, false],
		"thumbnail_width": [16, 4096, true], "height": [16, 4320, true],
		"fps": [0.1, 240, false], "crf": [0, 51, true],
		"audio_bitrate": [8000, 512000, true]}';
BEGIN
	IF jsonb_typeof(params) <> 'object' THEN
		RAISE EXCEPTION 'params must be a JSON object, not %', jsonb_typeof(params)
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	FOR key, value IN SELECT * FROM jsonb_each(params) LOOP
		kind := jsonb_typeof(value);
		IF key = 'preset' THEN
			IF kind <> 'string' OR NOT (value #>> '{}') = ANY (presets) THEN
				RAISE EXCEPTION 'params.preset must be one of %', array_to_string(presets, ', ')
					USING ERRCODE = 'invalid_parameter_value';
			END IF;
		ELSIF limits ? key THEN
			IF kind <> 'number'
				OR value::numeric < (limits -> key ->> 0)::numeric
				OR value::numeric > (limits -> key ->> 1)::numeric
				OR ((limits -> key ->> 2)::boolean AND value::numeric <> trunc(value::numeric)) THEN
				RAISE EXCEPTION 'params.% must be a % between % and %, not %', key,
					CASE WHEN (limits -> key ->> 2)::boolean THEN 'whole number' ELSE 'number' END,
					limits -> key ->> 0, limits -> key ->> 1, value
					USING ERRCODE = 'invalid_parameter_value';
			END IF;
		ELSE
			RAISE EXCEPTION 'unknown parameter "%"', key
				USING ERRCODE = 'invalid_parameter_value',
				HINT = 'Known parameters: timestamp_seconds, thumbnail_width, height, fps, crf, preset, audio_bitrate.';
		END IF;
	END LOOP;
END
$$;

-- Tell the listeners of vproxy_jobs that a job has ended.
CREATE FUNCTION notify_job_end(job processing_jobs) RETURNS void
LANGUAGE sql SET search_path = pg_catalog AS $$
	SELECT pg_notify('vproxy_jobs', json_build_object('job_id', job.id, 'video_id', job.video_id,
		'job_type', job.job_type, 'status', job.status)::text);
$$;

-- Put a failed proxy job's video in its final state, unless another proxy
-- job for it is still queued or running.  The video is locked first, so that
-- the check below sees a proxy job enqueued concurrently (the enqueue locks
-- the video too).
CREATE FUNCTION settle_video_after_failure(job processing_jobs) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
	IF job.job_type <> 'proxy_generation' THEN
		RETURN;
	END IF;
	PERFORM FROM vproxy.videos v WHERE v.id = job.video_id FOR UPDATE;
	UPDATE vproxy.videos v
	   SET processing_status = CASE WHEN job.status = 'cancelled' AND v.proxy_path IS NOT NULL
								   THEN 'completed' ELSE 'failed' END,
		   processing_error = CASE WHEN job.status = 'cancelled' AND v.proxy_path IS NOT NULL
								  THEN v.processing_error ELSE job.error_message END,
		   processing_completed_at = CASE WHEN job.status = 'cancelled' AND v.proxy_path IS NOT NULL
										 THEN v.processing_completed_at ELSE NULL END
	 WHERE v.id = job.video_id
	   AND NOT EXISTS (SELECT FROM vproxy.processing_jobs o
					   WHERE o.video_id = job.video_id AND o.id <> job.id
						 AND o.job_type = 'proxy_generation'
						 AND o.status IN ('pending', 'running'));
END
$$;

-- Fail a job for good, with its video, and notify.
CREATE FUNCTION fail_for_good(job_id uuid, error text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
DECLARE
	job vproxy.processing_jobs;
BEGIN
	UPDATE vproxy.processing_jobs j
	   SET status = 'failed', error_message = error, completed_at = now(),
		   lease_token = NULL, lease_expires_at = NULL, lease_holder = NULL
	 WHERE j.id = job_id
	RETURNING * INTO job;
	PERFORM vproxy.settle_video_after_failure(job);
	PERFORM vproxy.notify_job_end(job);
END
$$;

-- ---------------------------------------------------------------------------
-- The API for applications
-- ---------------------------------------------------------------------------

-- Queue a job for a video; the commit wakes a worker.
CREATE FUNCTION vproxy_enqueue(video_id uuid, job_type text DEFAULT 'proxy_generation',
	priority int DEFAULT 5, params jsonb DEFAULT '{}') RETURNS uuid
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	new_job_id uuid;
	the_video_id constant uuid := video_id;
	the_job_type constant text := job_type;
BEGIN
	IF the_video_id IS NULL THEN
		RAISE EXCEPTION 'video_id must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF the_job_type IS NULL OR the_job_type NOT IN ('proxy_generation', 'metadata_extraction',
												   'thumbnail_generation') THEN
		RAISE EXCEPTION 'unknown job type "%"', the_job_type
			USING ERRCODE = 'invalid_parameter_value',
			HINT = 'Job types: proxy_generation, metadata_extraction, thumbnail_generation.';
	END IF;
	IF priority IS NULL OR priority NOT BETWEEN 0 AND 9 THEN
		RAISE EXCEPTION 'priority must be between 0 (most urgent) and 9, not %', priority
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF params IS NOT NULL AND params <> '{}' THEN
		PERFORM vproxy.check_params(params);
	END IF;

	-- a proxy job marks its video first: the row lock orders this enqueue
	-- with a failure of another proxy job settling the same video
	IF the_job_type = 'proxy_generation' THEN
		UPDATE vproxy.videos v
		   SET processing_status = 'processing', processing_error = NULL
		 WHERE v.id = the_video_id;
	ELSE
		PERFORM FROM vproxy.videos v WHERE v.id = the_video_id;
	END IF;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'video % does not exist', the_video_id
			USING ERRCODE = 'foreign_key_violation';
	END IF;

	INSERT INTO vproxy.processing_jobs (video_id, job_type, priority, params, max_attempts)
	VALUES (the_video_id, the_job_type, priority, coalesce(params, '{}'),
			coalesce(nullif(current_setting('vproxy.max_attempts', true), '')::int, 3))
	RETURNING id INTO new_job_id;

	PERFORM vproxy.wake_workers_at_commit(NULL);
	RETURN new_job_id;
END
$$;

-- Where a job stands: the shape of the old GET /jobs/{id}/status; NULL if unknown.
CREATE FUNCTION vproxy_job_status(job_id uuid) RETURNS jsonb
LANGUAGE sql STABLE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
	SELECT jsonb_build_object(
		'job_id', j.id,
		'status', j.status,
		'started_at', j.started_at,
		'completed_at', j.completed_at,
		'duration_seconds', CASE
			WHEN j.started_at IS NULL THEN NULL
			WHEN j.completed_at IS NOT NULL THEN
				greatest(extract(epoch FROM j.completed_at - j.started_at), 0)::double precision
			WHEN j.status = 'running' THEN
				extract(epoch FROM now() - j.started_at)::double precision
			END,
		'progress', j.progress,
		'attempts', j.attempts,
		'error_message', j.error_message,
		'result_data', j.result_data)
	  FROM vproxy.processing_jobs j
	 WHERE j.id = job_id;
$$;

-- Cancel a queued or running job: true if it was cancelled by this call,
-- false if it had already ended.  The worker running it stops its child at
-- commit.
CREATE FUNCTION vproxy_cancel(job_id uuid) RETURNS boolean
LANGUAGE plpgsql STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	job vproxy.processing_jobs;
BEGIN
	UPDATE vproxy.processing_jobs j
	   SET status = 'cancelled', completed_at = now(),
		   error_message = 'cancelled by vproxy_cancel()',
		   lease_token = NULL, lease_expires_at = NULL, lease_holder = NULL
	 WHERE j.id = job_id AND j.status IN ('pending', 'running')
	RETURNING * INTO job;
	IF NOT FOUND THEN
		IF NOT EXISTS (SELECT FROM vproxy.processing_jobs j WHERE j.id = job_id) THEN
			RAISE EXCEPTION 'job % does not exist', job_id USING ERRCODE = 'no_data_found';
		END IF;
		RETURN false;
	END IF;
	PERFORM vproxy.settle_video_after_failure(job);
	PERFORM vproxy.notify_job_end(job);
	PERFORM vproxy.wake_workers_at_commit(job_id);
	RETURN true;
END
$$;

-- ---------------------------------------------------------------------------
-- The worker's side: claim, heartbeat, finish, fail, hand back.  Every write
-- after the claim presents the lease token of the claim.
-- ---------------------------------------------------------------------------

-- Take the most urgent runnable job under a new lease, and return what the
-- child needs to run it (the job spec without storage settings).
CREATE FUNCTION claim_job(holder text, lease_seconds double precision,
	proxy_key_template text DEFAULT 'videos/{mall_id}/proxy/{video_id}.mp4',
	thumbnail_key_template text DEFAULT 'thumbnails/{mall_id}/{video_id}.jpg',
	OUT job_id uuid, OUT video_id uuid, OUT job_type text, OUT attempt int,
	OUT lease_token uuid, OUT spec jsonb)
RETURNS SETOF record
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
DECLARE
	job vproxy.processing_jobs;
	video vproxy.videos;
BEGIN
	LOOP
		SELECT * INTO job
		  FROM vproxy.processing_jobs j
		 WHERE j.status IN ('pending', 'running')
		   AND ((j.status = 'pending' AND j.run_at <= now())
				OR (j.status = 'running' AND j.lease_expires_at <= now()))
		 ORDER BY j.priority, j.run_at, j.created_at
		 LIMIT 1
		   FOR UPDATE SKIP LOCKED;
		IF NOT FOUND THEN
			RETURN;
		END IF;
		EXIT WHEN job.attempts < job.max_attempts;
		-- the worker of its last attempt vanished: nothing is left to try
		PERFORM vproxy.fail_for_good(job.id, coalesce(job.error_message || '; ', '')
			|| format('attempt %s of %s was abandoned (lease expired)', job.attempts, job.max_attempts));
	END LOOP;

	UPDATE vproxy.processing_jobs j
	   SET status = 'running', attempts = j.attempts + 1, started_at = now(),
		   progress = 0, lease_token = gen_random_uuid(),
		   lease_expires_at = now() + make_interval(secs => lease_seconds),
		   lease_holder = holder
	 WHERE j.id = job.id
	RETURNING * INTO job;
	SELECT * INTO video FROM vproxy.videos v WHERE v.id = job.video_id;

	job_id := job.id;
	video_id := job.video_id;
	job_type := job.job_type;
	attempt := job.attempts;
	lease_token := job.lease_token;
	spec := jsonb_build_object(
		'job_id', job.id,
		'video_id', job.video_id,
		'attempt', job.attempts,
		'job_type', job.job_type,
		'original', jsonb_build_object('key', video.original_path,
									   'size_bytes', video.file_size_bytes,
									   'sha256', video.checksum_sha256),
		'outputs', jsonb_strip_nulls(jsonb_build_object(
			'proxy_key', CASE WHEN job.job_type = 'proxy_generation' THEN
				vproxy.storage_key(proxy_key_template, video) END,
			'thumbnail_key', CASE WHEN job.job_type <> 'metadata_extraction' THEN
				vproxy.storage_key(thumbnail_key_template, video) END)),
		'params', job.params);
	RETURN NEXT;
END
$$;

-- Fill a key template: {mall_id}, {pin_id}, {video_id}.
CREATE FUNCTION storage_key(template text, video videos) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog AS $$
	SELECT replace(replace(replace(template,
		'{mall_id}', video.mall_id),
		'{pin_id}', coalesce(video.pin_id, '')),
		'{video_id}', video.id::text);
$$;

-- When a claim could next find work: the earliest delayed retry or lease
-- expiry, NULL when nothing is queued or running.
CREATE FUNCTION next_claim_at() RETURNS timestamptz
LANGUAGE sql STABLE SET search_path = pg_catalog AS $$
	SELECT min(CASE WHEN j.status = 'pending' THEN j.run_at ELSE j.lease_expires_at END)
	  FROM vproxy.processing_jobs j
	 WHERE j.status IN ('pending', 'running');
$$;

-- Extend the lease and record progress; false when the lease is lost
-- (cancelled, or taken over after expiry): the worker must stop.
CREATE FUNCTION heartbeat_job(job_id uuid, lease_token uuid, progress real,
	lease_seconds double precision) RETURNS boolean
LANGUAGE sql SET search_path = pg_catalog AS $$
	WITH extended AS (
		UPDATE vproxy.processing_jobs j
		   SET lease_expires_at = now() + make_interval(secs => lease_seconds),
			   progress = greatest(j.progress, least(greatest(heartbeat_job.progress, 0), 1))
		 WHERE j.id = heartbeat_job.job_id AND j.lease_token = heartbeat_job.lease_token
		   AND j.status = 'running'
		RETURNING 1)
	SELECT EXISTS (SELECT FROM extended);
$$;

-- Record a successful attempt: the job, its video and the NOTIFY in one
-- transaction.  False (and nothing written) when the lease was lost.
CREATE FUNCTION finish_job(job_id uuid, lease_token uuid, result jsonb) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
DECLARE
	job vproxy.processing_jobs;
	original constant jsonb := result #> '{metadata,original}';
BEGIN
	UPDATE vproxy.processing_jobs j
	   SET status = 'completed', completed_at = now(), progress = 1,
		   result_data = result - 'original_sha256', error_message = NULL,
		   lease_token = NULL, lease_expires_at = NULL, lease_holder = NULL
	 WHERE j.id = finish_job.job_id AND j.lease_token = finish_job.lease_token
	   AND j.status = 'running'
	RETURNING * INTO job;
	IF NOT FOUND THEN
		RETURN false;
	END IF;

	-- every job type refreshes the metadata the child read from the original
	IF original IS NOT NULL THEN
		UPDATE vproxy.videos v
		   SET width = (original ->> 'width')::int,
			   height = (original ->> 'height')::int,
			   fps = (original ->> 'fps')::double precision,
			   duration_seconds = (original ->> 'duration_seconds')::double precision,
			   codec = original ->> 'codec',
			   bitrate = (original ->> 'bitrate')::bigint,
			   file_size_bytes = coalesce((original ->> 'file_size_bytes')::bigint, v.file_size_bytes),
			   checksum_sha256 = coalesce(v.checksum_sha256, lower(result ->> 'original_sha256'))
		 WHERE v.id = job.video_id;
	END IF;

	IF job.job_type = 'proxy_generation' THEN
		UPDATE vproxy.videos v
		   SET proxy_path = result ->> 'proxy_path',
			   thumbnail_path = result ->> 'thumbnail_path',
			   processing_status = 'completed', processing_error = NULL,
			   processing_completed_at = now()
		 WHERE v.id = job.video_id;
	ELSIF job.job_type = 'thumbnail_generation' THEN
		UPDATE vproxy.videos v
		   SET thumbnail_path = result ->> 'thumbnail_path'
		 WHERE v.id = job.video_id;
	END IF;

	PERFORM vproxy.notify_job_end(job);
	RETURN true;
END
$$;

-- Record a failed attempt: retried later (backoff with jitter) when
-- retryable and attempts remain, else failed for good.  The delay doubles
-- at each attempt up to a day (or the first delay, if longer): uncapped,
-- 2^(attempt - 1) overflows an interval long before max_attempts' limit.
-- Returns the job's new status, NULL when the lease was lost.
CREATE FUNCTION fail_job(job_id uuid, lease_token uuid, error text, retryable boolean,
	retry_delay_seconds double precision) RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
DECLARE
	job vproxy.processing_jobs;
	longest_delay_seconds constant double precision := greatest(retry_delay_seconds, 86400);
BEGIN
	SELECT * INTO job FROM vproxy.processing_jobs j
	 WHERE j.id = fail_job.job_id AND j.lease_token = fail_job.lease_token
	   AND j.status = 'running'
	   FOR UPDATE;
	IF NOT FOUND THEN
		RETURN NULL;
	END IF;
	IF retryable AND job.attempts < job.max_attempts THEN
		UPDATE vproxy.processing_jobs j
		   SET status = 'pending', error_message = error, progress = 0,
			   run_at = now() + make_interval(secs =>
				   least(retry_delay_seconds * power(2, job.attempts - 1), longest_delay_seconds)
				   * (1 + 0.25 * random())),
			   lease_token = NULL, lease_expires_at = NULL, lease_holder = NULL
		 WHERE j.id = job.id;
		PERFORM vproxy.wake_workers_at_commit(NULL);
		RETURN 'pending';
	END IF;
	PERFORM vproxy.fail_for_good(job.id, error);
	RETURN 'failed';
END
$$;

-- Hand a job back without spending an attempt (the worker is stopping).
CREATE FUNCTION release_job(job_id uuid, lease_token uuid) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
	UPDATE vproxy.processing_jobs j
	   SET status = 'pending', attempts = greatest(j.attempts - 1, 0), progress = 0,
		   run_at = now(), lease_token = NULL, lease_expires_at = NULL, lease_holder = NULL
	 WHERE j.id = release_job.job_id AND j.lease_token = release_job.lease_token
	   AND j.status = 'running';
	IF NOT FOUND THEN
		RETURN false;
	END IF;
	PERFORM vproxy.wake_workers_at_commit(NULL);
	RETURN true;
END
$$;

-- Expire at once the leases held by in-server workers of an earlier life of
-- this server (before a crash or an immediate shutdown): they are gone.
-- holder_prefix names this server, current_life_prefix this life of it.
CREATE FUNCTION expire_leases_of_earlier_lives(holder_prefix text, current_life_prefix text)
	RETURNS int
LANGUAGE sql SET search_path = pg_catalog AS $$
	WITH expired AS (
		UPDATE vproxy.processing_jobs j
		   SET lease_expires_at = now()
		 WHERE j.status = 'running' AND j.lease_expires_at > now()
		   AND starts_with(j.lease_holder, holder_prefix)
		   AND NOT starts_with(j.lease_holder, current_life_prefix)
		RETURNING 1)
	SELECT count(*)::int FROM expired;
$$;

-- ---------------------------------------------------------------------------
-- Monitoring views
-- ---------------------------------------------------------------------------

CREATE VIEW workers AS
	SELECT a.worker, a.pid, a.state, a.job_id, a.video_id, a.job_type, a.attempt,
		   a.progress, a.stage, a.state_since, a.job_started_at, v.filename
	  FROM worker_activity() a
	  LEFT JOIN videos v ON v.id = a.video_id;

-- per job type and status: how many, and how long the ended ones took
CREATE VIEW job_statistics AS
	SELECT j.job_type, j.status, count(*) AS jobs,
		   avg(extract(epoch FROM j.completed_at - j.started_at))
			   FILTER (WHERE j.completed_at IS NOT NULL AND j.started_at IS NOT NULL)
			   ::double precision AS avg_duration_seconds,
		   max(extract(epoch FROM j.completed_at - j.started_at))
			   FILTER (WHERE j.completed_at IS NOT NULL AND j.started_at IS NOT NULL)
			   ::double precision AS max_duration_seconds,
		   avg(j.attempts)::double precision AS avg_attempts,
		   min(j.created_at) AS oldest_created_at
	  FROM processing_jobs j
	 GROUP BY j.job_type, j.status;

-- failed jobs, newest first, with the video and the reason
CREATE VIEW recent_failures AS
	SELECT j.id AS job_id, j.video_id, v.filename, v.mall_id, j.job_type, j.attempts,
		   j.error_message, v.processing_error, j.started_at, j.completed_at
	  FROM processing_jobs j
	  JOIN videos v ON v.id = j.video_id
	 WHERE j.status = 'failed'
	 ORDER BY j.completed_at DESC;

-- completed jobs that took over two minutes, slowest first, with how long
-- the video plays
CREATE VIEW slow_jobs AS
	SELECT j.id AS job_id, j.video_id, v.filename, j.job_type,
		   extract(epoch FROM j.completed_at - j.started_at)::double precision AS duration_seconds,
		   (j.result_data #>> '{metadata,original,duration_seconds}')::double precision
			   AS video_duration_seconds
	  FROM processing_jobs j
	  JOIN videos v ON v.id = j.video_id
	 WHERE j.status = 'completed' AND j.completed_at - j.started_at > interval '2 minutes'
	 ORDER BY j.completed_at - j.started_at DESC;

-- ---------------------------------------------------------------------------
-- Privileges: nothing for PUBLIC; see README for the grants an app needs
-- ---------------------------------------------------------------------------

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA @extschema@ FROM PUBLIC;

-- the extension exists now: its workers may start
SELECT wake_launcher_at_commit();
