/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The listing engine under list, get and dump: dumps of one object type
 * (filtered, per parent, every kind of a stateful object), the elements of
 * sets (with a retry while a hash set resizes), and the retry that makes
 * several dumps reflect one generation.
 */
#ifndef NFP_LISTING_H
#define NFP_LISTING_H

#include <stdbool.h>
#include <stdint.h>

#include <ei.h>

#include "desc.h"
#include "req.h"

struct nfp_sock;

/* What a dump leaves out: values that name kernel handles of the source
 * ruleset, and what the kernel reports but never takes. */
#define NFP_DUMP_SKIP (NFP_A_TRANSIENT | NFP_A_READONLY | NFP_A_HANDLE)

struct lister {
	struct nfp_req *req;
	ei_x_buff *x;
	const struct nfp_obj *obj;	/* what the kernel dumps */
	const struct nfp_obj *as;	/* what it is encoded as */
	bool kinds;			/* every kind of obj's backend: each
					 * object is encoded as its own kind */
	void *filter;
	const char *verb;		/* wrap each as {verb, type, map} */
	int start;			/* out->index where this dump began */
	uint32_t count, count_start;
	/* Collects objects instead of encoding them (list_via). */
	void **keep;
	uint32_t nkeep, keep_cap;
};

/* The family a filter names, for the dump request's header. */
uint16_t nfp_filter_family(const struct nfp_obj *obj, void *filter);
/* Dumps objects of l->obj, appending to the open list. */
int nfp_dump_objects(struct nfp_req *req, struct nfp_sock *s, struct lister *l);
/* Elements: lists the sets (list_via), then the elements of each, as
 * element messages (wrapped as {verb, :element, map} when verb is set);
 * *count gets the number appended. A filter naming one set that does not
 * exist is ENOENT. */
int nfp_dump_elements(struct nfp_req *req, struct nfp_sock *s, const struct nfp_obj *eobj,
		      void *filter, const char *verb, uint32_t *count);

/* How often a listing starts over when the generation moved under it. */
#define NFP_GEN_TRIES 10

/* Appends items to the open list and counts them in *count. */
typedef int (*nfp_gen_body)(struct nfp_req *req, struct nfp_sock *s, void *ctx,
			    uint32_t *count);
/* Replies {:ok, %{key => [items], genid: g}}: runs body between two
 * readings of the generation until both are the same (several dumps then
 * reflect one generation); what names the op for the error. */
int nfp_at_one_generation(struct nfp_req *req, struct nfp_sock *s, const char *key,
			  nfp_gen_body body, void *ctx, const char *what);

#endif /* NFP_LISTING_H */
