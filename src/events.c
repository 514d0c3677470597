// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Ruleset events, see events.h.
 *
 * Each netlink message of the group becomes one event:
 *   {:add, type, attrs}     NEWTABLE, NEWCHAIN, NEWSET, NEWSETELEM, NEWOBJ,
 *                           NEWFLOWTABLE, and NEWRULE appended or placed
 *                           after attrs.position
 *   {:insert, :rule, attrs} NEWRULE at the chain's start (no position and
 *                           no NLM_F_APPEND)
 *   {:delete, type, attrs}  the DEL messages
 *   {:newgen, %{genid: g, pid: p, name: "nft"}}
 *                           the end of a transaction (NEWGEN)
 *   {:unknown, msg_type}    a message of the group the port cannot decode
 *   :overflow               the socket overran (ENOBUFS): events were lost
 * attrs are what `list` gives for the object (handles included, so that a
 * later delete can be matched). libnftnl 1.2.4 exits on attributes it does
 * not expect, so a message is parsed only by the parser of its own type.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>	/* before the kernel's headers (libc-compat) */

#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netlink.h>

#include "backend.h"
#include "etf.h"
#include "events.h"
#include "obj.h"

/* The kernel queues a whole transaction's notifications at once: a big
 * buffer makes overflow rare (SO_RCVBUFFORCE needs CAP_NET_ADMIN in the
 * initial namespace; otherwise rmem_max caps SO_RCVBUF). */
#define NFP_EVENTS_RCVBUF (64 * 1024 * 1024)
#define NFP_EVENTS_CHUNK (256 * 1024)
/* Datagrams read per turn of the main loop, so requests are not starved. */
#define NFP_EVENTS_BATCH 64

static struct mnl_socket *ev_nl;
static uint64_t ev_sub;
static char *ev_buf;
static ei_x_buff ev_out;

int nfp_events_fd(void)
{
	return ev_nl ? mnl_socket_get_fd(ev_nl) : -1;
}

void nfp_events_close(void)
{
	if (ev_nl)
		mnl_socket_close(ev_nl);
	ev_nl = NULL;
	free(ev_buf);
	ev_buf = NULL;
	if (ev_out.buff)
		ei_x_free(&ev_out);
	ev_out.buff = NULL;
}

static int events_open(struct nfp_req *req, int size)
{
	int grp = NFNLGRP_NFTABLES, fd;

	ev_nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (!ev_nl)
		return nfp_fail_kernel(req, -1, errno);
	if (mnl_socket_bind(ev_nl, 0, MNL_SOCKET_AUTOPID) < 0 ||
	    mnl_socket_setsockopt(ev_nl, NETLINK_ADD_MEMBERSHIP, &grp, sizeof(grp)) < 0) {
		int err = errno;

		nfp_events_close();
		return nfp_fail_kernel(req, -1, err);
	}
	fd = mnl_socket_get_fd(ev_nl);
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	ev_buf = malloc(NFP_EVENTS_CHUNK);
	if (!ev_buf) {
		nfp_events_close();
		return nfp_fail(req, "out of memory");
	}
	ei_x_new(&ev_out);
	return 0;
}

int nfp_op_subscribe(struct nfp_req *req)
{
	uint64_t sub, rcvbuf = NFP_EVENTS_RCVBUF;
	char key[NFP_ATOM_MAX];
	int n;

	if (nfp_dec_u64(req, &req->idx, &sub, "subscription id") < 0 ||
	    nfp_dec_map(req, &req->idx, &n, "options") < 0)
		return -1;
	for (int i = 0; i < n; i++) {
		if (nfp_dec_atom(req, &req->idx, key, "option name") < 0)
			return -1;
		if (strcmp(key, "rcvbuf") != 0)
			return nfp_fail(req, "unknown option :%s (known: rcvbuf)", key);
		if (nfp_dec_u64(req, &req->idx, &rcvbuf, "option :rcvbuf") < 0)
			return -1;
		if (rcvbuf < 1024 || rcvbuf > (1u << 30))
			return nfp_fail(req, "option :rcvbuf: %llu is not from 1024 to 2^30 bytes",
					(unsigned long long)rcvbuf);
	}
	if (ev_nl && sub != ev_sub)
		return nfp_fail(req, "already subscribed as %llu; unsubscribe first",
				(unsigned long long)ev_sub);
	if (!ev_nl && events_open(req, (int)rcvbuf) < 0)
		return -1;
	ev_sub = sub;
	nfp_enc_atom(req->out, "ok");
	return 0;
}

int nfp_op_unsubscribe(struct nfp_req *req)
{
	uint64_t sub;

	if (nfp_dec_u64(req, &req->idx, &sub, "subscription id") < 0)
		return -1;
	if (!ev_nl || sub != ev_sub)
		return nfp_fail(req, "no subscription %llu", (unsigned long long)sub);
	nfp_events_close();
	nfp_enc_atom(req->out, "ok");
	return 0;
}

/* {:event, SubId, _}: the head of every event frame. */
static void frame_head(void)
{
	ev_out.index = 0;
	ei_x_encode_version(&ev_out);
	ei_x_encode_tuple_header(&ev_out, 3);
	nfp_enc_atom(&ev_out, "event");
	nfp_enc_u64(&ev_out, ev_sub);
}

/* The schema object of a NEW or DEL message type. */
static const struct nfp_obj *obj_of(uint16_t type, bool *is_new)
{
	for (size_t i = 0; i < nfp_nobjects; i++) {
		const struct nfp_obj *o = nfp_objects[i];

		/* `ruleset` also deletes with DELTABLE, but has no NEW. */
		if (o->msg_new == NFP_MSG_NONE)
			continue;
		if (o->msg_new == type || o->msg_del == type) {
			*is_new = o->msg_new == type;
			return o;
		}
	}
	return NULL;
}

/* The kind of a stateful object. */
static const struct nfp_obj *kind_of(const struct nfp_obj *obj, void *o)
{
	for (size_t i = 0; i < nfp_nobjects; i++) {
		const struct nfp_obj *k = nfp_objects[i];

		if (k->backend == obj->backend && k->fixed_attr != NFP_NO_ATTR && nfp_obj_is(k, o))
			return k;
	}
	return NULL;
}

struct gen_attrs {
	const struct nlattr *tb[NFTA_GEN_MAX + 1];
};

static int gen_attr_cb(const struct nlattr *attr, void *data)
{
	struct gen_attrs *g = data;
	int type = mnl_attr_get_type(attr);

	if (type <= 0 || type > NFTA_GEN_MAX)
		return MNL_CB_OK;
	if ((type == NFTA_GEN_ID || type == NFTA_GEN_PROC_PID) &&
	    mnl_attr_validate(attr, MNL_TYPE_U32) < 0)
		return MNL_CB_OK;
	if (type == NFTA_GEN_PROC_NAME && mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) < 0)
		return MNL_CB_OK;
	g->tb[type] = attr;
	return MNL_CB_OK;
}

static void encode_gen(const struct nlmsghdr *nlh)
{
	struct gen_attrs g = { 0 };
	uint32_t n = 0;

	mnl_attr_parse(nlh, sizeof(struct nfgenmsg), gen_attr_cb, &g);
	for (int i = 1; i <= NFTA_GEN_MAX; i++)
		n += g.tb[i] != NULL;
	ei_x_encode_tuple_header(&ev_out, 2);
	nfp_enc_atom(&ev_out, "newgen");
	ei_x_encode_map_header(&ev_out, n);
	if (g.tb[NFTA_GEN_ID]) {
		nfp_enc_atom(&ev_out, "genid");
		nfp_enc_u64(&ev_out, ntohl(mnl_attr_get_u32(g.tb[NFTA_GEN_ID])));
	}
	if (g.tb[NFTA_GEN_PROC_PID]) {
		nfp_enc_atom(&ev_out, "pid");
		nfp_enc_u64(&ev_out, ntohl(mnl_attr_get_u32(g.tb[NFTA_GEN_PROC_PID])));
	}
	if (g.tb[NFTA_GEN_PROC_NAME]) {
		nfp_enc_atom(&ev_out, "name");
		nfp_enc_str(&ev_out, mnl_attr_get_str(g.tb[NFTA_GEN_PROC_NAME]));
	}
}

static void encode_unknown(uint16_t type)
{
	ei_x_encode_tuple_header(&ev_out, 2);
	nfp_enc_atom(&ev_out, "unknown");
	nfp_enc_u64(&ev_out, type);
}

/* Encodes the event of one message; false when it is none of ours. */
static bool encode_event(const struct nlmsghdr *nlh)
{
	uint16_t type = nlh->nlmsg_type & 0xff;
	const struct nfp_obj *obj, *as;
	const char *verb;
	bool is_new = false;
	void *o;

	if ((nlh->nlmsg_type >> 8) != NFNL_SUBSYS_NFTABLES)
		return false;
	if (type == NFT_MSG_NEWGEN) {
		encode_gen(nlh);
		return true;
	}
	obj = obj_of(type, &is_new);
	if (!obj) {
		encode_unknown(type);
		return true;
	}
	o = obj->backend->alloc();
	if (!o)
		return false;
	if (obj->backend->parse(nlh, o) < 0) {
		obj->backend->free(o);
		encode_unknown(type);
		return true;
	}
	as = obj->fixed_attr != NFP_NO_ATTR ? kind_of(obj, o) : obj;
	if (!as) {
		obj->backend->free(o);
		encode_unknown(type);
		return true;
	}
	verb = is_new ? "add" : "delete";
	/* A rule at its chain's start comes without a position and without
	 * NLM_F_APPEND: as a message, that is an insert. */
	if (is_new && obj->backend == &nfp_backend_rule &&
	    !(nlh->nlmsg_flags & NLM_F_APPEND)) {
		const struct nfp_attr *pos = nfp_attr_find(obj->attrs, obj->nattrs, "position");

		if (!pos || !obj->backend->is_set(o, pos->id))
			verb = "insert";
	}
	ei_x_encode_tuple_header(&ev_out, 3);
	nfp_enc_atom(&ev_out, verb);
	nfp_enc_atom(&ev_out, as->name);
	nfp_obj_encode_map(&ev_out, as, o);
	obj->backend->free(o);
	return true;
}

static void emit_overflow(void (*emit)(void *, ei_x_buff *), void *ctx)
{
	frame_head();
	nfp_enc_atom(&ev_out, "overflow");
	emit(ctx, &ev_out);
}

void nfp_events_drain(void (*emit)(void *ctx, ei_x_buff *frame), void *ctx)
{
	for (int i = 0; ev_nl && i < NFP_EVENTS_BATCH; i++) {
		ssize_t n = recv(mnl_socket_get_fd(ev_nl), ev_buf, NFP_EVENTS_CHUNK, MSG_DONTWAIT);
		const struct nlmsghdr *nlh;
		int len;

		if (n < 0) {
			if (errno == ENOBUFS) {
				emit_overflow(emit, ctx);
				continue;
			}
			if (errno == EINTR)
				continue;
			return;		/* EAGAIN: all read */
		}
		if (n == 0)
			return;
		len = (int)n;
		for (nlh = (const struct nlmsghdr *)ev_buf; mnl_nlmsg_ok(nlh, len);
		     nlh = mnl_nlmsg_next(nlh, &len)) {
			if (nlh->nlmsg_type < NLMSG_MIN_TYPE)
				continue;
			frame_head();
			if (!encode_event(nlh))
				continue;
			emit(ctx, &ev_out);
		}
		/* Do not keep a huge frame buffer between events. */
		if (ev_out.buffsz > (4 << 20)) {
			ei_x_free(&ev_out);
			ei_x_new(&ev_out);
		}
	}
}
