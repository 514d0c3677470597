// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Handle table, see handles.h. A handle id is (generation << 16 | slot) + 1:
 * never 0, and never the same twice for one slot within 2^32 reuses.
 */
#include <stdlib.h>

#include "handles.h"

static struct nfp_handle *slots;
static uint32_t nslots;		/* slots in use or freed, <= NFP_MAX_HANDLES */
static uint32_t *free_list;
static uint32_t nfree;
static uint32_t live;

static uint64_t make_id(uint32_t slot, uint32_t gen)
{
	return (((uint64_t)gen << 16) | slot) + 1;
}

uint64_t nfp_handle_new(uint8_t kind, void *ptr)
{
	uint32_t slot;

	if (!slots) {
		slots = calloc(NFP_MAX_HANDLES, sizeof(*slots));
		free_list = calloc(NFP_MAX_HANDLES, sizeof(*free_list));
		if (!slots || !free_list)
			return 0;
	}
	if (nfree > 0)
		slot = free_list[--nfree];
	else if (nslots < NFP_MAX_HANDLES)
		slot = nslots++;
	else
		return 0;
	slots[slot].kind = kind;
	slots[slot].gen++;
	slots[slot].ptr = ptr;
	slots[slot].obj = NULL;
	slots[slot].expr = NULL;
	live++;
	return make_id(slot, slots[slot].gen);
}

struct nfp_handle *nfp_handle_get(uint64_t id)
{
	uint64_t raw;
	uint32_t slot;

	if (id == 0 || !slots)
		return NULL;
	raw = id - 1;
	slot = raw & 0xffff;
	if (slot >= nslots || (raw >> 16) > UINT32_MAX)
		return NULL;
	if (slots[slot].kind == NFP_H_FREE || slots[slot].gen != (uint32_t)(raw >> 16))
		return NULL;
	return &slots[slot];
}

void nfp_handle_release(uint64_t id)
{
	struct nfp_handle *h = nfp_handle_get(id);

	if (!h)
		return;
	h->kind = NFP_H_FREE;
	h->ptr = NULL;
	free_list[nfree++] = (uint32_t)(h - slots);
	live--;
}

uint32_t nfp_handle_count(void)
{
	return live;
}

void nfp_handle_release_all(nfp_handle_dtor dtor)
{
	for (uint32_t i = 0; i < nslots; i++)
		if (slots[i].kind != NFP_H_FREE)
			dtor(&slots[i]);
	free(slots);
	free(free_list);
	slots = NULL;
	free_list = NULL;
	nslots = nfree = live = 0;
}
