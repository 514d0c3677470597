// SPDX-License-Identifier: GPL-2.0-or-later
/* The listing engine, see listing.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>	/* before the kernel's headers (libc-compat) */

#include <libmnl/libmnl.h>
#include <libnftnl/expr.h>
#include <libnftnl/set.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nf_tables.h>

#include "attr.h"
#include "backend.h"
#include "etf.h"
#include "extack.h"
#include "listing.h"
#include "nl.h"
#include "obj.h"
#include "seen.h"

/* True when every attribute set in filter has the same value in o. */
static bool matches(const struct nfp_obj *obj, void *filter, void *o)
{
	const struct nfp_backend *be = obj->backend;

	if (!filter)
		return true;
	for (uint16_t i = 0; i < obj->nattrs; i++) {
		const struct nfp_attr *a = &obj->attrs[i];
		uint32_t fl, ol;
		const void *fp, *op;

		if (a->wire > NFP_W_BINARY || !be->is_set(filter, a->id))
			continue;
		if (a->id == obj->family_attr) {
			fp = be->get(filter, a->id, &fl);
			if (fp && *(const uint32_t *)fp == NFPROTO_UNSPEC)
				continue;
		}
		if (!be->is_set(o, a->id))
			return false;
		fp = be->get(filter, a->id, &fl);
		op = be->get(o, a->id, &ol);
		if (!fp || !op)
			return false;
		if (a->wire == NFP_W_STRING) {
			if (strcmp(fp, op) != 0)
				return false;
		} else if (fl != ol || memcmp(fp, op, fl) != 0) {
			return false;
		}
	}
	return true;
}

/* The kind (schema object) of a stateful object o of obj's backend. */
static const struct nfp_obj *kind_of(const struct nfp_obj *obj, void *o)
{
	for (size_t i = 0; i < nfp_nobjects; i++) {
		const struct nfp_obj *k = nfp_objects[i];

		if (k->backend == obj->backend && k->fixed_attr != NFP_NO_ATTR && nfp_obj_is(k, o))
			return k;
	}
	return NULL;
}


static int list_cb(const struct nlmsghdr *nlh, void *data)
{
	struct lister *l = data;
	const struct nfp_backend *be = l->obj->backend;
	const struct nfp_obj *as;
	void *o;

	/* libnftnl exits on attributes it does not expect: parse only
	 * messages of the type this dump returns. */
	if (nlh->nlmsg_type != (NFNL_SUBSYS_NFTABLES << 8 | l->obj->msg_new))
		return MNL_CB_OK;
	o = be->alloc();
	if (!o)
		return MNL_CB_ERROR;
	if (be->parse(nlh, o) < 0 || !matches(l->obj, l->filter, o) ||
	    !(as = l->kinds ? kind_of(l->obj, o) : nfp_obj_is(l->obj, o) ? l->as : NULL)) {
		be->free(o);
		return MNL_CB_OK;
	}
	if (l->keep) {
		if (l->nkeep == l->keep_cap) {
			uint32_t cap = l->keep_cap * 2;
			void **k = realloc(l->keep, cap * sizeof(*k));

			if (!k) {
				be->free(o);
				return MNL_CB_ERROR;
			}
			l->keep = k;
			l->keep_cap = cap;
		}
		l->keep[l->nkeep++] = o;
		return MNL_CB_OK;
	}
	if (nfp_enc_reserve(l->x, 64 * 1024) < 0) {
		be->free(o);
		return MNL_CB_ERROR;
	}
	if (l->verb) {
		ei_x_encode_tuple_header(l->x, 3);
		nfp_enc_atom(l->x, l->verb);
		nfp_enc_atom(l->x, as->name);
		nfp_obj_encode_map_skip(l->x, as, o, NFP_DUMP_SKIP);
	} else {
		/* A listed rule's position is implied by the order. */
		nfp_obj_encode_map_skip(l->x, as, o, NFP_A_TRANSIENT);
	}
	l->count++;
	be->free(o);
	return MNL_CB_OK;
}

static void list_restart(void *data)
{
	struct lister *l = data;

	l->x->index = l->start;
	l->count = l->count_start;
	for (uint32_t i = 0; i < l->nkeep; i++)
		l->obj->backend->free(l->keep[i]);
	l->nkeep = 0;
}

uint16_t nfp_filter_family(const struct nfp_obj *obj, void *filter)
{
	uint32_t len;
	const void *p;

	if (!filter || obj->family_attr == NFP_NO_ATTR ||
	    !obj->backend->is_set(filter, obj->family_attr))
		return NFPROTO_UNSPEC;
	p = obj->backend->get(filter, obj->family_attr, &len);
	return p ? (uint16_t)*(const uint32_t *)p : NFPROTO_UNSPEC;
}

static int dump_once(struct nfp_req *req, struct nfp_sock *s, struct lister *l)
{
	l->start = l->x->index;
	l->count_start = l->count;
	return nfp_dump(req, s, l->obj->msg_get, nfp_filter_family(l->obj, l->filter), l->obj,
			l->filter, list_cb, l, list_restart);
}

static bool filter_names_parent(const struct nfp_obj *obj, void *filter)
{
	const struct nfp_list_per *lp = obj->list_per;

	for (uint8_t i = 0; filter && i < lp->n; i++)
		if (!obj->backend->is_set(filter, lp->dst[i]))
			return false;
	return filter != NULL;
}

static void copy_attr(const struct nfp_backend *from, void *f, uint16_t fa,
		      const struct nfp_backend *to, void *t, uint16_t ta)
{
	uint32_t len;
	const void *p;

	if (!from->is_set(f, fa))
		return;
	p = from->get(f, fa, &len);
	if (p)
		to->set(t, ta, p, len);
}

/* One dump per parent (a chain's rules): list the parents that match the
 * filter, then dump each one's children with the parent named. */
static int dump_per_parent(struct nfp_req *req, struct nfp_sock *s, struct lister *l)
{
	const struct nfp_list_per *lp = l->obj->list_per;
	const struct nfp_backend *pb = lp->obj->backend, *cb = l->obj->backend;
	struct lister parents = { .req = req, .x = req->out, .obj = lp->obj, .as = lp->obj,
				  .keep_cap = 16 };
	void *filter = l->filter, *pf = nfp_obj_new(lp->obj);
	int ret = -1;

	parents.keep = malloc(parents.keep_cap * sizeof(void *));
	if (!pf || !parents.keep) {
		ret = nfp_fail_port(req, "out of memory");
		goto out;
	}
	for (uint8_t i = 0; filter && i < lp->n; i++)
		copy_attr(cb, filter, lp->dst[i], pb, pf, lp->src[i]);
	parents.filter = pf;
	if (dump_once(req, s, &parents) < 0)
		goto out;
	for (uint32_t k = 0; k < parents.nkeep; k++) {
		void *cf = nfp_obj_new(l->obj);

		if (!cf) {
			ret = nfp_fail_port(req, "out of memory");
			goto out;
		}
		/* The caller's filter, then the parent's names. */
		for (uint16_t i = 0; filter && i < l->obj->nattrs; i++)
			if (l->obj->attrs[i].wire <= NFP_W_BINARY)
				copy_attr(cb, filter, l->obj->attrs[i].id, cb, cf, l->obj->attrs[i].id);
		for (uint8_t i = 0; i < lp->n; i++)
			copy_attr(pb, parents.keep[k], lp->src[i], cb, cf, lp->dst[i]);
		l->filter = cf;
		ret = dump_once(req, s, l);
		l->filter = filter;
		cb->free(cf);
		if (ret < 0)
			goto out;
	}
	ret = 0;
out:
	for (uint32_t i = 0; i < parents.nkeep; i++)
		pb->free(parents.keep[i]);
	free(parents.keep);
	if (pf)
		pb->free(pf);
	return ret;
}

int nfp_dump_objects(struct nfp_req *req, struct nfp_sock *s, struct lister *l)
{
	if (l->obj->list_per && !l->keep && !filter_names_parent(l->obj, l->filter))
		return dump_per_parent(req, s, l);
	return dump_once(req, s, l);
}
struct elem_lister {
	ei_x_buff *x;
	unsigned skip;
	const struct nfp_obj *item;
	int start;
	uint32_t count;
	struct nfp_seen seen;	/* to notice an element listed twice */
	bool repeated;
};

static int elem_cb_one(struct nftnl_set_elem *e, void *data)
{
	struct elem_lister *el = data;
	const struct nfp_obj *item = el->item;
	uint64_t h = NFP_SEEN_START;

	if (nfp_enc_reserve(el->x, 4096) < 0)
		return -1;
	/* The element's fingerprint: the attributes that identify it. */
	for (uint16_t i = 0; i < item->nattrs; i++) {
		const struct nfp_attr *a = &item->attrs[i];
		uint32_t len = 0;
		const void *p;

		if (!(a->flags & NFP_A_KEY) || !item->backend->is_set(e, a->id))
			continue;
		p = item->backend->get(e, a->id, &len);
		h = nfp_seen_mix(h, &a->id, sizeof(a->id));
		h = nfp_seen_mix(h, &len, sizeof(len));
		if (p)
			h = nfp_seen_mix(h, p, len);
	}
	if (nfp_seen_add(&el->seen, h))
		el->repeated = true;
	nfp_obj_encode_map_skip(el->x, el->item, e, el->skip);
	el->count++;
	return 0;
}

static int elem_cb(const struct nlmsghdr *nlh, void *data)
{
	struct elem_lister *el = data;
	struct nftnl_set *s;

	if (nlh->nlmsg_type != (NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWSETELEM))
		return MNL_CB_OK;
	s = nftnl_set_alloc();
	if (!s)
		return MNL_CB_ERROR;
	if (nftnl_set_elems_nlmsg_parse(nlh, s) == 0)
		nftnl_set_elem_foreach(s, elem_cb_one, el);
	nftnl_set_free(s);
	return MNL_CB_OK;
}

static void elem_restart(void *data)
{
	struct elem_lister *el = data;

	el->x->index = el->start;
	el->count = 0;
	el->repeated = false;
	nfp_seen_clear(&el->seen);
}

/* The elements of one set as an element message map; returns the number
 * of elements, or -1. */
static int64_t encode_set_elements(struct nfp_req *req, struct nfp_sock *s,
				   const struct nfp_obj *eobj, void *set, const char *verb)
{
	const struct nfp_attr *elems = NULL;
	struct elem_lister el = { .x = req->out,
				  .skip = verb ? NFP_DUMP_SKIP : NFP_A_TRANSIENT };
	struct nfp_target t;
	uint32_t n = 0;

	if (verb) {
		ei_x_encode_tuple_header(req->out, 3);
		nfp_enc_atom(req->out, verb);
		nfp_enc_atom(req->out, eobj->name);
	}
	nfp_target_obj(&t, eobj, set);
	for (uint16_t i = 0; i < eobj->nattrs; i++) {
		if (eobj->attrs[i].wire == NFP_W_OBJECTS)
			elems = &eobj->attrs[i];
		else if (t.be->is_set(set, eobj->attrs[i].id) && (eobj->attrs[i].flags & NFP_A_KEY))
			n++;
	}
	ei_x_encode_map_header(req->out, n + 1);
	for (uint16_t i = 0; i < eobj->nattrs; i++) {
		const struct nfp_attr *a = &eobj->attrs[i];

		if (a == elems || !(a->flags & NFP_A_KEY) || !t.be->is_set(set, a->id))
			continue;
		nfp_enc_atom(req->out, a->name);
		nfp_attr_encode(req->out, a, &t);
	}
	nfp_enc_atom(req->out, elems->name);
	el.item = elems->item;
	nfp_seen_init(&el.seen);
	{
		int at = nfp_enc_list_open(req->out);
		int ret = -1;

		el.start = req->out->index;
		/* A hash set resizing under the dump repeats (and misses)
		 * elements silently: start over until a dump has no repeat. */
		for (int attempt = 0; attempt < 8; attempt++) {
			if (attempt)
				usleep(10000u << attempt);
			elem_restart(&el);
			if (nfp_dump(req, s, eobj->msg_get, nfp_filter_family(eobj, set), eobj, set,
				     elem_cb, &el, elem_restart) < 0)
				goto out;
			if (!el.repeated)
				break;
		}
		if (el.repeated) {
			nfp_fail_port(req, "the set's elements kept moving during the dump (the kernel resizing its hash table); try again");
			goto out;
		}
		nfp_enc_list_close(req->out, at, el.count);
		ret = 0;
out:
		nfp_seen_release(&el.seen);
		if (ret < 0)
			return -1;
	}
	return el.count;
}

/* The attribute that names the parent when the filter names exactly one
 * (every list-filter attribute is set: the element filter's :set), or
 * NULL. */
static const struct nfp_attr *names_one_parent(const struct nfp_obj *obj, void *filter)
{
	uint16_t id = NFP_NO_ATTR;

	if (!filter || obj->nlist_filter == 0)
		return NULL;
	for (uint8_t i = 0; i < obj->nlist_filter; i++) {
		id = obj->list_filter[i];
		if (!obj->backend->is_set(filter, id))
			return NULL;
	}
	return nfp_attr_by_id(obj->attrs, obj->nattrs, id);
}

int nfp_dump_elements(struct nfp_req *req, struct nfp_sock *s, const struct nfp_obj *eobj,
			 void *filter, const char *verb, uint32_t *count)
{
	struct lister sets = {
		.req = req, .x = req->out, .obj = eobj->list_via, .as = eobj->list_via,
		.filter = filter, .keep_cap = 16,
	};
	int ret = 0;

	sets.keep = malloc(sets.keep_cap * sizeof(void *));
	if (!sets.keep)
		return nfp_fail_port(req, "out of memory");
	/* The set filter names the set by its own attribute ids, which are
	 * the element object's (both are libnftnl sets). */
	req->kerr_as = eobj;
	if (nfp_dump_objects(req, s, &sets) < 0) {
		req->kerr_as = NULL;
		ret = -1;
		goto out;
	}
	req->kerr_as = NULL;
	/* A set named by the filter that is not there is an error, as the
	 * kernel's for a missing table: not an empty listing. */
	if (sets.nkeep == 0 && names_one_parent(eobj, filter)) {
		ret = nfp_fail_kernel(req, -1, ENOENT);
		req->kerr_attr = names_one_parent(eobj, filter)->name;
		goto out;
	}
	for (uint32_t i = 0; i < sets.nkeep; i++) {
		int rewind = req->out->index;
		int64_t n = encode_set_elements(req, s, eobj, sets.keep[i], verb);

		if (n < 0) {
			ret = -1;
			goto out;
		}
		/* A dump leaves out sets without elements. */
		if (n == 0 && verb)
			req->out->index = rewind;
		else
			(*count)++;
	}
out:
	for (uint32_t i = 0; i < sets.nkeep; i++)
		eobj->list_via->backend->free(sets.keep[i]);
	free(sets.keep);
	return ret;
}

int nfp_at_one_generation(struct nfp_req *req, struct nfp_sock *s, const char *key,
			  nfp_gen_body body, void *ctx, const char *what)
{
	int start = req->out->index;

	for (int attempt = 0; attempt < NFP_GEN_TRIES; attempt++) {
		uint32_t before, after, count = 0;
		int at;

		req->out->index = start;
		if (nfp_genid(req, s, &before) < 0)
			return -1;
		nfp_enc_ok_head(req->out);
		ei_x_encode_map_header(req->out, 2);
		nfp_enc_atom(req->out, key);
		at = nfp_enc_list_open(req->out);
		if (body(req, s, ctx, &count) < 0)
			return -1;
		nfp_enc_list_close(req->out, at, count);
		if (nfp_genid(req, s, &after) < 0)
			return -1;
		if (before != after)
			continue;
		nfp_enc_atom(req->out, "genid");
		nfp_enc_u64(req->out, after);
		return 0;
	}
	return nfp_fail_port(req, "the ruleset kept changing during the %s (%d tries)", what,
			     NFP_GEN_TRIES);
}
