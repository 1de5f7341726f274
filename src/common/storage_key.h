/*
 * storage_key.h
 *		The one rule for storage keys, and the key templates that make them:
 *		what the file backend, the S3 backend, presigning (vproxy.so) and the
 *		trigger on vproxy.videos accept, so that a key refused anywhere is
 *		refused everywhere.  Plain C, no dependency beyond libc.
 *
 * A key is not empty, relative, at most STORAGE_KEY_MAX bytes of valid
 * UTF-8, with no empty, "." or ".." path component and no control
 * character (C0, DEL or C1).  An output key (made from a template) also
 * holds no brace: the trace of an unfilled placeholder.
 *
 * Templates know three placeholders, {mall_id}, {pin_id} and {video_id}.
 * The path segment that holds {mall_id} holds no other placeholder: the
 * expansion up to that segment is the tenant's prefix, and it must tell
 * tenants apart.
 */
#ifndef VPROXY_COMMON_STORAGE_KEY_H
#define VPROXY_COMMON_STORAGE_KEY_H

#include <stdbool.h>
#include <stddef.h>

/* the longest key S3 accepts, in bytes; the file backend takes as much */
#define STORAGE_KEY_MAX 1024

/* What fills the placeholders of a template; NULL fills in "". */
typedef struct StorageKeyNames
{
	const char *mall_id;
	const char *pin_id;
	const char *video_id;
} StorageKeyNames;

/* NULL if key is a safe storage key, else why not (a phrase: "is absolute"). */
extern const char *storage_key_problem(const char *key);

/* The same for a key made from a template: also no brace. */
extern const char *storage_key_output_problem(const char *key);

/*
 * NULL if template can make output keys: known placeholders only, at least
 * {video_id} (or every video would share one key), {mall_id} alone in its
 * path segment, and the keys it makes pass the rule; else why not.
 */
extern const char *storage_key_template_problem(const char *template);

/*
 * NULL if template can be vproxy.upload_prefix_template: empty (no rule),
 * or {mall_id} and {pin_id} only, {mall_id} alone in its path segment,
 * ending with '/', and a safe key once filled in; else why not.
 */
extern const char *storage_key_prefix_template_problem(const char *template);

/*
 * Fill template's placeholders into buffer (size bytes, NUL-terminated).
 * False if the result does not fit.  Unknown placeholders are copied as
 * they are (the template checks refuse them beforehand).
 */
extern bool storage_key_expand(const char *template, const StorageKeyNames *names,
							   char *buffer, size_t size);

/*
 * The tenant's prefix a template gives: its expansion up to the end of the
 * path segment holding {mall_id}, with the slash after it.  False if the
 * template has no such segment (or the prefix does not fit).
 */
extern bool storage_key_tenant_prefix(const char *template, const StorageKeyNames *names,
									  char *buffer, size_t size);

/*
 * Whether some names filled into template could make key (each placeholder
 * any run of characters within one path segment): a key of the outputs.
 */
extern bool storage_key_template_matches(const char *template, const char *key);

#endif							/* VPROXY_COMMON_STORAGE_KEY_H */
