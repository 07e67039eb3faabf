/*
 * cmd_analyze.c - `memsnap analyze FILE`: what a recording says about memory, a front end over
 * the library's timeline analysis (ms_timeline_* in memsnap.h, src/timeline/). On monitor
 * output (CSV or JSON lines, docs/monitor-format.md) it summarizes every metric, looks for
 * leaks by trend and for spikes, and lists the alerts, OOM records and markers; on a trace
 * written by `memsnap record` it reports the heap's peak and leak sites. Output is text or one
 * JSON object (docs/analyze-format.md), and --html writes a self-contained report.
 *
 * This file parses the options, opens the input and the outputs, and prints what the library
 * says: the file is mapped here (and a SIGBUS from a file truncated meanwhile caught here),
 * because a signal handler is the program's business, not the library's.
 */
#include "cli.h"
#include "opts.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* What the options ask for. */
struct analyze_opts {
    ms_format fmt;
    const char *html; /* --html OUT, NULL when not given */
    unsigned long top;
};

/* --help, around the option lines. */
static const char analyze_head[] =
    "usage: memsnap analyze FILE [--format text|json] [--html OUT.html] [--top N]\n\n"
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
    "Trace: the heap at its peak and what was never freed, by call site.\n\n";
static const char analyze_tail[] =
    "\nA malformed file is an error naming the line (exit status 1); a last line cut\n"
    "short (the monitor was killed) is a warning and is ignored. The severity rules and\n"
    "the JSON are described in docs/analyze-format.md.\n\n"
    "example: memsnap analyze run.jsonl --html run.html\n"
    "         memsnap analyze app.mst --format json\n";

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
    .cmd = "analyze", .opts = analyze_table, .head = analyze_head, .tail = analyze_tail};

/* Prints each line of the library's warnings and notes (NULL: none) as "memsnap analyze: ...". */
static void print_warnings(const char *w)
{
    while (w && *w) {
        const char *nl = strchr(w, '\n');
        int n = nl ? (int)(nl - w) : (int)strlen(w);
        cli_error("analyze", "%.*s", n, w);
        w += n + (nl != NULL);
    }
}

/* Writes the analysis a: text or JSON on stdout, and the HTML report to html (NULL: none asked
 * for, html_name its name for the errors). */
static int write_analysis(ms_timeline_analysis *a, ms_format fmt, FILE *html, const char *html_name)
{
    int rc = fmt == MS_FORMAT_JSON ? ms_timeline_write_json(a, stdout)
                                   : ms_timeline_write_text(a, stdout);
    if (rc == MS_ENOMEM) {
        cli_error("analyze", "out of memory");
        return CLI_FAIL;
    }
    if (rc || fflush(stdout) != 0) {
        cli_error("analyze", "writing the analysis failed");
        return CLI_FAIL;
    }
    errno = 0;
    if (html && ms_timeline_write_html(a, html) != 0) {
        if (ferror(html)) /* a full disk: the temporary file is removed, OUT stays */
            cli_error("analyze", "cannot write %s: %s; it was left unchanged", html_name,
                      strerror(errno ? errno : EIO));
        else
            cli_error("analyze", "writing the HTML report failed: out of memory");
        return CLI_FAIL;
    }
    return CLI_OK;
}

/* Analyzes the input: monitor output from the mapping buf (len bytes), a trace from path. */
static int analyze(const char *path, const char *buf, size_t len, bool trace, unsigned long top,
                   ms_format fmt, FILE *html, const char *html_name)
{
    ms_timeline *tl = NULL;
    ms_timeline_analysis *a = NULL;
    int rc;
    if (trace) {
        ms_timeline_options o = {.size = sizeof(o), .top = top};
        rc = ms_timeline_analyze_path(path, &o, &a);
    } else if ((rc = ms_timeline_read(&tl, buf, len, path)) == 0) {
        print_warnings(ms_timeline_warning(tl));
        rc = ms_timeline_analyze(tl, &a);
    }
    if (rc) {
        cli_error("analyze", "%s", ms_last_error());
        ms_timeline_close(tl);
        return CLI_FAIL;
    }
    if (trace)
        print_warnings(ms_timeline_analysis_warning(a));
    rc = write_analysis(a, fmt, html, html_name);
    ms_timeline_analysis_free(a);
    ms_timeline_close(tl);
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
    if (cli_operands(&analyze_options, argc, 1, "one file"))
        return CLI_USAGE;
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
    struct sigaction sa = {.sa_handler = an_on_sigbus}, old;
    an_bus_path = path;
    an_bus_html = ho.tmp;
    sigaction(SIGBUS, &sa, &old);
    int rc;
    if (ms_timeline_sniff(buf, len) == MS_TIMELINE_TRACE) {
        munmap((void *)buf, len);
        sigaction(SIGBUS, &old, NULL); /* a trace is read(), not mapped */
        rc = analyze(path, NULL, 0, true, top, co.fmt, hf, html);
    } else {
        rc = analyze(path, buf, len, false, top, co.fmt, hf, html);
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
