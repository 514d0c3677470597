// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Name lookups over the generated tables. Every table is sorted by name at
 * generation time, so each lookup is a binary search.
 */
#include <stdlib.h>
#include <string.h>

#include "desc.h"

#define NFP_BSEARCH(arr, n, key, field)						\
	do {									\
		size_t lo = 0, hi = (n);					\
		while (lo < hi) {						\
			size_t mid = lo + (hi - lo) / 2;			\
			int c = strcmp((key), (arr)[mid]field);			\
			if (c == 0)						\
				return &(arr)[mid];				\
			if (c < 0)						\
				hi = mid;					\
			else							\
				lo = mid + 1;					\
		}								\
		return NULL;							\
	} while (0)

static const struct nfp_obj *const *obj_slot(const char *name)
{
	NFP_BSEARCH(nfp_objects, nfp_nobjects, name, ->name);
}

const struct nfp_obj *nfp_obj_find(const char *name)
{
	const struct nfp_obj *const *o = obj_slot(name);

	return o ? *o : NULL;
}

static const struct nfp_expr *const *expr_slot(const char *name)
{
	NFP_BSEARCH(nfp_exprs, nfp_nexprs, name, ->name);
}

const struct nfp_expr *nfp_expr_find(const char *name)
{
	const struct nfp_expr *const *e = expr_slot(name);

	return e ? *e : NULL;
}

const struct nfp_op *nfp_op_find(const char *name)
{
	NFP_BSEARCH(nfp_ops, nfp_nops, name, .name);
}

const struct nfp_attr *nfp_attr_find(const struct nfp_attr *attrs, uint16_t n,
				     const char *name)
{
	NFP_BSEARCH(attrs, n, name, .name);
}

const struct nfp_attr *nfp_attr_by_id(const struct nfp_attr *attrs, uint16_t n,
				      uint16_t id)
{
	for (uint16_t i = 0; i < n; i++)
		if (attrs[i].id == id)
			return &attrs[i];
	return NULL;
}

const struct nfp_enum_entry *nfp_enum_by_name(const struct nfp_enum *e,
					      const char *name)
{
	NFP_BSEARCH(e->entries, e->n, name, .name);
}

const struct nfp_enum_entry *nfp_enum_by_value(const struct nfp_enum *e,
					       int64_t value)
{
	for (uint16_t i = 0; i < e->n; i++)
		if (e->entries[i].value == value)
			return &e->entries[i];
	return NULL;
}
