/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * {packet, 4} framing: a 4-byte big-endian length, then that many bytes.
 * The reader is fed whatever read(2) returned (frames may arrive split or
 * several at once) and calls back once per complete frame.
 */
#ifndef NFP_FRAME_H
#define NFP_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define NFP_FRAME_MAX_DEFAULT (512u * 1024 * 1024)

struct nfp_frame_cb {
	/* A complete frame; buf is valid until the callback returns. */
	void (*frame)(void *ctx, const char *buf, size_t len);
	/* A frame announced longer than the limit; its bytes are skipped. */
	void (*oversize)(void *ctx, uint32_t len, uint32_t max);
};

struct nfp_reader {
	uint32_t max;		/* largest frame accepted */
	uint8_t hdr[4];
	uint8_t hdr_got;
	uint32_t want;		/* body length of the current frame */
	uint32_t got;		/* body bytes so far */
	uint32_t skip;		/* bytes left to discard of an oversize frame */
	char *body;
	size_t body_cap;
};

void nfp_reader_init(struct nfp_reader *r, uint32_t max);
void nfp_reader_release(struct nfp_reader *r);
/* Consumes all of data; returns -1 only when memory runs out. */
int nfp_reader_feed(struct nfp_reader *r, const char *data, size_t len,
		    const struct nfp_frame_cb *cb, void *ctx);
/* True when a frame has started but not ended (EOF now truncates it). */
int nfp_reader_partial(const struct nfp_reader *r);

/* Reads once from fd and feeds it: >0 bytes read, 0 EOF, -1 error. */
ssize_t nfp_reader_fill(struct nfp_reader *r, int fd,
			const struct nfp_frame_cb *cb, void *ctx);

/* Writes one whole frame, looping over partial writes; 0 or -1. */
int nfp_frame_write(int fd, const char *buf, size_t len);

#endif /* NFP_FRAME_H */
