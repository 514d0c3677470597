// SPDX-License-Identifier: GPL-2.0-or-later
/* The attribute engine, see attr.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attr.h"
#include "backend.h"
#include "etf.h"

#define NFP_STR_MAX 1024	/* longest string attribute + NUL */
#define NFP_STRLIST_MAX 256	/* most strings in one strlist */

void nfp_target_obj(struct nfp_target *t, const struct nfp_obj *obj, void *o)
{
	t->o = o;
	t->owner = obj->name;
	t->attrs = obj->attrs;
	t->nattrs = obj->nattrs;
	t->be = obj->backend;
}

void nfp_target_expr(struct nfp_target *t, const struct nfp_expr *e, void *o)
{
	t->o = o;
	t->owner = e->name;
	t->attrs = e->attrs;
	t->nattrs = e->nattrs;
	t->be = &nfp_backend_expr;
}

bool nfp_attr_shown(const struct nfp_attr *a, const struct nfp_target *t)
{
	static const char zero[8];
	uint32_t len = 0;
	const void *p;

	if (!t->be->is_set(t->o, a->id))
		return false;
	if (!(a->flags & NFP_A_OMIT_ZERO) || a->wire > NFP_W_S32)
		return true;
	p = t->be->get(t->o, a->id, &len);
	if (!p)
		return false;
	if (len == 0 || len > sizeof(zero))
		len = a->wire == NFP_W_U64 ? 8 : a->wire == NFP_W_U16 ? 2 : a->wire == NFP_W_U8 ? 1 : 4;
	return memcmp(p, zero, len) != 0;
}

void nfp_attr_unset(const struct nfp_backend *be, void *o, const struct nfp_attr *a)
{
	void *forgotten = NULL;
	uint32_t len;

	/* libnftnl 1.2.4 clears the flag of some buffers without freeing them
	 * (a table's userdata): take the pointer first, free it after. */
	if ((a->flags & NFP_A_UNSET_FREES) && be->is_set(o, a->id))
		forgotten = (void *)be->get(o, a->id, &len);
	be->unset(o, a->id);
	free(forgotten);
}

void nfp_attr_names(const struct nfp_attr *attrs, uint16_t n, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (uint16_t i = 0; i < n && off < len; i++)
		off += snprintf(buf + off, len - off, "%s%s", i ? ", " : "", attrs[i].name);
}

/* The enum that applies to a, given the selector attribute's value. */
static const struct nfp_enum *attr_enum(const struct nfp_attr *a,
					const struct nfp_target *t)
{
	const struct nfp_enum_sel *sel = a->sel;
	uint32_t len, v;
	const void *p;

	if (!sel || !t->be->is_set(t->o, sel->attr))
		return a->enm;
	p = t->be->get(t->o, sel->attr, &len);
	if (!p || len < sizeof(v))
		return a->enm;
	memcpy(&v, p, sizeof(v));
	for (uint16_t i = 0; i < sel->n; i++)
		if (sel->values[i] == (int64_t)v)
			return sel->enums[i];
	return a->enm;
}

static void enum_names(const struct nfp_enum *e, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (uint16_t i = 0; i < e->n && off < len; i++)
		off += snprintf(buf + off, len - off, "%s:%s", i ? ", " : "", e->entries[i].name);
}

static int decode_enum_atom(struct nfp_req *req, int *idx, const struct nfp_enum *e,
			    int64_t *v, const char *what)
{
	char atom[NFP_ATOM_MAX], names[512];
	const struct nfp_enum_entry *ent;

	if (nfp_dec_atom(req, idx, atom, what) < 0)
		return -1;
	ent = nfp_enum_by_name(e, atom);
	if (!ent) {
		enum_names(e, names, sizeof(names));
		return nfp_fail(req, "%s: :%s is not a value of enum %s (known: %s)",
				what, atom, e->name, names);
	}
	*v = ent->value;
	return 0;
}

/* Flags: a list of atoms and integers, or one integer. */
static int decode_flags(struct nfp_req *req, int *idx, const struct nfp_enum *e,
			uint64_t *v, const char *what)
{
	int n;

	if (!nfp_is_atom(req->buf, *idx)) {
		int type, size, i = *idx;

		ei_get_type(req->buf, &i, &type, &size);
		if (type != ERL_LIST_EXT && type != ERL_NIL_EXT)
			return nfp_dec_u64(req, idx, v, what);
	}
	if (nfp_dec_list(req, idx, &n, what) < 0)
		return -1;
	*v = 0;
	for (int i = 0; i < n; i++) {
		int64_t bit;
		uint64_t u;

		if (nfp_is_atom(req->buf, *idx)) {
			if (decode_enum_atom(req, idx, e, &bit, what) < 0)
				return -1;
			*v |= (uint64_t)bit;
		} else {
			if (nfp_dec_u64(req, idx, &u, what) < 0)
				return -1;
			*v |= u;
		}
	}
	return n ? nfp_dec_list_end(req, idx, what) : 0;
}

static bool requires_ok(const struct nfp_requires *r, int64_t v)
{
	for (uint16_t i = 0; i < r->n; i++)
		if ((int32_t)r->values[i] == (int32_t)v)
			return true;
	return false;
}

static void requires_names(const struct nfp_attr *sel, const struct nfp_requires *r,
			   char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (uint16_t i = 0; i < r->n && off < len; i++) {
		const struct nfp_enum_entry *e = sel && sel->enm ? nfp_enum_by_value(sel->enm, r->values[i]) : NULL;

		off += snprintf(buf + off, len - off, "%s%s%s", i ? " or " : "", e ? ":" : "",
				e ? e->name : "?");
	}
}

/* Storage libnftnl shares between attributes (a union): one side only. */
static int check_exclusive(struct nfp_req *req, const struct nfp_attr *a,
			   const struct nfp_target *t, const char *what)
{
	for (uint8_t i = 0; i < a->nexcl; i++) {
		const struct nfp_attr *x;

		if (!t->be->is_set(t->o, a->excl[i]))
			continue;
		x = nfp_attr_by_id(t->attrs, t->nattrs, a->excl[i]);
		return nfp_fail(req, "%s: cannot be set together with :%s (libnftnl keeps them in the same storage)",
				what, x ? x->name : "?");
	}
	return 0;
}

/* a needs another attribute to hold one of some values: libnftnl frees a
 * (a jump's chain) only then. Absent, it is set to the first value. */
static int check_requires(struct nfp_req *req, const struct nfp_attr *a,
			  const struct nfp_target *t, const char *what)
{
	const struct nfp_requires *r = a->requires;
	const struct nfp_attr *sel;
	char names[128];
	uint32_t len;
	int32_t v;
	const void *p;

	if (!r)
		return 0;
	sel = nfp_attr_by_id(t->attrs, t->nattrs, r->attr);
	if (!t->be->is_set(t->o, r->attr)) {
		v = (int32_t)r->values[0];
		if (t->be->set(t->o, r->attr, &v, sizeof(v)) < 0)
			return nfp_fail(req, "%s: rejected by libnftnl", what);
		return 0;
	}
	p = t->be->get(t->o, r->attr, &len);
	if (p && len >= sizeof(v)) {
		memcpy(&v, p, sizeof(v));
		if (requires_ok(r, v))
			return 0;
	}
	requires_names(sel, r, names, sizeof(names));
	return nfp_fail(req, "%s: needs :%s to be %s", what, sel ? sel->name : "?", names);
}

/* The other way round: a new value of a selector that a set attribute
 * requires to stay within its values. */
static int check_required_by(struct nfp_req *req, const struct nfp_attr *a,
			     const struct nfp_target *t, int64_t v, const char *what)
{
	char names[128];

	for (uint16_t i = 0; i < t->nattrs; i++) {
		const struct nfp_attr *x = &t->attrs[i];

		if (!x->requires || x->requires->attr != a->id || !t->be->is_set(t->o, x->id) ||
		    requires_ok(x->requires, v))
			continue;
		requires_names(a, x->requires, names, sizeof(names));
		return nfp_fail(req, "%s: must be %s while :%s is set", what, names, x->name);
	}
	return 0;
}

static int decode_int(struct nfp_req *req, int *idx, const struct nfp_attr *a,
		      const struct nfp_target *t, const char *what, uint8_t buf[8],
		      uint32_t *len)
{
	static const uint64_t umax[] = {
		[NFP_W_U8] = UINT8_MAX, [NFP_W_U16] = UINT16_MAX,
		[NFP_W_U32] = UINT32_MAX, [NFP_W_U64] = UINT64_MAX,
	};
	static const char *const tname[] = {
		[NFP_W_U8] = "u8", [NFP_W_U16] = "u16", [NFP_W_U32] = "u32",
		[NFP_W_U64] = "u64", [NFP_W_S32] = "s32",
	};
	const struct nfp_enum *e = attr_enum(a, t);
	int64_t s = 0;
	uint64_t u = 0;

	if (e && e->flags) {
		if (decode_flags(req, idx, e, &u, what) < 0)
			return -1;
	} else if (e && nfp_is_atom(req->buf, *idx)) {
		if (decode_enum_atom(req, idx, e, &s, what) < 0)
			return -1;
		u = (uint64_t)s;
		/* Enum values of unsigned attributes are stored as their bits
		 * (NF_DROP is 0; NFT_JUMP is -3 in an s32). */
		if (a->wire != NFP_W_S32)
			u &= umax[a->wire];
	} else if (a->wire == NFP_W_S32) {
		if (nfp_dec_s64(req, idx, &s, what) < 0)
			return -1;
		if (s < INT32_MIN || s > INT32_MAX)
			return nfp_fail(req, "%s: %lld is out of range for s32", what, (long long)s);
	} else {
		if (nfp_dec_u64(req, idx, &u, what) < 0)
			return -1;
	}
	if (a->wire != NFP_W_S32 && u > umax[a->wire])
		return nfp_fail(req, "%s: %llu is out of range for %s (at most %llu)", what,
				(unsigned long long)u, tname[a->wire],
				(unsigned long long)umax[a->wire]);
	if (check_required_by(req, a, t, a->wire == NFP_W_S32 ? s : (int64_t)u, what) < 0)
		return -1;
	switch (a->wire) {
	case NFP_W_U8: { uint8_t v = (uint8_t)u; memcpy(buf, &v, 1); *len = 1; break; }
	case NFP_W_U16: { uint16_t v = (uint16_t)u; memcpy(buf, &v, 2); *len = 2; break; }
	case NFP_W_U32: { uint32_t v = (uint32_t)u; memcpy(buf, &v, 4); *len = 4; break; }
	case NFP_W_U64: memcpy(buf, &u, 8); *len = 8; break;
	case NFP_W_S32: { int32_t v = (int32_t)s; memcpy(buf, &v, 4); *len = 4; break; }
	}
	return 0;
}

static int check_string(struct nfp_req *req, const char *p, uint32_t len,
			const struct nfp_attr *a, const char *what)
{
	if (len > a->max_len || len >= NFP_STR_MAX)
		return nfp_fail(req, "%s: %u bytes is longer than the limit of %u", what,
				len, a->max_len);
	if (memchr(p, '\0', len))
		return nfp_fail(req, "%s: string contains a NUL byte", what);
	return 0;
}

static int decode_strlist(struct nfp_req *req, int *idx, const struct nfp_attr *a,
			  const struct nfp_target *t, const char *what)
{
	const char *vec[NFP_STRLIST_MAX + 1];
	char *copies[NFP_STRLIST_MAX];
	int n, ret = -1, got = 0;

	if (nfp_dec_list(req, idx, &n, what) < 0)
		return -1;
	if (n > NFP_STRLIST_MAX)
		return nfp_fail(req, "%s: %d strings, at most %d", what, n, NFP_STRLIST_MAX);
	for (int i = 0; i < n; i++) {
		const char *p;
		uint32_t len;

		if (nfp_dec_bin(req, idx, &p, &len, what) < 0 ||
		    check_string(req, p, len, a, what) < 0)
			goto out;
		copies[got] = strndup(p, len);
		if (!copies[got])
			goto out;
		vec[got] = copies[got];
		got++;
	}
	if (n && nfp_dec_list_end(req, idx, what) < 0)
		goto out;
	vec[got] = NULL;
	if (t->be->set(t->o, a->id, vec, 0) < 0) {
		nfp_fail(req, "%s: rejected by libnftnl", what);
		goto out;
	}
	ret = 0;
out:
	for (int i = 0; i < got; i++)
		free(copies[i]);
	return ret;
}

int nfp_attr_decode(struct nfp_req *req, int *idx, const struct nfp_attr *a,
		    const struct nfp_target *t)
{
	char what[160];
	uint8_t num[8];
	uint32_t len;
	const char *p;

	/* The context of any error below; built once, without printf. */
	nfp_join(what, sizeof(what), "attribute :", a->name, " of ");
	nfp_join(what + strlen(what), sizeof(what) - strlen(what), t->owner, NULL, NULL);
	if ((a->flags & NFP_A_SET_ONCE) && t->be->is_set(t->o, a->id))
		return nfp_fail(req, "%s: is already set; unset it before setting another value",
				what);
	if (check_exclusive(req, a, t, what) < 0 || check_requires(req, a, t, what) < 0)
		return -1;
	switch (a->wire) {
	case NFP_W_U8:
	case NFP_W_U16:
	case NFP_W_U32:
	case NFP_W_U64:
	case NFP_W_S32:
		if (decode_int(req, idx, a, t, what, num, &len) < 0)
			return -1;
		if (t->be->set(t->o, a->id, num, len) < 0)
			return nfp_fail(req, "%s: rejected by libnftnl", what);
		return 0;
	case NFP_W_STRING: {
		char s[NFP_STR_MAX];

		if (nfp_dec_bin(req, idx, &p, &len, what) < 0 ||
		    check_string(req, p, len, a, what) < 0)
			return -1;
		memcpy(s, p, len);
		s[len] = '\0';
		if (t->be->set(t->o, a->id, s, len + 1) < 0)
			return nfp_fail(req, "%s: rejected by libnftnl", what);
		return 0;
	}
	case NFP_W_BINARY:
		if (nfp_dec_bin(req, idx, &p, &len, what) < 0)
			return -1;
		if (len > a->max_len)
			return nfp_fail(req, "%s: %u bytes is longer than the limit of %u",
					what, len, a->max_len);
		/* libnftnl copies the whole field whatever the length given. */
		if ((a->flags & NFP_A_EXACT_LEN) && len != a->max_len)
			return nfp_fail(req, "%s: %u bytes, expected exactly %u", what, len,
					a->max_len);
		if (a->flags & NFP_A_GIVE_BUFFER) {
			/* libnftnl takes this buffer over and frees it. */
			void *copy = malloc(len ? len : 1);

			if (!copy)
				return nfp_fail(req, "%s: out of memory", what);
			memcpy(copy, p, len);
			if (t->be->set(t->o, a->id, copy, len) < 0) {
				free(copy);
				return nfp_fail(req, "%s: rejected by libnftnl", what);
			}
			return 0;
		}
		if (t->be->set(t->o, a->id, len ? p : "", len) < 0)
			return nfp_fail(req, "%s: rejected by libnftnl", what);
		return 0;
	case NFP_W_STRLIST:
		return decode_strlist(req, idx, a, t, what);
	default:
		return nfp_fail(req, "%s: not a scalar attribute", what);
	}
}

static void encode_int(ei_x_buff *x, const struct nfp_attr *a,
		       const struct nfp_target *t, const void *p, uint32_t len)
{
	const struct nfp_enum *e = attr_enum(a, t);
	uint64_t u = 0;

	/* A backend that cannot tell the length: the attribute's width. */
	if (len == 0)
		len = 8;
	switch (a->wire) {
	case NFP_W_U8: { uint8_t v = 0; memcpy(&v, p, len < 1 ? len : 1); u = v; break; }
	case NFP_W_U16: { uint16_t v = 0; memcpy(&v, p, len < 2 ? len : 2); u = v; break; }
	case NFP_W_U32: { uint32_t v = 0; memcpy(&v, p, len < 4 ? len : 4); u = v; break; }
	case NFP_W_U64: memcpy(&u, p, len < 8 ? len : 8); break;
	case NFP_W_S32: { int32_t v = 0; memcpy(&v, p, len < 4 ? len : 4); u = (uint64_t)(int64_t)v; break; }
	}
	const int64_t s = (int64_t)u;

	if (e && e->flags) {
		uint64_t rest = u;
		uint32_t n = 0;
		int at = nfp_enc_list_open(x);

		for (uint16_t i = 0; i < e->n; i++) {
			uint64_t bit = (uint64_t)e->entries[i].value;

			if (bit && (rest & bit) == bit) {
				nfp_enc_atom(x, e->entries[i].name);
				rest &= ~bit;
				n++;
			}
		}
		if (rest) {
			nfp_enc_u64(x, rest);
			n++;
		}
		nfp_enc_list_close(x, at, n);
		return;
	}
	if (e) {
		/* Compare as the attribute's width: NF_DROP (0), NFT_JUMP (-3). */
		for (uint16_t i = 0; i < e->n; i++) {
			int64_t v = e->entries[i].value;
			bool match = a->wire == NFP_W_S32 ? v == s :
				     a->wire == NFP_W_U32 ? (uint32_t)v == (uint32_t)u :
				     a->wire == NFP_W_U16 ? (uint16_t)v == (uint16_t)u :
				     a->wire == NFP_W_U8 ? (uint8_t)v == (uint8_t)u :
				     (uint64_t)v == u;
			if (match) {
				nfp_enc_atom(x, e->entries[i].name);
				return;
			}
		}
	}
	if (a->wire == NFP_W_S32)
		nfp_enc_s64(x, s);
	else
		nfp_enc_u64(x, u);
}

void nfp_attr_encode(ei_x_buff *x, const struct nfp_attr *a,
		     const struct nfp_target *t)
{
	uint32_t len = 0;
	const void *p = t->be->get(t->o, a->id, &len);

	if (!p) {
		ei_x_encode_atom(x, "nil");
		return;
	}
	switch (a->wire) {
	case NFP_W_U8:
	case NFP_W_U16:
	case NFP_W_U32:
	case NFP_W_U64:
	case NFP_W_S32:
		encode_int(x, a, t, p, len);
		return;
	case NFP_W_STRING:
		/* Not len: libnftnl reports 4 for some strings (chain type). */
		nfp_enc_bin(x, p, strnlen(p, NFP_STR_MAX));
		return;
	case NFP_W_BINARY:
		nfp_enc_bin(x, p, len);
		return;
	case NFP_W_STRLIST: {
		const char *const *v = p;
		uint32_t n = 0;
		int at = nfp_enc_list_open(x);

		for (; v[n]; n++)
			nfp_enc_str(x, v[n]);
		nfp_enc_list_close(x, at, n);
		return;
	}
	default:
		ei_x_encode_atom(x, "nil");
	}
}
