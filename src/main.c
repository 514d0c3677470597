// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * port_nftables: an Erlang port that manages nftables over netlink.
 *
 * Start-up: arguments, then the security model in this order: the
 * binary's mode (caps.c), the network namespace (caps.c), the identity (a
 * port started as root becomes nobody, identity.c), the capabilities
 * (caps.c), the descriptors the loop needs (signalfd, /proc/sys/net), and
 * last the sandbox (Landlock and the seccomp filter, seccomp.c). Then a
 * poll loop over stdin and the signalfd. Each complete frame is dispatched
 * and answered at once. EOF on stdin, SIGTERM, SIGINT or SIGHUP end the
 * loop: CAP_NET_ADMIN is dropped and the process exits 0. A length prefix
 * over --max-frame is answered, then ends the port with status 3: the
 * stream's framing cannot be trusted after it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <ei.h>

#include "caps.h"
#include "dispatch.h"
#include "events.h"
#include "frame.h"
#include "ops.h"
#include "sandbox.h"
#include "sysctl.h"

/* Exit status after a length prefix over --max-frame. */
#define NFP_EXIT_OVERSIZE 3

struct port {
	ei_x_buff out;
	int fd_out;
	bool broken;		/* stdout is gone */
	bool desync;		/* a frame over the limit: the stream is lost */
};

static void send_reply(struct port *p)
{
	if (!p->broken && nfp_frame_write(p->fd_out, p->out.buff, (size_t)p->out.index) < 0)
		p->broken = true;
	/* Do not keep a huge reply buffer around between requests. */
	if (p->out.buffsz > (16 << 20)) {
		ei_x_free(&p->out);
		ei_x_new(&p->out);
	}
}

static void on_frame(void *ctx, const char *buf, size_t len)
{
	struct port *p = ctx;

	if (p->desync)
		return;
	nfp_dispatch(buf, len, &p->out);
	send_reply(p);
}

static void on_oversize(void *ctx, uint32_t len, uint32_t max)
{
	struct port *p = ctx;

	if (p->desync)
		return;
	nfp_reply_oversize(&p->out, len, max);
	send_reply(p);
	fprintf(stderr, "port_nftables: a frame of %u bytes is over the limit of %u bytes "
		"(--max-frame); the stream cannot be trusted after it: exiting with status %d\n",
		len, max, NFP_EXIT_OVERSIZE);
	p->desync = true;
}

static void on_event(void *ctx, ei_x_buff *frame)
{
	struct port *p = ctx;

	if (!p->broken && nfp_frame_write(p->fd_out, frame->buff, (size_t)frame->index) < 0)
		p->broken = true;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: port_nftables [--netns new|NAME] [--max-frame BYTES] [--user NAME|UID] [--group NAME|GID]\n"
		"Speaks {packet, 4} frames of Erlang terms on stdin/stdout; see docs/protocol.md.\n");
}

int main(int argc, char **argv)
{
	const struct nfp_frame_cb cb = { .frame = on_frame, .oversize = on_oversize };
	uint32_t max_frame = NFP_FRAME_MAX_DEFAULT;
	const char *netns = NULL, *user = NULL, *group = NULL;
	bool root = (getuid() == 0 || geteuid() == 0) && nfp_identity_host_root(),
	     switched = false, sandbox = true;
	struct nfp_reader reader;
	struct port port = { .fd_out = STDOUT_FILENO };
	struct pollfd fds[3];
	sigset_t mask;
	int sfd, status = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--netns") == 0 && i + 1 < argc) {
			netns = argv[++i];
		} else if (strcmp(argv[i], "--user") == 0 && i + 1 < argc) {
			user = argv[++i];
		} else if (strcmp(argv[i], "--group") == 0 && i + 1 < argc) {
			group = argv[++i];
#ifdef NFP_TEST_BUILD
		} else if (strcmp(argv[i], "--no-sandbox") == 0) {
			sandbox = false;
#endif
		} else if (strcmp(argv[i], "--max-frame") == 0 && i + 1 < argc) {
			const char *arg = argv[++i];
			char *end;
			unsigned long v;

			/* Digits only: no sign, no space, no hex. */
			errno = 0;
			v = strtoul(arg, &end, 10);
			if (arg[0] < '0' || arg[0] > '9' || *end || errno || v == 0 || v > UINT32_MAX) {
				fprintf(stderr, "error: --max-frame takes 1 to %u bytes\n", UINT32_MAX);
				return 2;
			}
			max_frame = (uint32_t)v;
		} else {
			usage();
			return 2;
		}
	}

	ei_init();
	if (nfp_caps_check_binary("/proc/self/exe") < 0)
		return 1;
	/* Not root: nothing to switch (and --user is an error, said now). A
	 * root port that must unshare a user namespace (no CAP_SYS_ADMIN)
	 * becomes nobody first, so that its uid 0 there is nobody outside. */
	if (!root || nfp_netns_needs_userns(netns)) {
		if (nfp_identity_drop(root, user, group) < 0)
			return 1;
		switched = true;
	}
	if (nfp_netns_enter(netns) < 0)
		return 1;
	if (!switched && nfp_identity_drop(root, user, group) < 0)
		return 1;
	nfp_caps_drop();

	/* Signals arrive through a descriptor, handled in the loop. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);

	/* Last: every descriptor the loop needs is open. */
	if (nfp_sysctl_open_dir() < 0)
		fprintf(stderr, "warning: cannot open /proc/sys/net: %s (sysctl ops will fail)\n",
			strerror(errno));
	if (sandbox && nfp_seccomp_install(nfp_sysctl_open_dir(), NULL, 0, 0) < 0)
		return 1;

	nfp_reader_init(&reader, max_frame);
	ei_x_new(&port.out);
	fds[0].fd = STDIN_FILENO;
	fds[0].events = POLLIN;
	fds[1].fd = sfd;
	fds[1].events = POLLIN;

	while (!port.broken && !port.desync) {
		/* The event socket (events.c), while someone is subscribed. */
		int n;

		fds[2].fd = nfp_events_fd();
		fds[2].events = POLLIN;
		fds[2].revents = 0;
		n = poll(fds, 3, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			status = 1;
			break;
		}
		if (sfd >= 0 && (fds[1].revents & POLLIN))
			break;
		if (fds[2].fd >= 0 && (fds[2].revents & (POLLIN | POLLERR)))
			nfp_events_drain(on_event, &port);
		if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t r = nfp_reader_fill(&reader, STDIN_FILENO, &cb, &port);

			if (r == 0) {
				if (nfp_reader_partial(&reader))
					fprintf(stderr, "port_nftables: stdin closed in the middle of a frame; discarding it\n");
				break;
			}
			if (r < 0) {
				status = 1;
				break;
			}
		}
	}

	nfp_ops_cleanup();
	nfp_events_close();
	nfp_reader_release(&reader);
	ei_x_free(&port.out);
	if (sfd >= 0)
		close(sfd);
	nfp_caps_drop_all();
	return port.desync ? NFP_EXIT_OVERSIZE : status;
}
