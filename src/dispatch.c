// SPDX-License-Identifier: GPL-2.0-or-later
/* Request dispatch, see dispatch.h. */
#include <stdio.h>
#include <string.h>

#include "dispatch.h"
#include "etf.h"
#include "ops.h"
#include "req.h"

/* A caller error (or the port's own failure): %{reason: :badarg | :failed,
 * index: i | nil, message: "..."}. */
static void enc_caller_error(ei_x_buff *x, const char *reason, bool indexed, int64_t index,
			     const char *msg)
{
	ei_x_encode_map_header(x, 3);
	ei_x_encode_atom(x, "reason");
	ei_x_encode_atom(x, reason ? reason : "badarg");
	ei_x_encode_atom(x, "index");
	if (indexed)
		nfp_enc_s64(x, index);
	else
		ei_x_encode_atom(x, "nil");
	ei_x_encode_atom(x, "message");
	nfp_enc_str(x, msg);
}

/* {nil, {:error, Reason}}: for frames that are not a request at all. */
static void reply_anon_error(ei_x_buff *out, const char *msg)
{
	out->index = 0;
	ei_x_encode_version(out);
	ei_x_encode_tuple_header(out, 2);
	ei_x_encode_atom(out, "nil");
	ei_x_encode_tuple_header(out, 2);
	ei_x_encode_atom(out, "error");
	enc_caller_error(out, NULL, false, 0, msg);
}

void nfp_reply_oversize(ei_x_buff *out, uint32_t len, uint32_t max)
{
	char msg[160];

	snprintf(msg, sizeof(msg), "frame of %u bytes is larger than the limit of %u bytes (--max-frame)",
		 len, max);
	reply_anon_error(out, msg);
}

/* A kernel error: %{errno: :enoent, index: i | nil, object: %{type: ...} |
 * nil, attr: atom | nil, message: "..."}. */
static void enc_kernel_error(struct nfp_req *req)
{
	ei_x_buff *x = req->out;
	char msg[sizeof(req->kerr_msg) + sizeof(req->kerr_where) + 192];
	char lower[64];
	const char *name = nfp_errno_name(req->kerr_errno);
	size_t i, off;

	for (i = 0; name[i] && i < sizeof(lower) - 1; i++)
		lower[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
	lower[i] = '\0';
	nfp_errno_message(req->kerr_errno, msg, sizeof(msg));
	off = strlen(msg);
	if (req->kerr_msg[0])
		off += (size_t)snprintf(msg + off, sizeof(msg) - off, ": %s", req->kerr_msg);
	size_t al = req->kerr_attr ? strlen(req->kerr_attr) : 0;

	if (req->kerr_attr && strncmp(req->kerr_where, req->kerr_attr, al) == 0 &&
	    req->kerr_where[al] == '[')
		snprintf(msg + off, sizeof(msg) - off, " (attribute %s)", req->kerr_where);
	else if (req->kerr_attr && req->kerr_where[0])
		snprintf(msg + off, sizeof(msg) - off, " (attribute :%s of %s)",
			 req->kerr_attr, req->kerr_where);
	else if (req->kerr_attr)
		snprintf(msg + off, sizeof(msg) - off, " (attribute :%s)", req->kerr_attr);
	else if (req->kerr_where[0])
		snprintf(msg + off, sizeof(msg) - off, " (in %s)", req->kerr_where);

	ei_x_encode_map_header(x, 5);
	ei_x_encode_atom(x, "errno");
	ei_x_encode_atom(x, lower);
	ei_x_encode_atom(x, "index");
	if (req->kerr_index >= 0 && req->op && req->op->indexed_errors)
		nfp_enc_s64(x, req->kerr_index);
	else
		ei_x_encode_atom(x, "nil");
	ei_x_encode_atom(x, "object");
	if (req->has_kerr_object && req->kerr_object.index > 0)
		ei_x_append_buf(x, req->kerr_object.buff, req->kerr_object.index);
	else
		ei_x_encode_atom(x, "nil");
	ei_x_encode_atom(x, "attr");
	if (req->kerr_attr)
		ei_x_encode_atom(x, req->kerr_attr);
	else
		ei_x_encode_atom(x, "nil");
	ei_x_encode_atom(x, "message");
	nfp_enc_str(x, msg);
}

static void encode_error(struct nfp_req *req)
{
	ei_x_buff *x = req->out;

	x->index = req->result_at;
	ei_x_encode_tuple_header(x, 2);
	ei_x_encode_atom(x, "error");
	if (req->err_atom) {
		ei_x_encode_atom(x, req->err_atom);
	} else if (req->kerr) {
		enc_kernel_error(req);
	} else if (req->op) {
		char full[sizeof(req->err) + 64];

		snprintf(full, sizeof(full), "%s: %s", req->op->name, req->err);
		enc_caller_error(x, req->err_reason, req->err_indexed, req->err_index, full);
	} else {
		enc_caller_error(x, req->err_reason, false, 0, req->err);
	}
}

static int decode_req_id(const char *buf, int *idx, uint64_t *id)
{
	int type, size, i = *idx;
	unsigned long long u;

	ei_get_type(buf, &i, &type, &size);
	if (type != ERL_SMALL_INTEGER_EXT && type != ERL_INTEGER_EXT &&
	    type != ERL_SMALL_BIG_EXT)
		return -1;
	if (ei_decode_ulonglong(buf, idx, &u) < 0)
		return -1;
	*id = u;
	return 0;
}

static void dispatch(const char *frame, size_t len, ei_x_buff *out);

/* The request id of a frame whose arguments were refused (too deep, a
 * pid...): the id itself is valid when the frame starts {Id, ... */
static bool peek_req_id(const char *frame, size_t len, int idx, uint64_t *id)
{
	char err[64];
	int end;
	unsigned long long u;

	if (len < (size_t)idx + 2 || (unsigned char)frame[idx] != ERL_SMALL_TUPLE_EXT ||
	    frame[idx + 1] != 3)
		return false;
	idx += 2;
	end = idx;
	if (nfp_etf_validate(frame, (int)len, &end, NFP_ETF_MAX_DEPTH, err, sizeof(err)) < 0)
		return false;
	switch ((unsigned char)frame[idx]) {
	case ERL_SMALL_INTEGER_EXT:
	case ERL_INTEGER_EXT:
	case ERL_SMALL_BIG_EXT:
		if (ei_decode_ulonglong(frame, &idx, &u) < 0)
			return false;
		*id = u;
		return true;
	default:
		return false;
	}
}

static void reply_id_error(ei_x_buff *out, uint64_t id, const char *msg)
{
	out->index = 0;
	ei_x_encode_version(out);
	ei_x_encode_tuple_header(out, 2);
	ei_x_encode_ulonglong(out, id);
	ei_x_encode_tuple_header(out, 2);
	ei_x_encode_atom(out, "error");
	enc_caller_error(out, NULL, false, 0, msg);
}

void nfp_dispatch(const char *frame, size_t len, ei_x_buff *out)
{
	char err[256];
	int idx = 0, end, version;

	if (len == 0) {
		reply_anon_error(out, "empty frame: expected a request {ReqId, Op, Args} in external term format");
		return;
	}
	if (len > INT32_MAX) {
		reply_anon_error(out, "frame too large");
		return;
	}
	if (ei_decode_version(frame, &idx, &version) < 0 || version != 131) {
		reply_anon_error(out, "not a term in external term format (no version byte 131)");
		return;
	}
	end = idx;
	err[0] = '\0';
	if (nfp_etf_validate(frame, (int)len, &end, 0, err, sizeof(err)) < 0) {
		char msg[300];
		uint64_t id;

		snprintf(msg, sizeof(msg), "malformed term: %s", err);
		if (peek_req_id(frame, len, idx, &id))
			reply_id_error(out, id, msg);
		else
			reply_anon_error(out, msg);
		return;
	}
	if ((size_t)end != len) {
		reply_anon_error(out, "malformed frame: bytes after the end of the term");
		return;
	}
	if (nfp_etf_has_string_ext(frame, idx)) {
		/* Lists of small integers arrive as bytes: make them lists. */
		ei_x_buff x;

		ei_x_new_with_version(&x);
		nfp_etf_expand_strings(frame, &idx, &x);
		dispatch(x.buff, (size_t)x.index, out);
		ei_x_free(&x);
		return;
	}
	dispatch(frame, len, out);
}

/* frame: a validated term without STRING_EXT. */
static void dispatch(const char *frame, size_t len, ei_x_buff *out)
{
	struct nfp_req req;
	char opname[NFP_ATOM_MAX], err[256];
	int idx = 0, version, nargs, arity = -1;
	uint64_t req_id;

	ei_decode_version(frame, &idx, &version);
	if (ei_decode_tuple_header(frame, &idx, &arity) < 0 || arity != 3) {
		if (arity >= 0)
			snprintf(err, sizeof(err), "a request must be a 3-tuple {ReqId, Op, Args}, got a %d-tuple",
				 arity);
		else
			snprintf(err, sizeof(err), "a request must be a 3-tuple {ReqId, Op, Args}, got %s",
				 nfp_etf_type_name(frame, 1));
		reply_anon_error(out, err);
		return;
	}
	if (decode_req_id(frame, &idx, &req_id) < 0) {
		long long neg;
		int i = idx;

		if (ei_decode_longlong(frame, &i, &neg) == 0 && neg < 0)
			snprintf(err, sizeof(err),
				 "the request id must be an integer from 0 to 2^64-1, got %lld", neg);
		else
			snprintf(err, sizeof(err),
				 "the request id must be an integer from 0 to 2^64-1, got %s",
				 nfp_etf_type_name(frame, idx));
		reply_anon_error(out, err);
		return;
	}

	memset(&req, 0, sizeof(req));
	req.buf = frame;
	req.len = (int)len;
	req.out = out;
	out->index = 0;
	ei_x_encode_version(out);
	ei_x_encode_tuple_header(out, 2);
	ei_x_encode_ulonglong(out, req_id);
	req.result_at = out->index;

	if (nfp_dec_atom(&req, &idx, opname, "op") < 0)
		goto fail;
	req.op = nfp_op_find(opname);
	if (!req.op) {
		req.err[0] = '\0';
		nfp_fail(&req, "unknown op :%s", opname);
		goto fail;
	}
	if (nfp_dec_list(&req, &idx, &nargs, "arguments") < 0)
		goto fail;
	if (nargs != req.op->nargs) {
		nfp_fail(&req, "takes %u argument%s, got %d", req.op->nargs,
			 req.op->nargs == 1 ? "" : "s", nargs);
		goto fail;
	}
	req.idx = idx;
	for (int i = 0; i < nargs; i++)
		nfp_etf_skip(frame, &idx);
	if (nargs && nfp_dec_list_end(&req, &idx, "arguments") < 0)
		goto fail;
	if (req.op->fn(&req) == 0) {
		if (req.has_kerr_object)
			ei_x_free(&req.kerr_object);
		return;
	}
	if (!req.err[0] && !req.kerr && !req.err_atom)
		nfp_fail(&req, "failed");
fail:
	encode_error(&req);
	if (req.has_kerr_object)
		ei_x_free(&req.kerr_object);
}
