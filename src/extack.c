// SPDX-License-Identifier: GPL-2.0-or-later
/* Extended ACKs and the detail of kernel errors, see extack.h. */
#include <stdio.h>
#include <string.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netlink.h>

#include "attr.h"
#include "backend.h"
#include "etf.h"
#include "extack.h"
#include "obj.h"

/* enum nlmsgerr_attrs of linux/netlink.h; the MISS_* ones are newer (6.0)
 * than some headers. */
#define NFP_NLMSGERR_ATTR_MSG 1
#define NFP_NLMSGERR_ATTR_OFFS 2
#define NFP_NLMSGERR_ATTR_MISS_TYPE 5

void nfp_extack_parse(const struct nlmsghdr *nlh, struct nfp_extack *ea)
{
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *attr;
	size_t hlen = sizeof(*e);

	memset(ea, 0, sizeof(*ea));
	ea->err = -e->error;
	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return;
	/* Without NETLINK_CAP_ACK the whole sent message comes back first. */
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
		hlen += e->msg.nlmsg_len - sizeof(struct nlmsghdr);
	if (mnl_nlmsg_size(hlen) > nlh->nlmsg_len)
		return;
	mnl_attr_for_each(attr, nlh, hlen) {
		uint16_t len = mnl_attr_get_payload_len(attr);

		switch (mnl_attr_get_type(attr)) {
		case NFP_NLMSGERR_ATTR_MSG:
			if (len > 0) {
				size_t n = strnlen(mnl_attr_get_payload(attr), len);

				if (n >= sizeof(ea->msg))
					n = sizeof(ea->msg) - 1;
				memcpy(ea->msg, mnl_attr_get_payload(attr), n);
				ea->msg[n] = '\0';
			}
			break;
		case NFP_NLMSGERR_ATTR_OFFS:
			if (len >= sizeof(uint32_t)) {
				ea->off = mnl_attr_get_u32(attr);
				ea->has_off = true;
			}
			break;
		case NFP_NLMSGERR_ATTR_MISS_TYPE:
			if (len >= sizeof(uint32_t)) {
				ea->miss_type = mnl_attr_get_u32(attr);
				ea->has_miss = true;
			}
			break;
		}
	}
}

/* The attribute among [p, end) that holds byte `at`, or NULL; *ordinal
 * gets its position. */
static const struct nlattr *attr_holding(const char *p, const char *end, const char *at,
					 int *ordinal)
{
	int k = 0;

	while (p + sizeof(struct nlattr) <= end) {
		const struct nlattr *a = (const struct nlattr *)p;

		if (a->nla_len < sizeof(*a) || p + a->nla_len > end)
			return NULL;
		if (at >= p && at < p + a->nla_len) {
			if (ordinal)
				*ordinal = k;
			return a;
		}
		p += MNL_ALIGN(a->nla_len);
		k++;
	}
	return NULL;
}

static const char *payload(const struct nlattr *a)
{
	return (const char *)mnl_attr_get_payload(a);
}

static const char *payload_end(const struct nlattr *a)
{
	return (const char *)a + a->nla_len;
}

static const struct nfp_attr *by_nla(const struct nfp_attr *attrs, uint16_t n, uint16_t type,
				     uint16_t nest)
{
	for (uint16_t i = 0; i < n; i++)
		if (attrs[i].nla == type && attrs[i].nla_in == nest)
			return &attrs[i];
	return NULL;
}

static bool has_nest(const struct nfp_attr *attrs, uint16_t n, uint16_t nest)
{
	for (uint16_t i = 0; i < n; i++)
		if (attrs[i].nla_in == nest)
			return true;
	return false;
}

/* Within the attribute list [p, end) of one owner's attributes: the one at
 * `at`, looking one nest deep. */
static const struct nfp_attr *find_in(const struct nfp_attr *attrs, uint16_t n, const char *p,
				      const char *end, const char *at, const struct nlattr **hit)
{
	const struct nlattr *a = attr_holding(p, end, at, NULL), *c;
	const struct nfp_attr *d;
	uint16_t type;

	*hit = a;
	if (!a)
		return NULL;
	type = mnl_attr_get_type(a);
	d = by_nla(attrs, n, type, 0);
	if (d)
		return d;
	if (!has_nest(attrs, n, type))
		return NULL;
	c = attr_holding(payload(a), payload_end(a), at, NULL);
	if (!c)
		return NULL;
	*hit = c;
	return by_nla(attrs, n, mnl_attr_get_type(c), type);
}

/* A rule's expression list: NFTA_LIST_ELEM { NFTA_EXPR_NAME, NFTA_EXPR_DATA
 * { ... } }. */
static const char *in_expr_list(struct nfp_req *req, const struct nlattr *list, const char *at)
{
	const struct nlattr *el, *a, *data = NULL;
	const struct nfp_expr *d = NULL;
	const struct nfp_attr *found;
	int k = 0;

	el = attr_holding(payload(list), payload_end(list), at, &k);
	if (!el)
		return NULL;
	mnl_attr_for_each_nested(a, el) {
		if (mnl_attr_get_type(a) == NFTA_EXPR_NAME &&
		    mnl_attr_validate(a, MNL_TYPE_NUL_STRING) == 0)
			d = nfp_expr_find(mnl_attr_get_str(a));
		else if (mnl_attr_get_type(a) == NFTA_EXPR_DATA)
			data = a;
	}
	snprintf(req->kerr_where, sizeof(req->kerr_where), "exprs[%d] (%s)", k,
		 d ? d->name : "?");
	if (!d || !data || at < payload(data) || at >= payload_end(data))
		return NULL;
	found = find_in(d->attrs, d->nattrs, payload(data), payload_end(data), at, &a);
	return found ? found->name : NULL;
}

/* A set's element list: NFTA_LIST_ELEM { NFTA_SET_ELEM_* }. */
static const char *in_item_list(struct nfp_req *req, const struct nfp_attr *la,
				const struct nlattr *list, const char *at, uint32_t base)
{
	const struct nfp_obj *item = la->item;
	const struct nlattr *el, *hit;
	const struct nfp_attr *found;
	int k = 0;

	el = attr_holding(payload(list), payload_end(list), at, &k);
	if (!el)
		return NULL;
	snprintf(req->kerr_where, sizeof(req->kerr_where), "%s[%u]", la->name, base + (uint32_t)k);
	found = find_in(item->attrs, item->nattrs, payload(el), payload_end(el), at, &hit);
	return found ? found->name : NULL;
}

static const char *name_as(const struct nfp_obj *obj, const struct nfp_obj *as,
			   const struct nfp_attr *a)
{
	const struct nfp_attr *b;

	if (as == obj || !as)
		return a->name;
	b = nfp_attr_by_id(as->attrs, as->nattrs, a->id);
	return b ? b->name : a->name;
}

void nfp_kerr_detail(struct nfp_req *req, const struct nfp_extack *ea,
		     const struct nlmsghdr *sent, const struct nfp_obj *obj,
		     const struct nfp_obj *as, uint32_t item_base)
{
	const char *start = (const char *)sent, *p, *end, *at;
	const struct nfp_attr *a;
	const struct nlattr *hit;

	if (!req->kerr)
		return;
	if (ea->msg[0])
		snprintf(req->kerr_msg, sizeof(req->kerr_msg), "%s", ea->msg);
	if (!obj)
		return;
	if (ea->has_miss && !ea->has_off) {
		a = by_nla(obj->attrs, obj->nattrs, (uint16_t)ea->miss_type, 0);
		if (a)
			req->kerr_attr = name_as(obj, as, a);
		return;
	}
	if (!sent || !ea->has_off || ea->off >= sent->nlmsg_len)
		return;
	p = start + MNL_ALIGN(sizeof(struct nlmsghdr)) + MNL_ALIGN(sizeof(struct nfgenmsg));
	end = start + sent->nlmsg_len;
	at = start + ea->off;
	a = find_in(obj->attrs, obj->nattrs, p, end, at, &hit);
	if (!a)
		return;
	req->kerr_attr = name_as(obj, as, a);
	if (a->wire == NFP_W_EXPRS && hit) {
		const char *e = in_expr_list(req, hit, at);

		if (e)
			req->kerr_attr = e;
	} else if (a->wire == NFP_W_OBJECTS && a->item && hit) {
		const char *e = in_item_list(req, a, hit, at, item_base);

		if (e)
			req->kerr_attr = e;
	}
}

uint32_t nfp_sent_items(const struct nlmsghdr *nlh, const struct nfp_obj *obj)
{
	const struct nlattr *a, *i;
	uint16_t type = 0;
	uint32_t n = 0;

	for (uint16_t k = 0; k < obj->nattrs; k++)
		if (obj->attrs[k].wire == NFP_W_OBJECTS)
			type = obj->attrs[k].nla;
	if (!type)
		return 0;
	mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg)) {
		if (mnl_attr_get_type(a) != type)
			continue;
		mnl_attr_for_each_nested(i, a)
			n++;
	}
	return n;
}

static void object_begin(struct nfp_req *req)
{
	if (req->has_kerr_object)
		req->kerr_object.index = 0;
	else if (ei_x_new(&req->kerr_object) == 0)
		req->has_kerr_object = true;
}

void nfp_kerr_object_type(struct nfp_req *req, const struct nfp_obj *obj)
{
	object_begin(req);
	if (!req->has_kerr_object)
		return;
	ei_x_encode_map_header(&req->kerr_object, 1);
	ei_x_encode_atom(&req->kerr_object, "type");
	ei_x_encode_atom(&req->kerr_object, obj->name);
}

void nfp_kerr_object(struct nfp_req *req, const struct nfp_obj *obj, void *o)
{
	struct nfp_target t;
	uint32_t n = 1;

	if (!o) {
		nfp_kerr_object_type(req, obj);
		return;
	}
	object_begin(req);
	if (!req->has_kerr_object)
		return;
	nfp_target_obj(&t, obj, o);
	for (uint16_t i = 0; i < obj->nattrs; i++) {
		const struct nfp_attr *a = &obj->attrs[i];

		if ((a->flags & NFP_A_KEY) && a->wire <= NFP_W_BINARY && t.be->is_set(o, a->id))
			n++;
	}
	ei_x_encode_map_header(&req->kerr_object, n);
	ei_x_encode_atom(&req->kerr_object, "type");
	ei_x_encode_atom(&req->kerr_object, obj->name);
	for (uint16_t i = 0; i < obj->nattrs; i++) {
		const struct nfp_attr *a = &obj->attrs[i];

		if (!(a->flags & NFP_A_KEY) || a->wire > NFP_W_BINARY || !t.be->is_set(o, a->id))
			continue;
		ei_x_encode_atom(&req->kerr_object, a->name);
		nfp_attr_encode(&req->kerr_object, a, &t);
	}
}
