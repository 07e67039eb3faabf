/*
 * helpers.h - what the unit tests share: fixture paths, sessions on fixture trees, golden
 * file comparison, temporary directories, files and fixture copies.
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

/* Makes a new directory /tmp/memsnap-<stem>-XXXXXX (mode 0700), its path into dir (cap
 * bytes); fails the test on error. */
void temp_dir(char *dir, size_t cap, const char *stem);
/* Removes dir and everything below it (links are removed, not followed); 0, or -1 when
 * something could not be removed. For cmocka teardowns too. */
int temp_dir_remove(const char *dir);
/* Writes len bytes (write_text: text) to path, replacing it; fails the test on error. */
void write_bytes(const char *path, const void *data, size_t len);
void write_text(const char *path, const char *text);
/* The whole of path, NUL-terminated, malloc'd; NULL when it cannot be read. */
char *read_text(const char *path);
/* Copies the file from to the file to (created 0600, or replaced); fails the test on error. */
void copy_file(const char *from, const char *to);
/* Copies the fixture tree <fixture> (its proc and sys and whatever else it holds) into dir,
 * which exists; fails the test on error. */
void copy_fixture(const char *fixture, const char *dir);

#endif
