/*
 * cmd_report.c - `memsnap report FILE`: what the heap of a recorded trace held. --peak (the
 * default) is the heap when live bytes were highest, --at TIME|LABEL the heap at a moment,
 * --leaks what was live at the end, --diff T1 T2 what changed between two moments, each as
 * the top call sites by bytes (with their symbolized frames), or per allocating thread
 * (--threads), as text, JSON or folded stacks for flame graphs; --stats is the summary of the
 * trace (counts, bytes, peak, leaks, unmatched frees, threads, duration) as text or JSON.
 * The heap views come from the snapshot engine (src/engine/engine.h).
 */
#include "cli.h"
#include "opts.h"

#include "engine/engine.h"
#include "engine/symbolize.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* What the options ask for. */
struct report_opts {
    int argc;
    char **argv;             /* --diff takes its second moment from here */
    enum cli_heap_mode mode; /* the last of --peak, --at, --leaks, --diff, --stats */
    int modes;               /* how many of them were given: more than one is an error */
    enum cli_heap_fmt fmt;
    const char *w1, *w2; /* --at WHEN, --diff W1 W2 */
    bool threads;
    unsigned long top;
};

static void report_usage(FILE *fp);
static int report_option(const struct cli_options *p, const struct cli_opt *o, const char *arg,
                         void *ctx);

enum { OPT_FORMAT_ID = 1 << 8 }; /* --format; the modes are their enum cli_heap_mode */

static const struct cli_opt report_table[] = {
    OPT_CALLBACK('P', "peak", NULL, report_option, CLI_HEAP_PEAK,
                 "the heap when live bytes were highest, the first time (the\n"
                 "default)"),
    OPT_CALLBACK('a', "at", "WHEN", report_option, CLI_HEAP_AT,
                 "the heap at WHEN: seconds from the trace start (a number,\n"
                 "'0.25') or the label of a marker (MS_TRACE_MARKER; its first\n"
                 "occurrence). Every event at or before that time counts"),
    OPT_CALLBACK('l', "leaks", NULL, report_option, CLI_HEAP_LEAKS,
                 "what was still live at the end of the last image"),
    OPT_CALLBACK('d', "diff", "W1 W2", report_option, CLI_HEAP_DIFF,
                 "what changed from W1 to W2 (each a time or a label): signed\n"
                 "bytes and counts, growth first"),
    OPT_CALLBACK('s', "stats", NULL, report_option, CLI_HEAP_STATS,
                 "the summary: allocations, reallocations and frees, bytes,\n"
                 "the peak and when it was reached, leaks, unmatched frees,\n"
                 "threads, duration, and the trace's own figures"),
    OPT_BOOL('t', "threads", struct report_opts, threads,
             "group by the allocating thread instead of the call site (a\n"
             "block freed by another thread is still charged to it)"),
    OPT_UINT('n', "top", "N", struct report_opts, top, 0, "invalid --top '%s' (a positive integer)",
             "the N largest sites or threads (default 10)"),
    OPT_CALLBACK('F', "format", "FMT", report_option, OPT_FORMAT_ID,
                 "text (default), json (one object), or folded: one line per\n"
                 "stack, 'outer;...;inner bytes', for flamegraph.pl or inferno\n"
                 "(--stats: text or json)"),
    OPT_HELP(),
    OPT_END(),
};

static const struct cli_options report_options = {
    .cmd = "report", .opts = report_table, .column = 21, .usage = report_usage};

static void report_usage(FILE *fp)
{
    fputs("usage: memsnap report FILE [--peak | --at TIME|LABEL | --leaks | --diff T1 T2 |\n"
          "                            --stats] [--threads] [--top N] [--format FMT]\n\n"
          "Read a trace written by 'memsnap record' and report what its heap held:\n\n",
          fp);
    cli_opts_help(fp, &report_options);
    fputs("\nFrames are symbolized from the modules the trace recorded (by path and build-id,\n"
          "with separate debug info when present); a frame that cannot be resolved shows its\n"
          "module and offset. A time past the end of the trace is an error (exit status 1), as\n"
          "is a label no marker has. A trace cut short (the program was killed, the disk\n"
          "filled) or with a corrupt chunk is read up to its last good chunk: the report is\n"
          "printed, a warning names the byte where reading stopped, the exit status is 0. In a\n"
          "sampled trace ('memsnap record --sample-rate') the figures are estimates. The JSON\n"
          "and folded formats are described in docs/report-format.md. On a terminal, a load\n"
          "that takes over a second shows a progress bar on stderr.\n\n"
          "example: memsnap report app.mst\n"
          "         memsnap report app.mst --at after-load --format json\n"
          "         memsnap report app.mst --diff 1.5 3 --top 20\n"
          "         memsnap report app.mst --format folded | flamegraph.pl > heap.svg\n",
          fp);
}

/* Takes a mode (--peak, --at, --leaks, --diff, --stats) or --format. */
static int report_option(const struct cli_options *p, const struct cli_opt *o, const char *arg,
                         void *ctx)
{
    struct report_opts *r = ctx;
    (void)p;
    if (o->id == OPT_FORMAT_ID) {
        static const char *const names[] = {"text", "json", "folded"}; /* enum cli_heap_fmt */
        for (int i = 0; i < 3; i++)
            if (strcmp(arg, names[i]) == 0) {
                r->fmt = (enum cli_heap_fmt)i;
                return 0;
            }
        cli_error("report", "unknown format '%s' (text, json, folded)", arg);
        return CLI_USAGE;
    }
    r->mode = (enum cli_heap_mode)o->id;
    r->modes++;
    if (o->id == CLI_HEAP_AT || o->id == CLI_HEAP_DIFF)
        r->w1 = arg;
    if (o->id == CLI_HEAP_DIFF) {
        if (optind >= r->argc) {
            cli_error("report", "--diff needs two moments: --diff T1 T2");
            return CLI_USAGE;
        }
        r->w2 = r->argv[optind++];
    }
    return 0;
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

/* How the recorded process ended, by the END record's exit kind. */
static const char *exit_name(uint64_t kind)
{
    static const char *const names[] = {"exit", "_exit", "abort", "quick_exit",
                                        "exec of a program not recorded here"};
    return kind < sizeof(names) / sizeof(names[0]) ? names[kind] : "unknown";
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
    if (st->complete)
        LINE("complete", "yes (%s)", exit_name(st->exit_kind));
    else
        LINE("complete", "no (no END record: the program did not exit normally, or the trace "
                         "was cut)");
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
    if (st->lost_events)
        LINE("lost events", "%llu (not recorded: signal handlers nested too deep)",
             (unsigned long long)st->lost_events);
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
#define U(key, v) bad |= json_object_set_new(o, key, cli_json_u64(v))
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
    U("lost_events", st->lost_events);
    bad |= json_object_set_new(o, "exit",
                               st->complete ? json_string(exit_name(st->exit_kind)) : json_null());
    U("threads", st->threads);
    U("duration_ns", st->duration_ns);
    U("pid", st->pid);
    U("ppid", st->ppid);
    U("images", st->images);
    B("forked", st->forked);
    B("complete", st->complete);
    B("truncated", st->truncated);
    B("saturated", st->saturated);
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

/* ---------------------------------------------------------------------------------------- */
/* Heap views: --peak, --at, --leaks, --diff                                                */
/* ---------------------------------------------------------------------------------------- */

#define MAX_FRAMES 1024

/* What the heap reports share: the engine, the symbolizer (NULL when it could not open). */
struct heap_report {
    struct ms__engine *e;
    const struct ms__trace_data *td;
    struct ms__symbolizer *sym;
    struct ms__sym_frame frames[MAX_FRAMES];
};

/* The frames of stack id `stack` of image im, innermost first, into hr->frames. */
static size_t stack_frames(struct heap_report *hr, uint32_t im, uint32_t stack)
{
    return ms__engine_stack_frames(hr->e, hr->sym, im, stack, hr->frames, MAX_FRAMES);
}

/* "+1.50 MiB (+1572864 bytes)" or "1.50 MiB (1572864 bytes)" into buf. */
static const char *fmt_sbytes(char *buf, size_t len, int64_t bytes, bool diff)
{
    if (!diff)
        return fmt_bytes(buf, len, bytes < 0 ? 0 : (uint64_t)bytes);
    char h[32];
    ms_format_bytes_signed(h, sizeof(h), bytes);
    if (bytes > -1024 && bytes < 1024)
        snprintf(buf, len, "%s", h);
    else
        snprintf(buf, len, "%s (%+lld bytes)", h, (long long)bytes);
    return buf;
}

static const char *mode_name(enum cli_heap_mode m)
{
    return m == CLI_HEAP_PEAK    ? "peak"
           : m == CLI_HEAP_LEAKS ? "leaks"
           : m == CLI_HEAP_DIFF  ? "diff"
                                 : "heap";
}

static const char *thread_name(const struct ms__trace_data *td, uint32_t t)
{
    if (t >= td->nthreads || !td->threads[t].name.len)
        return NULL;
    return ms__trace_str_ptr(td, td->threads[t].name);
}

static void text_header(FILE *fp, const struct ms__heap_view *v, enum cli_heap_mode mode)
{
    char a[96], b[96], c[96];
    if (v->diff)
        fprintf(fp, "diff from %s to %s: %s, %+lld allocations\n",
                fmt_seconds(a, sizeof(a), v->from_time_ns), fmt_seconds(b, sizeof(b), v->time_ns),
                fmt_sbytes(c, sizeof(c), v->live_bytes, true), (long long)v->live_allocations);
    else
        fprintf(fp, "%s at %s: %s live in %lld allocation%s\n", mode_name(mode),
                fmt_seconds(a, sizeof(a), v->time_ns),
                fmt_sbytes(c, sizeof(c), v->live_bytes, false), (long long)v->live_allocations,
                v->live_allocations == 1 ? "" : "s");
}

static int text_sites(FILE *fp, struct heap_report *hr, const struct ms__heap_view *v,
                      const struct ms__group_row *rows, size_t n, enum cli_heap_mode mode)
{
    char a[96];
    text_header(fp, v, mode);
    for (size_t i = 0; i < n; i++) {
        fprintf(fp,
                v->diff ? "\n#%zu %s in %+lld allocation%s\n" : "\n#%zu %s in %lld allocation%s\n",
                i + 1, fmt_sbytes(a, sizeof(a), rows[i].bytes, v->diff), (long long)rows[i].count,
                rows[i].count == 1 || rows[i].count == -1 ? "" : "s");
        size_t nf = stack_frames(hr, rows[i].image, rows[i].stack);
        if (!nf)
            fprintf(fp, "    (no stack)\n");
        for (size_t f = 0; f < nf; f++) {
            const struct ms__sym_frame *fr = &hr->frames[f];
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
    if (n == 0)
        fprintf(fp, "\n(no %s)\n", v->diff ? "change" : "live allocations");
    return ferror(fp) ? -1 : 0;
}

static int text_threads(FILE *fp, struct heap_report *hr, const struct ms__heap_view *v,
                        const struct ms__group_row *rows, size_t n, enum cli_heap_mode mode)
{
    char a[96];
    text_header(fp, v, mode);
    fprintf(fp, "\n%-8s %-16s %12s %28s\n", "tid", "name", "allocations", "bytes");
    for (size_t i = 0; i < n; i++) {
        const struct ms__trace_thread *t = &hr->td->threads[rows[i].thread];
        const char *name = thread_name(hr->td, rows[i].thread);
        fprintf(fp, "%-8u %-16s %12lld %28s\n", t->tid, name ? name : "?", (long long)rows[i].count,
                fmt_sbytes(a, sizeof(a), rows[i].bytes, v->diff));
    }
    return ferror(fp) ? -1 : 0;
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

static int json_out(FILE *fp, json_t *o)
{
    int bad = json_dumpf(o, fp, JSON_COMPACT) != 0 || fputc('\n', fp) == EOF;
    json_decref(o);
    return bad ? -1 : 0;
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static int json_sites(FILE *fp, struct heap_report *hr, const struct ms__heap_view *v,
                      const struct ms__group_row *rows, size_t n)
{
    json_t *o = json_view_head(v), *sites = json_array();
    int bad = !o || !sites || json_object_set_new(o, "sites", sites);
    for (size_t i = 0; i < n && !bad; i++) {
        json_t *site = json_object(), *stack = json_array();
        bad |= !site || !stack || json_array_append_new(sites, site);
        if (bad) {
            json_decref(stack);
            break;
        }
        bad |= json_object_set_new(site, "bytes", json_integer((json_int_t)rows[i].bytes));
        bad |= json_object_set_new(site, "count", json_integer((json_int_t)rows[i].count));
        bad |= json_object_set_new(site, "stack", stack);
        size_t nf = stack_frames(hr, rows[i].image, rows[i].stack);
        for (size_t f = 0; f < nf && !bad; f++) {
            const struct ms__sym_frame *fr = &hr->frames[f];
            json_t *jf = json_object();
            bad |= !jf || json_array_append_new(stack, jf);
            if (bad)
                break;
            bad |= json_object_set_new(jf, "function", str_or_null(fr->function));
            bad |= json_object_set_new(jf, "file", str_or_null(fr->file));
            bad |= json_object_set_new(jf, "line", json_integer(fr->line));
            bad |= json_object_set_new(jf, "module", json_string(fr->module ? fr->module : "?"));
        }
    }
    if (bad) {
        json_decref(o);
        return -1;
    }
    return json_out(fp, o);
}

static int json_threads(FILE *fp, struct heap_report *hr, const struct ms__heap_view *v,
                        const struct ms__group_row *rows, size_t n)
{
    json_t *o = json_view_head(v), *threads = json_array();
    int bad = !o || !threads || json_object_set_new(o, "threads", threads);
    for (size_t i = 0; i < n && !bad; i++) {
        json_t *t = json_object();
        bad |= !t || json_array_append_new(threads, t);
        if (bad)
            break;
        bad |= json_object_set_new(t, "tid", json_integer(hr->td->threads[rows[i].thread].tid));
        bad |= json_object_set_new(t, "name", str_or_null(thread_name(hr->td, rows[i].thread)));
        bad |= json_object_set_new(t, "bytes", json_integer((json_int_t)rows[i].bytes));
        bad |= json_object_set_new(t, "count", json_integer((json_int_t)rows[i].count));
    }
    if (bad) {
        json_decref(o);
        return -1;
    }
    return json_out(fp, o);
}

/* One frame's name for a folded line: the function, else module+0xoffset; ';' made ':'. */
static void folded_frame(FILE *fp, const struct ms__sym_frame *fr)
{
    char buf[512];
    ms__sym_frame_name(fr, buf, sizeof(buf));
    for (char *c = buf; *c; c++)
        if (*c == ';' || *c == '\n')
            *c = ':';
    fputs(buf, fp);
}

/* Every stack with positive bytes: "outer;...;inner bytes"; threads: "thread bytes". */
static int folded(FILE *fp, struct heap_report *hr, const struct ms__group_row *rows, size_t n,
                  bool threads)
{
    for (size_t i = 0; i < n; i++) {
        if (rows[i].bytes <= 0)
            continue;
        if (threads) {
            const char *name = thread_name(hr->td, rows[i].thread);
            fprintf(fp, "%s-%u %lld\n", name ? name : "thread", hr->td->threads[rows[i].thread].tid,
                    (long long)rows[i].bytes);
            continue;
        }
        size_t nf = stack_frames(hr, rows[i].image, rows[i].stack);
        if (!nf)
            fputs("[no stack]", fp);
        for (size_t f = nf; f-- > 0;) {
            folded_frame(fp, &hr->frames[f]);
            if (f)
                fputc(';', fp);
        }
        fprintf(fp, " %lld\n", (long long)rows[i].bytes);
    }
    return ferror(fp) ? -1 : 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Loading, with a progress line on a terminal                                              */
/* ---------------------------------------------------------------------------------------- */

struct progress {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done, shown;
    const char *path;
    _Atomic uint64_t read, size; /* bytes of the file, from the engine's progress calls */
};

static void progress_note(void *ctx, uint64_t done, uint64_t total)
{
    struct progress *p = ctx;
    p->read = done;
    p->size = total;
}

/* The delay before the bar shows: 1 s, or MEMSNAP_PROGRESS_AFTER_MS (for the tests). */
static long progress_delay_ms(void)
{
    const char *v = getenv("MEMSNAP_PROGRESS_AFTER_MS");
    char *end;
    long ms = v && *v ? strtol(v, &end, 10) : 1000;
    return v && *v && (*end || ms < 0) ? 1000 : ms;
}

static void timespec_add_ms(struct timespec *ts, long ms)
{
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

static double seconds_since(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) * 1e-9;
}

/* "\rmemsnap report: loading FILE [#########       ]  45%  12.0 MiB of 26.6 MiB  1.4 s". */
static void progress_draw(struct progress *p, double elapsed)
{
    uint64_t size = p->size, read = p->read;
    double f = size ? (double)read / (double)size : 0;
    if (f > 1)
        f = 1;
    char bar[31], a[32], b[32];
    int filled = (int)(f * 30);
    for (int i = 0; i < 30; i++)
        bar[i] = i < filled ? '#' : ' ';
    bar[30] = 0;
    ms_format_bytes(a, sizeof(a), read);
    ms_format_bytes(b, sizeof(b), size);
    fprintf(stderr, "\rmemsnap report: loading %s [%s] %3d%%  %s of %s  %.1f s ", p->path, bar,
            (int)(f * 100), a, b, elapsed);
    fflush(stderr);
    p->shown = true;
}

/* Once loading has taken longer than the delay, the bar on stderr, redrawn every 0.2 s until
 * the load ends (and drawn once at the end if the load ended past the delay between two
 * draws); then the line is cleared. */
static void *progress_thread(void *arg)
{
    struct progress *p = arg;
    struct timespec start, ts;
    long delay = progress_delay_ms();
    clock_gettime(CLOCK_REALTIME, &start);
    pthread_mutex_lock(&p->lock);
    ts = start;
    timespec_add_ms(&ts, delay);
    while (!p->done) {
        if (pthread_cond_timedwait(&p->cond, &p->lock, &ts) != 0 && !p->done) {
            progress_draw(p, seconds_since(&start));
            clock_gettime(CLOCK_REALTIME, &ts);
            timespec_add_ms(&ts, 200);
        }
    }
    double el = seconds_since(&start);
    if (!p->shown && el * 1000 >= (double)delay)
        progress_draw(p, el);
    if (p->shown)
        fprintf(stderr, "\r\033[K");
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

static int open_engine(const char *cmd, const char *path, struct ms__engine **e)
{
    struct stat st;
    int fd = cli_open_input(cmd, path, &st); /* a FIFO or a directory: one line, no wait */
    if (fd < 0)
        return CLI_FAIL;
    struct progress p = {.lock = PTHREAD_MUTEX_INITIALIZER,
                         .cond = PTHREAD_COND_INITIALIZER,
                         .path = path,
                         .size = (uint64_t)st.st_size};
    struct ms__engine_opts o = {.progress = progress_note, .progress_ctx = &p};
    pthread_t th;
    bool threaded = isatty(STDERR_FILENO) && pthread_create(&th, NULL, progress_thread, &p) == 0;
    char err[512];
    int rc = ms__engine_open_fd(e, fd, &o, err, sizeof(err));
    if (threaded) {
        pthread_mutex_lock(&p.lock);
        p.done = true;
        pthread_cond_signal(&p.cond);
        pthread_mutex_unlock(&p.lock);
        pthread_join(th, NULL);
    }
    close(fd);
    if (rc) {
        cli_error(cmd, "%s: %s", path, err);
        return CLI_FAIL;
    }
    return CLI_OK;
}

/* WHEN (seconds from the trace start, or a marker label) to ns; prints the error. */
static int parse_when(const char *cmd, struct ms__engine *e, const char *when, uint64_t *ns)
{
    const struct ms__trace_data *td = ms__engine_trace(e);
    /* a time is plain decimal seconds ("2", "0.25"); " 5", "+5", "0x5" or "1e3" are not
     * (strtod would take them): such a WHEN is a marker's label or an error */
    size_t digits = strspn(when, "0123456789");
    bool plain =
        digits > 0 &&
        (when[digits] == 0 ||
         (when[digits] == '.' && !when[digits + 1 + strspn(when + digits + 1, "0123456789")]));
    char *end;
    errno = 0;
    double s = plain ? strtod(when, &end) : 0;
    if (plain && !*end && !errno && isfinite(s)) {
        double t = s * 1e9;
        if (t > (double)td->end_time + 0.5) {
            char a[64];
            cli_error(cmd, "time %s s is past the end of the trace (duration %s)", when,
                      fmt_seconds(a, sizeof(a), td->end_time));
            return CLI_FAIL;
        }
        *ns = (uint64_t)(t + 0.5);
        return CLI_OK;
    }
    if (when[0] == '-' && strspn(when + 1, "0123456789.") == strlen(when + 1) && when[1] &&
        ms__engine_marker_time(e, when, ns) != 0) {
        cli_error(cmd, "time '%s' is before the trace start", when);
        return CLI_USAGE;
    }
    if (ms__engine_marker_time(e, when, ns) != 0) {
        cli_error(cmd, "no marker is labelled '%s' (and it is not a time in seconds)", when);
        return CLI_FAIL;
    }
    return CLI_OK;
}

/* One output of cli_heap_report (see cli.h) from the loaded trace in hr. */
static int heap_out(const char *cmd, const char *path, struct heap_report *hr,
                    const struct cli_heap_out *o, const char *w1, const char *w2, bool threads,
                    unsigned long top)
{
    struct ms__heap_view v = {0}, a = {0}, b = {0};
    uint64_t t1 = 0, t2 = 0;
    int err = 0, rc = CLI_OK;
    switch (o->mode) {
    case CLI_HEAP_PEAK:
        err = ms__engine_peak(hr->e, &v);
        break;
    case CLI_HEAP_LEAKS:
        err = ms__engine_leaks(hr->e, &v);
        break;
    case CLI_HEAP_AT:
        if ((rc = parse_when(cmd, hr->e, w1, &t1)))
            goto out;
        err = ms__engine_snapshot_time(hr->e, t1, &v);
        break;
    default:
        if ((rc = parse_when(cmd, hr->e, w1, &t1)) || (rc = parse_when(cmd, hr->e, w2, &t2)))
            goto out;
        err = ms__engine_snapshot_time(hr->e, t1, &a);
        if (!err)
            err = ms__engine_snapshot_time(hr->e, t2, &b);
        if (!err)
            err = ms__engine_diff(&a, &b, &v);
        break;
    }
    if (err) {
        cli_error(cmd, "%s: %s", path, ms_strerror(err));
        rc = CLI_FAIL;
        goto out;
    }
    struct ms__group_row *rows;
    size_t n;
    if (ms__engine_group(hr->e, &v, threads ? MS__GROUP_THREAD : MS__GROUP_STACK, NULL, &rows,
                         &n) != 0) {
        cli_error(cmd, "out of memory");
        rc = CLI_FAIL;
        goto out;
    }
    size_t shown = n < top ? n : (size_t)top;
    int wr;
    FILE *fp = o->fp;
    if (o->fmt == CLI_HEAP_FOLDED)
        wr = folded(fp, hr, rows, n, threads);
    else if (o->fmt == CLI_HEAP_JSON)
        wr = threads ? json_threads(fp, hr, &v, rows, shown) : json_sites(fp, hr, &v, rows, shown);
    else
        wr = threads ? text_threads(fp, hr, &v, rows, shown, o->mode)
                     : text_sites(fp, hr, &v, rows, shown, o->mode);
    ms__group_rows_free(rows, n);
    if (wr || fflush(fp) != 0) {
        cli_error(cmd, "writing the report failed");
        rc = CLI_FAIL;
    }
out:
    ms__heap_view_free(&v);
    ms__heap_view_free(&a);
    ms__heap_view_free(&b);
    return rc;
}

/* The notes every mode prints on stderr about how the trace ends: cut short (a warning says
 * where), without its END record, or with events the tracker could not record. */
static void trace_notes(const char *cmd, const char *warning, bool complete, uint64_t lost)
{
    if (warning)
        cli_error(cmd, "warning: %s", warning);
    if (!complete)
        cli_error(cmd, "note: the trace has no END record: the program was killed or is still "
                       "running, or the trace was cut; the figures stop at its last record");
    if (lost)
        cli_error(cmd,
                  "warning: %llu allocation event%s could not be recorded (signal handlers "
                  "nested too deep); the figures miss %s",
                  (unsigned long long)lost, lost == 1 ? "" : "s", lost == 1 ? "it" : "them");
}

int cli_heap_report(const char *cmd, const char *path, const struct cli_heap_out *outs, size_t n,
                    const char *w1, const char *w2, bool threads, unsigned long top)
{
    struct heap_report *hr = calloc(1, sizeof(*hr));
    if (!hr) {
        cli_error(cmd, "out of memory");
        return CLI_FAIL;
    }
    int rc = open_engine(cmd, path, &hr->e);
    if (rc) {
        free(hr);
        return rc;
    }
    hr->td = ms__engine_trace(hr->e);
    trace_notes(cmd, hr->td->truncated ? hr->td->warning : NULL, hr->td->complete, hr->td->lost);
    if (ms__sym_open(&hr->sym, hr->td) != 0)
        hr->sym = NULL; /* frames stay module+offset */
    for (size_t i = 0; i < n && rc == CLI_OK; i++)
        rc = heap_out(cmd, path, hr, &outs[i], w1, w2, threads, top);
    if (hr->sym)
        ms__sym_close(hr->sym);
    ms__engine_close(hr->e);
    free(hr);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* The command                                                                              */
/* ---------------------------------------------------------------------------------------- */

static int stats_report(const char *path, ms_format fmt)
{
    ms_trace *t;
    int rc = ms_trace_open(&t, path);
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
    trace_notes("report", warning, st.complete, st.lost_events);
    if (st.saturated)
        cli_error("report", "warning: byte figures pass 2^64 - 1 and are held there: no "
                            "program's heap does, the trace is crafted or corrupt");
    rc = fmt == MS_FORMAT_JSON ? report_json(stdout, &st, warning) : report_text(stdout, &st);
    ms_trace_close(t);
    if (rc || fflush(stdout) != 0) {
        cli_error("report", "writing the report failed");
        return CLI_FAIL;
    }
    return CLI_OK;
}

int cmd_report(int argc, char **argv)
{
    struct report_opts o = {.argc = argc, .argv = argv, .top = 10};
    int rc = cli_parse(&report_options, argc, argv, &o);
    if (rc)
        return rc == CLI_HELP ? CLI_OK : rc;
    enum cli_heap_mode mode = o.mode;
    enum cli_heap_fmt fmt = o.fmt;
    const char *w1 = o.w1, *w2 = o.w2;
    bool threads = o.threads;
    unsigned long top = o.top;
    if (argc - optind != 1) {
        cli_error("report", "expected one trace file, got %d (see 'memsnap report --help')",
                  argc - optind);
        return CLI_USAGE;
    }
    if (o.modes > 1) {
        cli_error("report", "--peak, --at, --leaks, --diff and --stats exclude each other");
        return CLI_USAGE;
    }
    if (mode == CLI_HEAP_STATS) {
        if (fmt == CLI_HEAP_FOLDED || threads) {
            cli_error("report", "--stats takes --format text or json, and no --threads");
            return CLI_USAGE;
        }
        return stats_report(argv[optind], fmt == CLI_HEAP_JSON ? MS_FORMAT_JSON : MS_FORMAT_TEXT);
    }
    struct cli_heap_out out = {mode, fmt, stdout};
    return cli_heap_report("report", argv[optind], &out, 1, w1, w2, threads, top);
}
