// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * test_forbidden_call: compiled into build/port_nftables_test only (meson
 * builds it with NFP_TEST_BUILD; priv/port_nftables has no such op). It
 * makes one system call the sandbox of seccomp.c must refuse, as a
 * compromised port would, so that tests/elixir/seccomp_test.exs can show
 * that the refusal is real:
 *   :route_socket  socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE)
 *   :inet_socket   socket(AF_INET, SOCK_DGRAM, 0)
 *   :open_passwd   open("/etc/passwd", O_RDONLY)
 *   :write_passwd  open("/etc/passwd", O_WRONLY | O_APPEND) (what uid 0 may
 *                  do without any capability, and nobody may not)
 *   :escape_sysctl openat(/proc/sys/net, "../../../etc/passwd", O_NOFOLLOW)
 *   :execve        execve("/bin/true")
 * It answers {:ok, :allowed} when the call succeeded, or the errno.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "etf.h"
#include "ops.h"
#include "sysctl.h"

int nfp_op_test_forbidden_call(struct nfp_req *req)
{
	char what[NFP_ATOM_MAX], msg[128];
	int idx = req->idx, fd = -1;

	if (nfp_dec_atom(req, &idx, what, "call") < 0)
		return -1;
	errno = 0;
	if (strcmp(what, "route_socket") == 0) {
		fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	} else if (strcmp(what, "inet_socket") == 0) {
		fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	} else if (strcmp(what, "open_passwd") == 0) {
		fd = open("/etc/passwd", O_RDONLY | O_CLOEXEC);
	} else if (strcmp(what, "write_passwd") == 0) {
		fd = open("/etc/passwd", O_WRONLY | O_APPEND | O_CLOEXEC);
	} else if (strcmp(what, "escape_sysctl") == 0) {
		fd = openat(nfp_sysctl_open_dir(), "../../../etc/passwd", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	} else if (strcmp(what, "execve") == 0) {
		char *const argv[] = { "true", NULL };

		execve("/bin/true", argv, (char *const[]){ NULL });
	} else {
		return nfp_fail(req, "unknown call :%s", what);
	}
	if (fd >= 0) {
		close(fd);
		nfp_enc_ok_head(req->out);
		nfp_enc_atom(req->out, "allowed");
		return 0;
	}
	nfp_errno_message(errno, msg, sizeof(msg));
	return nfp_fail(req, "%s: %s", what, msg);
}
