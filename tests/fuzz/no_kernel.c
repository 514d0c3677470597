// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The fuzzer must never talk to the kernel's nftables. Every netlink socket
 * the port opens goes through libmnl's mnl_socket_open(); these
 * definitions, linked into the fuzzer before libmnl, take their place (an
 * executable's own definition wins over a shared library's), so every op
 * that needs the kernel fails the way it does without permission:
 * {:error, "... Operation not permitted (EPERM)"}.
 *
 * The other entry points that would use a socket abort, so that a future
 * path around mnl_socket_open() shows up as a crash instead of a kernel
 * change.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>

struct mnl_socket;

struct mnl_socket *mnl_socket_open(int bus);
struct mnl_socket *mnl_socket_open2(int bus, int flags);
struct mnl_socket *mnl_socket_fdopen(int fd);
int mnl_socket_bind(struct mnl_socket *nl, unsigned int groups, pid_t pid);
ssize_t mnl_socket_sendto(const struct mnl_socket *nl, const void *req, size_t siz);

struct mnl_socket *mnl_socket_open(int bus)
{
	(void)bus;
	errno = EPERM;
	return NULL;
}

struct mnl_socket *mnl_socket_open2(int bus, int flags)
{
	(void)bus;
	(void)flags;
	errno = EPERM;
	return NULL;
}

struct mnl_socket *mnl_socket_fdopen(int fd)
{
	(void)fd;
	errno = EPERM;
	return NULL;
}

static void reached(const char *fn)
{
	fprintf(stderr, "no_kernel: %s() reached without a socket from mnl_socket_open()\n", fn);
	abort();
}

int mnl_socket_bind(struct mnl_socket *nl, unsigned int groups, pid_t pid)
{
	(void)nl;
	(void)groups;
	(void)pid;
	reached("mnl_socket_bind");
	return -1;
}

ssize_t mnl_socket_sendto(const struct mnl_socket *nl, const void *req, size_t siz)
{
	(void)nl;
	(void)req;
	(void)siz;
	reached("mnl_socket_sendto");
	return -1;
}
