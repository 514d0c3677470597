/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ETF helpers over ei. ei's decoders trust the buffer, so every frame is
 * first walked by nfp_etf_validate(), which checks each length against the
 * frame, limits nesting and rejects term types no request uses. After that
 * the typed decoders below report a wrong type as a message that names
 * what was expected and what came.
 */
#ifndef NFP_ETF_H
#define NFP_ETF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ei.h>

#include "req.h"

#define NFP_ETF_MAX_DEPTH 64
#define NFP_ATOM_MAX MAXATOMLEN_UTF8

/* Validates the term at *idx (after the version byte); advances *idx. */
int nfp_etf_validate(const char *buf, int len, int *idx, int depth,
		     char *err, size_t errlen);

/* Whether the validated term at idx holds a STRING_EXT anywhere: a list
 * of small integers, which ETF encodes as bytes (e.g. the arguments [7]). */
bool nfp_etf_has_string_ext(const char *buf, int idx);
/* Copies the validated term at *idx into out (ei_x, after its version
 * byte), with every STRING_EXT rewritten as a proper LIST_EXT of small
 * integers, so that the list decoders see one kind of list. */
void nfp_etf_expand_strings(const char *buf, int *idx, ei_x_buff *out);

/* "an integer", "a binary", ... for error messages. */
const char *nfp_etf_type_name(const char *buf, int idx);
/* Skips a (validated) term. */
void nfp_etf_skip(const char *buf, int *idx);

int nfp_dec_atom(struct nfp_req *req, int *idx, char *out, const char *what);
int nfp_dec_u64(struct nfp_req *req, int *idx, uint64_t *v, const char *what);
int nfp_dec_s64(struct nfp_req *req, int *idx, int64_t *v, const char *what);
int nfp_dec_bool(struct nfp_req *req, int *idx, bool *v, const char *what);
/* A binary, pointing into the frame (no copy). */
int nfp_dec_bin(struct nfp_req *req, int *idx, const char **p, uint32_t *len,
		const char *what);
/* A proper list: returns the element count; *tail is where the NIL tail
 * sits, so that the caller can check it after the elements. */
int nfp_dec_list(struct nfp_req *req, int *idx, int *n, const char *what);
int nfp_dec_list_end(struct nfp_req *req, int *idx, const char *what);
int nfp_dec_map(struct nfp_req *req, int *idx, int *n, const char *what);
int nfp_dec_tuple(struct nfp_req *req, int *idx, int arity, const char *what);
bool nfp_is_atom(const char *buf, int idx);

/* Encoding shortcuts. */
void nfp_enc_atom(ei_x_buff *x, const char *a);
void nfp_enc_bin(ei_x_buff *x, const void *p, size_t len);
void nfp_enc_str(ei_x_buff *x, const char *s);
void nfp_enc_u64(ei_x_buff *x, uint64_t v);
void nfp_enc_s64(ei_x_buff *x, int64_t v);
/* Makes room for n more bytes, doubling: ei_x grows by a hundred bytes at
 * a time, which makes a reply of a million objects quadratic. */
int nfp_enc_reserve(ei_x_buff *x, size_t n);
/* {:ok, _}: encodes the tuple head; the caller encodes the value. */
void nfp_enc_ok_head(ei_x_buff *x);

/* A list whose length is only known at its end: nfp_enc_list_open()
 * reserves the header, nfp_enc_list_close() patches in the count. */
int nfp_enc_list_open(ei_x_buff *x);
void nfp_enc_list_close(ei_x_buff *x, int at, uint32_t count);

#endif /* NFP_ETF_H */
