/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The attribute engine: one attribute value between ETF and a libnftnl
 * object, driven by its descriptor (wire type, width, length, enum). Every
 * check libnftnl would otherwise assert on happens here first.
 */
#ifndef NFP_ATTR_H
#define NFP_ATTR_H

#include <stdbool.h>
#include <stdint.h>

#include <ei.h>

#include "desc.h"
#include "req.h"

struct nfp_backend;

/* Where attributes go: a libnftnl object or expression behind accessors. */
struct nfp_target {
	void *o;
	const char *owner;	/* "table", "expression payload": for messages */
	const struct nfp_attr *attrs;	/* the owner's attribute table */
	uint16_t nattrs;
	const struct nfp_backend *be;	/* the object's, or nfp_backend_expr */
};

void nfp_target_obj(struct nfp_target *t, const struct nfp_obj *obj, void *o);
void nfp_target_expr(struct nfp_target *t, const struct nfp_expr *e, void *o);

/* Decodes the scalar value at *idx into attribute a of t. */
int nfp_attr_decode(struct nfp_req *req, int *idx, const struct nfp_attr *a,
		    const struct nfp_target *t);
/* Encodes the value of attribute a (which is set) of t. */
void nfp_attr_encode(ei_x_buff *x, const struct nfp_attr *a,
		     const struct nfp_target *t);

/* Whether a set attribute is shown: not when flagged omit-zero and 0. */
bool nfp_attr_shown(const struct nfp_attr *a, const struct nfp_target *t);

struct nfp_backend;
/* Unsets attribute a of an object, freeing what libnftnl forgets to. */
void nfp_attr_unset(const struct nfp_backend *be, void *o, const struct nfp_attr *a);

/* Lists the names of attrs for an "unknown attribute" message. */
void nfp_attr_names(const struct nfp_attr *attrs, uint16_t n, char *buf, size_t len);

#endif /* NFP_ATTR_H */
