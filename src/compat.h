/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Constants the build machine's headers may lack.
 *
 * Debian 12's kernel headers (6.1) predate the DESTROY messages (Linux 6.3),
 * which the running kernel understands. The values are the kernel UAPI's;
 * an older kernel answers them with EOPNOTSUPP, which the port reports.
 */
#ifndef NFP_COMPAT_H
#define NFP_COMPAT_H

#include <linux/netfilter/nf_tables.h>

#ifndef NFT_MSG_DESTROYTABLE
#define NFT_MSG_DESTROYTABLE	26
#define NFT_MSG_DESTROYCHAIN	27
#define NFT_MSG_DESTROYRULE	28
#define NFT_MSG_DESTROYSET	29
#define NFT_MSG_DESTROYSETELEM	30
#define NFT_MSG_DESTROYOBJ	31
#define NFT_MSG_DESTROYFLOWTABLE 32
#endif

/* Pseudo attribute ids of list attributes that are not libnftnl
 * attributes: the engine handles them itself, they never reach libnftnl. */
#define NFP_ATTR_EXPRS		0xff00
#define NFP_ATTR_ELEMENTS	0xff01

#endif /* NFP_COMPAT_H */
