// SPDX-License-Identifier: GPL-2.0-or-later
/* {packet, 4} framing, see frame.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "frame.h"

void nfp_reader_init(struct nfp_reader *r, uint32_t max)
{
	memset(r, 0, sizeof(*r));
	r->max = max;
}

void nfp_reader_release(struct nfp_reader *r)
{
	free(r->body);
	r->body = NULL;
	r->body_cap = 0;
}

int nfp_reader_partial(const struct nfp_reader *r)
{
	return r->hdr_got > 0 || r->skip > 0;
}

static int start_body(struct nfp_reader *r, uint32_t len)
{
	/* Keep a modest buffer between requests; grow for big ones only. */
	if (!r->body || len > r->body_cap || (r->body_cap > (1u << 20) && len < (1u << 16))) {
		size_t cap = len < 4096 ? 4096 : len;
		char *b = malloc(cap);

		if (!b)
			return -1;
		free(r->body);
		r->body = b;
		r->body_cap = cap;
	}
	r->want = len;
	r->got = 0;
	return 0;
}

int nfp_reader_feed(struct nfp_reader *r, const char *data, size_t len,
		    const struct nfp_frame_cb *cb, void *ctx)
{
	while (len > 0) {
		if (r->skip > 0) {
			size_t n = len < r->skip ? len : r->skip;

			r->skip -= n;
			data += n;
			len -= n;
			continue;
		}
		if (r->hdr_got < 4) {
			r->hdr[r->hdr_got++] = (uint8_t)*data++;
			len--;
			if (r->hdr_got < 4)
				continue;
			uint32_t flen = (uint32_t)r->hdr[0] << 24 | (uint32_t)r->hdr[1] << 16 |
					(uint32_t)r->hdr[2] << 8 | r->hdr[3];
			if (flen > r->max) {
				r->hdr_got = 0;
				r->skip = flen;
				cb->oversize(ctx, flen, r->max);
				continue;
			}
			if (start_body(r, flen) < 0)
				return -1;
			if (flen > 0)
				continue;
			/* Zero-length frame: deliver it, the dispatcher answers. */
		} else {
			size_t n = r->want - r->got;

			if (n > len)
				n = len;
			memcpy(r->body + r->got, data, n);
			r->got += n;
			data += n;
			len -= n;
			if (r->got < r->want)
				continue;
		}
		r->hdr_got = 0;
		cb->frame(ctx, r->body, r->want);
	}
	return 0;
}

ssize_t nfp_reader_fill(struct nfp_reader *r, int fd,
			const struct nfp_frame_cb *cb, void *ctx)
{
	char buf[65536];
	ssize_t n;

	do {
		n = read(fd, buf, sizeof(buf));
	} while (n < 0 && errno == EINTR);
	if (n <= 0)
		return n;
	if (nfp_reader_feed(r, buf, (size_t)n, cb, ctx) < 0)
		return -1;
	return n;
}

int nfp_frame_write(int fd, const char *buf, size_t len)
{
	uint8_t hdr[4] = { len >> 24, len >> 16, len >> 8, len };
	struct iovec iov[2] = {
		{ .iov_base = hdr, .iov_len = sizeof(hdr) },
		{ .iov_base = (void *)buf, .iov_len = len },
	};
	struct iovec *v = iov;
	int cnt = 2;

	if (len > UINT32_MAX)
		return -1;
	while (cnt > 0) {
		ssize_t n = writev(fd, v, cnt);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		while (cnt > 0 && (size_t)n >= v->iov_len) {
			n -= v->iov_len;
			v++;
			cnt--;
		}
		if (cnt > 0) {
			v->iov_base = (char *)v->iov_base + n;
			v->iov_len -= n;
		}
	}
	return 0;
}
