-- vproxy 1.2.0: the queue of video jobs, its API for applications and the
-- calls its workers make.  A fresh install reads this file only; databases
-- at 1.0.0 and 1.1.0 are updated by vproxy--1.0.0--1.1.0.sql and
-- vproxy--1.1.0--1.2.0.sql to the same catalog.
--
-- Schema vproxy holds the tables, the views, the application's API
-- (vproxy_*), the worker API and worker_activity(); schema vproxy_internal
-- everything else, usable by the extension's owner only.  Every function
-- sets search_path = pg_catalog, pg_temp (pg_temp last, so that no
-- temporary object of a caller can stand in for a built-in one) and names
-- the extension's objects with their schema.  SECURITY DEFINER only where
-- the owner's rights are needed: the worker API, vproxy_prune and the
-- internal targets of the application API's gate (src/server/gate.c).
\echo Use "CREATE EXTENSION vproxy" to load this file. \quit

CREATE SCHEMA vproxy_internal;
COMMENT ON SCHEMA vproxy_internal IS
	'vproxy''s internals: helpers, triggers, wake-ups, presigning, pruning; for the extension''s owner only';

-- ---------------------------------------------------------------------------
-- Tables
-- ---------------------------------------------------------------------------

CREATE TABLE vproxy.videos (
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
		CHECK (processing_status IN ('pending', 'processing', 'completed', 'failed', 'deleting')),
	processing_error text,
	processing_completed_at timestamptz,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT videos_mall_id_is_a_safe_name
		CHECK (mall_id ~ '^[^/{}[:cntrl:]]{1,128}$' AND mall_id NOT IN ('.', '..')),
	CONSTRAINT videos_pin_id_is_a_safe_name
		CHECK (pin_id ~ '^[^/{}[:cntrl:]]{1,128}$' AND pin_id NOT IN ('.', '..')),
	CONSTRAINT videos_checksum_sha256_is_hex
		CHECK (checksum_sha256 ~ '^[0-9A-Fa-f]{64}$'),
	CONSTRAINT videos_file_size_bytes_not_negative
		CHECK (file_size_bytes >= 0)
);

CREATE TABLE vproxy.processing_jobs (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	video_id uuid REFERENCES vproxy.videos (id) ON DELETE CASCADE,
	job_type text NOT NULL DEFAULT 'proxy_generation'
		CHECK (job_type IN ('proxy_generation', 'metadata_extraction', 'thumbnail_generation',
							'video_deletion', 'proxy_segment')),
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
	lease_token uuid,
	lease_expires_at timestamptz,
	lease_holder text,
	parent_job_id uuid
		CONSTRAINT processing_jobs_parent_job_id_fkey REFERENCES vproxy.processing_jobs (id) ON DELETE CASCADE,
	error_code text
		CONSTRAINT processing_jobs_error_code_check
		CHECK (error_code IN ('bad_media', 'checksum_mismatch', 'missing_original', 'storage_refused',
							  'storage_unavailable', 'no_temp_space', 'timeout', 'out_of_memory',
							  'crashed', 'worker_lost', 'cancelled', 'internal')),
	attempt_errors jsonb NOT NULL DEFAULT '[]'
		CONSTRAINT processing_jobs_attempt_errors_check CHECK (jsonb_typeof(attempt_errors) = 'array'),
	planned_outputs jsonb,
	CONSTRAINT processing_jobs_video_id_check CHECK (video_id IS NOT NULL OR job_type = 'video_deletion')
);

-- Who serves the queue from other machines: one row per running
-- vproxy-worker, refreshed by its check-ins (three times per lease) and
-- removed when it stops.  Transient: not dumped.
CREATE TABLE vproxy.external_workers (
	holder text PRIMARY KEY,
	name text NOT NULL,
	host text NOT NULL,
	pid int NOT NULL,
	concurrency int NOT NULL,
	job_types text[],
	started_at timestamptz NOT NULL DEFAULT now(),
	last_seen timestamptz NOT NULL DEFAULT now()
);

-- the claim scans this in order: only queued and running jobs are in it
CREATE INDEX processing_jobs_queue ON vproxy.processing_jobs (priority, run_at, created_at)
	WHERE status IN ('pending', 'running');
CREATE INDEX processing_jobs_video ON vproxy.processing_jobs (video_id);
CREATE INDEX processing_jobs_finished ON vproxy.processing_jobs (completed_at)
	WHERE status IN ('completed', 'failed', 'cancelled');
-- "does another job of this video still run or hold a lease?" (one writer per video)
CREATE INDEX processing_jobs_running_video ON vproxy.processing_jobs (video_id)
	WHERE lease_expires_at IS NOT NULL;
-- leases that outlive their job's attempt: a cancelled job's child may still be stopping
CREATE INDEX processing_jobs_lingering_lease ON vproxy.processing_jobs (lease_expires_at)
	WHERE status <> 'running' AND lease_expires_at IS NOT NULL;
-- one queued or running job per video, type and params: enqueue is idempotent
CREATE UNIQUE INDEX processing_jobs_once ON vproxy.processing_jobs (video_id, job_type, params)
	WHERE status IN ('pending', 'running') AND parent_job_id IS NULL;
-- the segments of a split proxy, by parent
CREATE INDEX processing_jobs_parent ON vproxy.processing_jobs (parent_job_id)
	WHERE parent_job_id IS NOT NULL;
-- listing videos as the old API did, newest first, keyset pagination on (created_at, id)
CREATE INDEX videos_mall_created ON vproxy.videos (mall_id, created_at DESC, id DESC);
CREATE INDEX videos_pin_created ON vproxy.videos (pin_id, created_at DESC, id DESC)
	WHERE pin_id IS NOT NULL;
CREATE INDEX videos_status_created ON vproxy.videos (processing_status, created_at DESC, id DESC);
CREATE INDEX videos_created ON vproxy.videos (created_at DESC, id DESC);

SELECT pg_catalog.pg_extension_config_dump('vproxy.videos', '');
SELECT pg_catalog.pg_extension_config_dump('vproxy.processing_jobs', '');

-- ===========================================================================
-- From here to the mark "end of the shared text", vproxy--1.1.0--1.2.0.sql
-- holds the same text (test/t/383_ops_upgrade.pl compares the catalogs of
-- an upgraded and a fresh install).
-- ===========================================================================

-- ---------------------------------------------------------------------------
-- C helpers (vproxy.so): wake-ups at commit, keys, presigning
-- ---------------------------------------------------------------------------

-- At commit, wake the in-server worker running job_id (to check its lease),
-- or one idle in-server worker when job_id is NULL (to claim).
CREATE FUNCTION vproxy_internal.wake_in_server_workers_at_commit(job_id uuid DEFAULT NULL) RETURNS void
	AS 'MODULE_PATHNAME', 'vproxy_wake_workers_at_commit'
	LANGUAGE C CALLED ON NULL INPUT VOLATILE SET search_path = pg_catalog, pg_temp;

-- At commit, wake the launcher (the extension appeared, say).
CREATE FUNCTION vproxy_internal.wake_launcher_at_commit() RETURNS void
	AS 'MODULE_PATHNAME', 'vproxy_wake_launcher_at_commit'
	LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp;

-- NULL if key is a safe storage key (src/common/storage_key.h), else why
-- not; an output key (made from a template) also holds no brace.
CREATE FUNCTION vproxy_internal.key_problem(key text, output boolean) RETURNS text
	AS 'MODULE_PATHNAME', 'vproxy_key_problem'
	LANGUAGE C IMMUTABLE STRICT SET search_path = pg_catalog, pg_temp;

-- A key template with {mall_id}, {pin_id} and {video_id} filled in.
CREATE FUNCTION vproxy_internal.expand_key(template text, mall_id text, pin_id text, video_id uuid)
	RETURNS text
	AS 'MODULE_PATHNAME', 'vproxy_expand_key'
	LANGUAGE C IMMUTABLE SET search_path = pg_catalog, pg_temp;

-- The prefixes of a tenant's keys for one of its videos: the upload
-- prefix and the two output templates, each filled in up to its {mall_id}
-- segment (or wholly, without one); NULL when vproxy.upload_prefix_template
-- names no tenant (a single-tenant install).
CREATE FUNCTION vproxy_internal.tenant_prefixes(mall_id text, pin_id text, video_id uuid) RETURNS text[]
	AS 'MODULE_PATHNAME', 'vproxy_tenant_prefixes'
	LANGUAGE C STABLE SET search_path = pg_catalog, pg_temp;

-- NULL if an original_path may be written by the application: a safe key
-- below vproxy.upload_prefix_template filled in; else why not.
CREATE FUNCTION vproxy_internal.original_path_problem(original_path text, mall_id text, pin_id text)
	RETURNS text
	AS 'MODULE_PATHNAME', 'vproxy_original_path_problem'
	LANGUAGE C STABLE SET search_path = pg_catalog, pg_temp;

-- Trigger: the application writes original_path under the key rules and
-- never proxy_path or thumbnail_path (the owner and superusers pass).
CREATE FUNCTION vproxy_internal.check_video_keys() RETURNS trigger
	AS 'MODULE_PATHNAME', 'vproxy_check_video_keys'
	LANGUAGE C SET search_path = pg_catalog, pg_temp;

-- A presigned GET or PUT URL of a storage key valid for expires_seconds
-- (S3 SigV4 query signing with the server's credentials), or the key's
-- absolute file:// path with local-directory storage.
CREATE FUNCTION vproxy_internal.presign(method text, key text, expires_seconds int) RETURNS text
	AS 'MODULE_PATHNAME', 'vproxy_presign'
	LANGUAGE C STRICT VOLATILE SET search_path = pg_catalog, pg_temp;

-- ---------------------------------------------------------------------------
-- Small internal pieces
-- ---------------------------------------------------------------------------

-- A duration setting (vproxy.lease_duration, …) in seconds.
CREATE FUNCTION vproxy_internal.setting_seconds(name text) RETURNS double precision
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT extract(epoch FROM current_setting(name)::interval)::double precision;
$$;

-- The job types, and the error codes of a failed attempt (closed sets).
CREATE FUNCTION vproxy_internal.job_types() RETURNS text[]
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT ARRAY['proxy_generation', 'metadata_extraction', 'thumbnail_generation',
				 'video_deletion', 'proxy_segment'];
$$;

CREATE FUNCTION vproxy_internal.error_codes() RETURNS text[]
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT ARRAY['bad_media', 'checksum_mismatch', 'missing_original', 'storage_refused',
				 'storage_unavailable', 'no_temp_space', 'timeout', 'out_of_memory',
				 'crashed', 'worker_lost', 'cancelled', 'internal'];
$$;

-- Refuse a list of job types that names an unknown one (NULL: all).
CREATE FUNCTION vproxy_internal.check_job_types(job_types text[]) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	unknown text;
BEGIN
	SELECT t INTO unknown FROM unnest(job_types) t
	 WHERE t IS NULL OR NOT t = ANY (vproxy_internal.job_types()) LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION 'unknown job type "%"', unknown
			USING ERRCODE = 'invalid_parameter_value',
			HINT = 'Job types: ' || array_to_string(vproxy_internal.job_types(), ', ') || '.';
	END IF;
END
$$;

-- Keep videos.updated_at true whoever writes the row.
CREATE FUNCTION vproxy_internal.touch_updated_at() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	NEW.updated_at := now();
	RETURN NEW;
END
$$;

-- An empty checksum means "unknown", as NULL does: the first job fills it in.
CREATE FUNCTION vproxy_internal.blank_checksum_is_unknown() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	NEW.checksum_sha256 := nullif(NEW.checksum_sha256, '');
	RETURN NEW;
END
$$;

-- A video being deleted stays "deleting" until its row goes: no enqueue
-- (which marks it "processing") and no application update takes it back.
CREATE FUNCTION vproxy_internal.keep_deleting() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	RAISE EXCEPTION 'video % is being deleted', OLD.id
		USING ERRCODE = 'object_not_in_prerequisite_state';
END
$$;

-- Check a job's params whole; raise an error naming the first bad one.  An
-- odd height is refused (H.264 in 4:2:0 needs even sizes), not rounded.
CREATE FUNCTION vproxy_internal.check_params(params jsonb) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
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
	IF jsonb_typeof(params) IS DISTINCT FROM 'object' THEN
		RAISE EXCEPTION 'params must be a JSON object, not %', coalesce(jsonb_typeof(params), 'NULL')
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
			IF key = 'height' AND value::numeric % 2 <> 0 THEN
				RAISE EXCEPTION 'params.height must be even, not %', value
					USING ERRCODE = 'invalid_parameter_value',
					HINT = 'H.264 in 4:2:0 needs an even height; the width is made even by vproxy.';
			END IF;
		ELSE
			RAISE EXCEPTION 'unknown parameter "%"', key
				USING ERRCODE = 'invalid_parameter_value',
				HINT = 'Known parameters: timestamp_seconds, thumbnail_width, height, fps, crf, preset, audio_bitrate.';
		END IF;
	END LOOP;
END
$$;

-- The seconds of an expiry interval, checked: 1 second to 7 days.
CREATE FUNCTION vproxy_internal.expiry_seconds(expires_in interval) RETURNS int
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	seconds constant numeric := extract(epoch FROM expires_in);
BEGIN
	IF seconds IS NULL OR seconds < 1 OR seconds > 7 * 86400 THEN
		RAISE EXCEPTION 'expires_in must be from 1 second to 7 days, not %', expires_in
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	RETURN floor(seconds)::int;
END
$$;

-- At commit, wake the workers, in the server and outside it: every caller
-- (enqueue, retry, release, cancel) reaches the external workers through
-- NOTIFY vproxy_work (payload '' = work to claim, a job id = that job was
-- cancelled: check its lease now).  The NOTIFY is sent only while external
-- workers are checked in, so a database without them pays nothing for it.
CREATE FUNCTION vproxy_internal.wake_workers_at_commit(job_id uuid DEFAULT NULL) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	PERFORM vproxy_internal.wake_in_server_workers_at_commit(job_id);
	IF EXISTS (SELECT FROM vproxy.external_workers w
			   WHERE w.last_seen > now() - interval '10 minutes') THEN
		PERFORM pg_notify('vproxy_work', coalesce(job_id::text, ''));
	END IF;
END
$$;

-- Tell the listeners of vproxy_jobs that a job has ended (never for the
-- segments of a split proxy: the application sees their parent only).
CREATE FUNCTION vproxy_internal.notify_job_end(job vproxy.processing_jobs) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
	SELECT pg_notify('vproxy_jobs', json_build_object('job_id', job.id, 'video_id', job.video_id,
		'job_type', job.job_type, 'status', job.status)::text)
	 WHERE job.parent_job_id IS NULL;
$$;

-- The record of a failed attempt of job (as it was while it ran).
CREATE FUNCTION vproxy_internal.attempt_error(job vproxy.processing_jobs, code text, message text)
	RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT jsonb_build_object('attempt', job.attempts, 'at', now(), 'code', code,
							  'message', message, 'worker', job.lease_holder);
$$;

-- Put a failed or cancelled proxy job's video in its final state, unless
-- another proxy job for it is still queued or running.  A video that has a
-- proxy from an earlier run stays "completed" (its stored proxy, thumbnail
-- and metadata still describe that run), with the failure in
-- processing_error.  A video being deleted is left alone.  The video is
-- locked first, so that the check below sees a proxy job enqueued
-- concurrently (the enqueue locks the video too).
CREATE FUNCTION vproxy_internal.settle_video_after_failure(job vproxy.processing_jobs) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF job.job_type <> 'proxy_generation' OR job.parent_job_id IS NOT NULL THEN
		RETURN;
	END IF;
	PERFORM FROM vproxy.videos v WHERE v.id = job.video_id FOR UPDATE;
	UPDATE vproxy.videos v
	   SET processing_status = CASE WHEN v.proxy_path IS NOT NULL THEN 'completed' ELSE 'failed' END,
		   processing_error = CASE WHEN job.status = 'cancelled' AND v.proxy_path IS NOT NULL
								  THEN v.processing_error ELSE job.error_message END,
		   processing_completed_at = CASE WHEN v.proxy_path IS NOT NULL
										 THEN v.processing_completed_at ELSE NULL END
	 WHERE v.id = job.video_id
	   AND v.processing_status <> 'deleting'
	   AND NOT EXISTS (SELECT FROM vproxy.processing_jobs o
					   WHERE o.video_id = job.video_id AND o.id <> job.id
						 AND o.job_type = 'proxy_generation' AND o.parent_job_id IS NULL
						 AND o.status IN ('pending', 'running'));
END
$$;

-- Fail a running job for good, with its video, record the attempt's error
-- and notify; a unit of a split proxy fails its parent (which the caller
-- has locked).
CREATE FUNCTION vproxy_internal.fail_for_good(job_id uuid, code text, error text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	job vproxy.processing_jobs;
BEGIN
	UPDATE vproxy.processing_jobs j
	   SET status = 'failed', error_code = code, error_message = error, completed_at = now(),
		   attempt_errors = j.attempt_errors || vproxy_internal.attempt_error(j, code, error),
		   lease_token = NULL, lease_expires_at = NULL, lease_holder = NULL
	 WHERE j.id = fail_for_good.job_id
	RETURNING * INTO job;
	PERFORM vproxy_internal.settle_video_after_failure(job);
	PERFORM vproxy_internal.notify_job_end(job);
	IF job.parent_job_id IS NOT NULL THEN
		PERFORM vproxy_internal.split_unit_failed(job);
	END IF;
END
$$;

-- Cancel queued and running jobs (the one job_id with its segments, or all
-- of video_id's) with a reason; the rows cancelled.  A running job loses
-- its lease token (its worker can write nothing) but keeps its lease until
-- it expires: its child may still be stopping, and one writer per video
-- holds the video's next job back until then.  The removal of a split
-- proxy's temporary objects goes on.  Parents are locked before their units.
CREATE FUNCTION vproxy_internal.cancel_jobs(only_job uuid, of_video uuid, reason text)
	RETURNS SETOF vproxy.processing_jobs
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
	SELECT FROM vproxy.processing_jobs j
	 WHERE (j.id = only_job OR j.video_id = of_video) AND j.parent_job_id IS NULL
	 ORDER BY j.id FOR UPDATE;
	UPDATE vproxy.processing_jobs j
	   SET status = 'cancelled', completed_at = now(), error_message = reason, error_code = 'cancelled',
		   attempt_errors = CASE WHEN j.status = 'running'
			   THEN j.attempt_errors || vproxy_internal.attempt_error(j, 'cancelled', reason)
			   ELSE j.attempt_errors END,
		   lease_token = NULL,
		   lease_expires_at = CASE WHEN j.status = 'running' OR j.lease_expires_at > now()
			   THEN j.lease_expires_at END,
		   lease_holder = CASE WHEN j.status = 'running' OR j.lease_expires_at > now()
			   THEN j.lease_holder END
	 WHERE (j.id = only_job OR j.parent_job_id = only_job OR j.video_id = of_video)
	   AND j.status IN ('pending', 'running')
	   AND NOT (j.job_type = 'proxy_segment' AND j.params ->> 'unit' = 'cleanup')
	RETURNING j.*;
$$;

-- ---------------------------------------------------------------------------
-- Split proxies.  The proxy job of a video longer than
-- vproxy.split_min_duration ends its first attempt with a plan instead of a
-- proxy: it becomes a parent, running without a lease, whose units are
-- proxy_segment jobs any worker claims (params "unit"): one per segment of
-- the video ("video"), one for the audio ("audio", which also makes the
-- thumbnail), one checking the original's size and SHA-256 ("verify"),
-- then the "stitch", whose
-- completion completes the parent as a single pass would, then the
-- "cleanup" of the intermediate objects under the run's temporary prefix
-- (also after a failure or a cancel).  Writers of a parent and its units
-- lock the parent first.
-- ---------------------------------------------------------------------------

-- The temporary prefix of one run (attempt) of a split proxy (no upload may
-- lie below vproxy-split/: SPLIT_PARTS_ROOT of src/server/keys.c).
CREATE FUNCTION vproxy_internal.split_prefix(parent uuid, attempt int) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT format('vproxy-split/%s/%s/', parent, attempt);
$$;

-- The storage keys a unit writes (a cleanup: the prefix it removes); the
-- stitch writes its parent's proxy and thumbnail.
CREATE FUNCTION vproxy_internal.split_unit_outputs(unit vproxy.processing_jobs) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT CASE unit.params ->> 'unit'
		WHEN 'video' THEN jsonb_build_object('chunk_key', (unit.params ->> 'prefix')
			|| format('video-%s.chunk', lpad(unit.params ->> 'index', 5, '0')))
		WHEN 'audio' THEN jsonb_build_object('audio_key', (unit.params ->> 'prefix') || 'audio.chunk',
											 'thumbnail_key', (unit.params ->> 'prefix') || 'thumbnail.jpg')
		WHEN 'stitch' THEN (SELECT jsonb_build_object('proxy_key', p.planned_outputs -> 'proxy_key',
													  'thumbnail_key', p.planned_outputs -> 'thumbnail_key')
							  FROM vproxy.processing_jobs p WHERE p.id = unit.parent_job_id)
		WHEN 'verify' THEN '{}'::jsonb
		WHEN 'cleanup' THEN jsonb_build_object('prefix', unit.params ->> 'prefix') END;
$$;

-- Whether job may run beside other, another job of the same video that
-- holds a lease or runs: the units of one parent beside each other and
-- beside their parent; nothing but its run's units holds a cleanup back,
-- and a cleanup (which touches only its temporary prefix) holds nothing
-- back.
CREATE FUNCTION vproxy_internal.split_may_run_beside(job vproxy.processing_jobs,
	other vproxy.processing_jobs) RETURNS boolean
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT coalesce(CASE
		WHEN job.params ->> 'unit' = 'cleanup' AND job.job_type = 'proxy_segment'
			THEN NOT (other.parent_job_id IS NOT DISTINCT FROM job.parent_job_id
					  AND other.params ->> 'prefix' IS NOT DISTINCT FROM job.params ->> 'prefix')
		WHEN other.params ->> 'unit' = 'cleanup' AND other.job_type = 'proxy_segment' THEN true
		WHEN job.job_type = 'proxy_segment'
			THEN other.id = job.parent_job_id OR other.parent_job_id = job.parent_job_id
		ELSE false END, false);
$$;

-- The share of a split proxy's work done: 2% for the plan, the rest by
-- weight (a segment its frames, the audio 5% of them, the verify and the
-- stitch 2% each), a
-- unit counting whole when completed, by its progress while it runs.
CREATE FUNCTION vproxy_internal.split_progress(parent vproxy.processing_jobs) RETURNS real
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT least(1, 0.02 + 0.98 * coalesce(sum((u.params ->> 'weight')::double precision
		* CASE u.status WHEN 'completed' THEN 1 WHEN 'running' THEN u.progress ELSE 0 END), 0)
		/ greatest((parent.planned_outputs #>> '{split,work}')::double precision, 1))::real
	  FROM vproxy.processing_jobs u
	 WHERE u.parent_job_id = parent.id
	   AND u.params ->> 'prefix' = parent.planned_outputs #>> '{split,prefix}';
$$;

-- What a unit's child reads beside the common spec ("unit"): its kind,
-- prefix and slots; the stitch also the original's metadata and what the
-- segments, the audio unit and the verify unit made.
CREATE FUNCTION vproxy_internal.split_unit_spec(unit vproxy.processing_jobs) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT (unit.params - 'params' - 'weight')
		|| CASE WHEN unit.params ->> 'unit' = 'stitch' THEN jsonb_build_object(
			'original', (SELECT p.planned_outputs #> '{split,original}'
						   FROM vproxy.processing_jobs p WHERE p.id = unit.parent_job_id),
			'segments', (SELECT jsonb_agg(u.planned_outputs || (u.result_data - 'status')
										  || jsonb_build_object('first_slot', u.params -> 'first_slot',
																'next_slot', u.params -> 'next_slot')
										  ORDER BY (u.params ->> 'index')::int)
						   FROM vproxy.processing_jobs u
						  WHERE u.parent_job_id = unit.parent_job_id AND u.params ->> 'unit' = 'video'
							AND u.params ->> 'prefix' = unit.params ->> 'prefix'),
			'audio', (SELECT u.planned_outputs || (u.result_data - 'status')
						FROM vproxy.processing_jobs u
					   WHERE u.parent_job_id = unit.parent_job_id AND u.params ->> 'unit' = 'audio'
						 AND u.params ->> 'prefix' = unit.params ->> 'prefix'),
			'verify', (SELECT u.result_data - 'status'
						 FROM vproxy.processing_jobs u
						WHERE u.parent_job_id = unit.parent_job_id AND u.params ->> 'unit' = 'verify'
						  AND u.params ->> 'prefix' = unit.params ->> 'prefix'))
		ELSE '{}'::jsonb END;
$$;

-- Whether a run's temporary prefix is still to be removed: no cleanup of
-- it completed.
CREATE FUNCTION vproxy_internal.split_prefix_left(parent_id uuid, prefix text) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT NOT EXISTS (SELECT FROM vproxy.processing_jobs c
						WHERE c.parent_job_id = parent_id AND c.params ->> 'unit' = 'cleanup'
						  AND c.params ->> 'prefix' = prefix AND c.status = 'completed');
$$;

-- The temporary prefixes of a video's split proxies not yet removed (a
-- deletion removes them with the video).
CREATE FUNCTION vproxy_internal.split_prefixes_left(video_id uuid) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT coalesce(jsonb_agg(DISTINCT u.params ->> 'prefix'), '[]')
	  FROM vproxy.processing_jobs u
	 WHERE u.video_id = split_prefixes_left.video_id AND u.job_type = 'proxy_segment'
	   AND vproxy_internal.split_prefix_left(u.parent_job_id, u.params ->> 'prefix');
$$;

-- Whether the pruner must keep a job: a parent with a unit queued or
-- running, or a temporary prefix not yet removed.
CREATE FUNCTION vproxy_internal.split_keeps(job vproxy.processing_jobs) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT EXISTS (SELECT FROM vproxy.processing_jobs u
					WHERE u.parent_job_id = job.id
					  AND (u.status IN ('pending', 'running')
						   OR vproxy_internal.split_prefix_left(job.id, u.params ->> 'prefix')));
$$;

-- Queue the removal of a run's temporary prefix, unless one is queued or
-- running, or the video is being deleted (its deletion removes it).
CREATE FUNCTION vproxy_internal.split_queue_cleanup(parent vproxy.processing_jobs, prefix text)
	RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF EXISTS (SELECT FROM vproxy.processing_jobs c
				WHERE c.parent_job_id = parent.id AND c.params ->> 'unit' = 'cleanup'
				  AND c.params ->> 'prefix' = prefix AND c.status IN ('pending', 'running'))
		OR EXISTS (SELECT FROM vproxy.videos v
					WHERE v.id = parent.video_id AND v.processing_status = 'deleting') THEN
		RETURN;
	END IF;
	INSERT INTO vproxy.processing_jobs (video_id, job_type, priority, params, max_attempts, parent_job_id)
	VALUES (parent.video_id, 'proxy_segment', parent.priority,
			jsonb_build_object('unit', 'cleanup', 'prefix', prefix, 'weight', 0),
			current_setting('vproxy.max_attempts')::int, parent.id);
	PERFORM vproxy_internal.wake_workers_at_commit(NULL);
END
$$;

-- The end of a proxy job's first attempt with a plan ("status": "split"):
-- queue its segments, its audio and its verify at the parent's priority, keep the plan
-- and the original's metadata, and let the lease go; the job stays running.
CREATE FUNCTION vproxy_internal.split_start(job vproxy.processing_jobs, result jsonb) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	plan constant jsonb := result -> 'plan';
	prefix constant text := vproxy_internal.split_prefix(job.id, job.attempts);
	slots double precision;
BEGIN
	IF jsonb_typeof(plan -> 'segments') IS DISTINCT FROM 'array'
		OR jsonb_array_length(plan -> 'segments') = 0
		OR jsonb_typeof(plan -> 'slots') IS DISTINCT FROM 'number'
		OR jsonb_typeof(result #> '{metadata,original}') IS DISTINCT FROM 'object' THEN
		RAISE EXCEPTION 'the split plan of job % names no segments, frames or metadata', job.id
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	slots := greatest((plan ->> 'slots')::double precision, 1);
	INSERT INTO vproxy.processing_jobs (video_id, job_type, priority, params, max_attempts, parent_job_id)
	SELECT job.video_id, 'proxy_segment', job.priority,
		   jsonb_build_object('unit', 'video', 'prefix', prefix, 'index', s.n - 1,
							  'count', jsonb_array_length(plan -> 'segments'),
							  'first_slot', (s.segment ->> 'first_slot')::bigint,
							  'next_slot', (s.segment ->> 'next_slot')::bigint,
							  'interlaced', coalesce((plan ->> 'interlaced')::boolean, false),
							  'weight', CASE WHEN (s.segment ->> 'next_slot')::bigint >= 0
								  THEN (s.segment ->> 'next_slot')::bigint - (s.segment ->> 'first_slot')::bigint
								  ELSE greatest(slots - (s.segment ->> 'first_slot')::bigint, 1) END,
							  'params', job.params),
		   current_setting('vproxy.max_attempts')::int, job.id
	  FROM jsonb_array_elements(plan -> 'segments') WITH ORDINALITY AS s (segment, n);
	INSERT INTO vproxy.processing_jobs (video_id, job_type, priority, params, max_attempts, parent_job_id)
	VALUES (job.video_id, 'proxy_segment', job.priority,
			jsonb_build_object('unit', 'audio', 'prefix', prefix, 'weight', 0.05 * slots,
							   'params', job.params),
			current_setting('vproxy.max_attempts')::int, job.id),
		   (job.video_id, 'proxy_segment', job.priority,
			jsonb_build_object('unit', 'verify', 'prefix', prefix, 'weight', 0.02 * slots),
			current_setting('vproxy.max_attempts')::int, job.id);
	UPDATE vproxy.processing_jobs j
	   SET planned_outputs = j.planned_outputs || jsonb_build_object('split', jsonb_build_object(
			   'prefix', prefix, 'segments', jsonb_array_length(plan -> 'segments'),
			   'slots', plan -> 'slots', 'work', 1.09 * slots,
			   'original', result #> '{metadata,original}')),
		   progress = 0.02, lease_token = NULL, lease_expires_at = NULL, lease_holder = NULL
	 WHERE j.id = job.id;
	PERFORM vproxy_internal.wake_workers_at_commit(NULL);
END
$$;

-- The stitch of a split proxy completed: complete its parent as a single
-- pass completes (job, video, one NOTIFY), result_data with "segments",
-- and queue the removal of the temporary objects.
CREATE FUNCTION vproxy_internal.split_complete(parent vproxy.processing_jobs, result jsonb) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	whole constant jsonb := result || jsonb_build_object('segments', parent.planned_outputs #> '{split,segments}');
	prefix constant text := parent.planned_outputs #>> '{split,prefix}';
BEGIN
	UPDATE vproxy.processing_jobs j
	   SET status = 'completed', completed_at = now(), progress = 1,
		   result_data = vproxy_internal.recorded_result(j, whole),
		   error_code = NULL, error_message = NULL
	 WHERE j.id = parent.id
	RETURNING * INTO parent;
	PERFORM vproxy_internal.record_result(parent, whole);
	PERFORM vproxy_internal.notify_job_end(parent);
	PERFORM vproxy_internal.split_queue_cleanup(parent, prefix);
END
$$;

-- A unit completed (its parent is locked): the stitch once the segments,
-- the audio and the verify are all done; the parent's completion after the
-- stitch.
-- A unit of an ended run (cancelled meanwhile) changes nothing.
CREATE FUNCTION vproxy_internal.split_unit_finished(unit vproxy.processing_jobs, result jsonb)
	RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	parent vproxy.processing_jobs;
	prefix constant text := unit.params ->> 'prefix';
BEGIN
	SELECT * INTO parent FROM vproxy.processing_jobs p WHERE p.id = unit.parent_job_id FOR UPDATE;
	IF unit.params ->> 'unit' = 'cleanup' OR parent.status <> 'running'
		OR parent.planned_outputs #>> '{split,prefix}' IS DISTINCT FROM prefix THEN
		RETURN;
	END IF;
	IF unit.params ->> 'unit' = 'stitch' THEN
		PERFORM vproxy_internal.split_complete(parent, result);
		RETURN;
	END IF;
	IF NOT EXISTS (SELECT FROM vproxy.processing_jobs u
					WHERE u.parent_job_id = parent.id AND u.params ->> 'prefix' = prefix
					  AND u.params ->> 'unit' IN ('video', 'audio', 'verify', 'stitch')
					  AND (u.status <> 'completed' OR u.params ->> 'unit' = 'stitch')) THEN
		INSERT INTO vproxy.processing_jobs (video_id, job_type, priority, params, max_attempts, parent_job_id)
		VALUES (parent.video_id, 'proxy_segment', parent.priority,
				jsonb_build_object('unit', 'stitch', 'prefix', prefix,
								   'count', parent.planned_outputs #> '{split,segments}',
								   'weight', 0.02 * (parent.planned_outputs #>> '{split,slots}')::double precision,
								   'params', parent.params),
				current_setting('vproxy.max_attempts')::int, parent.id);
		PERFORM vproxy_internal.wake_workers_at_commit(NULL);
	END IF;
	UPDATE vproxy.processing_jobs p
	   SET progress = greatest(p.progress, vproxy_internal.split_progress(p))
	 WHERE p.id = parent.id;
END
$$;

-- A unit failed for good (its parent is locked): the parent fails with the
-- unit's error code and message, its other units stop, and the temporary
-- objects are removed.
CREATE FUNCTION vproxy_internal.split_unit_failed(unit vproxy.processing_jobs) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	parent vproxy.processing_jobs;
	prefix constant text := unit.params ->> 'prefix';
	sibling vproxy.processing_jobs;
	reason constant text := format('%s of the split proxy failed', CASE unit.params ->> 'unit'
		WHEN 'video' THEN format('segment %s of %s', (unit.params ->> 'index')::int + 1, unit.params ->> 'count')
		WHEN 'verify' THEN 'the check of the original'
		ELSE 'the ' || (unit.params ->> 'unit') END);
BEGIN
	SELECT * INTO parent FROM vproxy.processing_jobs p WHERE p.id = unit.parent_job_id FOR UPDATE;
	IF unit.params ->> 'unit' = 'cleanup' OR parent.status <> 'running'
		OR parent.planned_outputs #>> '{split,prefix}' IS DISTINCT FROM prefix THEN
		RETURN;
	END IF;
	FOR sibling IN
		UPDATE vproxy.processing_jobs j
		   SET status = 'cancelled', completed_at = now(), error_code = 'cancelled',
			   error_message = reason,
			   attempt_errors = CASE WHEN j.status = 'running'
				   THEN j.attempt_errors || vproxy_internal.attempt_error(j, 'cancelled', reason)
				   ELSE j.attempt_errors END,
			   lease_token = NULL,
			   lease_expires_at = CASE WHEN j.status = 'running' THEN j.lease_expires_at END,
			   lease_holder = CASE WHEN j.status = 'running' THEN j.lease_holder END
		 WHERE j.parent_job_id = parent.id AND j.params ->> 'prefix' = prefix
		   AND j.status IN ('pending', 'running')
		RETURNING j.*
	LOOP
		IF sibling.lease_expires_at IS NOT NULL THEN
			PERFORM vproxy_internal.wake_workers_at_commit(sibling.id);
		END IF;
	END LOOP;
	PERFORM vproxy_internal.fail_for_good(parent.id, coalesce(unit.error_code, 'internal'),
										  reason || ': ' || coalesce(unit.error_message, 'unknown error'));
	PERFORM vproxy_internal.split_queue_cleanup(parent, prefix);
END
$$;

-- What the pruner does for split proxies besides: a parent whose run has no
-- unit left queued or running fails (nothing would complete it), and an
-- ended run whose temporary prefix is still there gets a cleanup again (its
-- last one failed, a retry delay ago).
CREATE FUNCTION vproxy_internal.split_sweep() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	parent vproxy.processing_jobs;
	parent_id uuid;
	prefix text;
BEGIN
	FOR parent IN
		SELECT * FROM vproxy.processing_jobs p
		 WHERE p.status = 'running' AND p.lease_expires_at IS NULL AND p.planned_outputs ? 'split'
		   AND NOT EXISTS (SELECT FROM vproxy.processing_jobs u
							WHERE u.parent_job_id = p.id AND u.status IN ('pending', 'running')
							  AND u.params ->> 'prefix' = p.planned_outputs #>> '{split,prefix}')
		   FOR UPDATE SKIP LOCKED
	LOOP
		PERFORM vproxy_internal.fail_for_good(parent.id, 'internal',
											  'the units of the split proxy ended without completing it');
		PERFORM vproxy_internal.split_queue_cleanup(parent, parent.planned_outputs #>> '{split,prefix}');
	END LOOP;
	FOR parent_id, prefix IN
		SELECT DISTINCT p.id, u.params ->> 'prefix'
		  FROM vproxy.processing_jobs u
		  JOIN vproxy.processing_jobs p ON p.id = u.parent_job_id
		 WHERE (p.status <> 'running' OR p.planned_outputs #>> '{split,prefix}' IS DISTINCT FROM u.params ->> 'prefix')
		   AND vproxy_internal.split_prefix_left(p.id, u.params ->> 'prefix')
		   AND NOT EXISTS (SELECT FROM vproxy.processing_jobs o
							WHERE o.parent_job_id = p.id AND o.params ->> 'prefix' = u.params ->> 'prefix'
							  AND (o.status IN ('pending', 'running')
								   OR (o.params ->> 'unit' = 'cleanup'
									   AND o.completed_at > now() - current_setting('vproxy.retry_delay')::interval)))
	LOOP
		SELECT * INTO parent FROM vproxy.processing_jobs p WHERE p.id = parent_id;
		PERFORM vproxy_internal.split_queue_cleanup(parent, prefix);
	END LOOP;
END
$$;

-- ---------------------------------------------------------------------------
-- One writer per video
-- ---------------------------------------------------------------------------

-- Whether a job of type job_type may run beside a running job of type
-- other_type of the same video: only metadata_extraction (which writes no
-- object) runs beside another job, and nothing runs beside a deletion.
CREATE FUNCTION vproxy_internal.may_run_beside(job_type text, other_type text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
	SELECT job_type <> 'video_deletion' AND other_type <> 'video_deletion'
		   AND (job_type = 'metadata_extraction' OR other_type = 'metadata_extraction');
$$;

-- Whether another job of the job's video may still be writing what the job
-- would write: running, or holding a lease not yet expired (the child of a
-- cancelled attempt may still be stopping); a split proxy's parent runs
-- without a lease while its units run.
CREATE FUNCTION vproxy_internal.video_busy_for(job vproxy.processing_jobs) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT EXISTS (
		SELECT FROM vproxy.processing_jobs o
		 WHERE o.video_id = job.video_id AND o.id <> job.id
		   AND ((o.lease_expires_at IS NOT NULL AND (o.status = 'running' OR o.lease_expires_at > now()))
				OR (o.status = 'running' AND o.lease_expires_at IS NULL))
		   AND NOT vproxy_internal.may_run_beside(job.job_type, o.job_type)
		   AND NOT vproxy_internal.split_may_run_beside(job, o));
$$;

-- ---------------------------------------------------------------------------
-- Keys and the job spec: the claim is the spec's one producer
-- ---------------------------------------------------------------------------

-- A video's output key by a template setting.
CREATE FUNCTION vproxy_internal.output_key(setting text, video vproxy.videos) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT vproxy_internal.expand_key(current_setting(setting), video.mall_id, video.pin_id, video.id);
$$;

-- NULL if a key may be presigned or deleted for the video: a safe key
-- below one of its tenant's prefixes; else why not.
CREATE FUNCTION vproxy_internal.tenant_key_problem(key text, video vproxy.videos) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT coalesce(vproxy_internal.key_problem(key, false),
		(SELECT format('is outside the prefixes of tenant %s (%s)', video.mall_id, array_to_string(p.prefixes, ', '))
		   FROM (SELECT vproxy_internal.tenant_prefixes(video.mall_id, video.pin_id, video.id) AS prefixes) p
		  WHERE p.prefixes IS NOT NULL
			AND NOT EXISTS (SELECT FROM unnest(p.prefixes) prefix WHERE starts_with(key, prefix))));
$$;

-- What a deletion removes: the original, the outputs under the current
-- templates, the outputs the row names under other keys ("stale_keys") and
-- the temporary prefixes of its split proxies not yet removed
-- ("stale_prefixes"); a key that is unsafe or outside the tenant's prefixes
-- is skipped and said so in "skipped_keys" ({"key", "reason"}): the row
-- still goes.
CREATE FUNCTION vproxy_internal.deletion_plan(video vproxy.videos) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
	WITH named AS (
		SELECT k.n, k.what, k.key, vproxy_internal.tenant_key_problem(k.key, video) AS problem
		  FROM (VALUES (1, 'original', video.original_path),
					   (2, 'proxy_key', vproxy_internal.output_key('vproxy.proxy_key_template', video)),
					   (3, 'thumbnail_key', vproxy_internal.output_key('vproxy.thumbnail_key_template', video)),
					   (4, 'stale', video.proxy_path),
					   (5, 'stale', video.thumbnail_path)) AS k (n, what, key)
		 WHERE k.key IS NOT NULL)
	SELECT jsonb_build_object(
		'original', (SELECT n.key FROM named n WHERE n.what = 'original' AND n.problem IS NULL),
		'proxy_key', (SELECT n.key FROM named n WHERE n.what = 'proxy_key' AND n.problem IS NULL),
		'thumbnail_key', (SELECT n.key FROM named n WHERE n.what = 'thumbnail_key' AND n.problem IS NULL),
		'stale_keys', coalesce((SELECT jsonb_agg(DISTINCT n.key) FROM named n
								 WHERE n.what = 'stale' AND n.problem IS NULL
								   AND n.key NOT IN (SELECT m.key FROM named m WHERE m.what <> 'stale')), '[]'),
		'skipped_keys', coalesce((SELECT jsonb_agg(jsonb_build_object('key', n.key, 'reason', n.problem) ORDER BY n.n)
								   FROM named n WHERE n.problem IS NOT NULL), '[]'),
		'stale_prefixes', vproxy_internal.split_prefixes_left(video.id));
$$;

-- The keys a claimed job may write (or, for a deletion, remove), as the
-- templates name them at the claim; finish_job records no others.
CREATE FUNCTION vproxy_internal.planned_outputs(job vproxy.processing_jobs, video vproxy.videos)
	RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT CASE job.job_type
		WHEN 'proxy_generation' THEN jsonb_build_object(
			'proxy_key', vproxy_internal.output_key('vproxy.proxy_key_template', video),
			'thumbnail_key', vproxy_internal.output_key('vproxy.thumbnail_key_template', video))
		WHEN 'thumbnail_generation' THEN jsonb_build_object(
			'thumbnail_key', vproxy_internal.output_key('vproxy.thumbnail_key_template', video))
		WHEN 'video_deletion' THEN vproxy_internal.deletion_plan(video)
		WHEN 'proxy_segment' THEN vproxy_internal.split_unit_outputs(job)
		ELSE '{}'::jsonb END;
$$;

-- NULL if the child can run the claimed job with these keys, else why not
-- (an original_path or an output key the key rule refuses).
CREATE FUNCTION vproxy_internal.plan_problem(job vproxy.processing_jobs, video vproxy.videos)
	RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT string_agg(format('%s "%s" %s', k.what, k.key, k.problem), '; ')
	  FROM (SELECT k.what, k.key, vproxy_internal.key_problem(k.key, k.output) AS problem
			  FROM (VALUES ('original_path', video.original_path, false),
						   ('proxy key', job.planned_outputs ->> 'proxy_key', true),
						   ('thumbnail key', job.planned_outputs ->> 'thumbnail_key', true)) AS k (what, key, output)
			 WHERE job.job_type NOT IN ('video_deletion', 'proxy_segment')) k
	 WHERE k.problem IS NOT NULL;
$$;

-- The job spec the child reads (src/transcode/job-protocol.md), but the
-- worker's local part: what to read, make or remove, and where.
CREATE FUNCTION vproxy_internal.job_spec(job vproxy.processing_jobs, video vproxy.videos) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT jsonb_build_object(
		'job_id', job.id,
		'video_id', job.video_id,
		'attempt', job.attempts,
		'job_type', job.job_type,
		'storage', jsonb_build_object(
			'url', current_setting('vproxy.storage_url'),
			's3_endpoint', current_setting('vproxy.s3_endpoint'),
			's3_region', current_setting('vproxy.s3_region')),
		'original', CASE WHEN job.job_type = 'video_deletion'
			THEN jsonb_strip_nulls(jsonb_build_object('key', job.planned_outputs -> 'original'))
			ELSE jsonb_build_object('key', video.original_path,
									'size_bytes', video.file_size_bytes,
									'sha256', video.checksum_sha256) END,
		'outputs', CASE WHEN job.job_type = 'proxy_segment' THEN job.planned_outputs
			ELSE jsonb_strip_nulls(jsonb_build_object(
				'proxy_key', job.planned_outputs -> 'proxy_key',
				'thumbnail_key', job.planned_outputs -> 'thumbnail_key')) END,
		'params', CASE WHEN job.job_type = 'proxy_segment' THEN coalesce(job.params -> 'params', '{}')
			ELSE job.params END)
		|| CASE job.job_type
			WHEN 'proxy_generation' THEN jsonb_build_object('split', jsonb_build_object(
				'min_duration_seconds', vproxy_internal.setting_seconds('vproxy.split_min_duration'),
				'segment_duration_seconds', vproxy_internal.setting_seconds('vproxy.segment_duration')))
			WHEN 'video_deletion' THEN jsonb_build_object('stale_keys', job.planned_outputs -> 'stale_keys',
														  'stale_prefixes', job.planned_outputs -> 'stale_prefixes')
			WHEN 'proxy_segment' THEN jsonb_build_object('unit', vproxy_internal.split_unit_spec(job))
			ELSE '{}'::jsonb END;
$$;

-- Refuse a result that names other output keys than the claim planned.
CREATE FUNCTION vproxy_internal.check_result_keys(job vproxy.processing_jobs, result jsonb) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	field text;
	planned text;
BEGIN
	IF jsonb_typeof(result) IS DISTINCT FROM 'object' THEN
		RAISE EXCEPTION 'the result of job % is not a JSON object', job.id
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF job.job_type NOT IN ('proxy_generation', 'thumbnail_generation', 'metadata_extraction')
		AND NOT (job.job_type = 'proxy_segment' AND job.params ->> 'unit' = 'stitch') THEN
		RETURN;
	END IF;
	FOR field, planned IN VALUES ('proxy_path', job.planned_outputs ->> 'proxy_key'),
								 ('thumbnail_path', job.planned_outputs ->> 'thumbnail_key') LOOP
		IF (result ->> field) IS DISTINCT FROM planned THEN
			RAISE EXCEPTION 'the result of job % names % %, not the key its claim planned (%)',
				job.id, field, coalesce(quote_literal(result ->> field), 'NULL'),
				coalesce(quote_literal(planned), 'none')
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
	END LOOP;
END
$$;

-- What result_data keeps of a child's result: not the original's SHA-256
-- (it goes to the video; a split proxy's audio unit keeps it for the
-- stitch); of a deletion, the planned keys and prefixes it removed and the
-- keys skipped.
CREATE FUNCTION vproxy_internal.recorded_result(job vproxy.processing_jobs, result jsonb) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT CASE WHEN job.job_type = 'video_deletion' THEN jsonb_build_object(
		'status', 'success',
		'deleted_keys', coalesce((SELECT jsonb_agg(k ORDER BY n)
									FROM jsonb_array_elements_text(coalesce(result -> 'deleted_keys', '[]'))
										 WITH ORDINALITY AS d (k, n)
								   WHERE k IN (job.planned_outputs ->> 'original', job.planned_outputs ->> 'proxy_key',
											   job.planned_outputs ->> 'thumbnail_key')
									  OR job.planned_outputs -> 'stale_keys' ? k), '[]'),
		'skipped_keys', coalesce(job.planned_outputs -> 'skipped_keys', '[]'),
		'deleted_prefixes', coalesce((SELECT jsonb_agg(k ORDER BY n)
										FROM jsonb_array_elements_text(coalesce(result -> 'deleted_prefixes', '[]'))
											 WITH ORDINALITY AS d (k, n)
									   WHERE coalesce(job.planned_outputs -> 'stale_prefixes', '[]') ? k), '[]'))
	WHEN job.job_type = 'proxy_segment' THEN result
	ELSE result - 'original_sha256' END;
$$;

-- The video's columns a completed job writes, by job type: the metadata
-- the child read from the original (every type that read it), the proxy
-- and thumbnail keys.
CREATE FUNCTION vproxy_internal.record_result(job vproxy.processing_jobs, result jsonb) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	original constant jsonb := result #> '{metadata,original}';
BEGIN
	IF job.job_type NOT IN ('proxy_generation', 'metadata_extraction', 'thumbnail_generation') THEN
		RETURN;
	END IF;
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
END
$$;

-- ---------------------------------------------------------------------------
-- Triggers of the deletion
-- ---------------------------------------------------------------------------

-- No job but its deletion is queued for a video being deleted.  The key
-- share lock waits for a vproxy_delete_video() in progress (it holds the
-- row FOR UPDATE) and then reads the row as that left it: "deleting".  (No
-- status in the WHERE clause: the snapshot's older row would not match it
-- and nothing would wait.)
CREATE FUNCTION vproxy_internal.refuse_jobs_of_deleting_video() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	status text;
BEGIN
	SELECT v.processing_status INTO status FROM vproxy.videos v
	 WHERE v.id = NEW.video_id
	   FOR KEY SHARE;
	IF status = 'deleting' THEN
		RAISE EXCEPTION 'video % is being deleted', NEW.video_id
			USING ERRCODE = 'object_not_in_prerequisite_state',
			HINT = 'No job can be queued for a video once vproxy_delete_video() was called.';
	END IF;
	RETURN NEW;
END
$$;

-- The end of a deletion job: completed, it detaches itself from the video
-- and deletes the row (the video's other jobs go with it), in the finishing
-- transaction, whose NOTIFY still names the video; failed for good, the
-- video stays "deleting" with the reason, and vproxy_delete_video() may be
-- called again.
CREATE FUNCTION vproxy_internal.end_deletion() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF NEW.status = 'completed' THEN
		UPDATE vproxy.processing_jobs j
		   SET video_id = NULL,
			   result_data = coalesce(j.result_data, '{}') || jsonb_build_object('video_id', OLD.video_id)
		 WHERE j.id = NEW.id;
		DELETE FROM vproxy.videos v WHERE v.id = OLD.video_id;
	ELSIF NEW.status = 'failed' THEN
		UPDATE vproxy.videos v
		   SET processing_error = 'deletion failed: ' || coalesce(NEW.error_message, 'unknown error')
		 WHERE v.id = OLD.video_id;
	END IF;
	RETURN NULL;
END
$$;

-- ---------------------------------------------------------------------------
-- The application's API.  vproxy.vproxy_enqueue, _cancel, _retry, _url,
-- _upload_url, _delete_video and _reprocess are C functions running as the
-- caller (src/server/gate.c): they check that the video or job is visible
-- to the caller (privileges and row-level security apply), then call the
-- function of the same name below, which runs as the owner.
-- ---------------------------------------------------------------------------

-- Queue a job for a video, or return the job of the same video, type and
-- params already queued or running; the commit wakes a worker.
CREATE FUNCTION vproxy_internal.vproxy_enqueue(video_id uuid, job_type text, priority int, params jsonb)
	RETURNS uuid
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
-- the columns of ON CONFLICT (...) share the parameters' names
#variable_conflict use_column
DECLARE
	new_job_id uuid;
	the_video_id constant uuid := video_id;
	the_job_type constant text := job_type;
	the_params constant jsonb := coalesce(params, '{}');
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
	PERFORM vproxy_internal.check_params(the_params);

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
		RAISE EXCEPTION 'video % does not exist', the_video_id USING ERRCODE = 'no_data_found';
	END IF;

	-- the same job queued or running: that one (an insert racing ours
	-- waits for its transaction, then either wins or is seen here)
	LOOP
		INSERT INTO vproxy.processing_jobs (video_id, job_type, priority, params, max_attempts)
		VALUES (the_video_id, the_job_type, priority, the_params,
				current_setting('vproxy.max_attempts')::int)
		ON CONFLICT (video_id, job_type, params)
		   WHERE status IN ('pending', 'running') AND parent_job_id IS NULL DO NOTHING
		RETURNING id INTO new_job_id;
		IF new_job_id IS NOT NULL THEN
			PERFORM vproxy_internal.wake_workers_at_commit(NULL);
			RETURN new_job_id;
		END IF;
		SELECT j.id INTO new_job_id FROM vproxy.processing_jobs j
		 WHERE j.video_id = the_video_id AND j.job_type = the_job_type AND j.params = the_params
		   AND j.status IN ('pending', 'running') AND j.parent_job_id IS NULL;
		IF FOUND THEN
			RETURN new_job_id;
		END IF;
	END LOOP;
END
$$;

-- Cancel a queued or running job (and its segments): true if this call
-- cancelled it, false if it had ended.  The worker running it stops its
-- child at commit; its lease lingers until it expires.  A split proxy's
-- temporary objects are removed once its units' leases have expired.
CREATE FUNCTION vproxy_internal.vproxy_cancel(job_id uuid) RETURNS boolean
LANGUAGE plpgsql STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	job vproxy.processing_jobs;
	cancelled boolean := false;
BEGIN
	IF EXISTS (SELECT FROM vproxy.processing_jobs j
				WHERE j.id = vproxy_cancel.job_id AND j.parent_job_id IS NOT NULL) THEN
		RAISE EXCEPTION 'job % is a segment of a split proxy', vproxy_cancel.job_id
			USING ERRCODE = 'invalid_parameter_value',
			HINT = 'Cancel the job it is a segment of.';
	END IF;
	FOR job IN SELECT * FROM vproxy_internal.cancel_jobs(vproxy_cancel.job_id, NULL,
														 'cancelled by vproxy_cancel()')
	LOOP
		cancelled := cancelled OR job.id = vproxy_cancel.job_id;
		PERFORM vproxy_internal.settle_video_after_failure(job);
		PERFORM vproxy_internal.notify_job_end(job);
		PERFORM vproxy_internal.wake_workers_at_commit(job.id);
		IF job.planned_outputs ? 'split' THEN
			PERFORM vproxy_internal.split_queue_cleanup(job, job.planned_outputs #>> '{split,prefix}');
		END IF;
	END LOOP;
	IF cancelled THEN
		RETURN true;
	END IF;
	IF NOT EXISTS (SELECT FROM vproxy.processing_jobs j WHERE j.id = vproxy_cancel.job_id) THEN
		RAISE EXCEPTION 'job % does not exist', vproxy_cancel.job_id USING ERRCODE = 'no_data_found';
	END IF;
	RETURN false;
END
$$;

-- Put a failed or cancelled job back in the queue, due now, with a fresh
-- budget of vproxy.max_attempts attempts (attempts keeps counting, so the
-- attempt numbers of attempt_errors stay unique); its error is cleared, its
-- history kept.  False if the job is not failed or cancelled, or if the
-- same job (video, type, params) is queued or running already.
CREATE FUNCTION vproxy_internal.vproxy_retry(job_id uuid) RETURNS boolean
LANGUAGE plpgsql STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	job vproxy.processing_jobs;
	video_status text;
BEGIN
	SELECT * INTO job FROM vproxy.processing_jobs j WHERE j.id = vproxy_retry.job_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'job % does not exist', vproxy_retry.job_id USING ERRCODE = 'no_data_found';
	END IF;
	IF job.parent_job_id IS NOT NULL THEN
		RAISE EXCEPTION 'job % is a segment of a split proxy', job.id
			USING ERRCODE = 'invalid_parameter_value',
			HINT = format('Retry the job it is a segment of, %s.', job.parent_job_id);
	END IF;
	-- a job that has not ended is never locked here: its finish locks the
	-- job, then the video
	IF job.status NOT IN ('failed', 'cancelled') THEN
		RETURN false;
	END IF;
	-- the video first, as an enqueue locks it: a deletion cannot slip in
	SELECT v.processing_status INTO video_status FROM vproxy.videos v
	 WHERE v.id = job.video_id FOR UPDATE;
	IF video_status = 'deleting' AND job.job_type <> 'video_deletion' THEN
		RAISE EXCEPTION 'video % is being deleted', job.video_id
			USING ERRCODE = 'object_not_in_prerequisite_state';
	END IF;
	SELECT * INTO job FROM vproxy.processing_jobs j WHERE j.id = vproxy_retry.job_id FOR UPDATE;
	IF job.status NOT IN ('failed', 'cancelled') OR job.video_id IS NULL
		OR EXISTS (SELECT FROM vproxy.processing_jobs o
				   WHERE o.video_id = job.video_id AND o.job_type = job.job_type
					 AND o.params = job.params AND o.id <> job.id
					 AND o.status IN ('pending', 'running') AND o.parent_job_id IS NULL) THEN
		RETURN false;
	END IF;
	-- a cancelled attempt's lease lingers on: the retry waits for it
	UPDATE vproxy.processing_jobs j
	   SET status = 'pending', run_at = greatest(now(), j.lease_expires_at),
		   max_attempts = j.attempts + current_setting('vproxy.max_attempts')::int,
		   error_code = NULL, error_message = NULL, completed_at = NULL, result_data = NULL,
		   progress = 0, lease_token = NULL
	 WHERE j.id = job.id;
	IF job.job_type = 'proxy_generation' THEN
		UPDATE vproxy.videos v
		   SET processing_status = 'processing', processing_error = NULL
		 WHERE v.id = job.video_id;
	END IF;
	PERFORM vproxy_internal.wake_workers_at_commit(NULL);
	RETURN true;
END
$$;

-- A presigned GET URL of a video's proxy, thumbnail or original; NULL while
-- that file is still to be made.  Only a safe key below the video's
-- tenant's prefixes is signed.
CREATE FUNCTION vproxy_internal.vproxy_url(video_id uuid, kind text, expires_in interval) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	video vproxy.videos;
	key text;
	seconds constant int := vproxy_internal.expiry_seconds(expires_in);
BEGIN
	IF vproxy_url.video_id IS NULL THEN
		RAISE EXCEPTION 'video_id must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF kind IS NULL OR kind NOT IN ('proxy', 'thumbnail', 'original') THEN
		RAISE EXCEPTION 'unknown kind "%"', kind
			USING ERRCODE = 'invalid_parameter_value',
			HINT = 'Kinds: proxy, thumbnail, original.';
	END IF;
	SELECT * INTO video FROM vproxy.videos v WHERE v.id = vproxy_url.video_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'video % does not exist', vproxy_url.video_id USING ERRCODE = 'no_data_found';
	END IF;
	key := CASE kind WHEN 'proxy' THEN video.proxy_path WHEN 'thumbnail' THEN video.thumbnail_path
					 ELSE video.original_path END;
	IF key IS NULL THEN
		RETURN NULL;
	END IF;
	PERFORM vproxy_internal.check_signable(key, video);
	RETURN vproxy_internal.presign('GET', key, seconds);
END
$$;

-- A presigned PUT URL for a video's original_path: the client uploads
-- straight to the storage, then the application enqueues.
CREATE FUNCTION vproxy_internal.vproxy_upload_url(video_id uuid, expires_in interval) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	video vproxy.videos;
	seconds constant int := vproxy_internal.expiry_seconds(expires_in);
BEGIN
	IF vproxy_upload_url.video_id IS NULL THEN
		RAISE EXCEPTION 'video_id must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	SELECT * INTO video FROM vproxy.videos v WHERE v.id = vproxy_upload_url.video_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'video % does not exist', vproxy_upload_url.video_id
			USING ERRCODE = 'no_data_found';
	END IF;
	IF video.processing_status = 'deleting' THEN
		RAISE EXCEPTION 'video % is being deleted', video.id
			USING ERRCODE = 'object_not_in_prerequisite_state';
	END IF;
	PERFORM vproxy_internal.check_signable(video.original_path, video);
	RETURN vproxy_internal.presign('PUT', video.original_path, seconds);
END
$$;

-- Refuse to sign a key the key rule refuses (22023) or one outside the
-- video's tenant's prefixes (42501).
CREATE FUNCTION vproxy_internal.check_signable(key text, video vproxy.videos) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	problem constant text := vproxy_internal.key_problem(key, false);
BEGIN
	IF problem IS NOT NULL THEN
		RAISE EXCEPTION 'storage key "%" of video % %', key, video.id, problem
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF vproxy_internal.tenant_key_problem(key, video) IS NOT NULL THEN
		RAISE EXCEPTION 'storage key "%" of video % %', key, video.id,
			vproxy_internal.tenant_key_problem(key, video)
			USING ERRCODE = 'insufficient_privilege',
			HINT = 'Only keys below the tenant''s prefixes are signed (vproxy.upload_prefix_template and the key templates).';
	END IF;
END
$$;

-- Delete a video with its files: stop its queued and running jobs, mark it
-- "deleting" and queue the video_deletion job that removes the original,
-- the proxy and the thumbnail from storage, then the row.  The job runs
-- once no other job of the video runs (a job stopped here counts until its
-- lease expires: its child may still be stopping).  Calling it again for a
-- video being deleted returns the deletion job in progress, or queues a new
-- one after a failed deletion.
CREATE FUNCTION vproxy_internal.vproxy_delete_video(video_id uuid) RETURNS uuid
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	the_video_id constant uuid := video_id;
	job vproxy.processing_jobs;
	deletion_id uuid;
BEGIN
	IF the_video_id IS NULL THEN
		RAISE EXCEPTION 'video_id must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	-- FOR UPDATE: an enqueue in progress (key share) finishes first, a
	-- later one waits and then sees "deleting"
	PERFORM FROM vproxy.videos v WHERE v.id = the_video_id FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'video % does not exist', the_video_id USING ERRCODE = 'no_data_found';
	END IF;
	SELECT j.id INTO deletion_id FROM vproxy.processing_jobs j
	 WHERE j.video_id = the_video_id AND j.job_type = 'video_deletion'
	   AND j.status IN ('pending', 'running');
	IF FOUND THEN
		RETURN deletion_id;
	END IF;

	-- a running job's lease lingers: the deletion waits for it
	FOR job IN SELECT * FROM vproxy_internal.cancel_jobs(NULL, the_video_id,
														 'cancelled by vproxy_delete_video()')
	LOOP
		PERFORM vproxy_internal.notify_job_end(job);
		IF job.lease_expires_at IS NOT NULL THEN
			PERFORM vproxy_internal.wake_workers_at_commit(job.id);
		END IF;
	END LOOP;

	UPDATE vproxy.videos v
	   SET processing_status = 'deleting', processing_error = NULL
	 WHERE v.id = the_video_id;
	INSERT INTO vproxy.processing_jobs (video_id, job_type, max_attempts)
	VALUES (the_video_id, 'video_deletion', current_setting('vproxy.max_attempts')::int)
	RETURNING id INTO deletion_id;
	PERFORM vproxy_internal.wake_workers_at_commit(NULL);
	RETURN deletion_id;
END
$$;

-- Make the video's proxy and thumbnail again with new parameters: a new
-- proxy job (it waits for any running job of the video).  The stored
-- proxy, thumbnail and metadata stay those of the previous run until it
-- succeeds.
CREATE FUNCTION vproxy_internal.vproxy_reprocess(video_id uuid, params jsonb) RETURNS uuid
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
	SELECT vproxy_internal.vproxy_enqueue(video_id, 'proxy_generation', 5, coalesce(params, '{}'));
$$;

CREATE FUNCTION vproxy.vproxy_enqueue(video_id uuid, job_type text DEFAULT 'proxy_generation',
	priority int DEFAULT 5, params jsonb DEFAULT '{}') RETURNS uuid
	AS 'MODULE_PATHNAME', 'vproxy_gate' LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp;
CREATE FUNCTION vproxy.vproxy_cancel(job_id uuid) RETURNS boolean
	AS 'MODULE_PATHNAME', 'vproxy_gate' LANGUAGE C STRICT VOLATILE SET search_path = pg_catalog, pg_temp;
CREATE FUNCTION vproxy.vproxy_retry(job_id uuid) RETURNS boolean
	AS 'MODULE_PATHNAME', 'vproxy_gate' LANGUAGE C STRICT VOLATILE SET search_path = pg_catalog, pg_temp;
CREATE FUNCTION vproxy.vproxy_url(video_id uuid, kind text DEFAULT 'proxy',
	expires_in interval DEFAULT '1 hour') RETURNS text
	AS 'MODULE_PATHNAME', 'vproxy_gate' LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp;
CREATE FUNCTION vproxy.vproxy_upload_url(video_id uuid, expires_in interval DEFAULT '1 hour')
	RETURNS text
	AS 'MODULE_PATHNAME', 'vproxy_gate' LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp;
CREATE FUNCTION vproxy.vproxy_delete_video(video_id uuid) RETURNS uuid
	AS 'MODULE_PATHNAME', 'vproxy_gate' LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp;
CREATE FUNCTION vproxy.vproxy_reprocess(video_id uuid, params jsonb DEFAULT '{}') RETURNS uuid
	AS 'MODULE_PATHNAME', 'vproxy_gate' LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp;

-- Where a job stands: the shape of the old GET /jobs/{id}/status; NULL if
-- the caller cannot see the job (or its video) or there is none.
CREATE FUNCTION vproxy.vproxy_job_status(job_id uuid) RETURNS jsonb
LANGUAGE sql STABLE STRICT SET search_path = pg_catalog, pg_temp AS $$
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
		'error_code', j.error_code,
		'attempt_errors', j.attempt_errors,
		'result_data', j.result_data)
	  FROM vproxy.processing_jobs j
	 WHERE j.id = job_id
	   AND (j.video_id IS NULL OR EXISTS (SELECT FROM vproxy.videos v WHERE v.id = j.video_id));
$$;

-- Delete many videos at once (in id order, so that two batches cannot
-- deadlock): each video and its deletion job.
CREATE FUNCTION vproxy.vproxy_delete_videos(video_ids uuid[])
	RETURNS TABLE (video_id uuid, job_id uuid)
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
	SELECT ids.id, vproxy.vproxy_delete_video(ids.id)
	  FROM (SELECT DISTINCT unnest(video_ids) AS id ORDER BY 1) ids;
$$;

-- ---------------------------------------------------------------------------
-- Retention
-- ---------------------------------------------------------------------------

-- Remove up to batch ended jobs (NULL: all) past their retention (NULL:
-- kept for ever), oldest first, and return how many.  The newest job of a
-- video that exists is kept whatever its age: it is the record of how the
-- video got its proxy, thumbnail and metadata (or why it failed).  A job
-- whose lease still runs (a cancelled attempt's child may be stopping) is
-- kept until it expires; segments go with their parent, which is kept while
-- a unit of it is queued or running or its temporary objects are still to
-- be removed (split_sweep, run first, sees to those).  No row is locked
-- before its removal (that would write it twice): a prune that meets a row
-- another prune removes waits for it, then passes it over.
CREATE FUNCTION vproxy_internal.prune_batch(job_retention interval, failed_job_retention interval,
	batch int) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	removed bigint;
BEGIN
	PERFORM vproxy_internal.split_sweep();
	IF batch IS NULL THEN
		WITH keep AS (
			SELECT DISTINCT ON (n.video_id) n.id
			  FROM vproxy.processing_jobs n
			 WHERE n.parent_job_id IS NULL
			   AND EXISTS (SELECT FROM vproxy.videos v WHERE v.id = n.video_id)
			 ORDER BY n.video_id, n.created_at DESC, n.id DESC),
		gone AS (
			DELETE FROM vproxy.processing_jobs j
			 WHERE ((j.status IN ('completed', 'cancelled') AND j.completed_at < now() - job_retention)
					OR (j.status = 'failed' AND j.completed_at < now() - failed_job_retention))
			   AND j.parent_job_id IS NULL
			   AND (j.lease_expires_at IS NULL OR j.lease_expires_at <= now())
			   AND NOT EXISTS (SELECT FROM keep k WHERE k.id = j.id)
			   AND NOT vproxy_internal.split_keeps(j)
			RETURNING 1)
		SELECT count(*) INTO removed FROM gone;
		RETURN removed;
	END IF;
	WITH doomed AS (
		SELECT j.id
		  FROM vproxy.processing_jobs j
		 WHERE ((j.status IN ('completed', 'cancelled') AND j.completed_at < now() - job_retention)
				OR (j.status = 'failed' AND j.completed_at < now() - failed_job_retention))
		   AND j.parent_job_id IS NULL
		   AND (j.lease_expires_at IS NULL OR j.lease_expires_at <= now())
		   AND NOT vproxy_internal.split_keeps(j)
		   AND (NOT EXISTS (SELECT FROM vproxy.videos v WHERE v.id = j.video_id)
				OR EXISTS (SELECT FROM vproxy.processing_jobs n
						   WHERE n.video_id = j.video_id AND n.parent_job_id IS NULL
							 AND (n.created_at, n.id) > (j.created_at, j.id)))
		 ORDER BY j.completed_at
		 LIMIT batch),
	gone AS (
		DELETE FROM vproxy.processing_jobs j USING doomed d WHERE j.id = d.id RETURNING 1)
	SELECT count(*) INTO removed FROM gone;
	RETURN removed;
END
$$;

-- A retention setting as an interval; NULL when it keeps jobs for ever (0).
CREATE FUNCTION vproxy_internal.retention_setting(name text) RETURNS interval
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT nullif(current_setting(name)::interval, interval '0');
$$;

-- Remove ended jobs past their retention now: vproxy.job_retention for
-- completed and cancelled jobs, vproxy.failed_job_retention for failed ones,
-- or older_than for both, in one statement.  The number removed.
CREATE FUNCTION vproxy.vproxy_prune(older_than interval DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	ended_after constant interval := coalesce(older_than,
		vproxy_internal.retention_setting('vproxy.job_retention'));
	failed_after constant interval := coalesce(older_than,
		vproxy_internal.retention_setting('vproxy.failed_job_retention'));
BEGIN
	IF older_than < interval '0' THEN
		RAISE EXCEPTION 'older_than must not be negative, not %', older_than
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	-- all at once: batches inside one transaction would each scan again
	-- the index entries of the rows the batches before them removed
	RETURN vproxy_internal.prune_batch(ended_after, failed_after, NULL);
END
$$;

-- ---------------------------------------------------------------------------
-- The worker API: claim, heartbeat, finish, fail, hand back.  SECURITY
-- DEFINER, so that a worker role needs EXECUTE on these and nothing else;
-- every write after the claim presents the claim's lease token.
-- ---------------------------------------------------------------------------

-- Take the most urgent runnable job of the given types (NULL: all) under a
-- new lease of vproxy.lease_duration, and return the spec its child reads
-- (but the worker's local part), the lease and the job timeout.  One
-- writer per video: a job is passed over while another job that writes the
-- same video's objects runs, and two claims cannot take two jobs of one
-- video (each locks the video row, SKIP LOCKED, and looks again once it
-- holds it).  A job whose video row someone else has locked is passed over
-- too, never waited for.  An attempt whose worker vanished (its lease
-- expired) is recorded as worker_lost; after the last one the job fails.
-- A worker that takes proxy_generation jobs takes the units of split
-- proxies (proxy_segment) too.
CREATE FUNCTION vproxy.claim_job(holder text, job_types text[] DEFAULT NULL,
	OUT job_id uuid, OUT video_id uuid, OUT job_type text, OUT attempt int,
	OUT lease_token uuid, OUT lease_seconds double precision,
	OUT timeout_seconds double precision, OUT spec jsonb)
RETURNS SETOF record
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	job vproxy.processing_jobs;
	video vproxy.videos;
	passed uuid[] := '{}';
	lost text;
	problem text;
	lease constant double precision := vproxy_internal.setting_seconds('vproxy.lease_duration');
BEGIN
	PERFORM vproxy_internal.check_job_types(claim_job.job_types);
	LOOP
		SELECT * INTO job
		  FROM vproxy.processing_jobs j
		 WHERE j.status IN ('pending', 'running')
		   AND ((j.status = 'pending' AND j.run_at <= now())
				OR (j.status = 'running' AND j.lease_expires_at <= now()))
		   AND (claim_job.job_types IS NULL OR j.job_type = ANY (claim_job.job_types)
				OR (j.job_type = 'proxy_segment' AND 'proxy_generation' = ANY (claim_job.job_types)))
		   AND j.id <> ALL (passed)
		   AND NOT vproxy_internal.video_busy_for(j)
		 ORDER BY j.priority, j.run_at, j.created_at
		 LIMIT 1
		   FOR UPDATE OF j SKIP LOCKED;
		IF NOT FOUND THEN
			RETURN;
		END IF;
		-- the video row serializes the claims of its jobs; locked by
		-- another claim or by the application: pass over, do not wait
		SELECT * INTO video FROM vproxy.videos v WHERE v.id = job.video_id
		   FOR UPDATE SKIP LOCKED;
		-- a new statement, a new snapshot: a claim of the same video that
		-- committed while this one looked is visible now
		IF NOT FOUND OR vproxy_internal.video_busy_for(job) THEN
			passed := passed || job.id;
			CONTINUE;
		END IF;
		IF job.status = 'running' THEN
			lost := format('attempt %s of %s was abandoned (lease expired)', job.attempts, job.max_attempts);
			IF job.attempts >= job.max_attempts THEN
				-- a unit fails its parent, to be locked first: never waited for here
				IF job.parent_job_id IS NOT NULL THEN
					PERFORM FROM vproxy.processing_jobs p WHERE p.id = job.parent_job_id
					   FOR UPDATE SKIP LOCKED;
					IF NOT FOUND THEN
						passed := passed || job.id;
						CONTINUE;
					END IF;
				END IF;
				-- the worker of its last attempt vanished: nothing is left to try
				PERFORM vproxy_internal.fail_for_good(job.id, 'worker_lost', lost);
				CONTINUE;
			END IF;
			UPDATE vproxy.processing_jobs j
			   SET error_code = 'worker_lost', error_message = lost,
				   attempt_errors = j.attempt_errors || vproxy_internal.attempt_error(j, 'worker_lost', lost)
			 WHERE j.id = job.id;
		END IF;
		UPDATE vproxy.processing_jobs j
		   SET status = 'running', attempts = j.attempts + 1, started_at = now(),
			   progress = 0, lease_token = gen_random_uuid(),
			   lease_expires_at = now() + make_interval(secs => lease),
			   lease_holder = claim_job.holder,
			   planned_outputs = vproxy_internal.planned_outputs(j, video)
		 WHERE j.id = job.id
		RETURNING * INTO job;
		problem := vproxy_internal.plan_problem(job, video);
		EXIT WHEN problem IS NULL;
		-- keys the child would refuse: fail now, not in the child
		PERFORM vproxy_internal.fail_for_good(job.id, 'storage_refused', 'unsafe key: ' || problem);
	END LOOP;

	job_id := job.id;
	video_id := job.video_id;
	job_type := job.job_type;
	attempt := job.attempts;
	lease_token := job.lease_token;
	lease_seconds := lease;
	timeout_seconds := vproxy_internal.setting_seconds('vproxy.job_timeout');
	spec := vproxy_internal.job_spec(job, video);
	RETURN NEXT;
END
$$;

-- When a claim of the given types (NULL: all) could next find work: the
-- earliest delayed retry or lease expiry (a lingering lease included); NULL
-- when nothing is queued, running or lingering.  A queued job that waits
-- for another job of its video counts from that job's lease expiry (and
-- the end of that job frees its worker, which claims again at once).
CREATE FUNCTION vproxy.next_claim_at(job_types text[] DEFAULT NULL) RETURNS timestamptz
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
	SELECT min(t) FROM (
		SELECT j.run_at
		  FROM vproxy.processing_jobs j
		 WHERE j.status = 'pending'
		   AND (next_claim_at.job_types IS NULL OR j.job_type = ANY (next_claim_at.job_types)
				OR (j.job_type = 'proxy_segment' AND 'proxy_generation' = ANY (next_claim_at.job_types)))
		   AND NOT (j.run_at <= now() AND vproxy_internal.video_busy_for(j))
		UNION ALL
		SELECT j.lease_expires_at
		  FROM vproxy.processing_jobs j
		 WHERE j.status = 'running'
		UNION ALL
		SELECT j.lease_expires_at
		  FROM vproxy.processing_jobs j
		 WHERE j.status <> 'running' AND j.lease_expires_at IS NOT NULL
		   AND j.lease_expires_at > now()) AS due(t);
$$;

-- Extend the lease by vproxy.lease_duration from now and record progress
-- (never lowered); the lease granted in seconds, NULL when it is lost
-- (cancelled, or taken over after expiry): the worker must stop.  A unit's
-- progress moves its split proxy's, unless another writer holds the parent
-- (never waited for: writers lock the parent first).
CREATE FUNCTION vproxy.heartbeat_job(job_id uuid, lease_token uuid, progress real)
	RETURNS double precision
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
	UPDATE vproxy.processing_jobs j
	   SET lease_expires_at = now() + make_interval(secs => vproxy_internal.setting_seconds('vproxy.lease_duration')),
		   progress = greatest(j.progress, least(greatest(heartbeat_job.progress, 0), 1))
	 WHERE j.id = heartbeat_job.job_id AND j.lease_token = heartbeat_job.lease_token
	   AND j.status = 'running';
	UPDATE vproxy.processing_jobs p
	   SET progress = greatest(p.progress, vproxy_internal.split_progress(p))
	 WHERE p.id IN (SELECT q.id FROM vproxy.processing_jobs q
					 WHERE q.id = (SELECT j.parent_job_id FROM vproxy.processing_jobs j
								   WHERE j.id = heartbeat_job.job_id AND j.lease_token = heartbeat_job.lease_token
									 AND j.status = 'running')
					   AND q.status = 'running'
					   FOR UPDATE SKIP LOCKED);
	SELECT vproxy_internal.setting_seconds('vproxy.lease_duration')
	 WHERE EXISTS (SELECT FROM vproxy.processing_jobs j
				   WHERE j.id = heartbeat_job.job_id AND j.lease_token = heartbeat_job.lease_token
					 AND j.status = 'running');
$$;

-- Record a successful attempt: the job, its video and the NOTIFY in one
-- transaction.  False (and nothing written) when the lease was lost; an
-- error when the result names other keys than the claim planned.  A proxy
-- job's plan ("status": "split") queues its units instead (it goes on
-- running); a unit's success may queue the stitch or complete the parent.
CREATE FUNCTION vproxy.finish_job(job_id uuid, lease_token uuid, result jsonb) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	job vproxy.processing_jobs;
BEGIN
	-- a unit's parent first, as every writer of both locks them
	PERFORM FROM vproxy.processing_jobs p
	 WHERE p.id = (SELECT j.parent_job_id FROM vproxy.processing_jobs j WHERE j.id = finish_job.job_id)
	   FOR UPDATE;
	SELECT * INTO job FROM vproxy.processing_jobs j
	 WHERE j.id = finish_job.job_id AND j.lease_token = finish_job.lease_token
	   AND j.status = 'running'
	   FOR UPDATE;
	IF NOT FOUND THEN
		RETURN false;
	END IF;
	IF job.job_type = 'proxy_generation' AND result ->> 'status' = 'split' THEN
		PERFORM vproxy_internal.split_start(job, result);
		RETURN true;
	END IF;
	PERFORM vproxy_internal.check_result_keys(job, result);
	UPDATE vproxy.processing_jobs j
	   SET status = 'completed', completed_at = now(), progress = 1,
		   result_data = vproxy_internal.recorded_result(j, result),
		   error_code = NULL, error_message = NULL,
		   lease_token = NULL, lease_expires_at = NULL, lease_holder = NULL
	 WHERE j.id = job.id
	RETURNING * INTO job;
	IF job.parent_job_id IS NOT NULL THEN
		PERFORM vproxy_internal.split_unit_finished(job, result);
		RETURN true;
	END IF;
	PERFORM vproxy_internal.record_result(job, result);
	PERFORM vproxy_internal.notify_job_end(job);
	RETURN true;
END
$$;

-- Record a failed attempt with its error code (the closed set of
-- error_codes(); NULL is internal) and message: queued again after a
-- backoff with jitter when retryable and attempts remain, else failed for
-- good.  The delay, vproxy.retry_delay at first, doubles at each attempt up
-- to a day (or the first delay, if longer).  The new status, NULL when the
-- lease was lost.
CREATE FUNCTION vproxy.fail_job(job_id uuid, lease_token uuid, error_code text, error text,
	retryable boolean) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	job vproxy.processing_jobs;
	code constant text := coalesce(fail_job.error_code, 'internal');
	message constant text := coalesce(fail_job.error, 'unknown error');
	delay constant double precision := vproxy_internal.setting_seconds('vproxy.retry_delay');
BEGIN
	IF NOT code = ANY (vproxy_internal.error_codes()) THEN
		RAISE EXCEPTION 'unknown error code "%"', code
			USING ERRCODE = 'invalid_parameter_value',
			HINT = 'Error codes: ' || array_to_string(vproxy_internal.error_codes(), ', ') || '.';
	END IF;
	-- a unit's parent first, as every writer of both locks them
	PERFORM FROM vproxy.processing_jobs p
	 WHERE p.id = (SELECT j.parent_job_id FROM vproxy.processing_jobs j WHERE j.id = fail_job.job_id)
	   FOR UPDATE;
	SELECT * INTO job FROM vproxy.processing_jobs j
	 WHERE j.id = fail_job.job_id AND j.lease_token = fail_job.lease_token
	   AND j.status = 'running'
	   FOR UPDATE;
	IF NOT FOUND THEN
		RETURN NULL;
	END IF;
	IF retryable AND job.attempts < job.max_attempts THEN
		UPDATE vproxy.processing_jobs j
		   SET status = 'pending', error_code = code, error_message = message, progress = 0,
			   attempt_errors = j.attempt_errors || vproxy_internal.attempt_error(j, code, message),
			   run_at = now() + make_interval(secs =>
				   least(delay * power(2, least(job.attempts - 1, 30)), greatest(delay, 86400))
				   * (1 + 0.25 * random())),
			   lease_token = NULL, lease_expires_at = NULL, lease_holder = NULL
		 WHERE j.id = job.id;
		PERFORM vproxy_internal.wake_workers_at_commit(NULL);
		RETURN 'pending';
	END IF;
	PERFORM vproxy_internal.fail_for_good(job.id, code, message);
	RETURN 'failed';
END
$$;

-- Hand a job back without spending an attempt (the worker is stopping).
CREATE FUNCTION vproxy.release_job(job_id uuid, lease_token uuid) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	UPDATE vproxy.processing_jobs j
	   SET status = 'pending', attempts = greatest(j.attempts - 1, 0), progress = 0,
		   run_at = now(), lease_token = NULL, lease_expires_at = NULL, lease_holder = NULL
	 WHERE j.id = release_job.job_id AND j.lease_token = release_job.lease_token
	   AND j.status = 'running';
	IF NOT FOUND THEN
		RETURN false;
	END IF;
	PERFORM vproxy_internal.wake_workers_at_commit(NULL);
	RETURN true;
END
$$;

-- An external worker says it is alive (and what it is); returns
-- {"extension_version", "lease_seconds"}.  Unknown job types are refused.
CREATE FUNCTION vproxy.worker_checkin(holder text, name text, host text, pid int, concurrency int,
	job_types text[] DEFAULT NULL) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	PERFORM vproxy_internal.check_job_types(worker_checkin.job_types);
	INSERT INTO vproxy.external_workers AS w (holder, name, host, pid, concurrency, job_types)
	VALUES (worker_checkin.holder, worker_checkin.name, worker_checkin.host, worker_checkin.pid,
			worker_checkin.concurrency, worker_checkin.job_types)
	ON CONFLICT ON CONSTRAINT external_workers_pkey
	DO UPDATE SET last_seen = now();
	-- rows of workers that vanished long ago (kill -9, a lost machine)
	DELETE FROM vproxy.external_workers w WHERE w.last_seen < now() - interval '1 day';
	RETURN jsonb_build_object(
		'extension_version', (SELECT e.extversion FROM pg_extension e WHERE e.extname = 'vproxy'),
		'lease_seconds', vproxy_internal.setting_seconds('vproxy.lease_duration'));
END
$$;

-- An external worker leaves.
CREATE FUNCTION vproxy.worker_checkout(holder text) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
	DELETE FROM vproxy.external_workers w WHERE w.holder = worker_checkout.holder;
$$;

-- Expire at once the leases held by in-server workers of an earlier life of
-- this server (before a crash or an immediate shutdown): they are gone.
-- holder_prefix names this server, current_life_prefix this life of it.
CREATE FUNCTION vproxy_internal.expire_leases_of_earlier_lives(holder_prefix text,
	current_life_prefix text) RETURNS int
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
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
-- Monitoring
-- ---------------------------------------------------------------------------

-- The in-server workers as shared memory shows them.
CREATE FUNCTION vproxy.worker_activity(
	OUT worker int, OUT pid int, OUT state text, OUT job_id uuid, OUT video_id uuid,
	OUT job_type text, OUT attempt int, OUT progress real, OUT stage text,
	OUT state_since timestamptz, OUT job_started_at timestamptz)
	RETURNS SETOF record
	AS 'MODULE_PATHNAME', 'vproxy_worker_activity'
	LANGUAGE C STRICT VOLATILE SET search_path = pg_catalog, pg_temp;

-- The views run as their reader (security_invoker): its privileges and
-- row-level security apply to the tables they read, as they would to its
-- own query.
--
-- The workers, in the server and outside it, side by side.  In-server
-- workers have their slot number in "worker" and no host (they run on the
-- database server); external ones their name and host, and drop out when
-- they have not checked in for a lease.
CREATE VIEW vproxy.workers WITH (security_invoker = true) AS
	SELECT a.worker, a.pid, a.state, a.job_id, a.video_id, a.job_type, a.attempt,
		   a.progress, a.stage, a.state_since, a.job_started_at, v.filename,
		   'in-server'::text AS kind, format('vproxy worker %s', a.worker) AS name,
		   NULL::text AS host,
		   j.lease_expires_at - make_interval(secs => s.lease_seconds) AS last_heartbeat,
		   j.parent_job_id
	  FROM vproxy.worker_activity() a
	  LEFT JOIN vproxy.videos v ON v.id = a.video_id
	  LEFT JOIN vproxy.processing_jobs j ON j.id = a.job_id AND j.status = 'running'
	 CROSS JOIN (SELECT p.setting::double precision AS lease_seconds FROM pg_settings p
				  WHERE p.name = 'vproxy.lease_duration') s
	UNION ALL
	SELECT NULL, w.pid, CASE WHEN j.id IS NULL THEN 'idle' ELSE 'running' END,
		   j.id, j.video_id, j.job_type, j.attempts, j.progress, NULL,
		   CASE WHEN j.id IS NULL THEN w.started_at ELSE j.started_at END, j.started_at,
		   v.filename, 'external', w.name, w.host,
		   coalesce(j.lease_expires_at - make_interval(secs => s.lease_seconds), w.last_seen),
		   j.parent_job_id
	  FROM vproxy.external_workers w
	 CROSS JOIN (SELECT p.setting::double precision AS lease_seconds FROM pg_settings p
				  WHERE p.name = 'vproxy.lease_duration') s
	  LEFT JOIN vproxy.processing_jobs j ON j.status = 'running' AND j.lease_holder = w.holder
	  LEFT JOIN vproxy.videos v ON v.id = j.video_id
	 WHERE w.last_seen > now() - make_interval(secs => s.lease_seconds);

-- split proxies, one row per run of a parent, with the state of its units
-- (the segments, the audio, the stitch, the removal of the temporary
-- objects)
CREATE VIEW vproxy.split_jobs WITH (security_invoker = true) AS
	SELECT p.id AS job_id, p.video_id, v.filename, p.status, p.progress, p.started_at, p.completed_at,
		   u.params ->> 'prefix' AS temporary_prefix,
		   count(*) FILTER (WHERE u.params ->> 'unit' = 'video') AS segments,
		   count(*) FILTER (WHERE u.params ->> 'unit' = 'video' AND u.status = 'completed') AS segments_done,
		   count(*) FILTER (WHERE u.params ->> 'unit' = 'video' AND u.status = 'running') AS segments_running,
		   count(*) FILTER (WHERE u.params ->> 'unit' = 'video' AND u.status = 'pending') AS segments_pending,
		   count(*) FILTER (WHERE u.params ->> 'unit' = 'video' AND u.status IN ('failed', 'cancelled'))
			   AS segments_ended_otherwise,
		   max(u.status) FILTER (WHERE u.params ->> 'unit' = 'audio') AS audio_status,
		   max(u.status) FILTER (WHERE u.params ->> 'unit' = 'stitch') AS stitch_status,
		   (array_agg(u.status ORDER BY u.created_at DESC) FILTER (WHERE u.params ->> 'unit' = 'cleanup'))[1]
			   AS cleanup_status,
		   sum(u.attempts) AS unit_attempts
	  FROM vproxy.processing_jobs p
	  JOIN vproxy.processing_jobs u ON u.parent_job_id = p.id
	  LEFT JOIN vproxy.videos v ON v.id = p.video_id
	 GROUP BY p.id, v.filename, u.params ->> 'prefix';

-- per job type and status: how many, and how long the ended ones took
CREATE VIEW vproxy.job_statistics WITH (security_invoker = true) AS
	SELECT j.job_type, j.status, count(*) AS jobs,
		   avg(extract(epoch FROM j.completed_at - j.started_at))
			   FILTER (WHERE j.completed_at IS NOT NULL AND j.started_at IS NOT NULL)
			   ::double precision AS avg_duration_seconds,
		   max(extract(epoch FROM j.completed_at - j.started_at))
			   FILTER (WHERE j.completed_at IS NOT NULL AND j.started_at IS NOT NULL)
			   ::double precision AS max_duration_seconds,
		   avg(j.attempts)::double precision AS avg_attempts,
		   min(j.created_at) AS oldest_created_at
	  FROM vproxy.processing_jobs j
	 GROUP BY j.job_type, j.status;

-- failed jobs, newest first, with the video and the reason
CREATE VIEW vproxy.recent_failures WITH (security_invoker = true) AS
	SELECT j.id AS job_id, j.video_id, v.filename, v.mall_id, j.job_type, j.attempts,
		   j.error_message, v.processing_error, j.started_at, j.completed_at, j.error_code
	  FROM vproxy.processing_jobs j
	  JOIN vproxy.videos v ON v.id = j.video_id
	 WHERE j.status = 'failed'
	 ORDER BY j.completed_at DESC;

-- completed jobs that took over two minutes, slowest first, with how long
-- the video plays
CREATE VIEW vproxy.slow_jobs WITH (security_invoker = true) AS
	SELECT j.id AS job_id, j.video_id, v.filename, j.job_type,
		   extract(epoch FROM j.completed_at - j.started_at)::double precision AS duration_seconds,
		   (j.result_data #>> '{metadata,original,duration_seconds}')::double precision
			   AS video_duration_seconds
	  FROM vproxy.processing_jobs j
	  JOIN vproxy.videos v ON v.id = j.video_id
	 WHERE j.status = 'completed' AND j.completed_at - j.started_at > interval '2 minutes'
	 ORDER BY j.completed_at - j.started_at DESC;

-- ---------------------------------------------------------------------------
-- Triggers
-- ---------------------------------------------------------------------------

CREATE TRIGGER videos_updated_at BEFORE UPDATE ON vproxy.videos
	FOR EACH ROW EXECUTE FUNCTION vproxy_internal.touch_updated_at();
CREATE TRIGGER videos_blank_checksum BEFORE INSERT OR UPDATE OF checksum_sha256 ON vproxy.videos
	FOR EACH ROW WHEN (NEW.checksum_sha256 = '') EXECUTE FUNCTION vproxy_internal.blank_checksum_is_unknown();
CREATE TRIGGER videos_keep_deleting BEFORE UPDATE OF processing_status ON vproxy.videos
	FOR EACH ROW WHEN (OLD.processing_status = 'deleting'
					   AND NEW.processing_status IS DISTINCT FROM 'deleting')
	EXECUTE FUNCTION vproxy_internal.keep_deleting();
CREATE TRIGGER videos_check_keys
	BEFORE INSERT OR UPDATE OF original_path, proxy_path, thumbnail_path, mall_id, pin_id ON vproxy.videos
	FOR EACH ROW EXECUTE FUNCTION vproxy_internal.check_video_keys();
CREATE TRIGGER processing_jobs_refuse_deleting BEFORE INSERT ON vproxy.processing_jobs
	FOR EACH ROW WHEN (NEW.job_type <> 'video_deletion')
	EXECUTE FUNCTION vproxy_internal.refuse_jobs_of_deleting_video();
CREATE TRIGGER processing_jobs_end_deletion AFTER UPDATE OF status ON vproxy.processing_jobs
	FOR EACH ROW WHEN (NEW.job_type = 'video_deletion' AND OLD.status = 'running'
					   AND NEW.status IN ('completed', 'failed') AND OLD.video_id IS NOT NULL)
	EXECUTE FUNCTION vproxy_internal.end_deletion();

-- ---------------------------------------------------------------------------
-- Comments
-- ---------------------------------------------------------------------------

COMMENT ON TABLE vproxy.videos IS
	'one row per uploaded video: the application writes the upload''s key and names, vproxy the metadata, proxy and thumbnail';
COMMENT ON COLUMN vproxy.videos.id IS 'the video''s id';
COMMENT ON COLUMN vproxy.videos.mall_id IS
	'the tenant (a safe name: it becomes part of storage keys through {mall_id})';
COMMENT ON COLUMN vproxy.videos.pin_id IS 'a second name of the application''s (a safe name, or NULL)';
COMMENT ON COLUMN vproxy.videos.filename IS 'the upload''s file name, for people';
COMMENT ON COLUMN vproxy.videos.original_path IS
	'the storage key of the upload: a safe relative key starting with vproxy.upload_prefix_template filled in';
COMMENT ON COLUMN vproxy.videos.checksum_sha256 IS
	'the SHA-256 of the upload (64 hex digits), checked by every job; NULL: unknown, filled in by the first job';
COMMENT ON COLUMN vproxy.videos.file_size_bytes IS 'the size of the upload, checked by every job; NULL: unknown';
COMMENT ON COLUMN vproxy.videos.width IS 'the original''s width in pixels, as displayed';
COMMENT ON COLUMN vproxy.videos.height IS 'the original''s height in pixels, as displayed';
COMMENT ON COLUMN vproxy.videos.fps IS 'the original''s frame rate';
COMMENT ON COLUMN vproxy.videos.duration_seconds IS 'how long the original plays';
COMMENT ON COLUMN vproxy.videos.codec IS 'the original''s video codec';
COMMENT ON COLUMN vproxy.videos.bitrate IS 'the original''s bit rate, bits per second';
COMMENT ON COLUMN vproxy.videos.proxy_path IS 'the storage key of the proxy; written by vproxy only';
COMMENT ON COLUMN vproxy.videos.thumbnail_path IS 'the storage key of the thumbnail; written by vproxy only';
COMMENT ON COLUMN vproxy.videos.processing_status IS
	'pending, processing (a proxy job is queued or running), completed, failed, deleting';
COMMENT ON COLUMN vproxy.videos.processing_error IS 'why the last proxy job (or the deletion) failed';
COMMENT ON COLUMN vproxy.videos.processing_completed_at IS 'when the proxy was made';
COMMENT ON COLUMN vproxy.videos.created_at IS 'when the row was inserted';
COMMENT ON COLUMN vproxy.videos.updated_at IS 'when the row was last changed, by anybody';
COMMENT ON CONSTRAINT videos_mall_id_is_a_safe_name ON vproxy.videos IS
	'mall_id becomes part of storage keys: 1 to 128 characters, no /, { or }, no control characters, not . or ..';
COMMENT ON CONSTRAINT videos_pin_id_is_a_safe_name ON vproxy.videos IS
	'pin_id becomes part of storage keys: NULL, or 1 to 128 characters, no /, { or }, no control characters, not . or ..';
COMMENT ON CONSTRAINT videos_checksum_sha256_is_hex ON vproxy.videos IS
	'the SHA-256 of the original: 64 hexadecimal digits, or NULL (unknown: the first job fills it in)';
COMMENT ON CONSTRAINT videos_file_size_bytes_not_negative ON vproxy.videos IS
	'the size of the original in bytes, or NULL (unknown: the first job fills it in)';

COMMENT ON TABLE vproxy.processing_jobs IS
	'the queue: one row per job, written by vproxy''s functions only';
COMMENT ON COLUMN vproxy.processing_jobs.id IS 'the job''s id';
COMMENT ON COLUMN vproxy.processing_jobs.video_id IS
	'the video; NULL only for a completed deletion, whose video is gone';
COMMENT ON COLUMN vproxy.processing_jobs.job_type IS
	'proxy_generation, metadata_extraction, thumbnail_generation, video_deletion, or proxy_segment (a part of a split proxy)';
COMMENT ON COLUMN vproxy.processing_jobs.status IS 'pending, running, completed, failed or cancelled';
COMMENT ON COLUMN vproxy.processing_jobs.priority IS '0 (most urgent) to 9';
COMMENT ON COLUMN vproxy.processing_jobs.params IS 'the job''s parameters (see vproxy_enqueue)';
COMMENT ON COLUMN vproxy.processing_jobs.attempts IS 'attempts started so far (a hand-back on shutdown does not count)';
COMMENT ON COLUMN vproxy.processing_jobs.max_attempts IS 'the attempt after which a failure is final';
COMMENT ON COLUMN vproxy.processing_jobs.run_at IS 'when the job may run (a retry''s backoff)';
COMMENT ON COLUMN vproxy.processing_jobs.started_at IS 'when the latest attempt started';
COMMENT ON COLUMN vproxy.processing_jobs.completed_at IS 'when the job ended';
COMMENT ON COLUMN vproxy.processing_jobs.error_message IS 'why the latest attempt failed, in words';
COMMENT ON COLUMN vproxy.processing_jobs.result_data IS
	'what a completed job made: {"status", "proxy_path", "thumbnail_path", "metadata"} (a deletion: "deleted_keys", "skipped_keys")';
COMMENT ON COLUMN vproxy.processing_jobs.progress IS 'from 0 to 1, of the whole job';
COMMENT ON COLUMN vproxy.processing_jobs.created_at IS 'when the job was queued';
COMMENT ON COLUMN vproxy.processing_jobs.lease_token IS
	'changes at every claim; every write by a worker must present it';
COMMENT ON COLUMN vproxy.processing_jobs.lease_expires_at IS
	'until when a worker (or a dying child of a cancelled attempt) may still write the video''s objects';
COMMENT ON COLUMN vproxy.processing_jobs.lease_holder IS
	'who runs the attempt: "postgres <system id>/<life>/<pid>" for in-server workers, "vproxy-worker <name>@<host>/…" for others';
COMMENT ON COLUMN vproxy.processing_jobs.parent_job_id IS
	'the proxy job a proxy_segment job is part of; NULL for the jobs the application queued';
COMMENT ON COLUMN vproxy.processing_jobs.error_code IS
	'why the latest attempt failed, for programs: bad_media, checksum_mismatch, missing_original, storage_refused, storage_unavailable, no_temp_space, timeout, out_of_memory, crashed, worker_lost, cancelled, internal';
COMMENT ON COLUMN vproxy.processing_jobs.attempt_errors IS
	'one object per failed attempt: {"attempt", "at", "code", "message", "worker"}';
COMMENT ON COLUMN vproxy.processing_jobs.planned_outputs IS
	'internal: the storage keys the claim planned; finish_job records no others';

COMMENT ON TABLE vproxy.external_workers IS
	'the vproxy-workers serving the queue from other machines, as their check-ins say';
COMMENT ON COLUMN vproxy.external_workers.holder IS 'the lease holder of its jobs';
COMMENT ON COLUMN vproxy.external_workers.name IS 'its --name';
COMMENT ON COLUMN vproxy.external_workers.host IS 'the machine it runs on';
COMMENT ON COLUMN vproxy.external_workers.pid IS 'its process id on that machine';
COMMENT ON COLUMN vproxy.external_workers.concurrency IS 'how many jobs it runs at once';
COMMENT ON COLUMN vproxy.external_workers.job_types IS 'the job types it takes; NULL: all';
COMMENT ON COLUMN vproxy.external_workers.started_at IS 'when it first checked in';
COMMENT ON COLUMN vproxy.external_workers.last_seen IS 'its latest check-in';

COMMENT ON VIEW vproxy.workers IS
	'the workers, in-server and external, side by side: state, job, progress, last heartbeat, the split proxy a unit is part of';
COMMENT ON VIEW vproxy.split_jobs IS
	'split proxies: one row per run of a parent job, with the state of its segments, audio, stitch and cleanup';
COMMENT ON VIEW vproxy.job_statistics IS
	'per job type and status: how many jobs, how long the ended ones took, attempts';
COMMENT ON VIEW vproxy.recent_failures IS 'failed jobs, newest first, with the video and the reasons';
COMMENT ON VIEW vproxy.slow_jobs IS 'completed jobs that took over two minutes, slowest first';

COMMENT ON FUNCTION vproxy.vproxy_enqueue(uuid, text, int, jsonb) IS
	'queue a job for a video (or return the same job already queued or running); the commit wakes a worker';
COMMENT ON FUNCTION vproxy.vproxy_job_status(uuid) IS
	'where a job stands, as JSON; NULL for a job the caller cannot see';
COMMENT ON FUNCTION vproxy.vproxy_cancel(uuid) IS
	'cancel a queued or running job: true if this call cancelled it, false if it had ended';
COMMENT ON FUNCTION vproxy.vproxy_retry(uuid) IS
	'put a failed or cancelled job back in the queue with a fresh attempt budget: true if it did';
COMMENT ON FUNCTION vproxy.vproxy_url(uuid, text, interval) IS
	'a presigned GET URL (or file:// path) of a video''s proxy, thumbnail or original; NULL while it is to be made';
COMMENT ON FUNCTION vproxy.vproxy_upload_url(uuid, interval) IS
	'a presigned PUT URL (or file:// path) for a video''s original_path';
COMMENT ON FUNCTION vproxy.vproxy_delete_video(uuid) IS
	'delete a video with its stored objects: the id of the video_deletion job that removes them, then the row';
COMMENT ON FUNCTION vproxy.vproxy_delete_videos(uuid[]) IS
	'vproxy_delete_video for many videos, in id order: (video_id, job_id) rows';
COMMENT ON FUNCTION vproxy.vproxy_reprocess(uuid, jsonb) IS
	'make a video''s proxy and thumbnail again with new params: the new proxy job';
COMMENT ON FUNCTION vproxy.vproxy_prune(interval) IS
	'remove ended jobs past their retention (or older_than) now: how many';
COMMENT ON FUNCTION vproxy.claim_job(text, text[]) IS
	'worker API: take the most urgent runnable job under a new lease, with its job spec';
COMMENT ON FUNCTION vproxy.heartbeat_job(uuid, uuid, real) IS
	'worker API: extend a lease by vproxy.lease_duration and record progress: the seconds granted, NULL if lost';
COMMENT ON FUNCTION vproxy.finish_job(uuid, uuid, jsonb) IS
	'worker API: record a successful attempt (job, video, NOTIFY in one transaction); false if the lease was lost';
COMMENT ON FUNCTION vproxy.fail_job(uuid, uuid, text, text, boolean) IS
	'worker API: record a failed attempt with its error code: the new status, NULL if the lease was lost';
COMMENT ON FUNCTION vproxy.release_job(uuid, uuid) IS
	'worker API: hand a job back without spending an attempt (the worker is stopping)';
COMMENT ON FUNCTION vproxy.next_claim_at(text[]) IS
	'worker API: when a claim could next find work; NULL when nothing is queued';
COMMENT ON FUNCTION vproxy.worker_checkin(text, text, text, int, int, text[]) IS
	'worker API: an external worker says it is alive: {"extension_version", "lease_seconds"}';
COMMENT ON FUNCTION vproxy.worker_checkout(text) IS 'worker API: an external worker leaves';
COMMENT ON FUNCTION vproxy.worker_activity() IS 'the in-server workers as shared memory shows them';

-- ---------------------------------------------------------------------------
-- Privileges: nothing for PUBLIC (the README has the grants of the
-- application, monitor and worker roles); nothing in vproxy_internal for
-- anybody but the owner
-- ---------------------------------------------------------------------------

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA vproxy FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA vproxy_internal FROM PUBLIC;

-- ===========================================================================
-- End of the shared text.
-- ===========================================================================

-- the extension exists now: its workers may start
SELECT vproxy_internal.wake_launcher_at_commit();
