// SPDX-License-Identifier: GPL-2.0-or-later
/* NETLINK_NETFILTER batches and dumps, see nl.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <arpa/inet.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <libnftnl/common.h>
#include <libnftnl/gen.h>
#include <libnftnl/set.h>

#include "backend.h"
#include "etf.h"
#include "extack.h"
#include "nl.h"
#include "obj.h"

#define NFP_RCVBUF_DEFAULT (4 * 1024 * 1024)
#define NFP_RECV_CHUNK (256 * 1024)

static const char *const verb_names[NFP_VERB_COUNT] = {
	[NFP_VERB_ADD] = "add", [NFP_VERB_CREATE] = "create",
	[NFP_VERB_INSERT] = "insert", [NFP_VERB_REPLACE] = "replace",
	[NFP_VERB_DELETE] = "delete", [NFP_VERB_DESTROY] = "destroy",
	[NFP_VERB_FLUSH] = "flush",
};

int nfp_verb_parse(const char *name)
{
	for (int v = 0; v < NFP_VERB_COUNT; v++)
		if (strcmp(name, verb_names[v]) == 0)
			return v;
	return -1;
}

const char *nfp_verb_name(enum nfp_verb v)
{
	return v < NFP_VERB_COUNT ? verb_names[v] : "?";
}

/* Asks for a socket buffer size; the FORCE variant needs CAP_NET_ADMIN
 * and ignores rmem_max/wmem_max. */
static int sock_buf(struct nfp_sock *s, int force_opt, int opt, int size)
{
	int fd = mnl_socket_get_fd(s->nl);

	if (setsockopt(fd, SOL_SOCKET, force_opt, &size, sizeof(size)) == 0)
		return size;
	setsockopt(fd, SOL_SOCKET, opt, &size, sizeof(size));
	return size;
}

int nfp_sock_open(struct nfp_sock *s, char *err, size_t errlen)
{
	int one = 1;

	memset(s, 0, sizeof(*s));
	s->nl = mnl_socket_open(NETLINK_NETFILTER);
	if (!s->nl) {
		nfp_errno_message(errno, err, errlen);
		return -1;
	}
	if (mnl_socket_bind(s->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		nfp_errno_message(errno, err, errlen);
		mnl_socket_close(s->nl);
		s->nl = NULL;
		return -1;
	}
	s->portid = mnl_socket_get_portid(s->nl);
	s->seq = (uint32_t)time(NULL);
	/* Errors carry only the failing message's header, not its payload. */
	mnl_socket_setsockopt(s->nl, NETLINK_CAP_ACK, &one, sizeof(one));
	mnl_socket_setsockopt(s->nl, NETLINK_EXT_ACK, &one, sizeof(one));
	s->rcvbuf = sock_buf(s, SO_RCVBUFFORCE, SO_RCVBUF, NFP_RCVBUF_DEFAULT);
	return 0;
}

void nfp_sock_close(struct nfp_sock *s)
{
	if (s->nl)
		mnl_socket_close(s->nl);
	s->nl = NULL;
}

/* --- batches ----------------------------------------------------------- */

/* Room kept at the front for BATCH_BEGIN (with an optional genid). */
#define NFP_BEGIN_ROOM 32

void nfp_batch_init(struct nfp_batch *b)
{
	memset(b, 0, sizeof(*b));
}

void nfp_batch_release(struct nfp_batch *b)
{
	free(b->buf);
	free(b->info);
	memset(b, 0, sizeof(*b));
}

void nfp_batch_reset(struct nfp_batch *b)
{
	/* A huge batch gives its memory back; a small one is reused. */
	if (b->cap > 16u * 1024 * 1024 || b->info_cap > 65536) {
		nfp_batch_release(b);
		return;
	}
	b->len = b->cap ? NFP_BEGIN_ROOM : 0;
	b->nmsgs = 0;
	b->nuser = 0;
	b->next_id = 0;
	b->echo = false;
}

static int batch_reserve(struct nfp_req *req, struct nfp_batch *b, size_t more)
{
	size_t need;

	if (b->cap == 0)
		b->len = NFP_BEGIN_ROOM;
	need = b->len + more;
	if (need > b->cap) {
		size_t cap = b->cap ? b->cap : 64 * 1024;
		char *p;

		while (cap < need)
			cap *= 2;
		p = realloc(b->buf, cap);
		if (!p)
			return nfp_fail_port(req, "out of memory for a batch of %zu bytes", need);
		b->buf = p;
		b->cap = cap;
	}
	if (b->nmsgs + 1 > b->info_cap) {
		uint32_t n = b->info_cap ? b->info_cap * 2 : 64;
		struct nfp_msginfo *i = realloc(b->info, n * sizeof(*i));

		if (!i)
			return nfp_fail_port(req, "out of memory for a batch");
		b->info = i;
		b->info_cap = n;
	}
	return 0;
}

/*
 * Every nest libnftnl closes comes here: the executable's definition is
 * found before libmnl's, for libnftnl's calls as for ours. A nest whose
 * real length does not fit its 16-bit nla_len (a rule's expressions,
 * a dynset's, an element list) is recorded, and msg_end() refuses the
 * message: a wrapped length can make the rest of the nest look like
 * attributes of the enclosing level, which no walk afterwards can tell
 * from a message that means it.
 */
static bool nest_overflow;

void mnl_attr_nest_end(struct nlmsghdr *nlh, struct nlattr *start)
{
	size_t len = (size_t)((char *)mnl_nlmsg_get_payload_tail(nlh) - (char *)start);

	if (len > UINT16_MAX)
		nest_overflow = true;
	start->nla_len = (uint16_t)len;
}

static struct nlmsghdr *msg_begin(struct nfp_req *req, struct nfp_batch *b, size_t room,
				  uint16_t type, uint16_t family, uint16_t flags)
{
	struct nlmsghdr *nlh;

	if (batch_reserve(req, b, room) < 0)
		return NULL;
	/* libmnl 1.0.4 does not zero attribute padding: no stale bytes may
	 * reach the kernel. The room is this message's bound, not more. */
	memset(b->buf + b->len, 0, room);
	nest_overflow = false;
	/* seq is the message's ordinal; nfp_batch_send() adds the base. */
	nlh = nftnl_nlmsg_build_hdr(b->buf + b->len, type, family, flags, b->nmsgs + 1);
	return nlh;
}

/* The attributes must exactly fill the message: a nest longer than 64 KiB
 * would have wrapped its 16-bit length. */
static bool msg_well_formed(const struct nlmsghdr *nlh)
{
	const struct nlattr *attr;
	size_t off = MNL_ALIGN(sizeof(struct nfgenmsg));
	size_t plen = mnl_nlmsg_get_payload_len(nlh);

	mnl_attr_for_each(attr, nlh, sizeof(struct nfgenmsg)) {
		if (attr->nla_len < sizeof(*attr))
			return false;
		off += MNL_ALIGN(attr->nla_len);
	}
	return off == plen;
}

static int msg_end(struct nfp_req *req, struct nfp_batch *b, struct nlmsghdr *nlh,
		   const struct nfp_obj *obj, int64_t index)
{
	if (nest_overflow || !msg_well_formed(nlh))
		return nfp_fail(req, "message %lld: %s is too large for one netlink message",
				(long long)index, obj->name);
	b->info[b->nmsgs].index = index;
	b->info[b->nmsgs].obj = obj;
	b->nmsgs++;
	b->len += NLMSG_ALIGN(nlh->nlmsg_len);
	return 0;
}

static uint16_t obj_family(const struct nfp_obj *obj, void *o)
{
	uint32_t len, v = AF_UNSPEC;
	const void *p;

	if (obj->family_attr == NFP_NO_ATTR || !obj->backend->is_set(o, obj->family_attr))
		return AF_UNSPEC;
	p = obj->backend->get(o, obj->family_attr, &len);
	if (p && len >= sizeof(v))
		memcpy(&v, p, sizeof(v));
	return (uint16_t)v;
}

/* flush: the message of another backend, built from copied attributes. */
static void *flush_object(const struct nfp_obj *obj, void *o)
{
	const struct nfp_flush *fl = obj->flush;
	void *t = fl->backend->alloc();

	if (!t)
		return NULL;
	for (uint8_t i = 0; i < fl->n; i++) {
		uint32_t len;
		const void *p;

		if (!obj->backend->is_set(o, fl->src[i]))
			continue;
		p = obj->backend->get(o, fl->src[i], &len);
		if (p)
			fl->backend->set(t, fl->dst[i], p, len);
	}
	return t;
}

static void verbs_list(const struct nfp_obj *obj, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (int v = 0; v < NFP_VERB_COUNT && off < len; v++)
		if (obj->verbs & (1u << v))
			off += snprintf(buf + off, len - off, "%s%s", off ? ", " : "",
					verb_names[v]);
}

/* Transaction ids the kernel requires (a new set's) but a client may
 * leave out: taken from the top half of the range, away from the small
 * ids clients pick themselves. */
static void assign_ids(struct nfp_batch *b, const struct nfp_obj *obj, void *o)
{
	for (uint16_t i = 0; i < obj->nattrs; i++) {
		const struct nfp_attr *a = &obj->attrs[i];
		uint32_t id;

		if (!(a->flags & NFP_A_AUTO_ID) || obj->backend->is_set(o, a->id))
			continue;
		id = 0x80000000u + ++b->next_id;
		obj->backend->set(o, a->id, &id, sizeof(id));
	}
}

int nfp_batch_add(struct nfp_req *req, struct nfp_batch *b, const struct nfp_obj *obj,
		  enum nfp_verb verb, void *o, int64_t index)
{
	const struct nfp_backend *be = obj->backend;
	uint16_t type, flags = 0, family = obj_family(obj, o);
	struct nlmsghdr *nlh;
	void *m = o;
	char valid[128];
	int ret = 0;

	if (!(obj->verbs & (1u << verb))) {
		verbs_list(obj, valid, sizeof(valid));
		return nfp_fail(req, "message %lld: verb :%s is not valid for %s (valid: %s)",
				(long long)index, nfp_verb_name(verb), obj->name, valid);
	}
	if (verb <= NFP_VERB_REPLACE)
		assign_ids(b, obj, o);
	switch (verb) {
	case NFP_VERB_ADD:
		type = obj->msg_new;
		flags = NLM_F_CREATE | be->new_flags;
		break;
	case NFP_VERB_CREATE:
		type = obj->msg_new;
		flags = NLM_F_CREATE | NLM_F_EXCL | be->new_flags;
		break;
	case NFP_VERB_INSERT:
		type = obj->msg_new;
		flags = NLM_F_CREATE;
		break;
	case NFP_VERB_REPLACE:
		type = obj->msg_new;
		flags = NLM_F_REPLACE;
		break;
	case NFP_VERB_DELETE:
		type = obj->msg_del;
		break;
	case NFP_VERB_DESTROY:
		type = obj->msg_destroy;
		break;
	case NFP_VERB_FLUSH:
		type = obj->flush->msg;
		be = obj->flush->backend;
		m = flush_object(obj, o);
		if (!m)
			return nfp_fail_port(req, "out of memory");
		break;
	default:
		return nfp_fail(req, "message %lld: bad verb", (long long)index);
	}
	/* Echo only what gets a handle: the kernel echoes every element of
	 * an element message, which would flood the socket for nothing. */
	if (b->echo && obj->handle_attr != NFP_NO_ATTR && verb != NFP_VERB_DELETE &&
	    verb != NFP_VERB_DESTROY && verb != NFP_VERB_FLUSH)
		flags |= NLM_F_ECHO;
	type = NFNL_SUBSYS_NFTABLES << 8 | type;

	/* libnftnl writes without bounds: room for the largest message this
	 * object can make, and no message the kernel could not take. */
	size_t max_item = 0, size = nfp_obj_wire_size(obj, o, &max_item) + 512;

	if (be->iter_create) {
		/* Elements: as many messages as it takes, each nest < 64 KiB,
		 * which libnftnl's iterator fills up to one element over. */
		void *it;

		if (max_item > NFP_NEST_MAX) {
			ret = nfp_fail(req, "message %lld: an element of about %zu bytes does not fit a netlink attribute (%d bytes)",
				       (long long)index, max_item, NFP_NEST_MAX);
			goto out;
		}
		size = NFP_NEST_MAX + 2 * max_item + 4096;
		it = be->iter_create(m);

		if (!it) {
			ret = nfp_fail_port(req, "out of memory");
			goto out;
		}
		do {
			nlh = msg_begin(req, b, size, type, family, flags);
			if (!nlh) {
				ret = -1;
				break;
			}
			ret = be->iter_build(nlh, it);
			if (msg_end(req, b, nlh, obj, index) < 0) {
				ret = -1;
				break;
			}
		} while (ret > 0);
		be->iter_destroy(it);
	} else {
		if (size > NFP_MSG_RESERVE) {
			ret = nfp_fail(req, "message %lld: the %s is about %zu bytes; one netlink message carries at most %d",
				       (long long)index, obj->name, size, NFP_MSG_RESERVE);
			goto out;
		}
		nlh = msg_begin(req, b, size, type, family, flags);
		if (!nlh) {
			ret = -1;
			goto out;
		}
		be->build(nlh, m);
		ret = msg_end(req, b, nlh, obj, index);
	}
out:
	if (m != o)
		be->free(m);
	return ret;
}

/* Writes BATCH_BEGIN into the room before the first message; returns the
 * offset where the batch starts. */
static size_t put_begin(struct nfp_batch *b, const struct nfp_send_opts *opts)
{
	char tmp[NFP_BEGIN_ROOM];
	struct nlmsghdr *nlh;
	struct nfgenmsg *nfg;

	memset(tmp, 0, sizeof(tmp));
	nlh = mnl_nlmsg_put_header(tmp);
	nlh->nlmsg_type = NFNL_MSG_BATCH_BEGIN;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	nlh->nlmsg_seq = 0;
	nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = AF_UNSPEC;
	nfg->version = NFNETLINK_V0;
	nfg->res_id = htons(NFNL_SUBSYS_NFTABLES);
	if (opts && opts->use_genid)
		mnl_attr_put_u32(nlh, NFNL_BATCH_GENID, htonl(opts->genid));
	memcpy(b->buf + NFP_BEGIN_ROOM - nlh->nlmsg_len, tmp, nlh->nlmsg_len);
	return NFP_BEGIN_ROOM - nlh->nlmsg_len;
}

static void put_end(struct nfp_batch *b)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(b->buf + b->len);
	struct nfgenmsg *nfg;

	nlh->nlmsg_type = NFNL_MSG_BATCH_END;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	nlh->nlmsg_seq = b->nmsgs + 1;
	nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = AF_UNSPEC;
	nfg->version = NFNETLINK_V0;
	nfg->res_id = htons(NFNL_SUBSYS_NFTABLES);
	b->len += nlh->nlmsg_len;
}

struct talk {
	struct nfp_req *req;
	struct nfp_batch *b;
	uint32_t base;
	bool acked;		/* the last message's ACK arrived */
	bool done;		/* the last message's answer arrived: nothing follows */
	int64_t err_msg;	/* ordinal of the first failing message, or -1 */
	int err;
	struct nfp_extack ea;	/* what the kernel said about it */
	uint32_t echoes;	/* echoed messages: sent only at commit */
	uint64_t *handles;	/* echo: per client message, 0 = none */
};

static void on_echo(struct talk *t, const struct nlmsghdr *nlh, uint32_t ord)
{
	const struct nfp_msginfo *mi;
	const struct nfp_backend *be;
	uint32_t len;
	const void *p;
	void *o;

	if (ord == 0 || ord > t->b->nmsgs)
		return;
	mi = &t->b->info[ord - 1];
	/* libnftnl exits on an attribute it did not expect: parse only the
	 * echo of this very message type (not, say, the NEWGEN that follows). */
	if (nlh->nlmsg_type != (NFNL_SUBSYS_NFTABLES << 8 | mi->obj->msg_new))
		return;
	t->echoes++;
	be = mi->obj->backend;
	if (!t->handles || mi->obj->handle_attr == NFP_NO_ATTR || !be->parse || mi->index < 0)
		return;
	o = be->alloc();
	if (!o)
		return;
	if (be->parse(nlh, o) == 0 && be->is_set(o, mi->obj->handle_attr)) {
		p = be->get(o, mi->obj->handle_attr, &len);
		if (p && len == sizeof(uint64_t))
			memcpy(&t->handles[mi->index], p, sizeof(uint64_t));
	}
	be->free(o);
}

static void on_message(struct talk *t, const struct nlmsghdr *nlh)
{
	uint32_t ord = nlh->nlmsg_seq - t->base;

	if (nlh->nlmsg_type == NLMSG_ERROR) {
		const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);

		if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*e)))
			return;
		/* Answers come in message order, the last message's last. */
		if (ord == t->b->nmsgs)
			t->done = true;
		if (e->error == 0) {
			if (ord == t->b->nmsgs)
				t->acked = true;
			return;
		}
		/* The first error is the cause; later ones follow from it. */
		if (t->err_msg < 0 || ord < (uint32_t)t->err_msg) {
			t->err_msg = ord;
			t->err = -e->error;
			nfp_extack_parse(nlh, &t->ea);
		}
		return;
	}
	if (nlh->nlmsg_type == NLMSG_DONE || nlh->nlmsg_type == NLMSG_NOOP)
		return;
	on_echo(t, nlh, ord);
}

/* Reads what the kernel queued while it processed the batch. The kernel
 * runs the whole batch inside sendmsg(), so everything is queued by now. */
static int drain(struct talk *t, struct nfp_sock *s, bool *lost)
{
	char *buf = malloc(NFP_RECV_CHUNK);
	int fd = mnl_socket_get_fd(s->nl);

	if (!buf)
		return nfp_fail_port(t->req, "out of memory");
	for (;;) {
		ssize_t n = recv(fd, buf, NFP_RECV_CHUNK, MSG_DONTWAIT);
		const struct nlmsghdr *nlh;
		int left;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ENOBUFS) {
				*lost = true;
				continue;
			}
			break;	/* EAGAIN: nothing more */
		}
		left = (int)n;
		for (nlh = (const struct nlmsghdr *)buf; mnl_nlmsg_ok(nlh, left);
		     nlh = mnl_nlmsg_next(nlh, &left))
			on_message(t, nlh);
		if (t->done)
			break;
	}
	free(buf);
	return 0;
}

/* No error and no ACK: replies were lost. Never guess success: say what
 * is known. Echoes are only sent when the transaction commits, and errors
 * would have come first, in order, into an empty queue. */
static int unacked(struct nfp_req *req, struct nfp_sock *s, const struct talk *t, bool lost,
		   const struct nfp_send_opts *opts, bool have_before, uint32_t before)
{
	struct nfp_req quiet = { 0 };
	uint32_t after;

	if (t->echoes > 0) {
		if (lost && opts && opts->echo)
			return nfp_fail_port(req, "the transaction committed, but echoed messages were lost to a full receive buffer (ENOBUFS): the handles are incomplete; list the objects to find them");
		return 0;
	}
	if (have_before && nfp_genid(&quiet, s, &after) == 0)
		return nfp_fail_port(req, "%s; the generation went from %u to %u, so the transaction %s",
				lost ? "the kernel's replies were lost (ENOBUFS)" :
				       "the kernel did not acknowledge the transaction",
				before, after,
				after == before ? "did not commit" :
				after == before + 1 ? "most likely committed (unless another writer committed instead)" :
				"may have committed (other writers committed too)");
	return nfp_fail_port(req, lost ?
			"the kernel's replies were lost (ENOBUFS): the outcome of the transaction is unknown; compare the generation id" :
			"the kernel did not acknowledge the transaction: its outcome is unknown");
}

/* The sent message with sequence number seq, or NULL. */
static const struct nlmsghdr *sent_message(const struct nfp_batch *b, size_t start,
					   size_t total, uint32_t seq)
{
	const char *p = b->buf + start, *end = b->buf + start + total;

	while (p + sizeof(struct nlmsghdr) <= end) {
		const struct nlmsghdr *nlh = (const struct nlmsghdr *)p;

		if (nlh->nlmsg_len < sizeof(*nlh) || p + nlh->nlmsg_len > end)
			return NULL;
		if (nlh->nlmsg_seq == seq)
			return nlh;
		p += NLMSG_ALIGN(nlh->nlmsg_len);
	}
	return NULL;
}

/* The object a failing message addressed, read back from the message
 * itself: a flush message is another object's, whose attributes map back
 * through the flush's copy table. */
static void *sent_object(const struct nfp_obj *obj, const struct nlmsghdr *nlh, bool *flush)
{
	uint16_t type = nlh->nlmsg_type & 0xff;
	const struct nfp_backend *be = obj->backend;
	void *o, *t;

	*flush = obj->flush && type == obj->flush->msg && type != obj->msg_del;
	if (*flush)
		be = obj->flush->backend;
	if (!be->parse)
		return NULL;
	o = be->alloc();
	if (!o)
		return NULL;
	if (be->parse(nlh, o) < 0) {
		be->free(o);
		return NULL;
	}
	if (!*flush)
		return o;
	t = nfp_obj_new(obj);
	for (uint8_t i = 0; t && i < obj->flush->n; i++) {
		uint32_t len;
		const void *p;

		if (!be->is_set(o, obj->flush->dst[i]))
			continue;
		p = be->get(o, obj->flush->dst[i], &len);
		if (p)
			obj->backend->set(t, obj->flush->src[i], p, len);
	}
	be->free(o);
	return t;
}

/* A message of the batch failed: what it addressed, and which of its
 * attributes the kernel blames. */
static void blame(struct nfp_req *req, const struct nfp_batch *b, size_t start, size_t total,
		  const struct talk *t)
{
	const struct nfp_obj *obj = b->info[t->err_msg - 1].obj;
	int64_t index = b->info[t->err_msg - 1].index;
	const struct nlmsghdr *nlh = sent_message(b, start, total, t->base + (uint32_t)t->err_msg);
	uint32_t base = 0;
	bool flush = false;
	void *o;

	if (!nlh || !obj)
		return;
	/* The netlink messages of the same client message before this one. */
	for (int64_t k = t->err_msg - 2; k >= 0 && b->info[k].index == index; k--) {
		const struct nlmsghdr *prev = sent_message(b, start, total, t->base + (uint32_t)k + 1);

		if (prev)
			base += nfp_sent_items(prev, obj);
	}
	o = sent_object(obj, nlh, &flush);
	nfp_kerr_object(req, obj, o);
	if (o)
		obj->backend->free(o);
	nfp_kerr_detail(req, &t->ea, nlh, flush ? NULL : obj, obj, base);
}

int nfp_batch_send(struct nfp_req *req, struct nfp_sock *s, struct nfp_batch *b,
		   const struct nfp_send_opts *opts)
{
	struct talk t = { .req = req, .b = b, .err_msg = -1 };
	size_t start, total;
	bool lost = false, have_before = false;
	uint32_t before = 0;
	char msg[160];
	ssize_t n;
	int ret = -1;

	if (b->nmsgs == 0) {
		if (opts && opts->echo)
			ei_x_encode_empty_list(opts->echo);
		return 0;
	}
	if (batch_reserve(req, b, 64) < 0)
		return -1;
	put_end(b);
	start = put_begin(b, opts);
	total = b->len - start;

	/* Sequence numbers: ordinal + base; only the last message asks
	 * for an ACK. */
	t.base = s->seq;
	s->seq += b->nmsgs + 2;
	{
		struct nlmsghdr *nlh = (struct nlmsghdr *)(b->buf + start);
		size_t left = total;
		struct nlmsghdr *last = NULL;

		while (left >= sizeof(*nlh) && nlh->nlmsg_len >= sizeof(*nlh) &&
		       nlh->nlmsg_len <= left) {
			if (nlh->nlmsg_seq > 0 && nlh->nlmsg_seq <= b->nmsgs)
				last = nlh;
			nlh->nlmsg_seq += t.base;
			left -= NLMSG_ALIGN(nlh->nlmsg_len);
			nlh = (struct nlmsghdr *)((char *)nlh + NLMSG_ALIGN(nlh->nlmsg_len));
		}
		if (last)
			last->nlmsg_flags |= NLM_F_ACK;
	}

	/* For a big batch, or one whose echo may fill the receive buffer,
	 * note the generation: if replies are lost, it tells what happened. */
	if (b->nmsgs > 10000 || (opts && opts->echo)) {
		struct nfp_req quiet = { 0 };

		have_before = nfp_genid(&quiet, s, &before) == 0;
	}
	if (opts && opts->echo) {
		t.handles = calloc(opts->nindex ? opts->nindex : 1, sizeof(uint64_t));
		if (!t.handles)
			return nfp_fail_port(req, "out of memory");
		if ((int)(total * 2) > s->rcvbuf)
			s->rcvbuf = sock_buf(s, SO_RCVBUFFORCE, SO_RCVBUF,
					     total * 2 > INT32_MAX / 2 ? INT32_MAX / 2 : (int)(total * 2));
	}
	if (total + 4096 > (size_t)s->sndbuf) {
		size_t want = total + 4096;

		if (want > INT32_MAX / 2) {
			ret = nfp_fail(req, "the batch is %zu bytes; one netlink message can carry at most %d",
				       total, INT32_MAX / 2);
			goto out;
		}
		s->sndbuf = sock_buf(s, SO_SNDBUFFORCE, SO_SNDBUF, (int)want);
	}
	do {
		n = sendto(mnl_socket_get_fd(s->nl), b->buf + start, total, 0, NULL, 0);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		int e = errno;

		if (e == EMSGSIZE || e == ENOBUFS || e == ENOMEM) {
			nfp_errno_message(e, msg, sizeof(msg));
			ret = nfp_fail_port(req, "the kernel did not take the batch of %zu bytes in %u messages: %s",
				       total, b->nmsgs, msg);
		} else {
			ret = nfp_fail_kernel(req, -1, e);
		}
		goto out;
	}
	if (drain(&t, s, &lost) < 0)
		goto out;
	if (t.err_msg >= 0) {
		if (t.err_msg == 0 || (uint32_t)t.err_msg > b->nmsgs) {
			/* Blamed on BATCH_BEGIN/END: the transaction as a whole. */
			if (t.err == ERESTART && opts && opts->use_genid)
				ret = nfp_fail_atom(req, "generation_changed");
			else
				ret = nfp_fail_kernel(req, -1, t.err);
		} else {
			ret = nfp_fail_kernel(req, b->info[t.err_msg - 1].index, t.err);
			blame(req, b, start, total, &t);
		}
		goto out;
	}
	if (!t.acked) {
		ret = unacked(req, s, &t, lost, opts, have_before, before);
		if (ret < 0)
			goto out;
	}
	if (opts && opts->echo) {
		ei_x_buff *x = opts->echo;

		ei_x_encode_list_header(x, opts->nindex);
		for (uint32_t i = 0; i < opts->nindex; i++) {
			if (t.handles[i])
				nfp_enc_u64(x, t.handles[i]);
			else
				ei_x_encode_atom(x, "nil");
		}
		ei_x_encode_empty_list(x);
	}
	ret = 0;
out:
	free(t.handles);
	return ret;
}

/* --- dumps ------------------------------------------------------------- */

/* One request's reply: the caller's callback, and the error's detail. */
struct reply_ctx {
	nfp_dump_cb cb;
	void *data;
	struct nfp_extack ea;
	bool failed;
};

static int reply_data(const struct nlmsghdr *nlh, void *data)
{
	struct reply_ctx *r = data;

	return r->cb(nlh, r->data);
}

static int reply_error(const struct nlmsghdr *nlh, void *data)
{
	struct reply_ctx *r = data;

	if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(struct nlmsgerr))) {
		errno = EBADMSG;
		return MNL_CB_ERROR;
	}
	nfp_extack_parse(nlh, &r->ea);
	if (r->ea.err == 0)
		return MNL_CB_STOP;
	r->failed = true;
	errno = r->ea.err;
	return MNL_CB_ERROR;
}

/* NOOP is ignored; DONE (past the array) stops, as libmnl's default. */
static mnl_cb_t reply_ctl[NLMSG_ERROR + 1] = { [NLMSG_ERROR] = reply_error };

/* Sends one request and runs cb over the reply until it ends. Returns 0,
 * -EINTR when a dump was interrupted (NLM_F_DUMP_INTR), or -1 failed. */
static int request(struct nfp_req *req, struct nfp_sock *s, char *buf, uint16_t msg,
		   uint16_t family, uint16_t flags, const struct nfp_obj *obj, void *filter,
		   nfp_dump_cb cb, void *data)
{
	struct reply_ctx r = { .cb = cb, .data = data };
	struct nlmsghdr *nlh;
	char sent[8192];
	uint32_t seq = s->seq++;
	ssize_t n;
	int ret;

	/* A filter or key message is small; its padding must be zero. */
	memset(buf, 0, sizeof(sent));
	nlh = nftnl_nlmsg_build_hdr(buf, NFNL_SUBSYS_NFTABLES << 8 | msg, family, flags, seq);
	if (filter && obj->backend->build)
		obj->backend->build(nlh, filter);
	if (mnl_socket_sendto(s->nl, nlh, nlh->nlmsg_len) < 0)
		return nfp_fail_kernel(req, -1, errno);
	/* Kept for the error's detail: the reply overwrites buf. */
	bool kept = nlh->nlmsg_len <= sizeof(sent);

	if (kept)
		memcpy(sent, buf, nlh->nlmsg_len);
	for (;;) {
		n = mnl_socket_recvfrom(s->nl, buf, NFP_RECV_CHUNK);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return nfp_fail_kernel(req, -1, errno);
		}
		ret = mnl_cb_run2(buf, n, seq, s->portid, reply_data, &r, reply_ctl,
				  MNL_ARRAY_SIZE(reply_ctl));
		if (ret <= MNL_CB_STOP)
			break;
	}
	if (ret == MNL_CB_STOP)
		return 0;
	if (req->err[0] || req->kerr)
		return -1;
	if (r.failed) {
		nfp_fail_kernel(req, -1, r.ea.err);
		nfp_kerr_detail(req, &r.ea, kept ? (const struct nlmsghdr *)sent : NULL,
				filter ? obj : NULL, req->kerr_as ? req->kerr_as : obj, 0);
		return -1;
	}
	if (errno == EINTR) {
		/* NLM_F_DUMP_INTR: drain what is left of this dump. */
		while (mnl_socket_recvfrom(s->nl, buf, NFP_RECV_CHUNK) > 0 &&
		       ((struct nlmsghdr *)buf)->nlmsg_type != NLMSG_DONE)
			;
		return -EINTR;
	}
	return nfp_fail_kernel(req, -1, errno);
}

int nfp_dump(struct nfp_req *req, struct nfp_sock *s, uint16_t msg, uint16_t family,
	     const struct nfp_obj *obj, void *filter, nfp_dump_cb cb, void *data,
	     void (*restart)(void *data))
{
	char *buf = malloc(NFP_RECV_CHUNK);
	int ret = -1;

	if (!buf)
		return nfp_fail_port(req, "out of memory");
	for (int attempt = 0; attempt < 100; attempt++) {
		ret = request(req, s, buf, msg, family, NLM_F_DUMP, obj, filter, cb, data);
		if (ret != -EINTR)
			goto out;
		/* The ruleset changed mid-dump: start over. */
		if (restart)
			restart(data);
	}
	ret = nfp_fail_port(req, "the ruleset kept changing during the dump");
out:
	free(buf);
	return ret;
}

int nfp_get_one(struct nfp_req *req, struct nfp_sock *s, uint16_t msg, uint16_t family,
		const struct nfp_obj *obj, void *keys, nfp_dump_cb cb, void *data)
{
	char *buf = malloc(NFP_RECV_CHUNK);
	int ret;

	if (!buf)
		return nfp_fail_port(req, "out of memory");
	ret = request(req, s, buf, msg, family, NLM_F_ACK, obj, keys, cb, data);
	free(buf);
	return ret < 0 ? -1 : 0;
}

static int genid_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nftnl_gen *gen;

	if (nlh->nlmsg_type != (NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWGEN))
		return MNL_CB_OK;
	gen = nftnl_gen_alloc();
	if (!gen)
		return MNL_CB_ERROR;
	if (nftnl_gen_nlmsg_parse(nlh, gen) == 0)
		*(uint32_t *)data = nftnl_gen_get_u32(gen, NFTNL_GEN_ID);
	nftnl_gen_free(gen);
	return MNL_CB_OK;
}

int nfp_genid(struct nfp_req *req, struct nfp_sock *s, uint32_t *genid)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;
	uint32_t seq = s->seq++;
	ssize_t n;
	int ret;

	nlh = nftnl_nlmsg_build_hdr(buf, NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_GETGEN,
				    AF_UNSPEC, NLM_F_ACK, seq);
	if (mnl_socket_sendto(s->nl, nlh, nlh->nlmsg_len) < 0)
		return nfp_fail_kernel(req, -1, errno);
	do {
		n = mnl_socket_recvfrom(s->nl, buf, sizeof(buf));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return nfp_fail_kernel(req, -1, errno);
		}
		ret = mnl_cb_run(buf, n, seq, s->portid, genid_cb, genid);
	} while (ret > MNL_CB_STOP);
	if (ret < 0)
		return nfp_fail_kernel(req, -1, errno);
	return 0;
}
