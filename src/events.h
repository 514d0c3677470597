/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Ruleset events: a second NETLINK_NETFILTER socket, a member of the
 * NFNLGRP_NFTABLES multicast group, opened by the `subscribe` op and
 * closed by `unsubscribe`. Every change the kernel announces is decoded
 * with the same tables as `list` and pushed to the client as a frame of
 * its own, `{:event, SubId, Event}`, without a request.
 */
#ifndef NFP_EVENTS_H
#define NFP_EVENTS_H

#include <ei.h>

#include "req.h"

/* The event socket's descriptor, or -1 while nobody subscribed. */
int nfp_events_fd(void);
/* Reads what the event socket holds (a bounded amount) and hands each
 * frame to emit. */
void nfp_events_drain(void (*emit)(void *ctx, ei_x_buff *frame), void *ctx);
/* Closes the event socket (at exit). */
void nfp_events_close(void);

int nfp_op_subscribe(struct nfp_req *req);
int nfp_op_unsubscribe(struct nfp_req *req);

#endif /* NFP_EVENTS_H */
