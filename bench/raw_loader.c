// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * raw_loader: the floor the port is measured against (bench/README.md).
 *
 * It builds the very ruleset bench/ruleset.exs and bench/driver.py describe,
 * with libnftnl, into ONE contiguous batch buffer (BATCH_BEGIN, messages,
 * BATCH_END), sends it with ONE sendto() on a NETLINK_NETFILTER socket whose
 * send buffer is sized to the batch, and asks for an ACK on the last message
 * only: what src/nl.c does, written again small and plain. It also does the
 * raw dump (GETRULE, every rule parsed into a struct nftnl_rule, counted),
 * the one-element latency loop, the sequential small-commit rate, and times
 * other programs (nft) from fork to exit.
 *
 * Run it inside the benchmark's namespace (ip netns exec NS raw_loader ...).
 * Every command prints one line of key=value pairs on stdout.
 *
 *   raw_loader rules N CHAINS          table, sets, chains and N rules, one batch
 *   raw_loader elems N plain|interval  table, set and N elements (or N CIDRs)
 *   raw_loader dump [all]              GETRULE dumps (one per chain, or one of
 *                                      everything), every rule parsed and counted
 *   raw_loader lat COUNT               COUNT one-element commits into set "lat"
 *   raw_loader rate COUNT elem|rule    COUNT one-message commits back to back
 *   raw_loader exec COUNT -- CMD...    run CMD COUNT times, one after another
 *   raw_loader execpar P COUNT -- CMD...  P workers run CMD COUNT times each (%w = worker)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>

#define TABLE "bench"
#define FAMILY NFPROTO_INET
/* Room for one message: a rule is < 1 KiB; libnftnl fills an element
 * message up to 64 KiB and may write one element past it before it backs up. */
#define MSG_ROOM (128 * 1024)
#define RECV_BUF (256 * 1024)

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void die(const char *what)
{
	fprintf(stderr, "raw_loader: %s: %s\n", what, strerror(errno));
	exit(1);
}

static long vm_hwm_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* --- the socket ---------------------------------------------------------- */

static struct mnl_socket *nl;
static uint32_t portid, seq;

static void sock_open(void)
{
	int rcv = 4 * 1024 * 1024;	/* as the port: src/nl.c NFP_RCVBUF_DEFAULT */
	struct timeval tmo = { .tv_sec = 120 };

	nl = mnl_socket_open(NETLINK_NETFILTER);
	if (!nl || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0)
		die("netlink socket");
	portid = mnl_socket_get_portid(nl);
	seq = (uint32_t)time(NULL);
	setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof(rcv));
	setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVTIMEO, &tmo, sizeof(tmo));
}

/* --- a batch: one growing buffer ---------------------------------------- */

struct batch {
	char *buf;
	size_t len, cap;
	uint32_t first_seq, last_seq;	/* of the messages between BEGIN and END */
	size_t last_off;		/* where the last message starts */
	unsigned nmsgs;
};

static char *room(struct batch *b, size_t more)
{
	if (b->len + more > b->cap) {
		size_t cap = b->cap ? b->cap : 1 << 20;

		while (cap < b->len + more)
			cap *= 2;
		b->buf = realloc(b->buf, cap);
		if (!b->buf)
			die("realloc");
		b->cap = cap;
	}
	return b->buf + b->len;
}

static void batch_begin(struct batch *b)
{
	b->len = 0;
	b->nmsgs = 0;
	nftnl_batch_begin(room(b, MNL_NLMSG_HDRLEN + 64), seq++);
	b->len += NLMSG_ALIGN(((struct nlmsghdr *)b->buf)->nlmsg_len);
	b->first_seq = seq;
}

static struct nlmsghdr *msg_begin(struct batch *b, uint16_t type, uint16_t flags)
{
	return nftnl_nlmsg_build_hdr(room(b, MSG_ROOM), type, FAMILY, flags, seq++);
}

static void msg_end(struct batch *b, struct nlmsghdr *nlh)
{
	b->last_off = (char *)nlh - b->buf;
	b->last_seq = nlh->nlmsg_seq;
	b->len += NLMSG_ALIGN(nlh->nlmsg_len);
	b->nmsgs++;
}

static void batch_end(struct batch *b)
{
	struct nlmsghdr *nlh = nftnl_batch_end(room(b, MNL_NLMSG_HDRLEN + 64), seq++);

	b->len += NLMSG_ALIGN(nlh->nlmsg_len);
	/* One answer for the whole batch: an ACK on the last message only. */
	((struct nlmsghdr *)(b->buf + b->last_off))->nlmsg_flags |= NLM_F_ACK;
}

/* Sends the batch with one sendto() and waits for the last message's ACK
 * (an error of an earlier message comes before it). Returns 0 or -errno. */
static int batch_send(struct batch *b)
{
	static char *rbuf;
	int fd = mnl_socket_get_fd(nl), err = 0, snd = (int)b->len + 4096;
	static int sndbuf;

	if (!rbuf && !(rbuf = malloc(RECV_BUF)))
		die("malloc");
	if (snd > sndbuf) {
		if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &snd, sizeof(snd)) < 0)
			die("SO_SNDBUFFORCE");
		sndbuf = snd;
	}
	if (sendto(fd, b->buf, b->len, 0, NULL, 0) < 0)
		return -errno;
	for (;;) {
		ssize_t n = recv(fd, rbuf, RECV_BUF, 0);
		int left = (int)n;
		const struct nlmsghdr *nlh;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (nlh = (void *)rbuf; mnl_nlmsg_ok(nlh, left); nlh = mnl_nlmsg_next(nlh, &left)) {
			if (nlh->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);

				if (e->error && !err) {
					err = e->error;
					fprintf(stderr, "raw_loader: message %u of the batch: %s\n",
						nlh->nlmsg_seq - b->first_seq, strerror(-e->error));
				}
				if (nlh->nlmsg_seq == b->last_seq)
					return err;
			}
		}
	}
}

/* --- the ruleset (keep in step with bench/ruleset.exs and driver.py) ------ */


static struct nftnl_expr *expr(struct nftnl_rule *r, const char *name)
{
	struct nftnl_expr *e = nftnl_expr_alloc(name);

	if (!e)
		die("nftnl_expr_alloc");
	nftnl_rule_add_expr(r, e);
	return e;
}

static void meta(struct nftnl_rule *r, uint32_t key)
{
	struct nftnl_expr *e = expr(r, "meta");

	nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, NFT_REG_1);
}

static void cmp(struct nftnl_rule *r, const void *data, uint32_t len)
{
	struct nftnl_expr *e = expr(r, "cmp");

	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, NFT_CMP_EQ);
	nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
}

static void payload(struct nftnl_rule *r, uint32_t base, uint32_t off, uint32_t len)
{
	struct nftnl_expr *e = expr(r, "payload");

	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, off);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
}

static void l4(struct nftnl_rule *r, uint8_t proto, uint16_t port)
{
	uint16_t p = htons(port);

	meta(r, NFT_META_L4PROTO);
	cmp(r, &proto, 1);
	payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2);
	cmp(r, &p, 2);
}

static void ipv4(struct nftnl_rule *r)
{
	uint8_t v = NFPROTO_IPV4;

	meta(r, NFT_META_NFPROTO);
	cmp(r, &v, 1);
}

static void counter(struct nftnl_rule *r) { expr(r, "counter"); }

static void verdict(struct nftnl_rule *r, int v, const char *chain)
{
	struct nftnl_expr *e = expr(r, "immediate");

	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, (uint32_t)v);
	if (chain)
		nftnl_expr_set_str(e, NFTNL_EXPR_IMM_CHAIN, chain);
}

/* Rule i of the mix: six kinds in turn (bench/README.md lists them). */
static void rule_exprs(struct nftnl_rule *r, uint32_t i)
{
	uint16_t port = 1 + i % 65535;
	uint8_t a = (i >> 8) & 255, b = i & 255, c = (i >> 16) & 255;

	switch (i % 6) {
	case 0: {	/* ip saddr 10.a.b.0/24 tcp dport P counter accept */
		uint8_t net[3] = { 10, a, b };

		ipv4(r);
		payload(r, NFT_PAYLOAD_NETWORK_HEADER, 12, 3);
		cmp(r, net, 3);
		l4(r, IPPROTO_TCP, port);
		counter(r);
		verdict(r, NF_ACCEPT, NULL);
		break;
	}
	case 1: {	/* ip daddr 172.16.X.0/20 udp dport P drop */
		uint8_t net[4] = { 172, 16, (uint8_t)((i % 16) * 16), 0 };
		uint8_t mask[4] = { 255, 255, 240, 0 }, zero[4] = { 0 };
		struct nftnl_expr *e;

		ipv4(r);
		payload(r, NFT_PAYLOAD_NETWORK_HEADER, 16, 4);
		e = expr(r, "bitwise");
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, 4);
		nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, mask, 4);
		nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, zero, 4);
		cmp(r, net, 4);
		l4(r, IPPROTO_UDP, port);
		verdict(r, NF_DROP, NULL);
		break;
	}
	case 2:		/* tcp dport P counter drop */
		l4(r, IPPROTO_TCP, port);
		counter(r);
		verdict(r, NF_DROP, NULL);
		break;
	case 3: {	/* ip saddr @blk counter drop */
		struct nftnl_expr *e;

		ipv4(r);
		payload(r, NFT_PAYLOAD_NETWORK_HEADER, 12, 4);
		e = expr(r, "lookup");
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
		nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, "blk");
		counter(r);
		verdict(r, NF_DROP, NULL);
		break;
	}
	case 4: {	/* ip saddr 10.c.a.b tcp dport P jump sub */
		uint8_t addr[4] = { 10, c, a, b };

		ipv4(r);
		payload(r, NFT_PAYLOAD_NETWORK_HEADER, 12, 4);
		cmp(r, addr, 4);
		l4(r, IPPROTO_TCP, port);
		verdict(r, NFT_JUMP, "sub");
		break;
	}
	default:	/* udp dport P counter accept */
		l4(r, IPPROTO_UDP, port);
		counter(r);
		verdict(r, NF_ACCEPT, NULL);
		break;
	}
}

static void add_table(struct batch *b)
{
	struct nftnl_table *t = nftnl_table_alloc();
	struct nlmsghdr *nlh;

	nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, FAMILY);
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, TABLE);
	nlh = msg_begin(b, NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWTABLE, NLM_F_CREATE);
	nftnl_table_nlmsg_build_payload(nlh, t);
	msg_end(b, nlh);
	nftnl_table_free(t);
}

/* A set of ipv4_addr (nft's type 7), with the user data nft writes. */
static void add_set(struct batch *b, const char *name, uint32_t flags, uint32_t id)
{
	static const uint8_t udata[6] = { 0, 4, 2, 0, 0, 0 };	/* key byteorder: big endian */
	struct nftnl_set *s = nftnl_set_alloc();
	struct nlmsghdr *nlh;

	nftnl_set_set_u32(s, NFTNL_SET_FAMILY, FAMILY);
	nftnl_set_set_str(s, NFTNL_SET_TABLE, TABLE);
	nftnl_set_set_str(s, NFTNL_SET_NAME, name);
	nftnl_set_set_u32(s, NFTNL_SET_FLAGS, flags);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, 7);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, 4);
	nftnl_set_set_u32(s, NFTNL_SET_ID, id);
	nftnl_set_set_data(s, NFTNL_SET_USERDATA, udata, sizeof(udata));
	nlh = msg_begin(b, NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWSET, NLM_F_CREATE);
	nftnl_set_nlmsg_build_payload(nlh, s);
	msg_end(b, nlh);
	nftnl_set_free(s);
}

static void add_chain(struct batch *b, const char *name, bool base)
{
	struct nftnl_chain *c = nftnl_chain_alloc();
	struct nlmsghdr *nlh;

	nftnl_chain_set_u32(c, NFTNL_CHAIN_FAMILY, FAMILY);
	nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, TABLE);
	nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, name);
	if (base) {
		nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, "filter");
		nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, NF_INET_LOCAL_IN);
		nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, 0);
		nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, NF_ACCEPT);
	}
	nlh = msg_begin(b, NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWCHAIN, NLM_F_CREATE);
	nftnl_chain_nlmsg_build_payload(nlh, c);
	msg_end(b, nlh);
	nftnl_chain_free(c);
}

/* The port's way: one libnftnl object per message, built, serialized, freed. */
static void add_rule(struct batch *b, const char *chain, uint32_t i, bool sub_rule)
{
	struct nftnl_rule *r = nftnl_rule_alloc();
	struct nlmsghdr *nlh;

	nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, FAMILY);
	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, TABLE);
	nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, chain);
	if (sub_rule) {		/* counter return */
		counter(r);
		verdict(r, NFT_RETURN, NULL);
	} else {
		rule_exprs(r, i);
	}
	nlh = msg_begin(b, NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND);
	nftnl_rule_nlmsg_build_payload(nlh, r);
	msg_end(b, nlh);
	nftnl_rule_free(r);
}

/* Elements as the port sends them: one nftnl_set holding them all, cut
 * into messages of < 64 KiB by libnftnl's iterator. */
static void add_elems(struct batch *b, const char *set, uint32_t n, bool interval, uint32_t base)
{
	struct nftnl_set *s = nftnl_set_alloc();
	struct nftnl_set_elems_iter *it;
	int more;

	nftnl_set_set_u32(s, NFTNL_SET_FAMILY, FAMILY);
	nftnl_set_set_str(s, NFTNL_SET_TABLE, TABLE);
	nftnl_set_set_str(s, NFTNL_SET_NAME, set);
	if (interval) {
		/* As nft sends CIDRs: 0.0.0.0 closes the range below the first
		 * start; then each /24 is its start and (flagged) its end. */
		struct nftnl_set_elem *e = nftnl_set_elem_alloc();
		uint32_t zero = 0;

		nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, &zero, 4);
		nftnl_set_elem_set_u32(e, NFTNL_SET_ELEM_FLAGS, NFT_SET_ELEM_INTERVAL_END);
		nftnl_set_elem_add(s, e);
	}
	for (uint32_t i = 0; i < n; i++) {
		struct nftnl_set_elem *e = nftnl_set_elem_alloc();
		uint32_t key = htonl(interval ? base + i * 512 : base + i);

		nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, &key, 4);
		nftnl_set_elem_add(s, e);
		if (interval) {
			e = nftnl_set_elem_alloc();
			key = htonl(base + i * 512 + 256);
			nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, &key, 4);
			nftnl_set_elem_set_u32(e, NFTNL_SET_ELEM_FLAGS, NFT_SET_ELEM_INTERVAL_END);
			nftnl_set_elem_add(s, e);
		}
	}
	it = nftnl_set_elems_iter_create(s);
	do {
		struct nlmsghdr *nlh = msg_begin(b, NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWSETELEM,
						 NLM_F_CREATE);

		more = nftnl_set_elems_nlmsg_build_payload_iter(nlh, it);
		msg_end(b, nlh);
	} while (more > 0);
	nftnl_set_elems_iter_destroy(it);
	nftnl_set_free(s);
}

/* CPU time of this process so far, user and system, in ms. */
static void cpu_ms(double *user, double *sys)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	*user = ru.ru_utime.tv_sec * 1e3 + ru.ru_utime.tv_usec / 1e3;
	*sys = ru.ru_stime.tv_sec * 1e3 + ru.ru_stime.tv_usec / 1e3;
}

/* build_ms: libnftnl objects and the batch buffer; kernel_ms: sendto() to
 * the ACK, which is the kernel doing the transaction. */
static void print_load(const char *what, double t0, double t_built, double t_done, struct batch *b,
		       int err, double u0, double s0)
{
	double u1, s1;

	cpu_ms(&u1, &s1);
	printf("case=%s ok=%d total_ms=%.3f build_ms=%.3f kernel_ms=%.3f user_ms=%.1f sys_ms=%.1f "
	       "msgs=%u bytes=%zu hwm_kb=%ld\n",
	       what, err == 0, (t_done - t0) / 1e3, (t_built - t0) / 1e3, (t_done - t_built) / 1e3,
	       u1 - u0, s1 - s0, b->nmsgs, b->len, vm_hwm_kb());
}

static int cmd_rules(uint32_t n, uint32_t nchains)
{
	struct batch b = { 0 };
	char name[32];
	double t0, t1, t2, u0, s0;
	int err;

	sock_open();
	cpu_ms(&u0, &s0);
	t0 = now_us();
	batch_begin(&b);
	add_table(&b);
	add_set(&b, "blk", 0, 1);
	add_chain(&b, "sub", false);
	for (uint32_t c = 0; c < nchains; c++) {
		snprintf(name, sizeof(name), "c%u", c);
		add_chain(&b, name, c == 0);
	}
	add_rule(&b, "sub", 0, true);
	/* Rule i lives in chain c(i mod nchains); chain by chain, as nft -f. */
	for (uint32_t c = 0; c < nchains; c++) {
		snprintf(name, sizeof(name), "c%u", c);
		for (uint32_t i = c; i < n; i += nchains)
			add_rule(&b, name, i, false);
	}
	batch_end(&b);
	t1 = now_us();
	err = batch_send(&b);
	t2 = now_us();
	print_load("rules", t0, t1, t2, &b, err, u0, s0);
	return err ? 1 : 0;
}

static int cmd_elems(uint32_t n, bool interval)
{
	struct batch b = { 0 };
	double t0, t1, t2, u0, s0;
	int err;

	sock_open();
	cpu_ms(&u0, &s0);
	t0 = now_us();
	batch_begin(&b);
	add_table(&b);
	add_set(&b, interval ? "nets" : "plain", interval ? NFT_SET_INTERVAL : 0, 1);
	add_elems(&b, interval ? "nets" : "plain", n, interval, interval ? 0x20000000 : 0x0a000000);
	batch_end(&b);
	t1 = now_us();
	err = batch_send(&b);
	t2 = now_us();
	print_load(interval ? "elems_interval" : "elems_plain", t0, t1, t2, &b, err, u0, s0);
	return err ? 1 : 0;
}

/* --- the raw dump ---------------------------------------------------------- */

/* One dump request; runs cb over every reply until NLMSG_DONE. */
static void dump_request(char *buf, uint16_t msg, uint16_t family, struct nftnl_rule *filter,
			 mnl_cb_t cb, void *data)
{
	uint32_t s = seq++;
	struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(buf, NFNL_SUBSYS_NFTABLES << 8 | msg,
						     family, NLM_F_DUMP, s);
	int ret;

	if (filter)
		nftnl_rule_nlmsg_build_payload(nlh, filter);
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		die("sendto");
	do {
		ssize_t n = mnl_socket_recvfrom(nl, buf, RECV_BUF);

		if (n < 0)
			die("recv");
		ret = mnl_cb_run(buf, n, s, portid, cb, data);
	} while (ret > MNL_CB_STOP);
	if (ret < 0)
		die("dump");
}

static int rule_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nftnl_rule *r = nftnl_rule_alloc();

	if (!r || nftnl_rule_nlmsg_parse(nlh, r) < 0)
		die("nftnl_rule_nlmsg_parse");
	(*(uint64_t *)data)++;
	nftnl_rule_free(r);
	return MNL_CB_OK;
}

struct chains {
	struct nftnl_chain **c;
	size_t n, cap;
};

static int chain_cb(const struct nlmsghdr *nlh, void *data)
{
	struct chains *cs = data;
	struct nftnl_chain *c = nftnl_chain_alloc();

	if (!c || nftnl_chain_nlmsg_parse(nlh, c) < 0)
		die("nftnl_chain_nlmsg_parse");
	if (cs->n == cs->cap) {
		cs->cap = cs->cap ? cs->cap * 2 : 64;
		cs->c = realloc(cs->c, cs->cap * sizeof(*cs->c));
		if (!cs->c)
			die("realloc");
	}
	cs->c[cs->n++] = c;
	return MNL_CB_OK;
}

/* Every rule, parsed into a struct nftnl_rule and counted. "chains": list
 * the chains, then one GETRULE dump per chain (table and chain named), as
 * the port does; "all": one GETRULE dump of everything. The kernel resumes
 * a rule dump by walking from the first rule the dump covers up to where the
 * last skb ended, so one dump of everything is quadratic in the number of
 * rules, a dump per chain only in each chain's length. */
static int cmd_dump(bool per_chain)
{
	char *buf = malloc(RECV_BUF);
	struct chains cs = { 0 };
	uint64_t count = 0;
	double t0, t1;

	sock_open();
	t0 = now_us();
	if (!per_chain) {
		dump_request(buf, NFT_MSG_GETRULE, NFPROTO_UNSPEC, NULL, rule_cb, &count);
	} else {
		dump_request(buf, NFT_MSG_GETCHAIN, NFPROTO_UNSPEC, NULL, chain_cb, &cs);
		for (size_t i = 0; i < cs.n; i++) {
			struct nftnl_rule *f = nftnl_rule_alloc();

			nftnl_rule_set_str(f, NFTNL_RULE_TABLE,
					   nftnl_chain_get_str(cs.c[i], NFTNL_CHAIN_TABLE));
			nftnl_rule_set_str(f, NFTNL_RULE_CHAIN,
					   nftnl_chain_get_str(cs.c[i], NFTNL_CHAIN_NAME));
			dump_request(buf, NFT_MSG_GETRULE,
				     nftnl_chain_get_u32(cs.c[i], NFTNL_CHAIN_FAMILY), f, rule_cb,
				     &count);
			nftnl_rule_free(f);
			nftnl_chain_free(cs.c[i]);
		}
		free(cs.c);
	}
	t1 = now_us();
	printf("case=dump ok=1 total_ms=%.3f rules=%llu chains=%zu hwm_kb=%ld\n", (t1 - t0) / 1e3,
	       (unsigned long long)count, cs.n, vm_hwm_kb());
	free(buf);
	return 0;
}

/* --- latency and rate ----------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void print_stats(const char *what, double *v, size_t n)
{
	double sum = 0;

	qsort(v, n, sizeof(*v), cmp_double);
	for (size_t i = 0; i < n; i++)
		sum += v[i];
	printf("case=%s ok=1 n=%zu median_us=%.1f p99_us=%.1f mean_us=%.1f min_us=%.1f max_us=%.1f",
	       what, n, v[n / 2], v[(size_t)((n - 1) * 0.99)], sum / n, v[0], v[n - 1]);
}

/* One commit of one element (key) into set, or of one rule into chain. */
static int one_commit(struct batch *b, const char *set, uint32_t key, const char *chain)
{
	batch_begin(b);
	if (set)
		add_elems(b, set, 1, false, key);
	else
		add_rule(b, chain, 2, false);	/* rule kind 2: tcp dport 3 counter drop */
	batch_end(b);
	return batch_send(b);
}

static int cmd_lat(uint32_t count)
{
	struct batch b = { 0 };
	double *v = calloc(count, sizeof(double));

	sock_open();
	for (uint32_t k = 0; k < count; k++) {
		double t0 = now_us();

		if (one_commit(&b, "lat", 0x0ac80000 + k, NULL))	/* 10.200.x.y */
			return 1;
		v[k] = now_us() - t0;
	}
	print_stats("lat", v, count);
	printf(" hwm_kb=%ld\n", vm_hwm_kb());
	return 0;
}

/* count one-message commits back to back, round robin over cs0..cs7
 * (elements) or cc0..cc7 (rules): the most one netlink socket does with no
 * BEAM at all. The same work as the port's 8 callers. */
static int cmd_rate(uint64_t count, bool rules)
{
	struct batch b = { 0 };
	char name[16];
	double t0, t;

	sock_open();
	t0 = now_us();
	for (uint64_t n = 0; n < count; n++) {
		unsigned w = n % 8;

		snprintf(name, sizeof(name), rules ? "cc%u" : "cs%u", w);
		if (one_commit(&b, rules ? NULL : name,
			       0x0a000000 + ((100 + w) << 16) + (uint32_t)(n / 8 % 65536),
			       rules ? name : NULL))
			return 1;
	}
	t = now_us();
	printf("case=rate ok=1 commits=%llu seconds=%.3f per_s=%.0f hwm_kb=%ld\n",
	       (unsigned long long)count, (t - t0) / 1e6, count / ((t - t0) / 1e6), vm_hwm_kb());
	return 0;
}

/* --- timing other programs --------------------------------------------------- */

/* Runs argv (its stdout to /dev/null) and waits; returns the exit status,
 * adds the child's peak RSS to *maxrss. */
static int run_child(char **argv, long *maxrss)
{
	struct rusage ru;
	int status;
	pid_t pid = fork();

	if (pid < 0)
		die("fork");
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);

		dup2(fd, STDOUT_FILENO);
		execvp(argv[0], argv);
		_exit(127);
	}
	if (wait4(pid, &status, 0, &ru) < 0)
		die("wait4");
	if (ru.ru_maxrss > *maxrss)
		*maxrss = ru.ru_maxrss;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int cmd_exec(uint32_t count, char **argv)
{
	double *v = calloc(count, sizeof(double));
	long maxrss = 0;

	for (uint32_t k = 0; k < count; k++) {
		double t0 = now_us();
		int st = run_child(argv, &maxrss);

		v[k] = now_us() - t0;
		if (st) {
			fprintf(stderr, "raw_loader: %s exited with %d\n", argv[0], st);
			printf("case=exec ok=0\n");
			return 1;
		}
	}
	if (count <= 20) {	/* the runs themselves, in order */
		printf("samples_us=");
		for (uint32_t k = 0; k < count; k++)
			printf("%s%.0f", k ? "," : "", v[k]);
		printf(" ");
	}
	print_stats("exec", v, count);
	printf(" child_maxrss_kb=%ld\n", maxrss);
	return 0;
}

/* P workers, each running argv (every "%w" replaced by its number) count
 * times; completed runs per second. */
static int cmd_execpar(unsigned p, uint64_t count, char **argv)
{
	uint64_t *done = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	double t0 = now_us(), t1;
	uint64_t total = 0;
	int failed = 0;

	if (done == MAP_FAILED || p > 256)
		die("mmap");
	for (unsigned w = 0; w < p; w++) {
		if (fork() == 0) {
			char *args[64], sub[64][64];
			long maxrss = 0;
			int i;

			for (i = 0; argv[i] && i < 63; i++) {
				char *at = strstr(argv[i], "%w");

				args[i] = argv[i];
				if (at) {
					snprintf(sub[i], sizeof(sub[i]), "%.*s%u%s", (int)(at - argv[i]),
						 argv[i], w, at + 2);
					args[i] = sub[i];
				}
			}
			args[i] = NULL;
			while (done[w] < count) {
				if (run_child(args, &maxrss))
					_exit(1);
				done[w]++;
			}
			_exit(0);
		}
	}
	for (unsigned w = 0; w < p; w++) {
		int st;

		wait(&st);
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			failed = 1;
	}
	t1 = now_us();
	for (unsigned w = 0; w < p; w++)
		total += done[w];
	printf("case=execpar ok=%d commits=%llu seconds=%.3f per_s=%.1f\n", !failed,
	       (unsigned long long)total, (t1 - t0) / 1e6, total / ((t1 - t0) / 1e6));
	return failed;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: raw_loader rules N CHAINS | elems N plain|interval | dump [all] | lat COUNT |\n"
		"       rate COUNT elem|rule | exec COUNT -- CMD... | execpar P COUNT -- CMD...\n");
	exit(2);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	if (!strcmp(argv[1], "rules") && argc == 4)
		return cmd_rules(strtoul(argv[2], NULL, 10), strtoul(argv[3], NULL, 10));
	if (!strcmp(argv[1], "elems") && argc == 4)
		return cmd_elems(strtoul(argv[2], NULL, 10), !strcmp(argv[3], "interval"));
	if (!strcmp(argv[1], "dump") && (argc == 2 || (argc == 3 && !strcmp(argv[2], "all"))))
		return cmd_dump(argc == 2);
	if (!strcmp(argv[1], "lat") && argc == 3)
		return cmd_lat(strtoul(argv[2], NULL, 10));
	if (!strcmp(argv[1], "rate") && argc == 4)
		return cmd_rate(strtoull(argv[2], NULL, 10), !strcmp(argv[3], "rule"));
	if (!strcmp(argv[1], "exec") && argc >= 5 && !strcmp(argv[3], "--"))
		return cmd_exec(strtoul(argv[2], NULL, 10), argv + 4);
	if (!strcmp(argv[1], "execpar") && argc >= 6 && !strcmp(argv[4], "--"))
		return cmd_execpar(strtoul(argv[2], NULL, 10), strtoull(argv[3], NULL, 10), argv + 5);
	usage();
}
