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

#endif
