/*
 * json_out.h - the jansson helpers that libmemsnap's JSON writers (heap, trace stats, timeline
 * report) share, so that a figure is written the same way in every document.
 */
#ifndef MEMSNAP_JSON_OUT_H
#define MEMSNAP_JSON_OUT_H

#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* An unsigned figure: an integer, or a real above INT64_MAX (which jansson cannot hold). */
static inline json_t *ms__json_u64(uint64_t v)
{
    return v > (uint64_t)INT64_MAX ? json_real((double)v) : json_integer((json_int_t)v);
}

/* An address as a "0x..." string. */
static inline json_t *ms__json_hex(uint64_t v)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "0x%" PRIx64, v);
    return json_string(buf);
}

/* Writes o and a newline on fp unless bad (building o failed), then drops o. Returns true when
 * building or writing failed. */
static inline bool ms__json_line(json_t *o, FILE *fp, size_t flags, bool bad)
{
    if (!bad)
        bad = json_dumpf(o, fp, flags) != 0 || fputc('\n', fp) == EOF;
    json_decref(o);
    return bad;
}

#endif /* MEMSNAP_JSON_OUT_H */
