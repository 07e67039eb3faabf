/*
 * monitor_options.c - the options of `memsnap monitor`, `memsnap track` and `memsnap run`: one
 * option table (opts.h) serves the three commands, each taking its subset, so that an option
 * they share is declared, parsed and described once; getopt's strings, --help and the usage
 * errors all come from it. Parsing fills struct mon (monitor_loop.h); the checks across
 * options follow, and the job identity not given on the command line comes from the
 * environment (Slurm, PBS, MPI, torchrun).
 */
#include "cli.h"
#include "monitor_loop.h"
#include "opts.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define K_MON   (1u << CLI_MON_MONITOR)
#define K_TRACK (1u << CLI_MON_TRACK)
#define K_MT    (K_MON | K_TRACK)

/* Whether text is a plain decimal number: digits with at most one '.', nothing else (strtod
 * would take " 1", "+1", "0x1p3", "1e3", "inf"). */
static bool mon_plain_number(const char *text)
{
    bool digit = false, dot = false;
    for (const char *c = text; *c; c++) {
        if (*c == '.' && !dot)
            dot = true;
        else if (*c >= '0' && *c <= '9')
            digit = true;
        else
            return false;
    }
    return digit;
}

/* Parses seconds ("1", "0.001"); allow_zero admits 0. Returns 0 or -1. */
static int mon_parse_seconds(const char *text, bool allow_zero, uint64_t *ns)
{
    if (!mon_plain_number(text))
        return -1;
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || !isfinite(v) || v < 0 || v > 1e7 || (v == 0 && !allow_zero))
        return -1;
    uint64_t n = (uint64_t)llround(v * 1e9);
    if (n == 0 && !allow_zero)
        return -1;
    *ns = n;
    return 0;
}

/* Parses a percentage, 0 < PCT <= 100. */
static int mon_parse_pct(const char *text, double *out)
{
    if (!mon_plain_number(text))
        return -1;
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || !isfinite(v) || v <= 0 || v > 100)
        return -1;
    *out = v;
    return 0;
}

/* Parses a non-negative integer (0 allowed). */
static int mon_parse_long(const char *text, long *out)
{
    unsigned long v;
    if (strcmp(text, "0") == 0) {
        *out = 0;
        return 0;
    }
    if (cli_parse_uint(text, &v) != 0 || v > INT32_MAX)
        return -1;
    *out = (long)v;
    return 0;
}

/* The first of the environment variables names that holds a non-negative integer; -1. */
static long mon_env_long(const char *const *names)
{
    for (; *names; names++) {
        const char *v = getenv(*names);
        long n;
        if (v && *v && mon_parse_long(v, &n) == 0)
            return n;
    }
    return -1;
}

/* Splits --on-critical CMD on blanks into m->hook and finds its program; prints the usage
 * error and returns -1 when it is empty or cannot be executed. */
static int mon_hook_parse(struct mon *m, const char *cmd)
{
    free(m->hook_buf);
    free(m->hook);
    free(m->hook_path);
    m->hook = NULL;
    m->hook_path = NULL;
    m->hook_buf = strdup(cmd);
    size_t n = 0, len = strlen(cmd);
    m->hook = calloc(len / 2 + 2, sizeof(*m->hook));
    if (!m->hook_buf || !m->hook) {
        cli_error(m->name, "out of memory");
        return -1;
    }
    char *save = NULL;
    for (char *t = strtok_r(m->hook_buf, " \t\n", &save); t; t = strtok_r(NULL, " \t\n", &save))
        m->hook[n++] = t;
    if (n == 0) {
        cli_error(m->name, "empty --on-critical (see 'memsnap %s --help')", m->name);
        return -1;
    }
    if (!(m->hook_path = cli_find_program(m->hook[0]))) {
        cli_error(m->name, "--on-critical: cannot execute '%s': %s", m->hook[0], strerror(errno));
        return -1;
    }
    return 0;
}

/* The callbacks of the table below, values at o->off in struct mon. */
enum { MON_WALK_OFF = 1 }; /* mon_opt_seconds's id: a value turns the PSS walk budget off */

static int mon_opt_seconds(const struct cli_options *p, const struct cli_opt *o, const char *arg,
                           void *ctx)
{
    struct mon *m = ctx;
    uint64_t ns;
    if (mon_parse_seconds(arg, o->value == 0, &ns) != 0 || ns < (uint64_t)o->value)
        return cli_bad_value(p, o, arg);
    *(uint64_t *)((char *)ctx + o->off) = ns;
    if (o->id == MON_WALK_OFF) /* --full-interval: a given S is followed as is */
        m->walk_budget = false;
    return 0;
}

static int mon_opt_count(const struct cli_options *p, const struct cli_opt *o, const char *arg,
                         void *ctx)
{
    long v;
    if (mon_parse_long(arg, &v) != 0 || v < o->value)
        return cli_bad_value(p, o, arg);
    *(long *)((char *)ctx + o->off) = v;
    return 0;
}

static int mon_opt_pct(const struct cli_options *p, const struct cli_opt *o, const char *arg,
                       void *ctx)
{
    if (mon_parse_pct(arg, (double *)((char *)ctx + o->off)) != 0)
        return cli_bad_value(p, o, arg);
    return 0;
}

/* --job-id and --oom-dump-dir: a name, not empty. */
static int mon_opt_name(const struct cli_options *p, const struct cli_opt *o, const char *arg,
                        void *ctx)
{
    if (!*arg) {
        cli_error(p->cmd, "empty --%s", o->name);
        return CLI_USAGE;
    }
    *(const char **)((char *)ctx + o->off) = arg;
    return 0;
}

static int mon_opt_limit(const struct cli_options *p, const struct cli_opt *o, const char *arg,
                         void *ctx)
{
    unsigned long long bytes;
    if (cli_parse_bytes(arg, &bytes) != 0 || bytes == 0)
        return cli_bad_value(p, o, arg);
    ((struct mon *)ctx)->limit = bytes;
    return 0;
}

static int mon_opt_hook(const struct cli_options *p, const struct cli_opt *o, const char *arg,
                        void *ctx)
{
    (void)p;
    (void)o;
    return mon_hook_parse(ctx, arg) == 0 ? 0 : CLI_USAGE;
}

/* The values that the callbacks take, with their field in struct mon and the bad value's
 * error ("invalid --NAME 'ARG' (HINT)"). MON_SECONDS: seconds, at least `min` nanoseconds
 * (0: 0 allowed); MON_COUNT: an integer >= min; MON_PCT: 0 < PCT <= 100. */
#define MON_BAD(n, hint) .bad = "invalid --" n " '%s' (" hint ")"
#define MON_SECONDS(l, n, f, min, i, hint, h, ...)                                                 \
    OPT_CALLBACK(l, n, "S", mon_opt_seconds, i, h, .off = CLI__OFF(struct mon, f, uint64_t),       \
                 .value = min, MON_BAD(n, hint), __VA_ARGS__)
#define MON_COUNT(n, f, min, hint, h, ...)                                                         \
    OPT_CALLBACK(0, n, "N", mon_opt_count, 0, h, .off = CLI__OFF(struct mon, f, long),             \
                 .value = min, MON_BAD(n, hint), __VA_ARGS__)
#define MON_PCT(n, f, h, ...)                                                                      \
    OPT_CALLBACK(0, n, "PCT", mon_opt_pct, 0, h, .off = CLI__OFF(struct mon, f, double),           \
                 MON_BAD(n, "a percentage, 0 < PCT <= 100"), __VA_ARGS__)
#define MON_OOM_UINT(n, a, f, h)                                                                   \
    OPT_UINT(0, n, a, struct mon, f, UINT32_MAX, "invalid --" n " '%s' (a positive integer)", h)

/* Sorted by name, as --help prints them; `only` says which of monitor, track and run take an
 * option (none: all three). */
static const struct cli_opt mon_table[] = {
    MON_PCT("critical-threshold", crit,
            "alert 'critical' when usage reaches PCT% of the tightest limit", .only = K_TRACK),
    MON_SECONDS('d', "duration", duration_ns, 1, 0, "seconds, e.g. 10 or 0.5",
                "stop after S seconds (a command is then sent SIGTERM)", .only = K_MT),
    OPT_FORMAT(struct mon, fmt, CLI_FMT_JSON | CLI_FMT_CSV,
               "json (default: JSON lines) or csv (a header, then one row per record)",
               .only = K_MT),
    MON_SECONDS(0, "full-interval", full_ns, 0, MON_WALK_OFF, "seconds, 0 or more",
                "re-read the full figures at most every S seconds (default 0.1);\n"
                "samples in between re-read statm only. 0: every sample. By default\n"
                "PSS/USS (a walk of the page tables, ~4 ms per GiB of RSS) are re-read\n"
                "only while that costs under 1% of a core; a given S is followed as is",
                .only = K_MT),
    OPT_HELP(),
    MON_SECONDS('i', "interval", interval_ns, MON_MIN_INTERVAL, 0, "seconds, at least 0.0001",
                "seconds between samples (default 1; 0.001 is fine)"),
    OPT_CALLBACK(0, "job-id", "ID", mon_opt_name, 0,
                 "job identity carried in every record (default $SLURM_JOB_ID,\n$PBS_JOBID)",
                 .off = CLI__OFF(struct mon, job_id, const char *), .only = K_MT),
    MON_SECONDS(0, "kill-after", kill_after_ns, 0, 0, "seconds, 0 or more",
                "when --duration's SIGTERM has not ended the command after S\n"
                "seconds, send it SIGKILL (default 5; 0: wait however long it takes)",
                .only = K_MT),
    OPT_CALLBACK(0, "memory-limit", "SIZE", mon_opt_limit, 0,
                 "run the command in a new memory cgroup limited to SIZE\n"
                 "(bytes, or 512K, 64M, 1G)",
                 MON_BAD("memory-limit", "bytes, or 512K, 64M, 1G")),
    OPT_BOOL(0, "no-gpu", struct mon, no_gpu, "leave GPUs out of the samples"),
    OPT_CALLBACK(0, "on-critical", "CMD", mon_opt_hook, 0,
                 "run CMD on each critical alert: split on blanks into an argv,\n"
                 "never through a shell; MEMSNAP_ALERT_* in its environment",
                 .only = K_TRACK),
    MON_OOM_UINT("oom-buffer-size", "N", ring,
                 "samples and events the flight recorder keeps (default 1000)"),
    OPT_CALLBACK(0, "oom-dump-dir", "DIR", mon_opt_name, 0,
                 "where OOM bundles go (default ./memsnap-oom, made 0700)",
                 .off = CLI__OFF(struct mon, dump_dir, const char *)),
    OPT_BOOL(0, "oom-flight-recorder", struct mon, flight,
             "keep the last samples and events, written out as a bundle\n"
             "directory on an OOM (any --oom-* option turns it on)"),
    MON_OOM_UINT("oom-max-dumps", "K", max_dumps,
                 "keep at most K bundles in DIR, oldest removed first"),
    MON_OOM_UINT("oom-max-total-mb", "M", max_mb, "keep at most M MiB of bundles in DIR"),
    OPT_NONEMPTY('o', "output", "FILE", struct mon, output,
                 "write to FILE instead of standard output: a new file (0600) that\n"
                 "replaces FILE at the first record, so a failed start leaves FILE\n"
                 "as it was; a directory, device, FIFO or socket is refused",
                 .only = K_MT),
    OPT_PID(struct mon, pid, "watch a running process", .only = K_MT),
    OPT_PROCFS(struct mon, procfs),
    MON_COUNT("rank", rank, 0, "a non-negative integer",
              "rank carried in every record (default $RANK, $SLURM_PROCID,\n"
              "$OMPI_COMM_WORLD_RANK, $PMI_RANK)",
              .only = K_MT),
    OPT_NONEMPTY(0, "record", "TRACE", struct mon, record,
                 "run the command under the allocation tracker, as\n"
                 "'memsnap record -o TRACE' does; OOM bundles get the trace's tail.\n"
                 "TRACE must be a regular file or absent, and not the -o FILE",
                 .only = K_MT),
    OPT_SYSFS(struct mon, sysfs),
    OPT_BOOL(0, "tree", struct mon, tree,
             "follow the process tree: every descendant, summed and listed", .only = K_MT),
    MON_PCT("warning-threshold", warn,
            "alert 'warning' when usage reaches PCT% of the tightest limit", .only = K_TRACK),
    MON_COUNT("world-size", world_size, 1, "a positive integer",
              "world size carried in every record (default $WORLD_SIZE,\n"
              "$SLURM_NTASKS, $OMPI_COMM_WORLD_SIZE, $PMI_SIZE)",
              .only = K_MT),
    OPT_END(),
};

static const char *const mon_names[] = {"monitor", "track", "run"};

/* The table as command kind takes it. */
static struct cli_options mon_cli_options(enum cli_mon_kind kind, const struct mon_help *help)
{
    return (struct cli_options){.cmd = mon_names[kind],
                                .opts = mon_table,
                                .kind = 1u << kind,
                                .column = 31,
                                .stop_at_operand = true, /* the command's options are its own */
                                .head = help->head,
                                .tail = help->tail};
}

/* Parses argv into m (its defaults set), then checks the options against each other; returns
 * 0, CLI_USAGE after printing the error, or CLI_HELP after --help. */
static int mon_parse(struct mon *m, int argc, char **argv, const struct mon_help *help)
{
    struct cli_options p = mon_cli_options(m->kind, help);
    const char *name = m->name;
    int rc = cli_parse(&p, argc, argv, m);
    if (rc)
        return rc;
    if (m->dump_dir || m->ring || m->max_dumps || m->max_mb) /* any --oom-* option */
        m->flight = true;
    if (optind < argc)
        m->argv = argv + optind;
    if (m->pid && m->argv) {
        cli_error(name, "give --pid or a command, not both (see 'memsnap %s --help')", name);
        return CLI_USAGE;
    }
    if (!m->pid && !m->argv) {
        cli_error(name, "nothing to %s: give %sa command after '--' (see 'memsnap %s --help')",
                  m->kind == CLI_MON_RUN ? "run" : "watch",
                  m->kind == CLI_MON_RUN ? "" : "--pid PID or ", name);
        return CLI_USAGE;
    }
    if (m->kind == CLI_MON_RUN && !m->limit) {
        cli_error(name, "--memory-limit SIZE is required (see 'memsnap run --help')");
        return CLI_USAGE;
    }
    if (m->pid && (m->limit || m->record)) {
        cli_error(name, "--%s needs a command to start, not --pid",
                  m->limit ? "memory-limit" : "record");
        return CLI_USAGE;
    }
    if (m->warn >= 0 && m->crit >= 0 && m->warn >= m->crit) {
        cli_error(name, "--warning-threshold (%g) must be below --critical-threshold (%g)", m->warn,
                  m->crit);
        return CLI_USAGE;
    }
    if (m->hook && m->crit < 0) {
        cli_error(name, "--on-critical needs --critical-threshold");
        return CLI_USAGE;
    }
    if (m->rank >= 0 && m->world_size > 0 && m->rank >= m->world_size) {
        cli_error(name, "--rank %ld is not below --world-size %ld", m->rank, m->world_size);
        return CLI_USAGE;
    }
    return 0;
}

int mon_options_parse(struct mon *m, int argc, char **argv, const struct mon_help *help)
{
    m->name = mon_names[m->kind];
    m->interval_ns = NS_PER_S;
    m->full_ns = MON_FULL_DEFAULT;
    m->kill_after_ns = MON_KILL_AFTER;
    m->walk_budget = true;
    m->fmt = MS_FORMAT_JSON;
    m->rank = m->world_size = -1;
    m->warn = m->crit = -1;
    m->out_fd = -1;
    int rc = mon_parse(m, argc, argv, help);
    if (rc)
        return rc;
    if (!m->job_id) {
        const char *j = getenv("SLURM_JOB_ID");
        if (!j || !*j)
            j = getenv("PBS_JOBID");
        m->job_id = j && *j ? j : NULL;
    }
    if (m->rank < 0)
        m->rank = mon_env_long((const char *const[]){"RANK", "SLURM_PROCID", "OMPI_COMM_WORLD_RANK",
                                                     "PMI_RANK", NULL});
    if (m->world_size < 0)
        m->world_size = mon_env_long((const char *const[]){
            "WORLD_SIZE", "SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE", NULL});
    return 0;
}
