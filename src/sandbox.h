/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The last step of start-up: Landlock (files beneath /proc/sys/net only)
 * and the seccomp allow-list of system calls, see seccomp.c.
 */
#ifndef NFP_SANDBOX_H
#define NFP_SANDBOX_H

#include <stddef.h>

#include <ei.h>

/* For a test harness around the port's code (the fuzzer), never for the
 * port: no Landlock, and files may be opened and stat'ed (the harness
 * reads and writes its corpus); everything else as for the port. */
#define NFP_SANDBOX_HARNESS 1u

/* sysctl_dirfd: the descriptor of /proc/sys/net that openat() may use
 * (-1: none). extra: more system calls allowed as they are (a harness's
 * own needs). 0 or -1 after printing why. */
int nfp_seccomp_install(int sysctl_dirfd, const int *extra, size_t nextra, unsigned flags);
/* The self_check entries: seccomp (:filter or :off), landlock (ABI or :off). */
void nfp_seccomp_encode(ei_x_buff *x);

#endif /* NFP_SANDBOX_H */
