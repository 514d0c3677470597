/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * One frame in, one reply out: checks that the frame is a request
 * {ReqId, Op, Args}, finds the op in the generated table, checks its arity,
 * runs it and encodes {ReqId, Result}. Nothing a client sends can make it
 * fail to reply.
 */
#ifndef NFP_DISPATCH_H
#define NFP_DISPATCH_H

#include <stddef.h>
#include <stdint.h>

#include <ei.h>

/* Fills out (reset first) with the reply to frame. */
void nfp_dispatch(const char *frame, size_t len, ei_x_buff *out);
/* The reply to a frame announced longer than the limit. */
void nfp_reply_oversize(ei_x_buff *out, uint32_t len, uint32_t max);

#endif /* NFP_DISPATCH_H */
