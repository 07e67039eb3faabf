/*
 * cmd_bench.c - `memsnap bench snapshot`: what a capture costs, next to the raw cost of
 * reading the very same files (and `memsnap bench engine`, in bench_engine.c).
 *
 * The raw loops pread the descriptors the session itself keeps open (ms_session_fds), so the
 * ratio is memsnap's own overhead: parsing, validity bits, timestamps. Rounds interleave the
 * four loops; the median round is reported.
 */
#include "cli.h"
#include "opts.h"

#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define BENCH_TARGET_NS 40000000.0 /* aim at ~40 ms per loop per round */
#define BENCH_MAX_FDS   16         /* more than a full capture reads */

struct bench_raw {
    int fds[BENCH_MAX_FDS];
    int n;
    char *buf;  /* grown until the largest file fits, as the session's own buffer is */
    size_t cap; /* bytes at buf */
};

/* What the options ask for. */
struct bench_opts {
    pid_t pid;            /* 0: memsnap itself */
    unsigned long rounds; /* --rounds */
    bool gpu, json;
};

/* --help, around the option lines. */
static const char bench_head[] =
    "usage: memsnap bench snapshot [--pid PID] [--rounds N] [--json] [--gpu]\n"
    "       memsnap bench engine TRACE [--json]\n\n"
    "Time snapshot captures in a loop, basic (statm) and full (statm, status, stat,\n"
    "smaps_rollup, meminfo, cgroup), and in the same run the raw cost of pread() on the\n"
    "same open descriptors; print ns per capture and the ratio (like 'zstd -b').\n\n";
static const char bench_tail[] =
    "\n'bench engine TRACE' loads a trace written by 'memsnap record' once, then times the\n"
    "engine: the load with its replay pass (events/s), a snapshot of the heap at 200\n"
    "random moments (median and worst) and the peak (--json: load_ns,\n"
    "replay_events_per_s, snapshot_ns_median, snapshot_ns_max, peak_ns).\n";

static const struct cli_opt bench_table[] = {
    OPT_PID(struct bench_opts, pid, "process to capture (default: memsnap itself)"),
    OPT_UINT('r', "rounds", "N", struct bench_opts, rounds, 1000,
             "invalid round count '%s' (1 to 1000)", "rounds, the median is reported (default 7)"),
    OPT_BOOL('g', "gpu", struct bench_opts, gpu,
             "also time GPU-only captures (gpu_ns) and, where they run, one\n"
             "'nvidia-smi --query-gpu=memory.used' (nvsmi_ns) and a fresh\n"
             "dlopen+nvmlInit+query+nvmlShutdown in a child process that\n"
             "has no NVML open (init_per_call_ns)"),
    OPT_BOOL('j', "json", struct bench_opts, json,
             "print {\"basic_ns\",\"raw_basic_ns\",\"full_ns\",\"raw_full_ns\",...}"),
    OPT_HELP(),
    OPT_END(),
};

static const struct cli_options bench_options = {
    .cmd = "bench", .opts = bench_table, .head = bench_head, .tail = bench_tail};

static double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* One pass over every raw descriptor, reading each whole file as the session does (the
 * buffer grows in the warm-up, as the session's own did in its first capture). */
static int bench_raw_pass(struct bench_raw *r)
{
    for (int i = 0; i < r->n; i++) {
        size_t len = 0;
        for (;;) {
            size_t room = r->cap - len;
            ssize_t got = pread(r->fds[i], r->buf + len, room, (off_t)len);
            if (got < 0)
                return -1;
            len += (size_t)got;
            if ((size_t)got < room)
                break;
            char *nb = realloc(r->buf, r->cap * 2);
            if (!nb)
                return -1;
            r->buf = nb;
            r->cap *= 2;
        }
    }
    return 0;
}

enum { B_BASIC, B_RAW_BASIC, B_FULL, B_RAW_FULL, B_COUNT };

/* Runs loop `which` iters times; returns ns per iteration, or a negative value on failure. */
static double bench_loop(int which, unsigned long iters, ms_session *s, pid_t pid,
                         ms_snapshot *snap, struct bench_raw *basic, struct bench_raw *full)
{
    double t0 = bench_now();
    for (unsigned long i = 0; i < iters; i++) {
        int rc;
        switch (which) {
        case B_BASIC:
            rc = ms_capture(s, pid, MS_CAPTURE_BASIC, snap);
            break;
        case B_FULL:
            rc = ms_capture(s, pid, MS_CAPTURE_FULL, snap);
            break;
        case B_RAW_BASIC:
            rc = bench_raw_pass(basic);
            break;
        default:
            rc = bench_raw_pass(full);
            break;
        }
        if (rc)
            return -1;
    }
    return (bench_now() - t0) / (double)iters;
}

static int bench_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void bench_fmt(char *buf, size_t len, double ns)
{
    if (ns >= 1e6)
        snprintf(buf, len, "%.2f ms", ns / 1e6);
    else if (ns >= 1e3)
        snprintf(buf, len, "%.2f us", ns / 1e3);
    else
        snprintf(buf, len, "%.0f ns", ns);
}

/* Medians of the GPU loops, ns per call; negative when not measured. */
struct bench_gpu {
    double gpu_ns;   /* ms_capture(MS_CAPTURE_GPU) on the session's long-lived backends */
    double nvsmi_ns; /* one nvidia-smi --query-gpu=memory.used run */
    double init_ns;  /* dlopen + nvmlInit + query + nvmlShutdown + dlclose */
};

enum { G_CAPTURE, G_NVSMI, G_INIT, G_COUNT };

/* `memsnap bench nvml-oneshot N` (internal): N dlopen+nvmlInit+query+nvmlShutdown+dlclose in
 * a process that has no NVML of its own, so each init is a real one; prints ns per call. */
static int bench_nvml_oneshot_main(const char *count)
{
    unsigned long n;
    if (cli_parse_uint(count, &n) != 0)
        return CLI_USAGE;
    double t0 = bench_now();
    for (unsigned long i = 0; i < n; i++)
        if (ms_gpu_query_once("nvml") != 0)
            return CLI_FAIL;
    printf("%.1f\n", (bench_now() - t0) / (double)n);
    return CLI_OK;
}

/* ns per fresh NVML init+query+shutdown, from a child process (this one keeps NVML open, and
 * nvmlInit only counts references while it is); -1 when it fails. */
static double bench_nvml_fresh(unsigned long iters)
{
    char exe[4096], count[32];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return -1;
    exe[n] = 0;
    snprintf(count, sizeof(count), "%lu", iters);
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    char *args[] = {exe, "bench", "nvml-oneshot", count, NULL};
    pid_t child;
    int rc = posix_spawn(&child, exe, &fa, NULL, args, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    char out[64] = "";
    ssize_t got = rc == 0 ? read(fds[0], out, sizeof(out) - 1) : -1;
    close(fds[0]);
    int status = 1;
    if (rc == 0)
        waitpid(child, &status, 0);
    if (got <= 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return -1;
    out[got] = 0;
    return strtod(out, NULL);
}

/* Runs GPU loop `which` iters times; ns per call, or a negative value on failure. */
static double bench_gpu_loop(int which, unsigned long iters, ms_session *s, pid_t pid,
                             ms_snapshot *snap)
{
    double t0 = bench_now();
    for (unsigned long i = 0; i < iters; i++) {
        int rc;
        if (which == G_CAPTURE)
            rc = ms_capture(s, pid, MS_CAPTURE_GPU, snap);
        else if (which == G_NVSMI)
            rc = ms_gpu_query_once("nvidia-smi");
        else /* G_INIT, in a child process: -1 where NVML is not built or cannot load */
            return bench_nvml_fresh(iters);
        if (rc)
            return -1;
    }
    return (bench_now() - t0) / (double)iters;
}

/* Times GPU captures and, where they work, the two slow ways, in interleaved rounds; returns
 * 0, or -1 when the GPU capture itself fails. */
static int bench_gpu_run(ms_session *s, pid_t pid, unsigned long rounds, struct bench_gpu *out)
{
    static ms_snapshot snap;
    ms_snapshot_init(&snap);
    unsigned long iters[G_COUNT];
    bool on[G_COUNT];
    for (int g = 0; g < G_COUNT; g++) {
        double per = bench_gpu_loop(g, 1, s, pid, &snap); /* also the warm-up */
        on[g] = per >= 0;
        if (on[g])
            per = bench_gpu_loop(g, g == G_CAPTURE ? 100 : 1, s, pid, &snap);
        on[g] = per >= 0;
        double n = BENCH_TARGET_NS / (per > 1 ? per : 1);
        iters[g] = n < 1 ? 1 : (unsigned long)n;
    }
    if (!on[G_CAPTURE])
        return -1;
    double *res[G_COUNT];
    for (int g = 0; g < G_COUNT; g++)
        res[g] = calloc(rounds, sizeof(double));
    for (unsigned long r = 0; r < rounds; r++)
        for (int g = 0; g < G_COUNT; g++)
            if (on[g] && res[g])
                res[g][r] = bench_gpu_loop(g, iters[g], s, pid, &snap);
    double med[G_COUNT];
    for (int g = 0; g < G_COUNT; g++) {
        med[g] = -1;
        if (on[g] && res[g]) {
            qsort(res[g], rounds, sizeof(double), bench_cmp);
            med[g] = res[g][rounds / 2];
        }
        free(res[g]);
    }
    out->gpu_ns = med[G_CAPTURE];
    out->nvsmi_ns = med[G_NVSMI];
    out->init_ns = med[G_INIT];
    return out->gpu_ns < 0 ? -1 : 0;
}

/* Appends the GPU keys to the JSON object being printed. */
static void bench_gpu_json(const struct bench_gpu *m)
{
    printf(",\"gpu_ns\":%.1f", m->gpu_ns);
    if (m->nvsmi_ns >= 0)
        printf(",\"nvsmi_ns\":%.1f,\"nvsmi_ratio\":%.1f", m->nvsmi_ns, m->nvsmi_ns / m->gpu_ns);
    if (m->init_ns >= 0)
        printf(",\"init_per_call_ns\":%.1f,\"init_per_call_ratio\":%.1f", m->init_ns,
               m->init_ns / m->gpu_ns);
}

/* Prints the GPU lines of the text report. */
static void bench_gpu_text(const struct bench_gpu *m)
{
    char a[32], b[32];
    bench_fmt(a, sizeof(a), m->gpu_ns);
    printf("  %-14s %10s/capture   (NVML or nvidia-smi and DRM backends, kept loaded)\n",
           "gpu capture", a);
    if (m->nvsmi_ns >= 0) {
        bench_fmt(b, sizeof(b), m->nvsmi_ns);
        printf("  %-14s %10s/call      ratio %.1fx (nvidia-smi / memsnap)\n", "nvidia-smi", b,
               m->nvsmi_ns / m->gpu_ns);
    }
    if (m->init_ns >= 0) {
        bench_fmt(b, sizeof(b), m->init_ns);
        printf("  %-14s %10s/call      ratio %.1fx (NVML init+query+shutdown per call / memsnap)\n",
               "init per call", b, m->init_ns / m->gpu_ns);
    }
}

/* Times the four loops over `rounds` rounds and stores each loop's median ns per iteration in
 * med; *nfiles is the number of files of a full capture. Prints why and returns -1 on failure. */
static int bench_measure(ms_session *s, pid_t pid, unsigned long rounds, double med[B_COUNT],
                         int *nfiles)
{
    int rc = -1;
    double *res[B_COUNT] = {NULL};
    ms_snapshot *snap = malloc(sizeof(*snap));
    struct bench_raw basic = {.n = 0}, full = {.n = 0};
    if (!snap) {
        cli_error("bench", "out of memory");
        return -1;
    }
    ms_snapshot_init(snap);
    if (ms_capture(s, pid, MS_CAPTURE_FULL, snap) != 0) {
        cli_error("bench", "%s", ms_session_error(s));
        goto out;
    }
    /* The raw loops read the session's own descriptors, opened by the capture above. */
    basic.n = ms_session_fds(s, pid, MS_CAPTURE_BASIC, basic.fds, BENCH_MAX_FDS);
    full.n = ms_session_fds(s, pid, MS_CAPTURE_FULL, full.fds, BENCH_MAX_FDS);
    if (basic.n < 1 || full.n < 1 || full.n > BENCH_MAX_FDS) {
        cli_error("bench", "the session's descriptors cannot be listed: %s", ms_last_error());
        goto out;
    }
    *nfiles = full.n;
    basic.cap = full.cap = 4096;
    basic.buf = malloc(basic.cap);
    full.buf = malloc(full.cap);
    for (int b = 0; b < B_COUNT; b++)
        res[b] = calloc(rounds, sizeof(double));
    if (!basic.buf || !full.buf || !res[0] || !res[1] || !res[2] || !res[3]) {
        cli_error("bench", "out of memory");
        goto out;
    }

    unsigned long iters[B_COUNT];
    for (int b = 0; b < B_COUNT; b++) {
        double per = bench_loop(b, 200, s, pid, snap, &basic, &full);
        if (per < 0) {
            cli_error("bench", "capture failed: %s", ms_session_error(s));
            goto out;
        }
        double n = BENCH_TARGET_NS / (per > 1 ? per : 1);
        iters[b] = n < 100 ? 100 : (unsigned long)n;
    }
    for (unsigned long r = 0; r < rounds; r++)
        for (int b = 0; b < B_COUNT; b++) {
            res[b][r] = bench_loop(b, iters[b], s, pid, snap, &basic, &full);
            if (res[b][r] < 0) {
                cli_error("bench", "capture failed: %s", ms_session_error(s));
                goto out;
            }
        }
    for (int b = 0; b < B_COUNT; b++) {
        qsort(res[b], rounds, sizeof(double), bench_cmp);
        med[b] = res[b][rounds / 2];
    }
    rc = 0;
out:
    for (int b = 0; b < B_COUNT; b++)
        free(res[b]);
    free(basic.buf);
    free(full.buf);
    free(snap);
    return rc;
}

int cmd_bench(int argc, char **argv)
{
    struct bench_opts o = {.rounds = 7};
    int rc = cli_parse(&bench_options, argc, argv, &o);
    if (rc)
        return rc == CLI_HELP ? CLI_OK : rc;
    pid_t pid = o.pid;
    bool json = o.json, gpu = o.gpu;
    unsigned long rounds = o.rounds;
    if (optind + 2 == argc && strcmp(argv[optind], "engine") == 0)
        return cli_bench_engine(argv[optind + 1], json);
    if (optind + 2 == argc && strcmp(argv[optind], "nvml-oneshot") == 0)
        return bench_nvml_oneshot_main(argv[optind + 1]);
    if (optind >= argc || strcmp(argv[optind], "snapshot") != 0 || optind + 1 != argc) {
        cli_error("bench", "expected 'snapshot' or 'engine TRACE' (see 'memsnap bench --help')");
        return CLI_USAGE;
    }

    ms_session *s;
    if (cli_open_session("bench", NULL, NULL, &s) != 0)
        return CLI_FAIL;
    char why[1024];
    if (gpu && !cli_gpu_available(s, why, sizeof(why))) {
        cli_error("bench", "--gpu: no GPU backend is available (%s)", why);
        ms_session_close(s);
        return CLI_FAIL;
    }
    struct bench_gpu gm = {.gpu_ns = -1, .nvsmi_ns = -1, .init_ns = -1};
    if (gpu && bench_gpu_run(s, pid, rounds, &gm) != 0) {
        cli_error("bench", "GPU capture failed: %s", ms_session_error(s));
        ms_session_close(s);
        return CLI_FAIL;
    }
    double med[B_COUNT];
    int nfiles = 0;
    if (bench_measure(s, pid, rounds, med, &nfiles) != 0) {
        ms_session_close(s);
        return CLI_FAIL;
    }
    int shown_pid = pid ? (int)pid : (int)getpid();
    if (json) {
        printf("{\"pid\":%d,\"rounds\":%lu,\"basic_ns\":%.1f,\"raw_basic_ns\":%.1f,"
               "\"full_ns\":%.1f,\"raw_full_ns\":%.1f,\"basic_ratio\":%.3f,\"full_ratio\":%.3f,"
               "\"raw_full_files\":%d",
               shown_pid, rounds, med[B_BASIC], med[B_RAW_BASIC], med[B_FULL], med[B_RAW_FULL],
               med[B_BASIC] / med[B_RAW_BASIC], med[B_FULL] / med[B_RAW_FULL], nfiles);
        if (gpu)
            bench_gpu_json(&gm);
        printf("}\n");
    } else {
        char a[32], b[32], c3[32], d[32];
        bench_fmt(a, sizeof(a), med[B_BASIC]);
        bench_fmt(b, sizeof(b), med[B_RAW_BASIC]);
        bench_fmt(c3, sizeof(c3), med[B_FULL]);
        bench_fmt(d, sizeof(d), med[B_RAW_FULL]);
        printf("memsnap bench snapshot: pid %d, median of %lu rounds\n", shown_pid, rounds);
        printf("  %-14s %10s/capture   %-22s %10s   ratio %.2fx\n", "basic capture", a,
               "raw pread of statm", b, med[B_BASIC] / med[B_RAW_BASIC]);
        char files[32];
        snprintf(files, sizeof(files), "raw preads of %d files", nfiles);
        printf("  %-14s %10s/capture   %-22s %10s   ratio %.2fx\n", "full capture", c3, files, d,
               med[B_FULL] / med[B_RAW_FULL]);
        if (gpu)
            bench_gpu_text(&gm);
    }
    ms_session_close(s);
    return CLI_OK;
}
