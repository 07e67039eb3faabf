/*
 * cmd_report.c - `memsnap report FILE`: what the heap of a recorded trace held. --peak (the
 * default) is the heap when live bytes were highest, --at TIME|LABEL the heap at a moment,
 * --leaks what was live at the end, --diff T1 T2 what changed between two moments, each as
 * the top call sites by bytes (with their symbolized frames), or per allocating thread
 * (--threads), as text, JSON or folded stacks for flame graphs; --stats is the summary of the
 * trace (counts, bytes, peak, leaks, unmatched frees, threads, duration) as text or JSON,
 * and with --threads each thread's allocated, freed and peak bytes. A front end over the
 * library's heap API: ms_heap_* opens, queries and renders (ms_heap_write), ms_trace_* sums up.
 */
#include "cli.h"
#include "opts.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* What report shows (the last of --peak, --at, --leaks, --diff, --stats), and how. */
enum report_mode { REPORT_PEAK, REPORT_AT, REPORT_LEAKS, REPORT_DIFF, REPORT_STATS };
enum report_fmt { REPORT_TEXT, REPORT_JSON, REPORT_FOLDED };

/* What the options ask for. */
struct report_opts {
    int argc;
    char **argv;           /* --diff takes its second moment from here */
    enum report_mode mode; /* the last of --peak, --at, --leaks, --diff, --stats */
    int modes;             /* how many of them were given: more than one is an error */
    enum report_fmt fmt;
    const char *w1, *w2; /* --at WHEN, --diff W1 W2 */
    bool threads;
    unsigned long top;
};

static int report_option(const struct cli_options *p, const struct cli_opt *o, const char *arg,
                         void *ctx);

enum { OPT_FORMAT_ID = 1 << 8 }; /* --help, around the option lines. */
static const char report_head[] =
    "usage: memsnap report FILE [--peak | --at TIME|LABEL | --leaks | --diff T1 T2 |\n"
    "                            --stats] [--threads] [--top N] [--format FMT]\n\n"
    "Read a trace written by 'memsnap record' and report what its heap held:\n\n";
static const char report_tail[] =
    "\nFrames are symbolized from the modules the trace recorded (by path and build-id,\n"
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
    "         memsnap report app.mst --format folded | flamegraph.pl > heap.svg\n";

/* --format; the modes are their enum report_mode */

static const struct cli_opt report_table[] = {
    OPT_CALLBACK('P', "peak", NULL, report_option, REPORT_PEAK,
                 "the heap when live bytes were highest, the first time (the\n"
                 "default)"),
    OPT_CALLBACK('a', "at", "WHEN", report_option, REPORT_AT,
                 "the heap at WHEN: seconds from the trace start (a number,\n"
                 "'0.25') or the label of a marker (MS_TRACE_MARKER; its first\n"
                 "occurrence). Every event at or before that time counts"),
    OPT_CALLBACK('l', "leaks", NULL, report_option, REPORT_LEAKS,
                 "what was still live at the end of the last image"),
    OPT_CALLBACK('d', "diff", "W1 W2", report_option, REPORT_DIFF,
                 "what changed from W1 to W2 (each a time or a label): signed\n"
                 "bytes and counts, growth first"),
    OPT_CALLBACK('s', "stats", NULL, report_option, REPORT_STATS,
                 "the summary: allocations, reallocations and frees, bytes,\n"
                 "the peak and when it was reached, leaks, unmatched frees,\n"
                 "threads, duration, and the trace's own figures"),
    OPT_BOOL('t', "threads", struct report_opts, threads,
             "group by the allocating thread instead of the call site (a\n"
             "block freed by another thread is still charged to it);\n"
             "with --stats, the per-thread figures: bytes allocated and\n"
             "freed, and each thread's own peak"),
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
    .cmd = "report", .opts = report_table, .head = report_head, .tail = report_tail};

/* Takes a mode (--peak, --at, --leaks, --diff, --stats) or --format. */
static int report_option(const struct cli_options *p, const struct cli_opt *o, const char *arg,
                         void *ctx)
{
    struct report_opts *r = ctx;
    (void)p;
    if (o->id == OPT_FORMAT_ID) {
        static const char *const names[] = {"text", "json", "folded"}; /* enum report_fmt */
        for (int i = 0; i < 3; i++)
            if (strcmp(arg, names[i]) == 0) {
                r->fmt = (enum report_fmt)i;
                return 0;
            }
        cli_error("report", "unknown format '%s' (text, json, folded)", arg);
        return CLI_USAGE;
    }
    r->mode = (enum report_mode)o->id;
    r->modes++;
    if (o->id == REPORT_AT || o->id == REPORT_DIFF)
        r->w1 = arg;
    if (o->id == REPORT_DIFF) {
        if (optind >= r->argc) {
            cli_error("report", "--diff needs two moments: --diff T1 T2");
            return CLI_USAGE;
        }
        r->w2 = r->argv[optind++];
    }
    return 0;
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

/* Opens the trace at path with ms_heap_open_fd (a FIFO or a directory: one line, no wait),
 * with the progress bar on a terminal; prints the error. */
static int open_heap(const char *cmd, const char *path, ms_heap **h)
{
    struct stat st;
    int fd = cli_open_input(cmd, path, &st);
    if (fd < 0)
        return CLI_FAIL;
    struct progress p = {.lock = PTHREAD_MUTEX_INITIALIZER,
                         .cond = PTHREAD_COND_INITIALIZER,
                         .path = path,
                         .size = (uint64_t)st.st_size};
    ms_heap_open_options o = {.size = sizeof(o), .progress = progress_note, .progress_ctx = &p};
    pthread_t th;
    bool threaded = isatty(STDERR_FILENO) && pthread_create(&th, NULL, progress_thread, &p) == 0;
    int rc = ms_heap_open_fd(h, fd, path, &o);
    if (threaded) {
        pthread_mutex_lock(&p.lock);
        p.done = true;
        pthread_cond_signal(&p.cond);
        pthread_mutex_unlock(&p.lock);
        pthread_join(th, NULL);
    }
    close(fd);
    if (rc) {
        cli_error(cmd, "%s", ms_last_error());
        return CLI_FAIL;
    }
    return CLI_OK;
}

/* WHEN (seconds from the trace start, or a marker label) to ns; prints the error. A negative
 * time is a usage error, the others (past the end, no such marker) a failure. */
static int parse_when(const char *cmd, ms_heap *h, const char *when, uint64_t *ns)
{
    int rc = ms_heap_when(h, when, ns);
    if (rc)
        cli_error(cmd, "%s", ms_last_error());
    return rc == 0 ? CLI_OK : rc == MS_ERANGE ? CLI_USAGE : CLI_FAIL;
}

/* The heap view that o asks for (peak, at, leaks, diff), from the trace loaded in h, written
 * to standard output. */
static int heap_out(const char *cmd, const char *path, ms_heap *h, const struct report_opts *o)
{
    static const ms_heap_format formats[] = {[REPORT_TEXT] = MS_HEAP_FORMAT_TEXT,
                                             [REPORT_JSON] = MS_HEAP_FORMAT_JSON,
                                             [REPORT_FOLDED] = MS_HEAP_FORMAT_FOLDED};
    ms_heap_view *v = NULL, *a = NULL, *b = NULL;
    uint64_t t1 = 0, t2 = 0;
    int err = 0, rc = CLI_OK;
    switch (o->mode) {
    case REPORT_PEAK:
        err = ms_heap_peak(h, &v);
        break;
    case REPORT_LEAKS:
        err = ms_heap_leaks(h, &v);
        break;
    case REPORT_AT:
        if ((rc = parse_when(cmd, h, o->w1, &t1)))
            goto out;
        err = ms_heap_at(h, t1, &v);
        break;
    default:
        if ((rc = parse_when(cmd, h, o->w1, &t1)) || (rc = parse_when(cmd, h, o->w2, &t2)))
            goto out;
        err = ms_heap_at(h, t1, &a);
        if (!err)
            err = ms_heap_at(h, t2, &b);
        if (!err)
            err = ms_heap_diff(h, a, b, &v);
        break;
    }
    if (err) {
        cli_error(cmd, "%s: %s", path, ms_strerror(err));
        rc = CLI_FAIL;
        goto out;
    }
    err = ms_heap_write(h, v, o->threads ? MS_HEAP_BY_THREAD : MS_HEAP_BY_SITE, MS_HEAP_ORDER_BYTES,
                        formats[o->fmt], o->top, stdout);
    if (err || fflush(stdout) != 0) {
        cli_error(cmd, err == MS_ENOMEM ? "out of memory" : "writing the report failed");
        rc = CLI_FAIL;
    }
out:
    ms_heap_view_free(v);
    ms_heap_view_free(a);
    ms_heap_view_free(b);
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

/* The notes of trace_notes() from a loaded heap. */
static void heap_notes(const char *cmd, const ms_heap *h)
{
    ms_heap_totals t = {.size = sizeof(t)};
    ms_heap_totals_get(h, &t);
    trace_notes(cmd, ms_heap_warning(h), t.complete, t.lost_events);
}

/* `report --peak|--at|--leaks|--diff`: loads the trace at path and writes the view. */
static int heap_report(const char *path, const struct report_opts *o)
{
    ms_heap *h;
    int rc = open_heap("report", path, &h);
    if (rc)
        return rc;
    heap_notes("report", h);
    rc = heap_out("report", path, h, o);
    ms_heap_close(h);
    return rc;
}

/* `--threads --stats`: each thread's allocated, freed and peak bytes. */
static int thread_stats_report(const char *path, bool json, unsigned long top)
{
    ms_heap *h;
    int rc = open_heap("report", path, &h);
    if (rc)
        return rc;
    heap_notes("report", h);
    int err =
        ms_heap_threads_write(h, json ? MS_HEAP_FORMAT_JSON : MS_HEAP_FORMAT_TEXT, top, stdout);
    ms_heap_close(h);
    if (err || fflush(stdout) != 0) {
        cli_error("report", err == MS_ENOMEM ? "out of memory" : "writing the report failed");
        return CLI_FAIL;
    }
    return CLI_OK;
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
    rc = ms_trace_stats_write(&st, warning, fmt, stdout);
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
    if (cli_operands(&report_options, argc, 1, "one trace file"))
        return CLI_USAGE;
    if (o.modes > 1) {
        cli_error("report", "--peak, --at, --leaks, --diff and --stats exclude each other");
        return CLI_USAGE;
    }
    if (o.mode == REPORT_STATS) {
        if (o.fmt == REPORT_FOLDED) {
            cli_error("report", "--stats takes --format text or json");
            return CLI_USAGE;
        }
        if (o.threads)
            return thread_stats_report(argv[optind], o.fmt == REPORT_JSON, o.top);
        return stats_report(argv[optind], o.fmt == REPORT_JSON ? MS_FORMAT_JSON : MS_FORMAT_TEXT);
    }
    return heap_report(argv[optind], &o);
}
