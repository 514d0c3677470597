// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * list (objects of one type as attribute maps), get (one object by its
 * keys) and dump (the whole ruleset as messages that commit replays), from
 * one generation; the engine is listing.c.
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

#include "backend.h"
#include "etf.h"
#include "extack.h"
#include "listing.h"
#include "nl.h"
#include "obj.h"
#include "ops.h"

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

static int list_filter(struct nfp_req *req, const struct nfp_obj *obj, void **filter)
{
	char key[NFP_ATOM_MAX], names[256];
	const struct nfp_attr *seen[16];
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
		for (int j = 0; j < i && j < 16; j++)
			if (seen[j] == a)
				return nfp_fail(req, "filter: the key :%s appears twice", key);
		if (i < 16)
			seen[i] = a;
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

		if (nfp_dump_elements(req, s, obj, filter, NULL, &count) < 0)
			return -1;
		return count;
	} else {
		struct lister l = { .req = req, .x = req->out, .obj = obj, .as = obj,
				    .filter = filter };

		if (nfp_dump_objects(req, s, &l) < 0)
			return -1;
		return l.count;
	}
}

struct list_ctx {
	const struct nfp_obj *obj;
	void *filter;
};

static int list_body(struct nfp_req *req, struct nfp_sock *s, void *ctx, uint32_t *count)
{
	struct list_ctx *c = ctx;
	int64_t n = list_into(req, s, c->obj, c->filter);

	if (n < 0)
		return -1;
	*count = (uint32_t)n;
	return 0;
}

int nfp_op_list(struct nfp_req *req)
{
	char type[NFP_ATOM_MAX];
	const struct nfp_obj *obj;
	struct nfp_sock *s;
	void *filter = NULL;
	int ret = -1;

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
	/* Several dumps (elements: sets, then each set's elements) reflect
	 * one generation only if it did not change meanwhile. */
	ret = nfp_at_one_generation(req, s, "objects", list_body,
				    &(struct list_ctx){ .obj = obj, .filter = filter }, "listing");
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
	if (nfp_get_one(req, s, obj->msg_get, nfp_filter_family(obj, keys), obj, keys,
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

struct dump_ctx {
	const struct nfp_obj *order[64];
	size_t norder;
};

static int dump_body(struct nfp_req *req, struct nfp_sock *s, void *ctx, uint32_t *count)
{
	struct dump_ctx *d = ctx;

	for (size_t i = 0; i < d->norder; i++) {
		const struct nfp_obj *obj = d->order[i];

		if (obj->list_via) {
			if (nfp_dump_elements(req, s, obj, NULL, "add", count) < 0)
				return -1;
		} else {
			/* Stateful objects of every kind come in one dump, in
			 * the kernel's order, as nft lists them. */
			bool kinds = obj->fixed_attr != NFP_NO_ATTR;
			struct lister l = { .req = req, .x = req->out, .obj = obj,
					    .as = obj, .verb = "add", .kinds = kinds };

			if (kinds && i > 0 && d->order[i - 1]->backend == obj->backend)
				continue;
			if (nfp_dump_objects(req, s, &l) < 0)
				return -1;
			*count += l.count;
		}
	}
	return 0;
}

int nfp_op_dump(struct nfp_req *req)
{
	struct nfp_sock *s = nfp_default_sock(req);
	struct dump_ctx d;

	if (!s)
		return -1;
	d.norder = dump_objects_in_order(d.order, 64);
	return nfp_at_one_generation(req, s, "msgs", dump_body, &d, "dump");
}
