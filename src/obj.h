/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Whole objects between ETF and libnftnl: attribute maps (declarative API
 * and `to_map`), a rule's expression list and a set's element list. Driven
 * only by the descriptor tables.
 */
#ifndef NFP_OBJ_H
#define NFP_OBJ_H

#include <stdbool.h>

#include <ei.h>

#include "desc.h"
#include "req.h"

struct nftnl_expr;

/* How a map is read. */
#define NFP_DEC_SKIP_READONLY	0x1	/* ignore kernel-reported attributes */
#define NFP_DEC_SKIP_HANDLE	0x2	/* ignore kernel-assigned handles */
#define NFP_DEC_KEYS_ONLY	0x4	/* only what identifies the object */

/* The kernel's NFT_RULE_MAXEXPRS. */
#define NFP_RULE_MAXEXPRS 128

/* A new libnftnl object for obj, with its fixed attribute set. */
void *nfp_obj_new(const struct nfp_obj *obj);
/* Whether o is of obj's type (its fixed attribute matches). */
bool nfp_obj_is(const struct nfp_obj *obj, void *o);

/* Decodes an attribute map into o (allocated by nfp_obj_new()). */
int nfp_obj_decode_map(struct nfp_req *req, int *idx, const struct nfp_obj *obj,
		       void *o, unsigned flags);
/* Sets one attribute (handle API); list attributes append. */
int nfp_obj_decode_attr(struct nfp_req *req, int *idx, const struct nfp_obj *obj,
			void *o, const struct nfp_attr *a);
/* Encodes every attribute that is set (and list attributes) as a map. */
void nfp_obj_encode_map(ei_x_buff *x, const struct nfp_obj *obj, void *o);
/* The same, leaving out attributes with any of the NFP_A_* flags in skip
 * (a dump leaves out what names kernel handles, and read-only values). */
void nfp_obj_encode_map_skip(ei_x_buff *x, const struct nfp_obj *obj, void *o,
			     unsigned skip);
/* Encodes one attribute's value. */
void nfp_obj_encode_attr(ei_x_buff *x, const struct nfp_obj *obj, void *o,
			 const struct nfp_attr *a);
/* Finds attribute `name` of obj or fails naming the known ones. */
const struct nfp_attr *nfp_obj_attr(struct nfp_req *req, const struct nfp_attr *attrs,
				    uint16_t n, const char *owner, const char *name);

/* An upper bound of the bytes libnftnl writes for o's attributes into a
 * netlink message; *max_item gets the largest list item (an element). */
size_t nfp_obj_wire_size(const struct nfp_obj *obj, void *o, size_t *max_item);

/* {kind, attrs} <-> struct nftnl_expr. */
int nfp_expr_decode(struct nfp_req *req, int *idx, struct nftnl_expr **out);
int nfp_expr_decode_attrs(struct nfp_req *req, int *idx, const struct nfp_expr *d,
			  struct nftnl_expr *e);
/* Sets one attribute of an expression (handle API); lists append. */
int nfp_expr_decode_attr(struct nfp_req *req, int *idx, const struct nfp_expr *d,
			 struct nftnl_expr *e, const struct nfp_attr *a);
void nfp_expr_encode(ei_x_buff *x, struct nftnl_expr *e);
const struct nfp_expr *nfp_expr_desc(struct nftnl_expr *e);

#endif /* NFP_OBJ_H */
