/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The sysctl allow-list, generated from schema/sysctl.yaml into
 * nfp_sysctl.c, and the descriptor of /proc/sys/net that ops_sysctl.c
 * opens every sysctl file relative to.
 */
#ifndef NFP_SYSCTL_H
#define NFP_SYSCTL_H

#include <stddef.h>
#include <stdint.h>

enum nfp_sysctl_type { NFP_SYSCTL_INT, NFP_SYSCTL_BOOL };

struct nfp_sysctl {
	const char *name;	/* "net.ipv4.conf.*.rp_filter" */
	const char *name_pre;	/* "net.ipv4.conf." (the whole name: no wildcard) */
	const char *name_suf;	/* ".rp_filter", NULL: no wildcard */
	const char *path_pre;	/* "ipv4/conf/" below /proc/sys/net */
	const char *path_suf;	/* "/rp_filter" */
	uint8_t type;
	int64_t min, max;
};

extern const struct nfp_sysctl nfp_sysctls[];
extern const size_t nfp_nsysctls;

/* Opens /proc/sys/net (a directory, in the network namespace the port is
 * in by now) for ops_sysctl.c; returns the descriptor, or -1. */
int nfp_sysctl_open_dir(void);

#endif /* NFP_SYSCTL_H */
