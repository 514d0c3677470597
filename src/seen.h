/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A set of 64-bit fingerprints, to notice an element listed twice. The
 * kernel walks a hash set by skipping what it already sent; when the hash
 * table resizes in the background between two parts of a dump, elements
 * move, and the dump repeats some and misses others without saying so.
 * A repeat is the visible sign: the dump is then started over.
 */
#ifndef NFP_SEEN_H
#define NFP_SEEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct nfp_seen {
	uint64_t *slots;	/* 0 = empty; fingerprints are never 0 */
	size_t cap, n;
};

void nfp_seen_init(struct nfp_seen *s);
void nfp_seen_clear(struct nfp_seen *s);
void nfp_seen_release(struct nfp_seen *s);
/* A fingerprint is built by mixing bytes into NFP_SEEN_START. */
#define NFP_SEEN_START 0xcbf29ce484222325ULL
uint64_t nfp_seen_mix(uint64_t h, const void *p, size_t len);
/* Adds a fingerprint; true when it was there already. Out of memory
 * counts as "not seen" (the check is then skipped). */
bool nfp_seen_add(struct nfp_seen *s, uint64_t h);

#endif /* NFP_SEEN_H */
