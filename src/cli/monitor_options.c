/*
 * monitor_options.c - the options of `memsnap monitor`, `memsnap track` and `memsnap run`: one
 * table (mon_options) serves the three commands, each accepting its subset, and --help is
 * printed from the same table. Parsing fills struct mon (monitor_loop.h); the job identity
 * not given on the command line comes from the environment (Slurm, PBS, MPI, torchrun).
 */
#include "cli.h"
#include "monitor_loop.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum {
    OPT_TREE = CLI_OPT_OWN,
    OPT_NO_GPU,
    OPT_FULL_INTERVAL,
    OPT_JOB_ID,
    OPT_RANK,
    OPT_WORLD_SIZE,
    OPT_WARN,
    OPT_CRIT,
    OPT_ON_CRIT,
    OPT_LIMIT,
    OPT_RECORD,
    OPT_OOM,
    OPT_OOM_DIR,
    OPT_OOM_BUF,
    OPT_OOM_DUMPS,
    OPT_OOM_MB,
    OPT_KILL_AFTER,
};

#define K_MON   (1u << CLI_MON_MONITOR)
#define K_TRACK (1u << CLI_MON_TRACK)
#define K_RUN   (1u << CLI_MON_RUN)
#define K_ALL   (K_MON | K_TRACK | K_RUN)
#define K_MT    (K_MON | K_TRACK)

/* One option: its getopt entry, the commands that take it, and its --help line. */
struct mon_option {
    struct option opt;
    unsigned kinds; /* K_* of the commands that accept it */
    char letter;    /* short form, 0 when none */
    const char *arg;
    const char *help; /* '\n' continues on an indented line */
};

/* Sorted by name, as --help prints them. */
static const struct mon_option mon_options[] = {
    {{"critical-threshold", required_argument, NULL, OPT_CRIT},
     K_TRACK,
     0,
     "PCT",
     "alert 'critical' when usage reaches PCT% of the tightest limit"},
    {{"duration", required_argument, NULL, 'd'},
     K_MT,
     'd',
     "S",
     "stop after S seconds (a command is then sent SIGTERM)"},
    {{"format", required_argument, NULL, 'F'},
     K_MT,
     'F',
     "FMT",
     "json (default: JSON lines) or csv (a header, then one row per record)"},
    {{"full-interval", required_argument, NULL, OPT_FULL_INTERVAL},
     K_MT,
     0,
     "S",
     "re-read the full figures at most every S seconds (default 0.1);\n"
     "samples in between re-read statm only. 0: every sample. By default\n"
     "PSS/USS (a walk of the page tables, ~4 ms per GiB of RSS) are re-read\n"
     "only while that costs under 1% of a core; a given S is followed as is"},
    {{"help", no_argument, NULL, 'h'}, K_ALL, 'h', NULL, "this help"},
    {{"interval", required_argument, NULL, 'i'},
     K_ALL,
     'i',
     "S",
     "seconds between samples (default 1; 0.001 is fine)"},
    {{"job-id", required_argument, NULL, OPT_JOB_ID},
     K_MT,
     0,
     "ID",
     "job identity carried in every record (default $SLURM_JOB_ID,\n$PBS_JOBID)"},
    {{"kill-after", required_argument, NULL, OPT_KILL_AFTER},
     K_MT,
     0,
     "S",
     "when --duration's SIGTERM has not ended the command after S\n"
     "seconds, send it SIGKILL (default 5; 0: wait however long it takes)"},
    {{"memory-limit", required_argument, NULL, OPT_LIMIT},
     K_ALL,
     0,
     "SIZE",
     "run the command in a new memory cgroup limited to SIZE\n(bytes, or 512K, 64M, 1G)"},
    {{"no-gpu", no_argument, NULL, OPT_NO_GPU}, K_ALL, 0, NULL, "leave GPUs out of the samples"},
    {{"on-critical", required_argument, NULL, OPT_ON_CRIT},
     K_TRACK,
     0,
     "CMD",
     "run CMD on each critical alert: split on blanks into an argv,\n"
     "never through a shell; MEMSNAP_ALERT_* in its environment"},
    {{"oom-buffer-size", required_argument, NULL, OPT_OOM_BUF},
     K_ALL,
     0,
     "N",
     "samples and events the flight recorder keeps (default 1000)"},
    {{"oom-dump-dir", required_argument, NULL, OPT_OOM_DIR},
     K_ALL,
     0,
     "DIR",
     "where OOM bundles go (default ./memsnap-oom, made 0700)"},
    {{"oom-flight-recorder", no_argument, NULL, OPT_OOM},
     K_ALL,
     0,
     NULL,
     "keep the last samples and events, written out as a bundle\n"
     "directory on an OOM (any --oom-* option turns it on)"},
    {{"oom-max-dumps", required_argument, NULL, OPT_OOM_DUMPS},
     K_ALL,
     0,
     "K",
     "keep at most K bundles in DIR, oldest removed first"},
    {{"oom-max-total-mb", required_argument, NULL, OPT_OOM_MB},
     K_ALL,
     0,
     "M",
     "keep at most M MiB of bundles in DIR"},
    {{"output", required_argument, NULL, 'o'},
     K_MT,
     'o',
     "FILE",
     "write to FILE instead of standard output: a new file (0600) that\n"
     "replaces FILE at the first record, so a failed start leaves FILE\n"
     "as it was; a directory, device, FIFO or socket is refused"},
    {{"pid", required_argument, NULL, 'p'}, K_MT, 'p', "PID", "watch a running process"},
    {{"procfs", required_argument, NULL, CLI_OPT_PROCFS},
     K_ALL,
     0,
     "DIR",
     "procfs root (default $MEMSNAP_PROCFS or /proc)"},
    {{"rank", required_argument, NULL, OPT_RANK},
     K_MT,
     0,
     "N",
     "rank carried in every record (default $RANK, $SLURM_PROCID,\n"
     "$OMPI_COMM_WORLD_RANK, $PMI_RANK)"},
    {{"record", required_argument, NULL, OPT_RECORD},
     K_MT,
     0,
     "TRACE",
     "run the command under the allocation tracker, as\n"
     "'memsnap record -o TRACE' does; OOM bundles get the trace's tail.\n"
     "TRACE must be a regular file or absent, and not the -o FILE"},
    {{"sysfs", required_argument, NULL, CLI_OPT_SYSFS},
     K_ALL,
     0,
     "DIR",
     "sysfs root (default $MEMSNAP_SYSFS or /sys)"},
    {{"tree", no_argument, NULL, OPT_TREE},
     K_MT,
     0,
     NULL,
     "follow the process tree: every descendant, summed and listed"},
    {{"warning-threshold", required_argument, NULL, OPT_WARN},
     K_TRACK,
     0,
     "PCT",
     "alert 'warning' when usage reaches PCT% of the tightest limit"},
    {{"world-size", required_argument, NULL, OPT_WORLD_SIZE},
     K_MT,
     0,
     "N",
     "world size carried in every record (default $WORLD_SIZE,\n"
     "$SLURM_NTASKS, $OMPI_COMM_WORLD_SIZE, $PMI_SIZE)"},
};
#define MON_NOPTIONS (sizeof(mon_options) / sizeof(mon_options[0]))

static const char *const mon_names[] = {"monitor", "track", "run"};

void cli_monitor_options_help(FILE *fp, enum cli_mon_kind kind)
{
    for (size_t i = 0; i < MON_NOPTIONS; i++) {
        const struct mon_option *o = &mon_options[i];
        if (!(o->kinds & (1u << kind)))
            continue;
        char head[64];
        int n = snprintf(head, sizeof(head), "  %c%c%s--%s%s%s", o->letter ? '-' : ' ',
                         o->letter ? o->letter : ' ', o->letter ? ", " : "  ", o->opt.name,
                         o->arg ? " " : "", o->arg ? o->arg : "");
        fputs(head, fp);
        fprintf(fp, "%*s", n < 31 ? 31 - n : 1, "");
        for (const char *p = o->help; *p; p++) {
            fputc(*p, fp);
            if (*p == '\n')
                fprintf(fp, "%31s", "");
        }
        fputc('\n', fp);
    }
}

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

/* Parses argv into m; returns 0, CLI_USAGE after printing the error, or -1 after --help. */
static int mon_parse(struct mon *m, int argc, char **argv, void (*usage)(FILE *))
{
    struct option longopts[MON_NOPTIONS + 1];
    char shorts[32] = "+:";
    size_t n = 0;
    for (size_t i = 0; i < MON_NOPTIONS; i++) {
        if (!(mon_options[i].kinds & (1u << m->kind)))
            continue;
        longopts[n++] = mon_options[i].opt;
        if (mon_options[i].letter) {
            size_t l = strlen(shorts);
            shorts[l] = mon_options[i].letter;
            shorts[l + 1] = mon_options[i].opt.has_arg ? ':' : '\0';
            shorts[l + 2] = '\0';
        }
    }
    memset(&longopts[n], 0, sizeof(longopts[n]));
    struct cli_common co = {.formats = 1u << MS_FORMAT_JSON | 1u << MS_FORMAT_CSV,
                            .fmt = MS_FORMAT_JSON};
    const char *name = m->name;
    unsigned long long bytes;
    int c;
    CLI_GETOPT_RESET();
    /* '+': stop at the command's name, so that its own options stay its own. */
    while ((c = getopt_long(argc, argv, shorts, longopts, NULL)) != -1) {
        switch (c) {
        case 'h':
            usage(stdout);
            return -1;
        case 'd':
            if (mon_parse_seconds(optarg, false, &m->duration_ns) != 0) {
                cli_error(name, "invalid --duration '%s' (seconds, e.g. 10 or 0.5)", optarg);
                return CLI_USAGE;
            }
            break;
        case 'i':
            if (mon_parse_seconds(optarg, false, &m->interval_ns) != 0 || m->interval_ns < 100000) {
                cli_error(name, "invalid --interval '%s' (seconds, at least 0.0001)", optarg);
                return CLI_USAGE;
            }
            break;
        case 'o':
            if (!*optarg) {
                cli_error(name, "empty --output (see 'memsnap %s --help')", name);
                return CLI_USAGE;
            }
            m->output = optarg;
            break;
        case OPT_KILL_AFTER:
            if (mon_parse_seconds(optarg, true, &m->kill_after_ns) != 0) {
                cli_error(name, "invalid --kill-after '%s' (seconds, 0 or more)", optarg);
                return CLI_USAGE;
            }
            break;
        case OPT_FULL_INTERVAL:
            if (mon_parse_seconds(optarg, true, &m->full_ns) != 0) {
                cli_error(name, "invalid --full-interval '%s' (seconds, 0 or more)", optarg);
                return CLI_USAGE;
            }
            m->walk_budget = false;
            break;
        case OPT_TREE:
            m->tree = true;
            break;
        case OPT_NO_GPU:
            m->gpu = false;
            break;
        case OPT_JOB_ID:
            if (!*optarg) {
                cli_error(name, "empty --job-id");
                return CLI_USAGE;
            }
            m->job_id = optarg;
            break;
        case OPT_RANK:
        case OPT_WORLD_SIZE: {
            long v;
            if (mon_parse_long(optarg, &v) != 0 || (c == OPT_WORLD_SIZE && v == 0)) {
                cli_error(name, "invalid --%s '%s' (%s integer)",
                          c == OPT_RANK ? "rank" : "world-size", optarg,
                          c == OPT_RANK ? "a non-negative" : "a positive");
                return CLI_USAGE;
            }
            *(c == OPT_RANK ? &m->rank : &m->world_size) = v;
            break;
        }
        case OPT_WARN:
        case OPT_CRIT:
            if (mon_parse_pct(optarg, c == OPT_WARN ? &m->warn : &m->crit) != 0) {
                cli_error(name, "invalid --%s-threshold '%s' (a percentage, 0 < PCT <= 100)",
                          c == OPT_WARN ? "warning" : "critical", optarg);
                return CLI_USAGE;
            }
            break;
        case OPT_ON_CRIT:
            if (mon_hook_parse(m, optarg) != 0)
                return CLI_USAGE;
            break;
        case OPT_LIMIT:
            if (cli_parse_bytes(optarg, &bytes) != 0 || bytes == 0) {
                cli_error(name, "invalid --memory-limit '%s' (bytes, or 512K, 64M, 1G)", optarg);
                return CLI_USAGE;
            }
            m->limit = bytes;
            break;
        case OPT_RECORD:
            if (!*optarg) {
                cli_error(name, "empty --record (see 'memsnap %s --help')", name);
                return CLI_USAGE;
            }
            m->record = optarg;
            break;
        case OPT_OOM:
            m->flight = true;
            break;
        case OPT_OOM_DIR:
            if (!*optarg) {
                cli_error(name, "empty --oom-dump-dir");
                return CLI_USAGE;
            }
            m->dump_dir = optarg;
            m->flight = true;
            break;
        case OPT_OOM_BUF:
        case OPT_OOM_DUMPS:
        case OPT_OOM_MB: {
            unsigned long v;
            const char *opt = c == OPT_OOM_BUF     ? "oom-buffer-size"
                              : c == OPT_OOM_DUMPS ? "oom-max-dumps"
                                                   : "oom-max-total-mb";
            if (cli_parse_uint(optarg, &v) != 0 || v > UINT32_MAX) {
                cli_error(name, "invalid --%s '%s' (a positive integer)", opt, optarg);
                return CLI_USAGE;
            }
            *(c == OPT_OOM_BUF ? &m->ring : c == OPT_OOM_DUMPS ? &m->max_dumps : &m->max_mb) = v;
            m->flight = true;
            break;
        }
        default:
            if (cli_shared_option(name, c, argv, &co) != 0)
                return CLI_USAGE;
        }
    }
    m->pid = co.pid;
    m->fmt = co.fmt;
    m->procfs = co.procfs;
    m->sysfs = co.sysfs;
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

int mon_options_parse(struct mon *m, int argc, char **argv, void (*usage)(FILE *))
{
    m->name = mon_names[m->kind];
    m->interval_ns = NS_PER_S;
    m->full_ns = MON_FULL_DEFAULT;
    m->kill_after_ns = MON_KILL_AFTER;
    m->walk_budget = true;
    m->gpu = true;
    m->rank = m->world_size = -1;
    m->warn = m->crit = -1;
    m->out_fd = -1;
    int rc = mon_parse(m, argc, argv, usage);
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
