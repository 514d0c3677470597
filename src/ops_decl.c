// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The declarative ops: commit (a list of {verb, type, attrs} as one
 * transaction), list (objects of one type as attribute maps) and dump (the
 * whole ruleset as messages that commit replays, from one generation).
 */
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
#include "handles.h"
#include "nl.h"
#include "obj.h"
#include "ops.h"
#include "seen.h"

/* What a dump leaves out: values that name kernel handles of the source
 * ruleset, and what the kernel reports but never takes. */
#define NFP_DUMP_SKIP (NFP_A_TRANSIENT | NFP_A_READONLY | NFP_A_HANDLE)

static struct nfp_sock default_sock;
/* The commit batch's buffers are kept between commits. */
static struct nfp_batch commit_batch;

struct nfp_sock *nfp_default_sock(struct nfp_req *req)
{
	char err[160];

	if (default_sock.nl)
		return &default_sock;
	if (nfp_sock_open(&default_sock, err, sizeof(err)) < 0) {
		nfp_fail_port(req, "cannot open a netlink socket: %s", err);
		return NULL;
	}
	return &default_sock;
}

static void free_handle(struct nfp_handle *h)
{
	switch (h->kind) {
	case NFP_H_OBJ:
		h->obj->backend->free(h->ptr);
		break;
	case NFP_H_EXPR:
		nftnl_expr_free(h->ptr);
		break;
	case NFP_H_BATCH:
		nfp_batch_release(h->ptr);
		free(h->ptr);
		break;
	case NFP_H_SOCKET:
		nfp_sock_close(h->ptr);
		free(h->ptr);
		break;
	}
}

void nfp_ops_cleanup(void)
{
	nfp_handle_release_all(free_handle);
	nfp_sock_close(&default_sock);
	nfp_batch_release(&commit_batch);
}

/* "table, chain, ..." for messages: every type with a GET message. */
const char *nfp_listable_types(void)
{
	static char names[512];
	size_t off = 0;

	if (names[0])
		return names;
	for (size_t i = 0; i < nfp_nobjects && off < sizeof(names); i++)
		if (nfp_objects[i]->msg_get != NFP_MSG_NONE)
			off += snprintf(names + off, sizeof(names) - off, "%s%s", off ? ", " : "",
					nfp_objects[i]->name);
	return names;
}

/* --- commit ------------------------------------------------------------ */

static unsigned verb_decode_flags(int verb)
{
	switch (verb) {
	case NFP_VERB_ADD:
	case NFP_VERB_CREATE:
	case NFP_VERB_INSERT:
		return NFP_DEC_SKIP_READONLY | NFP_DEC_SKIP_HANDLE;
	case NFP_VERB_REPLACE:
		return NFP_DEC_SKIP_READONLY;
	default:
		/* delete, destroy, flush: name the object, nothing else (a
		 * delete of a chain with hook attributes means something else). */
		return NFP_DEC_SKIP_READONLY | NFP_DEC_KEYS_ONLY;
	}
}

static int commit_opts(struct nfp_req *req, struct nfp_send_opts *o, bool *echo)
{
	char key[NFP_ATOM_MAX];
	int n;

	if (nfp_dec_map(req, &req->idx, &n, "options") < 0)
		return -1;
	for (int i = 0; i < n; i++) {
		if (nfp_dec_atom(req, &req->idx, key, "option name") < 0)
			return -1;
		if (strcmp(key, "echo") == 0) {
			if (nfp_dec_bool(req, &req->idx, echo, "option :echo") < 0)
				return -1;
		} else if (strcmp(key, "genid") == 0) {
			uint64_t g;

			if (nfp_dec_u64(req, &req->idx, &g, "option :genid") < 0)
				return -1;
			if (g > UINT32_MAX)
				return nfp_fail(req, "option :genid: %llu is out of range for u32",
						(unsigned long long)g);
			o->use_genid = true;
			o->genid = (uint32_t)g;
		} else {
			return nfp_fail(req, "unknown option :%s (known: echo, genid)", key);
		}
	}
	return 0;
}

static int commit_msg(struct nfp_req *req, struct nfp_batch *b, int64_t i)
{
	char verb[NFP_ATOM_MAX], type[NFP_ATOM_MAX], what[64];
	const struct nfp_obj *obj;
	void *o;
	int v, ret;

	snprintf(what, sizeof(what), "message %lld", (long long)i);
	if (nfp_dec_tuple(req, &req->idx, 3, what) < 0 ||
	    nfp_dec_atom(req, &req->idx, verb, what) < 0 ||
	    nfp_dec_atom(req, &req->idx, type, what) < 0)
		return -1;
	v = nfp_verb_parse(verb);
	if (v < 0)
		return nfp_fail(req, "%s: unknown verb :%s (known: add, create, insert, replace, delete, destroy, flush)",
				what, verb);
	obj = nfp_obj_find(type);
	if (!obj || !obj->verbs)
		return nfp_fail(req, "%s: unknown object type :%s (known: %s)", what, type,
				nfp_listable_types());
	o = nfp_obj_new(obj);
	if (!o)
		return nfp_fail_port(req, "out of memory");
	ret = nfp_obj_decode_map(req, &req->idx, obj, o, verb_decode_flags(v));
	if (ret == 0)
		ret = nfp_batch_add(req, b, obj, v, o, i);
	if (ret < 0 && req->err[0] && strncmp(req->err, "message ", 8) != 0) {
		/* Prefix the message so the client knows which one failed. */
		char prefix[160];
		size_t pl = (size_t)snprintf(prefix, sizeof(prefix), "%s (%.40s %.40s): ",
					     what, verb, type);
		size_t el = strnlen(req->err, sizeof(req->err) - 1);

		if (pl + el >= sizeof(req->err))
			el = sizeof(req->err) - 1 - pl;
		memmove(req->err + pl, req->err, el);
		memcpy(req->err, prefix, pl);
		req->err[pl + el] = '\0';
	}
	obj->backend->free(o);
	return ret;
}

int nfp_op_commit(struct nfp_req *req)
{
	struct nfp_send_opts opts = { 0 };
	struct nfp_batch *b = &commit_batch;
	struct nfp_sock *s;
	int n, msgs_at = req->idx, ret = -1;
	bool echo = false;

	/* Options first: they decide how messages are built. */
	nfp_etf_skip(req->buf, &req->idx);
	if (commit_opts(req, &opts, &echo) < 0)
		return -1;
	req->idx = msgs_at;
	if (nfp_dec_list(req, &req->idx, &n, "messages") < 0)
		return -1;
	nfp_batch_reset(b);
	b->echo = echo;
	for (int i = 0; i < n; i++)
		if (commit_msg(req, b, i) < 0) {
			/* A caller error names its message too. */
			req->err_indexed = !req->kerr;
			req->err_index = i;
			goto out;
		}
	if (n && nfp_dec_list_end(req, &req->idx, "messages") < 0)
		goto out;
	s = nfp_default_sock(req);
	if (!s)
		goto out;
	if (echo) {
		nfp_enc_ok_head(req->out);
		opts.echo = req->out;
		opts.nindex = (uint32_t)n;
	}
	ret = nfp_batch_send(req, s, b, &opts);
	if (ret == 0 && !echo)
		nfp_enc_atom(req->out, "ok");
out:
	nfp_batch_reset(b);
	return ret;
}

/* --- list and dump ----------------------------------------------------- */

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

struct lister {
	struct nfp_req *req;
	ei_x_buff *x;
	const struct nfp_obj *obj;	/* what the kernel dumps */
	const struct nfp_obj *as;	/* what it is encoded as */
	bool kinds;			/* every kind of obj's backend: each
					 * object is encoded as its own kind */
	void *filter;
	const char *verb;		/* wrap each as {verb, type, map} */
	int start;			/* out->index where this dump began */
	uint32_t count, count_start;
	/* Collects objects instead of encoding them (list_via). */
	void **keep;
	uint32_t nkeep, keep_cap;
};

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

static uint16_t filter_family(const struct nfp_obj *obj, void *filter)
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
	return nfp_dump(req, s, l->obj->msg_get, filter_family(l->obj, l->filter), l->obj,
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

/* Dumps objects of l->obj, appending to the open list. */
static int dump_objects(struct nfp_req *req, struct nfp_sock *s, struct lister *l)
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
		else if (t.is_set(set, eobj->attrs[i].id) && (eobj->attrs[i].flags & NFP_A_KEY))
			n++;
	}
	ei_x_encode_map_header(req->out, n + 1);
	for (uint16_t i = 0; i < eobj->nattrs; i++) {
		const struct nfp_attr *a = &eobj->attrs[i];

		if (a == elems || !(a->flags & NFP_A_KEY) || !t.is_set(set, a->id))
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
			if (nfp_dump(req, s, eobj->msg_get, filter_family(eobj, set), eobj, set,
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

/* Elements: list the sets (list_via), then the elements of each. */
static int dump_elements(struct nfp_req *req, struct nfp_sock *s, const struct nfp_obj *eobj,
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
	if (dump_objects(req, s, &sets) < 0) {
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

static int list_filter(struct nfp_req *req, const struct nfp_obj *obj, void **filter)
{
	char key[NFP_ATOM_MAX], names[256];
	size_t off = 0;
	int n;

	if (nfp_dec_map(req, &req->idx, &n, "filter") < 0)
		return -1;
	*filter = NULL;
	if (n == 0 && obj->fixed_attr == NFP_NO_ATTR)
		return 0;
	*filter = nfp_obj_new(obj);
	if (!*filter)
		return nfp_fail_port(req, "out of memory");
	names[0] = '\0';
	if (obj->family_attr != NFP_NO_ATTR)
		off += snprintf(names, sizeof(names), "family");
	for (uint8_t i = 0; i < obj->nlist_filter; i++) {
		const struct nfp_attr *a = nfp_attr_by_id(obj->attrs, obj->nattrs, obj->list_filter[i]);

		off += snprintf(names + off, sizeof(names) - off, "%s%s", off ? ", " : "", a->name);
	}
	for (int i = 0; i < n; i++) {
		const struct nfp_attr *a;
		bool ok = false;

		if (nfp_dec_atom(req, &req->idx, key, "filter key") < 0)
			return -1;
		a = nfp_attr_find(obj->attrs, obj->nattrs, key);
		if (a && a->id == obj->family_attr)
			ok = true;
		for (uint8_t j = 0; a && j < obj->nlist_filter; j++)
			ok |= obj->list_filter[j] == a->id;
		if (!ok)
			return nfp_fail(req, "cannot filter %s by :%s (filters: %s)", obj->name, key, names);
		if (nfp_obj_decode_attr(req, &req->idx, obj, *filter, a) < 0)
			return -1;
	}
	return 0;
}

/* Lists into the open list at the reply's end; returns the count. */
static int64_t list_into(struct nfp_req *req, struct nfp_sock *s, const struct nfp_obj *obj,
			 void *filter)
{
	if (obj->list_via) {
		uint32_t count = 0;

		if (dump_elements(req, s, obj, filter, NULL, &count) < 0)
			return -1;
		return count;
	} else {
		struct lister l = { .req = req, .x = req->out, .obj = obj, .as = obj,
				    .filter = filter };

		if (dump_objects(req, s, &l) < 0)
			return -1;
		return l.count;
	}
}

int nfp_op_list(struct nfp_req *req)
{
	char type[NFP_ATOM_MAX];
	const struct nfp_obj *obj;
	struct nfp_sock *s;
	void *filter = NULL;
	int start, ret = -1;

	if (nfp_dec_atom(req, &req->idx, type, "type") < 0)
		return -1;
	obj = nfp_obj_find(type);
	if (!obj || obj->msg_get == NFP_MSG_NONE)
		return nfp_fail(req, "cannot list :%s (types: %s)", type, nfp_listable_types());
	if (list_filter(req, obj, &filter) < 0)
		goto out;
	s = nfp_default_sock(req);
	if (!s)
		goto out;
	start = req->out->index;
	/* Several dumps (elements: sets, then each set's elements) reflect
	 * one generation only if it did not change meanwhile. */
	for (int attempt = 0; attempt < 10; attempt++) {
		uint32_t before, after;
		int64_t n;
		int at;

		req->out->index = start;
		if (nfp_genid(req, s, &before) < 0)
			goto out;
		nfp_enc_ok_head(req->out);
		ei_x_encode_map_header(req->out, 2);
		nfp_enc_atom(req->out, "objects");
		at = nfp_enc_list_open(req->out);
		n = list_into(req, s, obj, filter);
		if (n < 0)
			goto out;
		nfp_enc_list_close(req->out, at, (uint32_t)n);
		if (nfp_genid(req, s, &after) < 0)
			goto out;
		if (before != after)
			continue;
		nfp_enc_atom(req->out, "genid");
		nfp_enc_u64(req->out, after);
		ret = 0;
		goto out;
	}
	ret = nfp_fail_port(req, "the ruleset kept changing during the listing (10 tries)");
out:
	if (ret < 0 && req->kerr)
		nfp_kerr_object(req, obj, filter);
	if (filter)
		obj->backend->free(filter);
	return ret;
}

struct getter {
	const struct nfp_obj *obj;
	void *found;
};

static int get_cb(const struct nlmsghdr *nlh, void *data)
{
	struct getter *g = data;
	const struct nfp_backend *be = g->obj->backend;

	if (nlh->nlmsg_type != (NFNL_SUBSYS_NFTABLES << 8 | g->obj->msg_new) || g->found)
		return MNL_CB_OK;
	g->found = be->alloc();
	if (!g->found)
		return MNL_CB_ERROR;
	if (be->parse(nlh, g->found) < 0) {
		be->free(g->found);
		g->found = NULL;
	}
	return MNL_CB_OK;
}

/* One object by its keys (name, or handle where the kernel takes one). */
int nfp_op_get(struct nfp_req *req)
{
	char type[NFP_ATOM_MAX];
	const struct nfp_obj *obj;
	struct getter g = { 0 };
	struct nfp_sock *s;
	void *keys;
	int ret = -1;

	if (nfp_dec_atom(req, &req->idx, type, "type") < 0)
		return -1;
	obj = nfp_obj_find(type);
	if (!obj || obj->msg_get == NFP_MSG_NONE || obj->list_via)
		return nfp_fail(req, "cannot get one :%s; list it instead", type);
	keys = nfp_obj_new(obj);
	if (!keys)
		return nfp_fail_port(req, "out of memory");
	if (nfp_obj_decode_map(req, &req->idx, obj, keys,
			       NFP_DEC_SKIP_READONLY | NFP_DEC_KEYS_ONLY) < 0)
		goto out;
	s = nfp_default_sock(req);
	if (!s)
		goto out;
	g.obj = obj;
	if (nfp_get_one(req, s, obj->msg_get, filter_family(obj, keys), obj, keys,
			get_cb, &g) < 0)
		goto out;
	if (!g.found || !nfp_obj_is(obj, g.found)) {
		ret = nfp_fail_kernel(req, -1, ENOENT);
		goto out;
	}
	nfp_enc_ok_head(req->out);
	nfp_obj_encode_map(req->out, obj, g.found);
	ret = 0;
out:
	if (ret < 0 && req->kerr)
		nfp_kerr_object(req, obj, keys);
	if (g.found)
		obj->backend->free(g.found);
	obj->backend->free(keys);
	return ret;
}

/* The objects a dump holds, in the order a ruleset can be replayed in
 * (the schema's dump-order: tables, then sets, stateful objects and
 * flowtables, then chains, then elements, since verdict maps jump to
 * chains, then rules). */
static size_t dump_objects_in_order(const struct nfp_obj **out, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < nfp_nobjects && n < max; i++)
		if (nfp_objects[i]->dump_order)
			out[n++] = nfp_objects[i];
	/* Insertion sort: a handful of types. */
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && out[j - 1]->dump_order > out[j]->dump_order; j--) {
			const struct nfp_obj *t = out[j];

			out[j] = out[j - 1];
			out[j - 1] = t;
		}
	return n;
}

int nfp_op_dump(struct nfp_req *req)
{
	struct nfp_sock *s = nfp_default_sock(req);
	const struct nfp_obj *order[64];
	size_t norder = dump_objects_in_order(order, 64);
	int start;

	if (!s)
		return -1;
	start = req->out->index;
	for (int attempt = 0; attempt < 10; attempt++) {
		uint32_t before, after, count = 0;
		int at;

		req->out->index = start;
		if (nfp_genid(req, s, &before) < 0)
			return -1;
		nfp_enc_ok_head(req->out);
		ei_x_encode_map_header(req->out, 2);
		nfp_enc_atom(req->out, "msgs");
		at = nfp_enc_list_open(req->out);
		for (size_t i = 0; i < norder; i++) {
			const struct nfp_obj *obj = order[i];

			if (obj->list_via) {
				if (dump_elements(req, s, obj, NULL, "add", &count) < 0)
					return -1;
			} else {
				/* Stateful objects of every kind come in one dump, in
				 * the kernel's order, as nft lists them. */
				bool kinds = obj->fixed_attr != NFP_NO_ATTR;
				struct lister l = { .req = req, .x = req->out, .obj = obj,
						    .as = obj, .verb = "add", .kinds = kinds };

				if (kinds && i > 0 && order[i - 1]->backend == obj->backend)
					continue;
				if (dump_objects(req, s, &l) < 0)
					return -1;
				count += l.count;
			}
		}
		nfp_enc_list_close(req->out, at, count);
		if (nfp_genid(req, s, &after) < 0)
			return -1;
		if (before != after)
			continue;
		nfp_enc_atom(req->out, "genid");
		nfp_enc_u64(req->out, after);
		return 0;
	}
	return nfp_fail_port(req, "the ruleset kept changing during the dump (10 tries)");
}
