// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * nfp_dispatch() end to end, without a kernel: request frames built with
 * ei, replies decoded with ei. No netlink socket is ever opened: this file
 * defines mnl_socket_open() itself (the executable's definition wins over
 * libmnl's), which fails with EPERM and counts the attempts.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <ei.h>

#include "check.h"
#include "dispatch.h"
#include "handles.h"
#include "ops.h"

/* --- no kernel ----------------------------------------------------------- */

struct mnl_socket;
static unsigned socket_attempts;

struct mnl_socket *mnl_socket_open(int bus);
struct mnl_socket *mnl_socket_open(int bus)
{
	(void)bus;
	socket_attempts++;
	errno = EPERM;
	return NULL;
}

/* --- requests and replies ------------------------------------------------ */

static ei_x_buff q;		/* the request being built */
static ei_x_buff out;		/* the last reply */
static uint64_t q_id, next_id = 1000;

enum rkind { R_BAD, R_OK, R_OK_VALUE, R_ERROR };

struct reply {
	bool anon;		/* {nil, _} */
	uint64_t id;
	enum rkind kind;
	int vtype;		/* ei type of the value or reason */
	uint64_t u;		/* the value, when an integer */
	char msg[4096];		/* binary value/reason, or the printed term */
	int val;		/* index of the value or reason in out.buff */
	char text[8192];	/* the whole reply, printed */
};

static struct reply R;

/* Starts {Id, Op, [ (nargs elements follow, then req_send()). */
static ei_x_buff *req_begin(const char *op, int nargs)
{
	ei_x_free(&q);
	ei_x_new_with_version(&q);
	q_id = next_id++;
	ei_x_encode_tuple_header(&q, 3);
	ei_x_encode_ulonglong(&q, q_id);
	ei_x_encode_atom(&q, op);
	if (nargs > 0)
		ei_x_encode_list_header(&q, nargs);
	return &q;
}

static void print_term(char *dst, size_t len, const char *buf, int idx)
{
	char *s = NULL;

	if (ei_s_print_term(&s, buf, &idx) < 0 || !s) {
		snprintf(dst, len, "(unprintable)");
	} else {
		snprintf(dst, len, "%s", s);
	}
	free(s);
}

static void parse_reply(void)
{
	int idx = 0, version, arity, type, size;
	char atom[MAXATOMLEN_UTF8];
	unsigned long long u;

	memset(&R, 0, sizeof(R));
	R.kind = R_BAD;
	if (ei_decode_version(out.buff, &idx, &version) < 0) {
		snprintf(R.text, sizeof(R.text), "(no version byte)");
		return;
	}
	print_term(R.text, sizeof(R.text), out.buff, idx);
	if (ei_decode_tuple_header(out.buff, &idx, &arity) < 0 || arity != 2)
		return;
	ei_get_type(out.buff, &idx, &type, &size);
	if (type == ERL_ATOM_EXT || type == ERL_SMALL_ATOM_UTF8_EXT || type == ERL_ATOM_UTF8_EXT ||
	    type == ERL_SMALL_ATOM_EXT) {
		if (ei_decode_atom(out.buff, &idx, atom) < 0 || strcmp(atom, "nil") != 0)
			return;
		R.anon = true;
	} else if (ei_decode_ulonglong(out.buff, &idx, &u) == 0) {
		R.id = u;
	} else {
		return;
	}
	ei_get_type(out.buff, &idx, &type, &size);
	if (type == ERL_ATOM_EXT || type == ERL_SMALL_ATOM_UTF8_EXT || type == ERL_ATOM_UTF8_EXT ||
	    type == ERL_SMALL_ATOM_EXT) {
		if (ei_decode_atom(out.buff, &idx, atom) == 0 && strcmp(atom, "ok") == 0 &&
		    idx == out.index)
			R.kind = R_OK;
		return;
	}
	if (ei_decode_tuple_header(out.buff, &idx, &arity) < 0 || arity != 2 ||
	    ei_decode_atom(out.buff, &idx, atom) < 0)
		return;
	R.val = idx;
	ei_get_type(out.buff, &idx, &type, &size);
	R.vtype = type;
	if (type == ERL_MAP_EXT && strcmp(atom, "error") == 0) {
		/* An error map: its message is what the checks read. */
		int i = idx, n;
		char key[MAXATOMLEN_UTF8];

		ei_decode_map_header(out.buff, &i, &n);
		for (int k = 0; k < n; k++) {
			if (ei_decode_atom(out.buff, &i, key) < 0)
				break;
			ei_get_type(out.buff, &i, &type, &size);
			if (strcmp(key, "message") == 0 && type == ERL_BINARY_EXT &&
			    (size_t)size < sizeof(R.msg)) {
				long len;

				ei_decode_binary(out.buff, &i, R.msg, &len);
				R.msg[len] = '\0';
				R.vtype = ERL_BINARY_EXT;
				size_t tl = strlen(R.text);

				snprintf(R.text + tl, sizeof(R.text) - tl, "  [message: \"%.2000s\"]", R.msg);
				break;
			}
			ei_skip_term(out.buff, &i);
		}
		ei_skip_term(out.buff, &idx);
		if (idx == out.index)
			R.kind = R_ERROR;
		return;
	}
	if (type == ERL_BINARY_EXT && (size_t)size < sizeof(R.msg)) {
		long len;

		ei_decode_binary(out.buff, &idx, R.msg, &len);
		R.msg[len] = '\0';
	} else {
		int i = idx;

		print_term(R.msg, sizeof(R.msg), out.buff, idx);
		if (ei_decode_ulonglong(out.buff, &i, &u) == 0)
			R.u = u;
		ei_skip_term(out.buff, &idx);
	}
	if (R.vtype == ERL_BINARY_EXT) {
		size_t tl = strlen(R.text);

		snprintf(R.text + tl, sizeof(R.text) - tl, "  [reason: \"%.2000s\"]", R.msg);
	}
	if (idx != out.index)
		return;	/* bytes after the reply */
	if (strcmp(atom, "ok") == 0)
		R.kind = R_OK_VALUE;
	else if (strcmp(atom, "error") == 0)
		R.kind = R_ERROR;
}

/* Dispatches a frame from an exact-size copy (ASan sees over-reads). */
static struct reply *dispatch_raw(const char *frame, size_t len)
{
	char *copy = malloc(len ? len : 1);

	memcpy(copy, frame, len);
	nfp_dispatch(copy, len, &out);
	free(copy);
	parse_reply();
	return &R;
}

/* Closes the argument list and dispatches. */
static struct reply *req_send(void)
{
	ei_x_encode_empty_list(&q);
	return dispatch_raw(q.buff, (size_t)q.index);
}

#define EXPECT_OK(label) check_impl(R.kind == R_OK && !R.anon && R.id == q_id, __FILE__, \
				    __LINE__, R.text, "%s -> ok", (label))
#define EXPECT_OK_VALUE(label) check_impl(R.kind == R_OK_VALUE && !R.anon && R.id == q_id, \
					  __FILE__, __LINE__, R.text, "%s -> {ok, _}", (label))
#define EXPECT_ERROR(label, needle)						\
	check_impl(R.kind == R_ERROR && !R.anon && R.id == q_id &&		\
		   R.vtype == ERL_BINARY_EXT && strstr(R.msg, (needle)),	\
		   __FILE__, __LINE__, R.text, "%s -> {error, \"...%s...\"}", (label), (needle))
#define EXPECT_ANON_ERROR(label, needle)					\
	check_impl(R.kind == R_ERROR && R.anon && R.vtype == ERL_BINARY_EXT &&	\
		   strstr(R.msg, (needle)), __FILE__, __LINE__, R.text,		\
		   "%s -> {nil, {error, \"...%s...\"}}", (label), (needle))

/* Shortcuts. */
static struct reply *call0(const char *op)
{
	req_begin(op, 0);
	return req_send();
}

static struct reply *call_h(const char *op, uint64_t h)
{
	req_begin(op, 1);
	ei_x_encode_ulonglong(&q, h);
	return req_send();
}

static uint64_t alloc(const char *op)
{
	call0(op);
	if (!EXPECT_OK_VALUE(op) || R.vtype == ERL_BINARY_EXT)
		return 0;
	return R.u;
}

static struct reply *set_bin(const char *op, uint64_t h, const char *attr, const char *p,
			     long len)
{
	req_begin(op, 3);
	ei_x_encode_ulonglong(&q, h);
	ei_x_encode_atom(&q, attr);
	ei_x_encode_binary(&q, p, len);
	return req_send();
}

static struct reply *set_u64(const char *op, uint64_t h, const char *attr, uint64_t v)
{
	req_begin(op, 3);
	ei_x_encode_ulonglong(&q, h);
	ei_x_encode_atom(&q, attr);
	ei_x_encode_ulonglong(&q, v);
	return req_send();
}

static struct reply *set_atom(const char *op, uint64_t h, const char *attr, const char *a)
{
	req_begin(op, 3);
	ei_x_encode_ulonglong(&q, h);
	ei_x_encode_atom(&q, attr);
	ei_x_encode_atom(&q, a);
	return req_send();
}

static struct reply *get(const char *op, uint64_t h, const char *attr)
{
	req_begin(op, 2);
	ei_x_encode_ulonglong(&q, h);
	ei_x_encode_atom(&q, attr);
	return req_send();
}

/* --- the request envelope ------------------------------------------------ */

static void test_ping(void)
{
	int idx, arity;
	char a[MAXATOMLEN_UTF8];

	call0("ping");
	EXPECT_OK_VALUE("ping");
	idx = R.val;
	CHECK(ei_decode_atom(out.buff, &idx, a) == 0 && strcmp(a, "pong") == 0,
	      "ping -> {Id, {ok, pong}} (%s)", R.text);

	/* The id comes back as sent, up to 2^64-1. */
	{
		static const uint64_t ids[] = { 0, 1, 255, 256, 1ull << 31, 1ull << 32, UINT64_MAX };

		for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
			ei_x_free(&q);
			ei_x_new_with_version(&q);
			ei_x_encode_tuple_header(&q, 3);
			ei_x_encode_ulonglong(&q, ids[i]);
			ei_x_encode_atom(&q, "ping");
			ei_x_encode_empty_list(&q);
			dispatch_raw(q.buff, (size_t)q.index);
			CHECK(R.kind == R_OK_VALUE && !R.anon && R.id == ids[i],
			      "ping with id %llu answers with the same id (%s)",
			      (unsigned long long)ids[i], R.text);
		}
	}
	/* Reply buffer reuse: a second reply replaces the first. */
	idx = 0;
	call0("ping");
	CHECK(ei_decode_version(out.buff, &idx, &arity) == 0 && R.kind == R_OK_VALUE,
	      "a second reply is well-formed too");
}

static void test_unknown_op_and_arity(void)
{
	call0("no_such_op");
	EXPECT_ERROR("unknown op", "unknown op :no_such_op");

	req_begin("ping", 1);
	ei_x_encode_long(&q, 1);
	req_send();
	EXPECT_ERROR("ping with one argument", "ping: takes 0 arguments, got 1");

	req_begin("table_set", 2);
	ei_x_encode_long(&q, 1);
	ei_x_encode_atom(&q, "name");
	req_send();
	EXPECT_ERROR("table_set with two arguments", "table_set: takes 3 arguments, got 2");

	call0("table_free");
	EXPECT_ERROR("table_free with none", "takes 1 argument, got 0");

	/* Op not an atom, args not a list, improper args. */
	ei_x_free(&q);
	ei_x_new_with_version(&q);
	q_id = 7;
	ei_x_encode_tuple_header(&q, 3);
	ei_x_encode_long(&q, 7);
	ei_x_encode_binary(&q, "ping", 4);
	ei_x_encode_empty_list(&q);
	dispatch_raw(q.buff, (size_t)q.index);
	EXPECT_ERROR("op as a binary", "op: expected an atom, got a binary");

	ei_x_free(&q);
	ei_x_new_with_version(&q);
	ei_x_encode_tuple_header(&q, 3);
	ei_x_encode_long(&q, 7);
	ei_x_encode_atom(&q, "ping");
	ei_x_encode_map_header(&q, 0);
	dispatch_raw(q.buff, (size_t)q.index);
	EXPECT_ERROR("args as a map", "arguments: expected a list, got a map");

	ei_x_free(&q);
	ei_x_new_with_version(&q);
	ei_x_encode_tuple_header(&q, 3);
	ei_x_encode_long(&q, 7);
	ei_x_encode_atom(&q, "table_free");
	ei_x_encode_list_header(&q, 1);
	ei_x_encode_long(&q, 70000);
	ei_x_encode_atom(&q, "tail");
	dispatch_raw(q.buff, (size_t)q.index);
	EXPECT_ERROR("improper argument list", "improper list");

	/* [5] as Erlang encodes it: a charlist. */
	ei_x_free(&q);
	ei_x_new_with_version(&q);
	ei_x_encode_tuple_header(&q, 3);
	ei_x_encode_long(&q, 7);
	ei_x_encode_atom(&q, "table_free");
	ei_x_encode_string(&q, "\x05");
	dispatch_raw(q.buff, (size_t)q.index);
	CHECK(R.kind == R_ERROR && R.id == 7, "table_free with args [5] as a charlist -> error (%s)",
	      R.text);
}

static void test_not_a_request(void)
{
	ei_x_buff x;
	static const unsigned char two64[] = { 0x6e, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 };

	dispatch_raw("", 0);
	EXPECT_ANON_ERROR("empty frame", "empty frame");

	dispatch_raw("\x68\x03\x61\x01\x64\x00\x04ping\x6a", 12);
	EXPECT_ANON_ERROR("no version byte", "no version byte");

	dispatch_raw("\x82\x68\x03\x61\x01\x64\x00\x04ping\x6a", 13);
	EXPECT_ANON_ERROR("version byte 130", "no version byte");

	dispatch_raw("\x83", 1);
	EXPECT_ANON_ERROR("version byte only", "malformed term");

	dispatch_raw("\x83\x64\x00\x04ping", 8);
	EXPECT_ANON_ERROR("an atom", "a request must be a 3-tuple {ReqId, Op, Args}, got an atom");

	dispatch_raw("\x83\x68\x02\x61\x01\x64\x00\x04ping", 12);
	EXPECT_ANON_ERROR("a 2-tuple", "3-tuple");

	dispatch_raw("\x83\x68\x04\x61\x01\x64\x00\x04ping\x6a\x6a", 14);
	EXPECT_ANON_ERROR("a 4-tuple", "3-tuple");

	dispatch_raw("\x83\x6c\x00\x00\x00\x01\x61\x01\x6a", 9);
	EXPECT_ANON_ERROR("a list", "got a list");

#define BAD_ID(label, enc, needle)						\
	do {									\
		ei_x_new_with_version(&x);					\
		ei_x_encode_tuple_header(&x, 3);				\
		enc;								\
		ei_x_encode_atom(&x, "ping");					\
		ei_x_encode_empty_list(&x);					\
		dispatch_raw(x.buff, (size_t)x.index);				\
		EXPECT_ANON_ERROR(label, needle);				\
		ei_x_free(&x);							\
	} while (0)

	BAD_ID("id -1", ei_x_encode_long(&x, -1), "request id must be an integer from 0 to 2^64-1");
	BAD_ID("id -2^40", ei_x_encode_longlong(&x, -(1ll << 40)), "request id");
	BAD_ID("id 1.0", ei_x_encode_double(&x, 1.0), "got a float");
	BAD_ID("id 2^64", ei_x_append_buf(&x, (const char *)two64, sizeof(two64)), "got a big integer");
	BAD_ID("id an atom", ei_x_encode_atom(&x, "one"), "got an atom");
	BAD_ID("id a binary", ei_x_encode_binary(&x, "1", 1), "got a binary");
#undef BAD_ID

	/* A whole request followed by one more byte. */
	req_begin("ping", 0);
	ei_x_encode_empty_list(&q);
	ei_x_append_buf(&q, "\x6a", 1);
	dispatch_raw(q.buff, (size_t)q.index);
	EXPECT_ANON_ERROR("trailing bytes", "bytes after the end of the term");

	/* Truncated: every cut of a real request gets an error: {nil, _}, or
	 * {Id, _} once the id itself is whole. */
	{
		int bad = 0;

		req_begin("table_set", 3);
		ei_x_encode_ulonglong(&q, 65537);
		ei_x_encode_atom(&q, "name");
		ei_x_encode_binary(&q, "filter", 6);
		ei_x_encode_empty_list(&q);
		for (int cut = 0; cut < q.index; cut++) {
			dispatch_raw(q.buff, (size_t)cut);
			bad += !(R.kind == R_ERROR && (R.anon || R.id == q_id));
		}
		CHECK_INT(bad, 0, "every truncation of a request -> {nil or Id, {error, _}}");
	}

	/* A pid in the arguments: rejected as a whole. */
	{
		erlang_pid pid;

		memset(&pid, 0, sizeof(pid));
		strcpy(pid.node, "a@b");
		req_begin("table_free", 1);
		ei_x_encode_pid(&q, &pid);
		req_send();
		/* The id is readable: the reply carries it. */
		EXPECT_ERROR("a pid argument", "unsupported term type");
	}

	/* Deep nesting. */
	req_begin("table_free", 1);
	for (int i = 0; i < 100; i++)
		ei_x_encode_tuple_header(&q, 1);
	ei_x_encode_long(&q, 1);
	req_send();
	EXPECT_ERROR("arguments nested 100 deep", "nested deeper");
}

/* --- handle ops -------------------------------------------------------- */

static void test_table_handles(void)
{
	char name[300];
	uint64_t t, c;

	t = alloc("table_alloc");
	CHECK(t != 0, "table_alloc -> {ok, H} with H = %llu", (unsigned long long)t);

	set_bin("table_set", t, "name", "t", 1);
	EXPECT_OK("table_set H name <<\"t\">>");
	get("table_get", t, "name");
	CHECK(R.kind == R_OK_VALUE && R.vtype == ERL_BINARY_EXT && strcmp(R.msg, "t") == 0,
	      "table_get H name -> {ok, <<\"t\">>} (%s)", R.text);

	set_atom("table_set", t, "family", "inet");
	EXPECT_OK("table_set H family inet");
	get("table_get", t, "family");
	CHECK(R.kind == R_OK_VALUE && strcmp(R.msg, "inet") == 0, "table_get H family -> {ok, inet} (%s)",
	      R.text);
	set_u64("table_set", t, "family", 2);
	EXPECT_OK("table_set H family 2 (an integer for an enum)");
	get("table_get", t, "family");
	CHECK(R.kind == R_OK_VALUE && strcmp(R.msg, "ip") == 0, "table_get H family -> {ok, ip} (%s)",
	      R.text);
	set_atom("table_set", t, "family", "inet");

	get("table_get", t, "flags");
	EXPECT_ERROR("table_get of an unset attribute", "attribute :flags of table is not set");

	set_bin("table_set", t, "nme", "t", 1);
	EXPECT_ERROR("unknown attribute", "unknown attribute :nme for table (known: ");
	CHECK_CONTAINS(R.msg, "name", "the unknown-attribute error lists the known ones");

	set_u64("table_set", t, "name", 5);
	EXPECT_ERROR("name as an integer", "attribute :name of table: expected a binary, got an integer");

	set_bin("table_set", t, "family", "inet", 4);
	EXPECT_ERROR("family as a binary", "attribute :family of table");

	set_u64("table_set", t, "family", 1ull << 40);
	EXPECT_ERROR("family 2^40", "1099511627776 is out of range for u32");

	set_u64("table_set", t, "handle", UINT64_MAX);
	EXPECT_OK("handle 2^64-1 fits a u64");

	req_begin("table_set", 3);
	ei_x_encode_ulonglong(&q, t);
	ei_x_encode_atom(&q, "family");
	ei_x_encode_long(&q, -1);
	req_send();
	EXPECT_ERROR("family -1", "-1 is negative");

	set_atom("table_set", t, "family", "bogus");
	EXPECT_ERROR("family :bogus", ":bogus is not a value of enum");
	CHECK_CONTAINS(R.msg, "inet", "the enum error lists the known values");

	set_bin("table_set", t, "name", "a\0b", 3);
	EXPECT_ERROR("name with a NUL byte", "string contains a NUL byte");

	memset(name, 'n', sizeof(name));
	set_bin("table_set", t, "name", name, 256);
	EXPECT_ERROR("name of 256 bytes", "256 bytes is longer than the limit of 255");
	set_bin("table_set", t, "name", name, 255);
	EXPECT_OK("name of 255 bytes");
	set_bin("table_set", t, "name", name, 0);
	EXPECT_OK("empty name");

	set_bin("table_set", t, "userdata", name, 257);
	EXPECT_ERROR("userdata of 257 bytes", "longer than the limit");
	set_bin("table_set", t, "userdata", "\0\1\0", 3);
	EXPECT_OK("binary userdata with NUL bytes");
	get("table_get", t, "userdata");
	CHECK(R.kind == R_OK_VALUE && R.vtype == ERL_BINARY_EXT, "table_get userdata (%s)", R.text);

	/* Flags: a list of atoms. */
	req_begin("table_set", 3);
	ei_x_encode_ulonglong(&q, t);
	ei_x_encode_atom(&q, "flags");
	ei_x_encode_list_header(&q, 1);
	ei_x_encode_atom(&q, "dormant");
	ei_x_encode_empty_list(&q);
	req_send();
	EXPECT_OK("table_set flags [dormant]");
	get("table_get", t, "flags");
	CHECK(R.kind == R_OK_VALUE && strstr(R.msg, "dormant"), "table_get flags -> [dormant] (%s)",
	      R.text);
	req_begin("table_set", 3);
	ei_x_encode_ulonglong(&q, t);
	ei_x_encode_atom(&q, "flags");
	ei_x_encode_list_header(&q, 1);
	ei_x_encode_atom(&q, "sleepy");
	ei_x_encode_empty_list(&q);
	req_send();
	EXPECT_ERROR("table_set flags [sleepy]", ":sleepy is not a value of enum");

	set_bin("table_set", t, "name", "t", 1);
	call_h("table_to_map", t);
	CHECK(R.kind == R_OK_VALUE && strstr(R.msg, "inet") && strstr(R.msg, "name"),
	      "table_to_map -> {ok, #{family => inet, name => <<\"t\">>, ...}} (%s)", R.text);

	req_begin("table_unset", 2);
	ei_x_encode_ulonglong(&q, t);
	ei_x_encode_atom(&q, "flags");
	req_send();
	EXPECT_OK("table_unset flags");
	get("table_get", t, "flags");
	EXPECT_ERROR("table_get after unset", "is not set");

	/* A handle of another object. */
	c = alloc("chain_alloc");
	set_bin("table_set", c, "name", "t", 1);
	EXPECT_ERROR("a chain handle passed to table_set", "is a chain, not a table");
	set_bin("chain_set", t, "name", "t", 1);
	EXPECT_ERROR("a table handle passed to chain_set", "is a table, not a chain");
	set_bin("chain_set", c, "name", "input", 5);
	EXPECT_OK("chain_set name");

	/* Handles that do not exist. */
	set_bin("table_set", 0, "name", "t", 1);
	EXPECT_ERROR("handle 0", "0 is not a live handle");
	set_bin("table_set", UINT64_MAX, "name", "t", 1);
	EXPECT_ERROR("handle 2^64-1", "is not a live handle");
	set_bin("table_set", t + 5000, "name", "t", 1);
	EXPECT_ERROR("a never-allocated slot", "is not a live handle");
	set_bin("table_set", t + (1u << 16), "name", "t", 1);
	EXPECT_ERROR("a live slot with another generation", "is not a live handle");
	req_begin("table_set", 3);
	ei_x_encode_atom(&q, "h");
	ei_x_encode_atom(&q, "name");
	ei_x_encode_binary(&q, "t", 1);
	req_send();
	EXPECT_ERROR("a handle as an atom", "handle: expected an integer, got an atom");

	/* Free, then use. */
	call_h("table_free", t);
	EXPECT_OK("table_free H");
	get("table_get", t, "name");
	EXPECT_ERROR("table_get after free", "is not a live handle");
	call_h("table_free", t);
	EXPECT_ERROR("double free", "is not a live handle");

	/* The slot is reused with a new generation; the old id stays dead. */
	{
		uint64_t t2 = alloc("table_alloc");

		CHECK(t2 != 0 && t2 != t, "a reused slot gets a new id (%llu, was %llu)",
		      (unsigned long long)t2, (unsigned long long)t);
		get("table_get", t, "name");
		EXPECT_ERROR("the old id after reuse", "is not a live handle");
		call_h("table_free", t2);
		EXPECT_OK("table_free the new one");
	}
	call_h("chain_free", c);
	EXPECT_OK("chain_free");
}

/* Looks up key `k` in the map at *idx; leaves *idx at its value. */
static bool map_find(const char *buf, int *idx, const char *k)
{
	char a[MAXATOMLEN_UTF8];
	int n;

	if (ei_decode_map_header(buf, idx, &n) < 0)
		return false;
	for (int i = 0; i < n; i++) {
		int at = *idx;

		if (ei_decode_atom(buf, idx, a) == 0 && strcmp(a, k) == 0)
			return true;
		*idx = at;
		ei_skip_term(buf, idx);
		ei_skip_term(buf, idx);
	}
	return false;
}

static void test_rule_exprs(void)
{
	uint64_t e, e2, r;
	int idx, n, arity;
	long v;
	char a[MAXATOMLEN_UTF8];
	bool ok;

	req_begin("expr_alloc", 1);
	ei_x_encode_atom(&q, "no_such_expr");
	req_send();
	EXPECT_ERROR("expr_alloc of an unknown kind", "unknown expression :no_such_expr");

	req_begin("expr_alloc", 1);
	ei_x_encode_atom(&q, "payload");
	req_send();
	EXPECT_OK_VALUE("expr_alloc payload");
	e = R.u;
	set_u64("expr_set", e, "dreg", 1);
	EXPECT_OK("expr_set E dreg 1");
	set_atom("expr_set", e, "base", "transport");
	EXPECT_OK("expr_set E base transport");
	set_atom("expr_set", e, "base", "nowhere");
	EXPECT_ERROR("expr_set E base nowhere", ":nowhere is not a value of enum");
	set_u64("expr_set", e, "verdict", 1);
	EXPECT_ERROR("expr_set E verdict", "unknown attribute :verdict for expression payload");
	get("expr_get", e, "dreg");
	CHECK(R.kind == R_OK_VALUE && R.u == 1, "expr_get E dreg -> {ok, 1} (%s)", R.text);
	get("expr_get", e, "len");
	EXPECT_ERROR("expr_get of an unset attribute", "not set");
	call_h("expr_to_map", e);
	CHECK(R.kind == R_OK_VALUE && strstr(R.msg, "payload") && strstr(R.msg, "transport"),
	      "expr_to_map E -> {ok, {payload, #{...}}} (%s)", R.text);
	req_begin("expr_unset", 2);
	ei_x_encode_ulonglong(&q, e);
	ei_x_encode_atom(&q, "base");
	req_send();
	EXPECT_OK("expr_unset E base");
	get("expr_get", e, "base");
	EXPECT_ERROR("expr_get after unset", "not set");
	get("expr_get", e, "dreg");
	CHECK(R.kind == R_OK_VALUE && R.u == 1, "expr_unset keeps the other attributes (%s)", R.text);

	r = alloc("rule_alloc");
	CHECK(r != 0, "rule_alloc -> {ok, H}");

	req_begin("rule_add_expr", 2);
	ei_x_encode_ulonglong(&q, e);
	ei_x_encode_ulonglong(&q, r);
	req_send();
	EXPECT_ERROR("rule_add_expr with the arguments swapped", "is an expression, not an object");

	req_begin("rule_add_expr", 2);
	ei_x_encode_ulonglong(&q, r);
	ei_x_encode_ulonglong(&q, e);
	req_send();
	EXPECT_OK("rule_add_expr R E");
	get("expr_get", e, "dreg");
	EXPECT_ERROR("the expression handle is released once the rule owns it", "is not a live handle");

	call_h("rule_to_map", r);
	EXPECT_OK_VALUE("rule_to_map R");
	idx = R.val;
	ok = map_find(out.buff, &idx, "exprs") &&
	     ei_decode_list_header(out.buff, &idx, &n) == 0 && n == 1 &&
	     ei_decode_tuple_header(out.buff, &idx, &arity) == 0 && arity == 2 &&
	     ei_decode_atom(out.buff, &idx, a) == 0 && strcmp(a, "payload") == 0 &&
	     map_find(out.buff, &idx, "dreg") && ei_decode_long(out.buff, &idx, &v) == 0 && v == 1;
	CHECK(ok, "rule_to_map shows exprs: [{payload, #{dreg => 1}}] (%s)", R.text);

	/* rule_set exprs appends a decoded list. */
	req_begin("rule_set", 3);
	ei_x_encode_ulonglong(&q, r);
	ei_x_encode_atom(&q, "exprs");
	ei_x_encode_list_header(&q, 1);
	ei_x_encode_tuple_header(&q, 2);
	ei_x_encode_atom(&q, "counter");
	ei_x_encode_map_header(&q, 0);
	ei_x_encode_empty_list(&q);
	req_send();
	EXPECT_OK("rule_set exprs [{counter, %{}}]");
	get("rule_get", r, "exprs");
	CHECK(R.kind == R_OK_VALUE && strstr(R.msg, "payload") && strstr(R.msg, "counter"),
	      "rule_get exprs -> both expressions (%s)", R.text);

	req_begin("rule_set", 3);
	ei_x_encode_ulonglong(&q, r);
	ei_x_encode_atom(&q, "exprs");
	ei_x_encode_list_header(&q, 1);
	ei_x_encode_tuple_header(&q, 2);
	ei_x_encode_atom(&q, "cmp");
	ei_x_encode_map_header(&q, 1);
	ei_x_encode_atom(&q, "op");
	ei_x_encode_atom(&q, "sideways");
	ei_x_encode_empty_list(&q);
	req_send();
	EXPECT_ERROR("rule_set exprs with a bad cmp op", ":sideways is not a value of enum");

	/* Expressions not added are the caller's to free. */
	req_begin("expr_alloc", 1);
	ei_x_encode_atom(&q, "cmp");
	req_send();
	e2 = R.u;
	call_h("expr_free", e2);
	EXPECT_OK("expr_free");
	call_h("expr_free", e2);
	EXPECT_ERROR("expr_free twice", "is not a live handle");

	call_h("rule_free", r);
	EXPECT_OK("rule_free R (with its expressions)");
}

static void test_batch(void)
{
	uint64_t b, t, c;

	b = alloc("batch_new");
	CHECK(b != 0, "batch_new -> {ok, B}");
	t = alloc("table_alloc");
	set_atom("table_set", t, "family", "inet");
	set_bin("table_set", t, "name", "t", 1);

	req_begin("batch_add", 4);
	ei_x_encode_ulonglong(&q, b);
	ei_x_encode_atom(&q, "add");
	ei_x_encode_atom(&q, "table");
	ei_x_encode_ulonglong(&q, t);
	req_send();
	CHECK(R.kind == R_OK_VALUE && R.u == 0, "batch_add B add table T -> {ok, 0} (%s)", R.text);

	req_begin("batch_add", 4);
	ei_x_encode_ulonglong(&q, b);
	ei_x_encode_atom(&q, "delete");
	ei_x_encode_atom(&q, "table");
	ei_x_encode_ulonglong(&q, t);
	req_send();
	CHECK(R.kind == R_OK_VALUE && R.u == 1, "batch_add B delete table T -> {ok, 1} (%s)", R.text);

	req_begin("batch_add", 4);
	ei_x_encode_ulonglong(&q, b);
	ei_x_encode_atom(&q, "frobnicate");
	ei_x_encode_atom(&q, "table");
	ei_x_encode_ulonglong(&q, t);
	req_send();
	EXPECT_ERROR("batch_add with an unknown verb", "unknown verb :frobnicate");

	req_begin("batch_add", 4);
	ei_x_encode_ulonglong(&q, b);
	ei_x_encode_atom(&q, "add");
	ei_x_encode_atom(&q, "tabel");
	ei_x_encode_ulonglong(&q, t);
	req_send();
	EXPECT_ERROR("batch_add with an unknown type", "unknown message type :tabel");

	c = alloc("chain_alloc");
	req_begin("batch_add", 4);
	ei_x_encode_ulonglong(&q, b);
	ei_x_encode_atom(&q, "add");
	ei_x_encode_atom(&q, "table");
	ei_x_encode_ulonglong(&q, c);
	req_send();
	EXPECT_ERROR("batch_add of a chain handle as a table", "a chain handle cannot make a table message");

	req_begin("batch_add", 4);
	ei_x_encode_ulonglong(&q, t);
	ei_x_encode_atom(&q, "add");
	ei_x_encode_atom(&q, "table");
	ei_x_encode_ulonglong(&q, t);
	req_send();
	EXPECT_ERROR("batch_add on a table handle", "is a table, not a batch");

	/* batch_send over something that is not a socket: no kernel. */
	req_begin("batch_send", 2);
	ei_x_encode_ulonglong(&q, b);
	ei_x_encode_ulonglong(&q, t);
	req_send();
	EXPECT_ERROR("batch_send with a table as the socket", "is a table, not a socket");
	call_h("socket_close", t);
	EXPECT_ERROR("socket_close of a table", "is a table, not a socket");

	call_h("batch_free", b);
	EXPECT_OK("batch_free B");
	call_h("batch_free", b);
	EXPECT_ERROR("batch_free twice", "is not a live handle");
	call_h("table_free", t);
	EXPECT_OK("the table outlives the batch");
	call_h("chain_free", c);
}

/* The declarative ops fail on bad input before they open a socket. */
static void test_declarative_errors(void)
{
	unsigned before = socket_attempts;

	req_begin("commit", 2);
	ei_x_encode_list_header(&q, 1);
	ei_x_encode_tuple_header(&q, 3);
	ei_x_encode_atom(&q, "add");
	ei_x_encode_atom(&q, "table");
	ei_x_encode_map_header(&q, 1);
	ei_x_encode_atom(&q, "nme");
	ei_x_encode_binary(&q, "t", 1);
	ei_x_encode_empty_list(&q);
	ei_x_encode_map_header(&q, 0);
	req_send();
	EXPECT_ERROR("commit with an unknown attribute", "message 0 (add table): unknown attribute :nme");

	req_begin("commit", 2);
	ei_x_encode_empty_list(&q);
	ei_x_encode_map_header(&q, 1);
	ei_x_encode_atom(&q, "bogus");
	ei_x_encode_atom(&q, "true");
	req_send();
	EXPECT_ERROR("commit with an unknown option", "unknown option :bogus");

	req_begin("commit", 2);
	ei_x_encode_list_header(&q, 1);
	ei_x_encode_tuple_header(&q, 3);
	ei_x_encode_atom(&q, "smash");
	ei_x_encode_atom(&q, "table");
	ei_x_encode_map_header(&q, 0);
	ei_x_encode_empty_list(&q);
	ei_x_encode_map_header(&q, 0);
	req_send();
	EXPECT_ERROR("commit with an unknown verb", "message 0: unknown verb :smash");

	req_begin("list", 2);
	ei_x_encode_atom(&q, "tables");
	ei_x_encode_map_header(&q, 0);
	req_send();
	EXPECT_ERROR("list :tables", "cannot list :tables");

	req_begin("list", 2);
	ei_x_encode_atom(&q, "chain");
	ei_x_encode_map_header(&q, 1);
	ei_x_encode_atom(&q, "policy");
	ei_x_encode_atom(&q, "accept");
	req_send();
	EXPECT_ERROR("list chain filtered by policy", "cannot filter chain by :policy");
	CHECK_INT(socket_attempts, before, "no socket was opened for bad input");

	/* A valid commit would reach the kernel: here the socket fails. */
	req_begin("commit", 2);
	ei_x_encode_list_header(&q, 1);
	ei_x_encode_tuple_header(&q, 3);
	ei_x_encode_atom(&q, "add");
	ei_x_encode_atom(&q, "table");
	ei_x_encode_map_header(&q, 2);
	ei_x_encode_atom(&q, "family");
	ei_x_encode_atom(&q, "inet");
	ei_x_encode_atom(&q, "name");
	ei_x_encode_binary(&q, "t", 1);
	ei_x_encode_empty_list(&q);
	ei_x_encode_map_header(&q, 0);
	req_send();
	EXPECT_ERROR("a valid commit without a socket", "Operation not permitted (EPERM)");
	CHECK_INT(socket_attempts, before + 1, "... after one socket attempt (the stub's)");
}

/* --- the handle table's limit ---------------------------------------------- */

static void test_handle_limit(void)
{
	uint32_t start = nfp_handle_count();
	uint32_t want = NFP_MAX_HANDLES - start;
	uint64_t *ids = calloc(want, sizeof(*ids));
	uint32_t got = 0, freed = 0;

	for (uint32_t i = 0; i < want; i++) {
		call0("table_alloc");
		if (R.kind != R_OK_VALUE)
			break;
		ids[got++] = R.u;
	}
	CHECK_INT(got, want, "allocating up to NFP_MAX_HANDLES works");
	CHECK_INT(nfp_handle_count(), NFP_MAX_HANDLES, "the table is full");
	call0("table_alloc");
	EXPECT_ERROR("one more table_alloc", "too many live handles (the limit is 65536)");
	call0("batch_new");
	EXPECT_ERROR("one more batch_new", "too many live handles");
	req_begin("expr_alloc", 1);
	ei_x_encode_atom(&q, "counter");
	req_send();
	EXPECT_ERROR("one more expr_alloc", "too many live handles");
	CHECK_INT(nfp_handle_count(), NFP_MAX_HANDLES, "a failed alloc leaves the count alone");

	/* Free one, alloc one: fits again. */
	call_h("table_free", ids[got / 2]);
	ids[got / 2] = alloc("table_alloc");
	CHECK(ids[got / 2] != 0, "after a free there is room for one more");

	for (uint32_t i = 0; i < got; i++) {
		call_h("table_free", ids[i]);
		freed += R.kind == R_OK;
	}
	CHECK_INT(freed, got, "every handle frees");
	CHECK_INT(nfp_handle_count(), start, "the count is back where it was");
	free(ids);
}

int main(void)
{
	ei_init();
	ei_x_new(&out);
	ei_x_new(&q);

	test_ping();
	test_unknown_op_and_arity();
	test_not_a_request();
	test_table_handles();
	test_rule_exprs();
	test_batch();
	test_declarative_errors();
	CHECK_INT(nfp_handle_count(), 0, "no handle leaked by the tests above");
	test_handle_limit();

	/* self_check reads /proc only. */
	call0("self_check");
	EXPECT_OK_VALUE("self_check");

	nfp_ops_cleanup();
	CHECK_INT(nfp_handle_count(), 0, "nfp_ops_cleanup leaves no handle");
	/* And the table works again after a cleanup. */
	{
		uint64_t t = alloc("table_alloc");

		call_h("table_free", t);
		EXPECT_OK("alloc and free after nfp_ops_cleanup");
	}
	nfp_ops_cleanup();
	ei_x_free(&q);
	ei_x_free(&out);
	return check_done();
}
