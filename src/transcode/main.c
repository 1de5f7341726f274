/*
 * main.c
 *		Entry point of vproxy-transcode: dispatch to a command.
 */
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sysexits.h>

#include "transcode/commands.h"

typedef struct Command
{
	const char *name;
	int			(*run) (int argc, char **argv);
} Command;

static const Command commands[] = {
	{"probe", cmd_probe},
	{"proxy", cmd_proxy},
	{"thumbnail", cmd_thumbnail},
	{"job", cmd_job},
	{"storage", cmd_storage},
	{"plan", cmd_plan},
	{"segment", cmd_segment},
	{"audio", cmd_audio},
	{"stitch", cmd_stitch},
};

static const char usage_text[] =
"usage: vproxy-transcode probe INPUT [LIMITS]\n"
"       vproxy-transcode proxy INPUT OUTPUT [--height N] [--fps N] [--crf N] [--preset NAME]\n"
"                                           [--audio-bitrate BPS] [--progress-fd N] [LIMITS]\n"
"       vproxy-transcode thumbnail INPUT OUTPUT [--at SECONDS] [--width N] [LIMITS]\n"
"       vproxy-transcode job [--progress-fd N]   (job spec JSON on stdin)\n"
"       vproxy-transcode storage get|put|head|delete|presign|read|delete-prefix ...\n"
"                                           (settings in the environment; storage --help)\n"
"       vproxy-transcode plan INPUT [--segment-seconds S] [proxy options]\n"
"       vproxy-transcode segment INPUT CHUNK --first N [--next M] [--interlaced 0|1] [proxy options]\n"
"       vproxy-transcode audio INPUT CHUNK [--audio-bitrate BPS]\n"
"       vproxy-transcode stitch OUTPUT [--audio CHUNK] --segment CHUNK...\n"
"LIMITS: --threads N (decoder, filters and x264 together; 0 = cores) --nice N (0-19)\n"
"        --memory-limit SIZE (address space, such as 4GB or 512MB; 0 = none; default 4GB)\n"
"        --yield-to-postmaster PID --yield-db-cpu PCT (pause while that server's processes\n"
"        use more than PCT % of one CPU)\n";

/*
 * No core files: a crash on a hostile upload must not write the job spec
 * (credentials included) into the supervisor's directory, nor fill its disk.
 */
static void
disable_core_dumps(void)
{
	struct rlimit no_core = {0, 0};

	setrlimit(RLIMIT_CORE, &no_core);
}

int
main(int argc, char **argv)
{
	disable_core_dumps();
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0))
	{
		fputs(usage_text, stdout);
		return 0;
	}
	if (argc >= 2)
	{
		for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		{
			if (strcmp(argv[1], commands[i].name) == 0)
			{
				transcode_install_stop_handlers();
				return commands[i].run(argc - 1, argv + 1);
			}
		}
	}
	fputs(usage_text, stderr);
	return transcode_fail(EX_USAGE, "%s", argc < 2 ? "no command given" : "unknown command");
}
