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
static uint32_t live_kind[NFP_H_SOCKET + 1];
static uint64_t live_bytes;

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
	slots[slot].bytes = 0;
	slots[slot].attr_bytes = NULL;
	live++;
	live_kind[kind]++;
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
	live_kind[h->kind]--;
	live_bytes -= h->bytes;
	free(h->attr_bytes);
	h->attr_bytes = NULL;
	h->bytes = 0;
	h->kind = NFP_H_FREE;
	h->ptr = NULL;
	free_list[nfree++] = (uint32_t)(h - slots);
	live--;
}

uint32_t nfp_handle_count(void)
{
	return live;
}

uint32_t nfp_handle_count_kind(uint8_t kind)
{
	return kind <= NFP_H_SOCKET ? live_kind[kind] : 0;
}

int nfp_handle_charge(struct nfp_handle *h, uint64_t n, bool force)
{
	if (!force && (n > NFP_MAX_HANDLE_BYTES || live_bytes > NFP_MAX_HANDLE_BYTES - n))
		return -1;
	h->bytes += n;
	live_bytes += n;
	return 0;
}

void nfp_handle_uncharge(struct nfp_handle *h, uint64_t n)
{
	if (n > h->bytes)
		n = h->bytes;
	h->bytes -= n;
	live_bytes -= n;
}

uint64_t nfp_handle_bytes(void)
{
	return live_bytes;
}

uint32_t *nfp_handle_attr_bytes(struct nfp_handle *h, uint16_t nattrs)
{
	if (!h->attr_bytes && nattrs)
		h->attr_bytes = calloc(nattrs, sizeof(*h->attr_bytes));
	return h->attr_bytes;
}

void nfp_handle_release_all(nfp_handle_dtor dtor)
{
	for (uint32_t i = 0; i < nslots; i++)
		if (slots[i].kind != NFP_H_FREE) {
			dtor(&slots[i]);
			free(slots[i].attr_bytes);
		}
	free(slots);
	free(free_list);
	slots = NULL;
	free_list = NULL;
	nslots = nfree = live = 0;
	live_bytes = 0;
	for (int k = 0; k <= NFP_H_SOCKET; k++)
		live_kind[k] = 0;
}
