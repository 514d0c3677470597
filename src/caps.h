/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The security model: file-capability sanity, network namespaces and the
 * drop to CAP_NET_ADMIN alone, in the order documented in caps.c.
 */
#ifndef NFP_CAPS_H
#define NFP_CAPS_H

#include <stdbool.h>

#include <ei.h>

/* Refuses (returns -1 after printing why) a binary that carries file
 * capabilities while "other" has any permission bit on it. */
int nfp_caps_check_binary(const char *path);
/* netns: NULL (stay), "new" or a name under /run/netns. 0 or -1. */
int nfp_netns_enter(const char *netns);
/* Keeps CAP_NET_ADMIN only; warns and goes on without it. */
void nfp_caps_drop(void);
/* Drops CAP_NET_ADMIN too (shutdown). */
void nfp_caps_drop_all(void);
bool nfp_caps_have_net_admin(void);
/* The self_check map: capability sets, no_new_privs, dumpable, pid, and
 * what identity.c and seccomp.c add (uid, gid, groups, seccomp, landlock). */
void nfp_caps_encode(ei_x_buff *x);
/* True when `netns` makes the port unshare a user namespace (no
 * CAP_SYS_ADMIN for a plain network namespace). */
bool nfp_netns_needs_userns(const char *netns);
/* True once nfp_netns_enter() made a user namespace of the port's own. */
bool nfp_netns_own_userns(void);

/* identity.c: started as root, switch to user/group (NULL: nobody,
 * nogroup), keeping the permitted capabilities for nfp_caps_drop(). Not
 * started as root: nothing (and --user/--group are an error). 0 or -1. */
int nfp_identity_drop(bool started_as_root, const char *user, const char *group);
/* Whether uid 0 here is root on the host (not a mapped user of a user namespace). */
bool nfp_identity_host_root(void);
void nfp_identity_encode(ei_x_buff *x);

#endif /* NFP_CAPS_H */
