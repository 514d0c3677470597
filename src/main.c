// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * port_nftables: an Erlang port that manages nftables over netlink.
 *
 * Start-up: arguments, the security model (caps.c), then a poll loop over
 * stdin and a signalfd. Each complete frame is dispatched and answered at
 * once. EOF on stdin, SIGTERM, SIGINT or SIGHUP end the loop: CAP_NET_ADMIN
 * is dropped and the process exits 0.
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

struct port {
	ei_x_buff out;
	int fd_out;
	bool broken;		/* stdout is gone */
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

	nfp_dispatch(buf, len, &p->out);
	send_reply(p);
}

static void on_oversize(void *ctx, uint32_t len, uint32_t max)
{
	struct port *p = ctx;

	nfp_reply_oversize(&p->out, len, max);
	send_reply(p);
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
		"usage: port_nftables [--netns new|NAME] [--max-frame BYTES]\n"
		"Speaks {packet, 4} frames of Erlang terms on stdin/stdout; see docs/protocol.md.\n");
}

int main(int argc, char **argv)
{
	const struct nfp_frame_cb cb = { .frame = on_frame, .oversize = on_oversize };
	uint32_t max_frame = NFP_FRAME_MAX_DEFAULT;
	const char *netns = NULL;
	struct nfp_reader reader;
	struct port port = { .fd_out = STDOUT_FILENO };
	struct pollfd fds[3];
	sigset_t mask;
	int sfd, status = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--netns") == 0 && i + 1 < argc) {
			netns = argv[++i];
		} else if (strcmp(argv[i], "--max-frame") == 0 && i + 1 < argc) {
			char *end;
			unsigned long v = strtoul(argv[++i], &end, 10);

			if (*end || v == 0 || v > UINT32_MAX) {
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
	if (nfp_netns_enter(netns) < 0)
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

	nfp_reader_init(&reader, max_frame);
	ei_x_new(&port.out);
	fds[0].fd = STDIN_FILENO;
	fds[0].events = POLLIN;
	fds[1].fd = sfd;
	fds[1].events = POLLIN;

	while (!port.broken) {
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
	return status;
}
