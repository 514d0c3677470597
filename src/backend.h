/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * One vtable per libnftnl object type (and one for expressions), so that
 * the engine handles tables, chains, rules, sets, elements and expressions
 * alike. The functions are libnftnl's own, behind wrappers of one common
 * signature; what differs between types is in the table too, as data or
 * as a function (as libnftnl's struct expr_ops does), never as a branch
 * on which backend an object has.
 */
#ifndef NFP_BACKEND_H
#define NFP_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

struct nlmsghdr;
struct nftnl_expr;

typedef int (*nfp_expr_cb)(struct nftnl_expr *e, void *data);

struct nfp_backend {
	const char *name;
	void *(*alloc)(void);
	void (*free)(void *o);
	int (*set)(void *o, uint16_t attr, const void *data, uint32_t len);
	const void *(*get)(const void *o, uint16_t attr, uint32_t *len);
	bool (*is_set)(const void *o, uint16_t attr);
	void (*unset)(void *o, uint16_t attr);	/* NULL: libnftnl has none */
	/* NULL for set_elem, which only travels inside a set_elems message. */
	void (*build)(struct nlmsghdr *nlh, void *o);
	int (*parse)(const struct nlmsghdr *nlh, void *o);
	/* Netlink flags added to NLM_F_CREATE by add and create (a rule
	 * appends to its chain). */
	uint16_t new_flags;
	/* A list of expressions it holds (a rule's body, a set's or an
	 * element's stateful expressions, dynset's); attr names the list
	 * where an object has several. NULL: none. */
	void (*add_expr)(void *o, uint16_t attr, struct nftnl_expr *e);
	void (*expr_foreach)(void *o, nfp_expr_cb cb, void *data);
	/* Its expression list is listed even when empty (a rule's body). */
	bool exprs_always;
	/* Items (set elements) travel in as many messages as it takes, each
	 * attribute nest under 64 KiB: built with an iterator. NULL: one
	 * message with build(). */
	void *(*iter_create)(void *o);
	int (*iter_build)(struct nlmsghdr *nlh, void *it);
	void (*iter_destroy)(void *it);
};

extern const struct nfp_backend nfp_backend_table;
extern const struct nfp_backend nfp_backend_chain;
extern const struct nfp_backend nfp_backend_rule;
extern const struct nfp_backend nfp_backend_set;
extern const struct nfp_backend nfp_backend_set_elems;
extern const struct nfp_backend nfp_backend_set_elem;
extern const struct nfp_backend nfp_backend_obj;
extern const struct nfp_backend nfp_backend_flowtable;
/* Expressions: alloc, build and parse are NULL (an expression is made by
 * name and travels inside a rule). */
extern const struct nfp_backend nfp_backend_expr;

#endif /* NFP_BACKEND_H */
