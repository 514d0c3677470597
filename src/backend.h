/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * One vtable per libnftnl object type, so that the engine handles tables,
 * chains, rules, sets and elements alike. The functions are libnftnl's own,
 * behind wrappers of one common signature.
 */
#ifndef NFP_BACKEND_H
#define NFP_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

struct nlmsghdr;

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
};

extern const struct nfp_backend nfp_backend_table;
extern const struct nfp_backend nfp_backend_chain;
extern const struct nfp_backend nfp_backend_rule;
extern const struct nfp_backend nfp_backend_set;
extern const struct nfp_backend nfp_backend_set_elems;
extern const struct nfp_backend nfp_backend_set_elem;
extern const struct nfp_backend nfp_backend_obj;
extern const struct nfp_backend nfp_backend_flowtable;

#endif /* NFP_BACKEND_H */
