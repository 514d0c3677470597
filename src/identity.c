// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * No root: a port started as uid 0 switches to an unprivileged user and
 * group (default nobody and nogroup, `--user NAME --group NAME` to choose
 * others) and keeps CAP_NET_ADMIN across the switch, the way chronyd and
 * ntpd drop root. Called after the network namespace is joined or created
 * and before the capability drop of caps.c (which then keeps
 * CAP_NET_ADMIN alone): the identity first, so the capability sets are
 * made for the uid the port will run as.
 *
 * A port started by an ordinary user is that user already and stays so; in
 * `--netns new` it is uid 0 of a user namespace of its own, in which only
 * that one uid is mapped (uid 0 there is the user outside, nothing more).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "caps.h"
#include "etf.h"

/* A name, or a decimal id: "nobody", "65534". */
static int parse_id(const char *s, unsigned long *id)
{
	char *end;

	if (s[0] < '0' || s[0] > '9')
		return -1;
	errno = 0;
	*id = strtoul(s, &end, 10);
	return (*end || errno || *id >= UINT_MAX) ? -1 : 0;
}

static int resolve_user(const char *user, uid_t *uid, gid_t *primary)
{
	struct passwd *pw;
	unsigned long id;

	if (parse_id(user, &id) == 0) {
		pw = getpwuid((uid_t)id);
		*uid = (uid_t)id;
		*primary = pw ? pw->pw_gid : (gid_t)id;
		return 0;
	}
	errno = 0;
	pw = getpwnam(user);
	if (!pw) {
		fprintf(stderr, "error: --user %s: no such user\n", user);
		return -1;
	}
	*uid = pw->pw_uid;
	*primary = pw->pw_gid;
	return 0;
}

static int resolve_group(const char *group, gid_t *gid)
{
	struct group *gr;
	unsigned long id;

	if (parse_id(group, &id) == 0) {
		*gid = (gid_t)id;
		return 0;
	}
	gr = getgrnam(group);
	if (!gr) {
		fprintf(stderr, "error: --group %s: no such group\n", group);
		return -1;
	}
	*gid = gr->gr_gid;
	return 0;
}

/* uid 0 in a user namespace that maps it to another user outside (a port
 * started inside a caller's `unshare --user --map-root-user`, as
 * NFTables.Port.Case does for an ordinary user) is that user on the host:
 * there is no root to drop and no nobody mapped to switch to. Root is uid
 * 0 of the initial namespace's identity map. */
bool nfp_identity_host_root(void)
{
	unsigned long inner, outer, count;
	FILE *f = fopen("/proc/self/uid_map", "re");
	bool host = true;

	if (!f)
		return true;
	while (fscanf(f, "%lu %lu %lu", &inner, &outer, &count) == 3) {
		if (inner == 0 && outer != 0)
			host = false;
	}
	fclose(f);
	return host;
}

int nfp_identity_drop(bool started_as_root, const char *user, const char *group)
{
	uid_t uid;
	gid_t gid, primary;

	if (!started_as_root) {
		/* Nothing to switch from, and no privilege to switch with. */
		if (user || group) {
			fprintf(stderr, "error: --user and --group need a port started as root "
				"(it runs as uid %u already)\n", (unsigned)getuid());
			return -1;
		}
		return 0;
	}
	if (resolve_user(user ? user : "nobody", &uid, &primary) < 0)
		return -1;
	if (group) {
		if (resolve_group(group, &gid) < 0)
			return -1;
	} else if (user) {
		gid = primary;
	} else if (resolve_group("nogroup", &gid) < 0) {
		/* Distributions without nogroup: nobody's own group. */
		gid = primary;
	}
	if (uid == 0 || gid == 0) {
		fprintf(stderr, "error: refusing to run as %s 0: choose an unprivileged --user and --group\n",
			uid == 0 ? "uid" : "gid");
		return -1;
	}
	/* Keep the permitted set across setuid; caps.c trims it next. */
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0 || setgroups(0, NULL) < 0 ||
	    setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0) {
		fprintf(stderr, "error: cannot switch to uid %u gid %u: %s\n", (unsigned)uid,
			(unsigned)gid, strerror(errno));
		return -1;
	}
	prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
	return 0;
}

void nfp_identity_encode(ei_x_buff *x)
{
	uid_t r, e, s;
	gid_t rg, eg, sg;

	getresuid(&r, &e, &s);
	getresgid(&rg, &eg, &sg);
	/* :own: uid 0 there is the user that started the port, outside. */
	nfp_enc_atom(x, "user_namespace");
	nfp_enc_atom(x, nfp_netns_own_userns() ? "own" : "caller");
	nfp_enc_atom(x, "uid");
	nfp_enc_u64(x, e);
	nfp_enc_atom(x, "gid");
	nfp_enc_u64(x, eg);
	nfp_enc_atom(x, "groups");
	{
		gid_t groups[64];
		int n = getgroups(64, groups), at = nfp_enc_list_open(x);

		for (int i = 0; i < n; i++)
			nfp_enc_u64(x, groups[i]);
		nfp_enc_list_close(x, at, n < 0 ? 0 : (uint32_t)n);
	}
}
