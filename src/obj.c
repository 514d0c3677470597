// SPDX-License-Identifier: GPL-2.0-or-later
/* Whole objects between ETF and libnftnl, see obj.h. */
#include <stdio.h>
#include <string.h>

#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>

#include "attr.h"
#include "backend.h"
#include "etf.h"
#include "obj.h"

#define NFP_MAX_DEFERRED 8	/* enum-by attributes per object */

const struct nfp_attr *nfp_obj_attr(struct nfp_req *req, const struct nfp_attr *attrs,
				    uint16_t n, const char *owner, const char *name)
{
	const struct nfp_attr *a = nfp_attr_find(attrs, n, name);
	char names[768];

	if (a)
		return a;
	nfp_attr_names(attrs, n, names, sizeof(names));
	nfp_fail(req, "unknown attribute :%s for %s (known: %s)", name, owner, names);
	return NULL;
}

const struct nfp_expr *nfp_expr_desc(struct nftnl_expr *e)
{
	const char *name = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);

	return name ? nfp_expr_find(name) : NULL;
}

/* Decodes a map whose keys are attribute atoms. Attributes whose enum
 * depends on another attribute are decoded last, once it is set. */
static int decode_attr_map(struct nfp_req *req, int *idx, const struct nfp_attr *attrs,
			   uint16_t nattrs, const char *owner, unsigned flags,
			   int (*one)(struct nfp_req *, int *, const struct nfp_attr *, void *),
			   void *ctx)
{
	struct { const struct nfp_attr *a; int at; } deferred[NFP_MAX_DEFERRED];
	int n, ndef = 0;
	char what[96], key[NFP_ATOM_MAX];

	snprintf(what, sizeof(what), "attributes of %s", owner);
	if (nfp_dec_map(req, idx, &n, what) < 0)
		return -1;
	for (int i = 0; i < n; i++) {
		const struct nfp_attr *a;

		snprintf(what, sizeof(what), "key of the attributes of %s", owner);
		if (nfp_dec_atom(req, idx, key, what) < 0)
			return -1;
		a = nfp_obj_attr(req, attrs, nattrs, owner, key);
		if (!a)
			return -1;
		if (((flags & NFP_DEC_SKIP_READONLY) && (a->flags & NFP_A_READONLY)) ||
		    ((flags & NFP_DEC_SKIP_HANDLE) && (a->flags & NFP_A_HANDLE)) ||
		    ((flags & NFP_DEC_KEYS_ONLY) && a->wire != NFP_W_OBJECTS &&
		     !(a->flags & (NFP_A_KEY | NFP_A_HANDLE)))) {
			nfp_etf_skip(req->buf, idx);
			continue;
		}
		if (a->sel && ndef < NFP_MAX_DEFERRED) {
			deferred[ndef].a = a;
			deferred[ndef++].at = *idx;
			nfp_etf_skip(req->buf, idx);
			continue;
		}
		if (one(req, idx, a, ctx) < 0)
			return -1;
	}
	for (int i = 0; i < ndef; i++) {
		int at = deferred[i].at;

		if (one(req, &at, deferred[i].a, ctx) < 0)
			return -1;
	}
	return 0;
}

struct obj_ctx {
	const struct nfp_obj *obj;
	void *o;
};

static int decode_exprs(struct nfp_req *req, int *idx, void *rule)
{
	int n;

	if (nfp_dec_list(req, idx, &n, "attribute :exprs of rule") < 0)
		return -1;
	if (n > NFP_RULE_MAXEXPRS)
		return nfp_fail(req, "attribute :exprs of rule: %d expressions, the kernel takes at most %d",
				n, NFP_RULE_MAXEXPRS);
	for (int i = 0; i < n; i++) {
		struct nftnl_expr *e;

		if (nfp_expr_decode(req, idx, &e) < 0)
			return -1;
		nftnl_rule_add_expr(rule, e);
	}
	return n ? nfp_dec_list_end(req, idx, "attribute :exprs of rule") : 0;
}

static int decode_items(struct nfp_req *req, int *idx, const struct nfp_obj *obj,
			const struct nfp_attr *a, void *o)
{
	const struct nfp_obj *item = a->item;
	char what[96];
	int n;

	snprintf(what, sizeof(what), "attribute :%s of %s", a->name, obj->name);
	if (nfp_dec_list(req, idx, &n, what) < 0)
		return -1;
	for (int i = 0; i < n; i++) {
		void *it = item->backend->alloc();

		if (!it)
			return nfp_fail(req, "%s: out of memory", what);
		if (nfp_obj_decode_map(req, idx, item, it, NFP_DEC_SKIP_READONLY) < 0) {
			item->backend->free(it);
			return -1;
		}
		/* The only list-of-objects the kernel has: elements of a set. */
		nftnl_set_elem_add(o, it);
	}
	return n ? nfp_dec_list_end(req, idx, what) : 0;
}

int nfp_obj_decode_attr(struct nfp_req *req, int *idx, const struct nfp_obj *obj,
			void *o, const struct nfp_attr *a)
{
	struct nfp_target t;

	if (a->wire == NFP_W_EXPRS)
		return decode_exprs(req, idx, o);
	if (a->wire == NFP_W_OBJECTS)
		return decode_items(req, idx, obj, a, o);
	nfp_target_obj(&t, obj, o);
	return nfp_attr_decode(req, idx, a, &t);
}

static int obj_one(struct nfp_req *req, int *idx, const struct nfp_attr *a, void *ctx)
{
	struct obj_ctx *c = ctx;

	return nfp_obj_decode_attr(req, idx, c->obj, c->o, a);
}

int nfp_obj_decode_map(struct nfp_req *req, int *idx, const struct nfp_obj *obj,
		       void *o, unsigned flags)
{
	struct obj_ctx c = { obj, o };

	return decode_attr_map(req, idx, obj->attrs, obj->nattrs, obj->name, flags,
			       obj_one, &c);
}

static int expr_one(struct nfp_req *req, int *idx, const struct nfp_attr *a, void *ctx)
{
	struct nfp_target *t = ctx;

	return nfp_attr_decode(req, idx, a, t);
}

int nfp_expr_decode_attrs(struct nfp_req *req, int *idx, const struct nfp_expr *d,
			  struct nftnl_expr *e)
{
	struct nfp_target t;
	char owner[64];

	snprintf(owner, sizeof(owner), "expression %s", d->name);
	nfp_target_expr(&t, d, e);
	t.owner = owner;
	return decode_attr_map(req, idx, d->attrs, d->nattrs, owner, 0, expr_one, &t);
}

int nfp_expr_decode(struct nfp_req *req, int *idx, struct nftnl_expr **out)
{
	char name[NFP_ATOM_MAX], names[1024];
	const struct nfp_expr *d;
	struct nftnl_expr *e;
	size_t off = 0;

	if (nfp_dec_tuple(req, idx, 2, "expression (expected {kind, attrs})") < 0 ||
	    nfp_dec_atom(req, idx, name, "expression kind") < 0)
		return -1;
	d = nfp_expr_find(name);
	if (!d) {
		names[0] = '\0';
		for (size_t i = 0; i < nfp_nexprs && off < sizeof(names); i++)
			off += snprintf(names + off, sizeof(names) - off, "%s%s",
					i ? ", " : "", nfp_exprs[i]->name);
		return nfp_fail(req, "unknown expression :%s (known: %s)", name, names);
	}
	e = nftnl_expr_alloc(d->name);
	if (!e)
		return nfp_fail(req, "expression :%s: libnftnl cannot allocate it", name);
	if (nfp_expr_decode_attrs(req, idx, d, e) < 0) {
		nftnl_expr_free(e);
		return -1;
	}
	*out = e;
	return 0;
}

void nfp_expr_encode(ei_x_buff *x, struct nftnl_expr *e)
{
	const struct nfp_expr *d = nfp_expr_desc(e);
	struct nfp_target t;
	uint32_t n = 0;

	ei_x_encode_tuple_header(x, 2);
	if (!d) {
		/* A kind this schema does not know: name it, keep going. */
		const char *name = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);

		ei_x_encode_atom(x, name ? name : "unknown");
		ei_x_encode_map_header(x, 0);
		return;
	}
	ei_x_encode_atom(x, d->name);
	nfp_target_expr(&t, d, e);
	for (uint16_t i = 0; i < d->nattrs; i++)
		n += t.is_set(e, d->attrs[i].id);
	ei_x_encode_map_header(x, n);
	for (uint16_t i = 0; i < d->nattrs; i++) {
		if (!t.is_set(e, d->attrs[i].id))
			continue;
		ei_x_encode_atom(x, d->attrs[i].name);
		nfp_attr_encode(x, &d->attrs[i], &t);
	}
}

static int encode_expr_cb(struct nftnl_expr *e, void *data)
{
	nfp_expr_encode(data, e);
	return 0;
}

struct items_ctx {
	ei_x_buff *x;
	const struct nfp_obj *item;
	uint32_t n;
};

static int encode_item_cb(struct nftnl_set_elem *e, void *data)
{
	struct items_ctx *c = data;

	nfp_obj_encode_map(c->x, c->item, e);
	c->n++;
	return 0;
}

void nfp_obj_encode_attr(ei_x_buff *x, const struct nfp_obj *obj, void *o,
			 const struct nfp_attr *a)
{
	struct nfp_target t;

	if (a->wire == NFP_W_EXPRS) {
		struct nftnl_expr_iter *it = nftnl_expr_iter_create(o);
		uint32_t n = 0;
		int at = nfp_enc_list_open(x);

		if (it) {
			struct nftnl_expr *e;

			while ((e = nftnl_expr_iter_next(it))) {
				encode_expr_cb(e, x);
				n++;
			}
			nftnl_expr_iter_destroy(it);
		}
		nfp_enc_list_close(x, at, n);
		return;
	}
	if (a->wire == NFP_W_OBJECTS) {
		struct items_ctx c = { x, a->item, 0 };
		int at = nfp_enc_list_open(x);

		nftnl_set_elem_foreach(o, encode_item_cb, &c);
		nfp_enc_list_close(x, at, c.n);
		return;
	}
	nfp_target_obj(&t, obj, o);
	nfp_attr_encode(x, a, &t);
}

void nfp_obj_encode_map(ei_x_buff *x, const struct nfp_obj *obj, void *o)
{
	const struct nfp_backend *be = obj->backend;
	uint32_t n = 0;

	for (uint16_t i = 0; i < obj->nattrs; i++) {
		const struct nfp_attr *a = &obj->attrs[i];

		n += a->wire == NFP_W_EXPRS || a->wire == NFP_W_OBJECTS || be->is_set(o, a->id);
	}
	ei_x_encode_map_header(x, n);
	for (uint16_t i = 0; i < obj->nattrs; i++) {
		const struct nfp_attr *a = &obj->attrs[i];

		if (a->wire != NFP_W_EXPRS && a->wire != NFP_W_OBJECTS && !be->is_set(o, a->id))
			continue;
		ei_x_encode_atom(x, a->name);
		nfp_obj_encode_attr(x, obj, o, a);
	}
}
