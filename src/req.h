/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * One request in flight: its decoded frame, the reply being built and what
 * went wrong, if anything. Handlers read their arguments from `buf` at
 * `idx` and encode their result into `out`; on failure they call nfp_fail()
 * (or set a kernel error) and return -1, and the dispatcher encodes the
 * error reply instead.
 */
#ifndef NFP_REQ_H
#define NFP_REQ_H

#include <stdbool.h>
#include <stdint.h>

#include <ei.h>

#include "desc.h"

struct nfp_req {
	const char *buf;	/* the frame, validated ETF */
	int len;
	int idx;		/* cursor: the next argument */
	const struct nfp_op *op;
	ei_x_buff *out;		/* the reply; the result starts at result_at */
	int result_at;
	char err[1024];		/* the error message, when failed */
	const char *err_reason;	/* its reason atom: NULL for badarg (the
				 * caller's input), "failed" (the port's) */
	bool err_indexed;	/* a caller error of message err_index */
	int64_t err_index;
	const char *err_atom;	/* or an atom reason, e.g. generation_changed */
	/* A kernel error, of one message of a batch or of the request. */
	bool kerr;
	int64_t kerr_index;	/* -1 when no message can be blamed */
	int kerr_errno;
	/* What is known besides the errno (see extack.h): the kernel's own
	 * message, the offending attribute's schema name and where it is
	 * (an expression, an element), the addressed object as a term. */
	char kerr_msg[200];
	const char *kerr_attr;
	char kerr_where[64];
	bool has_kerr_object;
	ei_x_buff kerr_object;
	const struct nfp_obj *kerr_as;	/* names attributes of a dump's error */
};

/* Records an error message and returns -1. */
int nfp_fail(struct nfp_req *req, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The same for a failure of the port itself (memory, lost replies, a
 * ruleset that kept changing): reason :failed instead of :badarg. */
int nfp_fail_port(struct nfp_req *req, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Records an atom reason ({:error, atom}) and returns -1. */
int nfp_fail_atom(struct nfp_req *req, const char *atom);
/* Records a kernel error (errno) of message `index` and returns -1. */
int nfp_fail_kernel(struct nfp_req *req, int64_t index, int err);

/* Joins up to three parts into buf (size len), truncating: the context of
 * an error message, made on the hot path without printf. */
const char *nfp_join(char *buf, size_t len, const char *a, const char *b, const char *c);

/* "Operation not permitted (EPERM)" */
const char *nfp_errno_name(int err);		/* "EPERM" */
void nfp_errno_message(int err, char *buf, size_t len);

#endif /* NFP_REQ_H */
