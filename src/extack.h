/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What a kernel error says besides its errno. The port asks for extended
 * ACKs (NETLINK_EXT_ACK): an error then carries the kernel's message and
 * the offset of the offending attribute in the message the port sent, as
 * the kernel's YNL library reads them in ynl_ext_ack_check(). The offset is
 * mapped back to the schema's attribute name through the descriptor
 * tables' netlink types (nfp_attr.nla, gen/nfpgen/nla.py).
 */
#ifndef NFP_EXTACK_H
#define NFP_EXTACK_H

#include <stdbool.h>
#include <stdint.h>

#include "desc.h"
#include "req.h"

struct nlmsghdr;

struct nfp_extack {
	int err;		/* positive errno; 0 for an ACK */
	bool has_off;
	uint32_t off;		/* from the start of the sent message */
	bool has_miss;
	uint32_t miss_type;	/* an attribute the kernel missed */
	char msg[160];
};

/* Reads an NLMSG_ERROR message (of at least an nlmsgerr). */
void nfp_extack_parse(const struct nlmsghdr *nlh, struct nfp_extack *ea);

/* Records what ea says about the request's kernel error: its message,
 * and the attribute of `sent` (built from obj) it blames, named as `as`
 * names it (the element object names a set's NFTNL_SET_NAME :set). */
void nfp_kerr_detail(struct nfp_req *req, const struct nfp_extack *ea,
		     const struct nlmsghdr *sent, const struct nfp_obj *obj,
		     const struct nfp_obj *as, uint32_t item_base);

/* How many items (elements) the list attribute of obj holds in nlh: a long
 * element list travels in several messages, and an item's index counts
 * those of the messages before. */
uint32_t nfp_sent_items(const struct nlmsghdr *nlh, const struct nfp_obj *obj);

/* Records the addressed object of a kernel error: %{type: name, <the key
 * attributes set on o>} (for a batch message, a filter, the keys of get). */
void nfp_kerr_object(struct nfp_req *req, const struct nfp_obj *obj, void *o);
/* The same with the type only. */
void nfp_kerr_object_type(struct nfp_req *req, const struct nfp_obj *obj);

#endif /* NFP_EXTACK_H */
