// SPDX-License-Identifier: GPL-2.0-or-later
/* ETF helpers, see etf.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etf.h"

static uint32_t be32(const char *p)
{
	const unsigned char *u = (const unsigned char *)p;

	return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
}

static uint16_t be16(const char *p)
{
	const unsigned char *u = (const unsigned char *)p;

	return (uint16_t)(u[0] << 8 | u[1]);
}

#define NEED(n)									\
	do {									\
		if ((long)(n) > (long)len - (long)*idx) {			\
			snprintf(err, errlen, "truncated term at byte %d", *idx); \
			return -1;						\
		}								\
	} while (0)

int nfp_etf_validate(const char *buf, int len, int *idx, int depth,
		     char *err, size_t errlen)
{
	uint32_t n;
	unsigned char tag;

	if (depth > NFP_ETF_MAX_DEPTH) {
		snprintf(err, errlen, "term nested deeper than %d levels", NFP_ETF_MAX_DEPTH);
		return -1;
	}
	NEED(1);
	tag = (unsigned char)buf[(*idx)++];
	switch (tag) {
	case ERL_SMALL_INTEGER_EXT:
		NEED(1);
		*idx += 1;
		return 0;
	case ERL_INTEGER_EXT:
		NEED(4);
		*idx += 4;
		return 0;
	case NEW_FLOAT_EXT:
		NEED(8);
		*idx += 8;
		return 0;
	case ERL_FLOAT_EXT:
		NEED(31);
		*idx += 31;
		return 0;
	case ERL_ATOM_EXT:
	case ERL_ATOM_UTF8_EXT:
		NEED(2);
		n = be16(buf + *idx);
		*idx += 2;
		if (n > 255 * 4) {
			snprintf(err, errlen, "atom too long");
			return -1;
		}
		NEED(n);
		*idx += n;
		return 0;
	case ERL_SMALL_ATOM_EXT:
	case ERL_SMALL_ATOM_UTF8_EXT:
		NEED(1);
		n = (unsigned char)buf[*idx];
		*idx += 1;
		NEED(n);
		*idx += n;
		return 0;
	case ERL_SMALL_BIG_EXT:
		NEED(1);
		n = (unsigned char)buf[*idx];
		*idx += 1;
		NEED((long)n + 1);
		*idx += n + 1;
		return 0;
	case ERL_LARGE_BIG_EXT:
		NEED(4);
		n = be32(buf + *idx);
		*idx += 4;
		NEED((long)n + 1);
		*idx += n + 1;
		return 0;
	case ERL_NIL_EXT:
		return 0;
	case ERL_STRING_EXT:
		NEED(2);
		n = be16(buf + *idx);
		*idx += 2;
		NEED(n);
		*idx += n;
		return 0;
	case ERL_BINARY_EXT:
		NEED(4);
		n = be32(buf + *idx);
		*idx += 4;
		NEED(n);
		*idx += n;
		return 0;
	case ERL_BIT_BINARY_EXT:
		NEED(5);
		n = be32(buf + *idx);
		*idx += 5;
		NEED(n);
		*idx += n;
		return 0;
	case ERL_SMALL_TUPLE_EXT:
	case ERL_LARGE_TUPLE_EXT:
		if (tag == ERL_SMALL_TUPLE_EXT) {
			NEED(1);
			n = (unsigned char)buf[*idx];
			*idx += 1;
		} else {
			NEED(4);
			n = be32(buf + *idx);
			*idx += 4;
		}
		NEED(n);	/* every element takes at least one byte */
		for (uint32_t i = 0; i < n; i++)
			if (nfp_etf_validate(buf, len, idx, depth + 1, err, errlen) < 0)
				return -1;
		return 0;
	case ERL_LIST_EXT:
		NEED(4);
		n = be32(buf + *idx);
		*idx += 4;
		NEED((long)n + 1);
		for (uint32_t i = 0; i < n; i++)
			if (nfp_etf_validate(buf, len, idx, depth + 1, err, errlen) < 0)
				return -1;
		return nfp_etf_validate(buf, len, idx, depth + 1, err, errlen);
	case ERL_MAP_EXT:
		NEED(4);
		n = be32(buf + *idx);
		*idx += 4;
		NEED(2 * (long)n);
		for (uint64_t i = 0; i < 2 * (uint64_t)n; i++)
			if (nfp_etf_validate(buf, len, idx, depth + 1, err, errlen) < 0)
				return -1;
		return 0;
	default:
		snprintf(err, errlen, "unsupported term type (ETF tag %u) at byte %d",
			 tag, *idx - 1);
		return -1;
	}
}

/* Walks a validated term; calls back on every STRING_EXT. Compound terms
 * recurse (bounded by NFP_ETF_MAX_DEPTH at validation), scalars are
 * skipped with ei_skip_term. */
static bool walk_strings(const char *buf, int *idx, ei_x_buff *out)
{
	unsigned char tag = (unsigned char)buf[*idx];
	bool found = false;
	int start = *idx, n;

	switch (tag) {
	case ERL_STRING_EXT:
		n = be16(buf + *idx + 1);
		if (out) {
			if (n == 0) {
				ei_x_encode_empty_list(out);
			} else {
				ei_x_encode_list_header(out, n);
				for (int i = 0; i < n; i++)
					ei_x_encode_ulong(out, (unsigned char)buf[*idx + 3 + i]);
				ei_x_encode_empty_list(out);
			}
		}
		*idx += 3 + n;
		return true;
	case ERL_SMALL_TUPLE_EXT:
	case ERL_LARGE_TUPLE_EXT:
		ei_decode_tuple_header(buf, idx, &n);
		if (out)
			ei_x_encode_tuple_header(out, n);
		for (int i = 0; i < n; i++)
			found |= walk_strings(buf, idx, out);
		return found;
	case ERL_LIST_EXT:
		n = (int)be32(buf + *idx + 1);
		*idx += 5;
		if (out)
			ei_x_encode_list_header(out, n);
		for (int i = 0; i <= n; i++)	/* the elements and the tail */
			found |= walk_strings(buf, idx, out);
		return found;
	case ERL_MAP_EXT:
		ei_decode_map_header(buf, idx, &n);
		if (out)
			ei_x_encode_map_header(out, n);
		for (int i = 0; i < 2 * n; i++)
			found |= walk_strings(buf, idx, out);
		return found;
	default:
		ei_skip_term(buf, idx);
		if (out)
			ei_x_append_buf(out, buf + start, *idx - start);
		return false;
	}
}

bool nfp_etf_has_string_ext(const char *buf, int idx)
{
	return walk_strings(buf, &idx, NULL);
}

void nfp_etf_expand_strings(const char *buf, int *idx, ei_x_buff *out)
{
	walk_strings(buf, idx, out);
}

const char *nfp_etf_type_name(const char *buf, int idx)
{
	int type, size;

	if (ei_get_type(buf, &idx, &type, &size) < 0)
		return "an unknown term";
	switch (type) {
	case ERL_SMALL_INTEGER_EXT:
	case ERL_INTEGER_EXT:
		return "an integer";
	case ERL_SMALL_BIG_EXT:
	case ERL_LARGE_BIG_EXT:
		return "a big integer";
	case ERL_FLOAT_EXT:
	case NEW_FLOAT_EXT:
		return "a float";
	case ERL_ATOM_EXT:
	case ERL_SMALL_ATOM_EXT:
	case ERL_ATOM_UTF8_EXT:
	case ERL_SMALL_ATOM_UTF8_EXT:
		return "an atom";
	case ERL_SMALL_TUPLE_EXT:
	case ERL_LARGE_TUPLE_EXT:
		return "a tuple";
	case ERL_NIL_EXT:
		return "an empty list";
	case ERL_STRING_EXT:
		return "a charlist";
	case ERL_LIST_EXT:
		return "a list";
	case ERL_BINARY_EXT:
		return "a binary";
	case ERL_BIT_BINARY_EXT:
		return "a bitstring";
	case ERL_MAP_EXT:
		return "a map";
	default:
		return "an unsupported term";
	}
}

void nfp_etf_skip(const char *buf, int *idx)
{
	ei_skip_term(buf, idx);
}

bool nfp_is_atom(const char *buf, int idx)
{
	int type, size;

	if (ei_get_type(buf, &idx, &type, &size) < 0)
		return false;
	return type == ERL_ATOM_EXT || type == ERL_SMALL_ATOM_EXT ||
	       type == ERL_ATOM_UTF8_EXT || type == ERL_SMALL_ATOM_UTF8_EXT;
}

static int wrong(struct nfp_req *req, int idx, const char *want, const char *what)
{
	return nfp_fail(req, "%s: expected %s, got %s", what, want,
			nfp_etf_type_name(req->buf, idx));
}

/* Well-formed UTF-8 (no overlong forms, surrogates or code points past
 * U+10FFFF), as an atom's text must be. */
static bool valid_utf8(const unsigned char *s, size_t len)
{
	for (size_t i = 0; i < len;) {
		unsigned char c = s[i];
		size_t n = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 :
			   (c & 0xF8) == 0xF0 ? 4 : 0;
		uint32_t cp;

		if (n == 0 || i + n > len)
			return false;
		cp = n == 1 ? c : c & (0x7F >> n);
		for (size_t k = 1; k < n; k++) {
			if ((s[i + k] & 0xC0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3F);
		}
		if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
		    cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		i += n;
	}
	return true;
}

int nfp_dec_atom(struct nfp_req *req, int *idx, char *out, const char *what)
{
	int type, size, i = *idx;
	size_t chars = 0;

	if (!nfp_is_atom(req->buf, *idx))
		return wrong(req, *idx, "an atom", what);
	/* ei_get_type() says ERL_ATOM_EXT for every atom encoding: the tag. */
	ei_get_type(req->buf, &i, &type, &size);
	type = (unsigned char)req->buf[*idx];
	{
		/* ATOM_EXT, ATOM_UTF8_EXT: 2-byte length; SMALL_*: 1 byte. */
		int hdr = (type == ERL_ATOM_EXT || type == ERL_ATOM_UTF8_EXT) ? 3 : 2;
		const unsigned char *text = (const unsigned char *)req->buf + *idx + hdr;
		bool utf8 = type == ERL_ATOM_UTF8_EXT || type == ERL_SMALL_ATOM_UTF8_EXT;

		if (utf8 && !valid_utf8(text, (size_t)size))
			return nfp_fail(req, "%s: expected an atom, got an atom whose text is not valid UTF-8",
					what);
		for (int k = 0; k < size; k++)
			chars += !utf8 || (text[k] & 0xC0) != 0x80;
	}
	if (chars > 255)
		return nfp_fail(req, "%s: expected an atom, got an atom of %zu characters (atoms have at most 255)",
				what, chars);
	if (ei_decode_atom_as(req->buf, idx, out, NFP_ATOM_MAX, ERLANG_UTF8, NULL, NULL) < 0)
		return nfp_fail(req, "%s: expected an atom, got an atom ei cannot decode (%s, %d bytes)",
				what, (type == ERL_ATOM_UTF8_EXT || type == ERL_SMALL_ATOM_UTF8_EXT) ?
				"UTF-8" : "latin-1", size);
	return 0;
}

int nfp_dec_u64(struct nfp_req *req, int *idx, uint64_t *v, const char *what)
{
	int type, size, i = *idx;
	unsigned long long u;
	long long s;

	ei_get_type(req->buf, &i, &type, &size);
	switch (type) {
	case ERL_SMALL_INTEGER_EXT:
	case ERL_INTEGER_EXT:
		if (ei_decode_longlong(req->buf, idx, &s) < 0)
			return wrong(req, *idx, "an integer", what);
		if (s < 0)
			return nfp_fail(req, "%s: %lld is negative, expected a non-negative integer",
					what, s);
		*v = (uint64_t)s;
		return 0;
	case ERL_SMALL_BIG_EXT:
	case ERL_LARGE_BIG_EXT:
		i = *idx;
		if (ei_decode_ulonglong(req->buf, &i, &u) < 0) {
			if (ei_decode_longlong(req->buf, idx, &s) == 0 && s < 0)
				return nfp_fail(req, "%s: %lld is negative, expected a non-negative integer",
						what, s);
			return nfp_fail(req, "%s: integer does not fit in 64 bits", what);
		}
		*idx = i;
		*v = u;
		return 0;
	default:
		return wrong(req, *idx, "an integer", what);
	}
}

int nfp_dec_s64(struct nfp_req *req, int *idx, int64_t *v, const char *what)
{
	int type, size, i = *idx;
	long long s;

	ei_get_type(req->buf, &i, &type, &size);
	switch (type) {
	case ERL_SMALL_INTEGER_EXT:
	case ERL_INTEGER_EXT:
	case ERL_SMALL_BIG_EXT:
	case ERL_LARGE_BIG_EXT:
		if (ei_decode_longlong(req->buf, idx, &s) < 0)
			return nfp_fail(req, "%s: integer does not fit in 64 bits", what);
		*v = s;
		return 0;
	default:
		return wrong(req, *idx, "an integer", what);
	}
}

int nfp_dec_bool(struct nfp_req *req, int *idx, bool *v, const char *what)
{
	char a[NFP_ATOM_MAX];
	int i = *idx;

	if (nfp_dec_atom(req, &i, a, what) < 0)
		return -1;
	if (strcmp(a, "true") == 0)
		*v = true;
	else if (strcmp(a, "false") == 0)
		*v = false;
	else
		return nfp_fail(req, "%s: expected true or false, got :%s", what, a);
	*idx = i;
	return 0;
}

int nfp_dec_bin(struct nfp_req *req, int *idx, const char **p, uint32_t *len,
		const char *what)
{
	int type, size, i = *idx;

	ei_get_type(req->buf, &i, &type, &size);
	if (type != ERL_BINARY_EXT)
		return wrong(req, *idx, "a binary", what);
	/* BINARY_EXT: tag, 4-byte length, bytes. */
	*len = (uint32_t)size;
	*p = req->buf + *idx + 5;
	*idx += 5 + size;
	return 0;
}

int nfp_dec_list(struct nfp_req *req, int *idx, int *n, const char *what)
{
	int type, size, i = *idx;

	ei_get_type(req->buf, &i, &type, &size);
	if (type == ERL_NIL_EXT || type == ERL_LIST_EXT) {
		if (ei_decode_list_header(req->buf, idx, n) < 0)
			return wrong(req, *idx, "a list", what);
		/* LIST_EXT of no elements: [ | Tail], proper only when Tail is []. */
		if (type == ERL_LIST_EXT && *n == 0)
			return nfp_dec_list_end(req, idx, what);
		return 0;
	}
	if (type == ERL_STRING_EXT)
		return nfp_fail(req, "%s: expected a list of terms, got a list of small integers",
				what);
	return wrong(req, *idx, "a list", what);
}

int nfp_dec_list_end(struct nfp_req *req, int *idx, const char *what)
{
	int type, size, i = *idx;

	ei_get_type(req->buf, &i, &type, &size);
	if (type != ERL_NIL_EXT)
		return nfp_fail(req, "%s: improper list (the tail is %s)", what,
				nfp_etf_type_name(req->buf, *idx));
	*idx += 1;
	return 0;
}

int nfp_dec_map(struct nfp_req *req, int *idx, int *n, const char *what)
{
	int type, size, i = *idx;

	ei_get_type(req->buf, &i, &type, &size);
	if (type != ERL_MAP_EXT || ei_decode_map_header(req->buf, idx, n) < 0)
		return wrong(req, *idx, "a map", what);
	return 0;
}

int nfp_dec_tuple(struct nfp_req *req, int *idx, int arity, const char *what)
{
	int type, size, i = *idx, n;

	ei_get_type(req->buf, &i, &type, &size);
	if ((type != ERL_SMALL_TUPLE_EXT && type != ERL_LARGE_TUPLE_EXT) ||
	    ei_decode_tuple_header(req->buf, idx, &n) < 0)
		return wrong(req, *idx, "a tuple", what);
	if (n != arity)
		return nfp_fail(req, "%s: expected a %d-tuple, got a %d-tuple", what, arity, n);
	return 0;
}

void nfp_enc_atom(ei_x_buff *x, const char *a)
{
	ei_x_encode_atom(x, a);
}

void nfp_enc_bin(ei_x_buff *x, const void *p, size_t len)
{
	ei_x_encode_binary(x, p, (long)len);
}

void nfp_enc_str(ei_x_buff *x, const char *s)
{
	ei_x_encode_binary(x, s, (long)strlen(s));
}

void nfp_enc_u64(ei_x_buff *x, uint64_t v)
{
	ei_x_encode_ulonglong(x, v);
}

void nfp_enc_s64(ei_x_buff *x, int64_t v)
{
	ei_x_encode_longlong(x, v);
}

int nfp_enc_reserve(ei_x_buff *x, size_t n)
{
	size_t want = (size_t)x->index + n, sz;
	char *p;

	if (want <= (size_t)x->buffsz)
		return 0;
	sz = (size_t)x->buffsz * 2;
	if (sz < want)
		sz = want;
	if (sz > INT32_MAX)
		return -1;
	p = realloc(x->buff, sz);
	if (!p)
		return -1;
	x->buff = p;
	x->buffsz = (int)sz;
	return 0;
}

void nfp_enc_ok_head(ei_x_buff *x)
{
	ei_x_encode_tuple_header(x, 2);
	ei_x_encode_atom(x, "ok");
}

int nfp_enc_list_open(ei_x_buff *x)
{
	int at = x->index;

	/* A placeholder LIST_EXT header; patched by nfp_enc_list_close(). */
	ei_x_encode_list_header(x, 0x7fffffff);
	return at;
}

void nfp_enc_list_close(ei_x_buff *x, int at, uint32_t count)
{
	unsigned char *p = (unsigned char *)x->buff + at;

	if (count == 0) {
		/* LIST_EXT of length 0 is not canonical: make it NIL. */
		x->index = at;
		ei_x_encode_empty_list(x);
		return;
	}
	p[1] = count >> 24;
	p[2] = count >> 16;
	p[3] = count >> 8;
	p[4] = count;
	ei_x_encode_empty_list(x);
}
