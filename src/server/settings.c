/*
 * settings.c
 *		The vproxy.* settings.  Their names, contexts and defaults are part of
 *		the contract (DESIGN.md at the top of the tree, "Settings"); the one
 *		table of them is in src/server/README.md.
 */
#include "postgres.h"

#include <limits.h>

#include "miscadmin.h"
#include "utils/guc.h"

#include "common/s3_location.h"
#include "common/storage_key.h"
#include "settings.h"

char	   *vproxy_database;
int			vproxy_workers;
char	   *vproxy_storage_url;
char	   *vproxy_s3_endpoint;
char	   *vproxy_s3_region;
char	   *vproxy_s3_access_key_id;
char	   *vproxy_s3_secret_access_key;
char	   *vproxy_s3_session_token;
char	   *vproxy_s3_ca_file;
int			vproxy_job_timeout;
int			vproxy_retry_delay;
int			vproxy_max_attempts;
int			vproxy_lease_duration;
int			vproxy_job_retention;
int			vproxy_failed_job_retention;
char	   *vproxy_transcode_path;
char	   *vproxy_temp_directory;
char	   *vproxy_proxy_key_template;
char	   *vproxy_thumbnail_key_template;
char	   *vproxy_upload_prefix_template;
int			vproxy_split_min_duration;
int			vproxy_segment_duration;
int			vproxy_child_nice;
int			vproxy_transcode_threads;
int			vproxy_child_memory_limit;
int			vproxy_child_yield_db_cpu;

/* Show the secret as stars to everybody, superusers included. */
static const char *
show_secret(void)
{
	return (vproxy_s3_secret_access_key && vproxy_s3_secret_access_key[0]) ? "********" : "";
}

/* Show the session token as stars to everybody, superusers included. */
static const char *
show_session_token(void)
{
	return (vproxy_s3_session_token && vproxy_s3_session_token[0]) ? "********" : "";
}

/* Say in errdetail which rule of src/common a value breaks, as a sentence. */
static void
detail_rule(const char *rule)
{
	GUC_check_errdetail("%c%s.", pg_toupper((unsigned char) rule[0]), rule + 1);
}

/*
 * Accept only file:///absolute/dir (no control character) or
 * s3://bucket[/prefix] as src/common/s3_location checks it for every program.
 */
static bool
check_storage_url(char **newval, void **extra, GucSource source)
{
	const char *url = *newval;
	const char *problem;

	if (strncmp(url, "file:///", 8) == 0)
	{
		for (const char *c = url; *c; c++)
			if ((unsigned char) *c < 0x20 || *c == 0x7f)
			{
				GUC_check_errdetail("vproxy.storage_url holds a control character.");
				return false;
			}
		return true;
	}
	if (strncmp(url, "s3://", 5) != 0)
	{
		GUC_check_errdetail("vproxy.storage_url must look like file:///absolute/dir or s3://bucket[/prefix].");
		return false;
	}
	problem = s3_location_check_url(url);
	if (problem != NULL)
	{
		detail_rule(problem);
		return false;
	}
	return true;
}

/* Accept an empty endpoint (AWS) or an endpoint URL as s3_location checks it. */
static bool
check_s3_endpoint(char **newval, void **extra, GucSource source)
{
	const char *problem = s3_location_check_endpoint(*newval);

	if (problem == NULL)
		return true;
	detail_rule(problem);
	return false;
}

/* Accept a region as S3-compatible services name them ("auto" included). */
static bool
check_s3_region(char **newval, void **extra, GucSource source)
{
	const char *problem = s3_location_check_region(*newval);

	if (problem == NULL)
		return true;
	detail_rule(problem);
	return false;
}

/* Key templates: known placeholders, {video_id} in them, keys the key rule accepts. */
static bool
check_key_template(char **newval, void **extra, GucSource source)
{
	const char *problem = storage_key_template_problem(*newval);

	if (problem == NULL)
		return true;
	GUC_check_errdetail("The key template %s.", problem);
	return false;
}

/* The upload prefix: empty, or a template of {mall_id} and {pin_id} ending in '/'. */
static bool
check_upload_prefix_template(char **newval, void **extra, GucSource source)
{
	const char *problem = storage_key_prefix_template_problem(*newval);

	if (problem == NULL)
		return true;
	GUC_check_errdetail("vproxy.upload_prefix_template %s.", problem);
	return false;
}

/* A memory limit is 0 (none) or at least 64MB, below which no child can even start. */
static bool
check_child_memory_limit(int *newval, void **extra, GucSource source)
{
	if (*newval == 0 || *newval >= 64)
		return true;
	GUC_check_errdetail("vproxy.child_memory_limit must be 0 (no limit) or at least 64MB.");
	return false;
}

/* Define every vproxy.* setting. */
void
define_settings(void)
{
	DefineCustomStringVariable("vproxy.database",
							   "Database whose vproxy extension the workers serve.",
							   NULL, &vproxy_database, "postgres",
							   PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("vproxy.workers",
							"Number of background workers that run jobs.",
							"0 starts no launcher and no worker.",
							&vproxy_workers, 1, 0, 64,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("vproxy.storage_url",
							   "Where originals are read and outputs written: file:///dir or s3://bucket[/prefix].",
							   NULL, &vproxy_storage_url,
							   DataDir ? psprintf("file://%s/vproxy_storage", DataDir) : "file:///var/lib/postgresql/vproxy_storage",
							   PGC_SIGHUP, 0, check_storage_url, NULL, NULL);
	DefineCustomStringVariable("vproxy.s3_endpoint",
							   "S3 endpoint URL; empty means AWS, set means path-style requests.",
							   NULL, &vproxy_s3_endpoint, "",
							   PGC_SIGHUP, 0, check_s3_endpoint, NULL, NULL);
	DefineCustomStringVariable("vproxy.s3_region",
							   "S3 region used for request signing.",
							   NULL, &vproxy_s3_region, "us-east-1",
							   PGC_SIGHUP, 0, check_s3_region, NULL, NULL);
	DefineCustomStringVariable("vproxy.s3_access_key_id",
							   "S3 access key id.",
							   NULL, &vproxy_s3_access_key_id, "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY, NULL, NULL, NULL);
	DefineCustomStringVariable("vproxy.s3_secret_access_key",
							   "S3 secret access key (never shown, never logged).",
							   NULL, &vproxy_s3_secret_access_key, "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL, NULL, NULL, show_secret);
	DefineCustomStringVariable("vproxy.s3_session_token",
							   "S3 session token of temporary credentials (never shown); empty means none.",
							   NULL, &vproxy_s3_session_token, "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL, NULL, NULL, show_session_token);
	DefineCustomStringVariable("vproxy.s3_ca_file",
							   "CA bundle for S3 over HTTPS; empty means the system's.",
							   NULL, &vproxy_s3_ca_file, "",
							   PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("vproxy.job_timeout",
							"Longest run of one attempt; then the child is killed and the job retried.",
							NULL, &vproxy_job_timeout, 3600, 1, INT_MAX / 1000,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("vproxy.retry_delay",
							"Delay before the first retry; doubles at each further attempt.",
							NULL, &vproxy_retry_delay, 300, 0, INT_MAX / 1000,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("vproxy.max_attempts",
							"Attempts a job gets before it fails for good (set on new jobs).",
							NULL, &vproxy_max_attempts, 3, 1, 100,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("vproxy.lease_duration",
							"How long a claim stays valid without a heartbeat.",
							"A job whose worker vanished is taken again after this.",
							&vproxy_lease_duration, 60, 10, 86400,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("vproxy.job_retention",
							"How long completed and cancelled jobs are kept; 0 keeps them.",
							"The newest job of a video is kept while the video exists.",
							&vproxy_job_retention, 7 * 86400, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("vproxy.failed_job_retention",
							"How long failed jobs are kept; 0 keeps them.",
							"The newest job of a video is kept while the video exists.",
							&vproxy_failed_job_retention, 30 * 86400, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomStringVariable("vproxy.transcode_path",
							   "Path of the vproxy-transcode program; empty means the one beside postgres.",
							   NULL, &vproxy_transcode_path, "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY, NULL, NULL, NULL);
	DefineCustomStringVariable("vproxy.temp_directory",
							   "Where the child makes its private temp directory; empty means $TMPDIR or /tmp.",
							   NULL, &vproxy_temp_directory, "",
							   PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("vproxy.proxy_key_template",
							   "Storage key of a proxy: {mall_id}, {pin_id} and {video_id} are filled in.",
							   NULL, &vproxy_proxy_key_template, "videos/{mall_id}/proxy/{video_id}.mp4",
							   PGC_SIGHUP, 0, check_key_template, NULL, NULL);
	DefineCustomStringVariable("vproxy.thumbnail_key_template",
							   "Storage key of a thumbnail: {mall_id}, {pin_id} and {video_id} are filled in.",
							   NULL, &vproxy_thumbnail_key_template, "thumbnails/{mall_id}/{video_id}.jpg",
							   PGC_SIGHUP, 0, check_key_template, NULL, NULL);
	DefineCustomStringVariable("vproxy.upload_prefix_template",
							   "What every original_path starts with: {mall_id} and {pin_id} are filled in.",
							   "Empty means no rule (a single-tenant install).",
							   &vproxy_upload_prefix_template, "uploads/{mall_id}/",
							   PGC_SIGHUP, 0, check_upload_prefix_template, NULL, NULL);
	DefineCustomIntVariable("vproxy.split_min_duration",
							"Videos that play at least this long get their proxy made in segments.",
							"0 never splits.",
							&vproxy_split_min_duration, 600, 0, INT_MAX / 1000,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("vproxy.segment_duration",
							"How long one segment of a split proxy plays.",
							NULL, &vproxy_segment_duration, 60, 10, 86400,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("vproxy.child_nice",
							"CPU niceness of the children; above 0 their IO priority is also the lowest best-effort.",
							"0 leaves them at the priority of the server's own processes.",
							&vproxy_child_nice, 10, 0, 19,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("vproxy.transcode_threads",
							"Threads one child's decoder, filters and encoder share.",
							"0 means as many as the cores the server may use.",
							&vproxy_transcode_threads, 0, 0, 256,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("vproxy.child_memory_limit",
							"Address space one child may use; beyond it the attempt fails with \"out of memory\" and is retried.",
							"0 means no limit.",
							&vproxy_child_memory_limit, 4096, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MB, check_child_memory_limit, NULL, NULL);
	DefineCustomIntVariable("vproxy.child_yield_db_cpu",
							"Pause the children while the server's processes use more than this percent of one CPU.",
							"0 never pauses them.  A pause lasts at most 5 s, so a child keeps about 4% of the time.",
							&vproxy_child_yield_db_cpu, 10, 0, 10000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	MarkGUCPrefixReserved("vproxy");
}

/* The program the workers run: the setting, or vproxy-transcode beside postgres. */
const char *
transcode_program(void)
{
	static char beside_postgres[MAXPGPATH];
	char	   *slash;

	if (vproxy_transcode_path[0] != '\0')
		return vproxy_transcode_path;
	strlcpy(beside_postgres, my_exec_path, sizeof(beside_postgres));
	slash = strrchr(beside_postgres, '/');
	if (slash == NULL)
		return "vproxy-transcode";
	strlcpy(slash + 1, "vproxy-transcode", sizeof(beside_postgres) - (slash + 1 - beside_postgres));
	return beside_postgres;
}
