-- Operations (1.1.0): names that become storage keys checked at INSERT, the
-- original's checksum and size checked where they enter, retention of ended
-- jobs, and no oracle for the S3 secret in what clients are told.
CREATE EXTENSION IF NOT EXISTS vproxy;
SET search_path = vproxy, public;
-- the failing rows' details hold random ids and times
\set VERBOSITY terse
TRUNCATE videos CASCADE;

-- names that would leave their tree, or make no key, are refused with the rule's name
INSERT INTO videos (mall_id, original_path) VALUES ('../x', 'uploads/a.mp4');
INSERT INTO videos (mall_id, original_path) VALUES ('a/b', 'uploads/a.mp4');
INSERT INTO videos (mall_id, original_path) VALUES ('.', 'uploads/a.mp4');
INSERT INTO videos (mall_id, original_path) VALUES ('..', 'uploads/a.mp4');
INSERT INTO videos (mall_id, original_path) VALUES ('', 'uploads/a.mp4');
INSERT INTO videos (mall_id, original_path) VALUES ('{video_id}', 'uploads/a.mp4');
INSERT INTO videos (mall_id, original_path) VALUES (E'mall\n7', 'uploads/a.mp4');
INSERT INTO videos (mall_id, original_path) VALUES (repeat('m', 129), 'uploads/a.mp4');
INSERT INTO videos (mall_id, pin_id, original_path) VALUES ('m1', '', 'uploads/a.mp4');
INSERT INTO videos (mall_id, pin_id, original_path) VALUES ('m1', 'p/../../x', 'uploads/a.mp4');
INSERT INTO videos (mall_id, pin_id, original_path) VALUES ('m1', '..', 'uploads/a.mp4');
-- an update is checked too
INSERT INTO videos (id, mall_id, pin_id, original_path)
VALUES ('00000000-0000-0000-0000-0000000000d1', 'mall-7', 'pin 3', 'uploads/a.mp4');
UPDATE videos SET mall_id = 'mall-7/proxy' WHERE id = '00000000-0000-0000-0000-0000000000d1';
-- ordinary names pass: dots, spaces, letters of any script, 128 characters
INSERT INTO videos (mall_id, pin_id, original_path)
VALUES ('mall.7', 'pin 3', 'uploads/b.mp4'), ('Mall Ü-7_x', NULL, 'uploads/c.mp4'),
	   (repeat('m', 128), 'p...', 'uploads/d.mp4');
SELECT mall_id, pin_id FROM videos ORDER BY original_path;

-- the checksum: 64 hex digits or unknown; an empty one is unknown (NULL),
-- so that the first job fills it in; a size is not negative
INSERT INTO videos (mall_id, original_path, checksum_sha256) VALUES ('m1', 'uploads/e.mp4', 'not hex');
INSERT INTO videos (mall_id, original_path, checksum_sha256) VALUES ('m1', 'uploads/e.mp4', repeat('a', 63));
INSERT INTO videos (mall_id, original_path, file_size_bytes) VALUES ('m1', 'uploads/e.mp4', -1);
INSERT INTO videos (id, mall_id, original_path, checksum_sha256, file_size_bytes)
VALUES ('00000000-0000-0000-0000-0000000000d2', 'm1', 'uploads/e.mp4', '', 0);
SELECT checksum_sha256 IS NULL AS unknown, file_size_bytes FROM videos
 WHERE id = '00000000-0000-0000-0000-0000000000d2';
UPDATE videos SET checksum_sha256 = upper(repeat('ab', 32)) WHERE id = '00000000-0000-0000-0000-0000000000d2';
UPDATE videos SET checksum_sha256 = '' WHERE id = '00000000-0000-0000-0000-0000000000d2';
SELECT checksum_sha256 IS NULL AS unknown FROM videos WHERE id = '00000000-0000-0000-0000-0000000000d2';
-- ... and the finish of a job fills it in
SELECT vproxy_enqueue('00000000-0000-0000-0000-0000000000d2', 'metadata_extraction') IS NOT NULL AS queued;
SELECT job_id AS job, lease_token AS token FROM claim_job('regress') \gset
SELECT finish_job(:'job', :'token', jsonb_build_object('status', 'success',
	'original_sha256', repeat('cd', 32),
	'metadata', jsonb_build_object('original', jsonb_build_object('width', 64, 'height', 48)))) AS finished;
SELECT checksum_sha256 = repeat('cd', 32) AS filled FROM videos WHERE id = '00000000-0000-0000-0000-0000000000d2';

-- retention: ended jobs older than their retention go, the newest job of a
-- video stays, queued and running jobs stay whatever their age
TRUNCATE videos CASCADE;
INSERT INTO videos (id, mall_id, original_path)
SELECT ('00000000-0000-0000-0000-0000000000e' || i)::uuid, 'm1', 'uploads/' || i || '.mp4'
  FROM generate_series(1, 3) i;
INSERT INTO processing_jobs (id, video_id, status, created_at, completed_at)
VALUES
	-- video e1: old jobs of every ended status, and a newer pending one
	('00000000-0000-0000-0000-0000000000f1', '00000000-0000-0000-0000-0000000000e1', 'completed', now() - interval '40 days', now() - interval '40 days'),
	('00000000-0000-0000-0000-0000000000f2', '00000000-0000-0000-0000-0000000000e1', 'cancelled', now() - interval '39 days', now() - interval '8 days'),
	('00000000-0000-0000-0000-0000000000f3', '00000000-0000-0000-0000-0000000000e1', 'failed', now() - interval '38 days', now() - interval '31 days'),
	('00000000-0000-0000-0000-0000000000f4', '00000000-0000-0000-0000-0000000000e1', 'failed', now() - interval '37 days', now() - interval '10 days'),
	('00000000-0000-0000-0000-0000000000f5', '00000000-0000-0000-0000-0000000000e1', 'completed', now() - interval '36 days', now() - interval '1 day'),
	('00000000-0000-0000-0000-0000000000f6', '00000000-0000-0000-0000-0000000000e1', 'pending', now() - interval '35 days', NULL),
	-- video e2: one old completed job, its newest
	('00000000-0000-0000-0000-0000000000f7', '00000000-0000-0000-0000-0000000000e2', 'completed', now() - interval '50 days', now() - interval '50 days'),
	-- video e3: an old running job and an old failed one before it
	('00000000-0000-0000-0000-0000000000f8', '00000000-0000-0000-0000-0000000000e3', 'failed', now() - interval '60 days', now() - interval '60 days'),
	('00000000-0000-0000-0000-0000000000f9', '00000000-0000-0000-0000-0000000000e3', 'running', now() - interval '59 days', NULL);
-- retention off (0) keeps everything
SELECT vproxy_internal.prune_batch(NULL, NULL, 10) AS removed;
-- the defaults: 7 days for completed and cancelled jobs, 30 for failed ones
SELECT vproxy_prune() AS removed;
SELECT id, status FROM processing_jobs ORDER BY id;
-- older_than for both: everything ended before it, but the newest job of a video
SELECT vproxy_prune('12 hours') AS removed;
SELECT id, status FROM processing_jobs ORDER BY id;
SELECT vproxy_prune('0') AS removed;
SELECT vproxy_prune('-1 day');
-- batches: each call removes at most its batch
INSERT INTO processing_jobs (video_id, status, created_at, completed_at)
SELECT '00000000-0000-0000-0000-0000000000e2', 'completed', now() - interval '90 days' + i * interval '1 s',
	   now() - interval '90 days'
  FROM generate_series(1, 25) i;
SELECT vproxy_internal.prune_batch(interval '1 day', interval '1 day', 10) AS removed;
SELECT vproxy_prune() AS removed;
SELECT count(*) AS left_of_e2 FROM processing_jobs WHERE video_id = '00000000-0000-0000-0000-0000000000e2';
-- a job whose lease still runs (cancelled while running: its child may still
-- be stopping) is kept until the lease expires, whatever its age
INSERT INTO processing_jobs (id, video_id, status, created_at, completed_at, lease_expires_at, lease_holder)
VALUES ('00000000-0000-0000-0000-0000000000fa', '00000000-0000-0000-0000-0000000000e2', 'cancelled',
		now() - interval '99 days', now() - interval '99 days', now() + interval '1 minute', 'w');
SELECT vproxy_prune('1 second') AS removed;
SELECT count(*) AS lingering_kept FROM processing_jobs WHERE id = '00000000-0000-0000-0000-0000000000fa';
UPDATE processing_jobs SET lease_expires_at = now() - interval '1 second'
 WHERE id = '00000000-0000-0000-0000-0000000000fa';
SELECT vproxy_prune('1 second') AS removed;
SELECT count(*) AS expired_removed FROM processing_jobs WHERE id = '00000000-0000-0000-0000-0000000000fa';

-- nobody but the superuser may prune unless granted
CREATE ROLE vproxy_regress_pruner;
GRANT USAGE ON SCHEMA vproxy TO vproxy_regress_pruner;
SET ROLE vproxy_regress_pruner;
SELECT vproxy.vproxy_prune();
RESET ROLE;
REVOKE USAGE ON SCHEMA vproxy FROM vproxy_regress_pruner;
DROP ROLE vproxy_regress_pruner;

-- the secret (test/regress.conf) is not an oracle: a right and a wrong guess
-- come back alike, each as it was sent (only the server log stars it)
SELECT 'regress-secret-do-not-show'::int;
SELECT 'regress-secret-do-not-shoX'::int;
DO $$ BEGIN RAISE NOTICE 'guess: %', 'regress-secret-do-not-show'; END $$;
DO $$ BEGIN RAISE NOTICE 'guess: %', 'regress-secret-do-not-shoX'; END $$;
TRUNCATE videos CASCADE;
