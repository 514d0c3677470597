// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libnftnl object types behind struct nfp_backend. Each wrapper only adapts
 * the pointer type; validation happens before, in the engine.
 */
#include <libnftnl/chain.h>
#include <libnftnl/expr.h>
#include <libnftnl/flowtable.h>
#include <libnftnl/object.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>

#include <linux/netlink.h>

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

/* Expression lists. */
static void rule_add_expr(void *o, uint16_t attr, struct nftnl_expr *e)
{
	(void)attr;
	nftnl_rule_add_expr(o, e);
}

static void rule_expr_foreach(void *o, nfp_expr_cb cb, void *data)
{
	struct nftnl_expr_iter *it = nftnl_expr_iter_create(o);
	struct nftnl_expr *e;

	if (!it)
		return;
	while ((e = nftnl_expr_iter_next(it)))
		cb(e, data);
	nftnl_expr_iter_destroy(it);
}

static void set_add_expr(void *o, uint16_t attr, struct nftnl_expr *e)
{
	(void)attr;
	nftnl_set_add_expr(o, e);
}

static void set_expr_foreach(void *o, nfp_expr_cb cb, void *data)
{
	nftnl_set_expr_foreach(o, cb, data);
}

static void set_elem_add_expr(void *o, uint16_t attr, struct nftnl_expr *e)
{
	(void)attr;
	nftnl_set_elem_add_expr(o, e);
}

static void set_elem_expr_foreach(void *o, nfp_expr_cb cb, void *data)
{
	nftnl_set_elem_expr_foreach(o, cb, data);
}

/* Elements, message by message. */
static void *set_elems_iter_create(void *o)
{
	return nftnl_set_elems_iter_create(o);
}

static int set_elems_iter_build(struct nlmsghdr *nlh, void *it)
{
	return nftnl_set_elems_nlmsg_build_payload_iter(nlh, it);
}

static void set_elems_iter_destroy(void *it)
{
	nftnl_set_elems_iter_destroy(it);
}

#define NFP_VTABLE(NAME, T, UNSET, BUILD, PARSE, ...)				\
const struct nfp_backend nfp_backend_##NAME = {					\
	.name = #NAME, .alloc = T##_alloc, .free = T##_free,			\
	.set = T##_set, .get = T##_get, .is_set = T##_is_set,			\
	.unset = UNSET, .build = BUILD, .parse = PARSE, __VA_ARGS__		\
}

NFP_VTABLE(table, table, table_unset, table_build, table_parse);
NFP_VTABLE(chain, chain, chain_unset, chain_build, chain_parse);
NFP_VTABLE(rule, rule, rule_unset, rule_build, rule_parse,
	   .new_flags = NLM_F_APPEND, .add_expr = rule_add_expr,
	   .expr_foreach = rule_expr_foreach, .exprs_always = true);
NFP_VTABLE(set, set, set_unset, set_build, set_parse,
	   .add_expr = set_add_expr, .expr_foreach = set_expr_foreach);
NFP_VTABLE(set_elems, set, set_unset, set_elems_build, set_elems_parse,
	   .add_expr = set_add_expr, .expr_foreach = set_expr_foreach,
	   .iter_create = set_elems_iter_create, .iter_build = set_elems_iter_build,
	   .iter_destroy = set_elems_iter_destroy);
NFP_VTABLE(set_elem, set_elem, set_elem_unset, NULL, NULL,
	   .add_expr = set_elem_add_expr, .expr_foreach = set_elem_expr_foreach);
/* libnftnl 1.2.4 exports no nftnl_obj_unset(). */
NFP_VTABLE(obj, obj, NULL, obj_build, obj_parse);
NFP_VTABLE(flowtable, flowtable, flowtable_unset, flowtable_build, flowtable_parse);

/* Expressions. */
static void expr_free(void *o)
{
	nftnl_expr_free(o);
}

static int expr_set(void *o, uint16_t a, const void *d, uint32_t l)
{
	return nftnl_expr_set(o, a, d, l);
}

static const void *expr_get(const void *o, uint16_t a, uint32_t *l)
{
	return nftnl_expr_get(o, a, l);
}

static bool expr_is_set(const void *o, uint16_t a)
{
	return nftnl_expr_is_set(o, a);
}

static void expr_add_expr(void *o, uint16_t attr, struct nftnl_expr *e)
{
	nftnl_expr_add_expr(o, attr, e);
}

static void expr_expr_foreach(void *o, nfp_expr_cb cb, void *data)
{
	nftnl_expr_expr_foreach(o, cb, data);
}

const struct nfp_backend nfp_backend_expr = {
	.name = "expr", .free = expr_free, .set = expr_set, .get = expr_get,
	.is_set = expr_is_set, .add_expr = expr_add_expr, .expr_foreach = expr_expr_foreach,
};
