/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The resource-handle table: every object, expression, batch and socket a
 * client allocates lives in a slot and is named by an integer handle. A
 * handle carries the slot's generation, so a freed or never-allocated
 * handle is an error, never a dangling pointer.
 */
#ifndef NFP_HANDLES_H
#define NFP_HANDLES_H

#include <stdint.h>

#include "desc.h"

#define NFP_MAX_HANDLES 65536	/* live handles at once, all kinds */

enum nfp_hkind {
	NFP_H_FREE = 0,
	NFP_H_OBJ,		/* a libnftnl object, typed by ->obj */
	NFP_H_EXPR,		/* a struct nftnl_expr, typed by ->expr */
	NFP_H_BATCH,		/* a struct nfp_batch */
	NFP_H_SOCKET,		/* a struct nfp_sock */
};

struct nfp_handle {
	uint8_t kind;
	uint32_t gen;
	const struct nfp_obj *obj;
	const struct nfp_expr *expr;
	void *ptr;
};

typedef void (*nfp_handle_dtor)(struct nfp_handle *h);

/* Returns the new handle id, or 0 when the table is full. */
uint64_t nfp_handle_new(uint8_t kind, void *ptr);
/* NULL when `id` does not name a live handle. */
struct nfp_handle *nfp_handle_get(uint64_t id);
/* Releases the slot (the caller frees what ptr points to). */
void nfp_handle_release(uint64_t id);
uint32_t nfp_handle_count(void);
/* Frees every live handle with `dtor` (at exit, so valgrind stays quiet). */
void nfp_handle_release_all(nfp_handle_dtor dtor);

#endif /* NFP_HANDLES_H */
