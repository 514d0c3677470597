// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Capabilities and namespaces.
 *
 * At start, in this order (main.c calls each):
 *   1. refuse a binary with file capabilities that "other" may run;
 *   2. enter the requested network namespace, while privileges allow it
 *      (a new one inside a new user namespace when not privileged);
 *   3. started as root: become nobody/nogroup (or --user/--group), keeping
 *      the permitted set for the steps below (identity.c; before step 2
 *      when step 2 unshares a user namespace);
 *   4. clear the ambient set, so nothing is handed to children;
 *   5. drop every capability but CAP_NET_ADMIN from the bounding set, where
 *      CAP_SETPCAP allows it;
 *   6. set effective = permitted = {CAP_NET_ADMIN} (or nothing, with a
 *      warning, when it was not permitted), inheritable = {};
 *   7. PR_SET_NO_NEW_PRIVS = 1: no exec can gain privileges again;
 *   8. PR_SET_DUMPABLE = 0: no core dumps, no ptrace by the same user;
 *   9. open what the loop needs: the signalfd and the directory
 *      /proc/sys/net (sysctl), main.c;
 *  10. Landlock and the seccomp allow-list (seccomp.c): from here on no
 *      other file, no other socket, no other system call.
 * At shutdown CAP_NET_ADMIN goes as well.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sys/capability.h>

#include "caps.h"
#include "etf.h"
#include "sandbox.h"

int nfp_caps_check_binary(const char *path)
{
	char real[4096];
	struct stat st;
	cap_t fcaps;
	bool has_caps = false;
	ssize_t n;

	if (stat(path, &st) < 0)
		return 0;
	/* Name the file itself in the message, not /proc/self/exe. */
	n = readlink(path, real, sizeof(real) - 1);
	if (n > 0) {
		real[n] = '\0';
		path = real;
	}
	fcaps = cap_get_file(path);
	if (fcaps) {
		cap_t empty = cap_init();

		has_caps = empty && cap_compare(fcaps, empty) != 0;
		cap_free(empty);
		cap_free(fcaps);
	}
	if (has_caps && (st.st_mode & S_IRWXO)) {
		fprintf(stderr,
			"error: %s carries file capabilities and any user may access it (mode %03o).\n"
			"error: refusing to start; restrict it to its owner and group: chmod 750 %s\n",
			path, (unsigned)(st.st_mode & 0777), path);
		return -1;
	}
	return 0;
}

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

static bool cap_effective(cap_value_t c)
{
	cap_t caps = cap_get_proc();
	cap_flag_value_t v = CAP_CLEAR;

	if (caps) {
		cap_get_flag(caps, c, CAP_EFFECTIVE, &v);
		cap_free(caps);
	}
	return v == CAP_SET;
}

static bool own_userns;

bool nfp_netns_own_userns(void)
{
	return own_userns;
}

bool nfp_netns_needs_userns(const char *netns)
{
	return netns && strcmp(netns, "new") == 0 && !cap_effective(CAP_SYS_ADMIN);
}

static int new_netns(void)
{
	uid_t uid = getuid();
	gid_t gid = getgid();
	char map[64];

	if (cap_effective(CAP_SYS_ADMIN) && unshare(CLONE_NEWNET) == 0)
		return 0;
	/* Not privileged: a user namespace of our own makes us root there. */
	if (unshare(CLONE_NEWUSER | CLONE_NEWNET) < 0) {
		fprintf(stderr, "error: cannot create a network namespace: %s\n", strerror(errno));
		return -1;
	}
	/* The maps are files of /proc/self, which a non-dumpable process
	 * (after setuid, or an exec that gained capabilities) does not own.
	 * Dumpable for these writes: ptrace by another process of this uid
	 * still needs every capability this one holds; caps.c sets it back
	 * to 0 before the first request. */
	prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
	snprintf(map, sizeof(map), "0 %u 1\n", (unsigned)uid);
	if (write_file("/proc/self/setgroups", "deny") < 0 ||
	    write_file("/proc/self/uid_map", map) < 0) {
		fprintf(stderr, "error: cannot map the user namespace: %s\n", strerror(errno));
		return -1;
	}
	snprintf(map, sizeof(map), "0 %u 1\n", (unsigned)gid);
	if (write_file("/proc/self/gid_map", map) < 0) {
		fprintf(stderr, "error: cannot map the user namespace: %s\n", strerror(errno));
		return -1;
	}
	own_userns = true;
	return 0;
}

int nfp_netns_enter(const char *netns)
{
	char path[sizeof("/run/netns/") + 256];
	int fd;

	if (!netns)
		return 0;
	if (strcmp(netns, "new") == 0)
		return new_netns();
	if (!netns[0] || strchr(netns, '/') || strcmp(netns, ".") == 0 || strcmp(netns, "..") == 0) {
		fprintf(stderr, "error: bad network namespace name '%s'\n", netns);
		return -1;
	}
	if (strlen(netns) > 255) {
		fprintf(stderr, "error: network namespace name of %zu bytes: at most 255\n",
			strlen(netns));
		return -1;
	}
	snprintf(path, sizeof(path), "/run/netns/%s", netns);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "error: cannot open %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (setns(fd, CLONE_NEWNET) < 0) {
		fprintf(stderr, "error: cannot join %s: %s\n", path, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

bool nfp_caps_have_net_admin(void)
{
	return cap_effective(CAP_NET_ADMIN);
}

void nfp_caps_drop(void)
{
	cap_value_t keep = CAP_NET_ADMIN, setpcap = CAP_SETPCAP;
	cap_flag_value_t permitted = CAP_CLEAR, can_setpcap = CAP_CLEAR;
	cap_t caps = cap_get_proc();

	if (caps) {
		cap_get_flag(caps, CAP_NET_ADMIN, CAP_PERMITTED, &permitted);
		cap_get_flag(caps, CAP_SETPCAP, CAP_PERMITTED, &can_setpcap);
	}

	/* 4. Nothing ambient. */
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);

	/* 5. Bounding set: needs CAP_SETPCAP in the effective set. */
	if (caps && can_setpcap == CAP_SET) {
		cap_set_flag(caps, CAP_EFFECTIVE, 1, &setpcap, CAP_SET);
		if (cap_set_proc(caps) == 0) {
			for (cap_value_t c = 0; c < (cap_value_t)cap_max_bits(); c++)
				if (c != CAP_NET_ADMIN && prctl(PR_CAPBSET_READ, c, 0, 0, 0) == 1)
					prctl(PR_CAPBSET_DROP, c, 0, 0, 0);
		}
	}
	if (caps)
		cap_free(caps);

	/* 6. CAP_NET_ADMIN alone, or nothing. */
	caps = cap_init();
	if (caps && permitted == CAP_SET) {
		cap_set_flag(caps, CAP_PERMITTED, 1, &keep, CAP_SET);
		cap_set_flag(caps, CAP_EFFECTIVE, 1, &keep, CAP_SET);
	}
	if (!caps || cap_set_proc(caps) < 0 || permitted != CAP_SET) {
		fprintf(stderr,
			"warning: Failed to apply capabilities to process (continuing without CAP_NET_ADMIN)\n"
			"warning: Note: Netlink operations requiring CAP_NET_ADMIN will fail\n");
		if (caps) {
			cap_clear(caps);
			cap_set_proc(caps);
		}
	}
	if (caps)
		cap_free(caps);

	/* 7. and 8. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		fprintf(stderr, "warning: PR_SET_NO_NEW_PRIVS: %s\n", strerror(errno));
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		fprintf(stderr, "warning: PR_SET_DUMPABLE: %s\n", strerror(errno));
}

void nfp_caps_drop_all(void)
{
	cap_t caps = cap_init();

	if (caps) {
		cap_set_proc(caps);
		cap_free(caps);
	}
}

static void encode_set(ei_x_buff *x, cap_t caps, cap_flag_t which, int kind)
{
	uint32_t n = 0;
	int at = nfp_enc_list_open(x);

	for (cap_value_t c = 0; c < (cap_value_t)cap_max_bits(); c++) {
		cap_flag_value_t v = CAP_CLEAR;
		bool on;
		char *name;

		if (kind == 0) {
			cap_get_flag(caps, c, which, &v);
			on = v == CAP_SET;
		} else if (kind == 1) {
			on = prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, c, 0, 0) == 1;
		} else {
			on = prctl(PR_CAPBSET_READ, c, 0, 0, 0) == 1;
		}
		if (!on)
			continue;
		name = cap_to_name(c);
		nfp_enc_atom(x, name ? name : "unknown");
		cap_free(name);
		n++;
	}
	nfp_enc_list_close(x, at, n);
}

void nfp_caps_encode(ei_x_buff *x)
{
	cap_t caps = cap_get_proc();

	ei_x_encode_map_header(x, 14);
	nfp_enc_atom(x, "effective");
	encode_set(x, caps, CAP_EFFECTIVE, 0);
	nfp_enc_atom(x, "permitted");
	encode_set(x, caps, CAP_PERMITTED, 0);
	nfp_enc_atom(x, "inheritable");
	encode_set(x, caps, CAP_INHERITABLE, 0);
	nfp_enc_atom(x, "ambient");
	encode_set(x, caps, CAP_EFFECTIVE, 1);
	nfp_enc_atom(x, "bounding");
	encode_set(x, caps, CAP_EFFECTIVE, 2);
	nfp_enc_atom(x, "no_new_privs");
	nfp_enc_atom(x, prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1 ? "true" : "false");
	nfp_enc_atom(x, "dumpable");
	nfp_enc_atom(x, prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 1 ? "true" : "false");
	nfp_enc_atom(x, "pid");
	nfp_enc_u64(x, (uint64_t)getpid());
	nfp_identity_encode(x);
	nfp_seccomp_encode(x);
	if (caps)
		cap_free(caps);
}
