/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NETLINK_NETFILTER with libmnl: the socket, batches (one transaction each)
 * and dumps.
 *
 * A batch is one buffer: BATCH_BEGIN, the messages, BATCH_END, sent with one
 * sendmsg(). Every message has its own sequence number, so an error the
 * kernel reports maps back to the message (and the client's index) that
 * caused it. Only the last message asks for an ACK: the kernel reports
 * errors regardless, and that one ACK proves the batch was processed to
 * the end.
 */
#ifndef NFP_NL_H
#define NFP_NL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ei.h>

#include "desc.h"
#include "req.h"

struct mnl_socket;
struct nlmsghdr;

struct nfp_sock {
	struct mnl_socket *nl;
	uint32_t portid;
	uint32_t seq;
	int sndbuf;		/* what we asked the kernel for */
	int rcvbuf;
};

/* Per netlink message of a batch: who it belongs to. */
struct nfp_msginfo {
	int64_t index;			/* the client's message index */
	const struct nfp_obj *obj;	/* to parse an echo */
};

struct nfp_batch {
	char *buf;
	size_t len, cap;
	struct nfp_msginfo *info;	/* one per netlink message */
	uint32_t nmsgs, info_cap;
	uint32_t nuser;			/* client messages added */
	uint32_t next_id;		/* for attributes flagged auto-id */
	bool echo;
};

/* Largest single message the port builds: well above any the kernel takes
 * (its attribute nests are limited to 64 KiB), and checked before libnftnl
 * writes, since libnftnl writes without bounds. */
#define NFP_MSG_RESERVE (256 * 1024)
/* An attribute's 16-bit length. */
#define NFP_NEST_MAX 65535

int nfp_sock_open(struct nfp_sock *s, char *err, size_t errlen);
void nfp_sock_close(struct nfp_sock *s);

void nfp_batch_init(struct nfp_batch *b);
void nfp_batch_release(struct nfp_batch *b);
/* Empties b for the next transaction, keeping modest buffers. */
void nfp_batch_reset(struct nfp_batch *b);
/* Appends the message(s) for `verb` on object o, blamed on `index`. */
int nfp_batch_add(struct nfp_req *req, struct nfp_batch *b, const struct nfp_obj *obj,
		  enum nfp_verb verb, void *o, int64_t index);

struct nfp_send_opts {
	bool use_genid;
	uint32_t genid;
	ei_x_buff *echo;	/* when set, echo handles are listed here */
	uint32_t nindex;	/* client messages, for the echo list */
};

/* Sends b as one transaction and reads the outcome. On a kernel error the
 * request gets the failing message's index and errno. */
int nfp_batch_send(struct nfp_req *req, struct nfp_sock *s, struct nfp_batch *b,
		   const struct nfp_send_opts *opts);

/* Dumps: calls cb for every message of the reply. Returns 0, or -1 with
 * the request failed; retries by itself when the dump was interrupted. */
typedef int (*nfp_dump_cb)(const struct nlmsghdr *nlh, void *data);
int nfp_dump(struct nfp_req *req, struct nfp_sock *s, uint16_t msg, uint16_t family,
	     const struct nfp_obj *obj, void *filter, nfp_dump_cb cb, void *data,
	     void (*restart)(void *data));
/* One object: a GET without NLM_F_DUMP; the kernel's errno (ENOENT) when
 * it does not exist. */
int nfp_get_one(struct nfp_req *req, struct nfp_sock *s, uint16_t msg, uint16_t family,
		const struct nfp_obj *obj, void *keys, nfp_dump_cb cb, void *data);

/* The ruleset generation id. */
int nfp_genid(struct nfp_req *req, struct nfp_sock *s, uint32_t *genid);

/* The verb named by an atom, or -1. */
int nfp_verb_parse(const char *name);
const char *nfp_verb_name(enum nfp_verb v);

#endif /* NFP_NL_H */
