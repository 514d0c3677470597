// SPDX-License-Identifier: GPL-2.0-or-later
/* Request errors, see req.h. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "req.h"

int nfp_fail(struct nfp_req *req, const char *fmt, ...)
{
	va_list ap;

	/* The first error is the cause; later ones are consequences. */
	if (req->err[0] || req->kerr || req->err_atom)
		return -1;
	va_start(ap, fmt);
	vsnprintf(req->err, sizeof(req->err), fmt, ap);
	va_end(ap);
	return -1;
}

int nfp_fail_port(struct nfp_req *req, const char *fmt, ...)
{
	va_list ap;

	if (req->err[0] || req->kerr || req->err_atom)
		return -1;
	va_start(ap, fmt);
	vsnprintf(req->err, sizeof(req->err), fmt, ap);
	va_end(ap);
	req->err_reason = "failed";
	return -1;
}

int nfp_fail_atom(struct nfp_req *req, const char *atom)
{
	if (req->err[0] || req->kerr || req->err_atom)
		return -1;
	req->err_atom = atom;
	return -1;
}

int nfp_fail_kernel(struct nfp_req *req, int64_t index, int err)
{
	if (req->err[0] || req->kerr || req->err_atom)
		return -1;
	req->kerr = true;
	req->kerr_index = index;
	req->kerr_errno = err;
	return -1;
}

const char *nfp_join(char *buf, size_t len, const char *a, const char *b, const char *c)
{
	const char *parts[3] = { a, b, c };
	size_t off = 0;

	for (int i = 0; i < 3 && parts[i]; i++) {
		size_t n = strlen(parts[i]);

		if (n > len - 1 - off)
			n = len - 1 - off;
		memcpy(buf + off, parts[i], n);
		off += n;
	}
	buf[off] = '\0';
	return buf;
}

const char *nfp_errno_name(int err)
{
	const char *n = strerrorname_np(err);

	return n ? n : "EUNKNOWN";
}

void nfp_errno_message(int err, char *buf, size_t len)
{
	const char *d = strerrordesc_np(err);

	snprintf(buf, len, "%s (%s)", d ? d : "Unknown error", nfp_errno_name(err));
}
