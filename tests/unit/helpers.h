/*
 * helpers.h - what the unit tests share: fixture paths, sessions on fixture trees, golden
 * file comparison.
 */
#ifndef MEMSNAP_TEST_HELPERS_H
#define MEMSNAP_TEST_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "memsnap.h"

/* "$MEMSNAP_FIXTURES/<name>" into a static buffer (valid until the next call). */
const char *fixture_path(const char *name);
/* Opens a session whose procfs is <fixture>/proc and sysfs <fixture>/sys; fails the test on
 * error. */
ms_session *fixture_session(const char *fixture);
/* Compares `got` with $MEMSNAP_GOLDEN/<name>; with MEMSNAP_UPDATE_GOLDEN=1 rewrites the file
 * instead. Fails the test with both texts on a mismatch. */
void assert_golden(const char *name, const char *got);
/* Runs fn(fp, arg) on an in-memory stream and returns the malloc'd text written. */
char *capture_output(int (*fn)(FILE *fp, const void *arg), const void *arg);
/* Captures pid from a fixture tree in a fresh session. Returns ms_capture()'s code; the session's
 * error line is copied into err (when not NULL). */
int fixture_capture(const char *fixture, pid_t pid, unsigned what, ms_snapshot *snap, char *err,
                    size_t errlen);
/* Pins what varies between runs and hosts, for golden output: timestamp_ns and monotonic_ns
 * become FIXED_TIMESTAMP_NS and FIXED_MONOTONIC_NS, and the statm fields are rescaled to 4 KiB
 * pages. */
#define FIXED_TIMESTAMP_NS UINT64_C(1700000000123456789) /* 2023-11-14T22:13:20.123456789Z */
#define FIXED_MONOTONIC_NS UINT64_C(5000000000)
void snapshot_pin(ms_snapshot *snap);
/* Fails the test, showing both, unless haystack contains needle. */
void assert_contains(const char *haystack, const char *needle);

#endif
