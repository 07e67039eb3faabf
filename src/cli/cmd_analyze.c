/*
 * cmd_analyze.c - `memsnap analyze FILE`: what a recording says about memory. On monitor
 * output (CSV or JSON lines, docs/monitor-format.md) it summarizes every metric (min, max,
 * mean, percentiles, time at peak), looks for leaks by trend and for spikes, and lists the
 * alerts, OOM records and markers; on a trace written by `memsnap record` it reports the
 * heap's peak and leak sites through the engine (cli_heap_report, shared with `memsnap
 * report`). Output is text or one JSON object (docs/analyze-format.md), and --html writes a
 * self-contained report: a timeline chart, or for a trace a flame graph of the peak.
 *
 * Reading is analyze_read.c, the statistics analyze_stats.c, the HTML analyze_html.c.
 */
#include "analyze.h"
#include "cli.h"
#include "opts.h"

#include "trace/format.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define ANALYZE_SCHEMA "memsnap.analyze/1"

/* What the options ask for. */
struct analyze_opts {
    ms_format fmt;
    const char *html; /* --html OUT, NULL when not given */
    unsigned long top;
};

static void analyze_usage(FILE *fp);

static const struct cli_opt analyze_table[] = {
    OPT_FORMAT(struct analyze_opts, fmt, CLI_FMT_TEXT | CLI_FMT_JSON,
               "text (default) or json (one object)"),
    OPT_STRING('H', "html", "OUT", struct analyze_opts, html,
               "also write a self-contained HTML report to OUT (a new file,\n"
               "0600, renamed over OUT when complete; no network needed):\n"
               "the timeline of the metrics with\n"
               "the thresholds, alerts and markers, or for a trace an\n"
               "interactive flame graph of the heap at its peak"),
    OPT_UINT('n', "top", "N", struct analyze_opts, top, 0,
             "invalid --top '%s' (a positive integer)",
             "call sites listed for a trace (default 10)"),
    OPT_HELP(),
    OPT_END(),
};

static const struct cli_options analyze_options = {
    .cmd = "analyze", .opts = analyze_table, .column = 21, .usage = analyze_usage};

static void analyze_usage(FILE *fp)
{
    fputs("usage: memsnap analyze FILE [--format text|json] [--html OUT.html] [--top N]\n\n"
          "Analyze what 'memsnap monitor' or 'memsnap track' wrote (CSV or JSON lines), or a\n"
          "trace written by 'memsnap record' (recognized by its contents).\n\n"
          "Monitor output: for process RSS and PSS, cgroup usage, system used memory, GPU\n"
          "used memory and the process tree's RSS (those the file has):\n"
          "  summary  min, max, mean, p50/p90/p99 (nearest rank) and the time of the peak\n"
          "  leaks    the Theil-Sen slope over up to 500 evenly spaced samples, its 95%\n"
          "           confidence interval, the Mann-Kendall p-value, the share of rising\n"
          "           steps, and a severity: none, low, medium or high\n"
          "  spikes   samples more than 5 robust sigmas above the rolling median of 31\n"
          "  events   the alerts, OOM records and markers, with their times\n"
          "Trace: the heap at its peak and what was never freed, by call site.\n\n",
          fp);
    cli_opts_help(fp, &analyze_options);
    fputs("\nA malformed file is an error naming the line (exit status 1); a last line cut\n"
          "short (the monitor was killed) is a warning and is ignored. The severity rules and\n"
          "the JSON are described in docs/analyze-format.md.\n\n"
          "example: memsnap analyze run.jsonl --html run.html\n"
          "         memsnap analyze app.mst --format json\n",
          fp);
}

/* ---------------------------------------------------------------------------------------- */
/* The analysis as JSON                                                                     */
/* ---------------------------------------------------------------------------------------- */

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
static bool metric_limit(const struct an_input *in, int m, uint64_t *limit)
{
    int l = m == AN_SYSTEM ? AN_LIMIT_SYSTEM : m == AN_GPU ? AN_LIMIT_GPU : AN_LIMIT_CGROUP;
    if (l == AN_LIMIT_CGROUP && !(in->limit_valid >> l & 1))
        l = AN_LIMIT_SYSTEM;
    *limit = in->limit[l];
    return in->limit_valid >> l & 1;
}

/* The time everything is measured from: the start record's, or the first sample's when that
 * is earlier (the monitor may stamp its first sample before its start record) or there is no
 * start record. */
static uint64_t time_origin(const struct an_input *in)
{
    json_t *t = in->start ? json_object_get(in->start, "time_ns") : NULL;
    uint64_t t0 = t ? (uint64_t)json_integer_value(t) : UINT64_MAX;
    if (in->s.n && in->s.time_ns[0] < t0)
        t0 = in->s.time_ns[0];
    return t0 == UINT64_MAX ? 0 : t0;
}

/* Seconds from t0 to sample i: the first sample's wall time, then the time elapsed since it
 * (monotonic where the samples have it: a wall-clock step moves no sample in time). */
static double sample_offset_s(const struct an_series *s, size_t i, uint64_t t0)
{
    return offset_s(s->time_ns[0], t0) + (double)an_elapsed_ns(s, i) / 1e9;
}

/* Seconds from t0 to a record other than a sample (wall time t, after the first `at` samples
 * of the file): placed by the samples around it on their clock (an_record_elapsed_ns), so that
 * a wall-clock step moves it no more than it moves them. */
static double record_offset_s(const struct an_input *in, size_t at, uint64_t t, uint64_t t0)
{
    const struct an_series *s = &in->s;
    if (!s->n)
        return offset_s(t, t0);
    return offset_s(s->time_ns[0], t0) + (double)an_record_elapsed_ns(s, at, t) / 1e9;
}

/* The wall time of the normalized record r (its time_ns, for display). */
static uint64_t record_time(json_t *r)
{
    return (uint64_t)json_integer_value(json_object_get(r, "time_ns"));
}

/* One sample's place: its seq, time (the wall clock's, for display) and offset. */
static int set_when(json_t *o, const struct an_series *s, size_t i, uint64_t t0)
{
    return json_object_set_new(o, "seq", cli_json_u64(s->seq[i])) |
           json_object_set_new(o, "time_ns", cli_json_u64(s->time_ns[i])) |
           json_object_set_new(o, "offset_s", jreal(sample_offset_s(s, i, t0)));
}

static json_t *metric_json(const struct an_input *in, int m, const struct an_metric_stats *st,
                           uint64_t t0)
{
    const struct an_summary *sm = &st->sum;
    const struct an_trend *tr = &st->trend;
    json_t *o = json_object(), *peak = json_object(), *trend = json_object();
    json_t *sp = json_object(), *list = json_array();
    int bad = !o || !peak || !trend || !sp || !list;
    if (bad) {
        json_decref(o), json_decref(peak), json_decref(trend), json_decref(sp), json_decref(list);
        return NULL;
    }
    bad |= json_object_set_new(o, "label", json_string(an_metric_label(m)));
    bad |= json_object_set_new(o, "samples", cli_json_u64(sm->n));
    bad |= json_object_set_new(o, "min", cli_json_u64(sm->min));
    bad |= json_object_set_new(o, "max", cli_json_u64(sm->max));
    bad |= json_object_set_new(o, "mean", jreal(sm->mean));
    bad |= json_object_set_new(o, "p50", cli_json_u64(sm->p50));
    bad |= json_object_set_new(o, "p90", cli_json_u64(sm->p90));
    bad |= json_object_set_new(o, "p99", cli_json_u64(sm->p99));
    bad |= set_when(peak, &in->s, sm->peak, t0);
    bad |= json_object_set_new(o, "peak", peak);
    bad |= json_object_set_new(trend, "points", cli_json_u64(tr->points));
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
    bad |= json_object_set_new(trend, "severity", json_string(an_severity_name(tr->severity)));
    bad |= json_object_set_new(trend, "reason", json_string(tr->reason ? tr->reason : ""));
    bad |= json_object_set_new(o, "trend", trend);
    bad |= json_object_set_new(sp, "count", cli_json_u64(st->spikes.count));
    bad |= json_object_set_new(sp, "sigma_bytes", jreal(st->spikes.sigma));
    for (size_t k = 0; k < st->spikes.listed && !bad; k++) {
        const struct an_spike *s = &st->spikes.list[k];
        json_t *e = json_object();
        bad |= !e || json_array_append_new(list, e);
        if (bad)
            break;
        bad |= set_when(e, &in->s, s->index, t0);
        bad |= json_object_set_new(e, "bytes", cli_json_u64(s->value));
        bad |= json_object_set_new(e, "median_bytes", cli_json_u64(s->median));
        bad |= json_object_set_new(e, "excess_bytes", cli_json_u64(s->value - s->median));
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
static json_t *record_json(const struct an_input *in, json_t *r, size_t at, uint64_t t0)
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
static json_t *records_json(const struct an_input *in, json_t *list, const size_t *at, uint64_t t0)
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
static json_t *thresholds_json(const struct an_input *in)
{
    static const int metric_of[AN_LIMITS] = {AN_CGROUP, AN_SYSTEM, AN_GPU};
    static const char *const limit_of[AN_LIMITS] = {"cgroup limit", "system total", "GPU total"};
    json_t *out = json_array();
    for (int l = 0; out && l < AN_LIMITS; l++) {
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
                json_pack("{s:s, s:s, s:s, s:o, s:I}", "metric", an_metric_key(metric_of[l]), "of",
                          limit_of[l], "level", lv[k].level, "percent", jreal(lv[k].pct), "bytes",
                          (json_int_t)llround((double)in->limit[l] * lv[k].pct / 100));
            if (!t || json_array_append_new(out, t)) {
                json_decref(out);
                return NULL;
            }
        }
    }
    return out;
}

/* The whole analysis of monitor output (docs/analyze-format.md). */
static json_t *analysis_json(const struct an_input *in, const struct an_metric_stats *st)
{
    uint64_t t0 = time_origin(in);
    const struct an_series *s = &in->s;
    json_t *o = json_object(), *metrics = json_object(), *leaky = json_array();
    json_t *lim = json_object();
    int bad = !o || !metrics || !leaky || !lim;
    if (bad) {
        json_decref(o), json_decref(metrics), json_decref(leaky), json_decref(lim);
        return NULL;
    }
    bad |= json_object_set_new(o, "schema", json_string(ANALYZE_SCHEMA));
    bad |= json_object_set_new(o, "file", json_string(in->path));
    bad |= json_object_set_new(o, "kind", json_string("monitor"));
    bad |= json_object_set_new(o, "format", json_string(in->csv ? "csv" : "json"));
    bad |= json_object_set_new(o, "start", in->start ? json_copy(in->start) : json_null());
    bad |= json_object_set_new(o, "end",
                               in->end ? record_json(in, in->end, in->end_at, t0) : json_null());
    bad |= json_object_set_new(o, "samples", cli_json_u64(s->n));
    bad |= json_object_set_new(o, "time_origin_ns", cli_json_u64(t0));
    bad |=
        json_object_set_new(o, "first_time_ns", s->n ? cli_json_u64(s->time_ns[0]) : json_null());
    bad |= json_object_set_new(o, "last_time_ns",
                               s->n ? cli_json_u64(s->time_ns[s->n - 1]) : json_null());
    bad |= json_object_set_new(o, "duration_s",
                               jreal(s->n ? (double)an_elapsed_ns(s, s->n - 1) / 1e9 : 0));
    for (int l = 0; l < AN_LIMITS; l++)
        bad |= json_object_set_new(lim, an_limit_keys[l],
                                   in->limit_valid >> l & 1 ? cli_json_u64(in->limit[l])
                                                            : json_null());
    bad |= json_object_set_new(o, "limits", lim);
    bad |= json_object_set_new(o, "thresholds", thresholds_json(in));
    enum an_severity worst = AN_SEV_NONE;
    for (int m = 0; m < AN_METRICS && !bad; m++) {
        if (!st[m].present)
            continue;
        bad |= json_object_set_new(metrics, an_metric_key(m), metric_json(in, m, &st[m], t0));
        if (st[m].trend.severity > worst)
            worst = st[m].trend.severity;
        if (st[m].trend.severity != AN_SEV_NONE)
            bad |= json_array_append_new(leaky, json_string(an_metric_key(m)));
    }
    bad |= json_object_set_new(o, "metrics", metrics);
    bad |= json_object_set_new(
        o, "leak", json_pack("{s:s, s:o}", "severity", an_severity_name(worst), "metrics", leaky));
    bad |= json_object_set_new(o, "alerts", records_json(in, in->alerts, in->alert_at, t0));
    bad |= json_object_set_new(o, "ooms", records_json(in, in->ooms, in->oom_at, t0));
    bad |= json_object_set_new(o, "markers", records_json(in, in->markers, in->marker_at, t0));
    bad |=
        json_object_set_new(o, "cut_line", in->cut_line ? cli_json_u64(in->cut_line) : json_null());
    bad |= json_object_set_new(o, "unknown_records", cli_json_u64(in->unknown));
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

static void text_header(FILE *fp, const struct an_input *in)
{
    char a[48];
    const struct an_series *s = &in->s;
    fprintf(fp, "memsnap analyze: %s: monitor output (%s), %zu sample%s", in->path,
            in->csv ? "CSV" : "JSON lines", s->n, s->n == 1 ? "" : "s");
    if (s->n)
        fprintf(fp, " over %s", fmt_secs(a, sizeof(a), (double)an_elapsed_ns(s, s->n - 1) / 1e9));
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
    static const char *const names[AN_LIMITS] = {"cgroup", "system", "GPU"};
    bool any = false;
    for (int l = 0; l < AN_LIMITS; l++)
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

static int analysis_text(FILE *fp, const struct an_input *in, const struct an_metric_stats *st)
{
    char a[48], b[48], c[48], d[48], e[48], f[48], g[48];
    uint64_t t0 = time_origin(in);
    const struct an_series *s = &in->s;
    text_header(fp, in);
    bool any = false;
    for (int m = 0; m < AN_METRICS; m++)
        any |= st[m].present;
    if (!any)
        fprintf(fp, "\nno samples with memory figures\n");
    else {
        fprintf(fp, "\n%-15s %11s %11s %11s %11s %11s %11s  %s\n", "metric", "min", "mean", "p50",
                "p90", "p99", "max", "peak at");
        for (int m = 0; m < AN_METRICS; m++) {
            const struct an_summary *sm = &st[m].sum;
            if (!st[m].present)
                continue;
            fprintf(fp, "%-15s %11s %11s %11s %11s %11s %11s  %s\n", an_metric_label(m),
                    fmt_b(a, sizeof(a), sm->min), fmt_b(b, sizeof(b), (uint64_t)llround(sm->mean)),
                    fmt_b(c, sizeof(c), sm->p50), fmt_b(d, sizeof(d), sm->p90),
                    fmt_b(e, sizeof(e), sm->p99), fmt_b(f, sizeof(f), sm->max),
                    fmt_secs(g, sizeof(g), sample_offset_s(s, sm->peak, t0)));
        }
        fprintf(fp, "\nleaks (Theil-Sen slope with Sen's 95%% interval, Mann-Kendall p-value, "
                    "rising steps)\n");
        for (int m = 0; m < AN_METRICS; m++) {
            const struct an_trend *tr = &st[m].trend;
            if (!st[m].present)
                continue;
            fprintf(fp, "%-15s %-7s ", an_metric_label(m), an_severity_name(tr->severity));
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
            if (tr->severity != AN_SEV_NONE && tr->time_to_limit_s >= 0)
                fprintf(fp, ", at the limit in %s", fmt_secs(e, sizeof(e), tr->time_to_limit_s));
            fprintf(fp, ": %s\n", tr->reason);
        }
        fprintf(fp,
                "\nspikes (more than %g robust sigmas above the rolling median of %d samples)\n",
                AN_SPIKE_K, AN_SPIKE_WINDOW);
        for (int m = 0; m < AN_METRICS; m++) {
            const struct an_spikes *sp = &st[m].spikes;
            if (!st[m].present)
                continue;
            fprintf(fp, "%-15s %zu\n", an_metric_label(m), sp->count);
            for (size_t k = 0; k < sp->listed && k < 5; k++) {
                const struct an_spike *x = &sp->list[k];
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

/* ---------------------------------------------------------------------------------------- */
/* Monitor output and traces                                                                */
/* ---------------------------------------------------------------------------------------- */

/* --html OUT as given, for the errors of write_html. */
static const char *an_html_name;

/* Writes the HTML report to fp (NULL: none asked for); prints the error. */
static int write_html(FILE *fp, json_t *analysis, const struct an_series *s, const char *folded)
{
    errno = 0;
    if (fp && an_write_html(fp, analysis, s, folded) != 0) {
        if (ferror(fp)) /* a full disk: the temporary file is removed, OUT stays */
            cli_error("analyze", "cannot write %s: %s; it was left unchanged", an_html_name,
                      strerror(errno ? errno : EIO));
        else
            cli_error("analyze", "writing the HTML report failed: out of memory");
        return CLI_FAIL;
    }
    return CLI_OK;
}

/* Prints o as one line of JSON on stdout. */
static int print_json(json_t *o)
{
    int bad = json_dumpf(o, stdout, JSON_COMPACT | JSON_REAL_PRECISION(12)) != 0 ||
              fputc('\n', stdout) == EOF;
    return bad ? -1 : 0;
}

static int analyze_monitor(const char *path, const char *buf, size_t len, ms_format fmt, FILE *html)
{
    struct an_input in = {.path = path};
    struct an_metric_stats st[AN_METRICS];
    memset(st, 0, sizeof(st));
    json_t *o = NULL;
    int rc = CLI_FAIL;
    if (an_read(buf, len, &in) != 0)
        goto out;
    bool has_limit[AN_METRICS];
    uint64_t limit[AN_METRICS];
    for (int m = 0; m < AN_METRICS; m++)
        has_limit[m] = metric_limit(&in, m, &limit[m]);
    if (an_stats(&in.s, has_limit, limit, st) != 0) {
        cli_error("analyze", "out of memory");
        goto out;
    }
    if (fmt == MS_FORMAT_JSON || html) {
        if (!(o = analysis_json(&in, st))) {
            cli_error("analyze", "out of memory");
            goto out;
        }
    }
    int wr = fmt == MS_FORMAT_JSON ? print_json(o) : analysis_text(stdout, &in, st);
    if (wr || fflush(stdout) != 0) {
        cli_error("analyze", "writing the analysis failed");
        goto out;
    }
    rc = write_html(html, o, &in.s, NULL);
out:
    json_decref(o);
    for (int m = 0; m < AN_METRICS; m++)
        an_stats_free(&st[m]);
    an_input_free(&in);
    return rc;
}

/* The views of the trace analyze needs, from one load (cli_heap_report, shared with
 * `memsnap report`): each into memory. */
enum { HV_PEAK_TEXT, HV_LEAKS_TEXT, HV_PEAK_JSON, HV_LEAKS_JSON, HV_FOLDED, HV__COUNT };

static int heap_views(const char *path, unsigned long top, const bool want[HV__COUNT],
                      char *text[HV__COUNT])
{
    static const struct {
        enum cli_heap_mode mode;
        enum cli_heap_fmt fmt;
    } kinds[HV__COUNT] = {
        {CLI_HEAP_PEAK, CLI_HEAP_TEXT},   {CLI_HEAP_LEAKS, CLI_HEAP_TEXT},
        {CLI_HEAP_PEAK, CLI_HEAP_JSON},   {CLI_HEAP_LEAKS, CLI_HEAP_JSON},
        {CLI_HEAP_PEAK, CLI_HEAP_FOLDED},
    };
    struct cli_heap_out outs[HV__COUNT];
    size_t len[HV__COUNT], n = 0;
    int which[HV__COUNT], rc = CLI_OK;
    for (int k = 0; k < HV__COUNT; k++) {
        text[k] = NULL;
        if (!want[k])
            continue;
        FILE *mem = open_memstream(&text[k], &len[k]);
        if (!mem) {
            rc = CLI_FAIL;
            break;
        }
        which[n] = k;
        outs[n++] = (struct cli_heap_out){kinds[k].mode, kinds[k].fmt, mem};
    }
    if (rc == CLI_OK)
        rc = cli_heap_report("analyze", path, outs, n, NULL, NULL, false, top);
    else
        cli_error("analyze", "out of memory");
    for (size_t i = 0; i < n; i++)
        if (fclose(outs[i].fp) != 0 && rc == CLI_OK) {
            cli_error("analyze", "out of memory");
            rc = CLI_FAIL;
        }
    if (rc != CLI_OK)
        for (size_t i = 0; i < n; i++) {
            free(text[which[i]]);
            text[which[i]] = NULL;
        }
    return rc;
}

/* A heap report of the trace as parsed JSON (docs/report-format.md) in *out. */
static int heap_json(const char *path, const char *text, json_t **out)
{
    json_error_t jerr;
    *out = json_loads(text, 0, &jerr);
    if (!*out) {
        cli_error("analyze", "%s: the heap report is not JSON: %s", path, jerr.text);
        return CLI_FAIL;
    }
    return CLI_OK;
}

static int analyze_trace(const char *path, ms_format fmt, FILE *html, unsigned long top)
{
    json_t *o = NULL, *peak = NULL, *leaks = NULL;
    char *text[HV__COUNT];
    bool want[HV__COUNT] = {
        [HV_PEAK_TEXT] = fmt == MS_FORMAT_TEXT,
        [HV_LEAKS_TEXT] = fmt == MS_FORMAT_TEXT,
        [HV_PEAK_JSON] = fmt == MS_FORMAT_JSON || html,
        [HV_LEAKS_JSON] = fmt == MS_FORMAT_JSON || html,
        [HV_FOLDED] = html != NULL,
    };
    /* every view first: nothing is printed when the trace cannot be read */
    int rc = heap_views(path, top, want, text);
    if (rc != CLI_OK)
        return rc;
    if (fmt == MS_FORMAT_TEXT) {
        printf("memsnap analyze: %s: a memsnap trace\n\nthe heap at its peak\n%s\n"
               "leaks: what was never freed\n%s",
               path, text[HV_PEAK_TEXT], text[HV_LEAKS_TEXT]);
        if (fflush(stdout) != 0) {
            cli_error("analyze", "writing the analysis failed");
            rc = CLI_FAIL;
            goto out;
        }
        if (!html)
            goto out;
    }
    if ((rc = heap_json(path, text[HV_PEAK_JSON], &peak)) != CLI_OK ||
        (rc = heap_json(path, text[HV_LEAKS_JSON], &leaks)) != CLI_OK)
        goto out;
    o = json_pack("{s:s, s:s, s:s, s:O, s:O}", "schema", ANALYZE_SCHEMA, "file", path, "kind",
                  "trace", "peak", peak, "leaks", leaks);
    if (!o) {
        cli_error("analyze", "out of memory");
        rc = CLI_FAIL;
        goto out;
    }
    if (fmt == MS_FORMAT_JSON && (print_json(o) != 0 || fflush(stdout) != 0)) {
        cli_error("analyze", "writing the analysis failed");
        rc = CLI_FAIL;
        goto out;
    }
    if (html)
        rc = write_html(html, o, NULL, text[HV_FOLDED]);
out:
    json_decref(o);
    json_decref(peak);
    json_decref(leaks);
    for (int k = 0; k < HV__COUNT; k++)
        free(text[k]);
    return rc;
}

/* Monitor output is read through mmap. A file truncated meanwhile (a monitor restarted with
 * the same -o) raises SIGBUS on the first page past its new end: that ends analyze with one
 * line naming the file, and no half-written report. Only async-signal-safe calls here. */
static const char *an_bus_path, *an_bus_html;

static void an_put(const char *text)
{
    size_t n = strlen(text);
    while (n) {
        ssize_t k = write(STDERR_FILENO, text, n);
        if (k <= 0)
            return;
        text += k;
        n -= (size_t)k;
    }
}

static void an_on_sigbus(int sig)
{
    (void)sig;
    an_put("memsnap analyze: ");
    an_put(an_bus_path);
    an_put(": the file was truncated while it was read\n");
    if (an_bus_html)
        unlink(an_bus_html);
    _exit(CLI_FAIL);
}

int cmd_analyze(int argc, char **argv)
{
    struct analyze_opts co = {.fmt = MS_FORMAT_TEXT, .top = 10};
    int prc = cli_parse(&analyze_options, argc, argv, &co);
    if (prc)
        return prc == CLI_HELP ? CLI_OK : prc;
    const char *html = co.html;
    unsigned long top = co.top;
    if (argc - optind != 1) {
        cli_error("analyze", "expected one file, got %d (see 'memsnap analyze --help')",
                  argc - optind);
        return CLI_USAGE;
    }
    const char *path = argv[optind];
    struct stat st;
    int fd = cli_open_input("analyze", path, &st);
    if (fd < 0)
        return CLI_FAIL;
    if (st.st_size == 0) {
        cli_error("analyze", "%s: empty file", path);
        close(fd);
        return CLI_FAIL;
    }
    size_t len = (size_t)st.st_size;
    const char *buf = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (buf == MAP_FAILED) {
        cli_error("analyze", "%s: %s", path, strerror(errno));
        return CLI_FAIL;
    }
    if (html && cli_same_file(html, path)) {
        cli_error("analyze", "--html %s is the input itself: the report would overwrite it", html);
        munmap((void *)buf, len);
        return CLI_USAGE;
    }
    /* created before the work, so that an unwritable path fails at once; written to a
     * temporary file renamed over OUT only when the report is complete */
    struct cli_output ho = {0};
    if (html && cli_output_open("analyze", html, &ho) != 0) {
        munmap((void *)buf, len);
        return CLI_FAIL;
    }
    FILE *hf = ho.fp;
    an_html_name = html;
    struct sigaction sa = {.sa_handler = an_on_sigbus}, old;
    an_bus_path = path;
    an_bus_html = ho.tmp;
    sigaction(SIGBUS, &sa, &old);
    int rc;
    if (len >= 8 && memcmp(buf, MS_TRACE_MAGIC, 8) == 0) {
        munmap((void *)buf, len);
        sigaction(SIGBUS, &old, NULL); /* a trace is read(), not mapped */
        rc = analyze_trace(path, co.fmt, hf, top);
    } else {
        rc = analyze_monitor(path, buf, len, co.fmt, hf);
        munmap((void *)buf, len);
        sigaction(SIGBUS, &old, NULL);
    }
    if (hf && rc != CLI_OK) {
        cli_output_abort(&ho); /* no half-written report; OUT as it was */
    } else if (hf) {
        if (cli_output_commit("analyze", &ho) == 0)
            cli_error("analyze", "HTML report written to %s", html);
        else
            rc = CLI_FAIL;
    }
    return rc;
}
