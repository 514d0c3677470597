/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Op handlers, named by schema/ops.yaml and reached through the generated
 * dispatch table. Each reads its arguments from req at req->idx, encodes
 * its result into req->out and returns 0, or fails and returns -1.
 */
#ifndef NFP_OPS_H
#define NFP_OPS_H

#include <stdint.h>

#include "req.h"

struct nfp_sock;

/* ops_control.c */
int nfp_op_ping(struct nfp_req *req);
int nfp_op_self_check(struct nfp_req *req);
int nfp_op_genid(struct nfp_req *req);

/* ops_sysctl.c */
int nfp_op_sysctl_get(struct nfp_req *req);
int nfp_op_sysctl_set(struct nfp_req *req);
/* ops_test.c (the test build only) */
int nfp_op_test_forbidden_call(struct nfp_req *req);

/* ops_handle.c */
struct nfp_handle;
struct nfp_obj;
/* Decodes a handle argument of `kind` (and of `obj` when not NULL). */
struct nfp_handle *nfp_arg_handle(struct nfp_req *req, uint8_t kind,
				  const struct nfp_obj *obj, const char *what);
uint64_t nfp_arg_id(const struct nfp_req *req, int at);
/* "the live handles hold N bytes and the limit is ..." */
int nfp_fail_handle_bytes(struct nfp_req *req);
int nfp_op_obj_alloc(struct nfp_req *req);
int nfp_op_obj_set(struct nfp_req *req);
int nfp_op_obj_get(struct nfp_req *req);
int nfp_op_obj_unset(struct nfp_req *req);
int nfp_op_obj_free(struct nfp_req *req);
int nfp_op_obj_to_map(struct nfp_req *req);
int nfp_op_expr_alloc(struct nfp_req *req);
int nfp_op_rule_add_expr(struct nfp_req *req);
int nfp_op_set_add_elem(struct nfp_req *req);

/* ops_batch.c */
int nfp_op_socket_open(struct nfp_req *req);
int nfp_op_socket_close(struct nfp_req *req);
int nfp_op_batch_new(struct nfp_req *req);
int nfp_op_batch_add(struct nfp_req *req);
int nfp_op_batch_send(struct nfp_req *req);
int nfp_op_batch_free(struct nfp_req *req);

/* ops_commit.c, ops_list.c */
int nfp_op_commit(struct nfp_req *req);
int nfp_op_list(struct nfp_req *req);
int nfp_op_dump(struct nfp_req *req);
int nfp_op_get(struct nfp_req *req);
/* The object types that can be listed, for messages. */
const char *nfp_listable_types(void);

/* events.c */
int nfp_op_subscribe(struct nfp_req *req);
int nfp_op_unsubscribe(struct nfp_req *req);

/* The port's own socket for the declarative ops, opened on first use. */
struct nfp_sock *nfp_default_sock(struct nfp_req *req);
/* Frees every handle and the default socket (at exit). */
void nfp_ops_cleanup(void);

#endif /* NFP_OPS_H */
