// SPDX-License-Identifier: GPL-2.0-or-later
/* Fingerprint set, see seen.h: open addressing, FNV-1a 64. */
#include <stdlib.h>
#include <string.h>

#include "seen.h"

void nfp_seen_init(struct nfp_seen *s)
{
	memset(s, 0, sizeof(*s));
}

void nfp_seen_clear(struct nfp_seen *s)
{
	if (s->slots)
		memset(s->slots, 0, s->cap * sizeof(*s->slots));
	s->n = 0;
}

void nfp_seen_release(struct nfp_seen *s)
{
	free(s->slots);
	nfp_seen_init(s);
}

uint64_t nfp_seen_mix(uint64_t h, const void *p, size_t len)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < len; i++) {
		h ^= c[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static bool insert(uint64_t *slots, size_t cap, uint64_t h)
{
	size_t i = h & (cap - 1);

	while (slots[i]) {
		if (slots[i] == h)
			return true;
		i = (i + 1) & (cap - 1);
	}
	slots[i] = h;
	return false;
}

static bool grow(struct nfp_seen *s)
{
	size_t cap = s->cap ? s->cap * 2 : 1024;
	uint64_t *slots = calloc(cap, sizeof(*slots));

	if (!slots)
		return false;
	for (size_t i = 0; i < s->cap; i++)
		if (s->slots[i])
			insert(slots, cap, s->slots[i]);
	free(s->slots);
	s->slots = slots;
	s->cap = cap;
	return true;
}

bool nfp_seen_add(struct nfp_seen *s, uint64_t h)
{
	if ((s->n + 1) * 2 > s->cap && !grow(s))
		return false;
	if (!h)
		h = 1;
	if (insert(s->slots, s->cap, h))
		return true;
	s->n++;
	return false;
}
