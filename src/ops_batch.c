// SPDX-License-Identifier: GPL-2.0-or-later
/* Sockets and batches of the handle API, mirroring libmnl and libnftnl. */
#include <stdlib.h>

#include "backend.h"
#include "etf.h"
#include "handles.h"
#include "nl.h"
#include "ops.h"

int nfp_op_socket_open(struct nfp_req *req)
{
	if (nfp_handle_count_kind(NFP_H_SOCKET) >= NFP_MAX_SOCKETS)
		return nfp_fail(req, "too many open sockets (the limit is %d): close one with socket_close first",
				NFP_MAX_SOCKETS);

	struct nfp_sock *s = malloc(sizeof(*s));
	char err[160];
	uint64_t id;

	if (!s)
		return nfp_fail_port(req, "out of memory");
	if (nfp_sock_open(s, err, sizeof(err)) < 0) {
		free(s);
		return nfp_fail(req, "%s", err);
	}
	id = nfp_handle_new(NFP_H_SOCKET, s);
	if (id == 0) {
		nfp_sock_close(s);
		free(s);
		return nfp_fail(req, "too many live handles (the limit is %d)", NFP_MAX_HANDLES);
	}
	nfp_enc_ok_head(req->out);
	nfp_enc_u64(req->out, id);
	return 0;
}

int nfp_op_socket_close(struct nfp_req *req)
{
	int at = req->idx;
	struct nfp_handle *h = nfp_arg_handle(req, NFP_H_SOCKET, NULL, "socket");

	if (!h)
		return -1;
	nfp_sock_close(h->ptr);
	free(h->ptr);
	nfp_handle_release(nfp_arg_id(req, at));
	nfp_enc_atom(req->out, "ok");
	return 0;
}

int nfp_op_batch_new(struct nfp_req *req)
{
	struct nfp_batch *b = malloc(sizeof(*b));
	uint64_t id;

	if (!b)
		return nfp_fail_port(req, "out of memory");
	nfp_batch_init(b);
	id = nfp_handle_new(NFP_H_BATCH, b);
	if (id == 0) {
		free(b);
		return nfp_fail(req, "too many live handles (the limit is %d)", NFP_MAX_HANDLES);
	}
	nfp_enc_ok_head(req->out);
	nfp_enc_u64(req->out, id);
	return 0;
}

int nfp_op_batch_add(struct nfp_req *req)
{
	struct nfp_handle *b = nfp_arg_handle(req, NFP_H_BATCH, NULL, "batch");
	char verb[NFP_ATOM_MAX], type[NFP_ATOM_MAX];
	const struct nfp_obj *obj;
	struct nfp_handle *o;
	struct nfp_batch *batch;
	int v;

	if (!b || nfp_dec_atom(req, &req->idx, verb, "verb") < 0 ||
	    nfp_dec_atom(req, &req->idx, type, "type") < 0)
		return -1;
	v = nfp_verb_parse(verb);
	if (v < 0)
		return nfp_fail(req, "unknown verb :%s (known: add, create, insert, replace, delete, destroy, flush)",
				verb);
	obj = nfp_obj_find(type);
	if (!obj || !obj->verbs)
		return nfp_fail(req, "unknown message type :%s", type);
	o = nfp_arg_handle(req, NFP_H_OBJ, NULL, "object");
	if (!o)
		return -1;
	/* The handle must be the libnftnl type the message is built from:
	 * an :element message takes a set holding the elements. */
	if (o->obj->backend->alloc != obj->backend->alloc ||
	    (obj->fixed_attr != NFP_NO_ATTR && o->obj != obj))
		return nfp_fail(req, "object: a %s handle cannot make a %s message", o->obj->name,
				obj->name);
	batch = b->ptr;
	/* A message can be measured only once built: refused when the live
	 * handles hold their limit already, so a batch passes it by one
	 * message at most. */
	if (nfp_handle_bytes() >= NFP_MAX_HANDLE_BYTES)
		return nfp_fail_handle_bytes(req);
	{
		size_t before = batch->len;

		if (nfp_batch_add(req, batch, obj, v, o->ptr, batch->nuser) < 0)
			return -1;
		nfp_handle_charge(b, batch->len > before ? batch->len - before : 0, true);
	}
	nfp_enc_ok_head(req->out);
	nfp_enc_u64(req->out, batch->nuser++);
	return 0;
}

int nfp_op_batch_send(struct nfp_req *req)
{
	int at = req->idx;
	struct nfp_handle *b = nfp_arg_handle(req, NFP_H_BATCH, NULL, "batch");
	struct nfp_handle *s;
	struct nfp_batch *batch;
	int ret;

	if (!b || !(s = nfp_arg_handle(req, NFP_H_SOCKET, NULL, "socket")))
		return -1;
	batch = b->ptr;
	ret = nfp_batch_send(req, s->ptr, batch, NULL);
	/* Sent or not, a batch is used once. */
	nfp_batch_release(batch);
	free(batch);
	nfp_handle_release(nfp_arg_id(req, at));
	if (ret < 0)
		return -1;
	nfp_enc_atom(req->out, "ok");
	return 0;
}

int nfp_op_batch_free(struct nfp_req *req)
{
	int at = req->idx;
	struct nfp_handle *b = nfp_arg_handle(req, NFP_H_BATCH, NULL, "batch");

	if (!b)
		return -1;
	nfp_batch_release(b->ptr);
	free(b->ptr);
	nfp_handle_release(nfp_arg_id(req, at));
	nfp_enc_atom(req->out, "ok");
	return 0;
}
