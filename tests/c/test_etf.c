// SPDX-License-Identifier: GPL-2.0-or-later
/* ETF validation and the typed decoders: src/etf.c. */
#include <stdlib.h>
#include <string.h>

#include <ei.h>

#include "check.h"
#include "etf.h"
#include "req.h"

/* --- building terms ----------------------------------------------------- */

static void x_init(ei_x_buff *x)
{
	ei_x_new_with_version(x);
}

/* A bignum from its little-endian magnitude: SMALL_BIG_EXT. */
static void enc_big(ei_x_buff *x, int negative, const unsigned char *le, int n)
{
	char hdr[3] = { ERL_SMALL_BIG_EXT, (char)n, (char)(negative ? 1 : 0) };

	ei_x_append_buf(x, hdr, 3);
	ei_x_append_buf(x, (const char *)le, n);
}

/* Raw bytes (for tags ei cannot encode, and broken terms). */
static void enc_raw(ei_x_buff *x, const void *p, int n)
{
	ei_x_append_buf(x, p, n);
}

/* Validates the whole buffer after the version byte, from a copy of
 * exactly len bytes (so that ASan sees any read past the end). */
static int validate(const char *buf, int len, char *err, size_t errlen, int *end)
{
	char *copy = malloc(len ? (size_t)len : 1);
	int idx = 1, ret;

	memcpy(copy, buf, (size_t)len);
	err[0] = '\0';
	ret = nfp_etf_validate(copy, len, &idx, 0, err, errlen);
	if (end)
		*end = idx;
	free(copy);
	return ret;
}

/* One term with every kind a request uses. */
static void enc_everything(ei_x_buff *x)
{
	static const unsigned char two64[9] = { 0, 0, 0, 0, 0, 0, 0, 0, 1 };

	ei_x_encode_tuple_header(x, 9);
	ei_x_encode_long(x, 7);			/* SMALL_INTEGER */
	ei_x_encode_long(x, -100000);		/* INTEGER */
	ei_x_encode_ulonglong(x, UINT64_MAX);	/* SMALL_BIG */
	enc_big(x, 1, two64, 9);		/* -2^64 */
	ei_x_encode_atom(x, "an_atom");
	ei_x_encode_binary(x, "bin\0ary", 7);
	ei_x_encode_list_header(x, 3);		/* [1.5, "ab", []] */
	ei_x_encode_double(x, 1.5);
	ei_x_encode_string(x, "ab");
	ei_x_encode_empty_list(x);
	ei_x_encode_empty_list(x);
	ei_x_encode_map_header(x, 2);		/* #{k => {}, <<>> => [a]} */
	ei_x_encode_atom(x, "k");
	ei_x_encode_tuple_header(x, 0);
	ei_x_encode_binary(x, "", 0);
	ei_x_encode_list_header(x, 1);
	ei_x_encode_atom(x, "a");
	ei_x_encode_empty_list(x);
	/* nested: {[#{x => [{1, <<1,2>>}]}]} */
	ei_x_encode_tuple_header(x, 1);
	ei_x_encode_list_header(x, 1);
	ei_x_encode_map_header(x, 1);
	ei_x_encode_atom(x, "x");
	ei_x_encode_list_header(x, 1);
	ei_x_encode_tuple_header(x, 2);
	ei_x_encode_long(x, 1);
	ei_x_encode_binary(x, "\1\2", 2);
	ei_x_encode_empty_list(x);
	ei_x_encode_empty_list(x);
}

/* --- nfp_etf_validate ---------------------------------------------------- */

static void test_validate_accepts(void)
{
	int rc;
	char err[256];
	ei_x_buff x;
	int end;

#define ACCEPT(label, code)							\
	do {									\
		x_init(&x);							\
		code;								\
		rc = validate(x.buff, x.index, err, sizeof(err), &end);	\
		CHECK(rc == 0 && end == x.index, "validate accepts %s%s%s",	\
		      label, err[0] ? ": " : "", err);				\
		ei_x_free(&x);							\
	} while (0)

	ACCEPT("a small integer", ei_x_encode_long(&x, 255));
	ACCEPT("an integer", ei_x_encode_long(&x, -1));
	ACCEPT("a 64-bit big", ei_x_encode_ulonglong(&x, UINT64_MAX));
	ACCEPT("a negative big", ei_x_encode_longlong(&x, INT64_MIN));
	ACCEPT("an atom", ei_x_encode_atom(&x, "inet"));
	ACCEPT("a UTF-8 atom", ei_x_encode_atom_as(&x, "\xc3\xa9t\xc3\xa9", ERLANG_UTF8, ERLANG_UTF8));
	ACCEPT("a binary", ei_x_encode_binary(&x, "abc", 3));
	ACCEPT("an empty binary", ei_x_encode_binary(&x, "", 0));
	ACCEPT("a float", ei_x_encode_double(&x, 2.5));
	ACCEPT("an empty tuple", ei_x_encode_tuple_header(&x, 0));
	ACCEPT("a tuple", (ei_x_encode_tuple_header(&x, 2), ei_x_encode_atom(&x, "ok"),
			   ei_x_encode_long(&x, 1)));
	ACCEPT("an empty list", ei_x_encode_empty_list(&x));
	ACCEPT("a charlist", ei_x_encode_string(&x, "hello"));
	ACCEPT("a list", (ei_x_encode_list_header(&x, 2), ei_x_encode_atom(&x, "a"),
			  ei_x_encode_atom(&x, "b"), ei_x_encode_empty_list(&x)));
	ACCEPT("an improper list", (ei_x_encode_list_header(&x, 1), ei_x_encode_atom(&x, "a"),
				    ei_x_encode_atom(&x, "b")));
	ACCEPT("an empty map", ei_x_encode_map_header(&x, 0));
	ACCEPT("a map", (ei_x_encode_map_header(&x, 1), ei_x_encode_atom(&x, "k"),
			 ei_x_encode_binary(&x, "v", 1)));
	ACCEPT("a bitstring", ei_x_encode_bitstring(&x, "\xff\x80", 0, 9));
	ACCEPT("a term of every kind, nested", enc_everything(&x));
#undef ACCEPT
}

static void test_validate_truncation(void)
{
	int rc;
	char err[256];
	ei_x_buff x;
	int bad = 0, wrong_msg = 0, first_bad = -1;

	x_init(&x);
	enc_everything(&x);
	/* Every cut short of the whole term must fail, with "truncated". */
	for (int cut = 1; cut < x.index; cut++) {
		if (validate(x.buff, cut, err, sizeof(err), NULL) == 0) {
			if (first_bad < 0)
				first_bad = cut;
			bad++;
		} else if (!strstr(err, "truncated")) {
			wrong_msg++;
		}
	}
	CHECK(bad == 0, "validate rejects all %d truncations of a %d-byte term (accepted %d, first at %d)",
	      x.index - 2, x.index, bad, first_bad);
	CHECK_INT(wrong_msg, 0, "every truncation is reported as \"truncated term\"");
	validate(x.buff, 20, err, sizeof(err), NULL);
	CHECK_CONTAINS(err, "truncated term at byte", "truncation message names the byte");
	ei_x_free(&x);

	/* The version byte alone: nothing to read. */
	rc = validate("\x83", 1, err, sizeof(err), NULL);
	CHECK(rc < 0, "validate rejects a version byte alone");
}

static void test_validate_lengths(void)
{
	int rc;
	char err[256];
	ei_x_buff x;

	/* LIST_EXT that claims 2^31-1 elements, followed by two. */
	x_init(&x);
	enc_raw(&x, "\x6c\x7f\xff\xff\xff", 5);
	ei_x_encode_long(&x, 1);
	ei_x_encode_long(&x, 2);
	ei_x_encode_empty_list(&x);
	rc = validate(x.buff, x.index, err, sizeof(err), NULL);
	CHECK(rc < 0,
	      "validate rejects a list count beyond the remaining bytes");
	CHECK_CONTAINS(err, "truncated", "... as truncated");
	ei_x_free(&x);

	/* LIST_EXT with 0xffffffff elements (the count as unsigned). */
	x_init(&x);
	enc_raw(&x, "\x6c\xff\xff\xff\xff\x6a", 6);
	rc = validate(x.buff, x.index, err, sizeof(err), NULL);
	CHECK(rc < 0,
	      "validate rejects a list count of 2^32-1");
	ei_x_free(&x);

	/* Tuple, map, binary, big and atom lengths past the end. */
	static const struct {
		const char *label;
		const char *bytes;
		int len;
	} cases[] = {
		{ "a large tuple of 2^32-1 elements", "\x69\xff\xff\xff\xff\x6a", 6 },
		{ "a small tuple of 255 elements", "\x68\xff\x6a\x6a", 4 },
		{ "a map of 2^31 pairs", "\x74\x80\x00\x00\x00\x6a\x6a", 7 },
		{ "a map of 2^32-1 pairs", "\x74\xff\xff\xff\xff\x6a\x6a", 7 },
		{ "a binary of 2^32-1 bytes", "\x6d\xff\xff\xff\xff" "abc", 8 },
		{ "a binary one byte short", "\x6d\x00\x00\x00\x04" "abc", 8 },
		{ "a bitstring of 2^32-1 bytes", "\x4d\xff\xff\xff\xff\x08" "ab", 8 },
		{ "a large big of 2^32-1 digits", "\x6f\xff\xff\xff\xff\x00\x01", 7 },
		{ "a small big of 255 digits", "\x6e\xff\x00\x01", 4 },
		{ "an atom of 1000 bytes", "\x76\x03\xe8" "abc", 6 },
		{ "an atom longer than 255 characters", "\x76\x04\x00" "abc", 6 },
		{ "a small atom of 255 bytes", "\x77\xff" "abc", 5 },
		{ "a charlist of 65535", "\x6b\xff\xff" "ab", 5 },
		{ "an old float", "\x63" "1.0", 4 },
		{ "a new float", "\x46\x00\x00", 3 },
		{ "an integer", "\x62\x00\x00", 3 },
		{ "a small integer", "\x61", 1 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		x_init(&x);
		enc_raw(&x, cases[i].bytes, cases[i].len);
		rc = validate(x.buff, x.index, err, sizeof(err), NULL);
		CHECK(rc < 0,
		      "validate rejects %s past the end (%s)", cases[i].label, err);
		ei_x_free(&x);
	}
}

static void enc_nested_tuples(ei_x_buff *x, int levels)
{
	for (int i = 0; i < levels - 1; i++)
		ei_x_encode_tuple_header(x, 1);
	ei_x_encode_tuple_header(x, 0);
}

static void test_validate_depth(void)
{
	int rc;
	char err[256];
	ei_x_buff x;

	/* The outermost term is at depth 0: 65 nested tuples put the
	 * innermost at NFP_ETF_MAX_DEPTH, which is allowed. */
	x_init(&x);
	enc_nested_tuples(&x, NFP_ETF_MAX_DEPTH + 1);
	rc = validate(x.buff, x.index, err, sizeof(err), NULL);
	CHECK(rc == 0,
	      "validate accepts nesting down to depth %d (%s)", NFP_ETF_MAX_DEPTH, err);
	ei_x_free(&x);

	x_init(&x);
	enc_nested_tuples(&x, NFP_ETF_MAX_DEPTH + 2);
	rc = validate(x.buff, x.index, err, sizeof(err), NULL);
	CHECK(rc < 0,
	      "validate rejects nesting deeper than NFP_ETF_MAX_DEPTH");
	CHECK_CONTAINS(err, "nested deeper than 64", "depth error names the limit");
	ei_x_free(&x);

	/* Lists and maps count too; a deep term far deeper than the limit
	 * (does not blow the stack). */
	x_init(&x);
	for (int i = 0; i < 5000; i++) {
		ei_x_encode_list_header(&x, 1);
		ei_x_encode_map_header(&x, 1);
		ei_x_encode_atom(&x, "k");
	}
	ei_x_encode_empty_list(&x);
	rc = validate(x.buff, x.index, err, sizeof(err), NULL);
	CHECK(rc < 0,
	      "validate rejects lists of maps 10000 levels deep");
	CHECK_CONTAINS(err, "nested deeper", "... as too deep");
	ei_x_free(&x);
}

static void test_validate_tags(void)
{
	int rc;
	char err[256];
	ei_x_buff x;
	erlang_pid pid;
	erlang_ref ref;

	memset(&pid, 0, sizeof(pid));
	strcpy(pid.node, "node@host");
	pid.num = 1;
	x_init(&x);
	ei_x_encode_pid(&x, &pid);
	rc = validate(x.buff, x.index, err, sizeof(err), NULL);
	CHECK(rc < 0, "validate rejects a pid");
	CHECK_CONTAINS(err, "unsupported term type", "pid: says unsupported term type");
	ei_x_free(&x);

	memset(&ref, 0, sizeof(ref));
	strcpy(ref.node, "node@host");
	ref.len = 3;
	x_init(&x);
	ei_x_encode_ref(&x, &ref);
	rc = validate(x.buff, x.index, err, sizeof(err), NULL);
	CHECK(rc < 0, "validate rejects a reference");
	CHECK_CONTAINS(err, "unsupported term type", "ref: says unsupported term type");
	ei_x_free(&x);

	/* A pid inside a list inside a tuple. */
	x_init(&x);
	ei_x_encode_tuple_header(&x, 2);
	ei_x_encode_long(&x, 1);
	ei_x_encode_list_header(&x, 1);
	ei_x_encode_pid(&x, &pid);
	ei_x_encode_empty_list(&x);
	rc = validate(x.buff, x.index, err, sizeof(err), NULL);
	CHECK(rc < 0, "validate rejects a nested pid");
	ei_x_free(&x);

	static const struct {
		const char *label;
		const char *bytes;
		int len;
		const char *tag;
	} cases[] = {
		/* NEW_FUN_EXT 'p' with a plausible size, EXPORT_EXT 'q'. */
		{ "a fun", "\x70\x00\x00\x00\x20" "0123456789abcdef0123456789abcdef", 37, "tag 112" },
		{ "an export fun", "\x71\x64\x00\x01m\x64\x00\x01" "f\x61\x01", 11, "tag 113" },
		{ "a compressed term", "\x50\x00\x00\x00\x0a\x78\x9c\xcb\x00\x00", 10, "tag 80" },
		{ "a port", "\x66\x64\x00\x01n\x00\x00\x00\x01\x00", 10, "tag 102" },
		{ "a new port", "\x59\x64\x00\x01n\x00\x00\x00\x01\x00\x00\x00\x00", 13, "tag 89" },
		{ "an atom cache ref", "\x52\x00", 2, "tag 82" },
		{ "tag 0", "\x00", 1, "tag 0" },
		{ "tag 255", "\xff", 1, "tag 255" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		x_init(&x);
		enc_raw(&x, cases[i].bytes, cases[i].len);
		rc = validate(x.buff, x.index, err, sizeof(err), NULL);
		CHECK(rc < 0,
		      "validate rejects %s", cases[i].label);
		CHECK_CONTAINS(err, cases[i].tag, "... naming its tag");
		ei_x_free(&x);
	}
}

/* --- the typed decoders --------------------------------------------------- */

/* A request over one term, the cursor after the version byte. */
struct dec {
	ei_x_buff x;
	struct nfp_req req;
	int idx;
};

static void dec_begin(struct dec *d)
{
	x_init(&d->x);
}

static void dec_ready(struct dec *d)
{
	memset(&d->req, 0, sizeof(d->req));
	d->req.buf = d->x.buff;
	d->req.len = d->x.index;
	d->idx = 1;
}

static void dec_end(struct dec *d)
{
	ei_x_free(&d->x);
}

/* Expects a decoder call on a term to fail with a message containing
 * `want`, and to leave the cursor where it was. */
#define DEC_FAIL(label, encode, call, want)					\
	do {									\
		struct dec d_;							\
		int ret_;							\
		dec_begin(&d_);							\
		{ ei_x_buff *x = &d_.x; encode; }				\
		dec_ready(&d_);							\
		{ struct nfp_req *req = &d_.req; int *idx = &d_.idx; ret_ = (call); } \
		CHECK(ret_ < 0, "%s: fails", label);				\
		CHECK_CONTAINS(d_.req.err, want, label);			\
		dec_end(&d_);							\
	} while (0)

#define DEC_OK(label, encode, call, after)					\
	do {									\
		struct dec d_;							\
		int ret_;							\
		dec_begin(&d_);							\
		{ ei_x_buff *x = &d_.x; encode; }				\
		dec_ready(&d_);							\
		{ struct nfp_req *req = &d_.req; int *idx = &d_.idx; ret_ = (call); } \
		CHECK(ret_ == 0 && !d_.req.err[0] && (after),			\
		      "%s (err: %s)", label, d_.req.err);				\
		dec_end(&d_);							\
	} while (0)

static void test_dec_atom(void)
{
	char a[NFP_ATOM_MAX];

	DEC_OK("atom: decodes", ei_x_encode_atom(x, "inet"),
	       nfp_dec_atom(req, idx, a, "family"), strcmp(a, "inet") == 0 && d_.idx == d_.x.index);
	DEC_OK("atom: decodes UTF-8", ei_x_encode_atom_as(x, "\xc3\xa9", ERLANG_UTF8, ERLANG_UTF8),
	       nfp_dec_atom(req, idx, a, "family"), strcmp(a, "\xc3\xa9") == 0);
	DEC_FAIL("atom: a binary", ei_x_encode_binary(x, "inet", 4),
		 nfp_dec_atom(req, idx, a, "family"), "family: expected an atom, got a binary");
	DEC_FAIL("atom: an integer", ei_x_encode_long(x, 2),
		 nfp_dec_atom(req, idx, a, "op"), "op: expected an atom, got an integer");
	DEC_FAIL("atom: a charlist", ei_x_encode_string(x, "inet"),
		 nfp_dec_atom(req, idx, a, "op"), "op: expected an atom, got a charlist");
	DEC_FAIL("atom: a tuple", ei_x_encode_tuple_header(x, 0),
		 nfp_dec_atom(req, idx, a, "op"), "expected an atom, got a tuple");
}

static void test_dec_u64(void)
{
	static const unsigned char two64[9] = { 0, 0, 0, 0, 0, 0, 0, 0, 1 };
	static const unsigned char max64[8] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	static const unsigned char huge[20] = { 1, [19] = 1 };
	uint64_t v = 0;

	DEC_OK("u64: 0", ei_x_encode_long(x, 0), nfp_dec_u64(req, idx, &v, "n"), v == 0);
	DEC_OK("u64: 255", ei_x_encode_long(x, 255), nfp_dec_u64(req, idx, &v, "n"), v == 255);
	DEC_OK("u64: 2^31-1", ei_x_encode_long(x, 2147483647), nfp_dec_u64(req, idx, &v, "n"),
	       v == 2147483647u);
	DEC_OK("u64: 2^40 (a big)", ei_x_encode_ulonglong(x, 1ull << 40),
	       nfp_dec_u64(req, idx, &v, "n"), v == 1ull << 40);
	DEC_OK("u64: 2^64-1", enc_big(x, 0, max64, 8), nfp_dec_u64(req, idx, &v, "n"),
	       v == UINT64_MAX && d_.idx == d_.x.index);
	DEC_FAIL("u64: -1", ei_x_encode_long(x, -1), nfp_dec_u64(req, idx, &v, "count"),
		 "count: -1 is negative, expected a non-negative integer");
	DEC_FAIL("u64: -2^40 (a negative big)", ei_x_encode_longlong(x, -(1ll << 40)),
		 nfp_dec_u64(req, idx, &v, "count"), "-1099511627776 is negative");
	DEC_FAIL("u64: 2^64", enc_big(x, 0, two64, 9), nfp_dec_u64(req, idx, &v, "count"),
		 "count: integer does not fit in 64 bits");
	DEC_FAIL("u64: -2^64", enc_big(x, 1, two64, 9), nfp_dec_u64(req, idx, &v, "count"),
		 "count: integer does not fit in 64 bits");
	DEC_FAIL("u64: 2^152", enc_big(x, 0, huge, 20), nfp_dec_u64(req, idx, &v, "count"),
		 "does not fit in 64 bits");
	DEC_FAIL("u64: a binary", ei_x_encode_binary(x, "1", 1), nfp_dec_u64(req, idx, &v, "count"),
		 "count: expected an integer, got a binary");
	DEC_FAIL("u64: a float", ei_x_encode_double(x, 1.0), nfp_dec_u64(req, idx, &v, "count"),
		 "expected an integer, got a float");
	DEC_FAIL("u64: an atom", ei_x_encode_atom(x, "one"), nfp_dec_u64(req, idx, &v, "count"),
		 "expected an integer, got an atom");
	DEC_FAIL("u64: a list", (ei_x_encode_list_header(x, 1), ei_x_encode_atom(x, "a"),
				 ei_x_encode_empty_list(x)),
		 nfp_dec_u64(req, idx, &v, "count"), "expected an integer, got a list");
	DEC_FAIL("u64: a map", ei_x_encode_map_header(x, 0), nfp_dec_u64(req, idx, &v, "count"),
		 "expected an integer, got a map");
}

static void test_dec_s64(void)
{
	static const unsigned char two63[8] = { 0, 0, 0, 0, 0, 0, 0, 0x80 };
	static const unsigned char two64[9] = { 0, 0, 0, 0, 0, 0, 0, 0, 1 };
	int64_t v = 0;

	DEC_OK("s64: -5", ei_x_encode_long(x, -5), nfp_dec_s64(req, idx, &v, "n"), v == -5);
	DEC_OK("s64: INT64_MIN", ei_x_encode_longlong(x, INT64_MIN), nfp_dec_s64(req, idx, &v, "n"),
	       v == INT64_MIN);
	DEC_OK("s64: INT64_MAX", ei_x_encode_longlong(x, INT64_MAX), nfp_dec_s64(req, idx, &v, "n"),
	       v == INT64_MAX);
	DEC_FAIL("s64: 2^63", enc_big(x, 0, two63, 8), nfp_dec_s64(req, idx, &v, "prio"),
		 "prio: integer does not fit in 64 bits");
	DEC_FAIL("s64: -2^64", enc_big(x, 1, two64, 9), nfp_dec_s64(req, idx, &v, "prio"),
		 "prio: integer does not fit in 64 bits");
	DEC_FAIL("s64: a binary", ei_x_encode_binary(x, "", 0), nfp_dec_s64(req, idx, &v, "prio"),
		 "prio: expected an integer, got a binary");
	DEC_FAIL("s64: an empty list", ei_x_encode_empty_list(x), nfp_dec_s64(req, idx, &v, "prio"),
		 "prio: expected an integer, got an empty list");
}

static void test_dec_bool(void)
{
	bool v = false;

	DEC_OK("bool: true", ei_x_encode_atom(x, "true"), nfp_dec_bool(req, idx, &v, "echo"), v);
	DEC_OK("bool: false", ei_x_encode_atom(x, "false"), nfp_dec_bool(req, idx, &v, "echo"), !v);
	DEC_FAIL("bool: :maybe", ei_x_encode_atom(x, "maybe"), nfp_dec_bool(req, idx, &v, "echo"),
		 "echo: expected true or false, got :maybe");
	DEC_FAIL("bool: 1", ei_x_encode_long(x, 1), nfp_dec_bool(req, idx, &v, "echo"),
		 "echo: expected an atom, got an integer");
}

static void test_dec_bin(void)
{
	const char *p = NULL;
	uint32_t len = 99;

	DEC_OK("bin: decodes", ei_x_encode_binary(x, "a\0b", 3),
	       nfp_dec_bin(req, idx, &p, &len, "name"),
	       len == 3 && memcmp(p, "a\0b", 3) == 0 && d_.idx == d_.x.index);
	DEC_OK("bin: empty", ei_x_encode_binary(x, "", 0), nfp_dec_bin(req, idx, &p, &len, "name"),
	       len == 0 && d_.idx == d_.x.index);
	DEC_FAIL("bin: an integer", ei_x_encode_long(x, 3), nfp_dec_bin(req, idx, &p, &len, "name"),
		 "name: expected a binary, got an integer");
	DEC_FAIL("bin: a charlist", ei_x_encode_string(x, "abc"),
		 nfp_dec_bin(req, idx, &p, &len, "name"), "name: expected a binary, got a charlist");
	DEC_FAIL("bin: a bitstring", ei_x_encode_bitstring(x, "\xff\x80", 0, 9),
		 nfp_dec_bin(req, idx, &p, &len, "name"), "name: expected a binary, got a bitstring");
	DEC_FAIL("bin: an atom", ei_x_encode_atom(x, "abc"), nfp_dec_bin(req, idx, &p, &len, "name"),
		 "name: expected a binary, got an atom");
}

/* A one-element list, its element skipped, then its end. */
static int dec_list_one_end(struct nfp_req *req, int *idx, const char *what)
{
	int n;

	if (nfp_dec_list(req, idx, &n, what) < 0 || n != 1)
		return -2;
	nfp_etf_skip(req->buf, idx);
	return nfp_dec_list_end(req, idx, what);
}

static void test_dec_list(void)
{
	int n = -1;

	DEC_OK("list: []", ei_x_encode_empty_list(x), nfp_dec_list(req, idx, &n, "args"),
	       n == 0 && d_.idx == d_.x.index);
	DEC_OK("list: [a, b] and its end",
	       (ei_x_encode_list_header(x, 2), ei_x_encode_atom(x, "a"), ei_x_encode_atom(x, "b"),
		ei_x_encode_empty_list(x)),
	       (nfp_dec_list(req, idx, &n, "args") || n != 2 ||
		(nfp_etf_skip(req->buf, idx), nfp_etf_skip(req->buf, idx), 0) ||
		nfp_dec_list_end(req, idx, "args")),
	       n == 2 && d_.idx == d_.x.index);
	DEC_FAIL("list: a charlist", ei_x_encode_string(x, "ab"), nfp_dec_list(req, idx, &n, "args"),
		 "args: expected a list of terms, got a list of small integers");
	DEC_FAIL("list: a tuple", ei_x_encode_tuple_header(x, 0), nfp_dec_list(req, idx, &n, "args"),
		 "args: expected a list, got a tuple");
	DEC_FAIL("list: a map", ei_x_encode_map_header(x, 0), nfp_dec_list(req, idx, &n, "args"),
		 "args: expected a list, got a map");
	DEC_FAIL("list: a binary", ei_x_encode_binary(x, "", 0), nfp_dec_list(req, idx, &n, "args"),
		 "args: expected a list, got a binary");

	/* [a | b]: the tail is an atom. */
	DEC_FAIL("list_end: improper list [a | b]",
		 (ei_x_encode_list_header(x, 1), ei_x_encode_atom(x, "a"), ei_x_encode_atom(x, "b")),
		 dec_list_one_end(req, idx, "args"),
		 "args: improper list (the tail is an atom)");
	DEC_FAIL("list_end: improper list [a | <<>>]",
		 (ei_x_encode_list_header(x, 1), ei_x_encode_atom(x, "a"), ei_x_encode_binary(x, "", 0)),
		 dec_list_one_end(req, idx, "exprs"),
		 "exprs: improper list (the tail is a binary)");
}

static void test_dec_map(void)
{
	int n = -1;

	DEC_OK("map: %{}", ei_x_encode_map_header(x, 0), nfp_dec_map(req, idx, &n, "attrs"), n == 0);
	DEC_OK("map: two pairs",
	       (ei_x_encode_map_header(x, 2), ei_x_encode_atom(x, "a"), ei_x_encode_long(x, 1),
		ei_x_encode_atom(x, "b"), ei_x_encode_long(x, 2)),
	       nfp_dec_map(req, idx, &n, "attrs"), n == 2);
	DEC_FAIL("map: a list", ei_x_encode_empty_list(x), nfp_dec_map(req, idx, &n, "attrs"),
		 "attrs: expected a map, got an empty list");
	DEC_FAIL("map: a keyword list",
		 (ei_x_encode_list_header(x, 1), ei_x_encode_tuple_header(x, 2),
		  ei_x_encode_atom(x, "a"), ei_x_encode_long(x, 1), ei_x_encode_empty_list(x)),
		 nfp_dec_map(req, idx, &n, "attrs"), "attrs: expected a map, got a list");
	DEC_FAIL("map: an integer", ei_x_encode_long(x, 1), nfp_dec_map(req, idx, &n, "opts"),
		 "opts: expected a map, got an integer");
}

static void test_dec_tuple(void)
{
	DEC_OK("tuple: {a, b, c}",
	       (ei_x_encode_tuple_header(x, 3), ei_x_encode_atom(x, "a"), ei_x_encode_atom(x, "b"),
		ei_x_encode_atom(x, "c")),
	       nfp_dec_tuple(req, idx, 3, "message"), d_.idx == 3);
	DEC_FAIL("tuple: wrong arity",
		 (ei_x_encode_tuple_header(x, 2), ei_x_encode_atom(x, "a"), ei_x_encode_atom(x, "b")),
		 nfp_dec_tuple(req, idx, 3, "message 0"), "message 0: expected a 3-tuple, got a 2-tuple");
	DEC_FAIL("tuple: empty tuple", ei_x_encode_tuple_header(x, 0),
		 nfp_dec_tuple(req, idx, 2, "expr"), "expr: expected a 2-tuple, got a 0-tuple");
	DEC_FAIL("tuple: not a tuple", ei_x_encode_atom(x, "a"), nfp_dec_tuple(req, idx, 3, "message"),
		 "message: expected a tuple, got an atom");
	DEC_FAIL("tuple: a list", ei_x_encode_empty_list(x), nfp_dec_tuple(req, idx, 3, "message"),
		 "message: expected a tuple, got an empty list");
}

/* The first failure wins: a later one does not overwrite it. */
static void test_first_error_wins(void)
{
	struct nfp_req req;

	memset(&req, 0, sizeof(req));
	nfp_fail(&req, "first %d", 1);
	nfp_fail(&req, "second");
	CHECK_STR(req.err, "first 1", "nfp_fail keeps the first error");
	CHECK_INT(nfp_fail_atom(&req, "x"), -1, "nfp_fail_atom returns -1");
	CHECK(req.err_atom == NULL, "nfp_fail_atom after nfp_fail keeps the message");
}

/* --- type names and list encoding ----------------------------------------- */

static void test_type_names(void)
{
	ei_x_buff x;

	x_init(&x);
	ei_x_encode_tuple_header(&x, 6);
	ei_x_encode_long(&x, 1);
	ei_x_encode_ulonglong(&x, UINT64_MAX);
	ei_x_encode_double(&x, 0.5);
	ei_x_encode_binary(&x, "", 0);
	ei_x_encode_map_header(&x, 0);
	ei_x_encode_string(&x, "s");
	{
		int i = 1, n;
		const char *want[] = { "an integer", "a big integer", "a float", "a binary", "a map",
				       "a charlist" };

		CHECK_STR(nfp_etf_type_name(x.buff, 1), "a tuple", "type name of a tuple");
		ei_decode_tuple_header(x.buff, &i, &n);
		for (int k = 0; k < n; k++) {
			CHECK_STR(nfp_etf_type_name(x.buff, i), want[k], "type name");
			ei_skip_term(x.buff, &i);
		}
	}
	ei_x_free(&x);
}

static void test_list_encoding(void)
{
	ei_x_buff x;
	int at, i, n, type, size;
	long v;

	ei_x_new(&x);
	at = nfp_enc_list_open(&x);
	nfp_enc_list_close(&x, at, 0);
	i = 0;
	ei_get_type(x.buff, &i, &type, &size);
	CHECK(type == ERL_NIL_EXT && x.index == 1, "an empty open/close list is NIL");

	x.index = 0;
	at = nfp_enc_list_open(&x);
	for (long k = 0; k < 300; k++)
		ei_x_encode_long(&x, k);
	nfp_enc_list_close(&x, at, 300);
	i = 0;
	CHECK(ei_decode_list_header(x.buff, &i, &n) == 0 && n == 300,
	      "open/close list: the count is patched in");
	for (long k = 0; k < 300; k++)
		if (ei_decode_long(x.buff, &i, &v) < 0 || v != k)
			break;
	CHECK(ei_decode_list_header(x.buff, &i, &n) == 0 && n == 0 && i == x.index,
	      "open/close list: elements then NIL tail");
	ei_x_free(&x);
}

int main(void)
{
	ei_init();
	test_validate_accepts();
	test_validate_truncation();
	test_validate_lengths();
	test_validate_depth();
	test_validate_tags();
	test_dec_atom();
	test_dec_u64();
	test_dec_s64();
	test_dec_bool();
	test_dec_bin();
	test_dec_list();
	test_dec_map();
	test_dec_tuple();
	test_first_error_wins();
	test_type_names();
	test_list_encoding();
	return check_done();
}
