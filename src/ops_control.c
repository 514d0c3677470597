// SPDX-License-Identifier: GPL-2.0-or-later
/* ping, self_check, genid. */
#include "caps.h"
#include "etf.h"
#include "nl.h"
#include "ops.h"

int nfp_op_ping(struct nfp_req *req)
{
	nfp_enc_ok_head(req->out);
	nfp_enc_atom(req->out, "pong");
	return 0;
}

int nfp_op_self_check(struct nfp_req *req)
{
	nfp_enc_ok_head(req->out);
	nfp_caps_encode(req->out);
	return 0;
}

int nfp_op_genid(struct nfp_req *req)
{
	struct nfp_sock *s = nfp_default_sock(req);
	uint32_t genid = 0;

	if (!s || nfp_genid(req, s, &genid) < 0)
		return -1;
	nfp_enc_ok_head(req->out);
	nfp_enc_u64(req->out, genid);
	return 0;
}
