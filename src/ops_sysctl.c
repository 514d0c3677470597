// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * sysctl_get, sysctl_set: the network sysctls of schema/sysctl.yaml, in
 * the port's own network namespace.
 *
 * A name is looked up in the generated allow-list; a wildcard component
 * must be an interface name as the kernel allows one (1 to 15 bytes, not
 * "." or "..", no '/', ':', NUL or white space). The path below
 * /proc/sys/net is built from the entry, never from the name's other
 * parts, and opened relative to the descriptor of /proc/sys/net opened at
 * start-up, with O_NOFOLLOW. The seccomp filter allows openat() with that
 * descriptor only, and Landlock confines opens to beneath /proc/sys/net.
 * Writing needs CAP_NET_ADMIN over the namespace's user namespace, which
 * the kernel accepts from an unprivileged uid too.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "etf.h"
#include "ops.h"
#include "sysctl.h"

static int net_dirfd = -1;

int nfp_sysctl_open_dir(void)
{
	if (net_dirfd < 0)
		net_dirfd = open("/proc/sys/net", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return net_dirfd;
}

static bool valid_ifname(const char *s, size_t len)
{
	if (len == 0 || len > 15 || (len == 1 && s[0] == '.') ||
	    (len == 2 && s[0] == '.' && s[1] == '.'))
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '/' || c == ':' || c == '\0' || c <= ' ' || c == 0x7f)
			return false;
	}
	return true;
}

/* The entry for `name` and its path below /proc/sys/net, or -1. */
static const struct nfp_sysctl *lookup(struct nfp_req *req, const char *name, size_t len,
				       char *path, size_t pathlen)
{
	for (size_t i = 0; i < nfp_nsysctls; i++) {
		const struct nfp_sysctl *s = &nfp_sysctls[i];
		size_t pre = strlen(s->name_pre), suf;

		if (!s->name_suf) {
			if (len == pre && memcmp(name, s->name_pre, len) == 0) {
				snprintf(path, pathlen, "%s", s->path_pre);
				return s;
			}
			continue;
		}
		suf = strlen(s->name_suf);
		if (len <= pre + suf || memcmp(name, s->name_pre, pre) != 0 ||
		    memcmp(name + len - suf, s->name_suf, suf) != 0)
			continue;
		if (!valid_ifname(name + pre, len - pre - suf)) {
			nfp_fail(req, "%.*s: %.*s is not an interface name (1 to 15 bytes, "
				 "no '/', ':', NUL or white space, not . or ..)", (int)len, name,
				 (int)(len - pre - suf), name + pre);
			return NULL;
		}
		snprintf(path, pathlen, "%s%.*s%s", s->path_pre, (int)(len - pre - suf),
			 name + pre, s->path_suf);
		return s;
	}
	nfp_fail(req, "%.*s is not a sysctl the port may use (the allow-list is schema/sysctl.yaml, "
		 "see docs/reference.md#sysctls)", (int)len, name);
	return NULL;
}

static const struct nfp_sysctl *arg_name(struct nfp_req *req, int *idx, char *name,
					 char *path, size_t pathlen)
{
	const char *p;
	uint32_t len;

	if (nfp_dec_bin(req, idx, &p, &len, "name") < 0)
		return NULL;
	if (len == 0 || len > 255) {
		nfp_fail(req, "a sysctl name is 1 to 255 bytes, got %u", len);
		return NULL;
	}
	if (memchr(p, '\0', len)) {
		nfp_fail(req, "the sysctl name contains a NUL byte");
		return NULL;
	}
	memcpy(name, p, len);
	name[len] = '\0';
	if (net_dirfd < 0) {
		nfp_fail(req, "%s: /proc/sys/net is not open in this process", name);
		return NULL;
	}
	return lookup(req, name, len, path, pathlen);
}

static int fail_errno(struct nfp_req *req, const char *name, const char *what, int err)
{
	char msg[128];

	nfp_errno_message(err, msg, sizeof(msg));
	return nfp_fail(req, "%s: cannot %s it: %s", name, what, msg);
}

int nfp_op_sysctl_get(struct nfp_req *req)
{
	char name[256], path[300], buf[64], *end;
	const struct nfp_sysctl *s;
	int idx = req->idx, fd;
	ssize_t n;
	long long v;

	s = arg_name(req, &idx, name, path, sizeof(path));
	if (!s)
		return -1;
	fd = openat(net_dirfd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return fail_errno(req, name, "open", errno);
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0) {
		int err = errno;

		close(fd);
		return fail_errno(req, name, "read", err);
	}
	close(fd);
	buf[n] = '\0';
	errno = 0;
	v = strtoll(buf, &end, 10);
	if (end == buf || errno || (*end && strcmp(end, "\n") != 0))
		return nfp_fail(req, "%s: the kernel's value is not one integer: \"%.*s\"", name,
				(int)strcspn(buf, "\n"), buf);
	nfp_enc_ok_head(req->out);
	if (s->type == NFP_SYSCTL_BOOL && (v == 0 || v == 1))
		nfp_enc_atom(req->out, v ? "true" : "false");
	else
		nfp_enc_s64(req->out, v);
	return 0;
}

int nfp_op_sysctl_set(struct nfp_req *req)
{
	char name[256], path[300], text[32];
	const struct nfp_sysctl *s;
	int idx = req->idx, fd, len;
	int64_t v;
	ssize_t n;

	s = arg_name(req, &idx, name, path, sizeof(path));
	if (!s)
		return -1;
	if (s->type == NFP_SYSCTL_BOOL) {
		bool b;

		if (!nfp_is_atom(req->buf, idx))
			return nfp_fail(req, "%s takes true or false, got %s", name,
					nfp_etf_type_name(req->buf, idx));
		if (nfp_dec_bool(req, &idx, &b, name) < 0)
			return -1;
		v = b;
	} else {
		if (nfp_dec_s64(req, &idx, &v, name) < 0)
			return -1;
		if (v < s->min || v > s->max)
			return nfp_fail(req, "%s takes %lld to %lld, got %lld", name,
					(long long)s->min, (long long)s->max, (long long)v);
	}
	fd = openat(net_dirfd, path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return fail_errno(req, name, "open", errno);
	len = snprintf(text, sizeof(text), "%lld\n", (long long)v);
	n = write(fd, text, (size_t)len);
	if (n != len) {
		int err = n < 0 ? errno : EIO;

		close(fd);
		return fail_errno(req, name, "write", err);
	}
	if (close(fd) < 0)
		return fail_errno(req, name, "write", errno);
	req->out->index = req->result_at;
	ei_x_encode_atom(req->out, "ok");
	return 0;
}
