/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Descriptor tables: the shape of the generated tables that drive the
 * generic engine. The generator (gen/) fills them from the schema; the
 * engine (attr.c, obj.c, expr.c) walks them. Nothing here names a single
 * nftables attribute.
 */
#ifndef NFP_DESC_H
#define NFP_DESC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How an attribute's value travels: the C side of gen/nfpgen/types.py. */
enum nfp_wire {
	NFP_W_U8,
	NFP_W_U16,
	NFP_W_U32,
	NFP_W_U64,
	NFP_W_S32,
	NFP_W_STRING,	/* NUL-free binary, at most max_len bytes */
	NFP_W_BINARY,	/* raw bytes, at most max_len bytes */
	NFP_W_STRLIST,	/* list of strings (e.g. chain devices) */
	NFP_W_EXPRS,	/* list of {name, attrs}: a rule's expressions */
	NFP_W_OBJECTS,	/* list of attribute maps of another object */
};

/* Attribute flags. */
#define NFP_A_KEY	0x01	/* identifies the object */
#define NFP_A_READONLY	0x02	/* reported by the kernel; ignored on write */
#define NFP_A_HANDLE	0x04	/* kernel-assigned handle */
#define NFP_A_EXACT_LEN	0x08	/* BINARY of exactly max_len bytes */
#define NFP_A_TRANSIENT	0x10	/* names other objects' handles: not dumped */
#define NFP_A_AUTO_ID	0x20	/* u32 transaction id, assigned when absent */
#define NFP_A_OMIT_ZERO	0x40	/* reported as 0 by default, but refused when
				 * given: read as absent when 0 */
#define NFP_A_GIVE_BUFFER 0x80	/* libnftnl keeps (and frees) the pointer it
				 * is given: hand it a malloc'd copy */
#define NFP_A_UNSET_FREES 0x100	/* libnftnl's unset forgets the buffer
				 * without freeing it: the engine frees it */
#define NFP_A_SET_ONCE	0x200	/* libnftnl mishandles a second value (leaks
				 * or miscounts): refused while one is set */

struct nfp_enum_entry {
	const char *name;
	int64_t value;
};

struct nfp_enum {
	const char *name;
	bool flags;				/* a bit mask of entries */
	uint16_t n;
	const struct nfp_enum_entry *entries;	/* sorted by name */
};

/* An enum chosen by the value of another attribute (hook by family). */
struct nfp_enum_sel {
	uint16_t attr;				/* selector attribute id */
	uint16_t n;
	const int64_t *values;
	const struct nfp_enum *const *enums;
};

struct nfp_obj;

/* An attribute that needs another to hold one of some values. */
struct nfp_requires {
	uint16_t attr;
	uint16_t n;
	const int64_t *values;
};

struct nfp_attr {
	const char *name;
	uint16_t id;			/* the NFTNL_* constant */
	uint8_t wire;			/* enum nfp_wire */
	uint16_t flags;			/* NFP_A_* */
	uint32_t max_len;		/* STRING, BINARY, STRLIST items */
	const struct nfp_enum *enm;
	const struct nfp_enum_sel *sel;
	const struct nfp_obj *item;	/* NFP_W_OBJECTS: the item object */
	const uint16_t *excl;		/* attributes never set together with it */
	uint8_t nexcl;
	const struct nfp_requires *requires;
	/* The netlink type it travels as, and the nest it is in (0: top
	 * level); 0 when unknown. Maps an extended ACK back to a name. */
	uint16_t nla, nla_in;
};

struct nfp_backend;

/* What a `flush` of an object sends: another message built by copying
 * attributes (flush table -> delete every rule of the table). */
struct nfp_flush {
	uint16_t msg;
	const struct nfp_backend *backend;
	uint8_t n;
	const uint16_t *src;
	const uint16_t *dst;
};

/* Listing per parent: one dump per parent object (a chain's rules), its
 * filter made by copying the parent's attributes src[i] to dst[i]. */
struct nfp_list_per {
	const struct nfp_obj *obj;
	uint8_t n;
	const uint16_t *src;
	const uint16_t *dst;
};

#define NFP_MSG_NONE 0xffff

enum nfp_verb {
	NFP_VERB_ADD,
	NFP_VERB_CREATE,
	NFP_VERB_INSERT,
	NFP_VERB_REPLACE,
	NFP_VERB_DELETE,
	NFP_VERB_DESTROY,
	NFP_VERB_FLUSH,
	NFP_VERB_COUNT,
};

#define NFP_NO_ATTR 0xffff

struct nfp_obj {
	const char *name;
	const struct nfp_backend *backend;
	uint16_t nattrs;
	const struct nfp_attr *attrs;		/* sorted by name */
	uint16_t msg_new, msg_get, msg_del, msg_destroy;
	uint32_t verbs;				/* bit per enum nfp_verb */
	uint16_t family_attr;			/* NFP_NO_ATTR when none */
	uint16_t handle_attr;
	const struct nfp_flush *flush;
	uint8_t nlist_filter;
	const uint16_t *list_filter;		/* attr ids put in a dump request */
	const struct nfp_obj *list_via;		/* list by iterating these first */
	const struct nfp_list_per *list_per;	/* one dump per parent */
	/* An attribute every object of this type has with one value (the
	 * kind of a stateful object); NFP_NO_ATTR when none. */
	uint16_t fixed_attr;
	uint32_t fixed_value;
	uint8_t dump_order;			/* place in a dump; 0: not dumped */
	bool handle_api;			/* has <name>_alloc and friends */
};

struct nfp_expr {
	const char *name;
	uint16_t nattrs;
	const struct nfp_attr *attrs;		/* sorted by name */
};

struct nfp_req;
typedef int (*nfp_op_fn)(struct nfp_req *req);

struct nfp_op {
	const char *name;
	nfp_op_fn fn;
	uint8_t nargs;
	const struct nfp_obj *obj;		/* object of a handle op */
	bool indexed_errors;			/* kernel errors name a message */
};

/* Generated tables (build/nfp_tables.c). */
extern const struct nfp_obj *const nfp_objects[];	/* sorted by name */
extern const size_t nfp_nobjects;
extern const struct nfp_expr *const nfp_exprs[];	/* sorted by name */
extern const size_t nfp_nexprs;
extern const struct nfp_op nfp_ops[];			/* sorted by name */
extern const size_t nfp_nops;
extern const struct nfp_enum *const nfp_enums[];	/* sorted by name */
extern const size_t nfp_nenums;

/* Lookups by name: binary search over the sorted tables. */
const struct nfp_obj *nfp_obj_find(const char *name);
const struct nfp_expr *nfp_expr_find(const char *name);
const struct nfp_op *nfp_op_find(const char *name);
const struct nfp_attr *nfp_attr_find(const struct nfp_attr *attrs, uint16_t n,
				     const char *name);
const struct nfp_attr *nfp_attr_by_id(const struct nfp_attr *attrs, uint16_t n,
				      uint16_t id);
const struct nfp_enum_entry *nfp_enum_by_name(const struct nfp_enum *e,
					      const char *name);
const struct nfp_enum_entry *nfp_enum_by_value(const struct nfp_enum *e,
					       int64_t value);

#endif /* NFP_DESC_H */
