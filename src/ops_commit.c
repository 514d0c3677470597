// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * commit: a list of {verb, type, attrs} as one transaction, on the port's
 * own socket (opened on first use); and the teardown of every handle at
 * exit.
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
#include "handles.h"
#include "nl.h"
#include "obj.h"
#include "ops.h"

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
	bool seen_echo = false, seen_genid = false;
	int n;

	if (nfp_dec_map(req, &req->idx, &n, "options") < 0)
		return -1;
	for (int i = 0; i < n; i++) {
		if (nfp_dec_atom(req, &req->idx, key, "option name") < 0)
			return -1;
		if ((strcmp(key, "echo") == 0 && seen_echo) || (strcmp(key, "genid") == 0 && seen_genid))
			return nfp_fail(req, "options: the key :%s appears twice", key);
		seen_echo |= strcmp(key, "echo") == 0;
		seen_genid |= strcmp(key, "genid") == 0;
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
