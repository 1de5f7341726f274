/*
 * media_fuzz.c
 *		libFuzzer target over the media room: each input is written to a
 *		file and given to probe, thumbnail and proxy, as vproxy-transcode
 *		would.  Besides what the sanitizers and libFuzzer catch (crashes,
 *		memory errors, undefined behaviour, leaks, hangs with -timeout), it
 *		aborts on what the media room promises never to do with a local
 *		file: a transient status (75: a retry cannot help a file that is
 *		already here), any status but 0 and 65 (66, 70, 77: the input exists,
 *		the folder is writable), a success without its output, or a file
 *		left behind in the working folder.  With MEDIA_FUZZ_FORMAT_LOG set,
 *		it appends a line per input to that file: the demuxer that opened
 *		it (else the one libavformat's probe takes it for) and whether probe
 *		accepted it, the record per container (test/fuzz/formats).  Built by test/fuzz/build.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libavformat/avformat.h>

#include "media/media.h"

/* the longest video (by the probe) the target makes a proxy of, in seconds */
#define PROXY_SECONDS_MAX 120

static char work_dir[4096];
static char input_path[4200];
static char thumbnail_path[4200];
static char proxy_path[4200];
static FILE *format_log;

/* Stop the run with a message libFuzzer keeps with the crashing input. */
static void
defect(const char *command, int status, const char *why)
{
	fprintf(stderr, "media_fuzz: %s ended with status %d: %s\n", command, status, why);
	abort();
}

/* A status the media room may give for a local file of any content. */
static void
check_status(const char *command, int status, const char *why)
{
	if (status != 0 && status != EX_DATAERR)
		defect(command, status, why);
}

/* Everything in the working folder must be one of the expected files. */
static void
check_left_behind(bool thumbnail_made, bool proxy_made)
{
	DIR		   *dir = opendir(work_dir);
	struct dirent *entry;

	if (dir == NULL)
		defect("opendir", errno, strerror(errno));
	while ((entry = readdir(dir)) != NULL)
	{
		const char *name = entry->d_name;

		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || strcmp(name, "input") == 0 ||
			(thumbnail_made && strcmp(name, "thumbnail.jpg") == 0) ||
			(proxy_made && strcmp(name, "proxy.mp4") == 0))
			continue;
		fprintf(stderr, "media_fuzz: file left behind: %s/%s\n", work_dir, name);
		abort();
	}
	closedir(dir);
	if ((thumbnail_made && access(thumbnail_path, F_OK) != 0) ||
		(proxy_made && access(proxy_path, F_OK) != 0))
		defect("a command", 0, "succeeded without writing its output");
	unlink(thumbnail_path);
	unlink(proxy_path);
}

/* Make the working folder once. */
int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");

	(void) argc;
	(void) argv;
	snprintf(work_dir, sizeof(work_dir), "%s/media-fuzz-XXXXXX", tmp != NULL ? tmp : "/tmp");
	if (mkdtemp(work_dir) == NULL)
	{
		perror("mkdtemp");
		exit(1);
	}
	snprintf(input_path, sizeof(input_path), "%s/input", work_dir);
	snprintf(thumbnail_path, sizeof(thumbnail_path), "%s/thumbnail.jpg", work_dir);
	snprintf(proxy_path, sizeof(proxy_path), "%s/proxy.mp4", work_dir);
	if (getenv("MEDIA_FUZZ_FORMAT_LOG") != NULL &&
		(format_log = fopen(getenv("MEDIA_FUZZ_FORMAT_LOG"), "a")) == NULL)
	{
		perror("MEDIA_FUZZ_FORMAT_LOG");
		exit(1);
	}
	return 0;
}

/*
 * Note which demuxer an input went to, and whether probe accepted it: the
 * one that opened it, else the one libavformat's probe takes it for.
 */
static void
note_format(const uint8_t *data, size_t size, int probe_status, const MediaInfo *info)
{
	AVProbeData probe = {.filename = input_path};
	const AVInputFormat *format;
	uint8_t    *buffer;
	int			score = 0;

	if (format_log == NULL)
		return;
	if (probe_status == 0)
	{
		fprintf(format_log, "%s accepted\n", info->format_name);
		fflush(format_log);
		return;
	}
	buffer = calloc(1, size + AVPROBE_PADDING_SIZE);
	if (buffer == NULL)
		defect("noting the format", ENOMEM, strerror(ENOMEM));
	memcpy(buffer, data, size);
	probe.buf = buffer;
	probe.buf_size = (int) size;
	format = av_probe_input_format3(&probe, 1, &score);
	fprintf(format_log, "%s refused\n", format != NULL ? format->name : "(none)");
	fflush(format_log);
	free(buffer);
}

/* One input through the three commands. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FILE	   *file = fopen(input_path, "wb");
	MediaInfo	info;
	ThumbnailOptions thumbnail_options;
	ThumbnailInfo thumbnail_info;
	ProxyOptions proxy_options;
	char		why[MEDIA_WHY_MAX];
	int			probe_status;
	int			thumbnail_status;
	int			proxy_status;

	if (file == NULL || fwrite(data, 1, size, file) != size || fclose(file) != 0)
		defect("writing the input", errno, strerror(errno));

	probe_status = media_probe(input_path, NULL, &info, why);
	check_status("probe", probe_status, why);
	note_format(data, size, probe_status, &info);

	media_thumbnail_defaults(&thumbnail_options);
	thumbnail_status = media_make_thumbnail(input_path, thumbnail_path, &thumbnail_options,
											NULL, &thumbnail_info, why);
	check_status("thumbnail", thumbnail_status, why);

	/*
	 * the documented settings, but x264's fastest preset; not for a video
	 * the probe times at more than PROXY_SECONDS_MAX: a few bytes may state
	 * hours (up to the 48 vproxy accepts), whose proxy is hours of copies of
	 * one frame, a question of time (the job's deadline) and not of safety
	 */
	media_proxy_defaults(&proxy_options);
	snprintf(proxy_options.preset, sizeof(proxy_options.preset), "ultrafast");
	if (probe_status == 0 && info.duration_seconds > PROXY_SECONDS_MAX)
	{
		check_left_behind(thumbnail_status == 0, false);
		unlink(input_path);
		return 0;
	}
	proxy_status = media_make_proxy(input_path, proxy_path, &proxy_options, NULL, &info, why);
	check_status("proxy", proxy_status, why);

	/* what probe accepts, the others make something of */
	if (probe_status == 0 && (thumbnail_status != 0 || proxy_status != 0))
		fprintf(stderr, "media_fuzz: note: probe accepted, thumbnail %d, proxy %d: %s\n",
				thumbnail_status, proxy_status, why);
	check_left_behind(thumbnail_status == 0, proxy_status == 0);
	unlink(input_path);
	return 0;
}
