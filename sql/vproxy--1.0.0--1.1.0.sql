-- vproxy 1.0.0 -> 1.1.0: external workers, the life of a video from SQL,
-- children that spare the database, retention and safer names.  A fresh
-- install of 1.1.0 runs vproxy--1.0.0.sql and then this script, so an
-- upgraded database and a new one have the same objects.
\echo Use "ALTER EXTENSION vproxy UPDATE TO '1.1.0'" to load this file. \quit

-- ---------------------------------------------------------------------------
-- Operations: guarded worker calls, names that become keys, retention
-- ---------------------------------------------------------------------------

-- An empty checksum means "unknown", as NULL does (the trigger below keeps
-- it so): blanked before the rules are validated, so that an empty one
-- breaks none.
UPDATE videos SET checksum_sha256 = NULL WHERE checksum_sha256 = '';

-- Names that become storage keys ({mall_id}, {pin_id} in the key templates)
-- and the original's checksum and size are checked where they enter.  A
-- database upgraded with rows that break a rule keeps them: the constraint is
-- then added NOT VALID (new and updated rows are checked) with a WARNING
-- that says how to find them; VALIDATE CONSTRAINT once they are fixed.
DO $$
DECLARE
	rule record;
BEGIN
	FOR rule IN SELECT * FROM (VALUES
		('videos_mall_id_is_a_safe_name',
		 $c$CHECK (mall_id ~ '^[^/{}[:cntrl:]]{1,128}$' AND mall_id NOT IN ('.', '..'))$c$),
		('videos_pin_id_is_a_safe_name',
		 $c$CHECK (pin_id ~ '^[^/{}[:cntrl:]]{1,128}$' AND pin_id NOT IN ('.', '..'))$c$),
		('videos_checksum_sha256_is_hex',
		 $c$CHECK (checksum_sha256 ~ '^[0-9A-Fa-f]{64}$')$c$),
		('videos_file_size_bytes_not_negative',
		 $c$CHECK (file_size_bytes >= 0)$c$)) AS r (name, definition)
	LOOP
		EXECUTE format('ALTER TABLE vproxy.videos ADD CONSTRAINT %I %s NOT VALID',
					   rule.name, rule.definition);
		BEGIN
			EXECUTE format('ALTER TABLE vproxy.videos VALIDATE CONSTRAINT %I', rule.name);
		EXCEPTION WHEN check_violation THEN
			RAISE WARNING 'existing rows of vproxy.videos break the new rule %', rule.name
				USING DETAIL = format('The rule is %s; it applies to new and updated rows only.',
									  rule.definition),
				HINT = format('Find them with SELECT * FROM vproxy.videos WHERE NOT (%s), fix them, '
							  'then ALTER TABLE vproxy.videos VALIDATE CONSTRAINT %I.',
							  substring(rule.definition FROM 7), rule.name);
		END;
	END LOOP;
END
$$;

COMMENT ON CONSTRAINT videos_mall_id_is_a_safe_name ON videos IS
	'mall_id becomes part of storage keys: 1 to 128 characters, no /, { or }, no control characters, not . or ..';
COMMENT ON CONSTRAINT videos_pin_id_is_a_safe_name ON videos IS
	'pin_id becomes part of storage keys: NULL, or 1 to 128 characters, no /, { or }, no control characters, not . or ..';
COMMENT ON CONSTRAINT videos_checksum_sha256_is_hex ON videos IS
	'the SHA-256 of the original: 64 hexadecimal digits, or NULL (unknown: the first job fills it in)';
COMMENT ON CONSTRAINT videos_file_size_bytes_not_negative ON videos IS
	'the size of the original in bytes, or NULL (unknown: the first job fills it in)';

-- An empty checksum means "unknown", as NULL does: the first job fills it in.
CREATE FUNCTION blank_checksum_is_unknown() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
	NEW.checksum_sha256 := nullif(NEW.checksum_sha256, '');
	RETURN NEW;
END
$$;

CREATE TRIGGER videos_blank_checksum BEFORE INSERT OR UPDATE OF checksum_sha256 ON videos
	FOR EACH ROW WHEN (NEW.checksum_sha256 = '') EXECUTE FUNCTION blank_checksum_is_unknown();


-- Retention.  Remove up to batch ended jobs (NULL: all) past their
-- retention (NULL: kept for ever), oldest first, and return how many.  The
-- newest job of a video that exists is kept whatever its age: it is the
-- record of how the video got its proxy, thumbnail and metadata (or why it
-- failed).  No row is locked before its removal (that would write it
-- twice): a prune that meets a row another prune removes waits for it, then
-- passes it over.  A batch looks up each candidate's video (cheap for a
-- few hundred rows); all at once, the newest jobs are found in one pass.
CREATE FUNCTION prune_batch(job_retention interval, failed_job_retention interval, batch int)
	RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
DECLARE
	removed bigint;
BEGIN
	IF batch IS NULL THEN
		WITH keep AS (
			SELECT DISTINCT ON (n.video_id) n.id
			  FROM vproxy.processing_jobs n
			 WHERE EXISTS (SELECT FROM vproxy.videos v WHERE v.id = n.video_id)
			 ORDER BY n.video_id, n.created_at DESC, n.id DESC),
		gone AS (
			DELETE FROM vproxy.processing_jobs j
			 WHERE ((j.status IN ('completed', 'cancelled') AND j.completed_at < now() - job_retention)
					OR (j.status = 'failed' AND j.completed_at < now() - failed_job_retention))
			   AND NOT EXISTS (SELECT FROM keep k WHERE k.id = j.id)
			RETURNING 1)
		SELECT count(*) INTO removed FROM gone;
		RETURN removed;
	END IF;
	WITH doomed AS (
		SELECT j.id
		  FROM vproxy.processing_jobs j
		 WHERE ((j.status IN ('completed', 'cancelled') AND j.completed_at < now() - job_retention)
				OR (j.status = 'failed' AND j.completed_at < now() - failed_job_retention))
		   AND (NOT EXISTS (SELECT FROM vproxy.videos v WHERE v.id = j.video_id)
				OR EXISTS (SELECT FROM vproxy.processing_jobs n
						   WHERE n.video_id = j.video_id
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
CREATE FUNCTION retention_setting(name text, fallback interval) RETURNS interval
LANGUAGE sql STABLE SET search_path = pg_catalog AS $$
	SELECT nullif(coalesce(nullif(current_setting(name, true), '')::interval, fallback),
				  interval '0');
$$;

-- Remove ended jobs past their retention now: vproxy.job_retention for
-- completed and cancelled jobs, vproxy.failed_job_retention for failed ones,
-- or older_than for both, in one statement.  The number removed.
CREATE FUNCTION vproxy_prune(older_than interval DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	ended_after constant interval := coalesce(older_than,
		vproxy.retention_setting('vproxy.job_retention', interval '7 days'));
	failed_after constant interval := coalesce(older_than,
		vproxy.retention_setting('vproxy.failed_job_retention', interval '30 days'));
BEGIN
	IF older_than < interval '0' THEN
		RAISE EXCEPTION 'older_than must not be negative, not %', older_than
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	-- all at once: batches inside one transaction would each scan again
	-- the index entries of the rows the batches before them removed
	RETURN vproxy.prune_batch(ended_after, failed_after, NULL);
END
$$;

REVOKE ALL ON FUNCTION blank_checksum_is_unknown(), prune_batch(interval, interval, int),
	retention_setting(text, interval), vproxy_prune(interval) FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- The life of a video: URLs, deletion, reprocessing, one writer per video
-- ---------------------------------------------------------------------------

-- A new job type: video_deletion removes the video's objects, then its row.
ALTER TABLE processing_jobs DROP CONSTRAINT processing_jobs_job_type_check;
ALTER TABLE processing_jobs ADD CONSTRAINT processing_jobs_job_type_check
	CHECK (job_type IN ('proxy_generation', 'metadata_extraction', 'thumbnail_generation',
						'video_deletion'));
-- A video being deleted is "deleting" until its deletion job removes the row.
ALTER TABLE videos DROP CONSTRAINT videos_processing_status_check;
ALTER TABLE videos ADD CONSTRAINT videos_processing_status_check
	CHECK (processing_status IN ('pending', 'processing', 'completed', 'failed', 'deleting'));

-- the claim's test "does another job of this video still run?" and the
-- cancelled jobs whose child may still be stopping (their lease lingers)
CREATE INDEX processing_jobs_running_video ON processing_jobs (video_id)
	WHERE status = 'running' OR (status = 'cancelled' AND lease_expires_at IS NOT NULL);
CREATE INDEX processing_jobs_lingering_lease ON processing_jobs (lease_expires_at)
	WHERE status = 'cancelled' AND lease_expires_at IS NOT NULL;

-- Whether a job of type job_type may run beside a running job of type
-- other_type of the same video: only metadata_extraction (which writes no
-- object) runs beside another job, and nothing runs beside a deletion.
CREATE FUNCTION may_run_beside(job_type text, other_type text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT $1 <> 'video_deletion' AND $2 <> 'video_deletion'
		   AND ($1 = 'metadata_extraction' OR $2 = 'metadata_extraction');
$$;

-- Whether another job of the job's video may still be writing what the job
-- would write: running, or cancelled while running with a lease not yet
-- expired (its worker may still be stopping the child).
CREATE FUNCTION video_busy_for(job processing_jobs) RETURNS boolean
LANGUAGE sql STABLE AS $$
	SELECT EXISTS (
		SELECT FROM vproxy.processing_jobs o
		 WHERE o.video_id = job.video_id AND o.id <> job.id
		   AND (o.status = 'running'
				OR (o.status = 'cancelled' AND o.lease_expires_at IS NOT NULL
					AND o.lease_expires_at > now()))
		   AND NOT vproxy.may_run_beside(job.job_type, o.job_type));
$$;

-- The spec of a claimed job (without storage settings): what the child
-- reads, writes or deletes.
CREATE FUNCTION job_spec(job processing_jobs, video videos, proxy_key_template text,
	thumbnail_key_template text) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog AS $$
	SELECT jsonb_build_object(
		'job_id', job.id,
		'video_id', job.video_id,
		'attempt', job.attempts,
		'job_type', job.job_type,
		'original', CASE WHEN job.job_type = 'video_deletion'
			THEN jsonb_build_object('key', video.original_path)
			ELSE jsonb_build_object('key', video.original_path,
									'size_bytes', video.file_size_bytes,
									'sha256', video.checksum_sha256) END,
		'outputs', jsonb_strip_nulls(jsonb_build_object(
			'proxy_key', CASE WHEN job.job_type IN ('proxy_generation', 'video_deletion') THEN
				vproxy.storage_key(proxy_key_template, video) END,
			'thumbnail_key', CASE WHEN job.job_type <> 'metadata_extraction' THEN
				vproxy.storage_key(thumbnail_key_template, video) END)),
		'params', job.params)
		-- a deletion also removes the outputs stored under other keys (the
		-- templates changed since they were made)
		|| CASE WHEN job.job_type = 'video_deletion' THEN jsonb_build_object('stale_keys',
			coalesce((SELECT jsonb_agg(DISTINCT k) FROM unnest(ARRAY[video.proxy_path, video.thumbnail_path]) k
					   WHERE k IS NOT NULL AND k <> video.original_path
						 AND k <> vproxy.storage_key(proxy_key_template, video)
						 AND k <> vproxy.storage_key(thumbnail_key_template, video)), '[]'))
			ELSE '{}' END;
$$;

-- Take the most urgent runnable job of the given types (NULL: all) under a
-- new lease, and return what the child needs to run it.  One writer per
-- video: a job is passed over while another job that writes the same
-- video's objects runs, and two claims cannot take two jobs of one video
-- (each locks the video row, SKIP LOCKED, and looks again once it holds
-- it).  A job whose video row someone else has locked is passed over too,
-- never waited for.
DROP FUNCTION claim_job(text, double precision, text, text);
CREATE FUNCTION claim_job(holder text, lease_seconds double precision,
	proxy_key_template text DEFAULT 'videos/{mall_id}/proxy/{video_id}.mp4',
	thumbnail_key_template text DEFAULT 'thumbnails/{mall_id}/{video_id}.jpg',
	job_types text[] DEFAULT NULL,
	OUT job_id uuid, OUT video_id uuid, OUT job_type text, OUT attempt int,
	OUT lease_token uuid, OUT spec jsonb)
RETURNS SETOF record
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
DECLARE
	job vproxy.processing_jobs;
	video vproxy.videos;
	passed uuid[] := '{}';
BEGIN
	LOOP
		SELECT * INTO job
		  FROM vproxy.processing_jobs j
		 WHERE j.status IN ('pending', 'running')
		   AND ((j.status = 'pending' AND j.run_at <= now())
				OR (j.status = 'running' AND j.lease_expires_at <= now()))
		   AND (claim_job.job_types IS NULL OR j.job_type = ANY (claim_job.job_types))
		   AND j.id <> ALL (passed)
		   AND NOT vproxy.video_busy_for(j)
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
		IF NOT FOUND OR vproxy.video_busy_for(job) THEN
			passed := passed || job.id;
			CONTINUE;
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

	job_id := job.id;
	video_id := job.video_id;
	job_type := job.job_type;
	attempt := job.attempts;
	lease_token := job.lease_token;
	spec := vproxy.job_spec(job, video, proxy_key_template, thumbnail_key_template);
	RETURN NEXT;
END
$$;

-- When a claim of the given types (NULL: all) could next find work: the
-- earliest delayed retry or lease expiry (the lingering lease of a job
-- cancelled while running included); NULL when nothing is queued or
-- running.  A queued job that waits for another job of its video counts
-- from that job's lease expiry (and the end of that job frees its worker,
-- which claims again at once).
DROP FUNCTION next_claim_at();
CREATE FUNCTION next_claim_at(job_types text[] DEFAULT NULL) RETURNS timestamptz
LANGUAGE sql STABLE SET search_path = pg_catalog AS $$
	SELECT min(t) FROM (
		SELECT j.run_at
		  FROM vproxy.processing_jobs j
		 WHERE j.status = 'pending'
		   AND (next_claim_at.job_types IS NULL OR j.job_type = ANY (next_claim_at.job_types))
		   AND NOT (j.run_at <= now() AND vproxy.video_busy_for(j))
		UNION ALL
		SELECT j.lease_expires_at
		  FROM vproxy.processing_jobs j
		 WHERE j.status = 'running'
			OR (j.status = 'cancelled' AND j.lease_expires_at IS NOT NULL
				AND j.lease_expires_at > now())) AS due(t);
$$;

REVOKE ALL ON FUNCTION may_run_beside(text, text), video_busy_for(processing_jobs),
	job_spec(processing_jobs, videos, text, text),
	claim_job(text, double precision, text, text, text[]), next_claim_at(text[]) FROM PUBLIC;

-- A finished deletion keeps its job row (vproxy_job_status() still answers)
-- when the video row goes: the row is detached from its video first, the
-- only job ever without one.
ALTER TABLE processing_jobs ALTER COLUMN video_id DROP NOT NULL;
ALTER TABLE processing_jobs ADD CONSTRAINT processing_jobs_video_id_check
	CHECK (video_id IS NOT NULL OR job_type = 'video_deletion');

-- Listing videos as the old API did (by mall, pin, status, creation date),
-- newest first with keyset pagination on (created_at, id).
CREATE INDEX videos_mall_created ON videos (mall_id, created_at DESC, id DESC);
CREATE INDEX videos_pin_created ON videos (pin_id, created_at DESC, id DESC)
	WHERE pin_id IS NOT NULL;
CREATE INDEX videos_status_created ON videos (processing_status, created_at DESC, id DESC);
CREATE INDEX videos_created ON videos (created_at DESC, id DESC);

-- Put a failed or cancelled proxy job's video in its final state, unless
-- another proxy job for it is still queued or running.  As in 1.0.0, with
-- one change: a video that has a proxy from an earlier run stays
-- "completed" when a later proxy job (a reprocess) fails, with the failure
-- in processing_error, because its stored proxy, thumbnail and metadata
-- still describe that earlier run and play.  A video being deleted is left
-- alone.
CREATE OR REPLACE FUNCTION settle_video_after_failure(job processing_jobs) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
	IF job.job_type <> 'proxy_generation' THEN
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
						 AND o.job_type = 'proxy_generation'
						 AND o.status IN ('pending', 'running'));
END
$$;

-- Cancel queued and running jobs, the one job_id or all of video_id's, with
-- a reason; the rows cancelled.  A running job loses its lease token (its
-- worker can write nothing) but keeps its lease until it expires: its child
-- may still be stopping, and one writer per video holds the video's next
-- job back until then.
CREATE FUNCTION cancel_jobs(only_job uuid, of_video uuid, reason text)
	RETURNS SETOF processing_jobs
LANGUAGE sql SET search_path = pg_catalog AS $$
	UPDATE vproxy.processing_jobs j
	   SET status = 'cancelled', completed_at = now(), error_message = reason,
		   lease_token = NULL,
		   lease_expires_at = CASE WHEN j.status = 'running' THEN j.lease_expires_at END,
		   lease_holder = CASE WHEN j.status = 'running' THEN j.lease_holder END
	 WHERE (j.id = only_job OR j.video_id = of_video) AND j.status IN ('pending', 'running')
	RETURNING j.*;
$$;

-- Cancel a queued or running job: true if it was cancelled by this call,
-- false if it had already ended.  The worker running it stops its child at
-- commit.  As in 1.0.0, but a running job keeps its lease until it expires
-- (cancel_jobs).
CREATE OR REPLACE FUNCTION vproxy_cancel(job_id uuid) RETURNS boolean
LANGUAGE plpgsql STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	job vproxy.processing_jobs;
BEGIN
	SELECT * INTO job FROM vproxy.cancel_jobs(job_id, NULL, 'cancelled by vproxy_cancel()');
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

-- A presigned GET or PUT URL of a storage key valid for expires_seconds
-- (S3 SigV4 query signing with the server's credentials), or the key's
-- absolute file:// path with local-directory storage.
CREATE FUNCTION presign(method text, key text, expires_seconds int) RETURNS text
	AS 'MODULE_PATHNAME', 'vproxy_presign' LANGUAGE C STRICT VOLATILE;

-- The seconds of an expiry interval, checked: 1 second to 7 days.
CREATE FUNCTION expiry_seconds(expires_in interval) RETURNS int
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog AS $$
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

-- A presigned GET URL of a video's proxy, thumbnail or original; NULL while
-- that file is still to be made.
CREATE FUNCTION vproxy_url(video_id uuid, kind text DEFAULT 'proxy',
	expires_in interval DEFAULT '1 hour') RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	key text;
	seconds constant int := vproxy.expiry_seconds(expires_in);
BEGIN
	IF kind IS NULL OR kind NOT IN ('proxy', 'thumbnail', 'original') THEN
		RAISE EXCEPTION 'unknown kind "%"', kind
			USING ERRCODE = 'invalid_parameter_value',
			HINT = 'Kinds: proxy, thumbnail, original.';
	END IF;
	SELECT CASE kind WHEN 'proxy' THEN v.proxy_path WHEN 'thumbnail' THEN v.thumbnail_path
					 ELSE v.original_path END
	  INTO key
	  FROM vproxy.videos v WHERE v.id = vproxy_url.video_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'video % does not exist', vproxy_url.video_id
			USING ERRCODE = 'no_data_found';
	END IF;
	IF key IS NULL THEN
		RETURN NULL;
	END IF;
	RETURN vproxy.presign('GET', key, seconds);
END
$$;

-- A presigned PUT URL for a video's original_path: the client uploads
-- straight to the storage, then the application enqueues.
CREATE FUNCTION vproxy_upload_url(video_id uuid, expires_in interval DEFAULT '1 hour')
	RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	video vproxy.videos;
	seconds constant int := vproxy.expiry_seconds(expires_in);
BEGIN
	SELECT * INTO video FROM vproxy.videos v WHERE v.id = vproxy_upload_url.video_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'video % does not exist', vproxy_upload_url.video_id
			USING ERRCODE = 'no_data_found';
	END IF;
	IF video.processing_status = 'deleting' THEN
		RAISE EXCEPTION 'video % is being deleted', video.id
			USING ERRCODE = 'object_not_in_prerequisite_state';
	END IF;
	RETURN vproxy.presign('PUT', video.original_path, seconds);
END
$$;

-- A video being deleted stays "deleting" until its row goes: no enqueue
-- (which marks it "processing") and no application update takes it back.
CREATE FUNCTION keep_deleting() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
	RAISE EXCEPTION 'video % is being deleted', OLD.id
		USING ERRCODE = 'object_not_in_prerequisite_state';
END
$$;

CREATE TRIGGER videos_keep_deleting BEFORE UPDATE OF processing_status ON videos
	FOR EACH ROW WHEN (OLD.processing_status = 'deleting'
					   AND NEW.processing_status IS DISTINCT FROM 'deleting')
	EXECUTE FUNCTION keep_deleting();

-- No job but its deletion is queued for a video being deleted.  The key
-- share lock waits for a vproxy_delete_video() in progress (it holds the
-- row FOR UPDATE) and then reads the row as that left it: "deleting".  (No
-- status in the WHERE clause: the snapshot's older row would not match it
-- and nothing would wait.)
CREATE FUNCTION refuse_jobs_of_deleting_video() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
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

CREATE TRIGGER processing_jobs_refuse_deleting BEFORE INSERT ON processing_jobs
	FOR EACH ROW WHEN (NEW.job_type <> 'video_deletion')
	EXECUTE FUNCTION refuse_jobs_of_deleting_video();

-- The end of a deletion job: completed, it detaches itself from the video
-- and deletes the row (the video's other jobs go with it), in the finishing
-- transaction, whose NOTIFY still names the video; failed for good, the
-- video stays "deleting" with the reason, and vproxy_delete_video() may be
-- called again.
CREATE FUNCTION end_deletion() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
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

CREATE TRIGGER processing_jobs_end_deletion AFTER UPDATE OF status ON processing_jobs
	FOR EACH ROW WHEN (NEW.job_type = 'video_deletion' AND OLD.status = 'running'
					   AND NEW.status IN ('completed', 'failed') AND OLD.video_id IS NOT NULL)
	EXECUTE FUNCTION end_deletion();

-- Delete a video with its files: stop its queued and running jobs, mark it
-- "deleting" and queue the video_deletion job that removes the original,
-- the proxy and the thumbnail from storage, then the row.  The job runs
-- once no other job of the video runs (a job stopped here counts until its
-- lease expires: its child may still be stopping).  Calling it again for a
-- video being deleted returns the deletion job in progress, or queues a new
-- one after a failed deletion.
CREATE FUNCTION vproxy_delete_video(video_id uuid) RETURNS uuid
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
		RAISE EXCEPTION 'video % does not exist', the_video_id
			USING ERRCODE = 'no_data_found';
	END IF;
	SELECT j.id INTO deletion_id FROM vproxy.processing_jobs j
	 WHERE j.video_id = the_video_id AND j.job_type = 'video_deletion'
	   AND j.status IN ('pending', 'running');
	IF FOUND THEN
		RETURN deletion_id;
	END IF;

	-- a running job's lease lingers: the deletion waits for it
	FOR job IN SELECT * FROM vproxy.cancel_jobs(NULL, the_video_id, 'cancelled by vproxy_delete_video()')
	LOOP
		PERFORM vproxy.notify_job_end(job);
		IF job.lease_expires_at IS NOT NULL THEN
			PERFORM vproxy.wake_workers_at_commit(job.id);
		END IF;
	END LOOP;

	UPDATE vproxy.videos v
	   SET processing_status = 'deleting', processing_error = NULL
	 WHERE v.id = the_video_id;
	INSERT INTO vproxy.processing_jobs (video_id, job_type, max_attempts)
	VALUES (the_video_id, 'video_deletion',
			coalesce(nullif(current_setting('vproxy.max_attempts', true), '')::int, 3))
	RETURNING id INTO deletion_id;
	PERFORM vproxy.wake_workers_at_commit(NULL);
	RETURN deletion_id;
END
$$;

-- Delete many videos at once (in id order, so that two batches cannot
-- deadlock): each video and its deletion job.
CREATE FUNCTION vproxy_delete_videos(video_ids uuid[])
	RETURNS TABLE (video_id uuid, job_id uuid)
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
	SELECT ids.id, vproxy.vproxy_delete_video(ids.id)
	  FROM (SELECT DISTINCT unnest(video_ids) AS id ORDER BY 1) ids;
$$;

-- Make the video's proxy and thumbnail again with new parameters: a new
-- proxy job (it waits for any running job of the video).  The stored
-- proxy, thumbnail and metadata stay those of the previous run until it
-- succeeds.
CREATE FUNCTION vproxy_reprocess(video_id uuid, params jsonb DEFAULT '{}') RETURNS uuid
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
	SELECT vproxy.vproxy_enqueue(video_id, 'proxy_generation', 5, coalesce(params, '{}'));
$$;

REVOKE ALL ON FUNCTION cancel_jobs(uuid, uuid, text), presign(text, text, int), expiry_seconds(interval),
	vproxy_url(uuid, text, interval), vproxy_upload_url(uuid, interval),
	keep_deleting(), refuse_jobs_of_deleting_video(), end_deletion(),
	vproxy_delete_video(uuid), vproxy_delete_videos(uuid[]),
	vproxy_reprocess(uuid, jsonb) FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- Children next to the database: priority, threads and memory
-- ---------------------------------------------------------------------------

-- ---------------------------------------------------------------------------
-- Workers on other machines: registry, role, monitoring
-- ---------------------------------------------------------------------------

-- Who serves the queue from other machines: one row per running
-- vproxy-worker, refreshed by its check-ins (three times per lease) and
-- removed when it stops.
-- Transient: not dumped.
CREATE TABLE external_workers (
	holder text PRIMARY KEY,	-- the lease holder of its jobs
	name text NOT NULL,
	host text NOT NULL,
	pid int NOT NULL,
	concurrency int NOT NULL,
	job_types text[],
	started_at timestamptz NOT NULL DEFAULT now(),
	last_seen timestamptz NOT NULL DEFAULT now()
);

-- The settings an external worker needs, none of them secret: where files
-- go (storage URL, S3 endpoint and region, key templates) and the queue's
-- lease, timeout and retry delay.  S3 credentials never leave the server:
-- a worker takes its own from its environment.
CREATE FUNCTION worker_settings() RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog AS $$
	SELECT jsonb_build_object(
		'storage', jsonb_build_object(
			'url', current_setting('vproxy.storage_url'),
			's3_endpoint', current_setting('vproxy.s3_endpoint'),
			's3_region', current_setting('vproxy.s3_region')),
		'proxy_key_template', current_setting('vproxy.proxy_key_template'),
		'thumbnail_key_template', current_setting('vproxy.thumbnail_key_template'),
		'lease_seconds', (SELECT s.setting::double precision FROM pg_settings s
						  WHERE s.name = 'vproxy.lease_duration'),
		'job_timeout_seconds', (SELECT s.setting::double precision FROM pg_settings s
								WHERE s.name = 'vproxy.job_timeout'),
		'retry_delay_seconds', (SELECT s.setting::double precision FROM pg_settings s
								WHERE s.name = 'vproxy.retry_delay'));
$$;

-- An external worker says it is alive (and what it is); returns the settings.
CREATE FUNCTION worker_checkin(holder text, name text, host text, pid int, concurrency int,
	job_types text[] DEFAULT NULL) RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
	INSERT INTO vproxy.external_workers AS w (holder, name, host, pid, concurrency, job_types)
	VALUES (worker_checkin.holder, worker_checkin.name, worker_checkin.host, worker_checkin.pid,
			worker_checkin.concurrency, worker_checkin.job_types)
	ON CONFLICT ON CONSTRAINT external_workers_pkey
	DO UPDATE SET last_seen = now();
	-- rows of workers that vanished long ago (kill -9, a lost machine)
	DELETE FROM vproxy.external_workers w WHERE w.last_seen < now() - interval '1 day';
	RETURN vproxy.worker_settings();
END
$$;

-- An external worker leaves.
CREATE FUNCTION worker_checkout(holder text) RETURNS void
LANGUAGE sql SET search_path = pg_catalog AS $$
	DELETE FROM vproxy.external_workers w WHERE w.holder = worker_checkout.holder;
$$;

-- The C wake-up of the in-server workers, under the name it had in 1.0.0
-- taken over by the function below.
CREATE FUNCTION wake_in_server_workers_at_commit(job_id uuid DEFAULT NULL) RETURNS void
	AS 'MODULE_PATHNAME', 'vproxy_wake_workers_at_commit' LANGUAGE C CALLED ON NULL INPUT VOLATILE;

-- Wake the workers at commit, in the server and outside it: every caller
-- (enqueue, retry, release, cancel) reaches the external workers through
-- NOTIFY vproxy_work (payload '' = work to claim, a job id = that job was
-- cancelled: check its lease now).  The NOTIFY is sent only while external
-- workers are checked in, so a database without them pays nothing for it.
CREATE OR REPLACE FUNCTION wake_workers_at_commit(job_id uuid DEFAULT NULL) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog AS $$
BEGIN
	PERFORM vproxy.wake_in_server_workers_at_commit(job_id);
	IF EXISTS (SELECT FROM vproxy.external_workers w
			   WHERE w.last_seen > now() - interval '10 minutes') THEN
		PERFORM pg_notify('vproxy_work', coalesce(job_id::text, ''));
	END IF;
END
$$;

-- The workers, in the server and outside it, side by side.  In-server
-- workers have their slot number in "worker" and no host (they run on the
-- database server); external ones their name and host, and drop out when
-- they have not checked in for a lease.
CREATE OR REPLACE VIEW workers AS
	SELECT a.worker, a.pid, a.state, a.job_id, a.video_id, a.job_type, a.attempt,
		   a.progress, a.stage, a.state_since, a.job_started_at, v.filename,
		   'in-server'::text AS kind, format('vproxy worker %s', a.worker) AS name,
		   NULL::text AS host,
		   j.lease_expires_at - make_interval(secs => s.lease_seconds) AS last_heartbeat
	  FROM worker_activity() a
	  LEFT JOIN videos v ON v.id = a.video_id
	  LEFT JOIN processing_jobs j ON j.id = a.job_id AND j.status = 'running'
	 CROSS JOIN (SELECT p.setting::double precision AS lease_seconds FROM pg_settings p
				  WHERE p.name = 'vproxy.lease_duration') s
	UNION ALL
	SELECT NULL, w.pid, CASE WHEN j.id IS NULL THEN 'idle' ELSE 'running' END,
		   j.id, j.video_id, j.job_type, j.attempts, j.progress, NULL,
		   CASE WHEN j.id IS NULL THEN w.started_at ELSE j.started_at END, j.started_at,
		   v.filename, 'external', w.name, w.host,
		   coalesce(j.lease_expires_at - make_interval(secs => s.lease_seconds), w.last_seen)
	  FROM external_workers w
	 CROSS JOIN (SELECT p.setting::double precision AS lease_seconds FROM pg_settings p
				  WHERE p.name = 'vproxy.lease_duration') s
	  LEFT JOIN processing_jobs j ON j.status = 'running' AND j.lease_holder = w.holder
	  LEFT JOIN videos v ON v.id = j.video_id
	 WHERE w.last_seen > now() - make_interval(secs => s.lease_seconds);

-- The worker functions run as the extension's owner, so that a worker role
-- needs EXECUTE on them and nothing else: it cannot read or write the
-- tables, and every write after a claim presents the claim's lease token.
-- (Last in the script: CREATE OR REPLACE above would reset SECURITY DEFINER.)
DO $$
DECLARE
	f regprocedure;
BEGIN
	FOR f IN
		SELECT p.oid::regprocedure FROM pg_proc p
		 WHERE p.pronamespace = 'vproxy'::regnamespace
		   AND p.proname IN ('claim_job', 'heartbeat_job', 'finish_job', 'fail_job', 'release_job',
							 'next_claim_at', 'worker_settings', 'worker_checkin', 'worker_checkout')
	LOOP
		EXECUTE format('ALTER FUNCTION %s SECURITY DEFINER', f);
	END LOOP;
END
$$;

REVOKE ALL ON FUNCTION worker_settings(), worker_checkin(text, text, text, int, int, text[]),
	worker_checkout(text), wake_in_server_workers_at_commit(uuid) FROM PUBLIC;
