/*
 * report.c - the analysis of monitor output as JSON (the object `memsnap analyze --format
 * json` prints, docs/analyze-format.md) and as text (what `memsnap analyze` prints), from what
 * read.c read and stats.c computed. Times are offsets in seconds from the time origin (the
 * start record's, or the first sample's when earlier), measured on the samples' clock
 * (ms__tl_elapsed_ns): monotonic where the file has it, so that a step of the wall clock moves
 * nothing.
 */
#include "timeline.h"

#include "../core/json_out.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A count, byte figure or time as a JSON integer; one past json_int_t (2^63 and more, from a
 * crafted file) as a real, never as a negative number. */
/* A finite double as a JSON real, anything else as null. */
static json_t *jreal(double d)
{
    return isfinite(d) ? json_real(d) : json_null();
}

/* Seconds from t0 to t (negative when t is earlier). */
static double offset_s(uint64_t t, uint64_t t0)
{
    return (double)(int64_t)(t - t0) / 1e9;
}

/* Which limit metric m runs into: the cgroup's for the process and cgroup metrics (else the
 * system's), the system's, the GPUs'. Returns false when none is known. */
bool ms__tl_metric_limit(const struct ms__tl_input *in, int m, uint64_t *limit)
{
    int l = m == MS__TL_SYSTEM ? MS__TL_LIMIT_SYSTEM
            : m == MS__TL_GPU  ? MS__TL_LIMIT_GPU
                               : MS__TL_LIMIT_CGROUP;
    if (l == MS__TL_LIMIT_CGROUP && !(in->limit_valid >> l & 1))
        l = MS__TL_LIMIT_SYSTEM;
    *limit = in->limit[l];
    return in->limit_valid >> l & 1;
}

/* The time everything is measured from: the start record's, or the first sample's when that
 * is earlier (the monitor may stamp its first sample before its start record) or there is no
 * start record. */
static uint64_t time_origin(const struct ms__tl_input *in)
{
    json_t *t = in->start ? json_object_get(in->start, "time_ns") : NULL;
    uint64_t t0 = t ? (uint64_t)json_integer_value(t) : UINT64_MAX;
    if (in->s.n && in->s.time_ns[0] < t0)
        t0 = in->s.time_ns[0];
    return t0 == UINT64_MAX ? 0 : t0;
}

/* Seconds from t0 to sample i: the first sample's wall time, then the time elapsed since it
 * (monotonic where the samples have it: a wall-clock step moves no sample in time). */
static double sample_offset_s(const struct ms__tl_series *s, size_t i, uint64_t t0)
{
    return offset_s(s->time_ns[0], t0) + (double)ms__tl_elapsed_ns(s, i) / 1e9;
}

/* Seconds from t0 to a record other than a sample (wall time t, after the first `at` samples
 * of the file): placed by the samples around it on their clock (ms__tl_record_elapsed_ns), so that
 * a wall-clock step moves it no more than it moves them. */
static double record_offset_s(const struct ms__tl_input *in, size_t at, uint64_t t, uint64_t t0)
{
    const struct ms__tl_series *s = &in->s;
    if (!s->n)
        return offset_s(t, t0);
    return offset_s(s->time_ns[0], t0) + (double)ms__tl_record_elapsed_ns(s, at, t) / 1e9;
}

/* The wall time of the normalized record r (its time_ns, for display). */
static uint64_t record_time(json_t *r)
{
    return (uint64_t)json_integer_value(json_object_get(r, "time_ns"));
}

/* One sample's place: its seq, time (the wall clock's, for display) and offset. */
static int set_when(json_t *o, const struct ms__tl_series *s, size_t i, uint64_t t0)
{
    return json_object_set_new(o, "seq", ms__json_u64(s->seq[i])) |
           json_object_set_new(o, "time_ns", ms__json_u64(s->time_ns[i])) |
           json_object_set_new(o, "offset_s", jreal(sample_offset_s(s, i, t0)));
}

static json_t *metric_json(const struct ms__tl_input *in, int m,
                           const struct ms__tl_metric_stats *st, uint64_t t0)
{
    const struct ms__tl_summary *sm = &st->sum;
    const struct ms__tl_trend *tr = &st->trend;
    json_t *o = json_object(), *peak = json_object(), *trend = json_object();
    json_t *sp = json_object(), *list = json_array();
    int bad = !o || !peak || !trend || !sp || !list;
    if (bad) {
        json_decref(o), json_decref(peak), json_decref(trend), json_decref(sp), json_decref(list);
        return NULL;
    }
    bad |= json_object_set_new(o, "label", json_string(ms__tl_metric_label(m)));
    bad |= json_object_set_new(o, "samples", ms__json_u64(sm->n));
    bad |= json_object_set_new(o, "min", ms__json_u64(sm->min));
    bad |= json_object_set_new(o, "max", ms__json_u64(sm->max));
    bad |= json_object_set_new(o, "mean", jreal(sm->mean));
    bad |= json_object_set_new(o, "p50", ms__json_u64(sm->p50));
    bad |= json_object_set_new(o, "p90", ms__json_u64(sm->p90));
    bad |= json_object_set_new(o, "p99", ms__json_u64(sm->p99));
    bad |= set_when(peak, &in->s, sm->peak, t0);
    bad |= json_object_set_new(o, "peak", peak);
    bad |= json_object_set_new(trend, "points", ms__json_u64(tr->points));
    bad |= json_object_set_new(trend, "slope_bytes_per_s", jreal(tr->slope));
    bad |= json_object_set_new(trend, "ci95_bytes_per_s",
                               json_pack("[oo]", jreal(tr->ci_low), jreal(tr->ci_high)));
    bad |= json_object_set_new(trend, "mann_kendall_z", jreal(tr->mk_z));
    bad |= json_object_set_new(trend, "p_value", jreal(tr->p_value));
    bad |= json_object_set_new(trend, "rising_share", jreal(tr->rising_share));
    bad |= json_object_set_new(trend, "duration_s", jreal(tr->duration_s));
    bad |= json_object_set_new(trend, "growth_bytes", jreal(tr->growth_bytes));
    bad |= json_object_set_new(trend, "growth_pct", jreal(tr->growth_pct));
    bad |= json_object_set_new(trend, "time_to_limit_s",
                               tr->time_to_limit_s >= 0 ? jreal(tr->time_to_limit_s) : json_null());
    bad |= json_object_set_new(trend, "severity", json_string(ms__tl_severity_name(tr->severity)));
    bad |= json_object_set_new(trend, "reason", json_string(tr->reason ? tr->reason : ""));
    bad |= json_object_set_new(o, "trend", trend);
    bad |= json_object_set_new(sp, "count", ms__json_u64(st->spikes.count));
    bad |= json_object_set_new(sp, "sigma_bytes", jreal(st->spikes.sigma));
    for (size_t k = 0; k < st->spikes.listed && !bad; k++) {
        const struct ms__tl_spike *s = &st->spikes.list[k];
        json_t *e = json_object();
        bad |= !e || json_array_append_new(list, e);
        if (bad)
            break;
        bad |= set_when(e, &in->s, s->index, t0);
        bad |= json_object_set_new(e, "bytes", ms__json_u64(s->value));
        bad |= json_object_set_new(e, "median_bytes", ms__json_u64(s->median));
        bad |= json_object_set_new(e, "excess_bytes", ms__json_u64(s->value - s->median));
    }
    bad |= json_object_set_new(sp, "list", list);
    bad |= json_object_set_new(o, "spikes", sp);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* A copy of the record r (after the first `at` samples) with its offset from t0; NULL when
 * out of memory. */
static json_t *record_json(const struct ms__tl_input *in, json_t *r, size_t at, uint64_t t0)
{
    json_t *c = json_copy(r);
    if (c && json_object_set_new(c, "offset_s",
                                 jreal(record_offset_s(in, at, record_time(r), t0))) != 0) {
        json_decref(c);
        return NULL;
    }
    return c;
}

/* Copies the records of list (at: the place of each), each with its offset from t0. */
static json_t *records_json(const struct ms__tl_input *in, json_t *list, const size_t *at,
                            uint64_t t0)
{
    json_t *out = json_array(), *r;
    size_t i;
    if (!out)
        return NULL;
    json_array_foreach(list, i, r)
    {
        if (json_array_append_new(out, record_json(in, r, at[i], t0))) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

/* The threshold lines: each known limit at the warning and critical percentages, and the
 * limit itself, with the metric it applies to. */
static json_t *thresholds_json(const struct ms__tl_input *in)
{
    static const int metric_of[MS__TL_LIMITS] = {MS__TL_CGROUP, MS__TL_SYSTEM, MS__TL_GPU};
    static const char *const limit_of[MS__TL_LIMITS] = {"cgroup limit", "system total",
                                                        "GPU total"};
    json_t *out = json_array();
    for (int l = 0; out && l < MS__TL_LIMITS; l++) {
        if (!(in->limit_valid >> l & 1))
            continue;
        const struct {
            const char *level;
            double pct;
        } lv[] = {{"warning", in->warning_pct}, {"critical", in->critical_pct}, {"limit", 100}};
        for (size_t k = 0; k < 3; k++) {
            if (lv[k].pct < 0)
                continue;
            json_t *t =
                json_pack("{s:s, s:s, s:s, s:o, s:I}", "metric", ms__tl_metric_key(metric_of[l]),
                          "of", limit_of[l], "level", lv[k].level, "percent", jreal(lv[k].pct),
                          "bytes", (json_int_t)llround((double)in->limit[l] * lv[k].pct / 100));
            if (!t || json_array_append_new(out, t)) {
                json_decref(out);
                return NULL;
            }
        }
    }
    return out;
}

/* The whole analysis of monitor output (docs/analyze-format.md). */
json_t *ms__tl_analysis_json(const struct ms__tl_input *in, const struct ms__tl_metric_stats *st)
{
    uint64_t t0 = time_origin(in);
    const struct ms__tl_series *s = &in->s;
    json_t *o = json_object(), *metrics = json_object(), *leaky = json_array();
    json_t *lim = json_object();
    int bad = !o || !metrics || !leaky || !lim;
    if (bad) {
        json_decref(o), json_decref(metrics), json_decref(leaky), json_decref(lim);
        return NULL;
    }
    bad |= json_object_set_new(o, "schema", json_string(MS__TL_SCHEMA));
    bad |= json_object_set_new(o, "file", json_string(in->path));
    bad |= json_object_set_new(o, "kind", json_string("monitor"));
    bad |= json_object_set_new(o, "format", json_string(in->csv ? "csv" : "json"));
    bad |= json_object_set_new(o, "start", in->start ? json_copy(in->start) : json_null());
    bad |= json_object_set_new(o, "end",
                               in->end ? record_json(in, in->end, in->end_at, t0) : json_null());
    bad |= json_object_set_new(o, "samples", ms__json_u64(s->n));
    bad |= json_object_set_new(o, "time_origin_ns", ms__json_u64(t0));
    bad |=
        json_object_set_new(o, "first_time_ns", s->n ? ms__json_u64(s->time_ns[0]) : json_null());
    bad |= json_object_set_new(o, "last_time_ns",
                               s->n ? ms__json_u64(s->time_ns[s->n - 1]) : json_null());
    bad |= json_object_set_new(o, "duration_s",
                               jreal(s->n ? (double)ms__tl_elapsed_ns(s, s->n - 1) / 1e9 : 0));
    for (int l = 0; l < MS__TL_LIMITS; l++)
        bad |= json_object_set_new(lim, ms__tl_limit_keys[l],
                                   in->limit_valid >> l & 1 ? ms__json_u64(in->limit[l])
                                                            : json_null());
    bad |= json_object_set_new(o, "limits", lim);
    bad |= json_object_set_new(o, "thresholds", thresholds_json(in));
    enum ms__tl_severity worst = MS__TL_SEV_NONE;
    for (int m = 0; m < MS__TL_METRICS && !bad; m++) {
        if (!st[m].present)
            continue;
        bad |= json_object_set_new(metrics, ms__tl_metric_key(m), metric_json(in, m, &st[m], t0));
        if (st[m].trend.severity > worst)
            worst = st[m].trend.severity;
        if (st[m].trend.severity != MS__TL_SEV_NONE)
            bad |= json_array_append_new(leaky, json_string(ms__tl_metric_key(m)));
    }
    bad |= json_object_set_new(o, "metrics", metrics);
    bad |= json_object_set_new(
        o, "leak",
        json_pack("{s:s, s:o}", "severity", ms__tl_severity_name(worst), "metrics", leaky));
    bad |= json_object_set_new(o, "alerts", records_json(in, in->alerts, in->alert_at, t0));
    bad |= json_object_set_new(o, "ooms", records_json(in, in->ooms, in->oom_at, t0));
    bad |= json_object_set_new(o, "markers", records_json(in, in->markers, in->marker_at, t0));
    bad |=
        json_object_set_new(o, "cut_line", in->cut_line ? ms__json_u64(in->cut_line) : json_null());
    bad |= json_object_set_new(o, "unknown_records", ms__json_u64(in->unknown));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ---------------------------------------------------------------------------------------- */
/* The analysis as text                                                                     */
/* ---------------------------------------------------------------------------------------- */

/* A duration in seconds: "12.345 s", "5.2 min", "3.25 h". */
static const char *fmt_secs(char *buf, size_t len, double s)
{
    if (fabs(s) < 120)
        snprintf(buf, len, "%.3f s", s);
    else if (fabs(s) < 7200)
        snprintf(buf, len, "%.1f min", s / 60);
    else
        snprintf(buf, len, "%.2f h", s / 3600);
    return buf;
}

/* A rate in bytes per second, shown per minute: "+1.50 MiB/min". */
static const char *fmt_rate(char *buf, size_t len, double bytes_per_s)
{
    char b[48];
    double v = bytes_per_s * 60;
    ms_format_bytes_signed(b, sizeof(b), isfinite(v) && fabs(v) < 9e18 ? (int64_t)llround(v) : 0);
    snprintf(buf, len, "%s/min", b);
    return buf;
}

static const char *fmt_b(char *buf, size_t len, uint64_t v)
{
    ms_format_bytes(buf, len, v);
    return buf;
}

/* A string member of o, or dflt. */
static const char *jstr(json_t *o, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : dflt;
}

static void text_header(FILE *fp, const struct ms__tl_input *in)
{
    char a[48];
    const struct ms__tl_series *s = &in->s;
    fprintf(fp, "memsnap analyze: %s: monitor output (%s), %zu sample%s", in->path,
            in->csv ? "CSV" : "JSON lines", s->n, s->n == 1 ? "" : "s");
    if (s->n)
        fprintf(fp, " over %s",
                fmt_secs(a, sizeof(a), (double)ms__tl_elapsed_ns(s, s->n - 1) / 1e9));
    fputc('\n', fp);
    json_t *st = in->start;
    if (st && json_is_integer(json_object_get(st, "pid"))) {
        fprintf(fp, "watched: pid %lld", (long long)json_integer_value(json_object_get(st, "pid")));
        json_t *cmd = json_object_get(st, "command"), *arg;
        size_t i;
        if (json_array_size(cmd))
            fputs(", command:", fp);
        json_array_foreach(cmd, i, arg)
        {
            fprintf(fp, " %s", json_string_value(arg));
        }
        json_t *iv = json_object_get(st, "interval_s");
        if (json_is_number(iv))
            fprintf(fp, ", every %g s", json_number_value(iv));
        fputc('\n', fp);
    }
    static const char *const names[MS__TL_LIMITS] = {"cgroup", "system", "GPU"};
    bool any = false;
    for (int l = 0; l < MS__TL_LIMITS; l++)
        if (in->limit_valid >> l & 1) {
            fprintf(fp, "%s%s %s", any ? ", " : "limits: ", names[l],
                    fmt_b(a, sizeof(a), in->limit[l]));
            any = true;
        }
    if (in->warning_pct >= 0 || in->critical_pct >= 0) {
        fprintf(fp, "%sthresholds:", any ? "; " : "");
        if (in->warning_pct >= 0)
            fprintf(fp, " warning %g%%", in->warning_pct);
        if (in->critical_pct >= 0)
            fprintf(fp, " critical %g%%", in->critical_pct);
        any = true;
    }
    if (any)
        fputc('\n', fp);
}

int ms__tl_analysis_text(FILE *fp, const struct ms__tl_input *in,
                         const struct ms__tl_metric_stats *st)
{
    char a[48], b[48], c[48], d[48], e[48], f[48], g[48];
    uint64_t t0 = time_origin(in);
    const struct ms__tl_series *s = &in->s;
    text_header(fp, in);
    bool any = false;
    for (int m = 0; m < MS__TL_METRICS; m++)
        any |= st[m].present;
    if (!any)
        fprintf(fp, "\nno samples with memory figures\n");
    else {
        fprintf(fp, "\n%-15s %11s %11s %11s %11s %11s %11s  %s\n", "metric", "min", "mean", "p50",
                "p90", "p99", "max", "peak at");
        for (int m = 0; m < MS__TL_METRICS; m++) {
            const struct ms__tl_summary *sm = &st[m].sum;
            if (!st[m].present)
                continue;
            fprintf(fp, "%-15s %11s %11s %11s %11s %11s %11s  %s\n", ms__tl_metric_label(m),
                    fmt_b(a, sizeof(a), sm->min), fmt_b(b, sizeof(b), (uint64_t)llround(sm->mean)),
                    fmt_b(c, sizeof(c), sm->p50), fmt_b(d, sizeof(d), sm->p90),
                    fmt_b(e, sizeof(e), sm->p99), fmt_b(f, sizeof(f), sm->max),
                    fmt_secs(g, sizeof(g), sample_offset_s(s, sm->peak, t0)));
        }
        fprintf(fp, "\nleaks (Theil-Sen slope with Sen's 95%% interval, Mann-Kendall p-value, "
                    "rising steps)\n");
        for (int m = 0; m < MS__TL_METRICS; m++) {
            const struct ms__tl_trend *tr = &st[m].trend;
            if (!st[m].present)
                continue;
            fprintf(fp, "%-15s %-7s ", ms__tl_metric_label(m), ms__tl_severity_name(tr->severity));
            if (tr->points < 10 || tr->duration_s <= 0) {
                fprintf(fp, "%s\n", tr->reason);
                continue;
            }
            fprintf(fp, "%s (%s .. %s), ", fmt_rate(a, sizeof(a), tr->slope),
                    fmt_rate(b, sizeof(b), tr->ci_low), fmt_rate(c, sizeof(c), tr->ci_high));
            if (tr->p_value < 1e-16)
                fprintf(fp, "p<1e-16");
            else
                fprintf(fp, "p=%.2g", tr->p_value);
            fprintf(fp, ", rising %.0f%%\n%-23s ", tr->rising_share * 100, "");
            ms_format_bytes_signed(d, sizeof(d),
                                   isfinite(tr->growth_bytes) && fabs(tr->growth_bytes) < 9e18
                                       ? (int64_t)llround(tr->growth_bytes)
                                       : 0);
            fprintf(fp, "%s over the run (%+.1f%% of the median)", d, tr->growth_pct);
            if (tr->severity != MS__TL_SEV_NONE && tr->time_to_limit_s >= 0)
                fprintf(fp, ", at the limit in %s", fmt_secs(e, sizeof(e), tr->time_to_limit_s));
            fprintf(fp, ": %s\n", tr->reason);
        }
        fprintf(fp,
                "\nspikes (more than %g robust sigmas above the rolling median of %d samples)\n",
                MS__TL_SPIKE_K, MS__TL_SPIKE_WINDOW);
        for (int m = 0; m < MS__TL_METRICS; m++) {
            const struct ms__tl_spikes *sp = &st[m].spikes;
            if (!st[m].present)
                continue;
            fprintf(fp, "%-15s %zu\n", ms__tl_metric_label(m), sp->count);
            for (size_t k = 0; k < sp->listed && k < 5; k++) {
                const struct ms__tl_spike *x = &sp->list[k];
                fprintf(fp, "%-15s   #%llu at %s: %s (median %s)\n", "",
                        (unsigned long long)s->seq[x->index],
                        fmt_secs(a, sizeof(a), sample_offset_s(s, x->index, t0)),
                        fmt_b(b, sizeof(b), x->value), fmt_b(c, sizeof(c), x->median));
            }
            if (sp->count > 5)
                fprintf(fp, "%-15s   ... (--format json lists %zu)\n", "", sp->listed);
        }
    }
    json_t *r;
    size_t i;
    fprintf(fp, "\nalerts: %zu\n", json_array_size(in->alerts));
    json_array_foreach(in->alerts, i, r)
    {
        double at = record_offset_s(in, in->alert_at[i], record_time(r), t0);
        json_t *used = json_object_get(r, "used_bytes"), *lim = json_object_get(r, "limit_bytes");
        json_t *pct = json_object_get(r, "percent");
        fprintf(fp, "  %12s  #%-6lld %-8s %-8s", fmt_secs(a, sizeof(a), at),
                (long long)json_integer_value(json_object_get(r, "seq")), jstr(r, "level", "?"),
                jstr(r, "metric", "?"));
        if (json_is_integer(used))
            fprintf(fp, " %s", fmt_b(b, sizeof(b), (uint64_t)json_integer_value(used)));
        if (json_is_integer(lim))
            fprintf(fp, " of %s", fmt_b(c, sizeof(c), (uint64_t)json_integer_value(lim)));
        if (json_is_number(pct))
            fprintf(fp, " (%.1f%%)", json_number_value(pct));
        fputc('\n', fp);
    }
    fprintf(fp, "OOM records: %zu\n", json_array_size(in->ooms));
    json_array_foreach(in->ooms, i, r)
    {
        double at = record_offset_s(in, in->oom_at[i], record_time(r), t0);
        fprintf(fp, "  %12s  %s", fmt_secs(a, sizeof(a), at), jstr(r, "reason", "?"));
        if (json_string_value(json_object_get(r, "backend")))
            fprintf(fp, " (%s)", jstr(r, "backend", ""));
        if (json_is_integer(json_object_get(r, "pid")))
            fprintf(fp, " pid %lld", (long long)json_integer_value(json_object_get(r, "pid")));
        if (json_string_value(json_object_get(r, "bundle")))
            fprintf(fp, ", bundle %s", jstr(r, "bundle", ""));
        fputc('\n', fp);
    }
    fprintf(fp, "markers: %zu\n", json_array_size(in->markers));
    json_array_foreach(in->markers, i, r)
    {
        double at = record_offset_s(in, in->marker_at[i], record_time(r), t0);
        fprintf(fp, "  %12s  %s\n", fmt_secs(a, sizeof(a), at), jstr(r, "label", ""));
    }
    if (in->end) {
        double at = record_offset_s(in, in->end_at, record_time(in->end), t0);
        fprintf(fp, "end at %s: ", fmt_secs(a, sizeof(a), at));
        fprintf(fp, "%s", jstr(in->end, "reason", "?"));
        json_t *es = json_object_get(in->end, "exit_status"),
               *sig = json_object_get(in->end, "signal");
        if (json_is_integer(es))
            fprintf(fp, ", exit status %lld", (long long)json_integer_value(es));
        if (json_is_integer(sig))
            fprintf(fp, ", signal %lld", (long long)json_integer_value(sig));
        fputc('\n', fp);
    }
    return ferror(fp) ? -1 : 0;
}
