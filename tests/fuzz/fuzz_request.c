// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer harness for the request path: framing, ETF validation, the
 * dispatcher and every op handler behind it. Built by tests/fuzz/build.sh,
 * run by tests/fuzz/run.sh; never reaches the kernel (no_kernel.c).
 *
 * Input: byte 0 is a control byte, the rest is the payload.
 *   - bit 7 clear: the payload is one request term; the harness frames it
 *     (4-byte length) for the reader.
 *     bit 7 set: the payload is fed to the reader as it is, so it may hold
 *     several frames (stateful sequences: alloc, then set, then get),
 *     oversize ones, zero-length ones, or a truncated last one.
 *   - bits 0-6 choose where the stream is cut into two nfp_reader_feed()
 *     calls.
 * (a) the stream goes through nfp_reader_feed() in those two chunks, each
 *     frame (and each oversize notice) answered as main.c answers it;
 * (b) the payload goes straight to nfp_dispatch() as one frame.
 * Every reply must be a well-formed {Id, Result} term. After each input
 * every handle is freed (nfp_ops_cleanup), so inputs are independent and
 * handle ids are the same each time (the first one is 65537).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ei.h>

#include <seccomp.h>

#include "dispatch.h"
#include "sandbox.h"
#include "etf.h"
#include "frame.h"
#include "ops.h"

/* Frames above this are oversize: small enough that -max_len reaches it. */
#define FUZZ_MAX_FRAME 16384

static ei_x_buff out;
static bool verbose;	/* FUZZ_VERBOSE=1: print every reply to stderr */

static void die(const char *why)
{
	fprintf(stderr, "fuzz_request: bad reply: %s\n", why);
	abort();
}

static bool is_atom(const char *buf, int idx, const char *name)
{
	char a[MAXATOMLEN_UTF8];

	return nfp_is_atom(buf, idx) && ei_decode_atom(buf, &idx, a) == 0 &&
	       (!name || strcmp(a, name) == 0);
}

/* The reply must be {nil | Id, ok | {ok, _} | {error, _}}, and nothing
 * after it. */
static void check_reply(const ei_x_buff *x)
{
	char err[256];
	int idx = 0, end, version, arity, type, size;

	if (x->index <= 0 || ei_decode_version(x->buff, &idx, &version) < 0)
		die("no version byte");
	end = idx;
	if (nfp_etf_validate(x->buff, x->index, &end, 0, err, sizeof(err)) < 0)
		die(err);
	if (end != x->index)
		die("bytes after the reply term");
	if (ei_decode_tuple_header(x->buff, &idx, &arity) < 0 || arity != 2)
		die("not a 2-tuple");
	if (ei_get_type(x->buff, &idx, &type, &size) < 0)
		die("no id");
	if (is_atom(x->buff, idx, "nil")) {
		ei_skip_term(x->buff, &idx);
	} else {
		unsigned long long id;

		if (ei_decode_ulonglong(x->buff, &idx, &id) < 0)
			die("the id is neither nil nor a u64");
	}
	if (is_atom(x->buff, idx, "ok")) {
		ei_skip_term(x->buff, &idx);
	} else {
		if (ei_decode_tuple_header(x->buff, &idx, &arity) < 0 || arity != 2)
			die("the result is not ok or a 2-tuple");
		if (!is_atom(x->buff, idx, "ok") && !is_atom(x->buff, idx, "error"))
			die("the result tag is neither ok nor error");
		if (is_atom(x->buff, idx, "error")) {
			ei_skip_term(x->buff, &idx);
			ei_get_type(x->buff, &idx, &type, &size);
			/* A reason is a message, an atom or a kernel error map. */
			if (type != ERL_BINARY_EXT && type != ERL_MAP_EXT && !nfp_is_atom(x->buff, idx))
				die("the error reason is not a binary, atom or map");
			if (type == ERL_BINARY_EXT && size == 0)
				die("an empty error message");
			if (verbose && type == ERL_BINARY_EXT)
				fprintf(stderr, "  reason: %.*s\n", size, x->buff + idx + 5);
			ei_skip_term(x->buff, &idx);
		} else {
			ei_skip_term(x->buff, &idx);
			ei_skip_term(x->buff, &idx);
		}
	}
	if (idx != x->index)
		die("reply shape");
	if (verbose) {
		char *s = NULL;

		idx = 1;
		if (ei_s_print_term(&s, x->buff, &idx) >= 0 && s)
			fprintf(stderr, "  reply: %s\n", s);
		free(s);
	}
}

static void on_frame(void *ctx, const char *buf, size_t len)
{
	(void)ctx;
	nfp_dispatch(buf, len, &out);
	check_reply(&out);
}

static void on_oversize(void *ctx, uint32_t len, uint32_t max)
{
	(void)ctx;
	if (len <= max)
		die("oversize callback for a frame within the limit");
	nfp_reply_oversize(&out, len, max);
	check_reply(&out);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	ei_init();
	ei_x_new(&out);
	verbose = getenv("FUZZ_VERBOSE") && *getenv("FUZZ_VERBOSE") == '1';
	/* The port's seccomp filter, as the port has it (a call the request
	 * path makes that the port may not kills the fuzzer with SIGSYS,
	 * which libFuzzer reports as a crash), plus what libFuzzer and the
	 * sanitizers call themselves: threads, timers, corpus files, reports.
	 * No Landlock, no sysctl directory (sysctl ops answer an error here:
	 * the fuzzer never writes the host's sysctls). FUZZ_SANDBOX=0 runs
	 * without it. */
	if (!getenv("FUZZ_SANDBOX") || strcmp(getenv("FUZZ_SANDBOX"), "0") != 0) {
		static const int harness[] = {
			SCMP_SYS(clone), SCMP_SYS(clone3), SCMP_SYS(set_robust_list),
			SCMP_SYS(rseq), SCMP_SYS(getrusage), SCMP_SYS(setitimer),
			SCMP_SYS(getitimer), SCMP_SYS(alarm), SCMP_SYS(sigaltstack),
			SCMP_SYS(rt_sigtimedwait), SCMP_SYS(rt_sigsuspend), SCMP_SYS(wait4),
			SCMP_SYS(getdents), SCMP_SYS(getdents64), SCMP_SYS(mkdir), SCMP_SYS(unlink),
			SCMP_SYS(rename), SCMP_SYS(readlink), SCMP_SYS(readlinkat),
			SCMP_SYS(access), SCMP_SYS(faccessat), SCMP_SYS(faccessat2),
			SCMP_SYS(stat), SCMP_SYS(lstat), SCMP_SYS(statx), SCMP_SYS(sched_getaffinity),
			SCMP_SYS(sched_setaffinity), SCMP_SYS(getppid), SCMP_SYS(getpgrp),
			SCMP_SYS(dup), SCMP_SYS(dup2), SCMP_SYS(dup3), SCMP_SYS(pipe),
			SCMP_SYS(pipe2), SCMP_SYS(times), SCMP_SYS(sysinfo), SCMP_SYS(uname),
			SCMP_SYS(ftruncate), SCMP_SYS(fsync), SCMP_SYS(pread64),
			SCMP_SYS(pwrite64), SCMP_SYS(getcwd), SCMP_SYS(prlimit64),
			SCMP_SYS(getrlimit), SCMP_SYS(setrlimit),
			/* LeakSanitizer stops the world with a ptrace()ing thread. */
			SCMP_SYS(ptrace), SCMP_SYS(waitid), SCMP_SYS(sched_getparam),
		};

		if (nfp_seccomp_install(-1, harness, sizeof(harness) / sizeof(harness[0]),
					NFP_SANDBOX_HARNESS) < 0)
			abort();
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct nfp_frame_cb cb = { .frame = on_frame, .oversize = on_oversize };
	struct nfp_reader r;
	const char *payload;
	size_t plen, slen, split;
	char *stream, *frame;
	uint8_t ctl;

	if (size < 1)
		return 0;
	ctl = data[0];
	payload = (const char *)data + 1;
	plen = size - 1;

	/* (a) the reader, in two chunks. */
	if (ctl & 0x80) {
		slen = plen;
		stream = malloc(slen ? slen : 1);
		memcpy(stream, payload, plen);
	} else {
		slen = plen + 4;
		stream = malloc(slen);
		stream[0] = (char)(plen >> 24);
		stream[1] = (char)(plen >> 16);
		stream[2] = (char)(plen >> 8);
		stream[3] = (char)plen;
		memcpy(stream + 4, payload, plen);
	}
	split = (size_t)(ctl & 0x7f) * slen / 127;
	nfp_reader_init(&r, FUZZ_MAX_FRAME);
	if (nfp_reader_feed(&r, stream, split, &cb, NULL) < 0 ||
	    nfp_reader_feed(&r, stream + split, slen - split, &cb, NULL) < 0)
		die("nfp_reader_feed ran out of memory");
	(void)nfp_reader_partial(&r);
	nfp_reader_release(&r);
	free(stream);

	/* (b) the payload as one frame, from an exact-size copy. */
	frame = malloc(plen ? plen : 1);
	memcpy(frame, payload, plen);
	nfp_dispatch(frame, plen, &out);
	check_reply(&out);
	free(frame);

	nfp_ops_cleanup();
	/* Keep a huge reply buffer from one input out of the next. */
	if (out.buffsz > (1 << 20)) {
		ei_x_free(&out);
		ei_x_new(&out);
	}
	return 0;
}
