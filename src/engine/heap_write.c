/*
 * heap_write.c - the one renderer of heap rows (ms_heap_write in memsnap.h): a view of the
 * snapshot engine, grouped by call site, thread, function or module, as text, JSON, folded
 * stacks or JSON with unsymbolized frames, in the formats of docs/report-format.md. `memsnap
 * report`, `memsnap analyze` of a trace and the flight recorder's trace_tail.json all print
 * through it, so the three can never drift apart. Also the per-thread statistics of `report
 * --threads --stats` (ms_heap_threads_write).
 */
#include "memsnap.h"

#include "../core/internal.h"
#include "../core/json_out.h"
#include "engine.h"
#include "heap_internal.h"
#include "symbolize.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FRAMES     1024 /* symbolized frames of one site (inlined ones included) */
#define ADDRESS_FRAMES 64   /* frames per site in JSON_ADDRESSES */

/* What one ms_heap_write call works with. */
struct hw {
    ms_heap *h;
    const struct ms_heap_view *view;
    const struct ms__heap_view *v;
    const struct ms__trace_data *td;
    struct ms__symbolizer *sym; /* NULL: frames are module+offset */
    ms_heap_by by;
    FILE *fp;
    struct ms__sym_frame frames[MAX_FRAMES];
};

/* The frames of row r's stack, innermost first, into w->frames (at most max). */
static size_t stack_frames(struct hw *w, const struct ms__group_row *r, size_t max)
{
    return ms__engine_stack_frames(w->h->e, w->sym, r->image, r->stack, w->frames, max);
}

/* "+1.50 MiB (+1572864 bytes)" or "1.50 MiB (1572864 bytes)" into buf. */
static const char *fmt_sbytes(char *buf, size_t len, int64_t bytes, bool diff)
{
    if (!diff)
        return ms__fmt_bytes_exact(buf, len, bytes < 0 ? 0 : (uint64_t)bytes);
    char h[32];
    ms_format_bytes_signed(h, sizeof(h), bytes);
    if (bytes > -1024 && bytes < 1024)
        snprintf(buf, len, "%s", h);
    else
        snprintf(buf, len, "%s (%+lld bytes)", h, (long long)bytes);
    return buf;
}

static const char *thread_name(const struct ms__trace_data *td, uint32_t t)
{
    if (t >= td->nthreads || !td->threads[t].name.len)
        return NULL;
    return ms__trace_str_ptr(td, td->threads[t].name);
}

static uint32_t thread_tid(const struct ms__trace_data *td, uint32_t t)
{
    return t < td->nthreads ? td->threads[t].tid : 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Text                                                                                     */
/* ---------------------------------------------------------------------------------------- */

static void text_header(struct hw *w)
{
    static const char *const kind[] = {
        [MS__VIEW_AT] = "heap", [MS__VIEW_PEAK] = "peak", [MS__VIEW_LEAKS] = "leaks"};
    const struct ms__heap_view *v = w->v;
    char a[96], b[96], c[96];
    if (v->diff)
        fprintf(w->fp, "diff from %s to %s: %s, %+lld allocations\n",
                ms__fmt_seconds(a, sizeof(a), v->from_time_ns),
                ms__fmt_seconds(b, sizeof(b), v->time_ns),
                fmt_sbytes(c, sizeof(c), v->live_bytes, true), (long long)v->live_allocations);
    else
        fprintf(w->fp, "%s at %s: %s live in %lld allocation%s\n",
                w->view->kind <= MS__VIEW_LEAKS ? kind[w->view->kind] : "heap",
                ms__fmt_seconds(a, sizeof(a), v->time_ns),
                fmt_sbytes(c, sizeof(c), v->live_bytes, false), (long long)v->live_allocations,
                v->live_allocations == 1 ? "" : "s");
}

/* "#N BYTES in COUNT allocations", the line that opens a site, function or module. */
static void text_row_head(struct hw *w, size_t i, const struct ms__group_row *r)
{
    char a[96];
    fprintf(w->fp,
            w->v->diff ? "\n#%zu %s in %+lld allocation%s\n" : "\n#%zu %s in %lld allocation%s\n",
            i + 1, fmt_sbytes(a, sizeof(a), r->bytes, w->v->diff), (long long)r->count,
            r->count == 1 || r->count == -1 ? "" : "s");
}

static void text_sites(struct hw *w, const struct ms__group_row *rows, size_t n)
{
    FILE *fp = w->fp;
    for (size_t i = 0; i < n; i++) {
        text_row_head(w, i, &rows[i]);
        size_t nf = stack_frames(w, &rows[i], MAX_FRAMES);
        if (!nf)
            fprintf(fp, "    (no stack)\n");
        for (size_t f = 0; f < nf; f++) {
            const struct ms__sym_frame *fr = &w->frames[f];
            if (fr->function) {
                fprintf(fp, "    %s", fr->function);
                if (fr->file)
                    fprintf(fp, " %s:%u", fr->file, fr->line);
                fprintf(fp, " [%s]%s\n", ms__sym_module_name(fr), fr->inlined ? " (inlined)" : "");
            } else {
                char name[512];
                fprintf(fp, "    %s\n", ms__sym_frame_name(fr, name, sizeof(name)));
            }
        }
    }
}

static void text_threads(struct hw *w, const struct ms__group_row *rows, size_t n)
{
    char a[96];
    fprintf(w->fp, "\n%-8s %-16s %12s %28s\n", "tid", "name", "allocations", "bytes");
    for (size_t i = 0; i < n; i++) {
        const char *name = thread_name(w->td, rows[i].thread);
        fprintf(w->fp, "%-8u %-16s %12lld %28s\n", thread_tid(w->td, rows[i].thread),
                name ? name : "?", (long long)rows[i].count,
                fmt_sbytes(a, sizeof(a), rows[i].bytes, w->v->diff));
    }
}

static void text_names(struct hw *w, const struct ms__group_row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        text_row_head(w, i, &rows[i]);
        fprintf(w->fp, "    %s\n", rows[i].name ? rows[i].name : "?");
    }
}

static int write_text(struct hw *w, const struct ms__group_row *rows, size_t n)
{
    text_header(w);
    if (w->by == MS_HEAP_BY_THREAD) {
        text_threads(w, rows, n);
        return 0;
    }
    if (w->by == MS_HEAP_BY_SITE)
        text_sites(w, rows, n);
    else
        text_names(w, rows, n);
    if (n == 0)
        fprintf(w->fp, "\n(no %s)\n", w->v->diff ? "change" : "live allocations");
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* JSON                                                                                     */
/* ---------------------------------------------------------------------------------------- */

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static json_t *json_view_head(const struct ms__heap_view *v)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    int bad = json_object_set_new(o, "time_ns", json_integer((json_int_t)v->time_ns));
    if (v->diff)
        bad |= json_object_set_new(o, "from_time_ns", json_integer((json_int_t)v->from_time_ns));
    bad |= json_object_set_new(o, "live_bytes", json_integer((json_int_t)v->live_bytes));
    bad |=
        json_object_set_new(o, "live_allocations", json_integer((json_int_t)v->live_allocations));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* The frames of a site: symbolized {function, file, line, module}, or with addresses
 * {ip, module, offset}. */
static int json_stack(struct hw *w, const struct ms__group_row *r, json_t *stack, bool addresses)
{
    size_t nf = stack_frames(w, r, addresses ? ADDRESS_FRAMES : MAX_FRAMES);
    int bad = 0;
    for (size_t f = 0; f < nf && !bad; f++) {
        const struct ms__sym_frame *fr = &w->frames[f];
        json_t *jf = json_object();
        bad |= !jf || json_array_append_new(stack, jf);
        if (bad)
            break;
        if (addresses) {
            bad |= json_object_set_new(jf, "ip", ms__json_hex(fr->ip));
            bad |= json_object_set_new(jf, "module", json_string(fr->module ? fr->module : "?"));
            bad |= json_object_set_new(jf, "offset", ms__json_hex(fr->offset));
            continue;
        }
        bad |= json_object_set_new(jf, "function", str_or_null(fr->function));
        bad |= json_object_set_new(jf, "file", str_or_null(fr->file));
        bad |= json_object_set_new(jf, "line", json_integer(fr->line));
        bad |= json_object_set_new(jf, "module", json_string(fr->module ? fr->module : "?"));
    }
    return bad;
}

/* One row of any grouping as a JSON object. */
static json_t *json_row(struct hw *w, const struct ms__group_row *r, bool addresses)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    int bad = 0;
    if (w->by == MS_HEAP_BY_THREAD) {
        bad |= json_object_set_new(o, "tid", json_integer(thread_tid(w->td, r->thread)));
        bad |= json_object_set_new(o, "name", str_or_null(thread_name(w->td, r->thread)));
    } else if (w->by != MS_HEAP_BY_SITE) {
        bad |= json_object_set_new(o, "name", json_string(r->name ? r->name : "?"));
    }
    bad |= json_object_set_new(o, "bytes", json_integer((json_int_t)r->bytes));
    bad |= json_object_set_new(o, "count", json_integer((json_int_t)r->count));
    if (w->by == MS_HEAP_BY_SITE) {
        json_t *stack = json_array();
        if (addresses)
            bad |= json_object_set_new(o, "stack_id", json_integer((json_int_t)r->stack));
        bad |= !stack || json_object_set_new(o, addresses ? "frames" : "stack", stack);
        bad |= bad || json_stack(w, r, stack, addresses);
    }
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static int write_json(struct hw *w, const struct ms__group_row *rows, size_t n, bool addresses)
{
    static const char *const key[] = {
        [MS_HEAP_BY_SITE] = "sites",
        [MS_HEAP_BY_FUNCTION] = "functions",
        [MS_HEAP_BY_FUNCTION_INCL] = "functions",
        [MS_HEAP_BY_MODULE] = "modules",
        [MS_HEAP_BY_THREAD] = "threads",
    };
    json_t *o = json_view_head(w->v), *arr = json_array();
    int bad = !o || !arr || json_object_set_new(o, key[w->by], arr);
    for (size_t i = 0; i < n && !bad; i++) {
        json_t *row = json_row(w, &rows[i], addresses);
        bad |= !row || json_array_append_new(arr, row);
    }
    return ms__json_line(o, w->fp, JSON_COMPACT, bad) ? MS_ENOMEM : 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Folded                                                                                   */
/* ---------------------------------------------------------------------------------------- */

/* A name in a folded line: ';' (the frame separator) and newlines made ':'. */
static void folded_name(FILE *fp, char *buf)
{
    for (char *c = buf; *c; c++)
        if (*c == ';' || *c == '\n')
            *c = ':';
    fputs(buf, fp);
}

/* Every row with positive bytes: "outer;...;inner bytes"; threads "NAME-TID bytes"; functions
 * and modules "NAME bytes". */
static int write_folded(struct hw *w, const struct ms__group_row *rows, size_t n)
{
    FILE *fp = w->fp;
    char buf[512];
    for (size_t i = 0; i < n; i++) {
        const struct ms__group_row *r = &rows[i];
        if (r->bytes <= 0)
            continue;
        if (w->by == MS_HEAP_BY_THREAD) {
            const char *name = thread_name(w->td, r->thread);
            fprintf(fp, "%s-%u %lld\n", name ? name : "thread", thread_tid(w->td, r->thread),
                    (long long)r->bytes);
            continue;
        }
        if (w->by != MS_HEAP_BY_SITE) {
            snprintf(buf, sizeof(buf), "%s", r->name ? r->name : "?");
            folded_name(fp, buf);
            fprintf(fp, " %lld\n", (long long)r->bytes);
            continue;
        }
        size_t nf = stack_frames(w, r, MAX_FRAMES);
        if (!nf)
            fputs("[no stack]", fp);
        for (size_t f = nf; f-- > 0;) {
            folded_name(fp, (char *)ms__sym_frame_name(&w->frames[f], buf, sizeof(buf)));
            if (f)
                fputc(';', fp);
        }
        fprintf(fp, " %lld\n", (long long)r->bytes);
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* ms_heap_write                                                                            */
/* ---------------------------------------------------------------------------------------- */

/* What a writer returns: rc (from building the output) or a write error on fp, each with the
 * calling thread's message naming fn. */
static int write_status(int rc, FILE *fp, const char *fn)
{
    if (rc)
        return ms__error(rc, "%s: %s", fn, ms_strerror(rc));
    if (ferror(fp))
        return ms__error(MS_EIO, "%s: writing failed", fn);
    return 0;
}

int ms_heap_write(ms_heap *h, const ms_heap_view *v, ms_heap_by by, ms_heap_order order,
                  ms_heap_format format, size_t top, FILE *fp)
{
    if (!h || !v || !fp || (unsigned)by > MS_HEAP_BY_THREAD ||
        (order != MS_HEAP_ORDER_BYTES && order != MS_HEAP_ORDER_COUNT) ||
        (unsigned)format > MS_HEAP_FORMAT_JSON_ADDRESSES)
        return ms__error(MS_EINVAL, "ms_heap_write: unknown grouping, order or format");
    struct hw *w = calloc(1, sizeof(*w));
    if (!w)
        return ms__error(MS_ENOMEM, "out of memory");
    bool addresses = format == MS_HEAP_FORMAT_JSON_ADDRESSES;
    *w = (struct hw){
        .h = h, .view = v, .v = &v->v, .td = ms__engine_trace(h->e), .by = by, .fp = fp};
    /* a site's frames and a function's name come symbolized, but with addresses nothing reads
     * debug info; threads need no symbols at all */
    w->sym = addresses || by == MS_HEAP_BY_THREAD ? NULL : ms__heap_symbolizer(h);
    struct ms__group_row *rows;
    size_t n;
    int rc = ms__engine_group(h->e, &v->v, ms__heap_group_by[by],
                              by == MS_HEAP_BY_SITE || by == MS_HEAP_BY_THREAD ? NULL : w->sym,
                              &rows, &n);
    if (rc) {
        free(w);
        return ms__error(rc, "ms_heap_write: %s", ms_strerror(rc));
    }
    if (order == MS_HEAP_ORDER_COUNT)
        ms__heap_sort_by_count(rows, n);
    size_t shown = top && top < n ? top : n;
    if (format == MS_HEAP_FORMAT_FOLDED)
        rc = write_folded(w, rows, n);
    else if (format == MS_HEAP_FORMAT_TEXT)
        rc = write_text(w, rows, shown);
    else
        rc = write_json(w, rows, shown, addresses);
    ms__group_rows_free(rows, n);
    free(w);
    return write_status(rc, fp, "ms_heap_write");
}

/* ---------------------------------------------------------------------------------------- */
/* Per-thread statistics                                                                    */
/* ---------------------------------------------------------------------------------------- */

/* Largest allocated bytes first, then in the order of the rows (first allocator call). */
static int by_allocated(const void *pa, const void *pb)
{
    const ms_heap_thread *a = *(const ms_heap_thread *const *)pa;
    const ms_heap_thread *b = *(const ms_heap_thread *const *)pb;
    if (a->allocated_bytes != b->allocated_bytes)
        return a->allocated_bytes > b->allocated_bytes ? -1 : 1;
    return a < b ? -1 : a > b;
}

static int threads_text(FILE *fp, const ms_heap_totals *t, const ms_heap_thread *const *rows,
                        size_t n)
{
    char a[96], b[96], c[96], d[32], e[32], f[32];
    fprintf(fp, "threads: %llu; allocated %s, freed %s, peak %s at %s\n",
            (unsigned long long)t->threads, ms__fmt_bytes_exact(a, sizeof(a), t->allocated_bytes),
            ms__fmt_bytes_exact(b, sizeof(b), t->freed_bytes),
            ms__fmt_bytes_exact(c, sizeof(c), t->peak_bytes),
            ms__fmt_seconds(d, sizeof(d), t->peak_time_ns));
    fprintf(fp, "\n%-8s %-16s %5s %12s %12s %12s %12s %12s %12s %14s\n", "tid", "name", "image",
            "allocations", "reallocs", "frees", "allocated", "freed", "peak", "peak at");
    for (size_t i = 0; i < n; i++) {
        const ms_heap_thread *r = rows[i];
        ms_format_bytes(d, sizeof(d), r->allocated_bytes);
        ms_format_bytes(e, sizeof(e), r->freed_bytes);
        ms_format_bytes(f, sizeof(f), r->peak_bytes);
        fprintf(fp, "%-8u %-16s %5u %12llu %12llu %12llu %12s %12s %12s %14s\n", r->tid,
                r->name ? r->name : "?", r->image, (unsigned long long)r->allocations,
                (unsigned long long)r->reallocations, (unsigned long long)r->frees, d, e, f,
                ms__fmt_seconds(a, sizeof(a), r->peak_time_ns));
    }
    return 0;
}

/* The figures that ms_heap_totals and ms_heap_thread share, under the same JSON keys, in the
 * order they are written. */
#define HEAP_BYTE_FIELDS(XX) XX(allocated_bytes) XX(freed_bytes) XX(peak_bytes) XX(peak_time_ns)

static int threads_json(FILE *fp, const ms_heap_totals *t, const ms_heap_thread *const *rows,
                        size_t n)
{
    json_t *o = json_object(), *arr = json_array();
    int bad = !o || !arr;
    if (!bad) {
        bad |= json_object_set_new(o, "threads_total", ms__json_u64(t->threads));
#define XX(f) bad |= json_object_set_new(o, #f, ms__json_u64(t->f));
        HEAP_BYTE_FIELDS(XX)
#undef XX
        bad |= json_object_set_new(o, "threads", arr);
    } else
        json_decref(arr);
    for (size_t i = 0; i < n && !bad; i++) {
        const ms_heap_thread *r = rows[i];
        json_t *j = json_object();
        bad |= !j || json_array_append_new(arr, j);
        if (bad)
            break;
        bad |= json_object_set_new(j, "tid", json_integer(r->tid));
        bad |= json_object_set_new(j, "name", str_or_null(r->name));
        bad |= json_object_set_new(j, "image", json_integer(r->image));
#define XX(f) bad |= json_object_set_new(j, #f, ms__json_u64(r->f));
        XX(allocations) XX(reallocations) XX(frees) HEAP_BYTE_FIELDS(XX)
#undef XX
    }
    return ms__json_line(o, fp, JSON_COMPACT | JSON_REAL_PRECISION(17), bad) ? MS_ENOMEM : 0;
}

int ms_heap_threads_write(ms_heap *h, ms_heap_format format, size_t top, FILE *fp)
{
    if (!h || !fp || (format != MS_HEAP_FORMAT_TEXT && format != MS_HEAP_FORMAT_JSON))
        return ms__error(MS_EINVAL, "ms_heap_threads_write: text or JSON only");
    size_t n;
    int rc = ms_heap_threads(h, &n);
    if (rc)
        return rc;
    ms_heap_totals t = {.size = sizeof(t)};
    ms_heap_totals_get(h, &t);
    const ms_heap_thread **rows = malloc((n ? n : 1) * sizeof(*rows));
    if (!rows)
        return ms__error(MS_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        rows[i] = ms_heap_thread_at(h, i);
    qsort(rows, n, sizeof(*rows), by_allocated);
    size_t shown = top && top < n ? top : n;
    rc = format == MS_HEAP_FORMAT_TEXT ? threads_text(fp, &t, rows, shown)
                                       : threads_json(fp, &t, rows, shown);
    free(rows);
    return write_status(rc, fp, "ms_heap_threads_write");
}
