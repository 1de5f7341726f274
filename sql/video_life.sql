-- The life of a video from SQL with workers off: URLs (local-directory
-- storage here; S3 signing is checked by test/t/370_presign.pl), deletion
-- through its job, reprocessing, and the listing indexes.
CREATE EXTENSION IF NOT EXISTS vproxy;
SET search_path = vproxy, public;
TRUNCATE videos CASCADE;

INSERT INTO videos (id, mall_id, pin_id, original_path, proxy_path)
VALUES ('00000000-0000-0000-0000-0000000000f1', 'm1', 'p1', 'uploads/m1/a b+c.mov', 'videos/m1/proxy/f1.mp4');

-- file:// storage: the absolute path; a file still to be made: NULL
SELECT vproxy_url('00000000-0000-0000-0000-0000000000f1') AS proxy,
	   vproxy_url('00000000-0000-0000-0000-0000000000f1', 'thumbnail') AS thumbnail,
	   vproxy_url('00000000-0000-0000-0000-0000000000f1', 'original', '5 minutes') AS original,
	   vproxy_upload_url('00000000-0000-0000-0000-0000000000f1') AS upload;
-- clear errors
SELECT vproxy_url('00000000-0000-0000-0000-0000000000ff');
SELECT vproxy_url('00000000-0000-0000-0000-0000000000f1', 'poster');
SELECT vproxy_url('00000000-0000-0000-0000-0000000000f1', 'proxy', '0 seconds');
SELECT vproxy_url('00000000-0000-0000-0000-0000000000f1', 'proxy', '8 days');
SELECT vproxy_upload_url('00000000-0000-0000-0000-0000000000ff');

-- reprocess: a new proxy job with its params (checked like any enqueue)
SELECT vproxy_reprocess('00000000-0000-0000-0000-0000000000f1', '{"height": 720}') AS reprocess_job \gset
SELECT job_type, status, params FROM processing_jobs WHERE id = :'reprocess_job';
SELECT vproxy_reprocess('00000000-0000-0000-0000-0000000000f1', '{"height": 1}');
-- it runs (claimed), and a metadata job waits
SELECT job_id = :'reprocess_job' AS reprocess_claimed FROM claim_job('w');
SELECT vproxy_enqueue('00000000-0000-0000-0000-0000000000f1', 'metadata_extraction') AS metadata_job \gset

-- delete: the running and queued jobs are stopped, the video is
-- "deleting", the deletion job waits for the stopped job's lease
SELECT vproxy_delete_video('00000000-0000-0000-0000-0000000000f1') AS deletion_job \gset
SELECT job_type, status, error_message, lease_expires_at IS NOT NULL AS lease_lingers
  FROM processing_jobs WHERE video_id = '00000000-0000-0000-0000-0000000000f1' ORDER BY created_at;
SELECT processing_status FROM videos WHERE id = '00000000-0000-0000-0000-0000000000f1';
-- asked again: the same deletion job
SELECT vproxy_delete_video('00000000-0000-0000-0000-0000000000f1') = :'deletion_job' AS same_job;
-- nothing else can be queued, nor the status changed
SELECT vproxy_enqueue('00000000-0000-0000-0000-0000000000f1');
SELECT vproxy_enqueue('00000000-0000-0000-0000-0000000000f1', 'thumbnail_generation');
SELECT vproxy_reprocess('00000000-0000-0000-0000-0000000000f1');
SELECT vproxy_upload_url('00000000-0000-0000-0000-0000000000f1');
UPDATE videos SET processing_status = 'completed' WHERE id = '00000000-0000-0000-0000-0000000000f1';
-- the deletion waits for the stopped job's lease, then is claimed
SELECT * FROM claim_job('w');
UPDATE processing_jobs SET lease_expires_at = now() - interval '1 s' WHERE id = :'reprocess_job';
SELECT job_id = :'deletion_job' AS deletion_claimed, jsonb_pretty(spec - 'job_id' - 'video_id') AS spec
  FROM claim_job('w');
SELECT lease_token AS deletion_token FROM processing_jobs WHERE id = :'deletion_job' \gset
-- its finish deletes the row and the other jobs; its own status stays
SELECT finish_job(:'deletion_job', :'deletion_token', '{"status": "success", "deleted": 3}') AS finished;
SELECT count(*) AS videos_left FROM videos;
SELECT count(*) AS jobs_left FROM processing_jobs;
SELECT vproxy_job_status(:'deletion_job') ->> 'status' AS status,
	   vproxy_job_status(:'deletion_job') -> 'result_data' ->> 'video_id' AS video_id;

-- a deletion that fails for good leaves the video "deleting" with the
-- reason; a new call queues a new deletion
INSERT INTO videos (id, mall_id, original_path)
VALUES ('00000000-0000-0000-0000-0000000000f2', 'm1', 'uploads/m1/f2.mov'),
	   ('00000000-0000-0000-0000-0000000000f3', 'm1', 'uploads/m1/f3.mov');
SELECT count(*) AS queued FROM vproxy_delete_videos(ARRAY['00000000-0000-0000-0000-0000000000f3'::uuid,
	'00000000-0000-0000-0000-0000000000f2', '00000000-0000-0000-0000-0000000000f3']);
SELECT job_id AS failing_job FROM claim_job('w') \gset
SELECT fail_job(:'failing_job', lease_token, 'storage_refused', 'storage refused: AccessDenied', false)
  FROM processing_jobs WHERE id = :'failing_job';
SELECT processing_status, processing_error FROM videos WHERE id = (SELECT video_id FROM processing_jobs WHERE id = :'failing_job');
SELECT vproxy_delete_video(video_id) <> :'failing_job' AS new_deletion
  FROM processing_jobs WHERE id = :'failing_job';

-- cancelling a running job keeps its lease until it expires: the video's
-- next writer waits for it (the child may still be stopping)
INSERT INTO videos (id, mall_id, original_path)
VALUES ('00000000-0000-0000-0000-0000000000f4', 'm1', 'uploads/m1/f4.mov');
SELECT vproxy_enqueue('00000000-0000-0000-0000-0000000000f4', priority => 0) AS first_job \gset
SELECT job_id = :'first_job' AS first_claimed FROM claim_job('w', job_types => ARRAY['proxy_generation']);
SELECT vproxy_cancel(:'first_job') AS cancelled;
SELECT status, lease_token IS NULL AS token_gone, lease_expires_at > now() AS lease_lingers
  FROM processing_jobs WHERE id = :'first_job';
SELECT vproxy_enqueue('00000000-0000-0000-0000-0000000000f4', priority => 0) AS second_job \gset
SELECT * FROM claim_job('w', job_types => ARRAY['proxy_generation']);
SELECT next_claim_at(ARRAY['proxy_generation']) = lease_expires_at AS wakes_at_the_lingering_lease
  FROM processing_jobs WHERE id = :'first_job';
UPDATE processing_jobs SET lease_expires_at = now() - interval '1 s' WHERE id = :'first_job';
SELECT job_id = :'second_job' AS second_claimed FROM claim_job('w', job_types => ARRAY['proxy_generation']);

-- a reprocess that fails leaves the previous run in place: the video stays
-- "completed" with its proxy, and says why the new run failed
INSERT INTO videos (id, mall_id, original_path, proxy_path, thumbnail_path, processing_status,
					processing_completed_at)
VALUES ('00000000-0000-0000-0000-0000000000f6', 'm1', 'uploads/m1/f6.mov', 'videos/m1/proxy/f6.mp4',
		'thumbnails/m1/f6.jpg', 'completed', '2026-01-01');
SELECT vproxy_reprocess('00000000-0000-0000-0000-0000000000f6', '{"height": 2160}') AS redo \gset
SELECT processing_status FROM videos WHERE id = '00000000-0000-0000-0000-0000000000f6';
SELECT job_id = :'redo' AS redo_claimed FROM claim_job('w', job_types => ARRAY['proxy_generation']);
SELECT fail_job(:'redo', lease_token, 'bad_media', 'not a usable video: 2160 lines asked', false)
  FROM processing_jobs WHERE id = :'redo';
SELECT processing_status, processing_error, proxy_path, thumbnail_path, processing_completed_at
  FROM videos WHERE id = '00000000-0000-0000-0000-0000000000f6';

-- listing: each filter of the old API has an index, newest first, keyset
-- pagination on (created_at, id)
TRUNCATE videos CASCADE;
INSERT INTO videos (mall_id, pin_id, original_path, processing_status, created_at)
SELECT 'mall-' || (i % 50), 'pin-' || (i % 500), 'uploads/' || i || '.mov',
	   (ARRAY['pending', 'processing', 'completed', 'failed'])[1 + i % 4],
	   '2026-01-01'::timestamptz + i * interval '1 minute'
  FROM generate_series(1, 20000) i;
ANALYZE videos;
SET enable_seqscan = off;
SET enable_bitmapscan = off;
EXPLAIN (COSTS OFF)
SELECT id, created_at FROM videos
 WHERE mall_id = 'mall-7' AND (created_at, id) < ('2026-01-10', 'ffffffff-ffff-ffff-ffff-ffffffffffff')
 ORDER BY created_at DESC, id DESC LIMIT 20;
EXPLAIN (COSTS OFF)
SELECT id, created_at FROM videos WHERE pin_id = 'pin-7' ORDER BY created_at DESC, id DESC LIMIT 20;
EXPLAIN (COSTS OFF)
SELECT id, created_at FROM videos WHERE processing_status = 'failed'
 ORDER BY created_at DESC, id DESC LIMIT 20;
EXPLAIN (COSTS OFF)
SELECT id, created_at FROM videos WHERE created_at >= '2026-01-02' AND created_at < '2026-01-03'
 ORDER BY created_at DESC, id DESC LIMIT 20;
RESET enable_seqscan;
RESET enable_bitmapscan;
-- the pages are right: the second page starts after the first, newest first
CREATE TEMP TABLE page1 AS
	SELECT id, created_at FROM videos WHERE mall_id = 'mall-7'
	 ORDER BY created_at DESC, id DESC LIMIT 20;
SELECT created_at AS last_at, id AS last_id FROM page1 ORDER BY created_at, id LIMIT 1 \gset
CREATE TEMP TABLE page2 AS
	SELECT id, created_at FROM videos
	 WHERE mall_id = 'mall-7' AND (created_at, id) < (:'last_at', :'last_id')
	 ORDER BY created_at DESC, id DESC LIMIT 20;
SELECT (SELECT count(*) FROM page1) AS page1_rows, (SELECT count(*) FROM page2) AS page2_rows,
	   (SELECT max(created_at) FROM page2) < (SELECT min(created_at) FROM page1) AS in_order,
	   (SELECT count(*) FROM page1 JOIN page2 USING (id)) AS overlap,
	   (SELECT count(*) FROM ((SELECT id FROM videos WHERE mall_id = 'mall-7'
							   ORDER BY created_at DESC, id DESC LIMIT 40)
							  EXCEPT SELECT id FROM page1 EXCEPT SELECT id FROM page2) s) AS missed;
TRUNCATE videos CASCADE;

-- the documented grants (src/server/README.md, read from it) are enough for
-- an application, which cannot sign arbitrary keys itself
CREATE ROLE app LOGIN;
\set grants `test/lib/readme-block 'grants: application'`
:grants
SET ROLE app;
INSERT INTO vproxy.videos (id, mall_id, original_path)
VALUES ('00000000-0000-0000-0000-0000000000f5', 'm1', 'uploads/m1/f5.mov');
SELECT vproxy.vproxy_upload_url('00000000-0000-0000-0000-0000000000f5') AS upload_url;
SELECT vproxy.vproxy_reprocess('00000000-0000-0000-0000-0000000000f5') IS NOT NULL AS reprocessing;
SELECT vproxy.vproxy_delete_video('00000000-0000-0000-0000-0000000000f5') IS NOT NULL AS deleting;
SELECT vproxy_internal.presign('GET', 'any/key', 60);
SELECT * FROM vproxy.claim_job('app', job_types => ARRAY['video_deletion']);
RESET ROLE;
TRUNCATE vproxy.videos CASCADE;
DROP OWNED BY app;
DROP ROLE app;
