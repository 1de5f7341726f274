/*
 * sandbox.c
 *		The confinement of a run (sandbox.h): no_new_privs, a Landlock
 *		ruleset by raw system calls (glibc has no wrappers, and the kernel
 *		headers a build machine has may know an older ABI than the kernel
 *		it runs on), and a libseccomp filter.
 *
 * Landlock refuses by default every access it handles; the rules below give
 * back what a run needs.  The handled rights are those of the kernel's ABI,
 * up to LANDLOCK_ABI_USED (ABI 7 adds only audit-log flags, whose defaults
 * suit us: a refusal is logged when the kernel audits).  The seccomp filter
 * lets everything else through: it names what a decoder never needs, so that
 * libav, x264, libcurl's resolver and TLS, and glibc's own calls keep
 * working whatever system calls they make.
 *
 * Under AddressSanitizer (the test build, `make asan`) the filter leaves out
 * ptrace, exec, new processes and the signal rule: LeakSanitizer stops the
 * program's threads from a process of its own that ptraces them, and a report
 * may start a symbolizer.  Landlock stays whole: the sanitizers read
 * /proc/self, the program's own executable and its libraries, all allowed.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sysexits.h>
#include <unistd.h>

#include <seccomp.h>

#include "common/s3_location.h"
#include "transcode/sandbox.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

/* The Landlock ABI (linux/landlock.h of 6.15), by its values */
#define LANDLOCK_ABI_USED 6
#define LL_CREATE_RULESET_VERSION (1U << 0)
#define LL_RULE_PATH_BENEATH 1
#define LL_RULE_NET_PORT 2

#define LL_FS_EXECUTE (1ULL << 0)
#define LL_FS_WRITE_FILE (1ULL << 1)
#define LL_FS_READ_FILE (1ULL << 2)
#define LL_FS_READ_DIR (1ULL << 3)
#define LL_FS_REMOVE_DIR (1ULL << 4)
#define LL_FS_REMOVE_FILE (1ULL << 5)
#define LL_FS_MAKE_DIR (1ULL << 7)
#define LL_FS_MAKE_REG (1ULL << 8)
#define LL_FS_REFER (1ULL << 13)	/* ABI 2 */
#define LL_FS_TRUNCATE (1ULL << 14) /* ABI 3 */
#define LL_FS_IOCTL_DEV (1ULL << 15)	/* ABI 5 */
#define LL_FS_ABI1 ((1ULL << 13) - 1)	/* execute .. make_sym */
#define LL_NET_BIND_TCP (1ULL << 0) /* ABI 4 */
#define LL_NET_CONNECT_TCP (1ULL << 1)
#define LL_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0)	/* ABI 6 */
#define LL_SCOPE_SIGNAL (1ULL << 1)

/* the rights a rule on a file (not a directory) may carry */
#define LL_FS_FILE_RIGHTS (LL_FS_EXECUTE | LL_FS_WRITE_FILE | LL_FS_READ_FILE | \
						   LL_FS_TRUNCATE | LL_FS_IOCTL_DEV)
#define READ_RIGHTS (LL_FS_READ_FILE | LL_FS_READ_DIR)
/* no exec, no device, socket, fifo or symbolic link made, no reparenting */
#define WRITE_RIGHTS (READ_RIGHTS | LL_FS_WRITE_FILE | LL_FS_REMOVE_DIR | LL_FS_REMOVE_FILE | \
					  LL_FS_MAKE_DIR | LL_FS_MAKE_REG | LL_FS_TRUNCATE)

struct ll_ruleset_attr
{
	uint64_t	handled_access_fs;
	uint64_t	handled_access_net; /* ABI 4 */
	uint64_t	scoped;			/* ABI 6 */
};

struct ll_path_beneath_attr
{
	uint64_t	allowed_access;
	int32_t		parent_fd;
} __attribute__((packed));

struct ll_net_port_attr
{
	uint64_t	allowed_access;
	uint64_t	port;
};

/* TCP connections of an S3 storage: its endpoint's port, and DNS over TCP */
#define DNS_PORT 53

/*
 * What every run reads: libraries (those glibc loads later too: NSS, gconv),
 * shared data (CA certificates, locales, time zones), and of /etc only what
 * TLS and name resolution read: not /etc as a whole, which holds
 * /etc/postgresql (the configuration, the S3 secret) and /etc/ssl/private.
 */
static const char *const system_files[] = {
	"/usr/lib", "/usr/lib64", "/usr/lib32", "/usr/local/lib", "/lib", "/lib64", "/lib32",
	"/usr/share", "/usr/local/share",
	"/etc/ld.so.cache", "/etc/localtime",
	"/etc/ssl/certs", "/etc/ssl/openssl.cnf",
	"/etc/pki/ca-trust", "/etc/pki/tls/certs", "/etc/pki/tls/openssl.cnf", "/etc/crypto-policies",
	"/etc/resolv.conf", "/etc/hosts", "/etc/host.conf", "/etc/nsswitch.conf", "/etc/gai.conf",
	"/etc/services", "/etc/protocols",
	"/dev/urandom", "/dev/random",
	"/proc/self",				/* the process itself (not its parent, not others) */
	"/proc/self/exe",			/* its own executable, for a sanitizer's symbols */
	"/sys/devices/system/cpu",	/* how many processors (glibc's sysconf) */
	NULL
};

/* The highest Landlock ABI of the kernel, 0 without Landlock (errno says why). */
static int
landlock_abi(void)
{
	long		abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LL_CREATE_RULESET_VERSION);

	return abi < 0 ? 0 : (int) abi;
}

/* The filesystem rights Landlock handles at that ABI. */
static uint64_t
handled_fs(int abi)
{
	return LL_FS_ABI1 | (abi >= 2 ? LL_FS_REFER : 0) | (abi >= 3 ? LL_FS_TRUNCATE : 0) |
		(abi >= 5 ? LL_FS_IOCTL_DEV : 0);
}

/*
 * Allow rights (those handled of them) below a path: a directory, or a file
 * (then only its file rights).  A path that cannot be opened is left out.
 */
static bool
allow_path(int ruleset, const char *path, uint64_t rights, uint64_t handled, char *why)
{
	struct ll_path_beneath_attr rule;
	struct stat st;
	int			fd = open(path, O_PATH | O_CLOEXEC);
	long		rc;

	if (fd < 0)
		return true;
	rule.allowed_access = rights & handled;
	if (fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode))
		rule.allowed_access &= LL_FS_FILE_RIGHTS;
	rule.parent_fd = fd;
	rc = syscall(SYS_landlock_add_rule, ruleset, LL_RULE_PATH_BENEATH, &rule, 0);
	close(fd);
	if (rc != 0)
		snprintf(why, SANDBOX_WHY_MAX, "cannot allow %.300s in the sandbox: %s", path, strerror(errno));
	return rc == 0;
}

/* Allow rights below each path of a NULL-ended list (which may be NULL). */
static bool
allow_paths(int ruleset, const char *const *paths, uint64_t rights, uint64_t handled, char *why)
{
	for (; paths != NULL && *paths != NULL; paths++)
		if (!allow_path(ruleset, *paths, rights, handled, why))
			return false;
	return true;
}

/* Allow writing the directory of each output file (a path too long has none). */
static bool
allow_outputs(int ruleset, const char *const *outputs, uint64_t handled, char *why)
{
	char		copy[PATH_MAX];

	for (; outputs != NULL && *outputs != NULL; outputs++)
		if (snprintf(copy, sizeof(copy), "%s", *outputs) < (int) sizeof(copy) &&
			!allow_path(ruleset, dirname(copy), WRITE_RIGHTS, handled, why))
			return false;
	return true;
}

/* Whether libcurl would go through a proxy named in the environment. */
static bool
proxy_in_environment(void)
{
	static const char *const names[] = {
		"http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", NULL
	};

	for (const char *const *name = names; *name != NULL; name++)
		if (getenv(*name) != NULL && getenv(*name)[0] != '\0')
			return true;
	return false;
}

/* The TCP port of an S3 storage's endpoint; 0 if its settings do not parse. */
static int
s3_port(const StorageConfig *storage)
{
	S3Location	location;
	const char *colon;

	if (s3_location_parse(&location, storage->url, storage->s3_endpoint, storage->s3_region) != NULL)
		return 0;
	/* host[:port], host an IPv6 address in brackets perhaps */
	colon = strrchr(location.host, ':');
	if (colon != NULL && strchr(colon, ']') == NULL)
		return atoi(colon + 1);
	return strcmp(location.scheme, "https") == 0 ? 443 : 80;
}

/* Allow a TCP connection to one port. */
static bool
allow_port(int ruleset, int port, char *why)
{
	struct ll_net_port_attr rule = {LL_NET_CONNECT_TCP, (uint64_t) port};

	if (syscall(SYS_landlock_add_rule, ruleset, LL_RULE_NET_PORT, &rule, 0) == 0)
		return true;
	snprintf(why, SANDBOX_WHY_MAX, "cannot allow TCP port %d in the sandbox: %s", port, strerror(errno));
	return false;
}

/*
 * The storage's rules: a directory store read and written below its root
 * (and nothing of a directory around it), an S3 store's CA file read and its
 * endpoint's port connected to (with DNS over TCP).
 */
static bool
allow_storage(int ruleset, const StorageConfig *storage, uint64_t handled, bool ports, char *why)
{
	int			port;

	if (storage == NULL || storage->url == NULL)
		return true;
	if (strncmp(storage->url, "file://", 7) == 0)
		return allow_path(ruleset, storage->url + 7, WRITE_RIGHTS, handled, why);
	if (storage->ca_file != NULL && storage->ca_file[0] != '\0' &&
		!allow_path(ruleset, storage->ca_file, LL_FS_READ_FILE, handled, why))
		return false;
	if (!ports || (port = s3_port(storage)) <= 0)
		return true;
	return allow_port(ruleset, port, why) && allow_port(ruleset, DNS_PORT, why);
}

/* What the kernel's Landlock lacks of what is used here, for the log line. */
static void
say_what_is_missing(int abi, int error)
{
	if (abi == 0)
		fprintf(stderr, "vproxy-transcode: sandbox: the kernel offers no Landlock (%s): files "
				"and TCP connections are not confined, only the system-call filter applies\n",
				strerror(error));
	else if (abi < LANDLOCK_ABI_USED)
		fprintf(stderr, "vproxy-transcode: sandbox: the kernel's Landlock ABI is %d, not %d:%s%s%s\n",
				abi, LANDLOCK_ABI_USED,
				abi < 4 ? " TCP connections are not limited to the storage's port;" : "",
				abi < 5 ? " device ioctls are not confined;" : "",
				" signals and abstract sockets are confined by the system-call filter only");
}

/*
 * Landlock: handle every right of the kernel's ABI, allow the system's files,
 * the rules' paths and the storage, then restrict this thread (and what it
 * starts).  A kernel without Landlock: one line, and true.
 */
static bool
apply_landlock(const SandboxRules *rules, char *why)
{
	static const char *const dev_null[] = {"/dev/null", NULL};
	int			abi = landlock_abi();
	int			error = errno;
	struct ll_ruleset_attr attr = {0, 0, 0};
	size_t		attr_size;
	int			ruleset;
	bool		limit_ports;
	bool		ok;

	if (abi < LANDLOCK_ABI_USED)
		say_what_is_missing(abi, error);
	if (abi == 0)
		return true;
	attr.handled_access_fs = handled_fs(abi);
	attr_size = sizeof(attr.handled_access_fs);
	/* a proxy's port is its own: then only binding is refused */
	limit_ports = abi >= 4 && !proxy_in_environment();
	if (abi >= 4)
	{
		attr.handled_access_net = LL_NET_BIND_TCP | (limit_ports ? LL_NET_CONNECT_TCP : 0);
		attr_size = offsetof(struct ll_ruleset_attr, scoped);
	}
	if (abi >= 6)
	{
		attr.scoped = LL_SCOPE_ABSTRACT_UNIX_SOCKET | LL_SCOPE_SIGNAL;
		attr_size = sizeof(attr);
	}
	ruleset = (int) syscall(SYS_landlock_create_ruleset, &attr, attr_size, 0);
	if (ruleset < 0)
	{
		snprintf(why, SANDBOX_WHY_MAX, "cannot make the sandbox's Landlock ruleset: %s", strerror(errno));
		return false;
	}
	ok = allow_paths(ruleset, system_files, READ_RIGHTS, attr.handled_access_fs, why) &&
		allow_paths(ruleset, dev_null, LL_FS_READ_FILE | LL_FS_WRITE_FILE | LL_FS_TRUNCATE,
					attr.handled_access_fs, why) &&
		allow_paths(ruleset, rules->read, READ_RIGHTS, attr.handled_access_fs, why) &&
		allow_paths(ruleset, rules->write, WRITE_RIGHTS, attr.handled_access_fs, why) &&
		allow_outputs(ruleset, rules->outputs, attr.handled_access_fs, why) &&
		allow_storage(ruleset, rules->storage, attr.handled_access_fs, limit_ports, why);
	if (ok && syscall(SYS_landlock_restrict_self, ruleset, 0) != 0)
	{
		snprintf(why, SANDBOX_WHY_MAX, "cannot enter the Landlock sandbox: %s", strerror(errno));
		ok = false;
	}
	close(ruleset);
	return ok;
}

/* A system call refused with EPERM, by name (some are newer than libseccomp). */
typedef struct RefusedCall
{
	const char *name;
	int			number;			/* if libseccomp does not know it (0: none) */
} RefusedCall;

/*
 * Refused whatever their arguments: debugging and reading other processes,
 * mounts and namespaces, modules, keyrings, bpf, perf, personality,
 * userfaultfd, io_uring (whose operations no filter sees), changes of files'
 * modes, owners and extended attributes by path (Landlock does not cover
 * them: chmod of the data directory would need no write right), truncate by
 * path (Landlock ABI 3 covers it, older ones do not).  The numbers are those
 * every architecture has shared since Linux 5.1 (but alpha and mips).
 */
static const RefusedCall refused_calls[] = {
	{"process_vm_readv", 0}, {"process_vm_writev", 0}, {"kcmp", 0},
	{"pidfd_open", 434}, {"pidfd_getfd", 438}, {"pidfd_send_signal", 424},
	{"mount", 0}, {"umount2", 0}, {"pivot_root", 0}, {"chroot", 0}, {"unshare", 0}, {"setns", 0},
	{"open_tree", 428}, {"move_mount", 429}, {"fsopen", 430}, {"fsconfig", 431},
	{"fsmount", 432}, {"fspick", 433}, {"mount_setattr", 442},
	{"init_module", 0}, {"finit_module", 0}, {"delete_module", 0},
	{"kexec_load", 0}, {"kexec_file_load", 0},
	{"add_key", 0}, {"request_key", 0}, {"keyctl", 0},
	{"bpf", 0}, {"perf_event_open", 0}, {"personality", 0}, {"userfaultfd", 0},
	{"io_uring_setup", 425}, {"io_uring_enter", 426}, {"io_uring_register", 427},
	{"chmod", 0}, {"fchmodat", 0}, {"fchmodat2", 452},
	{"chown", 0}, {"lchown", 0}, {"fchownat", 0},
	{"setxattr", 0}, {"lsetxattr", 0}, {"removexattr", 0}, {"lremovexattr", 0},
	{"setxattrat", 463}, {"removexattrat", 466},
	{"truncate", 0},
#ifndef UNDER_ASAN
	/* what LeakSanitizer and a symbolizer need (above) */
	{"ptrace", 0}, {"execve", 0}, {"execveat", 0}, {"fork", 0}, {"vfork", 0}, {"tkill", 0},
#endif
	{NULL, 0}
};

/* The native number of a system call; negative if this architecture has none. */
static int
call_number(const RefusedCall *call)
{
	int			number = seccomp_syscall_resolve_name(call->name);

#if !defined(__alpha__) && !defined(__mips__)
	if (number == __NR_SCMP_ERROR && call->number > 0)
		number = call->number;
#endif
	return number;
}

/* Add the filter's rules to ctx; 0 or a negative errno. */
static int
add_filter_rules(scmp_filter_ctx ctx)
{
	const uint32_t refuse = SCMP_ACT_ERRNO(EPERM);
	static const int namespaces[] = {
		CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWIPC, CLONE_NEWUTS,
		CLONE_NEWCGROUP
	};
	int			rc = 0;

	for (const RefusedCall *call = refused_calls; rc == 0 && call->name != NULL; call++)
	{
		int			number = call_number(call);

		if (number >= 0)
			rc = seccomp_rule_add(ctx, refuse, number, 0);
	}
	/* no Unix socket (the PostgreSQL socket, D-Bus, ...), but a connected stream pair */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, refuse, SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_EQ, AF_UNIX));
	if (rc == 0)
		rc = seccomp_rule_add(ctx, refuse, SCMP_SYS(socketpair), 2, SCMP_A0(SCMP_CMP_EQ, AF_UNIX),
							  SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, SOCK_DGRAM));
	if (rc == 0)
		rc = seccomp_rule_add(ctx, refuse, SCMP_SYS(socketpair), 2, SCMP_A0(SCMP_CMP_EQ, AF_UNIX),
							  SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, SOCK_SEQPACKET));
	/* clone3's flags are out of a filter's sight: ENOSYS, and glibc uses clone */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	for (size_t i = 0; rc == 0 && i < sizeof(namespaces) / sizeof(namespaces[0]); i++)
		rc = seccomp_rule_add(ctx, refuse, SCMP_SYS(clone), 1,
							  SCMP_A0(SCMP_CMP_MASKED_EQ, namespaces[i], namespaces[i]));
#ifndef UNDER_ASAN
	/* threads, but no new process: nothing outlives the run or leaves its group */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, refuse, SCMP_SYS(clone), 1,
							  SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, 0));
	/* signals to itself only: not to its supervisor, nor to the postmaster */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, refuse, SCMP_SYS(kill), 1, SCMP_A0(SCMP_CMP_NE, getpid()));
	if (rc == 0)
		rc = seccomp_rule_add(ctx, refuse, SCMP_SYS(tgkill), 1, SCMP_A0(SCMP_CMP_NE, getpid()));
	if (rc == 0)
		rc = seccomp_rule_add(ctx, refuse, SCMP_SYS(rt_sigqueueinfo), 1,
							  SCMP_A0(SCMP_CMP_NE, getpid()));
	if (rc == 0)
		rc = seccomp_rule_add(ctx, refuse, SCMP_SYS(rt_tgsigqueueinfo), 1,
							  SCMP_A0(SCMP_CMP_NE, getpid()));
#endif
	return rc;
}

/* The seccomp filter; false with why if it cannot be loaded. */
static bool
apply_filter(char *why)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	int			rc;

	if (ctx == NULL)
	{
		snprintf(why, SANDBOX_WHY_MAX, "cannot make the system-call filter: out of memory");
		return false;
	}
	rc = add_filter_rules(ctx);
	if (rc == 0)
		rc = seccomp_load(ctx);
	seccomp_release(ctx);
	if (rc != 0)
		snprintf(why, SANDBOX_WHY_MAX, "cannot load the system-call filter: %s", strerror(-rc));
	return rc == 0;
}

/* The number of threads of this process; 1 when /proc cannot tell. */
static int
thread_count(void)
{
	DIR		   *dir = opendir("/proc/self/task");
	struct dirent *entry;
	int			count = 0;

	if (dir == NULL)
		return 1;
	while ((entry = readdir(dir)) != NULL)
		count += entry->d_name[0] != '.';
	closedir(dir);
	return count;
}

/* Confine this process (sandbox.h). */
int
sandbox_apply(const SandboxRules *rules, char *why)
{
	if (thread_count() > 1)
	{
		snprintf(why, SANDBOX_WHY_MAX, "the sandbox must be set up before any thread starts");
		return EX_SOFTWARE;
	}
	/* no set-user-id gain from now on; Landlock and an unprivileged filter need it */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
	{
		snprintf(why, SANDBOX_WHY_MAX, "cannot set no_new_privs: %s", strerror(errno));
		return EX_SOFTWARE;
	}
	if (!apply_landlock(rules, why) || !apply_filter(why))
		return EX_SOFTWARE;
	return 0;
}
