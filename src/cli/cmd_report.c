/*
 * cmd_report.c - `memsnap report FILE --stats`: the summary of a trace that `memsnap record`
 * wrote (counts, bytes, the heap peak and when it was reached, leaks, unmatched frees,
 * threads, duration), as aligned text or one JSON object.
 */
#include "cli.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static void report_usage(FILE *fp)
{
    fprintf(fp,
            "usage: memsnap report FILE [--stats] [--format text|json]\n\n"
            "Read a trace written by 'memsnap record' and report on it. --stats (the default,\n"
            "and for now the only report) is the summary: allocations, reallocations and frees,\n"
            "bytes allocated, the peak of live heap bytes and when it was first reached (from\n"
            "the trace start), what was still live at the end (leaks), frees of blocks the\n"
            "trace never saw allocated, threads, duration, and the trace's own figures (events,\n"
            "stacks, modules, markers, RSS samples, mmap calls, file size).\n\n"
            "A trace cut short (the program was killed, the disk filled) or with a corrupt chunk\n"
            "is read up to its last good chunk: the report is printed, a warning names the byte\n"
            "where reading stopped, and the exit status is still 0. In a sampled trace ('memsnap\n"
            "record --sample-rate') the allocation figures are estimates.\n\n"
            "  -s, --stats        the summary (default)\n"
            "  -F, --format FMT   text (default) or json (one object; integers, and the\n"
            "                     warning as a string or null)\n"
            "  -h, --help         this help\n\n"
            "example: memsnap report memsnap.myapp.4242.mst --stats --format json\n");
}

/* "12.345678 s" (microseconds, truncated) into buf. */
static const char *fmt_seconds(char *buf, size_t len, uint64_t ns)
{
    snprintf(buf, len, "%llu.%06llu s", (unsigned long long)(ns / 1000000000u),
             (unsigned long long)(ns % 1000000000u / 1000u));
    return buf;
}

/* "1.50 MiB (1572864 bytes)" into buf. */
static const char *fmt_bytes(char *buf, size_t len, uint64_t bytes)
{
    char h[32];
    ms_format_bytes(h, sizeof(h), bytes);
    if (bytes < 1024)
        snprintf(buf, len, "%s", h);
    else
        snprintf(buf, len, "%s (%llu bytes)", h, (unsigned long long)bytes);
    return buf;
}

/* Events per second of trace time, or -1 when the trace has no duration. */
static double events_per_second(const ms_trace_stats *st)
{
    return st->duration_ns ? (double)st->events * 1e9 / (double)st->duration_ns : -1;
}

static int report_text(FILE *fp, const ms_trace_stats *st)
{
    char a[96], b[96];
#define LINE(label, ...)                                                                           \
    do {                                                                                           \
        fprintf(fp, "%-17s ", label ":");                                                          \
        fprintf(fp, __VA_ARGS__);                                                                  \
        fputc('\n', fp);                                                                           \
    } while (0)
    LINE("process", "pid %u (ppid %u)%s", st->pid, st->ppid,
         st->forked ? ", forked from a recorded parent" : "");
    LINE("images", "%u%s", st->images, st->images > 1 ? " (exec)" : "");
    LINE("complete", "%s",
         st->complete ? "yes"
                      : "no (no END record: the program did not exit "
                        "normally, or the trace was cut)");
    if (st->truncated)
        LINE("truncated", "yes (see the warning)");
    if (st->sample_rate)
        LINE("sampled", "1 in about %llu bytes (allocation figures are estimates)",
             (unsigned long long)st->sample_rate);
    LINE("duration", "%s", fmt_seconds(a, sizeof(a), st->duration_ns));
    double eps = events_per_second(st);
    if (eps >= 0)
        LINE("events", "%llu (%.0f events/s)", (unsigned long long)st->events, eps);
    else
        LINE("events", "%llu", (unsigned long long)st->events);
    LINE("allocations", "%llu", (unsigned long long)st->allocations);
    LINE("reallocations", "%llu", (unsigned long long)st->reallocations);
    LINE("frees", "%llu", (unsigned long long)st->frees);
    LINE("allocated", "%s", fmt_bytes(a, sizeof(a), st->allocated_bytes));
    LINE("peak", "%s at %s", fmt_bytes(a, sizeof(a), st->peak_bytes),
         fmt_seconds(b, sizeof(b), st->peak_time_ns));
    LINE("leaked", "%s in %llu allocation%s", fmt_bytes(a, sizeof(a), st->leaked_bytes),
         (unsigned long long)st->leaked_allocations, st->leaked_allocations == 1 ? "" : "s");
    LINE("unmatched frees", "%llu", (unsigned long long)st->unmatched_frees);
    LINE("threads", "%llu", (unsigned long long)st->threads);
    LINE("stacks", "%llu", (unsigned long long)st->stacks);
    LINE("modules", "%llu", (unsigned long long)st->modules);
    LINE("markers", "%llu", (unsigned long long)st->markers);
    if (st->rss_samples) {
        ms_format_bytes(a, sizeof(a), st->rss_peak_bytes);
        LINE("RSS samples", "%llu (peak %s)", (unsigned long long)st->rss_samples, a);
    } else
        LINE("RSS samples", "0");
    if (st->mmaps || st->munmaps)
        LINE("mmaps", "%llu, %s mapped; %llu munmaps", (unsigned long long)st->mmaps,
             fmt_bytes(a, sizeof(a), st->mapped_bytes), (unsigned long long)st->munmaps);
    if (st->events)
        LINE("file", "%s, %.2f bytes/event", fmt_bytes(a, sizeof(a), st->file_bytes),
             (double)st->file_bytes / (double)st->events);
    else
        LINE("file", "%s", fmt_bytes(a, sizeof(a), st->file_bytes));
#undef LINE
    return ferror(fp) ? -1 : 0;
}

static int report_json(FILE *fp, const ms_trace_stats *st, const char *warning)
{
    json_t *o = json_object();
    if (!o)
        return -1;
    int bad = 0;
#define U(key, v) bad |= json_object_set_new(o, key, json_integer((json_int_t)(v)))
#define B(key, v) bad |= json_object_set_new(o, key, json_boolean(v))
    U("allocations", st->allocations);
    U("frees", st->frees);
    U("reallocations", st->reallocations);
    U("allocated_bytes", st->allocated_bytes);
    U("peak_bytes", st->peak_bytes);
    U("peak_time_ns", st->peak_time_ns);
    U("leaked_bytes", st->leaked_bytes);
    U("leaked_allocations", st->leaked_allocations);
    U("unmatched_frees", st->unmatched_frees);
    U("threads", st->threads);
    U("duration_ns", st->duration_ns);
    U("pid", st->pid);
    U("ppid", st->ppid);
    U("images", st->images);
    B("forked", st->forked);
    B("complete", st->complete);
    B("truncated", st->truncated);
    bad |= json_object_set_new(o, "warning", warning ? json_string(warning) : json_null());
    U("sample_rate", st->sample_rate);
    U("events", st->events);
    double eps = events_per_second(st);
    bad |= json_object_set_new(o, "events_per_second",
                               eps >= 0 ? json_integer((json_int_t)(eps + 0.5)) : json_null());
    U("stacks", st->stacks);
    U("modules", st->modules);
    U("markers", st->markers);
    U("rss_samples", st->rss_samples);
    U("rss_peak_bytes", st->rss_peak_bytes);
    U("mmaps", st->mmaps);
    U("munmaps", st->munmaps);
    U("mapped_bytes", st->mapped_bytes);
    U("file_bytes", st->file_bytes);
    double bpe = (double)st->file_bytes / (double)(st->events ? st->events : 1);
    bad |= json_object_set_new(o, "bytes_per_event",
                               st->events ? json_real((double)(uint64_t)(bpe * 100 + 0.5) / 100)
                                          : json_null());
#undef U
#undef B
    if (!bad)
        bad = json_dumpf(o, fp, JSON_COMPACT | JSON_REAL_PRECISION(12)) != 0 ||
              fputc('\n', fp) == EOF;
    json_decref(o);
    return bad ? -1 : 0;
}

int cmd_report(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"format", required_argument, NULL, 'F'},
        {"help", no_argument, NULL, 'h'},
        {"stats", no_argument, NULL, 's'},
        {NULL, 0, NULL, 0},
    };
    struct cli_common co = {.formats = 1u << MS_FORMAT_TEXT | 1u << MS_FORMAT_JSON};
    int c;
    CLI_GETOPT_RESET();
    while ((c = getopt_long(argc, argv, ":F:hs", longopts, NULL)) != -1) {
        switch (c) {
        case 'h':
            report_usage(stdout);
            return CLI_OK;
        case 's':
            break; /* the summary: the only report so far, and the default */
        default:
            if (cli_shared_option("report", c, argv, &co) != 0)
                return CLI_USAGE;
        }
    }
    if (argc - optind != 1) {
        cli_error("report", "expected one trace file, got %d (see 'memsnap report --help')",
                  argc - optind);
        return CLI_USAGE;
    }
    ms_trace *t;
    int rc = ms_trace_open(&t, argv[optind]);
    if (rc) {
        cli_error("report", "%s", ms_trace_error(NULL));
        return CLI_FAIL;
    }
    ms_trace_stats st = {.size = sizeof(st)};
    rc = ms_trace_stats_get(t, &st);
    if (rc) {
        cli_error("report", "%s", ms_trace_error(t));
        ms_trace_close(t);
        return CLI_FAIL;
    }
    const char *warning = ms_trace_warning(t);
    if (warning)
        cli_error("report", "warning: %s", warning);
    rc = co.fmt == MS_FORMAT_JSON ? report_json(stdout, &st, warning) : report_text(stdout, &st);
    ms_trace_close(t);
    if (rc || fflush(stdout) != 0) {
        cli_error("report", "writing the report failed");
        return CLI_FAIL;
    }
    return CLI_OK;
}
