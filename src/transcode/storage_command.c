/*
 * storage_command.c
 *		`vproxy-transcode storage get|put|head|delete|presign|read|
 *		delete-prefix`: the storage room's operations by hand, for checking a
 *		configuration (and for the tests of ranged reads and prefix removal).  Settings come
 *		from the environment so that secrets never appear on a command line:
 *		VPROXY_STORAGE_URL, VPROXY_S3_ENDPOINT, VPROXY_S3_REGION,
 *		VPROXY_S3_ACCESS_KEY_ID, VPROXY_S3_SECRET_ACCESS_KEY and
 *		VPROXY_S3_SESSION_TOKEN (else AWS_ACCESS_KEY_ID,
 *		AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN), VPROXY_S3_CA_FILE.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/child_limits.h"
#include "storage/storage.h"
#include "transcode/commands.h"

#define DEFAULT_PRESIGN_SECONDS 3600
#define MAX_RANGES 64

/* Stage names of the progress channel, passed as the progress hook's arg. */
static char download_stage[] = "download";
static char upload_stage[] = "upload";

static const char storage_usage[] =
"usage: vproxy-transcode storage get KEY FILE [--progress-fd N]\n"
"       vproxy-transcode storage put FILE KEY [--content-type TYPE] [--progress-fd N]\n"
"       vproxy-transcode storage head KEY\n"
"       vproxy-transcode storage delete KEY\n"
"       vproxy-transcode storage presign KEY [--expires SECONDS]\n"
"       vproxy-transcode storage read KEY FILE --range OFFSET:LENGTH... [--readahead BYTES]\n"
"       vproxy-transcode storage delete-prefix PREFIX/\n"
"settings: VPROXY_STORAGE_URL (file:///dir or s3://bucket[/prefix]), VPROXY_S3_ENDPOINT,\n"
"          VPROXY_S3_REGION, VPROXY_S3_ACCESS_KEY_ID, VPROXY_S3_SECRET_ACCESS_KEY,\n"
"          VPROXY_S3_SESSION_TOKEN (else AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,\n"
"          AWS_SESSION_TOKEN), VPROXY_S3_CA_FILE\n";

/* The parsed command line of one storage operation. */
typedef struct StorageArgs
{
	const char *operation;
	const char *operands[2];
	int			operand_count;
	const char *content_type;
	int			expires_seconds;
	int64_t		ranges[MAX_RANGES][2];	/* read: offset, length */
	int			range_count;
	int64_t		readahead;
} StorageArgs;

/* The first non-empty environment variable of the two (second may be NULL). */
static const char *
env_setting(const char *name, const char *fallback)
{
	const char *value = getenv(name);

	if ((value == NULL || value[0] == '\0') && fallback != NULL)
		value = getenv(fallback);
	return value ? value : "";
}

/* Print the usage and a usage failure. */
static int
usage_error(const char *fmt, const char *detail)
{
	fputs(storage_usage, stderr);
	return transcode_fail(EX_USAGE, fmt, detail);
}

/* Split argv into the operation, its operands and its options. */
static int
parse_storage_args(int argc, char **argv, StorageArgs *args)
{
	memset(args, 0, sizeof(*args));
	args->expires_seconds = DEFAULT_PRESIGN_SECONDS;
	if (argc < 2)
		return usage_error("storage: %s", "no operation given");
	args->operation = argv[1];
	for (int i = 2; i < argc; i++)
	{
		const char *arg = argv[i];
		bool		has_value = i + 1 < argc;

		if (strcmp(arg, "--content-type") == 0 && strcmp(args->operation, "put") == 0 && has_value)
			args->content_type = argv[++i];
		else if (strcmp(arg, "--expires") == 0 && strcmp(args->operation, "presign") == 0 &&
				 has_value)
		{
			if (!child_limits_parse_int(argv[++i], &args->expires_seconds))
				return usage_error("storage presign: --expires wants whole seconds, not \"%s\"",
								   argv[i]);
		}
		else if (strcmp(arg, "--range") == 0 && strcmp(args->operation, "read") == 0 && has_value)
		{
			long long	offset;
			long long	length;
			int			end = 0;

			if (args->range_count == MAX_RANGES ||
				sscanf(argv[++i], "%lld:%lld%n", &offset, &length, &end) != 2 ||
				argv[i][end] != '\0' || offset < 0 || length < 0 || length > (1 << 30))
				return usage_error("storage read: --range wants OFFSET:LENGTH (at most 64 of them, 1 GiB each), not \"%s\"",
								   argv[i]);
			args->ranges[args->range_count][0] = offset;
			args->ranges[args->range_count++][1] = length;
		}
		else if (strcmp(arg, "--readahead") == 0 && strcmp(args->operation, "read") == 0 &&
				 has_value)
		{
			int			readahead;

			if (!child_limits_parse_int(argv[++i], &readahead) || readahead < 0)
				return usage_error("storage read: --readahead wants a number of bytes, not \"%s\"",
								   argv[i]);
			args->readahead = readahead;
		}
		else if (strcmp(arg, "--progress-fd") == 0 && has_value)
		{
			if (!transcode_progress_open(argv[++i]))
				return usage_error("storage: --progress-fd wants an open file descriptor, not \"%s\"",
								   argv[i]);
		}
		else if (strncmp(arg, "--", 2) == 0)
			return usage_error("storage: unknown or incomplete option %s", arg);
		else if (args->operand_count < 2)
			args->operands[args->operand_count++] = arg;
		else
			return usage_error("storage: unexpected argument \"%s\"", arg);
	}
	return 0;
}

/* Progress hook: forward a transfer's bytes to the progress channel. */
static void
report_transfer(int64_t done, int64_t total, void *stage)
{
	transcode_progress_report(total > 0 ? (double) done / (double) total : 0.0, stage);
}

/* The size of a local file, -1 if it cannot be read. */
static json_int_t
local_file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (json_int_t) st.st_size : -1;
}

/* Read the asked ranges of an object into a local file, one after the other. */
static int
read_ranges(Storage *storage, const StorageArgs *args, char *why)
{
	StorageHooks hooks = {transcode_stop_requested, NULL, NULL};
	StorageReader *reader;
	json_t	   *ranges;
	FILE	   *out;
	int			status;

	status = storage_reader_open(storage, args->operands[0], args->readahead, &hooks, &reader,
								 why);
	if (status != 0)
		return transcode_fail(status, "storage read: %s", why);
	ranges = json_array();
	out = fopen(args->operands[1], "wb");
	if (out == NULL)
		status = transcode_fail(EX_CANTCREAT, "storage read: cannot write %s: %s",
								args->operands[1], strerror(errno));
	for (int i = 0; status == 0 && i < args->range_count; i++)
	{
		char	   *buffer = malloc(args->ranges[i][1] + 1);
		size_t		got = 0;

		if (buffer == NULL)
			status = transcode_fail(EX_SOFTWARE, "storage read: out of memory");
		else if ((status = storage_reader_read(reader, args->ranges[i][0], buffer,
											   args->ranges[i][1], &got, why)) != 0)
			status = transcode_fail(status, "storage read: %s", why);
		else if (fwrite(buffer, 1, got, out) != got)
			status = transcode_fail(EX_IOERR, "storage read: cannot write %s", args->operands[1]);
		else
			json_array_append_new(ranges, json_pack("{s:I, s:I, s:I}",
													"offset", (json_int_t) args->ranges[i][0],
													"length", (json_int_t) args->ranges[i][1],
													"got", (json_int_t) got));
		free(buffer);
	}
	if (out != NULL && fclose(out) != 0 && status == 0)
		status = transcode_fail(EX_IOERR, "storage read: cannot write %s", args->operands[1]);
	if (status == 0)
	{
		StorageReadCounts counts = storage_reader_counts(reader);

		status = transcode_print_json(json_pack("{s:s, s:I, s:o, s:I, s:I}", "key",
												args->operands[0], "size_bytes",
												(json_int_t) storage_reader_size(reader),
												"ranges", ranges,
												"bytes_fetched", (json_int_t) counts.bytes,
												"requests", (json_int_t) counts.requests));
		ranges = NULL;
	}
	json_decref(ranges);
	storage_reader_close(reader);
	return status;
}

/* Run the parsed operation on an open storage handle. */
static int
run_operation(Storage *storage, const StorageArgs *args)
{
	char		why[STORAGE_WHY_MAX];
	const char *op = args->operation;
	const char *const *operand = args->operands;
	int			status;

	if (strcmp(op, "get") == 0)
	{
		StorageHooks hooks = {transcode_stop_requested, report_transfer, download_stage};

		status = storage_get(storage, operand[0], operand[1], &hooks, why);
		if (status == 0)
			return transcode_print_json(json_pack("{s:s, s:s, s:I}", "key", operand[0], "file", operand[1],
										"size_bytes", local_file_size(operand[1])));
	}
	else if (strcmp(op, "put") == 0)
	{
		StorageHooks hooks = {transcode_stop_requested, report_transfer, upload_stage};
		const char *type = args->content_type ? args->content_type : "application/octet-stream";

		status = storage_put(storage, operand[1], operand[0], type, &hooks, why);
		if (status == 0)
			return transcode_print_json(json_pack("{s:s, s:s, s:I, s:s}", "key", operand[1],
										"file", operand[0],
										"size_bytes", local_file_size(operand[0]),
										"content_type", type));
	}
	else if (strcmp(op, "head") == 0)
	{
		StorageObjectInfo info;

		status = storage_head(storage, operand[0], &info, why);
		if (status == 0)
			return transcode_print_json(json_pack("{s:s, s:I, s:s, s:s}", "key", operand[0],
										"size_bytes", (json_int_t) info.size_bytes,
										"etag", info.etag, "content_type", info.content_type));
	}
	else if (strcmp(op, "read") == 0)
		return read_ranges(storage, args, why);
	else if (strcmp(op, "delete-prefix") == 0)
	{
		StorageHooks hooks = {transcode_stop_requested, NULL, NULL};
		int64_t		removed;

		status = storage_delete_prefix(storage, operand[0], &hooks, &removed, why);
		if (status == 0)
			return transcode_print_json(json_pack("{s:s, s:I}", "prefix", operand[0],
												  "removed", (json_int_t) removed));
	}
	else if (strcmp(op, "delete") == 0)
	{
		status = storage_delete(storage, operand[0], why);
		if (status == 0)
			return transcode_print_json(json_pack("{s:s, s:b}", "key", operand[0], "deleted", 1));
	}
	else
	{
		char	   *url;

		status = storage_presign(storage, operand[0], args->expires_seconds, &url, why);
		if (status == 0)
		{
			json_t	   *result = json_pack("{s:s, s:s, s:i}", "key", operand[0], "url", url,
										   "expires_seconds", args->expires_seconds);

			free(url);
			return transcode_print_json(result);
		}
	}
	return transcode_fail(status, "storage %s: %s", op, why);
}

/* vproxy-transcode storage OPERATION ...: one JSON object on success. */
int
cmd_storage(int argc, char **argv)
{
	static const struct
	{
		const char *name;
		int			operands;
	}			operations[] = {
		{"get", 2}, {"put", 2}, {"head", 1}, {"delete", 1}, {"presign", 1}, {"read", 2},
		{"delete-prefix", 1},
	};
	StorageArgs args;
	StorageConfig config;
	Storage    *storage;
	char		why[STORAGE_WHY_MAX];
	int			status;
	bool		known = false;

	if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0))
	{
		fputs(storage_usage, stdout);
		return 0;
	}
	status = parse_storage_args(argc, argv, &args);
	if (status != 0)
		return status;
	for (size_t i = 0; i < sizeof(operations) / sizeof(operations[0]); i++)
	{
		if (strcmp(args.operation, operations[i].name) != 0)
			continue;
		known = true;
		if (args.operand_count != operations[i].operands)
			return usage_error("storage %s: wrong number of arguments", args.operation);
	}
	if (!known)
		return usage_error("storage: unknown operation \"%s\"", args.operation);

	config.url = env_setting("VPROXY_STORAGE_URL", NULL);
	config.s3_endpoint = env_setting("VPROXY_S3_ENDPOINT", NULL);
	config.s3_region = env_setting("VPROXY_S3_REGION", NULL);
	config.access_key_id = env_setting("VPROXY_S3_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID");
	config.secret_access_key = env_setting("VPROXY_S3_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY");
	config.session_token = env_setting("VPROXY_S3_SESSION_TOKEN", "AWS_SESSION_TOKEN");
	config.ca_file = env_setting("VPROXY_S3_CA_FILE", NULL);
	status = storage_open(&config, &storage, why);
	if (status != 0)
		return transcode_fail(status, "storage: %s", why);
	status = run_operation(storage, &args);
	storage_close(storage);
	return status;
}
