/*
 * read.c - reading monitor output (docs/monitor-format.md) for ms_timeline_open/analyze:
 * the samples into columns, one per metric, and the start, end, alert, OOM and marker
 * records into normalized JSON objects (docs/analyze-format.md), the same from either format.
 *
 * CSV is split by hand over the mapped file (RFC 4180 quoting, line breaks inside quotes
 * included) with a digit loop for the numbers. JSON lines go through jansson, except sample
 * records on a fast path: a validating scanner that accepts only what it can check exactly
 * (plain ASCII strings, integers, the expected types in the fields it reads, no repeated
 * field) and hands any other line to jansson, whose verdict is final. So a malformed line is
 * always an error, and both paths read the same values. Errors name the file and the line; a
 * cut last line (the monitor was killed while writing it) is a warning and is ignored. A big
 * file is read in chunks by several threads on the fast paths, the rest in order (see
 * "Reading in parallel"): a million samples take well under a second.
 */
#include "timeline.h"

#include "../core/internal.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define SNAPSHOT_SCHEMA "memsnap.snapshot/1"

/* One sample as read, before it is stored in the columns. */
struct sample {
    uint64_t time_ns;
    uint64_t mono_ns; /* the snapshot's monotonic_ns, 0 when it has none */
    uint64_t seq;
    uint64_t v[MS__TL_METRICS];    /* bytes */
    uint8_t valid;                 /* bit m: v[m] read */
    uint8_t repeated;              /* bits of valid whose figure repeats an earlier reading */
    uint64_t limit[MS__TL_LIMITS]; /* the limits this sample shows */
    uint8_t limit_valid;           /* bit l: limit[l] read */
};

/* The reader's state over one file. */
struct rd {
    struct ms__tl_input *in;
    const char *end;                /* end of the file */
    unsigned long line;             /* number of the line being read, 1-based */
    bool last;                      /* the line being read has no newline: the file's last */
    bool quiet;                     /* a chunk's reader: errors are not reported (see below) */
    uint64_t slimit[MS__TL_LIMITS]; /* the largest limits seen in samples */
    uint8_t slimit_valid;
    unsigned long unknown_line; /* the first record of an unknown kind */
    char unknown_kind[32];
};

/* Sets the calling thread's error to "FILE:LINE: message" (ms_last_error) and returns -1. */
__attribute__((format(printf, 2, 3))) static int rd_error(struct rd *r, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (!r->quiet)
        ms__error(strcmp(msg, "out of memory") == 0 ? MS_ENOMEM : MS_EPARSE, "%s:%lu: %s",
                  r->in->path, r->line, msg);
    return -1;
}

/* ---------------------------------------------------------------------------------------- */
/* Storing samples and records                                                              */
/* ---------------------------------------------------------------------------------------- */

/* Makes room for one more sample in every column; -1 when out of memory. */
/* Makes room for cap samples in every column of s. */
static int series_reserve(struct ms__tl_series *s, size_t cap)
{
    size_t old = s->cap;
    void *p;
    if (cap <= old)
        return 0;
    if (!(p = ms__tl_big_realloc(s->time_ns, old * 8, cap * 8)))
        return -1;
    s->time_ns = p;
    if (!(p = ms__tl_big_realloc(s->mono_ns, old * 8, cap * 8)))
        return -1;
    s->mono_ns = p;
    if (!(p = ms__tl_big_realloc(s->seq, old * 8, cap * 8)))
        return -1;
    s->seq = p;
    for (int m = 0; m < MS__TL_METRICS; m++) {
        if (!(p = ms__tl_big_realloc(s->val[m], old * 8, cap * 8)))
            return -1;
        s->val[m] = p;
    }
    if (!(p = ms__tl_big_realloc(s->valid, old, cap)))
        return -1;
    s->valid = p;
    s->cap = cap;
    return 0;
}

static int series_grow(struct ms__tl_series *s)
{
    return series_reserve(s, s->cap ? s->cap * 2 : 4096);
}

/* Frees the columns of s. */
static void series_free(struct ms__tl_series *s)
{
    ms__tl_big_free(s->time_ns, s->cap * 8);
    ms__tl_big_free(s->mono_ns, s->cap * 8);
    ms__tl_big_free(s->seq, s->cap * 8);
    for (int m = 0; m < MS__TL_METRICS; m++)
        ms__tl_big_free(s->val[m], s->cap * 8);
    ms__tl_big_free(s->valid, s->cap);
    memset(s, 0, sizeof(*s));
}

/* The big arrays (sample columns, workspaces) are mapped with transparent huge pages asked
 * for: on a million samples, 4 KiB pages cost more in page faults than the reading. */
#if defined(__SANITIZE_ADDRESS__)
/* Under AddressSanitizer, malloc: it watches malloc'd memory, not mappings. */
void *ms__tl_big_realloc(void *p, size_t old, size_t bytes)
{
    (void)old;
    return realloc(p, bytes ? bytes : 1);
}

void ms__tl_big_free(void *p, size_t bytes)
{
    (void)bytes;
    free(p);
}
#else
void *ms__tl_big_realloc(void *p, size_t old, size_t bytes)
{
    size_t page = 4096;
    old = (old + page - 1) / page * page;
    bytes = (bytes + page - 1) / page * page;
    if (!bytes)
        bytes = page;
    void *q = p && old
                  ? mremap(p, old, bytes, MREMAP_MAYMOVE)
                  : mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (q == MAP_FAILED)
        return NULL;
    size_t fresh = p && old ? old : 0;
    if (bytes > fresh) {
        /* hints: without THP or MADV_POPULATE_WRITE (Linux 5.14) they fail, and that is fine */
        madvise((char *)q + fresh, bytes - fresh, MADV_HUGEPAGE);
#ifdef MADV_POPULATE_WRITE
        /* fault the pages in now, at once, not one by one under the threads' feet */
        madvise((char *)q + fresh, bytes - fresh, MADV_POPULATE_WRITE);
#endif
    }
    return q;
}

void ms__tl_big_free(void *p, size_t bytes)
{
    if (p)
        munmap(p, bytes ? bytes : 1);
}
#endif

/* The figures a sample that is not "full" repeats from the monitor's last full one (statm's
 * RSS is fresh in every sample). */
#define MS__TL_REPEATED_UNLESS_FULL                                                                \
    ((1u << MS__TL_PSS) | (1u << MS__TL_CGROUP) | (1u << MS__TL_SYSTEM) | (1u << MS__TL_GPU) |     \
     (1u << MS__TL_TREE_RSS))

/* Marks what smp repeats: everything but RSS when it is not full, PSS when its pss_age_ns says
 * it was read before. A file without these fields repeats nothing. */
static void sample_repeats(struct sample *smp, bool not_full, bool old_pss)
{
    if (not_full)
        smp->repeated |= MS__TL_REPEATED_UNLESS_FULL;
    if (old_pss)
        smp->repeated |= 1u << MS__TL_PSS;
}

/* Appends smp to the columns of s, without the figures it only repeats (they are not samples
 * of their metric: counted again, one spike would be several); -1 when out of memory. */
static int series_add(struct ms__tl_series *s, const struct sample *smp)
{
    if (s->n == s->cap && series_grow(s) != 0)
        return -1;
    size_t i = s->n++;
    s->time_ns[i] = smp->time_ns;
    s->mono_ns[i] = smp->mono_ns;
    s->seq[i] = smp->seq;
    for (int m = 0; m < MS__TL_METRICS; m++)
        s->val[m][i] = smp->v[m];
    s->valid[i] = smp->valid & (uint8_t)~smp->repeated;
    return 0;
}

/* Keeps the largest of each limit in *lim (bit l of *valid: lim[l] set). */
static void limits_max(uint64_t *lim, uint8_t *valid, const uint64_t *v, uint8_t v_valid)
{
    for (int l = 0; l < MS__TL_LIMITS; l++)
        if ((v_valid >> l & 1) && (!(*valid >> l & 1) || v[l] > lim[l])) {
            lim[l] = v[l];
            *valid |= (uint8_t)(1u << l);
        }
}

/* Appends smp to the file's samples and remembers its limits; prints the error on failure. */
static int add_sample(struct rd *r, const struct sample *smp)
{
    if (series_add(&r->in->s, smp) != 0)
        return rd_error(r, "out of memory");
    limits_max(r->slimit, &r->slimit_valid, smp->limit, smp->limit_valid);
    return 0;
}

/* system used = total - available, when both were read. */
static void system_used(struct sample *smp, bool have_total, uint64_t total, bool have_avail,
                        uint64_t avail)
{
    if (have_total) {
        smp->limit[MS__TL_LIMIT_SYSTEM] = total;
        smp->limit_valid |= 1u << MS__TL_LIMIT_SYSTEM;
    }
    if (have_total && have_avail && avail <= total) {
        smp->v[MS__TL_SYSTEM] = total - avail;
        smp->valid |= 1u << MS__TL_SYSTEM;
    }
}

/* Sets key of o to v (an integer) or null; 0, or -1 when out of memory. */
static int set_u64(json_t *o, const char *key, bool valid, uint64_t v)
{
    return json_object_set_new(o, key, valid ? json_integer((json_int_t)v) : json_null());
}

/* The JSON string of s (len bytes), with bytes that are not UTF-8 replaced by U+FFFD as the
 * monitor writes them (files from before it did so held them raw); NULL when out of memory. */
static json_t *rd_string(const char *s, size_t len)
{
    json_t *v = json_stringn(s, len);
    if (v)
        return v;
    size_t clen;
    char *clean = ms_utf8_clean(s, len, &clen);
    v = clean ? json_stringn(clean, clen) : NULL;
    free(clean);
    return v;
}

/* Sets key of o to the string s (len bytes) or null; -1 when out of memory. */
static int set_str(json_t *o, const char *key, const char *s, size_t len)
{
    json_t *v = s ? rd_string(s, len) : json_null();
    return v ? json_object_set_new(o, key, v) : -1;
}

/* Appends the normalized record o to list (taking it), and to *at (one entry per record of
 * list) its place: the samples read before it; prints the error on failure. */
static int add_record(struct rd *r, json_t *list, size_t **at, json_t *o)
{
    size_t n = json_array_size(list);
    if (n == 0 || (n & (n - 1)) == 0) { /* full at 0, 1, 2, 4, ...: room for twice as many */
        size_t *p = realloc(*at, (n ? 2 * n : 1) * sizeof(**at));
        if (!p) {
            json_decref(o);
            return rd_error(r, "out of memory");
        }
        *at = p;
    }
    if (!o || json_array_append_new(list, o) != 0)
        return rd_error(r, "out of memory");
    (*at)[n] = r->in->s.n;
    return 0;
}

/* Remembers a record kind analyze does not know (it is ignored). */
static void unknown_kind(struct rd *r, const char *kind, size_t len)
{
    if (!r->in->unknown++) {
        r->unknown_line = r->line;
        snprintf(r->unknown_kind, sizeof(r->unknown_kind), "%.*s", (int)len, kind);
    }
}

/* Takes the limits and thresholds of the normalized start record n (docs/analyze-format.md)
 * as the file's. Returns 0. */
static int start_settings(struct rd *r, json_t *n)
{
    json_t *lim = json_object_get(n, "limits"), *thr = json_object_get(n, "thresholds");
    for (int l = 0; l < MS__TL_LIMITS; l++) {
        json_t *v = json_object_get(lim, ms__tl_limit_keys[l]);
        if (json_is_integer(v)) {
            r->in->limit[l] = (uint64_t)json_integer_value(v);
            r->in->limit_valid |= (uint8_t)(1u << l);
        }
    }
    json_t *w = json_object_get(thr, "warning_pct"), *c = json_object_get(thr, "critical_pct");
    r->in->warning_pct = json_is_number(w) ? json_number_value(w) : -1;
    r->in->critical_pct = json_is_number(c) ? json_number_value(c) : -1;
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* CSV                                                                                      */
/* ---------------------------------------------------------------------------------------- */

/* The columns analyze reads; the rest are skipped. */
enum col {
    C_RECORD,
    C_SEQ,
    C_TIME,
    C_JOB,
    C_RANK,
    C_WORLD,
    C_PID,
    C_RSS,
    C_PSS,
    C_CG_CUR,
    C_CG_MAX,
    C_SYS_TOTAL,
    C_SYS_AVAIL,
    C_GPU_USED,
    C_GPU_TOTAL,
    C_TREE_RSS,
    C_EV_LEVEL,
    C_EV_METRIC,
    C_EV_USED,
    C_EV_LIMIT,
    C_EV_PCT,
    C_EV_TEXT,
    C_FULL,
    C_PSS_AGE,
    C_MONO,
    C__COUNT
};

static const struct {
    const char *name;
    bool required; /* a header without it is malformed */
} columns[C__COUNT] = {
    [C_RECORD] = {"record", true},
    [C_SEQ] = {"seq", true},
    [C_TIME] = {"time_ns", true},
    [C_JOB] = {"job_id", false},
    [C_RANK] = {"rank", false},
    [C_WORLD] = {"world_size", false},
    [C_PID] = {"pid", false},
    [C_RSS] = {"process.rss_bytes", true},
    [C_PSS] = {"process.pss_bytes", false},
    [C_CG_CUR] = {"cgroup.current_bytes", false},
    [C_CG_MAX] = {"cgroup.max_bytes", false},
    [C_SYS_TOTAL] = {"system.total_bytes", false},
    [C_SYS_AVAIL] = {"system.available_bytes", false},
    [C_GPU_USED] = {"gpu.used_bytes", false},
    [C_GPU_TOTAL] = {"gpu.total_bytes", false},
    [C_TREE_RSS] = {"tree.rss_bytes", false},
    [C_EV_LEVEL] = {"event.level", true},
    [C_EV_METRIC] = {"event.metric", true},
    [C_EV_USED] = {"event.used_bytes", true},
    [C_EV_LIMIT] = {"event.limit_bytes", true},
    [C_EV_PCT] = {"event.percent", true},
    [C_EV_TEXT] = {"event.text", true},
    [C_FULL] = {"full", false},
    [C_PSS_AGE] = {"pss_age_ns", false},
    [C_MONO] = {"monotonic_ns", false},
};

/* One field of a row: its bytes in the file (inside the quotes when quoted). */
struct fld {
    const char *p;
    size_t len;
    bool quoted; /* may hold doubled quotes */
};

struct csv {
    struct fld *f;     /* the fields of the current row */
    size_t nf;         /* fields in the header: every row must have as many */
    int col[C__COUNT]; /* the field index of each column analyze reads, -1 when absent */
    char *buf;         /* an unquoted field */
    size_t buflen;
};

/* 1 for the bytes that end an unquoted CSV field (or make it malformed). */
static const unsigned char csv_stop[256] = {['\n'] = 1, ['\r'] = 1, ['"'] = 1, [','] = 1};

/* Splits the row at *pp into at most max fields (counting the rest), advances *pp past its
 * line break and r->line past the line breaks inside quotes. Returns the number of fields,
 * -1 on malformed quoting (error printed), or -2 when the row is cut: the file ends inside it
 * or without its line break. */
static long csv_split(struct rd *r, const char **pp, struct fld *f, size_t max)
{
    const char *q = *pp, *end = r->end;
    size_t n = 0;
    unsigned long extra = 0; /* line breaks inside quoted fields */
    for (;;) {
        struct fld cur = {q, 0, false};
        if (q < end && *q == '"') {
            const char *s = ++q;
            for (;;) {
                const char *quote = memchr(q, '"', (size_t)(end - q));
                if (!quote)
                    return -2;
                q = quote + 1;
                if (q < end && *q == '"') {
                    q++;
                    continue;
                }
                cur = (struct fld){s, (size_t)(quote - s), true};
                break;
            }
            for (const char *nl = s; (nl = memchr(nl, '\n', (size_t)(cur.p + cur.len - nl))); nl++)
                extra++;
            if (q < end && *q != ',' && *q != '\n' && *q != '\r')
                return rd_error(r, "text after a closing quote in field %zu", n + 1);
        } else {
            while (q < end && !csv_stop[(unsigned char)*q])
                q++;
            if (q < end && *q == '"')
                return rd_error(r, "a quote inside an unquoted field (field %zu)", n + 1);
            cur.len = (size_t)(q - cur.p);
        }
        if (n < max)
            f[n] = cur;
        n++;
        if (q >= end)
            return -2;
        if (*q == ',') {
            q++;
            continue;
        }
        if (*q == '\r' && ++q < end && *q != '\n')
            return rd_error(r, "a carriage return inside a row (field %zu)", n);
        if (q >= end)
            return -2;
        *pp = q + 1;
        r->line += extra;
        return (long)n;
    }
}

/* Field f without its quoting, in c->buf when it had doubled quotes; its length in *len. */
static const char *csv_text(struct csv *c, const struct fld *f, size_t *len)
{
    if (!f->quoted || !memchr(f->p, '"', f->len)) {
        *len = f->len;
        return f->p;
    }
    if (f->len + 1 > c->buflen) {
        char *b = realloc(c->buf, f->len + 1);
        if (!b)
            return NULL;
        c->buf = b;
        c->buflen = f->len + 1;
    }
    size_t n = 0;
    for (size_t i = 0; i < f->len; i++) {
        c->buf[n++] = f->p[i];
        if (f->p[i] == '"')
            i++; /* "" is one quote */
    }
    c->buf[n] = '\0';
    *len = n;
    return c->buf;
}

/* Parses a non-negative integer (at most INT64_MAX). Returns 1 with *out set, 0 when empty,
 * -1 when it is not one. */
static int parse_u64(const char *p, size_t len, uint64_t *out)
{
    if (!len)
        return 0;
    if (len > 19)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned d = (unsigned)(unsigned char)p[i] - '0';
        if (d > 9)
            return -1;
        v = v * 10 + d;
    }
    if (v > (uint64_t)INT64_MAX)
        return -1;
    *out = v;
    return 1;
}

/* Column k of the row as an integer: 1 read, 0 empty or absent; prints the error (-1). */
static int csv_u64(struct rd *r, const struct csv *c, enum col k, uint64_t *out)
{
    if (c->col[k] < 0)
        return 0;
    const struct fld *f = &c->f[c->col[k]];
    int rc = parse_u64(f->p, f->len, out);
    if (rc < 0)
        return rd_error(r, "column %s: '%.*s' is not a non-negative integer", columns[k].name,
                        (int)(f->len > 40 ? 40 : f->len), f->p);
    return rc;
}

/* Column k as a JSON integer or null, set as key of o; prints the error (-1). */
static int csv_set_u64(struct rd *r, struct csv *c, json_t *o, const char *key, enum col k)
{
    uint64_t v = 0;
    int rc = csv_u64(r, c, k, &v);
    if (rc < 0)
        return -1;
    if (set_u64(o, key, rc == 1, v) != 0)
        return rd_error(r, "out of memory");
    return 0;
}

/* Column k as a JSON string, or null when empty or absent, set as key of o. */
static int csv_set_str(struct rd *r, struct csv *c, json_t *o, const char *key, enum col k)
{
    size_t len = 0;
    const char *s = NULL;
    if (c->col[k] >= 0 && c->f[c->col[k]].len) {
        s = csv_text(c, &c->f[c->col[k]], &len);
        if (!s)
            return rd_error(r, "out of memory");
    }
    if (set_str(o, key, s, len) != 0)
        return rd_error(r, "out of memory");
    return 0;
}

/* Parses column k as a number into *out: 1 read, 0 empty; prints the error (-1). */
static int csv_double(struct rd *r, struct csv *c, enum col k, double *out)
{
    if (c->col[k] < 0 || !c->f[c->col[k]].len)
        return 0;
    const struct fld *f = &c->f[c->col[k]];
    char buf[64];
    char *end;
    if (f->len < sizeof(buf)) {
        memcpy(buf, f->p, f->len);
        buf[f->len] = '\0';
        errno = 0;
        *out = strtod(buf, &end);
        if (!*end && !errno && end != buf && *out == *out)
            return 1;
    }
    return rd_error(r, "column %s: '%.*s' is not a number", columns[k].name,
                    (int)(f->len > 40 ? 40 : f->len), f->p);
}

/* The value of key in the event text of a CSV start, oom or end record, "k1=v1;k2=v2;..."
 * (docs/monitor-format.md): it runs to the next ';', or to the end for command and bundle,
 * which come last and may hold one. NULL when the key is absent; its length in *len. */
static const char *kv_find(const char *text, const char *key, size_t *len)
{
    size_t kl = strlen(key);
    bool rest = strcmp(key, "command") == 0 || strcmp(key, "bundle") == 0;
    for (const char *p = text; p;) {
        if (strncmp(p, key, kl) == 0 && p[kl] == '=') {
            const char *v = p + kl + 1;
            *len = rest ? strlen(v) : (size_t)(strchrnul(v, ';') - v);
            return v;
        }
        if (!strncmp(p, "command=", 8) || !strncmp(p, "bundle=", 7))
            return NULL; /* the rest of the text is its value, which may hold ';' and '=' */
        p = strchr(p, ';');
        p = p ? p + 1 : NULL;
    }
    return NULL;
}

/* Sets key of o from the event text's value: an integer, a number, true/false or a string
 * (type 'u', 'n', 'b', 's'), null when absent or empty; prints the error (-1). */
static int kv_set(struct rd *r, json_t *o, const char *text, const char *key, char type)
{
    size_t len = 0;
    const char *v = kv_find(text, key, &len);
    json_t *j = NULL;
    if (!v || !len)
        j = json_null();
    else if (type == 's')
        j = rd_string(v, len);
    else if (type == 'b' &&
             ((len == 4 && !memcmp(v, "true", 4)) || (len == 5 && !memcmp(v, "false", 5))))
        j = json_boolean(len == 4);
    else if (type == 'u') {
        uint64_t u;
        if (parse_u64(v, len, &u) == 1)
            j = json_integer((json_int_t)u);
    } else if (type == 'n' && len < 64) {
        char buf[64], *end;
        memcpy(buf, v, len);
        buf[len] = '\0';
        errno = 0;
        double d = strtod(buf, &end);
        if (!*end && !errno && isfinite(d))
            j = json_real(d);
    }
    if (!j)
        return rd_error(r, "column event.text: '%s=%.*s' is not %s", key,
                        (int)(len > 40 ? 40 : len), v,
                        type == 'u'   ? "a non-negative integer"
                        : type == 'n' ? "a number"
                        : type == 'b' ? "true or false"
                                      : "a string (out of memory)");
    if (json_object_set_new(o, key, j) != 0)
        return rd_error(r, "out of memory");
    return 0;
}

/* Reads the header row: every column analyze needs, none twice. */
static int csv_header(struct rd *r, struct csv *c, const char **pp)
{
    size_t max = 64;
    for (;;) {
        free(c->f);
        c->f = malloc(max * sizeof(*c->f));
        if (!c->f)
            return rd_error(r, "out of memory");
        const char *p = *pp;
        unsigned long line = r->line;
        long n = csv_split(r, &p, c->f, max);
        if (n == -2)
            return rd_error(r, "bad CSV header: the file ends inside it");
        if (n < 0)
            return -1;
        if ((size_t)n > max) {
            max = (size_t)n;
            r->line = line;
            continue;
        }
        c->nf = (size_t)n;
        *pp = p;
        break;
    }
    for (int k = 0; k < C__COUNT; k++)
        c->col[k] = -1;
    for (size_t i = 0; i < c->nf; i++) {
        size_t len;
        const char *name = csv_text(c, &c->f[i], &len);
        if (!name)
            return rd_error(r, "out of memory");
        for (int k = 0; k < C__COUNT; k++) {
            if (strlen(columns[k].name) != len || memcmp(columns[k].name, name, len) != 0)
                continue;
            if (c->col[k] >= 0)
                return rd_error(r, "bad CSV header: column '%s' appears twice", columns[k].name);
            c->col[k] = (int)i;
        }
    }
    for (int k = 0; k < C__COUNT; k++)
        if (columns[k].required && c->col[k] < 0)
            return rd_error(r, "bad CSV header: no column '%s'", columns[k].name);
    return 0;
}

/* The figures of a sample row into *out; prints the error (-1). */
static int csv_fill(struct rd *r, const struct csv *c, uint64_t time_ns, struct sample *out)
{
    struct sample smp = {.time_ns = time_ns};
    static const struct {
        enum col col;
        int metric;
    } direct[] = {{C_RSS, MS__TL_RSS},
                  {C_PSS, MS__TL_PSS},
                  {C_CG_CUR, MS__TL_CGROUP},
                  {C_GPU_USED, MS__TL_GPU},
                  {C_TREE_RSS, MS__TL_TREE_RSS}};
    int rc;
    if (csv_u64(r, c, C_SEQ, &smp.seq) < 0 || csv_u64(r, c, C_MONO, &smp.mono_ns) < 0)
        return -1;
    for (size_t i = 0; i < sizeof(direct) / sizeof(direct[0]); i++) {
        if ((rc = csv_u64(r, c, direct[i].col, &smp.v[direct[i].metric])) < 0)
            return -1;
        smp.valid |= (uint8_t)(rc << direct[i].metric);
    }
    uint64_t total = 0, avail = 0;
    int ht, ha;
    if ((ht = csv_u64(r, c, C_SYS_TOTAL, &total)) < 0 ||
        (ha = csv_u64(r, c, C_SYS_AVAIL, &avail)) < 0)
        return -1;
    system_used(&smp, ht, total, ha, avail);
    if ((rc = csv_u64(r, c, C_CG_MAX, &smp.limit[MS__TL_LIMIT_CGROUP])) < 0)
        return -1;
    smp.limit_valid |= (uint8_t)(rc << MS__TL_LIMIT_CGROUP);
    if ((rc = csv_u64(r, c, C_GPU_TOTAL, &smp.limit[MS__TL_LIMIT_GPU])) < 0)
        return -1;
    smp.limit_valid |= (uint8_t)(rc << MS__TL_LIMIT_GPU);
    uint64_t age = 0;
    if (csv_u64(r, c, C_PSS_AGE, &age) < 0)
        return -1;
    const struct fld *ff = c->col[C_FULL] >= 0 ? &c->f[c->col[C_FULL]] : NULL;
    const char *full = ff ? ff->p : NULL;
    size_t flen = ff ? ff->len : 0;
    bool not_full = full && flen == 5 && memcmp(full, "false", 5) == 0;
    if (full && flen && !not_full && !(flen == 4 && memcmp(full, "true", 4) == 0))
        return rd_error(r, "column full: '%.*s' is not true or false", (int)(flen > 40 ? 40 : flen),
                        full);
    sample_repeats(&smp, not_full, age > 0);
    *out = smp;
    return 0;
}

/* Any other row: its normalized record. */
static int csv_event(struct rd *r, struct csv *c, const char *kind, size_t klen, uint64_t time_ns)
{
    struct ms__tl_input *in = r->in;
    json_t *o = json_object();
    if (!o || json_object_set_new(o, "time_ns", json_integer((json_int_t)time_ns)) != 0)
        return rd_error(r, "out of memory");
#define IS(k) (klen == strlen(k) && memcmp(kind, k, klen) == 0)
    int bad = 0;
    if (IS("alert")) {
        double pct = 0;
        int hp = csv_double(r, c, C_EV_PCT, &pct);
        bad = hp < 0 || csv_set_u64(r, c, o, "seq", C_SEQ) ||
              csv_set_str(r, c, o, "level", C_EV_LEVEL) ||
              csv_set_str(r, c, o, "metric", C_EV_METRIC) ||
              csv_set_u64(r, c, o, "used_bytes", C_EV_USED) ||
              csv_set_u64(r, c, o, "limit_bytes", C_EV_LIMIT) ||
              json_object_set_new(o, "percent", hp == 1 ? json_real(pct) : json_null());
        return bad ? (json_decref(o), -1) : add_record(r, in->alerts, &in->alert_at, o);
    }
    if (IS("marker")) {
        bad = csv_set_str(r, c, o, "label", C_EV_TEXT);
        return bad ? (json_decref(o), -1) : add_record(r, in->markers, &in->marker_at, o);
    }
    size_t tlen = 0;
    const char *t = c->col[C_EV_TEXT] >= 0 ? csv_text(c, &c->f[c->col[C_EV_TEXT]], &tlen) : "";
    char *text = t ? strndup(t, tlen) : NULL;
    if (!text) {
        json_decref(o);
        return rd_error(r, "out of memory");
    }
    if (IS("oom")) {
        bad = kv_set(r, o, text, "reason", 's') || csv_set_str(r, c, o, "backend", C_EV_METRIC) ||
              kv_set(r, o, text, "pid", 'u') || kv_set(r, o, text, "bundle", 's');
        free(text);
        return bad ? (json_decref(o), -1) : add_record(r, in->ooms, &in->oom_at, o);
    }
    if (IS("end")) {
        bad = in->end
                  ? rd_error(r, "a second end record")
                  : kv_set(r, o, text, "samples", 'u') || kv_set(r, o, text, "exit_status", 'u') ||
                        kv_set(r, o, text, "signal", 'u') || kv_set(r, o, text, "reason", 's');
        free(text);
        if (bad)
            return json_decref(o), -1;
        in->end = o;
        in->end_at = in->s.n;
        return 0;
    }
    if (IS("start")) {
        json_t *lim = json_object(), *thr = json_object(), *cmd = NULL;
        /* both set (o owns each, or jansson frees it on failure): no leak when one is NULL */
        int bl = json_object_set_new(o, "limits", lim);
        int bt = json_object_set_new(o, "thresholds", thr);
        bad = bl || bt;
        if (bad)
            rd_error(r, "out of memory");
        else if (in->start)
            bad = rd_error(r, "a second start record") != 0;
        else
            bad = kv_set(r, o, text, "pid", 'u') || csv_set_str(r, c, o, "job_id", C_JOB) ||
                  csv_set_u64(r, c, o, "rank", C_RANK) ||
                  csv_set_u64(r, c, o, "world_size", C_WORLD) ||
                  kv_set(r, o, text, "interval_s", 'n') || kv_set(r, o, text, "tree", 'b') ||
                  kv_set(r, lim, text, ms__tl_limit_keys[0], 'u') ||
                  kv_set(r, lim, text, ms__tl_limit_keys[1], 'u') ||
                  kv_set(r, lim, text, ms__tl_limit_keys[2], 'u') ||
                  kv_set(r, thr, text, "warning_pct", 'n') ||
                  kv_set(r, thr, text, "critical_pct", 'n');
        size_t clen = 0;
        const char *cv = kv_find(text, "command", &clen);
        if (!bad && cv && clen) {
            /* the command's words, as the monitor joined them with spaces */
            bad = !(cmd = json_array());
            for (const char *w = cv; !bad && w < cv + clen;) {
                const char *sp = memchr(w, ' ', (size_t)(cv + clen - w));
                size_t wl = sp ? (size_t)(sp - w) : (size_t)(cv + clen - w);
                json_t *js = rd_string(w, wl);
                bad = !js || json_array_append_new(cmd, js);
                w += wl + 1;
            }
            if (bad) {
                json_decref(cmd); /* (never set into o) */
                cmd = NULL;
                rd_error(r, "out of memory");
            }
        }
        free(text);
        if (!bad && json_object_set_new(o, "command", cmd ? cmd : json_null()))
            bad = rd_error(r, "out of memory");
        if (bad || start_settings(r, o) != 0)
            return json_decref(o), -1;
        in->start = o;
        return 0;
    }
    free(text);
#undef IS
    json_decref(o);
    unknown_kind(r, kind, klen);
    return 0;
}

/* The row at *pp (its line number in r->line), as the file's next record; *pp moves past it.
 * Returns 0, -1 on an error (printed), 1 when the row is cut: the end of the file. */
static int csv_row(struct rd *r, struct csv *c, const char **pp)
{
    long n = csv_split(r, pp, c->f, c->nf);
    if (n == -2) {
        /* the monitor was killed while writing it */
        r->in->cut_line = r->line;
        return 1;
    }
    if (n < 0)
        return -1;
    if ((size_t)n != c->nf)
        return rd_error(r, "%ld fields, the header has %zu", n, c->nf);
    const struct fld *rec = &c->f[c->col[C_RECORD]];
    uint64_t time_ns;
    int ht = csv_u64(r, c, C_TIME, &time_ns);
    if (ht < 0)
        return -1;
    if (!rec->len)
        return rd_error(r, "empty record kind");
    if (!ht)
        return rd_error(r, "no time_ns");
    if (rec->len == 6 && memcmp(rec->p, "sample", 6) == 0) {
        struct sample smp;
        return csv_fill(r, c, time_ns, &smp) != 0 ? -1 : add_sample(r, &smp);
    }
    size_t klen;
    const char *kind = csv_text(c, rec, &klen);
    return kind ? csv_event(r, c, kind, klen, time_ns) : rd_error(r, "out of memory");
}

/* Skips a blank line at *pp (counting it); false when the line is not blank. */
static bool csv_blank(struct rd *r, const char **pp)
{
    const char *p = *pp;
    if (*p != '\n' && !(*p == '\r' && p + 1 < r->end && p[1] == '\n'))
        return false;
    *pp = p + (*p == '\n' ? 1 : 2);
    r->line++;
    return true;
}

/* Reads the CSV rows from p to the end, one after the other (r->line: the line before p). */
static int csv_rows(struct rd *r, struct csv *c, const char *p)
{
    int rc = 0;
    while (rc == 0 && p < r->end) {
        if (csv_blank(r, &p))
            continue;
        r->line++;
        rc = csv_row(r, c, &p);
    }
    return rc < 0 ? -1 : 0;
}

/* ---------------------------------------------------------------------------------------- */
/* JSON lines: the fast path for sample records                                             */
/* ---------------------------------------------------------------------------------------- */

bool ms__tl_fast_path = true;

/* FP_NO: the fast path does not decide this line; jansson reads it. */
enum { FP_OK = 0, FP_NO = -1, FP_MAX_DEPTH = 64 };

struct fp {
    const char *p, *end;
    int depth;
};

static inline void fp_ws(struct fp *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\r'))
        s->p++;
}

/* 1 for the bytes a string may hold as they are on the fast path: printable ASCII but '"'
 * and the backslash (escapes, control and non-ASCII bytes go to jansson). */
#define R8(v)  v, v, v, v, v, v, v, v
#define R16(v) R8(v), R8(v)
/* clang-format off */
static const unsigned char fp_plain[256] = {
    R16(0), R16(0),                                 /* 0x00-0x1f: control */
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x20-0x2f: '"' */
    R16(1), R16(1),                                 /* 0x30-0x4f */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, /* 0x50-0x5f: the backslash */
    R16(1), R16(1),                                 /* 0x60-0x7f */
    R16(0), R16(0), R16(0), R16(0), R16(0), R16(0), R16(0), R16(0), /* 0x80-0xff */
};
/* clang-format on */
#undef R8
#undef R16

/* A string of printable ASCII without escapes: its bytes in *str, *len. */
static int fp_string(struct fp *s, const char **str, size_t *len)
{
    if (s->p >= s->end || *s->p != '"')
        return FP_NO;
    const char *q = ++s->p;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    /* eight bytes at a time: the first that is '"', a backslash, below 0x20 or above 0x7f */
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    while (s->end - q >= 8) {
        uint64_t w, qt, bs;
        memcpy(&w, q, 8);
        qt = w ^ (ones * '"');
        bs = w ^ (ones * '\\');
        uint64_t hit =
            (((qt - ones) & ~qt) | ((bs - ones) & ~bs) | ((w - ones * 0x20) & ~w) | w) & highs;
        if (hit) {
            q += __builtin_ctzll(hit) / 8;
            break;
        }
        q += 8;
    }
#endif
    while (q < s->end && fp_plain[(unsigned char)*q])
        q++;
    if (q == s->end || *q != '"')
        return FP_NO;
    *str = s->p;
    *len = (size_t)(q - s->p);
    s->p = q + 1;
    return FP_OK;
}

static inline bool fp_digit(const struct fp *s, const char *q)
{
    return q < s->end && (unsigned)(unsigned char)*q - '0' <= 9;
}

/* A JSON number; *is_u (and *u) when it is an integer in 0..INT64_MAX. Exponents and numbers
 * out of that range are left to jansson, which may find them out of its range. */
static int fp_number(struct fp *s, uint64_t *u, bool *is_u)
{
    const char *q = s->p;
    bool neg = q < s->end && *q == '-';
    q += neg;
    if (!fp_digit(s, q))
        return FP_NO;
    const char *d0 = q;
    if (*q == '0')
        q++;
    else
        while (fp_digit(s, q))
            q++;
    size_t nd = (size_t)(q - d0);
    *is_u = false;
    if (q < s->end && (*q == '.' || *q == 'e' || *q == 'E' || fp_digit(s, q))) {
        if (*q != '.' || !fp_digit(s, q + 1))
            return FP_NO;
        for (q++; fp_digit(s, q); q++)
            ;
        if ((q < s->end && (*q == 'e' || *q == 'E')) || q - s->p > 300)
            return FP_NO;
        s->p = q;
        return FP_OK;
    }
    if (nd > 19)
        return FP_NO;
    uint64_t v = 0; /* 19 digits fit in 64 bits */
    for (const char *d = d0; d < q; d++)
        v = v * 10 + (unsigned)(*d - '0');
    if (v > (uint64_t)INT64_MAX)
        return FP_NO; /* out of jansson's range (or INT64_MIN): jansson says which */
    if (!neg) {
        *u = v;
        *is_u = true;
    }
    s->p = q;
    return FP_OK;
}

static int fp_value(struct fp *s);

/* Enters an object or array at its opening bracket; FP_OK and *done when close follows at
 * once (the container is then left), FP_NO when nested too deep. */
static int fp_enter(struct fp *s, char close, bool *done)
{
    if (++s->depth > FP_MAX_DEPTH)
        return FP_NO;
    s->p++; /* '{' or '[' */
    fp_ws(s);
    *done = s->p < s->end && *s->p == close;
    if (*done) {
        s->p++;
        s->depth--;
    }
    return FP_OK;
}

/* After a member or element: FP_OK with *done false at a ',' (another follows), or with
 * *done true at close (the container is left); FP_NO at anything else. */
static int fp_next(struct fp *s, char close, bool *done)
{
    fp_ws(s);
    if (s->p >= s->end)
        return FP_NO;
    *done = *s->p != ',';
    if (*done && *s->p != close)
        return FP_NO;
    s->p++;
    if (*done)
        s->depth--;
    return FP_OK;
}

/* An object; member(s, key, len, ctx) reads each value (NULL: skipped). */
static int fp_object(struct fp *s, int (*member)(struct fp *, const char *, size_t, void *),
                     void *ctx)
{
    bool done;
    if (fp_enter(s, '}', &done) != FP_OK)
        return FP_NO;
    while (!done) {
        const char *key;
        size_t klen;
        fp_ws(s);
        if (fp_string(s, &key, &klen) != FP_OK)
            return FP_NO;
        fp_ws(s);
        if (s->p >= s->end || *s->p != ':')
            return FP_NO;
        s->p++;
        fp_ws(s);
        if ((member ? member(s, key, klen, ctx) : fp_value(s)) != FP_OK ||
            fp_next(s, '}', &done) != FP_OK)
            return FP_NO;
    }
    return FP_OK;
}

/* An array; element(s, ctx) reads each value (NULL: skipped). */
static int fp_array(struct fp *s, int (*element)(struct fp *, void *), void *ctx)
{
    bool done;
    if (fp_enter(s, ']', &done) != FP_OK)
        return FP_NO;
    while (!done) {
        fp_ws(s);
        if ((element ? element(s, ctx) : fp_value(s)) != FP_OK || fp_next(s, ']', &done) != FP_OK)
            return FP_NO;
    }
    return FP_OK;
}

static int fp_literal(struct fp *s, const char *lit, size_t len)
{
    if ((size_t)(s->end - s->p) < len || memcmp(s->p, lit, len) != 0)
        return FP_NO;
    s->p += len;
    return FP_OK;
}

/* Any value, checked and skipped. */
static int fp_value(struct fp *s)
{
    if (s->p >= s->end)
        return FP_NO;
    const char *str;
    size_t len;
    uint64_t u;
    bool is_u;
    switch (*s->p) {
    case '{':
        return fp_object(s, NULL, NULL);
    case '[':
        return fp_array(s, NULL, NULL);
    case '"':
        return fp_string(s, &str, &len);
    case 't':
        return fp_literal(s, "true", 4);
    case 'f':
        return fp_literal(s, "false", 5);
    case 'n':
        return fp_literal(s, "null", 4);
    default:
        return fp_number(s, &u, &is_u);
    }
}

/* A non-negative integer or null: 1 or 0 in *valid. */
static int fp_u64_or_null(struct fp *s, uint64_t *out, bool *valid)
{
    if (s->p < s->end && *s->p == 'n') {
        *valid = false;
        return fp_literal(s, "null", 4);
    }
    bool is_u;
    if (fp_number(s, out, &is_u) != FP_OK || !is_u)
        return FP_NO;
    *valid = true;
    return FP_OK;
}

/* A key the fast path looks for, with its length. */
struct fp_key {
    const char *name;
    size_t len;
};
#define FP_KEY(k)                                                                                  \
    {                                                                                              \
        k, sizeof(k) - 1                                                                           \
    }

static inline bool fp_key_is(const struct fp_key *k, const char *key, size_t klen)
{
    return k->len == klen && k->name[0] == key[0] && memcmp(k->name, key, klen) == 0;
}

/* The integer fields wanted from one object. */
struct fp_fields {
    const struct fp_key *keys; /* their names */
    int n;                     /* how many */
    uint64_t *val;             /* their values */
    unsigned valid;            /* bit i: val[i] read */
    unsigned seen;             /* bit i: the key appeared */
};

static int fp_fields_member(struct fp *s, const char *key, size_t klen, void *ctx)
{
    struct fp_fields *f = ctx;
    for (int i = 0; i < f->n; i++) {
        if (!fp_key_is(&f->keys[i], key, klen))
            continue;
        if (f->seen >> i & 1)
            return FP_NO; /* a repeated field: jansson's reading counts */
        f->seen |= 1u << i;
        bool v;
        if (fp_u64_or_null(s, &f->val[i], &v) != FP_OK)
            return FP_NO;
        f->valid |= (unsigned)v << i;
        return FP_OK;
    }
    return fp_value(s);
}

/* An object of wanted integer fields; only '{' is the fast case. */
static int fp_fields_object(struct fp *s, struct fp_fields *f)
{
    if (s->p >= s->end || *s->p != '{')
        return FP_NO;
    return fp_object(s, fp_fields_member, f);
}

static const struct fp_key gpu_keys[] = {FP_KEY("used_bytes"), FP_KEY("total_bytes")};

/* The GPU sums: used and total over every GPU, valid when every GPU has it. */
struct fp_gpus {
    uint64_t sum[2];
    unsigned count; /* GPUs */
    unsigned valid; /* bit i: every GPU so far had field i */
};

static int fp_gpu_element(struct fp *s, void *ctx)
{
    struct fp_gpus *g = ctx;
    uint64_t v[2] = {0, 0};
    struct fp_fields f = {gpu_keys, 2, v, 0, 0};
    if (fp_fields_object(s, &f) != FP_OK)
        return FP_NO;
    g->valid = g->count++ ? g->valid & f.valid : f.valid;
    for (int i = 0; i < 2; i++) /* saturated: a sum past 2^64-1 is no wrapped small number */
        g->sum[i] = __builtin_add_overflow(g->sum[i], v[i], &g->sum[i]) ? UINT64_MAX : g->sum[i];
    return FP_OK;
}

/* What a sample line's snapshot gives. */
struct fp_snap {
    struct sample *smp;
    unsigned seen; /* bit per key of snap_keys */
};

static const struct fp_key snap_keys[] = {FP_KEY("schema"), FP_KEY("process"),
                                          FP_KEY("system"), FP_KEY("cgroup"),
                                          FP_KEY("gpus"),   FP_KEY("monotonic_ns")};
static const struct fp_key process_keys[] = {FP_KEY("rss_bytes"), FP_KEY("pss_bytes")};
static const struct fp_key system_keys[] = {FP_KEY("total_bytes"), FP_KEY("available_bytes")};
static const struct fp_key cgroup_keys[] = {FP_KEY("current_bytes"), FP_KEY("max_bytes")};
static const struct fp_key tree_keys[] = {FP_KEY("rss_bytes")};

/* Index of key in keys (n of them), or -1. */
static int key_index(const struct fp_key *keys, int n, const char *key, size_t klen)
{
    for (int i = 0; i < n; i++)
        if (fp_key_is(&keys[i], key, klen))
            return i;
    return -1;
}

static int fp_snap_member(struct fp *s, const char *key, size_t klen, void *ctx)
{
    struct fp_snap *sn = ctx;
    struct sample *smp = sn->smp;
    int k = key_index(snap_keys, 6, key, klen);
    if (k < 0)
        return fp_value(s);
    if (sn->seen >> k & 1)
        return FP_NO;
    sn->seen |= 1u << k;
    uint64_t v[2] = {0, 0};
    struct fp_fields f = {NULL, 2, v, 0, 0};
    switch (k) {
    case 5: {
        bool valid;
        return fp_u64_or_null(s, &smp->mono_ns, &valid);
    }
    case 0: {
        const char *str;
        size_t len;
        if (fp_string(s, &str, &len) != FP_OK || len != strlen(SNAPSHOT_SCHEMA) ||
            memcmp(str, SNAPSHOT_SCHEMA, len) != 0)
            return FP_NO;
        return FP_OK;
    }
    case 1:
        f.keys = process_keys;
        if (fp_fields_object(s, &f) != FP_OK)
            return FP_NO;
        smp->v[MS__TL_RSS] = v[0];
        smp->v[MS__TL_PSS] = v[1];
        smp->valid |= (uint8_t)((f.valid & 1) << MS__TL_RSS | (f.valid >> 1 & 1) << MS__TL_PSS);
        return FP_OK;
    case 2:
        f.keys = system_keys;
        if (fp_fields_object(s, &f) != FP_OK)
            return FP_NO;
        system_used(smp, f.valid & 1, v[0], f.valid >> 1 & 1, v[1]);
        return FP_OK;
    case 3:
        f.keys = cgroup_keys;
        if (fp_fields_object(s, &f) != FP_OK)
            return FP_NO;
        smp->v[MS__TL_CGROUP] = v[0];
        smp->valid |= (uint8_t)((f.valid & 1) << MS__TL_CGROUP);
        smp->limit[MS__TL_LIMIT_CGROUP] = v[1];
        smp->limit_valid |= (uint8_t)((f.valid >> 1 & 1) << MS__TL_LIMIT_CGROUP);
        return FP_OK;
    default: {
        struct fp_gpus g = {{0, 0}, 0, 0};
        if (s->p >= s->end || *s->p != '[' || fp_array(s, fp_gpu_element, &g) != FP_OK)
            return FP_NO;
        if (g.count && (g.valid & 1)) {
            smp->v[MS__TL_GPU] = g.sum[0];
            smp->valid |= 1u << MS__TL_GPU;
        }
        if (g.count && (g.valid & 2)) {
            smp->limit[MS__TL_LIMIT_GPU] = g.sum[1];
            smp->limit_valid |= 1u << MS__TL_LIMIT_GPU;
        }
        return FP_OK;
    }
    }
}

/* What a sample line's top level gives. */
struct fp_top {
    struct sample *smp;
    unsigned seen;      /* bit per key of top_keys */
    unsigned snap_seen; /* the snapshot's keys seen */
};

static const struct fp_key top_keys[] = {FP_KEY("record"),    FP_KEY("time_ns"), FP_KEY("seq"),
                                         FP_KEY("snapshot"),  FP_KEY("tree"),    FP_KEY("full"),
                                         FP_KEY("pss_age_ns")};

static int fp_top_member(struct fp *s, const char *key, size_t klen, void *ctx)
{
    struct fp_top *t = ctx;
    int k = key_index(top_keys, sizeof(top_keys) / sizeof(top_keys[0]), key, klen);
    if (k < 0)
        return fp_value(s);
    if (t->seen >> k & 1)
        return FP_NO;
    t->seen |= 1u << k;
    bool v;
    switch (k) {
    case 0: {
        const char *str;
        size_t len;
        if (fp_string(s, &str, &len) != FP_OK || len != 6 || memcmp(str, "sample", 6) != 0)
            return FP_NO;
        return FP_OK;
    }
    case 1:
        if (fp_u64_or_null(s, &t->smp->time_ns, &v) != FP_OK || !v)
            return FP_NO;
        return FP_OK;
    case 2:
        return fp_u64_or_null(s, &t->smp->seq, &v);
    case 3: {
        struct fp_snap sn = {t->smp, 0};
        if (s->p >= s->end || *s->p != '{' || fp_object(s, fp_snap_member, &sn) != FP_OK)
            return FP_NO;
        t->snap_seen = sn.seen;
        return FP_OK;
    }
    case 5: /* full: false marks what the sample repeats */
        if (s->p < s->end && *s->p == 'f') {
            sample_repeats(t->smp, true, false);
            return fp_literal(s, "false", 5);
        }
        return s->p < s->end && *s->p == 't' ? fp_literal(s, "true", 4) : fp_literal(s, "null", 4);
    case 6: {
        uint64_t age = 0;
        if (fp_u64_or_null(s, &age, &v) != FP_OK)
            return FP_NO;
        sample_repeats(t->smp, false, v && age > 0);
        return FP_OK;
    }
    default: {
        uint64_t tv[1] = {0};
        struct fp_fields f = {tree_keys, 1, tv, 0, 0};
        if (fp_fields_object(s, &f) != FP_OK)
            return FP_NO;
        t->smp->v[MS__TL_TREE_RSS] = tv[0];
        t->smp->valid |= (uint8_t)((f.valid & 1) << MS__TL_TREE_RSS);
        return FP_OK;
    }
    }
}

/* Reads the sample line at *pp on the fast path; on FP_OK *pp is past its line break.
 * FP_NO when jansson must read the line. */
static int fp_sample(struct rd *r, const char **pp, struct sample *smp)
{
    struct fp s = {*pp, r->end, 0};
    struct fp_top t = {smp, 0, 0};
    memset(smp, 0, sizeof(*smp));
    if (*s.p != '{' || fp_object(&s, fp_top_member, &t) != FP_OK)
        return FP_NO;
    /* record, time_ns, snapshot and its schema must all be there */
    if ((t.seen & 0xb) != 0xb || !(t.snap_seen & 1))
        return FP_NO;
    fp_ws(&s);
    if (s.p < s.end) {
        if (*s.p != '\n')
            return FP_NO;
        s.p++;
    }
    *pp = s.p;
    return FP_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* JSON lines: jansson                                                                      */
/* ---------------------------------------------------------------------------------------- */

/* Member key of o as a non-negative integer: 1 read, 0 null or absent (an error when
 * required); prints the error (-1), naming the field as sec.key. */
static int j_u64(struct rd *r, json_t *o, const char *sec, const char *key, bool required,
                 uint64_t *out)
{
    json_t *v = json_object_get(o, key);
    if ((!v || json_is_null(v)) && !required)
        return 0;
    if (!v || json_is_null(v))
        return rd_error(r, "no %s%s", sec, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return rd_error(r, "field %s%s: expected a non-negative integer%s", sec, key,
                        required ? "" : " or null");
    *out = (uint64_t)json_integer_value(v);
    return 1;
}

/* Member key of o as an object (NULL when null or absent); prints the error (-1). */
static int j_obj(struct rd *r, json_t *o, const char *sec, const char *key, json_t **out)
{
    json_t *v = json_object_get(o, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_object(v))
        return rd_error(r, "field %s%s: expected an object or null", sec, key);
    *out = v;
    return 0;
}

/* Copies member key of o (a string, or absent/null) into dst as key: the normalized form. */
static int j_copy_str(struct rd *r, json_t *o, const char *key, json_t *dst)
{
    json_t *v = json_object_get(o, key);
    if (v && !json_is_null(v) && !json_is_string(v))
        return rd_error(r, "field %s: expected a string or null", key);
    if (json_object_set_new(dst, key, v && !json_is_null(v) ? json_copy(v) : json_null()) != 0)
        return rd_error(r, "out of memory");
    return 0;
}

/* Copies member key of o (a non-negative integer or null) into dst as key. */
static int j_copy_u64(struct rd *r, json_t *o, const char *sec, const char *key, json_t *dst)
{
    uint64_t v = 0;
    int rc = j_u64(r, o, sec, key, false, &v);
    if (rc < 0)
        return -1;
    if (set_u64(dst, key, rc == 1, v) != 0)
        return rd_error(r, "out of memory");
    return 0;
}

/* Member key of o as a number (integer or real), or null/absent: 1 read, 0 not. */
static int j_num(struct rd *r, json_t *o, const char *sec, const char *key, double *out)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_number(v))
        return rd_error(r, "field %s%s: expected a number or null", sec, key);
    *out = json_number_value(v);
    return 1;
}

/* Copies member key of o (a number or null) into dst as a real: the normalized form. */
static int j_copy_num(struct rd *r, json_t *o, const char *key, json_t *dst)
{
    double v = 0;
    int rc = j_num(r, o, "", key, &v);
    if (rc < 0)
        return -1;
    if (json_object_set_new(dst, key, rc ? json_real(v) : json_null()) != 0)
        return rd_error(r, "out of memory");
    return 0;
}

/* A sample record read by jansson: the same rules as the fast path. */
static int j_sample(struct rd *r, json_t *o, uint64_t time_ns)
{
    struct sample smp = {.time_ns = time_ns};
    json_t *snap, *sec;
    int rc;
    if (j_u64(r, o, "", "seq", false, &smp.seq) < 0 || j_obj(r, o, "", "snapshot", &snap) < 0)
        return -1;
    if (!snap)
        return rd_error(r, "no snapshot in a sample record");
    json_t *schema = json_object_get(snap, "schema");
    if (!json_is_string(schema) || strcmp(json_string_value(schema), SNAPSHOT_SCHEMA) != 0)
        return rd_error(r, "field snapshot.schema: expected \"%s\"", SNAPSHOT_SCHEMA);
    if (j_u64(r, snap, "snapshot.", "monotonic_ns", false, &smp.mono_ns) < 0)
        return -1;
    if (j_obj(r, snap, "snapshot.", "process", &sec) < 0)
        return -1;
    if (sec) {
        if ((rc = j_u64(r, sec, "snapshot.process.", "rss_bytes", false, &smp.v[MS__TL_RSS])) < 0)
            return -1;
        smp.valid |= (uint8_t)(rc << MS__TL_RSS);
        if ((rc = j_u64(r, sec, "snapshot.process.", "pss_bytes", false, &smp.v[MS__TL_PSS])) < 0)
            return -1;
        smp.valid |= (uint8_t)(rc << MS__TL_PSS);
    }
    if (j_obj(r, snap, "snapshot.", "system", &sec) < 0)
        return -1;
    if (sec) {
        uint64_t total = 0, avail = 0;
        int ht, ha;
        if ((ht = j_u64(r, sec, "snapshot.system.", "total_bytes", false, &total)) < 0 ||
            (ha = j_u64(r, sec, "snapshot.system.", "available_bytes", false, &avail)) < 0)
            return -1;
        system_used(&smp, ht, total, ha, avail);
    }
    if (j_obj(r, snap, "snapshot.", "cgroup", &sec) < 0)
        return -1;
    if (sec) {
        if ((rc = j_u64(r, sec, "snapshot.cgroup.", "current_bytes", false,
                        &smp.v[MS__TL_CGROUP])) < 0)
            return -1;
        smp.valid |= (uint8_t)(rc << MS__TL_CGROUP);
        if ((rc = j_u64(r, sec, "snapshot.cgroup.", "max_bytes", false,
                        &smp.limit[MS__TL_LIMIT_CGROUP])) < 0)
            return -1;
        smp.limit_valid |= (uint8_t)(rc << MS__TL_LIMIT_CGROUP);
    }
    json_t *gpus = json_object_get(snap, "gpus");
    if (gpus && !json_is_null(gpus)) {
        if (!json_is_array(gpus))
            return rd_error(r, "field snapshot.gpus: expected an array or null");
        uint64_t sum[2] = {0, 0};
        unsigned valid = 3;
        size_t i;
        json_t *g;
        json_array_foreach(gpus, i, g)
        {
            char sec_name[48];
            snprintf(sec_name, sizeof(sec_name), "snapshot.gpus[%zu].", i);
            if (!json_is_object(g))
                return rd_error(r, "field snapshot.gpus[%zu]: expected an object", i);
            for (int k = 0; k < 2; k++) {
                uint64_t v = 0;
                if ((rc = j_u64(r, g, sec_name, gpu_keys[k].name, false, &v)) < 0)
                    return -1;
                sum[k] = __builtin_add_overflow(sum[k], v, &sum[k]) ? UINT64_MAX : sum[k];
                if (!rc)
                    valid &= ~(1u << k);
            }
        }
        if (json_array_size(gpus) && (valid & 1)) {
            smp.v[MS__TL_GPU] = sum[0];
            smp.valid |= 1u << MS__TL_GPU;
        }
        if (json_array_size(gpus) && (valid & 2)) {
            smp.limit[MS__TL_LIMIT_GPU] = sum[1];
            smp.limit_valid |= 1u << MS__TL_LIMIT_GPU;
        }
    }
    if (j_obj(r, o, "", "tree", &sec) < 0)
        return -1;
    if (sec) {
        if ((rc = j_u64(r, sec, "tree.", "rss_bytes", false, &smp.v[MS__TL_TREE_RSS])) < 0)
            return -1;
        smp.valid |= (uint8_t)(rc << MS__TL_TREE_RSS);
    }
    json_t *full = json_object_get(o, "full");
    if (full && !json_is_null(full) && !json_is_boolean(full))
        return rd_error(r, "field full: expected true, false or null");
    uint64_t age = 0;
    if (j_u64(r, o, "", "pss_age_ns", false, &age) < 0)
        return -1;
    sample_repeats(&smp, json_is_false(full), age > 0);
    return add_sample(r, &smp);
}

/* The start record: pid, command, interval, tree, job identity, limits, thresholds. */
static int j_start(struct rd *r, json_t *o, json_t *n)
{
    json_t *cmd = json_object_get(o, "command"), *tree = json_object_get(o, "tree");
    if (cmd && !json_is_null(cmd)) {
        size_t i;
        json_t *a;
        if (!json_is_array(cmd))
            return rd_error(r, "field command: expected an array of strings or null");
        json_array_foreach(cmd, i, a)
        {
            if (!json_is_string(a))
                return rd_error(r, "field command[%zu]: expected a string", i);
        }
    }
    if (tree && !json_is_null(tree) && !json_is_boolean(tree))
        return rd_error(r, "field tree: expected true, false or null");
    if (j_copy_u64(r, o, "", "pid", n) || j_copy_str(r, o, "job_id", n) ||
        j_copy_u64(r, o, "", "rank", n) || j_copy_u64(r, o, "", "world_size", n) ||
        j_copy_num(r, o, "interval_s", n))
        return -1;
    if (json_object_set_new(n, "command", cmd ? json_copy(cmd) : json_null()) ||
        json_object_set_new(n, "tree", tree ? json_copy(tree) : json_null()))
        return rd_error(r, "out of memory");
    json_t *lim, *thr;
    if (j_obj(r, o, "", "limits", &lim) < 0 || j_obj(r, o, "", "thresholds", &thr) < 0)
        return -1;
    json_t *nl = json_object(), *nt = json_object();
    if (!nl || !nt || json_object_set_new(n, "limits", nl) ||
        json_object_set_new(n, "thresholds", nt))
        return rd_error(r, "out of memory");
    for (int l = 0; l < MS__TL_LIMITS; l++)
        if (j_copy_u64(r, lim ? lim : nl, "limits.", ms__tl_limit_keys[l], nl))
            return -1;
    if (j_copy_num(r, thr ? thr : nt, "warning_pct", nt) ||
        j_copy_num(r, thr ? thr : nt, "critical_pct", nt))
        return -1;
    return start_settings(r, n);
}

/* A line that jansson reads: any record, or a sample the fast path did not take. */
static int j_line(struct rd *r, const char *line, size_t len)
{
    json_error_t jerr;
    json_t *o = json_loadb(line, len, 0, &jerr);
    if (!o) {
        if (r->last) {
            r->in->cut_line = r->line;
            return 0;
        }
        return rd_error(r, "invalid JSON: %s (column %d)", jerr.text, jerr.column);
    }
    int rc = -1;
    json_t *n = NULL, *rec = json_object_get(o, "record");
    uint64_t time_ns = 0;
    if (!json_is_object(o)) {
        rd_error(r, "expected a JSON object");
        goto out;
    }
    if (!json_is_string(rec)) {
        rd_error(r, "field record: expected a string");
        goto out;
    }
    if (j_u64(r, o, "", "time_ns", true, &time_ns) < 0)
        goto out;
    const char *kind = json_string_value(rec);
    if (strcmp(kind, "sample") == 0) {
        rc = j_sample(r, o, time_ns);
        goto out;
    }
    if (!(n = json_object()) ||
        json_object_set_new(n, "time_ns", json_integer((json_int_t)time_ns))) {
        rd_error(r, "out of memory");
        goto out;
    }
    struct ms__tl_input *in = r->in;
    if (strcmp(kind, "alert") == 0) {
        if (j_copy_u64(r, o, "", "seq", n) || j_copy_str(r, o, "level", n) ||
            j_copy_str(r, o, "metric", n) || j_copy_u64(r, o, "", "used_bytes", n) ||
            j_copy_u64(r, o, "", "limit_bytes", n) || j_copy_num(r, o, "percent", n))
            goto out;
        rc = add_record(r, in->alerts, &in->alert_at, n);
        n = NULL;
    } else if (strcmp(kind, "marker") == 0) {
        if (j_copy_str(r, o, "label", n))
            goto out;
        rc = add_record(r, in->markers, &in->marker_at, n);
        n = NULL;
    } else if (strcmp(kind, "oom") == 0) {
        if (j_copy_str(r, o, "reason", n) || j_copy_str(r, o, "backend", n) ||
            j_copy_u64(r, o, "", "pid", n) || j_copy_str(r, o, "bundle", n))
            goto out;
        rc = add_record(r, in->ooms, &in->oom_at, n);
        n = NULL;
    } else if (strcmp(kind, "start") == 0 || strcmp(kind, "end") == 0) {
        bool start = kind[0] == 's';
        if ((start ? in->start : in->end) != NULL) {
            rd_error(r, "a second %s record", kind);
            goto out;
        }
        if (start ? j_start(r, o, n) != 0
                  : (j_copy_u64(r, o, "", "samples", n) || j_copy_u64(r, o, "", "exit_status", n) ||
                     j_copy_u64(r, o, "", "signal", n) || j_copy_str(r, o, "reason", n)))
            goto out;
        if (start)
            in->start = n;
        else {
            in->end = n;
            in->end_at = in->s.n;
        }
        n = NULL;
        rc = 0;
    } else {
        unknown_kind(r, kind, strlen(kind));
        rc = 0;
    }
out:
    json_decref(n);
    json_decref(o);
    return rc;
}

/* Reads the line at *pp with jansson (its number in r->line); *pp moves past it. */
static int json_slow(struct rd *r, const char **pp)
{
    const char *q = *pp, *nl = memchr(q, '\n', (size_t)(r->end - q));
    r->last = !nl;
    *pp = nl ? nl + 1 : r->end;
    return j_line(r, q, (size_t)((nl ? nl : r->end) - q));
}

/* Skips the blanks that start the line at *pp; false when nothing but them is left. When the
 * line is blank, *blank is set and *pp moves past it (counting it). */
static bool json_blank(struct rd *r, const char **pp, bool *blank)
{
    const char *q = *pp;
    while (q < r->end && (*q == ' ' || *q == '\t' || *q == '\r'))
        q++;
    *blank = q < r->end && *q == '\n';
    *pp = *blank ? q + 1 : q;
    return q < r->end;
}

/* Reads JSON lines from p to the end, one after the other (r->line: the line before p). */
static int json_rows(struct rd *r, const char *p)
{
    int rc = 0;
    bool blank;
    while (rc == 0 && p < r->end && json_blank(r, &p, &blank)) {
        r->line++;
        if (blank)
            continue;
        struct sample smp;
        const char *next = p;
        if (ms__tl_fast_path && fp_sample(r, &next, &smp) == FP_OK) {
            rc = add_sample(r, &smp);
            p = next;
        } else
            rc = json_slow(r, &p);
    }
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* Reading in parallel                                                                      */
/* ---------------------------------------------------------------------------------------- */

/*
 * A big file is cut into chunks at line breaks, each read by a thread on the fast paths only:
 * a sample line they take goes into the chunk's own columns, any other line is only noted.
 * Then, in file order, the chunks' samples are appended and the noted lines read one by one
 * by the sequential code above, so the records, the errors and their line numbers come out
 * exactly as from a read from the top (a chunk's reader prints nothing: where it fails, the
 * sequential read fails the same way, and stops there). A CSV chunk that does not start where
 * the previous chunk's last row ended (a quoted line break across the cut) is not used: the
 * rest of the file is read sequentially.
 */
#define CHUNK_MIN   (4u << 20) /* bytes per chunk at least ($MEMSNAP_ANALYZE_CHUNK: tests) */
#define CHUNKS_MAX  64
#define THREADS_MAX 8

/* A line a chunk left for the sequential read. */
struct noted {
    const char *p;      /* where it starts */
    unsigned long line; /* its number within the chunk, from 1 */
    size_t before;      /* the chunk's samples before it */
};

struct chunk {
    const struct rd *r;             /* the reader (not written to) */
    const struct csv *c;            /* the CSV header's columns; NULL for JSON lines */
    const char *begin, *limit;      /* the chunk: the lines that start in [begin, limit) */
    const char *stop;               /* where the last of them ends */
    unsigned long lines;            /* the lines in [begin, stop) */
    struct ms__tl_series s;         /* the samples the fast paths took */
    uint64_t slimit[MS__TL_LIMITS]; /* their largest limits */
    uint8_t slimit_valid;
    struct noted *noted; /* the other lines */
    size_t nnoted, capnoted;
    bool nomem; /* out of memory: the read fails */
};

static void chunk_sample(struct chunk *ch, const struct sample *smp)
{
    if (series_add(&ch->s, smp) != 0)
        ch->nomem = true;
    limits_max(ch->slimit, &ch->slimit_valid, smp->limit, smp->limit_valid);
}

static void chunk_note(struct chunk *ch, const char *p, unsigned long line)
{
    if (ch->nnoted == ch->capnoted) {
        size_t cap = ch->capnoted ? ch->capnoted * 2 : 64;
        struct noted *n = realloc(ch->noted, cap * sizeof(*n));
        if (!n) {
            ch->nomem = true;
            return;
        }
        ch->noted = n;
        ch->capnoted = cap;
    }
    ch->noted[ch->nnoted++] = (struct noted){p, line, ch->s.n};
}

/* Room in the chunk's columns for one sample per line break of the chunk (and the last). */
static void chunk_reserve(struct chunk *ch)
{
    size_t lines = 1;
    for (const char *p = ch->begin; (p = memchr(p, '\n', (size_t)(ch->limit - p))); p++)
        lines++;
    if (series_reserve(&ch->s, lines) != 0)
        ch->nomem = true;
}

/* A chunk of JSON lines: the sample lines of the fast path, the rest noted. */
static void chunk_json(struct chunk *ch)
{
    chunk_reserve(ch);
    struct rd lr = *ch->r;
    lr.quiet = true;
    lr.line = 0;
    const char *p = ch->begin;
    bool blank;
    while (p < ch->limit && !ch->nomem && json_blank(&lr, &p, &blank)) {
        lr.line++;
        if (blank)
            continue;
        struct sample smp;
        const char *next = p;
        if (ms__tl_fast_path && fp_sample(&lr, &next, &smp) == FP_OK)
            chunk_sample(ch, &smp);
        else {
            chunk_note(ch, p, lr.line);
            next = memchr(p, '\n', (size_t)(lr.end - p));
            next = next ? next + 1 : lr.end;
        }
        p = next;
    }
    ch->lines = lr.line;
    ch->stop = p < ch->limit ? lr.end : p;
}

/* A chunk of CSV rows: the clean sample rows, the rest noted. */
static void chunk_csv(struct chunk *ch)
{
    struct rd lr = *ch->r;
    struct csv lc = *ch->c;
    lr.quiet = true;
    lr.line = 0;
    lc.buf = NULL;
    lc.buflen = 0;
    chunk_reserve(ch);
    if (!(lc.f = malloc(lc.nf * sizeof(*lc.f)))) {
        ch->nomem = true;
        return;
    }
    const char *p = ch->begin;
    while (p < ch->limit && !ch->nomem) {
        if (csv_blank(&lr, &p))
            continue;
        const char *row = p;
        unsigned long line = ++lr.line;
        long n = csv_split(&lr, &p, lc.f, lc.nf);
        if (n < 0) { /* an error or the cut end: the sequential read stops there */
            chunk_note(ch, row, line);
            p = lr.end;
            break;
        }
        const struct fld *rec = &lc.f[lc.col[C_RECORD]];
        struct sample smp;
        uint64_t t;
        if ((size_t)n == lc.nf && rec->len == 6 && !rec->quoted && !memcmp(rec->p, "sample", 6) &&
            csv_u64(&lr, &lc, C_TIME, &t) == 1 && csv_fill(&lr, &lc, t, &smp) == 0)
            chunk_sample(ch, &smp);
        else
            chunk_note(ch, row, line);
    }
    ch->lines = lr.line;
    ch->stop = p;
    free(lc.f);
    free(lc.buf);
}

struct chunk_job {
    struct chunk *ch; /* every chunk */
    int n;            /* how many */
    int first, step;  /* this thread's: first, first + step, ... */
};

static void *chunk_thread(void *arg)
{
    struct chunk_job *job = arg;
    for (int i = job->first; i < job->n; i += job->step) {
        if (job->ch[i].c)
            chunk_csv(&job->ch[i]);
        else
            chunk_json(&job->ch[i]);
    }
    return NULL;
}

/* Appends the samples [from, to) of chunk ch to the file's; prints the error. */
static int chunk_append(struct rd *r, const struct chunk *ch, size_t from, size_t to)
{
    struct ms__tl_series *s = &r->in->s;
    size_t n = to - from;
    while (s->cap < s->n + n)
        if (series_grow(s) != 0)
            return rd_error(r, "out of memory");
    memcpy(s->time_ns + s->n, ch->s.time_ns + from, n * sizeof(uint64_t));
    memcpy(s->mono_ns + s->n, ch->s.mono_ns + from, n * sizeof(uint64_t));
    memcpy(s->seq + s->n, ch->s.seq + from, n * sizeof(uint64_t));
    for (int m = 0; m < MS__TL_METRICS; m++)
        memcpy(s->val[m] + s->n, ch->s.val[m] + from, n * sizeof(uint64_t));
    memcpy(s->valid + s->n, ch->s.valid + from, n);
    s->n += n;
    return 0;
}

/* Appends the chunks' samples and reads their noted lines, in file order (r->line: the line
 * before the first chunk). */
static int chunks_merge(struct rd *r, struct csv *c, struct chunk *ch, int n)
{
    const char *expect = ch[0].begin;
    unsigned long base = r->line;
    size_t total = r->in->s.n;
    for (int i = 0; i < n; i++)
        total += ch[i].s.n + ch[i].nnoted;
    if (series_reserve(&r->in->s, total) != 0)
        return rd_error(r, "out of memory");
    for (int i = 0; i < n; i++) {
        if (ch[i].nomem)
            return rd_error(r, "out of memory");
        if (ch[i].begin != expect) { /* a quoted line break across the cut */
            r->line = base;
            return c ? csv_rows(r, c, expect) : json_rows(r, expect);
        }
        size_t from = 0;
        for (size_t k = 0; k < ch[i].nnoted; k++) {
            const struct noted *nt = &ch[i].noted[k];
            if (chunk_append(r, &ch[i], from, nt->before) != 0)
                return -1;
            from = nt->before;
            r->line = base + nt->line;
            const char *p = nt->p;
            int rc = c ? csv_row(r, c, &p) : json_slow(r, &p);
            if (rc < 0)
                return -1;
            if (rc > 0)
                return 0; /* the cut end */
        }
        if (chunk_append(r, &ch[i], from, ch[i].s.n) != 0)
            return -1;
        limits_max(r->slimit, &r->slimit_valid, ch[i].slimit, ch[i].slimit_valid);
        base += ch[i].lines;
        expect = ch[i].stop;
    }
    r->line = base;
    return 0;
}

/* Reads the records from p to the end (c: CSV with these columns, NULL: JSON lines), in
 * chunks on several threads when the file is big. */
static int read_rows(struct rd *r, struct csv *c, const char *p)
{
    size_t len = (size_t)(r->end - p), min = CHUNK_MIN;
    const char *env = getenv("MEMSNAP_ANALYZE_CHUNK");
    if (env && atol(env) > 0)
        min = (size_t)atol(env);
    size_t k = len / min;
    if (k > CHUNKS_MAX)
        k = CHUNKS_MAX;
    if (k < 2)
        return c ? csv_rows(r, c, p) : json_rows(r, p);
    int n = (int)k;
    struct chunk *ch = calloc(k, sizeof(*ch));
    if (!ch)
        return rd_error(r, "out of memory");
    for (int i = 0; i < n; i++) {
        const char *b = p + len / k * (size_t)i, *nl;
        if (i > 0 && b < ch[i - 1].begin)
            b = ch[i - 1].begin;
        if (i > 0 && (nl = memchr(b - 1, '\n', (size_t)(r->end - b + 1))))
            b = nl + 1; /* the line after the cut */
        else if (i > 0)
            b = r->end;
        ch[i] = (struct chunk){.r = r, .c = c, .begin = i ? b : p};
        if (i > 0)
            ch[i - 1].limit = ch[i].begin;
    }
    ch[n - 1].limit = r->end;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = cpus < 1 ? 1 : cpus > THREADS_MAX ? THREADS_MAX : (int)cpus;
    if (threads > n)
        threads = n;
    pthread_t th[THREADS_MAX];
    struct chunk_job jobs[THREADS_MAX];
    int started = 0;
    for (int t = 1; t < threads; t++) {
        jobs[t] = (struct chunk_job){ch, n, t, threads};
        if (pthread_create(&th[t], NULL, chunk_thread, &jobs[t]) != 0)
            break;
        started = t;
    }
    /* this thread takes its share, and the share of any thread that could not start */
    for (int t = 0; t < threads; t++)
        if (t == 0 || t > started) {
            jobs[t] = (struct chunk_job){ch, n, t, threads};
            chunk_thread(&jobs[t]);
        }
    for (int t = 1; t <= started; t++)
        pthread_join(th[t], NULL);
    int rc = chunks_merge(r, c, ch, n);
    for (int i = 0; i < n; i++) {
        series_free(&ch[i].s);
        free(ch[i].noted);
    }
    free(ch);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* The entry point                                                                          */
/* ---------------------------------------------------------------------------------------- */

int ms__tl_read(const char *buf, size_t len, struct ms__tl_input *in)
{
    struct rd r = {.in = in, .end = buf + len, .line = 1};
    in->alerts = json_array();
    in->ooms = json_array();
    in->markers = json_array();
    in->warning_pct = in->critical_pct = -1;
    if (!in->alerts || !in->ooms || !in->markers)
        return rd_error(&r, "out of memory");
    const char *p = buf;
    /* blank lines before the first record */
    for (const char *q = buf; q < r.end && (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n');
         q++)
        if (*q == '\n') {
            r.line++;
            p = q + 1;
        }
    int rc;
    if ((size_t)(r.end - p) >= 7 && memcmp(p, "record,", 7) == 0) {
        struct csv c = {0};
        in->csv = true;
        rc = csv_header(&r, &c, &p);
        if (rc == 0)
            rc = read_rows(&r, &c, p);
        free(c.f);
        free(c.buf);
    } else {
        const char *q = p;
        while (q < r.end && (*q == ' ' || *q == '\t' || *q == '\r'))
            q++;
        if (q == r.end)
            return rd_error(&r, "no records (only blank lines)");
        if (*q != '{')
            return rd_error(&r, "not memsnap monitor output (a CSV header 'record,...' or "
                                "JSON lines) nor a trace");
        r.line--; /* json_rows counts the lines it starts */
        rc = read_rows(&r, NULL, p);
    }
    if (rc)
        return rc;
    for (int l = 0; l < MS__TL_LIMITS; l++)
        if (!(in->limit_valid >> l & 1) && (r.slimit_valid >> l & 1)) {
            in->limit[l] = r.slimit[l];
            in->limit_valid |= (uint8_t)(1u << l);
        }
    ms__tl_series_clock(&in->s);
    /* the warnings, one line each, for the caller to show (ms_timeline_warning) */
    char *w = NULL;
    size_t wlen = 0;
    FILE *wf = in->cut_line || in->unknown ? open_memstream(&w, &wlen) : NULL;
    if (in->cut_line && wf)
        fprintf(wf,
                "warning: %s:%lu: the last line is cut (the monitor stopped while "
                "writing it); ignored\n",
                in->path, in->cut_line);
    if (in->unknown && wf)
        fprintf(wf, "warning: %s:%lu: %lu record%s of unknown kind ignored (first: '%s')\n",
                in->path, r.unknown_line, in->unknown, in->unknown == 1 ? "" : "s", r.unknown_kind);
    if ((in->cut_line || in->unknown) && (!wf || fclose(wf) != 0)) {
        free(w);
        return rd_error(&r, "out of memory");
    }
    in->warnings = w;
    return 0;
}

void ms__tl_input_free(struct ms__tl_input *in)
{
    series_free(&in->s);
    json_decref(in->start);
    json_decref(in->end);
    json_decref(in->alerts);
    json_decref(in->ooms);
    json_decref(in->markers);
    free(in->alert_at);
    free(in->oom_at);
    free(in->marker_at);
    free(in->warnings);
    memset(in, 0, sizeof(*in));
}
