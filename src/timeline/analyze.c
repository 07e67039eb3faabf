/*
 * analyze.c - the public timeline API (ms_timeline_* in memsnap.h): a timeline is monitor
 * output read into columns (read.c); its analysis is the statistics of every metric (stats.c),
 * and is written as text or JSON (report.c) or HTML (html.c). An analysis of a trace
 * (trace.c) has the same life cycle and writers, so a front end - `memsnap analyze`, the
 * bindings - handles a path of either kind with one call and one handle.
 *
 * What every writer needs is computed once, in ms_timeline_analyze; the JSON object only when
 * a JSON or HTML writer first asks for it (the text needs none: a million samples analyzed as
 * text never build it).
 */
#include "timeline.h"

#include "../core/internal.h"
#include "../trace/format.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct ms_timeline {
    struct ms__tl_input in; /* what was read; in.path points at name */
    char *name;             /* the file's name, as given */
};

struct ms_timeline_analysis {
    ms_timeline_kind kind;
    ms_timeline *tl;                               /* monitor output (NULL for a trace) */
    bool own_tl;                                   /* opened by ms_timeline_analyze_path */
    struct ms__tl_metric_stats st[MS__TL_METRICS]; /* monitor output: every metric */
    struct ms__tl_trace *trace;                    /* a trace (NULL for monitor output) */
    char *notes;                                   /* a trace's warnings and notes */
    json_t *json;                                  /* the analysis object, once built */
};

ms_timeline_kind ms_timeline_sniff(const void *buf, size_t len)
{
    return buf && len >= 8 && memcmp(buf, MS_TRACE_MAGIC, 8) == 0 ? MS_TIMELINE_TRACE
                                                                  : MS_TIMELINE_MONITOR;
}

int ms_timeline_read(ms_timeline **out, const void *buf, size_t len, const char *name)
{
    if (!out || (!buf && len) || !name)
        return ms__error(MS_EINVAL, "ms_timeline_read: a NULL argument");
    *out = NULL;
    ms_timeline *tl = calloc(1, sizeof(*tl));
    if (!tl || !(tl->name = strdup(name))) {
        free(tl);
        return ms__error(MS_ENOMEM, "out of memory");
    }
    tl->in.path = tl->name;
    if (ms__tl_read(buf, len, &tl->in) != 0) {
        int rc = strstr(ms_last_error(), "out of memory") ? MS_ENOMEM : MS_EPARSE;
        ms_timeline_close(tl);
        return rc;
    }
    *out = tl;
    return 0;
}

/* Opens path for reading as a regular file (O_NONBLOCK while opening: a FIFO nobody writes
 * cannot block); returns the descriptor and its size, or an MS_E* code with the message set. */
static int open_regular(const char *path, size_t *size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return ms__error(ms__errno_code(errno), "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        int err = errno;
        close(fd);
        if (S_ISDIR(st.st_mode))
            return ms__error(MS_EINVAL, "cannot read %s: it is a directory", path);
        return err ? ms__error(ms__errno_code(err), "%s: %s", path, strerror(err))
                   : ms__error(MS_EINVAL, "cannot read %s: not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return ms__error(MS_EINVAL, "%s: empty file", path);
    }
    *size = (size_t)st.st_size;
    return fd;
}

int ms_timeline_open(ms_timeline **out, const char *path)
{
    if (!out || !path)
        return ms__error(MS_EINVAL, "ms_timeline_open: a NULL argument");
    *out = NULL;
    size_t len;
    int fd = open_regular(path, &len);
    if (fd < 0)
        return fd;
    /* mapped, not read: the reader's threads work on the file in place */
    void *buf = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    int err = errno;
    close(fd);
    if (buf == MAP_FAILED)
        return ms__error(ms__errno_code(err), "%s: %s", path, strerror(err));
    int rc = ms_timeline_read(out, buf, len, path);
    munmap(buf, len);
    return rc;
}

void ms_timeline_close(ms_timeline *tl)
{
    if (!tl)
        return;
    ms__tl_input_free(&tl->in);
    free(tl->name);
    free(tl);
}

const char *ms_timeline_warning(const ms_timeline *tl)
{
    return tl ? tl->in.warnings : NULL;
}

size_t ms_timeline_samples(const ms_timeline *tl)
{
    return tl ? tl->in.s.n : 0;
}

int ms_timeline_analyze(ms_timeline *tl, ms_timeline_analysis **out)
{
    if (!tl || !out)
        return ms__error(MS_EINVAL, "ms_timeline_analyze: a NULL argument");
    *out = NULL;
    ms_timeline_analysis *a = calloc(1, sizeof(*a));
    if (!a)
        return ms__error(MS_ENOMEM, "out of memory");
    a->kind = MS_TIMELINE_MONITOR;
    a->tl = tl;
    bool has_limit[MS__TL_METRICS];
    uint64_t limit[MS__TL_METRICS];
    for (int m = 0; m < MS__TL_METRICS; m++)
        has_limit[m] = ms__tl_metric_limit(&tl->in, m, &limit[m]);
    if (ms__tl_stats(&tl->in.s, has_limit, limit, a->st) != 0) {
        ms_timeline_analysis_free(a);
        return ms__error(MS_ENOMEM, "out of memory");
    }
    *out = a;
    return 0;
}

int ms_timeline_analyze_path(const char *path, const ms_timeline_options *opts,
                             ms_timeline_analysis **out)
{
    if (!path || !out || (opts && opts->size < sizeof(*opts)))
        return ms__error(MS_EINVAL, "ms_timeline_analyze_path: a NULL argument or a short "
                                    "options size");
    *out = NULL;
    size_t top = opts && opts->top ? opts->top : 10;
    size_t len;
    int fd = open_regular(path, &len);
    if (fd < 0)
        return fd;
    char head[8];
    ssize_t got = pread(fd, head, sizeof(head), 0);
    close(fd);
    if (got > 0 && ms_timeline_sniff(head, (size_t)got) == MS_TIMELINE_TRACE) {
        ms_timeline_analysis *a = calloc(1, sizeof(*a));
        if (!a)
            return ms__error(MS_ENOMEM, "out of memory");
        a->kind = MS_TIMELINE_TRACE;
        int rc = ms__tl_trace_open(path, top, &a->trace, &a->notes);
        if (rc) {
            free(a);
            return rc;
        }
        *out = a;
        return 0;
    }
    ms_timeline *tl;
    int rc = ms_timeline_open(&tl, path);
    if (rc)
        return rc;
    if ((rc = ms_timeline_analyze(tl, out)) != 0) {
        ms_timeline_close(tl);
        return rc;
    }
    (*out)->own_tl = true;
    return 0;
}

void ms_timeline_analysis_free(ms_timeline_analysis *a)
{
    if (!a)
        return;
    for (int m = 0; m < MS__TL_METRICS; m++)
        ms__tl_stats_free(&a->st[m]);
    json_decref(a->json);
    ms__tl_trace_free(a->trace);
    free(a->notes);
    if (a->own_tl)
        ms_timeline_close(a->tl);
    free(a);
}

ms_timeline_kind ms_timeline_analysis_kind(const ms_timeline_analysis *a)
{
    return a->kind;
}

const char *ms_timeline_analysis_warning(const ms_timeline_analysis *a)
{
    if (!a)
        return NULL;
    return a->kind == MS_TIMELINE_TRACE ? a->notes : a->tl->in.warnings;
}

int ms_timeline_metric_get(const ms_timeline_analysis *a, const char *key, ms_timeline_metric *out)
{
    if (!a || !key || !out || out->size < sizeof(*out))
        return ms__error(MS_EINVAL, "ms_timeline_metric_get: a NULL argument or a short size");
    if (a->kind != MS_TIMELINE_MONITOR)
        return ms__error(MS_EINVAL, "ms_timeline_metric_get: a trace's analysis has no metrics");
    for (int m = 0; m < MS__TL_METRICS; m++) {
        if (strcmp(key, ms__tl_metric_key(m)) != 0)
            continue;
        const struct ms__tl_metric_stats *st = &a->st[m];
        if (!st->present)
            return ms__error(MS_ENOENT, "%s: no sample has %s", a->tl->name, key);
        *out = (ms_timeline_metric){
            .size = sizeof(*out),
            .label = ms__tl_metric_label(m),
            .samples = st->sum.n,
            .min = st->sum.min,
            .max = st->sum.max,
            .mean = st->sum.mean,
            .p50 = st->sum.p50,
            .p90 = st->sum.p90,
            .p99 = st->sum.p99,
            .slope_bytes_per_s = st->trend.slope,
            .severity = ms__tl_severity_name(st->trend.severity),
            .spikes = st->spikes.count,
        };
        return 0;
    }
    return ms__error(MS_EINVAL, "ms_timeline_metric_get: no metric is called '%s'", key);
}

/* The analysis object, built on first use. */
static json_t *analysis_json(ms_timeline_analysis *a)
{
    if (!a->json)
        a->json = a->kind == MS_TIMELINE_TRACE ? ms__tl_trace_json(a->trace)
                                               : ms__tl_analysis_json(&a->tl->in, a->st);
    return a->json;
}

/* The result of a writer: 0, MS_EIO when fp has an error, else MS_ENOMEM; the message set. */
static int write_result(int bad, FILE *fp, const char *what)
{
    int err = errno; /* the write's: kept for the caller too */
    if (!bad)
        return 0;
    int rc = ferror(fp)
                 ? ms__error(MS_EIO, "writing the %s failed: %s", what, strerror(err ? err : EIO))
                 : ms__error(MS_ENOMEM, "writing the %s failed: out of memory", what);
    errno = err;
    return rc;
}

int ms_timeline_write_text(ms_timeline_analysis *a, FILE *fp)
{
    if (!a || !fp)
        return ms__error(MS_EINVAL, "ms_timeline_write_text: a NULL argument");
    if (a->kind == MS_TIMELINE_TRACE) {
        int rc = ms__tl_trace_text(a->trace, fp);
        return rc == MS_ENOMEM ? ms__error(rc, "writing the analysis failed: out of memory")
                               : write_result(rc != 0, fp, "analysis");
    }
    return write_result(ms__tl_analysis_text(fp, &a->tl->in, a->st) != 0, fp, "analysis");
}

int ms_timeline_write_json(ms_timeline_analysis *a, FILE *fp)
{
    if (!a || !fp)
        return ms__error(MS_EINVAL, "ms_timeline_write_json: a NULL argument");
    json_t *o = analysis_json(a);
    if (!o)
        return ms__error(MS_ENOMEM, "writing the analysis failed: out of memory");
    int bad =
        json_dumpf(o, fp, JSON_COMPACT | JSON_REAL_PRECISION(12)) != 0 || fputc('\n', fp) == EOF;
    return write_result(bad, fp, "analysis");
}

int ms_timeline_write_html(ms_timeline_analysis *a, FILE *fp)
{
    if (!a || !fp)
        return ms__error(MS_EINVAL, "ms_timeline_write_html: a NULL argument");
    json_t *o = analysis_json(a);
    if (!o)
        return ms__error(MS_ENOMEM, "writing the HTML report failed: out of memory");
    char *folded = NULL;
    if (a->kind == MS_TIMELINE_TRACE && !(folded = ms__tl_trace_folded(a->trace)))
        return ms__error(MS_ENOMEM, "writing the HTML report failed: out of memory");
    errno = 0;
    int bad =
        ms__tl_write_html(fp, o, a->kind == MS_TIMELINE_MONITOR ? &a->tl->in.s : NULL, folded) != 0;
    int rc = write_result(bad, fp, "HTML report"), err = errno;
    free(folded);
    errno = err;
    return rc;
}
