-- vproxy 1.0.0 -> 1.1.0: external workers, the life of a video from SQL,
-- children that spare the database, retention and safer names.  A fresh
-- install of 1.1.0 runs vproxy--1.0.0.sql and then this script, so an
-- upgraded database and a new one have the same objects.
\echo Use "ALTER EXTENSION vproxy UPDATE TO '1.1.0'" to load this file. \quit

-- ---------------------------------------------------------------------------
-- Operations: guarded worker calls, names that become keys, retention
-- ---------------------------------------------------------------------------

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
