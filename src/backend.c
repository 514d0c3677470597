// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libnftnl object types behind struct nfp_backend. Each wrapper only adapts
 * the pointer type; validation happens before, in the engine.
 */
#include <libnftnl/chain.h>
#include <libnftnl/flowtable.h>
#include <libnftnl/object.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>

#include "backend.h"

#define NFP_BACKEND(T, SET, GET)						\
static void *T##_alloc(void) { return nftnl_##T##_alloc(); }			\
static void T##_free(void *o) { nftnl_##T##_free(o); }				\
static int T##_set(void *o, uint16_t a, const void *d, uint32_t l)		\
{ return SET(o, a, d, l); }							\
static const void *T##_get(const void *o, uint16_t a, uint32_t *l)		\
{ return GET((void *)o, a, l); }						\
static bool T##_is_set(const void *o, uint16_t a)				\
{ return nftnl_##T##_is_set(o, a); }

#define NFP_UNSET(T)								\
static void T##_unset(void *o, uint16_t a) { nftnl_##T##_unset(o, a); }

NFP_BACKEND(table, nftnl_table_set_data, nftnl_table_get_data)
NFP_BACKEND(chain, nftnl_chain_set_data, nftnl_chain_get_data)
NFP_BACKEND(rule, nftnl_rule_set_data, nftnl_rule_get_data)
NFP_BACKEND(set, nftnl_set_set_data, nftnl_set_get_data)
NFP_BACKEND(set_elem, nftnl_set_elem_set, nftnl_set_elem_get)
NFP_UNSET(table)
NFP_UNSET(chain)
NFP_UNSET(rule)
NFP_UNSET(set)
NFP_UNSET(set_elem)
NFP_UNSET(flowtable)
/* nftnl_obj_set_data() returns nothing in libnftnl 1.2.4. */
static int obj_set_data(struct nftnl_obj *o, uint16_t a, const void *d, uint32_t l)
{
	nftnl_obj_set_data(o, a, d, l);
	return 0;
}

NFP_BACKEND(obj, obj_set_data, nftnl_obj_get_data)

/* libnftnl 1.2.4 exports no nftnl_flowtable_get_data(): the length is
 * left 0 and the engine takes the attribute's own width. */
static const void *flowtable_get_data(struct nftnl_flowtable *f, uint16_t a, uint32_t *l)
{
	*l = 0;
	return nftnl_flowtable_get(f, a);
}

NFP_BACKEND(flowtable, nftnl_flowtable_set_data, flowtable_get_data)

#define NFP_BUILD_PARSE(T)							\
static void T##_build(struct nlmsghdr *nlh, void *o)				\
{ nftnl_##T##_nlmsg_build_payload(nlh, o); }					\
static int T##_parse(const struct nlmsghdr *nlh, void *o)			\
{ return nftnl_##T##_nlmsg_parse(nlh, o); }

NFP_BUILD_PARSE(table)
NFP_BUILD_PARSE(chain)
NFP_BUILD_PARSE(rule)
NFP_BUILD_PARSE(set)
NFP_BUILD_PARSE(obj)
NFP_BUILD_PARSE(flowtable)

static void set_elems_build(struct nlmsghdr *nlh, void *o)
{
	nftnl_set_elems_nlmsg_build_payload(nlh, o);
}

static int set_elems_parse(const struct nlmsghdr *nlh, void *o)
{
	return nftnl_set_elems_nlmsg_parse(nlh, o);
}

#define NFP_VTABLE(NAME, T, UNSET, BUILD, PARSE)				\
const struct nfp_backend nfp_backend_##NAME = {					\
	.name = #NAME, .alloc = T##_alloc, .free = T##_free,			\
	.set = T##_set, .get = T##_get, .is_set = T##_is_set,			\
	.unset = UNSET, .build = BUILD, .parse = PARSE,				\
}

NFP_VTABLE(table, table, table_unset, table_build, table_parse);
NFP_VTABLE(chain, chain, chain_unset, chain_build, chain_parse);
NFP_VTABLE(rule, rule, rule_unset, rule_build, rule_parse);
NFP_VTABLE(set, set, set_unset, set_build, set_parse);
NFP_VTABLE(set_elems, set, set_unset, set_elems_build, set_elems_parse);
NFP_VTABLE(set_elem, set_elem, set_elem_unset, NULL, NULL);
/* libnftnl 1.2.4 exports no nftnl_obj_unset(). */
NFP_VTABLE(obj, obj, NULL, obj_build, obj_parse);
NFP_VTABLE(flowtable, flowtable, flowtable_unset, flowtable_build, flowtable_parse);
