/*
 * settings.h
 *		The vproxy.* settings (GUCs) and the values derived from them.
 */
#ifndef VPROXY_SETTINGS_H
#define VPROXY_SETTINGS_H

/* postmaster settings */
extern char *vproxy_database;
extern int	vproxy_workers;

/* reloadable settings */
extern char *vproxy_storage_url;
extern char *vproxy_s3_endpoint;
extern char *vproxy_s3_region;
extern char *vproxy_s3_access_key_id;
extern char *vproxy_s3_secret_access_key;
extern char *vproxy_s3_session_token;
extern char *vproxy_s3_ca_file;
extern int	vproxy_job_timeout;
extern int	vproxy_retry_delay;
extern int	vproxy_max_attempts;
extern int	vproxy_lease_duration;
extern int	vproxy_job_retention;
extern int	vproxy_failed_job_retention;
extern char *vproxy_transcode_path;
extern char *vproxy_temp_directory;
extern char *vproxy_proxy_key_template;
extern char *vproxy_thumbnail_key_template;
extern char *vproxy_upload_prefix_template;
extern int	vproxy_split_min_duration;	/* seconds, 0 = never */
extern int	vproxy_segment_duration;	/* seconds */
extern int	vproxy_child_nice;
extern int	vproxy_transcode_threads;
extern int	vproxy_child_memory_limit;	/* MB, 0 = none */
extern int	vproxy_child_yield_db_cpu;	/* percent of one CPU, 0 = never */

/* Define every vproxy.* setting; called from _PG_init. */
extern void define_settings(void);

/* The program the workers run: the setting, or vproxy-transcode beside postgres. */
extern const char *transcode_program(void);

#endif							/* VPROXY_SETTINGS_H */
