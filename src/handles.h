/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The resource-handle table: every object, expression, batch and socket a
 * client allocates lives in a slot and is named by an integer handle. A
 * handle carries the slot's generation, so a freed or never-allocated
 * handle is an error, never a dangling pointer.
 */
#ifndef NFP_HANDLES_H
#define NFP_HANDLES_H

#include <stdbool.h>
#include <stdint.h>

#include "desc.h"

#define NFP_MAX_HANDLES 65536	/* live handles at once, all kinds */
/* What the live handles may hold in total: their attribute values (as the
 * request encoded them), the expressions and elements handed to them, the
 * messages of their batches, and NFP_HANDLE_BASE_BYTES each. */
#define NFP_MAX_HANDLE_BYTES (64ull << 20)
#define NFP_HANDLE_BASE_BYTES 512
#define NFP_MAX_SOCKETS 256	/* live sockets of socket_open at once */

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
	uint64_t bytes;		/* what it holds, counted as described above */
	uint32_t *attr_bytes;	/* per attribute index: its value's share */
};

typedef void (*nfp_handle_dtor)(struct nfp_handle *h);

/* Returns the new handle id, or 0 when the table is full. */
uint64_t nfp_handle_new(uint8_t kind, void *ptr);
/* NULL when `id` does not name a live handle. */
struct nfp_handle *nfp_handle_get(uint64_t id);
/* Releases the slot (the caller frees what ptr points to). */
void nfp_handle_release(uint64_t id);
uint32_t nfp_handle_count(void);
uint32_t nfp_handle_count_kind(uint8_t kind);
/* Counts n more bytes for h: -1 (nothing counted) when the total would
 * pass NFP_MAX_HANDLE_BYTES, unless force (bytes that only move from one
 * handle to another). */
int nfp_handle_charge(struct nfp_handle *h, uint64_t n, bool force);
void nfp_handle_uncharge(struct nfp_handle *h, uint64_t n);
uint64_t nfp_handle_bytes(void);
/* The per-attribute share of h's bytes (allocated on first use), or NULL. */
uint32_t *nfp_handle_attr_bytes(struct nfp_handle *h, uint16_t nattrs);
/* Frees every live handle with `dtor` (at exit, so valgrind stays quiet). */
void nfp_handle_release_all(nfp_handle_dtor dtor);

#endif /* NFP_HANDLES_H */
