-- vproxy 1.0.0 -> 1.1.0: external workers, the life of a video from SQL,
-- children that spare the database, retention and safer names.  A fresh
-- install of 1.1.0 runs vproxy--1.0.0.sql and then this script, so an
-- upgraded database and a new one have the same objects.
\echo Use "ALTER EXTENSION vproxy UPDATE TO '1.1.0'" to load this file. \quit

-- ---------------------------------------------------------------------------
-- Operations: guarded worker calls, names that become keys, retention
-- ---------------------------------------------------------------------------

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

UPDATE videos SET checksum_sha256 = NULL WHERE checksum_sha256 = '';

-- Retention.  Remove up to batch ended jobs past their retention (NULL:
-- kept for ever), oldest first, and return how many.  The newest job of a
-- video that exists is kept whatever its age: it is the record of how the
-- video got its proxy, thumbnail and metadata (or why it failed).  Rows
-- another transaction has locked are passed over.
CREATE FUNCTION prune_batch(job_retention interval, failed_job_retention interval, batch int)
	RETURNS bigint
LANGUAGE sql SET search_path = pg_catalog AS $$
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
		 LIMIT batch
		   FOR UPDATE SKIP LOCKED),
	removed AS (
		DELETE FROM vproxy.processing_jobs j USING doomed d WHERE j.id = d.id RETURNING 1)
	SELECT count(*) FROM removed;
$$;

-- A retention setting as an interval; NULL when it keeps jobs for ever (0).
CREATE FUNCTION retention_setting(name text, fallback interval) RETURNS interval
LANGUAGE sql STABLE SET search_path = pg_catalog AS $$
	SELECT nullif(coalesce(nullif(current_setting(name, true), '')::interval, fallback),
				  interval '0');
$$;

-- Remove ended jobs past their retention now: vproxy.job_retention for
-- completed and cancelled jobs, vproxy.failed_job_retention for failed ones,
-- or older_than for both.  The number removed.
CREATE FUNCTION vproxy_prune(older_than interval DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	ended_after constant interval := coalesce(older_than,
		vproxy.retention_setting('vproxy.job_retention', interval '7 days'));
	failed_after constant interval := coalesce(older_than,
		vproxy.retention_setting('vproxy.failed_job_retention', interval '30 days'));
	removed bigint := 0;
	batch_removed bigint;
BEGIN
	IF older_than < interval '0' THEN
		RAISE EXCEPTION 'older_than must not be negative, not %', older_than
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	LOOP
		batch_removed := vproxy.prune_batch(ended_after, failed_after, 1000);
		removed := removed + batch_removed;
		EXIT WHEN batch_removed < 1000;
	END LOOP;
	RETURN removed;
END
$$;

REVOKE ALL ON FUNCTION blank_checksum_is_unknown(), prune_batch(interval, interval, int),
	retention_setting(text, interval), vproxy_prune(interval) FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- The life of a video: URLs, deletion, reprocessing, one writer per video
-- ---------------------------------------------------------------------------

-- ---------------------------------------------------------------------------
-- Children next to the database: priority, threads and memory
-- ---------------------------------------------------------------------------

-- ---------------------------------------------------------------------------
-- Workers on other machines: registry, role, monitoring
-- ---------------------------------------------------------------------------
