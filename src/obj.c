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

void *nfp_obj_new(const struct nfp_obj *obj)
{
	void *o = obj->backend->alloc();

	if (o && obj->fixed_attr != NFP_NO_ATTR)
		obj->backend->set(o, obj->fixed_attr, &obj->fixed_value, sizeof(obj->fixed_value));
	return o;
}

bool nfp_obj_is(const struct nfp_obj *obj, void *o)
{
	uint32_t len, v;
	const void *p;

	if (obj->fixed_attr == NFP_NO_ATTR)
		return true;
	if (!obj->backend->is_set(o, obj->fixed_attr))
		return false;
	p = obj->backend->get(o, obj->fixed_attr, &len);
	if (!p)
		return false;
	memcpy(&v, p, sizeof(v));
	return v == obj->fixed_value;
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
	uint64_t seen[(UINT16_MAX + 1) / 64];	/* by attribute index */
	int n, ndef = 0;
	char what[96], key[NFP_ATOM_MAX];

	nfp_join(what, sizeof(what), "attributes of ", owner, NULL);
	if (nfp_dec_map(req, idx, &n, what) < 0)
		return -1;
	nfp_join(what, sizeof(what), "key of the attributes of ", owner, NULL);
	for (int i = 0; i < n; i++) {
		const struct nfp_attr *a;

		if (nfp_dec_atom(req, idx, key, what) < 0)
			return -1;
		a = nfp_obj_attr(req, attrs, nattrs, owner, key);
		if (!a)
			return -1;
		/* ETF maps may repeat a key (BEAM maps never do): refused, not
		 * "the last one wins". */
		{
			size_t at = (size_t)(a - attrs);
			uint64_t bit = 1ull << (at % 64);

			if (i == 0)
				memset(seen, 0, ((size_t)nattrs + 63) / 64 * sizeof(seen[0]));
			if (seen[at / 64] & bit)
				return nfp_fail(req, "%s: the key :%s appears twice", what + strlen("key of the "),
						key);
			seen[at / 64] |= bit;
		}
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

/* Where a list of expressions goes: a rule's body, a set's or an
 * element's stateful expressions, or an expression's own (dynset). */
struct exprs_owner {
	const struct nfp_backend *be;	/* the owner's: add_expr, expr_foreach */
	void *o;
	uint16_t attr;			/* for an expression owner */
};

static uint32_t count_exprs(const struct exprs_owner *w);

static void owner_add(const struct exprs_owner *w, struct nftnl_expr *e)
{
	w->be->add_expr(w->o, w->attr, e);
}

static int decode_exprs(struct nfp_req *req, int *idx, const struct exprs_owner *w,
			const char *what)
{
	int n;

	uint32_t have;

	if (nfp_dec_list(req, idx, &n, what) < 0)
		return -1;
	have = count_exprs(w);
	if (n + have > NFP_RULE_MAXEXPRS)
		return nfp_fail(req, "%s: %d expressions%s, the kernel takes at most %d", what,
				n + (int)have, have ? " with those already there" : "",
				NFP_RULE_MAXEXPRS);
	for (int i = 0; i < n; i++) {
		struct nftnl_expr *e;

		if (nfp_expr_decode(req, idx, &e) < 0)
			return -1;
		owner_add(w, e);
	}
	return n ? nfp_dec_list_end(req, idx, what) : 0;
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
		void *it = nfp_obj_new(item);

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
	char what[96];

	if (a->wire == NFP_W_EXPRS) {
		struct exprs_owner w = { obj->backend, o, a->id };

		snprintf(what, sizeof(what), "attribute :%s of %s", a->name, obj->name);
		return decode_exprs(req, idx, &w, what);
	}
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

	if (a->wire == NFP_W_EXPRS) {
		struct exprs_owner w = { &nfp_backend_expr, t->o, a->id };
		char what[96];

		snprintf(what, sizeof(what), "attribute :%s of %s", a->name, t->owner);
		return decode_exprs(req, idx, &w, what);
	}
	return nfp_attr_decode(req, idx, a, t);
}

int nfp_expr_decode_attr(struct nfp_req *req, int *idx, const struct nfp_expr *d,
			 struct nftnl_expr *e, const struct nfp_attr *a)
{
	struct nfp_target t;
	char owner[64];

	snprintf(owner, sizeof(owner), "expression %s", d->name);
	nfp_target_expr(&t, d, e);
	t.owner = owner;
	return expr_one(req, idx, a, &t);
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

struct exprs_enc {
	ei_x_buff *x;
	uint32_t n;
};

static int encode_expr_cb(struct nftnl_expr *e, void *data)
{
	struct exprs_enc *c = data;

	if (c->x)
		nfp_expr_encode(c->x, e);
	c->n++;
	return 0;
}

/* Calls cb for every expression of an owner. */
static void owner_foreach_cb(const struct exprs_owner *w, nfp_expr_cb cb, void *data)
{
	w->be->expr_foreach(w->o, cb, data);
}

static void encode_exprs(ei_x_buff *x, const struct exprs_owner *w)
{
	struct exprs_enc c = { x, 0 };
	int at = nfp_enc_list_open(x);

	owner_foreach_cb(w, encode_expr_cb, &c);
	nfp_enc_list_close(x, at, c.n);
}

static uint32_t count_exprs(const struct exprs_owner *w)
{
	struct exprs_enc c = { NULL, 0 };

	owner_foreach_cb(w, encode_expr_cb, &c);
	return c.n;
}

/* t: the expression's target, built once by the caller. */
static bool expr_shown(const struct nfp_target *t, const struct nfp_attr *a)
{
	if (a->wire == NFP_W_EXPRS) {
		struct exprs_owner w = { &nfp_backend_expr, t->o, a->id };

		return count_exprs(&w) > 0;
	}
	return nfp_attr_shown(a, t);
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
		n += expr_shown(&t, &d->attrs[i]);
	ei_x_encode_map_header(x, n);
	for (uint16_t i = 0; i < d->nattrs; i++) {
		const struct nfp_attr *a = &d->attrs[i];

		if (!expr_shown(&t, a))
			continue;
		ei_x_encode_atom(x, a->name);
		if (a->wire == NFP_W_EXPRS) {
			struct exprs_owner w = { &nfp_backend_expr, e, a->id };

			encode_exprs(x, &w);
		} else {
			nfp_attr_encode(x, a, &t);
		}
	}
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
		struct exprs_owner w = { obj->backend, o, a->id };

		encode_exprs(x, &w);
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

/* Whether a map shows attribute a: scalars when set; a rule's body and
 * element lists always; other expression lists when not empty. */
static bool shown(const struct nfp_obj *obj, void *o, const struct nfp_attr *a,
		  unsigned skip)
{
	struct nfp_target t;

	if (a->flags & skip)
		return false;
	if (a->wire == NFP_W_OBJECTS)
		return true;
	if (a->wire == NFP_W_EXPRS) {
		struct exprs_owner w = { obj->backend, o, a->id };

		return obj->backend->exprs_always || count_exprs(&w) > 0;
	}
	nfp_target_obj(&t, obj, o);
	return nfp_attr_shown(a, &t);
}

void nfp_obj_encode_map(ei_x_buff *x, const struct nfp_obj *obj, void *o)
{
	nfp_obj_encode_map_skip(x, obj, o, 0);
}

void nfp_obj_encode_map_skip(ei_x_buff *x, const struct nfp_obj *obj, void *o, unsigned skip)
{
	uint32_t n = 0;

	for (uint16_t i = 0; i < obj->nattrs; i++)
		n += shown(obj, o, &obj->attrs[i], skip);
	ei_x_encode_map_header(x, n);
	for (uint16_t i = 0; i < obj->nattrs; i++) {
		const struct nfp_attr *a = &obj->attrs[i];

		if (!shown(obj, o, a, skip))
			continue;
		ei_x_encode_atom(x, a->name);
		nfp_obj_encode_attr(x, obj, o, a);
	}
}

/* --- message size bound ------------------------------------------------ */

/* libnftnl writes without bounds into the batch buffer, so the buffer must
 * hold the largest message an object can make. The bound: every attribute
 * that is set, with its header and padding, and a data-register nest
 * around it; every expression with its name and nests. */
#define NFP_ATTR_OVERHEAD 16
#define NFP_EXPR_OVERHEAD 32

static size_t attrs_size(const struct nfp_target *t, void *o, const struct nfp_attr *attrs,
			 uint16_t n, size_t *max_item);

static int size_expr_cb(struct nftnl_expr *e, void *data)
{
	size_t *total = data;
	const struct nfp_expr *d = nfp_expr_desc(e);
	struct nfp_target t;

	/* An expression the schema does not know cannot be in a request. */
	if (!d)
		return 0;
	*total += NFP_EXPR_OVERHEAD + strlen(d->name);
	nfp_target_expr(&t, d, e);
	*total += attrs_size(&t, e, d->attrs, d->nattrs, NULL);
	return 0;
}

struct size_items {
	const struct nfp_obj *item;
	size_t total, max;
};

static int size_item_cb(struct nftnl_set_elem *e, void *data)
{
	struct size_items *c = data;
	size_t n = nfp_obj_wire_size(c->item, e, NULL) + NFP_EXPR_OVERHEAD;

	c->total += n;
	if (n > c->max)
		c->max = n;
	return 0;
}

static size_t attrs_size(const struct nfp_target *t, void *o, const struct nfp_attr *attrs,
			 uint16_t n, size_t *max_item)
{
	size_t total = 0;

	for (uint16_t i = 0; i < n; i++) {
		const struct nfp_attr *a = &attrs[i];
		uint32_t len = 0;
		const void *p;

		if (a->wire == NFP_W_EXPRS) {
			struct exprs_owner w = { t->be, o, a->id };
			size_t sub = 0;

			owner_foreach_cb(&w, size_expr_cb, &sub);
			total += NFP_ATTR_OVERHEAD + sub;
			continue;
		}
		if (a->wire == NFP_W_OBJECTS) {
			struct size_items c = { a->item, 0, 0 };

			nftnl_set_elem_foreach(o, size_item_cb, &c);
			total += NFP_ATTR_OVERHEAD + c.total;
			if (max_item && c.max > *max_item)
				*max_item = c.max;
			continue;
		}
		if (!t->be->is_set(o, a->id))
			continue;
		p = t->be->get(o, a->id, &len);
		if (!p)
			continue;
		if (a->wire == NFP_W_STRING)
			len = (uint32_t)strnlen(p, 4096) + 1;
		else if (a->wire == NFP_W_STRLIST) {
			const char *const *v = p;

			len = 0;
			for (size_t k = 0; v[k]; k++)
				len += NFP_ATTR_OVERHEAD + (uint32_t)strnlen(v[k], 4096) + 1;
		} else if (len == 0 || a->wire <= NFP_W_S32) {
			len = 8;
		}
		total += NFP_ATTR_OVERHEAD + len;
	}
	return total;
}

size_t nfp_obj_wire_size(const struct nfp_obj *obj, void *o, size_t *max_item)
{
	struct nfp_target t;

	nfp_target_obj(&t, obj, o);
	return attrs_size(&t, o, obj->attrs, obj->nattrs, max_item);
}
