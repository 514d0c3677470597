// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The kernel-enforced sandbox, installed last at start-up (namespace
 * joined, identity and capabilities dropped, /proc/sys/net opened):
 *
 *   1. Landlock: the only files the port may still open are those beneath
 *      /proc/sys/net, for reading and writing (sysctl); no exec, no other
 *      file, whatever path a compromised port builds ("../..", absolute).
 *      Skipped, and reported as such, on a kernel without Landlock.
 *   2. seccomp (libseccomp): an allow-list of the system calls the main
 *      loop needs. A system call not on the list kills the process
 *      (SECCOMP_RET_KILL_PROCESS); an allowed call with arguments outside
 *      what the port uses (socket() of another family, openat() outside the
 *      /proc/sys/net directory descriptor, mmap() of executable memory)
 *      fails with EPERM. docs/security.md says why.
 *
 * To allow one more call: add it to allowed[] below (plain) or to
 * nfp_seccomp_install (with argument conditions), say which code path
 * needs it, and run the whole suite (tests/elixir/seccomp_test.exs, the
 * ExUnit suite, valgrind and the fuzzer all run with the filter on).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <linux/netlink.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <seccomp.h>
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

#include "etf.h"
#include "sandbox.h"

/* Newer than Debian 12's kernel headers (ABI 3, Linux 6.2). */
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif

static int landlock_abi = -1;	/* -1: not installed */
static bool filter_on;

/* Allowed with any arguments: none of them reaches anything outside the
 * process but its own descriptors (pipes, netlink sockets, the signalfd,
 * /proc/sys/net files). */
static const int allowed[] = {
	/* stdin, stdout, stderr, the signalfd, sysctl files */
	SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv), SCMP_SYS(writev),
	SCMP_SYS(close), SCMP_SYS(lseek), SCMP_SYS(fstat),
	SCMP_SYS(poll), SCMP_SYS(ppoll),
	/* netlink: libmnl's send and receive, and what socket_open does
	 * (mnl_socket_bind: bind, getsockname; buffer sizes and NETLINK_*
	 * options: setsockopt, getsockopt). The event socket of a monitor
	 * needs setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP) on a
	 * NETLINK_NETFILTER socket: allowed here already (only netlink
	 * sockets can exist, see socket() below). */
	SCMP_SYS(sendto), SCMP_SYS(recvfrom), SCMP_SYS(sendmsg), SCMP_SYS(recvmsg),
	SCMP_SYS(bind), SCMP_SYS(getsockname), SCMP_SYS(setsockopt), SCMP_SYS(getsockopt),
	/* memory (malloc: brk, mmap, munmap, mremap, madvise) */
	SCMP_SYS(brk), SCMP_SYS(munmap), SCMP_SYS(mremap), SCMP_SYS(madvise),
	/* clocks (the vDSO usually answers without a system call) */
	SCMP_SYS(clock_gettime), SCMP_SYS(gettimeofday), SCMP_SYS(time),
	SCMP_SYS(clock_nanosleep), SCMP_SYS(nanosleep),
	/* self_check: its own pid, ids and capabilities; the drop of
	 * CAP_NET_ADMIN at shutdown (capset can only lower the sets now) */
	SCMP_SYS(getpid), SCMP_SYS(gettid), SCMP_SYS(getuid), SCMP_SYS(geteuid),
	SCMP_SYS(getgid), SCMP_SYS(getegid), SCMP_SYS(getresuid), SCMP_SYS(getresgid),
	SCMP_SYS(getgroups), SCMP_SYS(capget), SCMP_SYS(capset),
	/* signals (the signalfd is read with read; glibc's abort path) */
	SCMP_SYS(rt_sigreturn), SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigaction),
	/* glibc internals */
	SCMP_SYS(getrandom), SCMP_SYS(futex), SCMP_SYS(sched_yield),
	SCMP_SYS(restart_syscall),
	/* the end */
	SCMP_SYS(exit), SCMP_SYS(exit_group),
};

/* Under valgrind only: what valgrind itself calls while it runs the port
 * (it shares the port's filter). */
static const int valgrind_extra[] = {
	SCMP_SYS(rt_sigtimedwait),
};

static int landlock_install(void)
{
	struct landlock_ruleset_attr ruleset = { 0 };
	struct landlock_path_beneath_attr beneath = { 0 };
	int abi, rfd, dfd;

	abi = (int)syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	if (abi < 1)
		return 0;	/* no Landlock: the filter and the uid still hold */
	ruleset.handled_access_fs = LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |
		LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR |
		LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |
		LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR |
		LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK |
		LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_BLOCK |
		LANDLOCK_ACCESS_FS_MAKE_SYM;
	if (abi >= 2)
		ruleset.handled_access_fs |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		ruleset.handled_access_fs |= LANDLOCK_ACCESS_FS_TRUNCATE;
	rfd = (int)syscall(SYS_landlock_create_ruleset, &ruleset, sizeof(ruleset), 0);
	if (rfd < 0)
		goto fail;
	dfd = open("/proc/sys/net", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		beneath.allowed_access = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE;
		beneath.parent_fd = dfd;
		if (syscall(SYS_landlock_add_rule, rfd, LANDLOCK_RULE_PATH_BENEATH, &beneath, 0) < 0) {
			close(dfd);
			close(rfd);
			goto fail;
		}
		close(dfd);
	}
	if (syscall(SYS_landlock_restrict_self, rfd, 0) < 0) {
		close(rfd);
		goto fail;
	}
	close(rfd);
	landlock_abi = abi;
	return 0;
fail:
	fprintf(stderr, "error: cannot install the Landlock ruleset: %s\n", strerror(errno));
	return -1;
}

#define RULE(ctx, action, call, ...) \
	(seccomp_rule_add(ctx, action, SCMP_SYS(call), __VA_ARGS__) == 0)

int nfp_seccomp_install(int sysctl_dirfd, const int *extra, size_t nextra, unsigned flags)
{
	const bool harness = flags & NFP_SANDBOX_HARNESS;
	const uint32_t eperm = SCMP_ACT_ERRNO(EPERM);
	scmp_filter_ctx ctx;
	bool ok = true;
	int rc;

	if (!harness && landlock_install() < 0)
		return -1;

	ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
	/* Where libseccomp cannot tell that the kernel has KILL_PROCESS (API
	 * level 1: no seccomp(2), as under valgrind), KILL_THREAD: the port
	 * has one thread, so it is the same end. */
	if (!ctx)
		ctx = seccomp_init(SCMP_ACT_KILL);
	if (!ctx) {
		fprintf(stderr, "error: seccomp_init failed\n");
		return -1;
	}
	for (size_t i = 0; ok && i < sizeof(allowed) / sizeof(allowed[0]); i++)
		ok = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, allowed[i], 0) == 0;
	for (size_t i = 0; ok && i < nextra; i++)
		ok = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, extra[i], 0) == 0;

	/* libseccomp: rules of one system call must not overlap, so every
	 * refusal below is the complement of its permission, condition by
	 * condition. */

	/* socket(): NETLINK_NETFILTER only (socket_open, the default socket,
	 * a monitor's event socket); any other socket fails with EPERM. */
	ok = ok && RULE(ctx, SCMP_ACT_ALLOW, socket, 2, SCMP_A0(SCMP_CMP_EQ, AF_NETLINK),
			SCMP_A2(SCMP_CMP_EQ, NETLINK_NETFILTER));
	ok = ok && RULE(ctx, eperm, socket, 1, SCMP_A0(SCMP_CMP_NE, AF_NETLINK));
	ok = ok && RULE(ctx, eperm, socket, 1, SCMP_A2(SCMP_CMP_NE, NETLINK_NETFILTER));

	/* openat(): relative to the /proc/sys/net descriptor only (sysctl),
	 * with O_NOFOLLOW, never creating, truncating or opening a directory
	 * or a path descriptor. Landlock (above) keeps "../" inside. Any
	 * other open fails with EPERM. */
	if (harness) {
		ok = ok && RULE(ctx, SCMP_ACT_ALLOW, openat, 0);
		ok = ok && RULE(ctx, SCMP_ACT_ALLOW, open, 0);
	} else if (sysctl_dirfd >= 0) {
		const uint64_t bad = O_CREAT | O_TRUNC | O_DIRECTORY | O_PATH;

		ok = ok && RULE(ctx, SCMP_ACT_ALLOW, openat, 2,
				SCMP_A0(SCMP_CMP_EQ, (uint64_t)sysctl_dirfd),
				SCMP_A2(SCMP_CMP_MASKED_EQ, bad | O_NOFOLLOW, O_NOFOLLOW));
		ok = ok && RULE(ctx, eperm, openat, 1, SCMP_A0(SCMP_CMP_NE, (uint64_t)sysctl_dirfd));
		ok = ok && RULE(ctx, eperm, openat, 1, SCMP_A2(SCMP_CMP_MASKED_EQ, O_NOFOLLOW, 0));
		ok = ok && RULE(ctx, eperm, openat, 1, SCMP_A2(SCMP_CMP_MASKED_EQ, O_CREAT, O_CREAT));
		ok = ok && RULE(ctx, eperm, openat, 1, SCMP_A2(SCMP_CMP_MASKED_EQ, O_TRUNC, O_TRUNC));
		ok = ok && RULE(ctx, eperm, openat, 1,
				SCMP_A2(SCMP_CMP_MASKED_EQ, O_DIRECTORY, O_DIRECTORY));
		ok = ok && RULE(ctx, eperm, openat, 1, SCMP_A2(SCMP_CMP_MASKED_EQ, O_PATH, O_PATH));
	} else {
		ok = ok && RULE(ctx, eperm, openat, 0);
	}
	if (!harness)
		ok = ok && RULE(ctx, eperm, open, 0);
	ok = ok && RULE(ctx, eperm, openat2, 0);

	/* Memory, but never executable memory: no new code in the process.
	 * Under valgrind, whose own memory (which the filter sees too) is
	 * read-write-execute, mmap and mprotect are not restricted: valgrind
	 * runs the port's code from its own translations, never from the
	 * port's mappings. (RUNNING_ON_VALGRIND is 0 on a real CPU.) */
	if (RUNNING_ON_VALGRIND) {
		for (size_t i = 0; ok && i < sizeof(valgrind_extra) / sizeof(valgrind_extra[0]); i++)
			ok = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, valgrind_extra[i], 0) == 0;
		ok = ok && RULE(ctx, SCMP_ACT_ALLOW, mmap, 0);
		ok = ok && RULE(ctx, SCMP_ACT_ALLOW, mprotect, 0);
	} else {
		ok = ok && RULE(ctx, SCMP_ACT_ALLOW, mmap, 1,
				SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
		ok = ok && RULE(ctx, eperm, mmap, 1,
				SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, PROT_EXEC));
		ok = ok && RULE(ctx, SCMP_ACT_ALLOW, mprotect, 1,
				SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
		ok = ok && RULE(ctx, eperm, mprotect, 1,
				SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, PROT_EXEC));
	}

	/* glibc's fstat (newfstatat(fd, "", AT_EMPTY_PATH)); stdio's isatty
	 * (ioctl TCGETS); descriptor flags (fcntl). */
	if (harness) {
		ok = ok && RULE(ctx, SCMP_ACT_ALLOW, newfstatat, 0);
	} else {
		ok = ok && RULE(ctx, SCMP_ACT_ALLOW, newfstatat, 1,
				SCMP_A3(SCMP_CMP_MASKED_EQ, AT_EMPTY_PATH, AT_EMPTY_PATH));
		ok = ok && RULE(ctx, eperm, newfstatat, 1,
				SCMP_A3(SCMP_CMP_MASKED_EQ, AT_EMPTY_PATH, 0));
	}
	ok = ok && RULE(ctx, SCMP_ACT_ALLOW, ioctl, 1, SCMP_A1(SCMP_CMP_EQ, TCGETS));
	ok = ok && RULE(ctx, eperm, ioctl, 1, SCMP_A1(SCMP_CMP_NE, TCGETS));
	ok = ok && RULE(ctx, SCMP_ACT_ALLOW, fcntl, 1, SCMP_A1(SCMP_CMP_EQ, F_GETFL));
	ok = ok && RULE(ctx, SCMP_ACT_ALLOW, fcntl, 1, SCMP_A1(SCMP_CMP_EQ, F_GETFD));

	/* prctl: reading its own state for self_check only (a harness's
	 * sanitizers use more of it). */
	if (harness)
		ok = ok && RULE(ctx, SCMP_ACT_ALLOW, prctl, 0);
	else
		ok = ok && RULE(ctx, SCMP_ACT_ALLOW, prctl, 1, SCMP_A0(SCMP_CMP_EQ, PR_GET_SECCOMP));
	ok = ok && (harness || RULE(ctx, SCMP_ACT_ALLOW, prctl, 1, SCMP_A0(SCMP_CMP_EQ, PR_GET_NO_NEW_PRIVS)));
	ok = ok && (harness || RULE(ctx, SCMP_ACT_ALLOW, prctl, 1, SCMP_A0(SCMP_CMP_EQ, PR_GET_DUMPABLE)));
	ok = ok && (harness || RULE(ctx, SCMP_ACT_ALLOW, prctl, 1, SCMP_A0(SCMP_CMP_EQ, PR_CAPBSET_READ)));
	ok = ok && (harness || RULE(ctx, SCMP_ACT_ALLOW, prctl, 2, SCMP_A0(SCMP_CMP_EQ, PR_CAP_AMBIENT),
				    SCMP_A1(SCMP_CMP_EQ, PR_CAP_AMBIENT_IS_SET)));

	/* abort() signals itself: this process only. */
	ok = ok && RULE(ctx, SCMP_ACT_ALLOW, tgkill, 1, SCMP_A0(SCMP_CMP_EQ, (uint64_t)getpid()));
	ok = ok && RULE(ctx, SCMP_ACT_ALLOW, kill, 1, SCMP_A0(SCMP_CMP_EQ, (uint64_t)getpid()));

	if (!ok) {
		fprintf(stderr, "error: cannot build the seccomp filter\n");
		seccomp_release(ctx);
		return -1;
	}
	rc = seccomp_load(ctx);
	seccomp_release(ctx);
	if (rc < 0) {
		fprintf(stderr, "error: cannot install the seccomp filter: %s\n", strerror(-rc));
		return -1;
	}
	filter_on = true;
	return 0;
}

void nfp_seccomp_encode(ei_x_buff *x)
{
	nfp_enc_atom(x, "seccomp");
	/* 2 is SECCOMP_MODE_FILTER, as /proc/<pid>/status shows it. */
	nfp_enc_atom(x, filter_on && prctl(PR_GET_SECCOMP, 0, 0, 0, 0) == 2 ? "filter" : "off");
	nfp_enc_atom(x, "landlock");
	if (landlock_abi > 0)
		nfp_enc_u64(x, (uint64_t)landlock_abi);
	else
		nfp_enc_atom(x, "off");
}
