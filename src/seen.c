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

static uint64_t fnv(uint64_t h, const void *p, size_t len)
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

bool nfp_seen_add(struct nfp_seen *s, const void *a, size_t alen, const void *b, size_t blen,
		  uint32_t extra)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	if ((s->n + 1) * 2 > s->cap && !grow(s))
		return false;
	h = fnv(h, &alen, sizeof(alen));
	h = fnv(h, a, alen);
	h = fnv(h, b, blen);
	h = fnv(h, &extra, sizeof(extra));
	if (!h)
		h = 1;
	if (insert(s->slots, s->cap, h))
		return true;
	s->n++;
	return false;
}
