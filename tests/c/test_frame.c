// SPDX-License-Identifier: GPL-2.0-or-later
/* {packet, 4} framing: src/frame.c. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "check.h"
#include "frame.h"

/* --- what the callbacks saw -------------------------------------------- */

#define MAX_SEEN 16

struct seen {
	unsigned nframes;
	char *frames[MAX_SEEN];
	size_t lens[MAX_SEEN];
	unsigned noversize;
	uint32_t over_len[MAX_SEEN], over_max[MAX_SEEN];
};

static void on_frame(void *ctx, const char *buf, size_t len)
{
	struct seen *s = ctx;

	if (s->nframes < MAX_SEEN) {
		s->frames[s->nframes] = malloc(len ? len : 1);
		/* A zero-length frame may come with buf == NULL. */
		if (len)
			memcpy(s->frames[s->nframes], buf, len);
		s->lens[s->nframes] = len;
	}
	s->nframes++;
}

static void on_oversize(void *ctx, uint32_t len, uint32_t max)
{
	struct seen *s = ctx;

	if (s->noversize < MAX_SEEN) {
		s->over_len[s->noversize] = len;
		s->over_max[s->noversize] = max;
	}
	s->noversize++;
}

static const struct nfp_frame_cb cb = { .frame = on_frame, .oversize = on_oversize };

static void seen_reset(struct seen *s)
{
	for (unsigned i = 0; i < s->nframes && i < MAX_SEEN; i++)
		free(s->frames[i]);
	memset(s, 0, sizeof(*s));
}

static bool frame_is(const struct seen *s, unsigned i, const char *body, size_t len)
{
	return i < s->nframes && i < MAX_SEEN && s->lens[i] == len &&
	       memcmp(s->frames[i], body, len) == 0;
}

/* A frame: the 4-byte big-endian length, then the body. */
static size_t put_frame(char *out, const char *body, uint32_t len)
{
	out[0] = (char)(len >> 24);
	out[1] = (char)(len >> 16);
	out[2] = (char)(len >> 8);
	out[3] = (char)len;
	memcpy(out + 4, body, len);
	return 4 + (size_t)len;
}

/* --- a writev that writes less than asked ------------------------------ */

/* The test executable's writev wins over libc's for the calls that
 * nfp_frame_write() makes. When `short_writes` is on, every call writes at
 * most the next size of `chunks` (and an occasional EINTR), so the loop
 * over partial writes runs, header split included. */
static volatile bool short_writes;
static unsigned short_calls, short_partial, short_eintr;
static const size_t chunks[] = { 1, 2, 3, 5, 4093, 7, 65536, 1, 100000, 13 };

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	struct iovec v[8];
	size_t limit, total = 0;
	int n = 0;
	ssize_t r;

	if (!short_writes || cnt > 8)
		return syscall(SYS_writev, fd, iov, cnt);
	short_calls++;
	if (short_calls % 11 == 0) {
		short_eintr++;
		errno = EINTR;
		return -1;
	}
	limit = chunks[short_calls % (sizeof(chunks) / sizeof(chunks[0]))];
	for (int i = 0; i < cnt && total < limit; i++) {
		v[n] = iov[i];
		if (v[n].iov_len > limit - total)
			v[n].iov_len = limit - total;
		total += v[n].iov_len;
		n++;
	}
	r = syscall(SYS_writev, fd, v, n);
	if (r >= 0) {
		size_t asked = 0;

		for (int i = 0; i < cnt; i++)
			asked += iov[i].iov_len;
		if ((size_t)r < asked)
			short_partial++;
	}
	return r;
}

/* --- feed -------------------------------------------------------------- */

static void test_one_chunk(void)
{
	struct nfp_reader r;
	struct seen s = { 0 };
	char buf[64];
	size_t n = put_frame(buf, "hello", 5);

	nfp_reader_init(&r, 1024);
	CHECK_INT(nfp_reader_feed(&r, buf, n, &cb, &s), 0, "one chunk: feed returns 0");
	CHECK_INT(s.nframes, 1, "one chunk: one frame delivered");
	CHECK(frame_is(&s, 0, "hello", 5), "one chunk: the body is intact");
	CHECK(!nfp_reader_partial(&r), "one chunk: nothing partial afterwards");
	seen_reset(&s);
	nfp_reader_release(&r);
}

static void test_byte_by_byte(void)
{
	struct nfp_reader r;
	struct seen s = { 0 };
	char body[300], buf[400];
	size_t n;
	bool early = false, partial_ok = true;

	for (size_t i = 0; i < sizeof(body); i++)
		body[i] = (char)(i * 7);
	n = put_frame(buf, body, sizeof(body));
	nfp_reader_init(&r, 1024);
	for (size_t i = 0; i < n; i++) {
		nfp_reader_feed(&r, buf + i, 1, &cb, &s);
		if (i + 1 < n) {
			early |= s.nframes != 0;
			partial_ok &= nfp_reader_partial(&r) != 0;
		}
	}
	CHECK(!early, "byte by byte: no frame before the last byte");
	CHECK(partial_ok, "byte by byte: partial after every byte but the last");
	CHECK_INT(s.nframes, 1, "byte by byte: exactly one frame");
	CHECK(frame_is(&s, 0, body, sizeof(body)), "byte by byte: the body is intact");
	CHECK(!nfp_reader_partial(&r), "byte by byte: not partial at the end");
	seen_reset(&s);
	nfp_reader_release(&r);
}

static void test_joined(void)
{
	struct nfp_reader r;
	struct seen s = { 0 };
	char buf[128];
	size_t n = 0, third;

	n += put_frame(buf + n, "first", 5);
	n += put_frame(buf + n, "second!", 7);
	third = n;
	n += put_frame(buf + n, "third-frame", 11);

	nfp_reader_init(&r, 1024);
	/* Two whole frames plus the length and 3 body bytes of the third. */
	nfp_reader_feed(&r, buf, third + 7, &cb, &s);
	CHECK_INT(s.nframes, 2, "joined: two frames from one chunk");
	CHECK(frame_is(&s, 0, "first", 5), "joined: the first body");
	CHECK(frame_is(&s, 1, "second!", 7), "joined: the second body");
	CHECK(nfp_reader_partial(&r), "joined: the third is partial");
	nfp_reader_feed(&r, buf + third + 7, n - third - 7, &cb, &s);
	CHECK_INT(s.nframes, 3, "joined: the third arrives with its rest");
	CHECK(frame_is(&s, 2, "third-frame", 11), "joined: the third body");
	CHECK(!nfp_reader_partial(&r), "joined: nothing partial afterwards");
	seen_reset(&s);
	nfp_reader_release(&r);
}

static void test_zero_length(void)
{
	struct nfp_reader r;
	struct seen s = { 0 };
	char buf[32];
	size_t n = 0;

	n += put_frame(buf + n, "", 0);
	n += put_frame(buf + n, "x", 1);
	nfp_reader_init(&r, 1024);
	nfp_reader_feed(&r, buf, n, &cb, &s);
	CHECK_INT(s.nframes, 2, "zero length: delivered, and the next one too");
	CHECK(s.nframes >= 1 && s.lens[0] == 0, "zero length: delivered as an empty frame");
	CHECK(frame_is(&s, 1, "x", 1), "zero length: the next frame is intact");
	CHECK_INT(s.noversize, 0, "zero length: not oversize");
	seen_reset(&s);
	nfp_reader_release(&r);
}

static void test_oversize(void)
{
	struct nfp_reader r;
	struct seen s = { 0 };
	char big[200], buf[512];
	size_t n = 0, split;

	memset(big, 'B', sizeof(big));
	n += put_frame(buf + n, big, sizeof(big));
	split = n;
	n += put_frame(buf + n, "ok", 2);
	nfp_reader_init(&r, 16);

	nfp_reader_feed(&r, buf, n, &cb, &s);
	CHECK_INT(s.noversize, 1, "oversize: one oversize callback");
	CHECK_INT(s.over_len[0], 200, "oversize: reports the announced length");
	CHECK_INT(s.over_max[0], 16, "oversize: reports the limit");
	CHECK_INT(s.nframes, 1, "oversize: its bytes are skipped, the next frame delivered");
	CHECK(frame_is(&s, 0, "ok", 2), "oversize: the next frame is intact");
	seen_reset(&s);

	/* The same, with the skipped bytes split over several feeds. */
	nfp_reader_feed(&r, buf, 50, &cb, &s);
	CHECK_INT(s.noversize, 1, "oversize split: callback as soon as the length is known");
	CHECK(nfp_reader_partial(&r), "oversize split: partial while skipping");
	nfp_reader_feed(&r, buf + 50, split - 50 - 1, &cb, &s);
	CHECK_INT(s.nframes, 0, "oversize split: nothing delivered while skipping");
	nfp_reader_feed(&r, buf + split - 1, n - split + 1, &cb, &s);
	CHECK_INT(s.nframes, 1, "oversize split: next frame delivered");
	CHECK(frame_is(&s, 0, "ok", 2), "oversize split: next frame intact");
	CHECK(!nfp_reader_partial(&r), "oversize split: nothing partial afterwards");
	seen_reset(&s);

	/* Exactly the limit is accepted. */
	n = put_frame(buf, big, 16);
	nfp_reader_feed(&r, buf, n, &cb, &s);
	CHECK(s.noversize == 0 && frame_is(&s, 0, big, 16), "oversize: a frame of exactly max is fine");
	seen_reset(&s);
	nfp_reader_release(&r);
}

static void test_partial(void)
{
	struct nfp_reader r;
	struct seen s = { 0 };
	char buf[16];
	size_t n = put_frame(buf, "abc", 3);

	nfp_reader_init(&r, 1024);
	CHECK(!nfp_reader_partial(&r), "partial: not partial when fresh");
	nfp_reader_feed(&r, buf, 2, &cb, &s);
	CHECK(nfp_reader_partial(&r), "partial: after half a length prefix");
	nfp_reader_feed(&r, buf + 2, 2, &cb, &s);
	CHECK(nfp_reader_partial(&r), "partial: after a length prefix only");
	CHECK_INT(s.nframes, 0, "partial: nothing delivered yet");
	nfp_reader_feed(&r, buf + 4, n - 4, &cb, &s);
	CHECK(!nfp_reader_partial(&r), "partial: not partial after the body");
	CHECK(frame_is(&s, 0, "abc", 3), "partial: the frame then arrives");
	seen_reset(&s);
	nfp_reader_release(&r);
}

/* A big frame first, then small ones: the reader's buffer shrinks back
 * (start_body) and the small frames are still right. */
static void test_buffer_reuse(void)
{
	struct nfp_reader r;
	struct seen s = { 0 };
	size_t blen = (2u << 20) + 5;
	char *big = malloc(blen + 4), small[16];
	size_t n;

	memset(big + 4, 'Z', blen);
	big[0] = (char)(blen >> 24);
	big[1] = (char)(blen >> 16);
	big[2] = (char)(blen >> 8);
	big[3] = (char)blen;
	nfp_reader_init(&r, 4u << 20);
	nfp_reader_feed(&r, big, blen + 4, &cb, &s);
	CHECK(s.nframes == 1 && s.lens[0] == blen && s.frames[0][blen - 1] == 'Z',
	      "reuse: a 2 MiB frame");
	n = put_frame(small, "tiny", 4);
	nfp_reader_feed(&r, small, n, &cb, &s);
	CHECK(frame_is(&s, 1, "tiny", 4), "reuse: a small frame after it");
	nfp_reader_feed(&r, small, n, &cb, &s);
	CHECK(frame_is(&s, 2, "tiny", 4), "reuse: and another");
	seen_reset(&s);
	nfp_reader_release(&r);
	nfp_reader_release(&r);	/* twice is harmless */
	free(big);
}

/* --- fill and write ---------------------------------------------------- */

static void test_fill_eof(void)
{
	struct nfp_reader r;
	struct seen s = { 0 };
	char buf[16];
	int p[2];
	size_t n = put_frame(buf, "abc", 3);

	if (pipe(p) < 0) {
		CHECK(0, "fill: pipe: %s", strerror(errno));
		return;
	}
	nfp_reader_init(&r, 1024);
	CHECK_INT(write(p[1], buf, n), (long long)n, "fill: wrote a frame");
	CHECK_INT(write(p[1], buf, 2), 2, "fill: and half a header");
	close(p[1]);
	CHECK_INT(nfp_reader_fill(&r, p[0], &cb, &s), (long long)n + 2, "fill: reads what is there");
	CHECK(frame_is(&s, 0, "abc", 3), "fill: the frame is delivered");
	CHECK(nfp_reader_partial(&r), "fill: partial header pending");
	CHECK_INT(nfp_reader_fill(&r, p[0], &cb, &s), 0, "fill: 0 at EOF");
	CHECK_INT(nfp_reader_fill(&r, -1, &cb, &s), -1, "fill: -1 on a bad fd");
	close(p[0]);
	seen_reset(&s);
	nfp_reader_release(&r);
}

static void test_write_small(void)
{
	char got[64];
	int p[2];
	ssize_t n;

	if (pipe(p) < 0) {
		CHECK(0, "write: pipe: %s", strerror(errno));
		return;
	}
	CHECK_INT(nfp_frame_write(p[1], "\x83hello", 6), 0, "write: returns 0");
	n = read(p[0], got, sizeof(got));
	CHECK_INT(n, 10, "write: 4 header bytes + 6 body bytes");
	CHECK(memcmp(got, "\0\0\0\x06", 4) == 0, "write: 4-byte big-endian length");
	CHECK(memcmp(got + 4, "\x83hello", 6) == 0, "write: the body follows");

	CHECK_INT(nfp_frame_write(p[1], "", 0), 0, "write: empty frame");
	n = read(p[0], got, sizeof(got));
	CHECK(n == 4 && memcmp(got, "\0\0\0\0", 4) == 0, "write: an empty frame is just the header");

	/* 0x01020304 bytes would be too much for a pipe test; check byte order
	 * with a length whose bytes all differ: 0x0102 = 258. */
	{
		char body[258];

		memset(body, 'q', sizeof(body));
		nfp_frame_write(p[1], body, sizeof(body));
		n = read(p[0], got, 4);
		CHECK(n == 4 && memcmp(got, "\0\0\x01\x02", 4) == 0, "write: length 258 is 00 00 01 02");
		while (n > 0 && (n = read(p[0], got, sizeof(got))) == (ssize_t)sizeof(got))
			;
	}
	close(p[1]);
	close(p[0]);

	/* A closed reader: an error, not a crash (SIGPIPE ignored). */
	if (pipe(p) == 0) {
		signal(SIGPIPE, SIG_IGN);
		close(p[0]);
		CHECK_INT(nfp_frame_write(p[1], "x", 1), -1, "write: -1 when the reader is gone");
		close(p[1]);
	}
}

struct writer {
	int fd;
	const char *buf;
	size_t len;
	int ret;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;

	w->ret = nfp_frame_write(w->fd, w->buf, w->len);
	w->ret |= nfp_frame_write(w->fd, "after", 5);
	close(w->fd);
	return NULL;
}

/* 1 MiB through a pipe (64 KiB of buffer), read by the reader while a
 * thread writes it: writes block, return short, get EINTR. */
static void test_write_large(bool with_short_writes)
{
	const size_t len = 1u << 20;
	char *body = malloc(len);
	struct nfp_reader r;
	struct seen s = { 0 };
	struct writer w;
	pthread_t th;
	int p[2];
	ssize_t got;
	size_t total = 0;
	const char *label = with_short_writes ? "large, short writes" : "large";

	for (size_t i = 0; i < len; i++)
		body[i] = (char)(i * 31 + (i >> 12));
	if (pipe(p) < 0) {
		CHECK(0, "%s: pipe: %s", label, strerror(errno));
		free(body);
		return;
	}
	nfp_reader_init(&r, 2u << 20);
	w = (struct writer){ .fd = p[1], .buf = body, .len = len };
	short_calls = short_partial = short_eintr = 0;
	short_writes = with_short_writes;
	pthread_create(&th, NULL, writer_main, &w);
	while ((got = nfp_reader_fill(&r, p[0], &cb, &s)) > 0)
		total += (size_t)got;
	pthread_join(th, NULL);
	short_writes = false;
	close(p[0]);

	CHECK_INT(w.ret, 0, "large: nfp_frame_write returns 0");
	CHECK_INT(got, 0, "large: the reader sees EOF, no error");
	CHECK_INT(total, (long long)(len + 4 + 5 + 4), "large: every byte arrives");
	CHECK_INT(s.nframes, 2, "large: two frames");
	CHECK(frame_is(&s, 0, body, len), "%s: the 1 MiB body is intact", label);
	CHECK(frame_is(&s, 1, "after", 5), "%s: the frame after it is intact", label);
	CHECK(!nfp_reader_partial(&r), "%s: nothing partial", label);
	if (with_short_writes) {
		check_note("writev calls %u, partial %u, EINTR %u", short_calls, short_partial,
			   short_eintr);
		CHECK(short_partial > 10, "large: partial writes happened (%u)", short_partial);
		CHECK(short_eintr > 0, "large: EINTR happened and was retried (%u)", short_eintr);
	}
	seen_reset(&s);
	nfp_reader_release(&r);
	free(body);
}

int main(void)
{
	test_one_chunk();
	test_byte_by_byte();
	test_joined();
	test_zero_length();
	test_oversize();
	test_partial();
	test_buffer_reuse();
	test_fill_eof();
	test_write_small();
	test_write_large(false);
	test_write_large(true);
	return check_done();
}
