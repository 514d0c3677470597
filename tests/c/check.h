/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A tiny assertion helper for the C unit tests: every check prints one
 * TAP line ("ok N - ..." or "not ok N - ..."), check_done() prints the plan
 * and returns the exit status (non-zero when any check failed), so meson
 * sees the failure.
 *
 *   CHECK(cond, "what it means %d", x);
 *   CHECK_INT(got, want, "label");
 *   CHECK_U64(got, want, "label");
 *   CHECK_STR(got, want, "label");
 *   CHECK_CONTAINS(haystack, needle, "label");
 *   return check_done();
 */
#ifndef NFP_TEST_CHECK_H
#define NFP_TEST_CHECK_H

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static unsigned check_count;
static unsigned check_failed;

__attribute__((format(printf, 5, 6)))
static inline bool check_impl(bool ok, const char *file, int line, const char *detail,
			      const char *fmt, ...)
{
	va_list ap;

	check_count++;
	printf("%s %u - ", ok ? "ok" : "not ok", check_count);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!ok) {
		check_failed++;
		printf("#   at %s:%d%s%s\n", file, line, detail && *detail ? ": " : "",
		       detail ? detail : "");
	}
	fflush(stdout);
	return ok;
}

/* Prints a comment line ("# ..."). */
__attribute__((format(printf, 1, 2)))
static inline void check_note(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

#define CHECK(cond, ...) check_impl(!!(cond), __FILE__, __LINE__, "failed: " #cond, __VA_ARGS__)

#define CHECK_INT(got, want, label)						\
	({									\
		long long g_ = (long long)(got), w_ = (long long)(want);	\
		char d_[160];							\
		snprintf(d_, sizeof(d_), "got %lld, want %lld", g_, w_);	\
		check_impl(g_ == w_, __FILE__, __LINE__, d_, "%s", (label));	\
	})

#define CHECK_U64(got, want, label)						\
	({									\
		uint64_t g_ = (uint64_t)(got), w_ = (uint64_t)(want);		\
		char d_[160];							\
		snprintf(d_, sizeof(d_), "got %" PRIu64 ", want %" PRIu64, g_, w_); \
		check_impl(g_ == w_, __FILE__, __LINE__, d_, "%s", (label));	\
	})

static inline bool check_str_impl(const char *got, const char *want, bool contains,
				  const char *file, int line, const char *label)
{
	char d[2600];
	bool ok = got && want && (contains ? strstr(got, want) != NULL : strcmp(got, want) == 0);

	snprintf(d, sizeof(d), "got \"%.2000s\", want %s\"%.500s\"", got ? got : "(null)",
		 contains ? "it to contain " : "", want ? want : "(null)");
	return check_impl(ok, file, line, d, "%s", label);
}

#define CHECK_STR(got, want, label) check_str_impl((got), (want), false, __FILE__, __LINE__, (label))
#define CHECK_CONTAINS(got, want, label) check_str_impl((got), (want), true, __FILE__, __LINE__, (label))

/* The plan line and the exit status. */
static inline int check_done(void)
{
	printf("1..%u\n", check_count);
	if (check_failed)
		printf("# %u of %u checks FAILED\n", check_failed, check_count);
	fflush(stdout);
	return check_failed ? 1 : 0;
}

#endif /* NFP_TEST_CHECK_H */
