-- The settings: names and defaults of DESIGN.md, the secret never shown.
CREATE EXTENSION IF NOT EXISTS vproxy;
SELECT name, setting, unit, context FROM pg_settings
 WHERE name LIKE 'vproxy.%' AND name NOT IN ('vproxy.storage_url', 'vproxy.database')
 ORDER BY name;
SELECT setting, context FROM pg_settings WHERE name = 'vproxy.database';
-- the secret is set (test/regress.conf) but never shown, not even to a superuser
SHOW vproxy.s3_secret_access_key;
SELECT current_setting('vproxy.s3_secret_access_key');
SELECT count(*) AS secret_in_show_all FROM pg_settings WHERE setting LIKE '%regress-secret%';
-- the key id is for superusers only
CREATE ROLE vproxy_regress_nobody;
SET ROLE vproxy_regress_nobody;
SHOW vproxy.s3_access_key_id;
SHOW vproxy.s3_secret_access_key;
SELECT count(*) AS visible FROM pg_settings WHERE name LIKE 'vproxy.s3_%_key%';
RESET ROLE;
DROP ROLE vproxy_regress_nobody;
-- bad values are refused with the reason
SET vproxy.storage_url = 'ftp://example';
ALTER SYSTEM SET vproxy.storage_url = 'ftp://example';
ALTER SYSTEM SET vproxy.proxy_key_template = 'videos/{mall_id}/proxy.mp4';
ALTER SYSTEM SET vproxy.job_timeout = 0;
ALTER SYSTEM SET vproxy.child_nice = 20;
ALTER SYSTEM SET vproxy.child_memory_limit = '10MB';
ALTER SYSTEM SET vproxy.transcode_threads = -1;
-- settings that would fail every job are refused where they are made
ALTER SYSTEM SET vproxy.proxy_key_template = 'videos/{mall}/proxy/{video_id}.mp4';
ALTER SYSTEM SET vproxy.proxy_key_template = '/srv/videos/{video_id}.mp4';
ALTER SYSTEM SET vproxy.proxy_key_template = 'videos/../{video_id}.mp4';
ALTER SYSTEM SET vproxy.thumbnail_key_template = 'thumbnails/{mall_id}-{video_id}.jpg';
ALTER SYSTEM SET vproxy.thumbnail_key_template = 'thumbnails//{video_id}.jpg';
ALTER SYSTEM SET vproxy.upload_prefix_template = 'uploads/{mall_id}';
ALTER SYSTEM SET vproxy.upload_prefix_template = 'uploads/{video_id}/';
ALTER SYSTEM SET vproxy.upload_prefix_template = '/uploads/{mall_id}/';
ALTER SYSTEM SET vproxy.upload_prefix_template = 'uploads/{tenant}/';
ALTER SYSTEM SET vproxy.storage_url = 's3://Bad_Bucket';
ALTER SYSTEM SET vproxy.storage_url = 's3://ab';
ALTER SYSTEM SET vproxy.storage_url = 's3://media/../up';
ALTER SYSTEM SET vproxy.s3_region = 'us east 1';
ALTER SYSTEM SET vproxy.s3_region = '';
ALTER SYSTEM SET vproxy.s3_endpoint = 'minio:9000';
ALTER SYSTEM SET vproxy.s3_endpoint = 'http://user@minio:9000';
ALTER SYSTEM SET vproxy.segment_duration = '5s';
ALTER SYSTEM SET vproxy.split_min_duration = '-1';
-- good values pass (then reset)
ALTER SYSTEM SET vproxy.proxy_key_template = 'p/{mall_id}/{pin_id}/{video_id}.mp4';
ALTER SYSTEM SET vproxy.upload_prefix_template = '';
ALTER SYSTEM SET vproxy.upload_prefix_template = 'tenants/{mall_id}/originals/';
ALTER SYSTEM SET vproxy.storage_url = 's3://media.example-1/prefix/';
ALTER SYSTEM SET vproxy.s3_region = 'auto';
ALTER SYSTEM SET vproxy.s3_endpoint = 'https://s3.example.com:9000/base';
ALTER SYSTEM SET vproxy.split_min_duration = 0;
ALTER SYSTEM RESET ALL;
-- the postmaster ones cannot change at run time
SET vproxy.workers = 3;
-- nothing else may be invented under the vproxy prefix
SET vproxy.no_such_setting = 1;
