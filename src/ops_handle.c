// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The handle API: libnftnl objects and expressions behind integer handles,
 * one op per libnftnl call (alloc, set, get, unset, free), plus to_map.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>

#include "attr.h"
#include "backend.h"
#include "etf.h"
#include "handles.h"
#include "obj.h"
#include "ops.h"

static const char *handle_kind_name(const struct nfp_handle *h)
{
	switch (h->kind) {
	case NFP_H_OBJ:
		return h->obj->name;
	case NFP_H_EXPR:
		return "expression";
	case NFP_H_BATCH:
		return "batch";
	case NFP_H_SOCKET:
		return "socket";
	default:
		return "free slot";
	}
}

static const char *article(const char *noun)
{
	return strchr("aeiou", noun[0]) ? "an" : "a";
}

/* Decodes a handle argument of the expected kind (and object, if any). */
struct nfp_handle *nfp_arg_handle(struct nfp_req *req, uint8_t kind,
				  const struct nfp_obj *obj, const char *what)
{
	struct nfp_handle *h;
	uint64_t id;

	if (nfp_dec_u64(req, &req->idx, &id, what) < 0)
		return NULL;
	h = nfp_handle_get(id);
	if (!h) {
		nfp_fail(req, "%s: %llu is not a live handle (freed, or never allocated)", what,
			 (unsigned long long)id);
		return NULL;
	}
	if (h->kind != kind || (obj && h->obj != obj)) {
		const char *want = obj ? obj->name :
				   kind == NFP_H_EXPR ? "expression" :
				   kind == NFP_H_BATCH ? "batch" :
				   kind == NFP_H_SOCKET ? "socket" : "object";

		nfp_fail(req, "%s: handle %llu is %s %s, not %s %s", what,
			 (unsigned long long)id, article(handle_kind_name(h)), handle_kind_name(h),
			 article(want), want);
		return NULL;
	}
	return h;
}

/* The id of the handle argument that was decoded at `at`. */
uint64_t nfp_arg_id(const struct nfp_req *req, int at)
{
	unsigned long long id = 0;

	ei_decode_ulonglong(req->buf, &at, &id);
	return id;
}

static int reply_handle(struct nfp_req *req, uint64_t id)
{
	if (id == 0)
		return nfp_fail(req, "too many live handles (the limit is %d): free some first",
				NFP_MAX_HANDLES);
	nfp_enc_ok_head(req->out);
	nfp_enc_u64(req->out, id);
	return 0;
}

int nfp_fail_handle_bytes(struct nfp_req *req)
{
	return nfp_fail(req, "the live handles hold %llu bytes and the limit is %llu (64 MiB): free some first",
			(unsigned long long)nfp_handle_bytes(), (unsigned long long)NFP_MAX_HANDLE_BYTES);
}

/* A new handle's base share; 0, or frees it and fails. */
static int charge_new(struct nfp_req *req, uint64_t id)
{
	struct nfp_handle *h = nfp_handle_get(id);

	if (nfp_handle_charge(h, NFP_HANDLE_BASE_BYTES, false) == 0)
		return 0;
	if (h->kind == NFP_H_EXPR)
		nftnl_expr_free(h->ptr);
	else
		h->obj->backend->free(h->ptr);
	nfp_handle_release(id);
	return nfp_fail_handle_bytes(req);
}

int nfp_op_obj_alloc(struct nfp_req *req)
{
	const struct nfp_obj *obj = req->op->obj;
	void *o = nfp_obj_new(obj);
	uint64_t id;

	if (!o)
		return nfp_fail_port(req, "out of memory");
	id = nfp_handle_new(NFP_H_OBJ, o);
	if (id == 0) {
		obj->backend->free(o);
		return reply_handle(req, 0);
	}
	nfp_handle_get(id)->obj = obj;
	if (charge_new(req, id) < 0)
		return -1;
	return reply_handle(req, id);
}

int nfp_op_expr_alloc(struct nfp_req *req)
{
	char name[NFP_ATOM_MAX];
	const struct nfp_expr *d;
	struct nftnl_expr *e;
	uint64_t id;

	if (nfp_dec_atom(req, &req->idx, name, "expression kind") < 0)
		return -1;
	d = nfp_expr_find(name);
	if (!d)
		return nfp_fail(req, "unknown expression :%s", name);
	e = nftnl_expr_alloc(d->name);
	if (!e)
		return nfp_fail(req, "libnftnl cannot allocate expression %s", d->name);
	id = nfp_handle_new(NFP_H_EXPR, e);
	if (id == 0) {
		nftnl_expr_free(e);
		return reply_handle(req, 0);
	}
	nfp_handle_get(id)->expr = d;
	if (charge_new(req, id) < 0)
		return -1;
	return reply_handle(req, id);
}

/* The handle of a set/get/unset/free/to_map op: an object of the op's
 * type, or an expression for the expr_ ops (whose op has no object). */
static struct nfp_handle *op_handle(struct nfp_req *req)
{
	const struct nfp_obj *obj = req->op->obj;

	return nfp_arg_handle(req, obj ? NFP_H_OBJ : NFP_H_EXPR, obj, "handle");
}

static const struct nfp_attr *op_attr(struct nfp_req *req, struct nfp_handle *h)
{
	char name[NFP_ATOM_MAX], owner[64];

	if (nfp_dec_atom(req, &req->idx, name, "attribute") < 0)
		return NULL;
	if (h->kind == NFP_H_OBJ)
		return nfp_obj_attr(req, h->obj->attrs, h->obj->nattrs, h->obj->name, name);
	snprintf(owner, sizeof(owner), "expression %s", h->expr->name);
	return nfp_obj_attr(req, h->expr->attrs, h->expr->nattrs, owner, name);
}

static uint32_t rule_nexprs(void *rule)
{
	struct nftnl_expr_iter *it = nftnl_expr_iter_create(rule);
	uint32_t n = 0;

	if (!it)
		return 0;
	while (nftnl_expr_iter_next(it))
		n++;
	nftnl_expr_iter_destroy(it);
	return n;
}

/* What setting a to the value at req->idx adds to h: the value's encoded
 * size (and a little for libnftnl's own record of it). A list attribute
 * (expressions, elements) adds to what the handle holds; any other
 * replaces the attribute's earlier share. */
static int charge_value(struct nfp_req *req, struct nfp_handle *h, const struct nfp_attr *a,
			const struct nfp_attr *attrs, uint16_t nattrs, uint64_t *charged)
{
	int end = req->idx;
	uint64_t size;
	uint32_t *share;

	nfp_etf_skip(req->buf, &end);
	size = (uint64_t)(end - req->idx) + 64;
	*charged = 0;
	if (a->wire == NFP_W_EXPRS || a->wire == NFP_W_OBJECTS) {
		if (nfp_handle_charge(h, size, false) < 0)
			return nfp_fail_handle_bytes(req);
		*charged = size;
		return 0;
	}
	share = nfp_handle_attr_bytes(h, nattrs);
	if (!share)
		return nfp_fail(req, "out of memory");
	nfp_handle_uncharge(h, share[a - attrs]);
	share[a - attrs] = 0;
	if (nfp_handle_charge(h, size, false) < 0)
		return nfp_fail_handle_bytes(req);
	share[a - attrs] = (uint32_t)size;
	*charged = size;
	return 0;
}

int nfp_op_obj_set(struct nfp_req *req)
{
	struct nfp_handle *h = op_handle(req);
	const struct nfp_attr *a;
	uint64_t charged;

	if (!h || !(a = op_attr(req, h)))
		return -1;
	if (h->kind == NFP_H_EXPR) {
		if (charge_value(req, h, a, h->expr->attrs, h->expr->nattrs, &charged) < 0)
			return -1;
		if (nfp_expr_decode_attr(req, &req->idx, h->expr, h->ptr, a) < 0)
			return -1;
	} else {
		if (charge_value(req, h, a, h->obj->attrs, h->obj->nattrs, &charged) < 0)
			return -1;
		/* Expression lists are capped by the decoder, whatever owns them. */
		if (nfp_obj_decode_attr(req, &req->idx, h->obj, h->ptr, a) < 0)
			return -1;
	}
	nfp_enc_atom(req->out, "ok");
	return 0;
}

int nfp_op_obj_get(struct nfp_req *req)
{
	struct nfp_handle *h = op_handle(req);
	const struct nfp_attr *a;
	struct nfp_target t;

	if (!h || !(a = op_attr(req, h)))
		return -1;
	if (h->kind == NFP_H_EXPR) {
		nfp_target_expr(&t, h->expr, h->ptr);
		if (!t.be->is_set(h->ptr, a->id))
			return nfp_fail(req, "attribute :%s of expression %s is not set", a->name,
					h->expr->name);
		nfp_enc_ok_head(req->out);
		nfp_attr_encode(req->out, a, &t);
		return 0;
	}
	if (a->wire != NFP_W_EXPRS && a->wire != NFP_W_OBJECTS &&
	    !h->obj->backend->is_set(h->ptr, a->id))
		return nfp_fail(req, "attribute :%s of %s is not set", a->name, h->obj->name);
	nfp_enc_ok_head(req->out);
	nfp_obj_encode_attr(req->out, h->obj, h->ptr, a);
	return 0;
}

/* libnftnl 1.2.4 has no nftnl_expr_unset(): rebuild the expression
 * without the attribute. */
static int expr_unset(struct nfp_req *req, struct nfp_handle *h, const struct nfp_attr *a)
{
	struct nftnl_expr *old = h->ptr, *e = nftnl_expr_alloc(h->expr->name);

	if (!e)
		return nfp_fail_port(req, "out of memory");
	for (uint16_t i = 0; i < h->expr->nattrs; i++) {
		const struct nfp_attr *x = &h->expr->attrs[i];
		uint32_t len;
		const void *p;

		if (x == a || !nftnl_expr_is_set(old, x->id))
			continue;
		p = nftnl_expr_get(old, x->id, &len);
		if (p && (x->flags & NFP_A_GIVE_BUFFER)) {
			/* The new expression takes over a copy. */
			void *copy = malloc(len ? len : 1);

			if (!copy) {
				nftnl_expr_free(e);
				return nfp_fail_port(req, "out of memory");
			}
			memcpy(copy, p, len);
			p = copy;
		}
		if (p && nftnl_expr_set(e, x->id, p, len) < 0) {
			nftnl_expr_free(e);
			return nfp_fail(req, "libnftnl rejected attribute :%s", x->name);
		}
	}
	nftnl_expr_free(old);
	h->ptr = e;
	return 0;
}

int nfp_op_obj_unset(struct nfp_req *req)
{
	struct nfp_handle *h = op_handle(req);
	const struct nfp_attr *a;

	if (!h || !(a = op_attr(req, h)))
		return -1;
	if (h->kind == NFP_H_EXPR) {
		if (expr_unset(req, h, a) < 0)
			return -1;
	} else {
		if (a->wire == NFP_W_EXPRS || a->wire == NFP_W_OBJECTS)
			return nfp_fail(req, "attribute :%s of %s is a list and cannot be unset; free the object instead",
					a->name, h->obj->name);
		if (!h->obj->backend->unset)
			return nfp_fail(req, "libnftnl 1.2.4 cannot unset attributes of a %s; set a new value or free it",
					h->obj->name);
		/* An object keeps libnftnl's state of a set-once attribute
		 * (an expression is rebuilt instead, see expr_unset()). */
		if (a->flags & NFP_A_SET_ONCE)
			return nfp_fail(req, "attribute :%s of %s can be set once only (libnftnl 1.2.4 mishandles a second value); free the object and allocate another",
					a->name, h->obj->name);
		nfp_attr_unset(h->obj->backend, h->ptr, a);
	}
	if (h->attr_bytes) {
		const struct nfp_attr *attrs = h->kind == NFP_H_EXPR ? h->expr->attrs : h->obj->attrs;

		nfp_handle_uncharge(h, h->attr_bytes[a - attrs]);
		h->attr_bytes[a - attrs] = 0;
	}
	nfp_enc_atom(req->out, "ok");
	return 0;
}

int nfp_op_obj_free(struct nfp_req *req)
{
	int at = req->idx;
	struct nfp_handle *h = op_handle(req);

	if (!h)
		return -1;
	if (h->kind == NFP_H_EXPR)
		nftnl_expr_free(h->ptr);
	else
		h->obj->backend->free(h->ptr);
	nfp_handle_release(nfp_arg_id(req, at));
	nfp_enc_atom(req->out, "ok");
	return 0;
}

int nfp_op_obj_to_map(struct nfp_req *req)
{
	struct nfp_handle *h = op_handle(req);

	if (!h)
		return -1;
	nfp_enc_ok_head(req->out);
	if (h->kind == NFP_H_EXPR)
		nfp_expr_encode(req->out, h->ptr);
	else
		nfp_obj_encode_map(req->out, h->obj, h->ptr);
	return 0;
}

int nfp_op_rule_add_expr(struct nfp_req *req)
{
	int at0 = req->idx;
	struct nfp_handle *r = nfp_arg_handle(req, NFP_H_OBJ, NULL, "rule");
	struct nfp_handle *e;
	int at;

	if (!r)
		return -1;
	if (r->obj->backend != &nfp_backend_rule)
		return nfp_fail(req, "rule: handle %llu is %s %s, not a rule",
				(unsigned long long)nfp_arg_id(req, at0), article(r->obj->name),
				r->obj->name);
	at = req->idx;
	e = nfp_arg_handle(req, NFP_H_EXPR, NULL, "expr");
	if (!e)
		return -1;
	if (rule_nexprs(r->ptr) >= NFP_RULE_MAXEXPRS)
		return nfp_fail(req, "a rule holds at most %d expressions", NFP_RULE_MAXEXPRS);
	nftnl_rule_add_expr(r->ptr, e->ptr);
	{
		/* What the expression held, the rule holds now. */
		uint64_t bytes = e->bytes;

		nfp_handle_release(nfp_arg_id(req, at));
		nfp_handle_charge(r, bytes, true);
	}
	nfp_enc_atom(req->out, "ok");
	return 0;
}

int nfp_op_set_add_elem(struct nfp_req *req)
{
	int at0 = req->idx;
	struct nfp_handle *s = nfp_arg_handle(req, NFP_H_OBJ, NULL, "set");
	struct nfp_handle *e;
	int at;

	if (!s)
		return -1;
	if (s->obj->backend->alloc != nfp_backend_set.alloc)
		return nfp_fail(req, "set: handle %llu is %s %s, not a set",
				(unsigned long long)nfp_arg_id(req, at0), article(s->obj->name),
				s->obj->name);
	at = req->idx;
	e = nfp_arg_handle(req, NFP_H_OBJ, NULL, "elem");
	if (!e)
		return -1;
	if (e->obj->backend != &nfp_backend_set_elem)
		return nfp_fail(req, "elem: handle is %s %s, not a set_elem", article(e->obj->name),
				e->obj->name);
	nftnl_set_elem_add(s->ptr, e->ptr);
	{
		uint64_t bytes = e->bytes;

		nfp_handle_release(nfp_arg_id(req, at));
		nfp_handle_charge(s, bytes, true);
	}
	nfp_enc_atom(req->out, "ok");
	return 0;
}
