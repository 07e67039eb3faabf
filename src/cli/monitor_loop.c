/*
 * monitor_loop.c - the sampling loop of `memsnap monitor`, `memsnap track` and `memsnap run`.
 *
 * One table of options serves the three commands (each accepts its subset, and --help is
 * printed from the same table). The loop watches a --pid or a command it starts (in a memory
 * cgroup made with --memory-limit, under the allocation tracker with --record), takes one
 * snapshot per --interval through one long-lived session, on an absolute CLOCK_MONOTONIC
 * schedule, and writes each record of docs/monitor-format.md with one write(2) the moment it
 * exists, so that a killed monitor leaves only whole lines. Full figures (status, stat,
 * meminfo, the cgroup, GPUs, the --tree scan) are re-read every sample when the interval is
 * at least --full-interval (100 ms); faster samples re-read statm and repeat the rest (in
 * JSON, their record is put together from the last full one's text: mon_light_sample), so
 * that 1 ms sampling costs little more than one read and one write per sample. PSS and USS
 * need the kernel to walk the page tables (smaps_rollup: about 4 ms per GiB of RSS), so by
 * default a full sample walks only when the walks so far stay under 1% of a core
 * (MON_WALK_FACTOR); samples say how old their PSS is. track adds thresholds against the
 * tightest limit (alerts on crossing, re-armed on the way down, --on-critical run with an
 * argv); every sample and event goes into the OOM flight recorder's ring, dumped when the
 * cgroup's OOM-kill count rises or the command dies by SIGKILL at its limit.
 */
#include "cli.h"
#include "monitor_loop.h"
#include "../core/internal.h" /* ms__json_string, ms__csv_string */
#include "../monitor/cglimit.h"
#include "../monitor/flight.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_S         1000000000ull
#define MON_FULL_DEFAULT (100 * 1000000ull) /* --full-interval: 100 ms */
#define MON_WALK_FACTOR  100  /* a page-table walk waits 100x its own time: 1% of a core */
#define MON_STATM_FIELDS 5    /* statm's (MS_CAPTURE_BASIC): the process section's first five */
#define MON_RECENT       3    /* samples looked at for "at its limit" */
#define MON_AT_LIMIT_PCT 95.0 /* a SIGKILL at this much of the limit is an OOM */
#define MON_STATUS_NS    (250 * 1000000ull) /* the terminal status line's refresh period */
#define MON_MEMBERS_MAX  4096               /* processes a --tree sample lists */
#define MON_KILL_AFTER   (5 * NS_PER_S) /* --kill-after: SIGKILL 5 s after --duration's SIGTERM */
#define MON_KILL_POLL_NS (10 * 1000000ull) /* how often the grace period looks for the end */
_Static_assert(MS_PF_rss_bytes == 0 && MS_PF_data_bytes == MON_STATM_FIELDS - 1,
               "statm's fields lead the process section");

extern char **environ;

/* ---------------------------------------------------------------------------------------- */
/* Options                                                                                  */
/* ---------------------------------------------------------------------------------------- */

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

/* One process of a --tree sample. */
struct mon_member {
    pid_t pid, ppid;
    char comm[64];
    long threads;      /* from stat; 0: unknown */
    char state;        /* from stat */
    uint64_t rss, pss; /* bytes */
    bool rss_ok, pss_ok;
};

/* A record other than a sample, as written in either format. */
struct mon_event {
    const char *record; /* "start", "alert", "oom", "end" */
    uint64_t time_ns;
    int64_t seq; /* the sample's, -1: none */
    /* alert */
    const char *level, *metric;
    uint64_t used, limit;
    double pct;
    /* oom */
    const char *reason, *backend, *bundle;
    pid_t pid;
    /* end */
    int exit_status, signal; /* -1: none */
};

/* The usage of the tightest limit in one snapshot. */
struct mon_usage {
    bool found;
    char metric[16]; /* "cgroup", "system", "gpu<N>" */
    uint64_t used, limit;
    double pct;
};

struct mon {
    enum cli_mon_kind kind;
    const char *name; /* "monitor", "track", "run" */
    /* options */
    pid_t pid;   /* --pid, 0 with a command */
    char **argv; /* the command, NULL with --pid */
    uint64_t interval_ns, duration_ns, full_ns;
    uint64_t kill_after_ns; /* --kill-after: SIGTERM to SIGKILL, 0: no SIGKILL */
    bool walk_budget;       /* no --full-interval: PSS walks are held to 1% of a core */
    const char *output;     /* NULL: standard output */
    ms_format fmt;
    bool tree, gpu;
    const char *procfs, *sysfs;
    const char *job_id;    /* NULL: unknown */
    long rank, world_size; /* -1: unknown */
    double warn, crit;     /* percent, < 0 when not set */
    char **hook;           /* --on-critical argv */
    char *hook_buf, *hook_path;
    uint64_t limit;     /* --memory-limit bytes, 0: none */
    const char *record; /* --record TRACE as given */
    bool flight;
    const char *dump_dir;
    unsigned long ring, max_dumps, max_mb;
    /* state */
    ms_session *s;
    struct cli_output out; /* --output; out_fd is its descriptor */
    struct cli_trace tr;   /* --record: the tracker writes tr.tmp, renamed to TRACE at the end */
    int out_fd;            /* -1: no records (run) */
    FILE *mf;              /* the record being composed */
    char *mbuf;
    size_t mlen;
    ms_writer *sw; /* the snapshot's sink, on mf */
    unsigned csv_snap_cols;
    ms__cglimit *cg;
    ms__flight *fl;
    char *path, *preload, *trace; /* the command's file, the tracker, the absolute trace */
    pid_t child;
    bool child_done;
    int child_status;
    bool sent_kill;     /* --kill-after sent the command SIGKILL */
    unsigned hooks;     /* --on-critical processes not yet reaped */
    bool started;       /* the start record is out */
    bool write_failed;  /* the output failed: stop sampling */
    bool have_full;     /* snap holds full figures */
    uint64_t walk_next; /* CLOCK_MONOTONIC before which a full sample does not walk */
    uint64_t walk_time; /* CLOCK_REALTIME of the last walk (PSS, USS), 0: none yet */
    uint64_t walk_pss, walk_uss, walk_valid; /* what it read (MS_PF_* validity bits) */
    bool walk_denied;                        /* smaps_rollup is denied: no PSS, USS */
    bool warned;                             /* a skipped sample was reported */
    uint64_t seq;                            /* samples written */
    int level;                               /* 0 ok, 1 warning, 2 critical */
    double recent[MON_RECENT];
    unsigned nrecent;
    bool oom_base_ok;
    uint64_t oom_base;   /* the snapshot cgroup's oom_kills last seen */
    int64_t cg_oom_seen; /* the --memory-limit cgroup's OOM kills already reported */
    unsigned ooms;       /* OOMs recorded */
    bool tty;
    bool status_shown;
    uint64_t status_ns, t0;
    struct mon_member *members;
    size_t nmembers;
    bool tree_ok; /* members describe the current full sample */
    ms_snapshot snap, light;
    /* JSON statm-only samples, put together from the last full sample's text (mon_light) */
    char *lt;        /* ident, then mid, then rest, then room for the record */
    size_t lt_ident; /* `,"job_id":...,"world_size":...` */
    size_t lt_mid;   /* `,"label":...,"process":{` */
    size_t lt_rest;  /* `,"<the first process field after statm's>":...` to the snapshot's end */
    size_t lt_cap;   /* bytes at lt */
    bool lt_ok;      /* the three are there */
};

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
static int mon_options_parse(struct mon *m, int argc, char **argv, void (*usage)(FILE *))
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

/* ---------------------------------------------------------------------------------------- */
/* Records                                                                                  */
/* ---------------------------------------------------------------------------------------- */

static uint64_t mon_clock(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

/* Writes str as one CSV cell (RFC 4180 quoting). Bytes that are not UTF-8 (a command line or
 * --job-id from a Latin-1 shell) become U+FFFD, as in the JSON format, so that every reader
 * (analyze, Python's csv, a spreadsheet) takes the file. */
static void mon_csv_string(FILE *fp, const char *str)
{
    char *clean = NULL;
    for (const unsigned char *p = (const unsigned char *)str; *p; p++) {
        if (*p >= 0x80) { /* not ASCII: checked (out of memory: one U+FFFD for the cell) */
            clean = ms_utf8_clean(str, strlen(str), NULL);
            str = clean ? clean : "\xef\xbf\xbd";
            break;
        }
    }
    ms__csv_string(fp, str);
    free(clean);
}

/* Writes the common head of a record: JSON `{"record":..,"time_ns":..,job identity` (no
 * closing brace) or the CSV cells record,seq,time_ns,job_id,rank,world_size. */
static void mon_head(const struct mon *m, FILE *fp, bool json, const char *record, int64_t seq,
                     uint64_t time_ns)
{
    if (json) {
        fprintf(fp, "{\"record\":\"%s\",\"time_ns\":%" PRIu64 ",\"job_id\":", record, time_ns);
        if (m->job_id)
            ms__json_string(fp, m->job_id);
        else
            fputs("null", fp);
        if (m->rank >= 0)
            fprintf(fp, ",\"rank\":%ld", m->rank);
        else
            fputs(",\"rank\":null", fp);
        if (m->world_size >= 0)
            fprintf(fp, ",\"world_size\":%ld", m->world_size);
        else
            fputs(",\"world_size\":null", fp);
        return;
    }
    fprintf(fp, "%s,", record);
    if (seq >= 0)
        fprintf(fp, "%" PRId64, seq);
    fprintf(fp, ",%" PRIu64 ",", time_ns);
    if (m->job_id)
        mon_csv_string(fp, m->job_id);
    fputc(',', fp);
    if (m->rank >= 0)
        fprintf(fp, "%ld", m->rank);
    fputc(',', fp);
    if (m->world_size >= 0)
        fprintf(fp, "%ld", m->world_size);
}

/* Starts composing a record in m->mf. */
static void mon_begin(struct mon *m)
{
    rewind(m->mf);
}

/* Ends the record composed in m->mf: its text is m->mbuf, m->mlen bytes. Returns 0, or -1
 * when composing it failed (out of memory). */
static int mon_end(struct mon *m)
{
    if (fflush(m->mf) != 0 || ferror(m->mf))
        return -1;
    long pos = ftell(m->mf);
    m->mlen = pos > 0 ? (size_t)pos : 0;
    return 0;
}

/* Writes a record with one write(2) (the rest, if the kernel takes only part); on a failure
 * prints it once and stops the output. */
static void mon_write(struct mon *m, const char *rec, size_t len)
{
    if (m->out_fd < 0 || m->write_failed)
        return;
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(m->out_fd, rec + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            const char *why = w < 0 ? strerror(errno) : "nothing written";
            if (!m->output)
                cli_error(m->name, "writing standard output failed: %s", why);
            else if (!m->out.published)
                cli_error(m->name, "cannot write %s: %s; it was left unchanged", m->output, why);
            else
                cli_error(m->name, "writing %s failed: %s; it is incomplete", m->output, why);
            m->write_failed = true;
            return;
        }
        off += (size_t)w;
    }
    /* The first record is written: the new output replaces -o FILE now rather than at the end,
     * since a monitor runs for hours and its output is read while it grows (tail -F, analyze
     * on a copy). Until here a failed start (a command that cannot run, a full disk) leaves
     * what was at FILE as it was. */
    if (m->out.fp && !m->out.published && cli_output_publish(m->name, &m->out) != 0) {
        m->out_fd = -1;
        m->write_failed = true;
    }
}

/* Writes the record composed in m->mf. */
static void mon_flush(struct mon *m)
{
    mon_write(m, m->mbuf, m->mlen);
}

/* The CSV columns after the snapshot's: GPU sums, the tree, the event, `full` and the age of
 * the PSS figures. */
static const char mon_csv_tail[] =
    "gpu.count,gpu.total_bytes,gpu.used_bytes,gpu.process_used_bytes,tree.processes,"
    "tree.rss_bytes,tree.pss_bytes,event.level,event.metric,event.used_bytes,event.limit_bytes,"
    "event.percent,event.text,full,pss_age_ns";

/* Writes the CSV header, taking the snapshot's columns from the CSV sink: a first, empty
 * snapshot written to m->sw gives its header line (GPU columns off), and later rows come
 * without one. Returns 0 or -1. */
static int mon_csv_header(struct mon *m)
{
    static ms_snapshot empty; /* large: not on the stack */
    ms_snapshot_init(&empty);
    mon_begin(m);
    if (ms_writer_snapshot(m->sw, &empty) != 0 || mon_end(m) != 0)
        return -1;
    char *nl = memchr(m->mbuf, '\n', m->mlen);
    if (!nl)
        return -1;
    size_t hlen = (size_t)(nl - m->mbuf);
    char *snap_header = strndup(m->mbuf, hlen);
    if (!snap_header)
        return -1;
    m->csv_snap_cols = 1;
    for (size_t i = 0; i < hlen; i++)
        m->csv_snap_cols += snap_header[i] == ',';
    mon_begin(m);
    fprintf(m->mf, "record,seq,time_ns,job_id,rank,world_size,%s,%s\n", snap_header, mon_csv_tail);
    free(snap_header);
    if (mon_end(m) != 0)
        return -1;
    mon_flush(m);
    return 0;
}

/* The sum over the GPUs of one GPU field: false when a GPU lacks it. */
static bool mon_gpu_sum(const ms_snapshot *s, int field, uint64_t *sum)
{
    *sum = 0;
    if (!(s->captured & MS_CAPTURE_GPU) || s->gpu_count == 0)
        return false;
    const struct ms__field *f = &ms__gpu_fields[field];
    for (uint32_t i = 0; i < s->gpu_count && i < MS_GPU_MAX; i++) {
        if (!(s->gpus[i].valid >> f->bit & 1u))
            return false;
        if (__builtin_add_overflow(*sum, ms__gpu_value(&s->gpus[i], f), sum))
            *sum = UINT64_MAX; /* saturated, as the GPU backends' own sums */
    }
    return true;
}

/* The host limits of the start record, in JSON or as key=value pairs. */
static void mon_limits(const struct mon *m, FILE *fp, bool json)
{
    const ms_snapshot *s = &m->snap;
    bool have = m->have_full;
    bool cg = have && s->cgroup.version != MS_CGROUP_NONE && !s->cgroup.unlimited &&
              ms_valid(&s->cgroup, MS_CF_max_bytes);
    bool sys = have && ms_valid(&s->system, MS_SF_total_bytes);
    uint64_t gpu_total;
    bool gpu = have && mon_gpu_sum(s, MS_GF_total_bytes, &gpu_total);
    const char *const names[] = {"cgroup_max_bytes", "system_total_bytes", "gpu_total_bytes"};
    const bool ok[] = {cg, sys, gpu};
    const uint64_t v[] = {cg ? s->cgroup.max_bytes : 0, sys ? s->system.total_bytes : 0,
                          gpu ? gpu_total : 0};
    for (int i = 0; i < 3; i++) {
        if (json)
            fprintf(fp, "%s\"%s\":", i ? "," : "", names[i]);
        else
            fprintf(fp, "%s%s=", i ? ";" : "", names[i]);
        if (ok[i])
            fprintf(fp, "%" PRIu64, v[i]);
        else if (json)
            fputs("null", fp);
    }
}

/* Composes an event record (start, alert, oom, end) in m->mf, in JSON or in CSV. */
static void mon_compose_event(struct mon *m, const struct mon_event *e, bool json)
{
    FILE *fp = m->mf;
    mon_begin(m);
    mon_head(m, fp, json, e->record, e->seq, e->time_ns);
    bool start = strcmp(e->record, "start") == 0, alert = strcmp(e->record, "alert") == 0;
    bool oom = strcmp(e->record, "oom") == 0;
    double interval = (double)m->interval_ns / 1e9, full = (double)m->full_ns / 1e9;
    pid_t pid = m->child ? m->child : m->pid;
    if (json) {
        if (start) {
            fprintf(fp, ",\"schema\":\"memsnap.monitor/1\",\"pid\":%d,\"command\":", (int)pid);
            if (m->argv) {
                fputc('[', fp);
                for (int i = 0; m->argv[i]; i++) {
                    fputs(i ? "," : "", fp);
                    ms__json_string(fp, m->argv[i]);
                }
                fputc(']', fp);
            } else {
                fputs("null", fp);
            }
            fprintf(fp, ",\"interval_s\":%.9g,\"full_interval_s\":%.9g,\"tree\":%s,\"limits\":{",
                    interval, full, m->tree ? "true" : "false");
            mon_limits(m, fp, true);
            fputs("},\"thresholds\":{\"warning_pct\":", fp);
            if (m->warn >= 0)
                fprintf(fp, "%.9g", m->warn);
            else
                fputs("null", fp);
            fputs(",\"critical_pct\":", fp);
            if (m->crit >= 0)
                fprintf(fp, "%.9g", m->crit);
            else
                fputs("null", fp);
            fputs("},\"memory_limit_bytes\":", fp);
            if (m->limit)
                fprintf(fp, "%" PRIu64, m->limit);
            else
                fputs("null", fp);
            fputs(",\"trace\":", fp);
            if (m->trace)
                ms__json_string(fp, m->trace);
            else
                fputs("null", fp);
        } else if (alert) {
            fprintf(fp,
                    ",\"seq\":%" PRId64
                    ",\"level\":\"%s\",\"metric\":\"%s\",\"used_bytes\":%" PRIu64
                    ",\"limit_bytes\":%" PRIu64 ",\"percent\":%.2f",
                    e->seq, e->level, e->metric, e->used, e->limit, e->pct);
        } else if (oom) {
            fprintf(fp, ",\"reason\":\"%s\",\"backend\":\"%s\",\"pid\":%d,\"bundle\":", e->reason,
                    e->backend, (int)e->pid);
            if (e->bundle)
                ms__json_string(fp, e->bundle);
            else
                fputs("null", fp);
        } else { /* end */
            fprintf(fp, ",\"samples\":%" PRIu64 ",\"exit_status\":", m->seq);
            if (e->exit_status >= 0)
                fprintf(fp, "%d", e->exit_status);
            else
                fputs("null", fp);
            fputs(",\"signal\":", fp);
            if (e->signal > 0)
                fprintf(fp, "%d", e->signal);
            else
                fputs("null", fp);
            fprintf(fp, ",\"reason\":\"%s\"", e->reason);
        }
        fputs("}\n", fp);
        return;
    }
    /* CSV: empty snapshot, GPU and tree cells, then the event's. */
    for (unsigned i = 0; i < m->csv_snap_cols + 7; i++)
        fputc(',', fp);
    if (alert) {
        fprintf(fp, ",%s,%s,%" PRIu64 ",%" PRIu64 ",%.2f,", e->level, e->metric, e->used, e->limit,
                e->pct);
    } else {
        /* level, metric, used, limit, percent empty; the text carries key=value pairs */
        fputs(",,", fp);
        if (oom)
            fputs(e->backend, fp);
        fputs(",,,,", fp);
        char *text = NULL;
        size_t tlen = 0;
        FILE *t = open_memstream(&text, &tlen);
        if (t) {
            if (start) {
                fprintf(t, "pid=%d;interval_s=%.9g;full_interval_s=%.9g;tree=%s;", (int)pid,
                        interval, full, m->tree ? "true" : "false");
                mon_limits(m, t, false);
                fputs(";warning_pct=", t);
                if (m->warn >= 0)
                    fprintf(t, "%.9g", m->warn);
                fputs(";critical_pct=", t);
                if (m->crit >= 0)
                    fprintf(t, "%.9g", m->crit);
                fputs(";memory_limit_bytes=", t);
                if (m->limit)
                    fprintf(t, "%" PRIu64, m->limit);
                fprintf(t, ";trace=%s;command=", m->trace ? m->trace : "");
                for (int i = 0; m->argv && m->argv[i]; i++)
                    fprintf(t, "%s%s", i ? " " : "", m->argv[i]);
            } else if (oom) {
                fprintf(t, "reason=%s;pid=%d;bundle=%s", e->reason, (int)e->pid,
                        e->bundle ? e->bundle : "");
            } else {
                fprintf(t, "reason=%s;samples=%" PRIu64 ";exit_status=", e->reason, m->seq);
                if (e->exit_status >= 0)
                    fprintf(t, "%d", e->exit_status);
                fputs(";signal=", t);
                if (e->signal > 0)
                    fprintf(t, "%d", e->signal);
            }
            fclose(t);
        }
        if (text)
            mon_csv_string(fp, text);
        free(text);
    }
    fputs(",,\n", fp); /* full, pss_age_ns: empty */
}

/* Writes an event record to the output and keeps it in the flight recorder's ring. */
static void mon_event(struct mon *m, const struct mon_event *e)
{
    bool json = m->fmt == MS_FORMAT_JSON;
    if (m->fl) {
        mon_compose_event(m, e, true);
        if (mon_end(m) == 0 && m->mlen > 0) {
            m->mbuf[m->mlen - 1] = '\0'; /* the newline */
            ms__flight_event(m->fl, m->mbuf);
            m->mbuf[m->mlen - 1] = '\n';
            if (json) {
                mon_flush(m);
                return;
            }
        }
    }
    if (m->out_fd < 0)
        return;
    mon_compose_event(m, e, json);
    if (mon_end(m) == 0)
        mon_flush(m);
}

/* Writes the start record once, with the limits of the first full sample when there is one
 * (and that sample's time, so that no record says it came before the start). */
static void mon_start(struct mon *m)
{
    if (m->started)
        return;
    m->started = true;
    uint64_t now = mon_clock(CLOCK_REALTIME);
    if (m->have_full && m->snap.timestamp_ns && m->snap.timestamp_ns < now)
        now = m->snap.timestamp_ns;
    struct mon_event e = {.record = "start", .time_ns = now, .seq = -1};
    mon_event(m, &e);
}

static const char *mon_find(const char *from, const char *to, const char *what)
{
    size_t n = strlen(what);
    for (const char *p = from; p && p + n <= to; p = memchr(p + 1, what[0], (size_t)(to - p - 1)))
        if (memcmp(p, what, n) == 0)
            return p;
    return NULL;
}

/* After a JSON full sample composed in m->mf (fflushed up to here), with its snapshot from
 * snap_at to snap_end: keeps the text that the statm-only samples until the next full one
 * share with it. The snapshot sink writes schema, timestamp_ns, monotonic_ns, label, pid,
 * then the process fields, statm's first; a key is found only where it starts a member
 * (quotes inside strings are escaped). Any surprise leaves the fast path off. */
static void mon_light_prepare(struct mon *m, long snap_at, long snap_end)
{
    m->lt_ok = false;
    if (fflush(m->mf) != 0 || snap_at <= 0 || snap_end <= snap_at || (size_t)snap_end > m->mlen)
        return;
    const char *rec = m->mbuf, *snap = rec + snap_at, *end = rec + snap_end;
    const struct ms__field *pf = ms__sections[MS__SEC_PROCESS].fields;
    char after[80];
    snprintf(after, sizeof(after), ",\"%s\":", pf[MON_STATM_FIELDS].name);
    const char *ident = mon_find(rec, snap, ",\"job_id\":");
    const char *seq = ident ? mon_find(ident, snap, ",\"seq\":") : NULL;
    const char *label = mon_find(snap, end, ",\"label\":");
    const char *proc = label ? mon_find(label, end, ",\"process\":{") : NULL;
    const char *rest = proc ? mon_find(proc, end, after) : NULL;
    static const char head[] = "{\"schema\":\"" MS_SNAPSHOT_SCHEMA "\",\"timestamp_ns\":";
    if (!seq || !rest || memcmp(snap, head, sizeof(head) - 1) != 0)
        return;
    size_t ni = (size_t)(seq - ident), nm = (size_t)(proc + sizeof(",\"process\":{") - 1 - label);
    size_t nr = (size_t)(end - rest), need = 2 * (ni + nm + nr) + 1024;
    if (need > m->lt_cap) {
        char *b = realloc(m->lt, need);
        if (!b)
            return;
        m->lt = b;
        m->lt_cap = need;
    }
    memcpy(m->lt, ident, ni);
    memcpy(m->lt + ni, label, nm);
    memcpy(m->lt + ni + nm, rest, nr);
    m->lt_ident = ni;
    m->lt_mid = nm;
    m->lt_rest = nr;
    m->lt_ok = true;
}

#define MON_LIT(q, lit) (memcpy(q, "" lit, sizeof(lit) - 1), (q) + sizeof(lit) - 1)

/* Writes the JSON record of a statm-only sample, put together from the last full one's text: what
 * mon_compose_sample writes, with fresh times, seq, PSS age and statm figures. Returns false
 * (nothing done) when the fast path is off. */
static bool mon_light_sample(struct mon *m)
{
    if (!m->lt_ok)
        return false;
    const ms_snapshot *s = &m->snap;
    const struct ms__field *pf = ms__sections[MS__SEC_PROCESS].fields;
    size_t kept = m->lt_ident + m->lt_mid + m->lt_rest;
    char *rec = m->lt + kept, *q = rec;
    q = MON_LIT(q, "{\"record\":\"sample\",\"time_ns\":");
    q = ms__put_num(q, s->timestamp_ns, false);
    memcpy(q, m->lt, m->lt_ident);
    q = MON_LIT(q + m->lt_ident, ",\"seq\":");
    q = ms__put_num(q, m->seq, false);
    q = MON_LIT(q, ",\"full\":false,\"pss_age_ns\":");
    if (m->walk_time)
        q = ms__put_num(q, s->timestamp_ns > m->walk_time ? s->timestamp_ns - m->walk_time : 0,
                        false);
    else
        q = MON_LIT(q, "null");
    q = MON_LIT(q, ",\"snapshot\":{\"schema\":\"" MS_SNAPSHOT_SCHEMA "\",\"timestamp_ns\":");
    q = ms__put_num(q, s->timestamp_ns, false);
    q = MON_LIT(q, ",\"monotonic_ns\":");
    q = ms__put_num(q, s->monotonic_ns, false);
    memcpy(q, m->lt + m->lt_ident, m->lt_mid);
    q += m->lt_mid;
    for (int k = 0; k < MON_STATM_FIELDS; k++)
        q = ms__json_field(q, &pf[k], s->process.valid, s, false, k > 0);
    memcpy(q, m->lt + m->lt_ident + m->lt_mid, m->lt_rest);
    q += m->lt_rest;
    if (m->tree)
        q = MON_LIT(q, ",\"tree\":null");
    q = MON_LIT(q, "}\n");
    mon_write(m, rec, (size_t)(q - rec));
    return true;
}

/* Composes the sample record of m->snap (and the tree) in m->mf. */
static void mon_compose_sample(struct mon *m, bool full, bool json)
{
    FILE *fp = m->mf;
    const ms_snapshot *s = &m->snap;
    bool tree = m->tree && full && m->tree_ok;
    uint64_t rss = 0, pss = 0;
    bool pss_ok = true;
    for (size_t i = 0; tree && i < m->nmembers; i++) {
        /* saturated: a corrupt tree's figures never wrap to a small sum */
        if (__builtin_add_overflow(rss, m->members[i].rss_ok ? m->members[i].rss : 0, &rss))
            rss = UINT64_MAX;
        if (__builtin_add_overflow(pss, m->members[i].pss, &pss))
            pss = UINT64_MAX;
        pss_ok = pss_ok && m->members[i].pss_ok;
    }
    char age[24] = "null"; /* since the walk that read PSS and USS */
    if (m->walk_time)
        snprintf(age, sizeof(age), "%" PRIu64,
                 s->timestamp_ns > m->walk_time ? s->timestamp_ns - m->walk_time : 0);
    mon_begin(m);
    mon_head(m, fp, json, "sample", (int64_t)m->seq, s->timestamp_ns);
    if (json) {
        fprintf(fp, ",\"seq\":%" PRIu64 ",\"full\":%s,\"pss_age_ns\":%s,\"snapshot\":", m->seq,
                full ? "true" : "false", age);
        long snap_at = ftell(fp);
        ms_writer_snapshot(m->sw, s);
        fseek(fp, -1, SEEK_CUR); /* the sink's newline */
        if (full)
            mon_light_prepare(m, snap_at, ftell(fp));
        if (m->tree && !tree) {
            fputs(",\"tree\":null", fp);
        } else if (tree) {
            fprintf(fp, ",\"tree\":{\"processes\":%zu,\"rss_bytes\":%" PRIu64 ",\"pss_bytes\":",
                    m->nmembers, rss);
            if (pss_ok)
                fprintf(fp, "%" PRIu64, pss);
            else
                fputs("null", fp);
            fputs(",\"members\":[", fp);
            for (size_t i = 0; i < m->nmembers; i++) {
                const struct mon_member *p = &m->members[i];
                fprintf(fp, "%s{\"pid\":%d,\"ppid\":%d,\"comm\":", i ? "," : "", (int)p->pid,
                        (int)p->ppid);
                ms__json_string(fp, p->comm);
                fputs(",\"rss_bytes\":", fp);
                if (p->rss_ok)
                    fprintf(fp, "%" PRIu64, p->rss);
                else
                    fputs("null", fp);
                fputs(",\"pss_bytes\":", fp);
                if (p->pss_ok)
                    fprintf(fp, "%" PRIu64, p->pss);
                else
                    fputs("null", fp);
                fputc('}', fp);
            }
            fputs("]}", fp);
        }
        fputs("}\n", fp);
        return;
    }
    fputc(',', fp);
    ms_writer_snapshot(m->sw, s);
    fseek(fp, -1, SEEK_CUR);
    if (s->captured & MS_CAPTURE_GPU)
        fprintf(fp, ",%u", (unsigned)s->gpu_count);
    else
        fputc(',', fp);
    static const int sums[] = {MS_GF_total_bytes, MS_GF_used_bytes, MS_GF_process_used_bytes};
    for (int i = 0; i < 3; i++) {
        uint64_t v;
        fputc(',', fp);
        if (mon_gpu_sum(s, sums[i], &v))
            fprintf(fp, "%" PRIu64, v);
    }
    if (tree) {
        fprintf(fp, ",%zu,%" PRIu64 ",", m->nmembers, rss);
        if (pss_ok)
            fprintf(fp, "%" PRIu64, pss);
    } else {
        fputs(",,,", fp);
    }
    fprintf(fp, ",,,,,,,%s,%s\n", full ? "true" : "false", m->walk_time ? age : "");
}

/* ---------------------------------------------------------------------------------------- */
/* The process tree                                                                         */
/* ---------------------------------------------------------------------------------------- */

/* Reads "<procfs>/<pid>/stat" into p (zeroed first): pid, parent, command name and, where the
 * line has it, the number of threads; the state into *state unless NULL. (Not its RSS: stat's
 * reads the kernel's per-CPU counters approximately, statm's exactly.) Returns 0 or -1. */
static int mon_read_stat(const char *procfs, pid_t pid, struct mon_member *p, char *state)
{
    char path[PATH_MAX], buf[1024];
    snprintf(path, sizeof(path), "%s/%d/stat", procfs, (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    char *open_paren = strchr(buf, '('), *close_paren = strrchr(buf, ')');
    if (!open_paren || !close_paren || close_paren < open_paren)
        return -1;
    int ppid_v;
    char st;
    long threads = 0; /* field 20 */
    int got = sscanf(close_paren + 1,
                     " %c %d %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %ld", &st,
                     &ppid_v, &threads);
    if (got < 2)
        return -1;
    memset(p, 0, sizeof(*p));
    p->pid = pid;
    p->ppid = (pid_t)ppid_v;
    size_t clen = (size_t)(close_paren - open_paren - 1);
    if (clen >= sizeof(p->comm))
        clen = sizeof(p->comm) - 1;
    memcpy(p->comm, open_paren + 1, clen);
    p->threads = got == 3 && threads > 0 ? threads : 0;
    p->state = st;
    if (state)
        *state = st;
    return 0;
}

static int mon_member_cmp(const void *a, const void *b)
{
    pid_t x = ((const struct mon_member *)a)->pid, y = ((const struct mon_member *)b)->pid;
    return (x > y) - (x < y);
}

/* Appends pid (read from its stat) to m->members, unless it is root, ended or the list is
 * full. */
static void mon_member_add(struct mon *m, const char *procfs, pid_t pid, pid_t parent, pid_t root,
                           size_t *nm)
{
    /* its stat must name parent: not a pid reused since the list was read */
    if (pid > 0 && pid != root && *nm < MON_MEMBERS_MAX &&
        mon_read_stat(procfs, pid, &m->members[*nm], NULL) == 0 && m->members[*nm].ppid == parent)
        (*nm)++;
}

/* Adds the children listed in the file at path (pids and spaces) to m->members. */
static void mon_children_file(struct mon *m, const char *procfs, const char *path, pid_t parent,
                              pid_t root, size_t *nm)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return; /* the thread ended */
    char buf[4096];
    ssize_t got;
    long v = -1; /* the pid being read, across reads */
    while ((got = read(fd, buf, sizeof(buf))) > 0)
        for (ssize_t i = 0; i < got; i++)
            if (buf[i] >= '0' && buf[i] <= '9') {
                v = v > INT_MAX / 10 ? INT_MAX : (v < 0 ? 0 : v * 10) + (buf[i] - '0');
            } else if (v >= 0) {
                mon_member_add(m, procfs, (pid_t)v, parent, root, nm);
                v = -1;
            }
    if (v >= 0)
        mon_member_add(m, procfs, (pid_t)v, parent, root, nm);
    close(fd);
}

/* Root and its descendants into m->members, breadth first, through the kernel's lists of each
 * thread's children (<procfs>/PID/task/TID/children): the cost follows the tree, not the
 * number of processes on the machine. Each one's children are in pid order. Returns how many
 * (0: root is gone), or SIZE_MAX where there are no such lists (a kernel without
 * CONFIG_PROC_CHILDREN, a fixture tree). */
static size_t mon_tree_children(struct mon *m, const char *procfs, pid_t root)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%d/task/%d/children", procfs, (int)root, (int)root);
    if (access(path, F_OK) != 0)
        return SIZE_MAX;
    if (mon_read_stat(procfs, root, &m->members[0], NULL) != 0)
        return 0;
    size_t nm = 1;
    for (size_t k = 0; k < nm && nm < MON_MEMBERS_MAX; k++) {
        size_t first = nm;
        int parent = (int)m->members[k].pid;
        /* one live thread: its list, without a look at task/ (a leader that exited, state Z,
         * left its children to another thread) */
        if (m->members[k].threads == 1 && m->members[k].state != 'Z') {
            snprintf(path, sizeof(path), "%s/%d/task/%d/children", procfs, parent, parent);
            mon_children_file(m, procfs, path, parent, root, &nm);
        } else {
            snprintf(path, sizeof(path), "%s/%d/task", procfs, parent);
            DIR *d = opendir(path);
            struct dirent *e;
            while (d && (e = readdir(d)) != NULL)
                if (e->d_name[0] >= '1' && e->d_name[0] <= '9') {
                    snprintf(path, sizeof(path), "%s/%d/task/%s/children", procfs, parent,
                             e->d_name);
                    mon_children_file(m, procfs, path, parent, root, &nm);
                }
            if (d)
                closedir(d);
        }
        qsort(m->members + first, nm - first, sizeof(*m->members), mon_member_cmp);
        size_t w = first; /* once each: a child moved between two threads' lists as read */
        for (size_t i = first; i < nm; i++)
            if (i == first || m->members[i].pid != m->members[w - 1].pid)
                m->members[w++] = m->members[i];
        nm = w;
    }
    return nm;
}

/* The same by one scan of every <procfs>/PID/stat, matched by ppid (where there are no
 * children lists). */
static size_t mon_tree_all(struct mon *m, const char *procfs, pid_t root)
{
    DIR *d = opendir(procfs);
    if (!d)
        return 0;
    struct mon_member *all = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9' ||
            strspn(e->d_name, "0123456789") != strlen(e->d_name))
            continue;
        if (n == cap) {
            struct mon_member *na = realloc(all, (cap = cap ? cap * 2 : 256) * sizeof(*all));
            if (!na)
                break;
            all = na;
        }
        if (mon_read_stat(procfs, (pid_t)atoi(e->d_name), &all[n], NULL) == 0)
            n++;
    }
    closedir(d);
    /* Breadth first from root: members[] grows as children are found. */
    size_t nm = 0;
    for (size_t i = 0; i < n; i++)
        if (all[i].pid == root) {
            m->members[nm++] = all[i];
            break;
        }
    for (size_t k = 0; k < nm; k++)
        for (size_t i = 0; i < n && nm < MON_MEMBERS_MAX; i++)
            if (all[i].ppid == m->members[k].pid && all[i].pid != root)
                m->members[nm++] = all[i];
    free(all);
    return nm;
}

/* Finds root and every descendant into m->members, root first, with their RSS and PSS
 * (root's from m->snap). Without walk, the members keep the PSS of the last walk (none for a
 * new one). tree_ok tells whether it worked. Returns the CPU ns spent reading the members
 * (their walks), not finding them. */
static uint64_t mon_tree_scan(struct mon *m, pid_t root, bool walk)
{
    const char *procfs = ms_session_procfs(m->s);
    m->tree_ok = false;
    /* Without a walk: the last members by pid, for their PSS, before members[] changes. */
    struct mon_member *prev = NULL;
    size_t nprev = 0;
    if (!walk && m->nmembers && (prev = malloc(m->nmembers * sizeof(*prev)))) {
        memcpy(prev, m->members, m->nmembers * sizeof(*prev));
        qsort(prev, m->nmembers, sizeof(*prev), mon_member_cmp);
        nprev = m->nmembers;
    }
    size_t nm = mon_tree_children(m, procfs, root);
    if (nm == SIZE_MAX)
        nm = mon_tree_all(m, procfs, root);
    if (nm == 0) {
        free(prev);
        return 0;
    }
    m->nmembers = nm;
    uint64_t t0 = mon_clock(CLOCK_THREAD_CPUTIME_ID);
    for (size_t k = 0; k < nm; k++) {
        struct mon_member *p = &m->members[k];
        const ms_snapshot *s = &m->snap;
        if (k > 0) {
            unsigned what = MS_CAPTURE_BASIC | (walk ? MS_CAPTURE_PSS : 0u);
            /* a member of another user's: its RSS all the same, PSS null */
            if (cli_capture(m->s, p->pid, what, &m->light, NULL, 0) != 0)
                continue; /* ended since the scan: listed without figures */
            s = &m->light;
        }
        p->rss_ok = ms_valid(&s->process, MS_PF_rss_bytes);
        p->rss = s->process.rss_bytes;
        p->pss_ok = ms_valid(&s->process, MS_PF_pss_bytes);
        p->pss = s->process.pss_bytes;
        const struct mon_member *old;
        if (!walk && k > 0 && prev &&
            (old = bsearch(p, prev, nprev, sizeof(*prev), mon_member_cmp)) != NULL) {
            p->pss_ok = old->pss_ok;
            p->pss = old->pss;
        }
    }
    free(prev);
    m->tree_ok = true;
    return mon_clock(CLOCK_THREAD_CPUTIME_ID) - t0;
}

/* ---------------------------------------------------------------------------------------- */
/* Limits, alerts, OOMs                                                                     */
/* ---------------------------------------------------------------------------------------- */

/* The usage of the tightest limit (the highest percentage) in s: the cgroup's memory.max
 * when it has one, the system's memory (total - available) and, unless host_only, each GPU's
 * total. */
static struct mon_usage mon_tightest(const ms_snapshot *s, bool host_only)
{
    struct mon_usage u = {0};
    const ms_cgroup_mem *cg = &s->cgroup;
    const ms_system_mem *sy = &s->system;
#define MON_CANDIDATE(name, usedv, limitv)                                                         \
    do {                                                                                           \
        double pct_ = 100.0 * (double)(usedv) / (double)(limitv);                                  \
        if (!u.found || pct_ > u.pct) {                                                            \
            u.found = true;                                                                        \
            snprintf(u.metric, sizeof(u.metric), "%s", name);                                      \
            u.used = (usedv);                                                                      \
            u.limit = (limitv);                                                                    \
            u.pct = pct_;                                                                          \
        }                                                                                          \
    } while (0)
    if (cg->version != MS_CGROUP_NONE && !cg->unlimited && ms_valid(cg, MS_CF_max_bytes) &&
        ms_valid(cg, MS_CF_current_bytes) && cg->max_bytes > 0)
        MON_CANDIDATE("cgroup", cg->current_bytes, cg->max_bytes);
    if (ms_valid(sy, MS_SF_total_bytes) && sy->total_bytes > 0 &&
        (ms_valid(sy, MS_SF_available_bytes) || ms_valid(sy, MS_SF_free_bytes))) {
        uint64_t avail = ms_valid(sy, MS_SF_available_bytes) ? sy->available_bytes : sy->free_bytes;
        MON_CANDIDATE("system", avail < sy->total_bytes ? sy->total_bytes - avail : 0,
                      sy->total_bytes);
    }
    for (uint32_t i = 0; !host_only && (s->captured & MS_CAPTURE_GPU) && i < s->gpu_count; i++) {
        const ms_gpu *g = &s->gpus[i];
        if (ms_valid(g, MS_GF_total_bytes) && ms_valid(g, MS_GF_used_bytes) && g->total_bytes) {
            char name[16];
            snprintf(name, sizeof(name), "gpu%u", (unsigned)g->index);
            MON_CANDIDATE(name, g->used_bytes, g->total_bytes);
        }
    }
#undef MON_CANDIDATE
    return u;
}

/* Clears the terminal status line before a line on stderr. */
static void mon_status_clear(struct mon *m)
{
    if (m->status_shown) {
        fputs("\r\033[K", stderr);
        m->status_shown = false;
    }
}

/* Runs --on-critical with the alert in MEMSNAP_ALERT_* (its stdout goes to stderr, so that it
 * never mixes with the records); not waited for here. */
static void mon_run_hook(struct mon *m, const struct mon_event *e, pid_t pid)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **envp = calloc(n + 16, sizeof(*envp));
    char vars[12][160];
    if (!envp) {
        cli_error(m->name, "--on-critical: out of memory");
        return;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "MEMSNAP_ALERT_", 14) != 0)
            envp[k++] = environ[i];
    int v = 0;
    snprintf(vars[v++], sizeof(vars[0]), "MEMSNAP_ALERT_LEVEL=%s", e->level);
    snprintf(vars[v++], sizeof(vars[0]), "MEMSNAP_ALERT_METRIC=%s", e->metric);
    snprintf(vars[v++], sizeof(vars[0]), "MEMSNAP_ALERT_USED_BYTES=%" PRIu64, e->used);
    snprintf(vars[v++], sizeof(vars[0]), "MEMSNAP_ALERT_LIMIT_BYTES=%" PRIu64, e->limit);
    snprintf(vars[v++], sizeof(vars[0]), "MEMSNAP_ALERT_PERCENT=%.2f", e->pct);
    snprintf(vars[v++], sizeof(vars[0]), "MEMSNAP_ALERT_PID=%d", (int)pid);
    snprintf(vars[v++], sizeof(vars[0]), "MEMSNAP_ALERT_SEQ=%" PRId64, e->seq);
    snprintf(vars[v++], sizeof(vars[0]), "MEMSNAP_ALERT_TIME_NS=%" PRIu64, e->time_ns);
    snprintf(vars[v++], sizeof(vars[0]), "MEMSNAP_ALERT_JOB_ID=%.120s", m->job_id ? m->job_id : "");
    if (m->rank >= 0)
        snprintf(vars[v++], sizeof(vars[0]), "MEMSNAP_ALERT_RANK=%ld", m->rank);
    if (m->world_size >= 0)
        snprintf(vars[v++], sizeof(vars[0]), "MEMSNAP_ALERT_WORLD_SIZE=%ld", m->world_size);
    for (int i = 0; i < v; i++)
        envp[k++] = vars[i];
    envp[k] = NULL;
    fflush(NULL);
    pid_t h = fork();
    if (h == 0) {
        dup2(STDERR_FILENO, STDOUT_FILENO);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        environ = envp;
        int err = cli_exec(m->hook_path, m->hook);
        dprintf(STDERR_FILENO, "memsnap %s: --on-critical: cannot execute '%s': %s\n", m->name,
                m->hook[0], strerror(err));
        _exit(127);
    }
    if (h < 0)
        cli_error(m->name, "--on-critical: fork: %s", strerror(errno));
    else
        m->hooks++;
    free(envp);
}

/* Checks the thresholds on the sample just written: an alert when the level rises (warning or
 * critical) and "ok" when usage falls under the warning threshold; falling from critical to
 * warning re-arms critical without an alert. */
static void mon_thresholds(struct mon *m, pid_t pid)
{
    if (m->warn < 0 && m->crit < 0)
        return;
    struct mon_usage u = mon_tightest(&m->snap, false);
    if (!u.found)
        return;
    int level = m->crit >= 0 && u.pct >= m->crit ? 2 : m->warn >= 0 && u.pct >= m->warn ? 1 : 0;
    int old = m->level;
    m->level = level;
    if (level <= old && !(level == 0 && old > 0))
        return;
    static const char *const names[] = {"ok", "warning", "critical"};
    struct mon_event e = {.record = "alert",
                          .time_ns = m->snap.timestamp_ns,
                          .seq = (int64_t)m->seq,
                          .level = names[level],
                          .metric = u.metric,
                          .used = u.used,
                          .limit = u.limit,
                          .pct = u.pct};
    mon_event(m, &e);
    char used[32], limit[32], who[96] = "";
    ms_format_bytes(used, sizeof(used), u.used);
    ms_format_bytes(limit, sizeof(limit), u.limit);
    if (m->job_id || m->rank >= 0) {
        int w = snprintf(who, sizeof(who), " [");
        if (m->job_id)
            w += snprintf(who + w, sizeof(who) - (size_t)w, "job %.40s%s", m->job_id,
                          m->rank >= 0 ? ", " : "");
        if (m->rank >= 0 && w < (int)sizeof(who))
            w += snprintf(who + w, sizeof(who) - (size_t)w, "rank %ld", m->rank);
        if (w < (int)sizeof(who))
            snprintf(who + w, sizeof(who) - (size_t)w, "]");
    }
    mon_status_clear(m);
    cli_error(m->name, "%s: %s at %.1f%% of its limit (%s of %s), pid %d%s", names[level], u.metric,
              u.pct, used, limit, (int)pid, who);
    if (level == 2 && m->hook)
        mon_run_hook(m, &e, pid);
}

/* Records an OOM of pid: the flight recorder's bundle (when it is on), the "oom" record and
 * one line on stderr. */
static void mon_oom(struct mon *m, const char *reason, pid_t pid)
{
    char bundle[PATH_MAX] = "", err[512] = "";
    bool dumped = false;
    m->ooms++;
    if (m->fl) {
        /* metadata.json's extra members: who watched, the limit, the job, the signal */
        char *extra = NULL;
        size_t elen = 0;
        FILE *fp = open_memstream(&extra, &elen);
        if (fp) {
            struct mon_usage u = mon_tightest(&m->snap, true);
            fprintf(fp, "{\"command\":\"%s\",\"memory_limit_bytes\":", m->name);
            if (m->limit)
                fprintf(fp, "%" PRIu64, m->limit);
            else
                fputs("null", fp);
            if (u.found && m->have_full)
                fprintf(fp, ",\"last_metric\":\"%s\",\"last_percent\":%.2f", u.metric, u.pct);
            fputs(",\"job_id\":", fp);
            if (m->job_id)
                ms__json_string(fp, m->job_id);
            else
                fputs("null", fp);
            fputs(",\"rank\":", fp);
            if (m->rank >= 0)
                fprintf(fp, "%ld", m->rank);
            else
                fputs("null", fp);
            fputs(",\"world_size\":", fp);
            if (m->world_size >= 0)
                fprintf(fp, "%ld", m->world_size);
            else
                fputs("null", fp);
            fputs(",\"exit_signal\":", fp);
            if (m->child_done && WIFSIGNALED(m->child_status))
                fprintf(fp, "%d}", WTERMSIG(m->child_status));
            else
                fputs("null}", fp);
            if (fclose(fp) != 0) {
                free(extra);
                extra = NULL;
            }
        }
        int rc = ms__flight_dump(m->fl, "cpu", pid, reason, extra, bundle, sizeof(bundle), err,
                                 sizeof(err));
        free(extra);
        dumped = rc == 0;
        mon_status_clear(m);
        if (!dumped)
            cli_error(m->name, "OOM flight recorder: cannot write a bundle: %s", err);
    }
    struct mon_event e = {.record = "oom",
                          .time_ns = mon_clock(CLOCK_REALTIME),
                          .seq = -1,
                          .reason = reason,
                          .backend = "cpu",
                          .pid = pid,
                          .bundle = dumped ? bundle : NULL};
    mon_start(m);
    mon_event(m, &e);
    if (dumped) {
        mon_status_clear(m);
        cli_error(m->name, "out of memory (%s) in pid %d: flight recorder bundle %s", reason,
                  (int)pid, bundle);
    }
}

/* Looks for an OOM kill in the cgroup of the sample just taken (its oom_kills rose). */
static void mon_check_oom(struct mon *m, pid_t pid)
{
    const ms_cgroup_mem *cg = &m->snap.cgroup;
    if (!ms_valid(cg, MS_CF_oom_kills))
        return;
    bool ours = m->cg && strcmp(cg->path, ms__cglimit_path(m->cg)) == 0;
    if (m->oom_base_ok && cg->oom_kills > m->oom_base)
        mon_oom(m, "cgroup_oom_kill", pid);
    m->oom_base = cg->oom_kills;
    m->oom_base_ok = true;
    if (ours)
        m->cg_oom_seen = (int64_t)cg->oom_kills;
}

/* ---------------------------------------------------------------------------------------- */
/* Sampling                                                                                 */
/* ---------------------------------------------------------------------------------------- */

enum { MON_SAMPLED, MON_SKIPPED, MON_GONE };

/* Reaps what ended without waiting: the command (its status kept) and --on-critical hooks. */
static void mon_reap(struct mon *m)
{
    int status;
    pid_t p;
    while ((p = waitpid(-1, &status, WNOHANG)) > 0) {
        if (p == m->child) {
            m->child_done = true;
            m->child_status = status;
        } else if (m->hooks) {
            m->hooks--;
        }
    }
}

/* True when pid is a zombie (its statm reads as zeros until its parent reaps it). */
static bool mon_zombie(const struct mon *m, pid_t pid)
{
    struct mon_member p;
    char state = 0;
    return mon_read_stat(ms_session_procfs(m->s), pid, &p, &state) == 0 &&
           (state == 'Z' || state == 'X');
}

/* The terminal's status line: elapsed time, samples, RSS, the tightest limit. */
static void mon_status(struct mon *m, uint64_t now)
{
    if (!m->tty || now - m->status_ns < MON_STATUS_NS)
        return;
    m->status_ns = now;
    char rss[32] = "?";
    if (ms_valid(&m->snap.process, MS_PF_rss_bytes))
        ms_format_bytes(rss, sizeof(rss), m->snap.process.rss_bytes);
    struct mon_usage u = mon_tightest(&m->snap, false);
    fprintf(stderr, "\r\033[Kmemsnap %s: pid %d  %.1f s  %" PRIu64 " samples  RSS %s", m->name,
            (int)m->snap.pid, (double)(now - m->t0) / 1e9, m->seq, rss);
    if (u.found)
        fprintf(stderr, "  %s %.1f%%", u.metric, u.pct);
    if (m->level)
        fputs(m->level == 2 ? "  [CRITICAL]" : "  [warning]", stderr);
    fflush(stderr);
    m->status_shown = true;
}

/* After a full capture into m->snap: keeps what a walk read into walked (NULL: none this
 * time), and puts the last walk's PSS and USS into the sample. */
static void mon_walk_keep(struct mon *m, const ms_snapshot *walked)
{
    ms_process_mem *p = &m->snap.process;
    const uint64_t bits = (1u << MS_PF_pss_bytes) | (1u << MS_PF_uss_bytes);
    if (walked) {
        m->walk_time = m->snap.timestamp_ns; /* this sample's */
        m->walk_pss = walked->process.pss_bytes;
        m->walk_uss = walked->process.uss_bytes;
        m->walk_valid = walked->process.valid & bits;
    }
    p->pss_bytes = m->walk_pss;
    p->uss_bytes = m->walk_uss;
    p->valid = (p->valid & ~bits) | m->walk_valid;
}

/* Takes one sample of pid (full figures, or statm only on top of the last full ones) and
 * writes it. Returns MON_SAMPLED, MON_SKIPPED (no sample: a failed read, reported once, or a
 * command that ended meanwhile) or MON_GONE (a --pid that ended). */
static int mon_sample(struct mon *m, pid_t pid, bool full)
{
    /* A full sample walks the page tables (PSS, USS) when the walk budget allows it. */
    uint64_t t0 = full ? mon_clock(CLOCK_MONOTONIC) : 0;
    bool walk = full && !m->walk_denied && (!m->walk_budget || t0 >= m->walk_next);
    unsigned what = MS_CAPTURE_BASIC;
    if (full)
        what = (MS_CAPTURE_FULL & ~(unsigned)MS_CAPTURE_PSS) | (m->gpu ? MS_CAPTURE_GPU : 0u);
    ms_snapshot *dst = full ? &m->snap : &m->light;
    int rc = ms_capture(m->s, pid, what, dst);
    uint64_t walk_ns = 0;  /* the walks' CPU time (not the other reads, not --tree's scan, not
                              the time another process had the core) */
    if (rc == 0 && walk) { /* the walk apart, into m->light, to time it alone */
        uint64_t cpu0 = mon_clock(CLOCK_THREAD_CPUTIME_ID);
        rc = ms_capture(m->s, pid, MS_CAPTURE_PSS, &m->light);
        walk_ns = mon_clock(CLOCK_THREAD_CPUTIME_ID) - cpu0;
        /* another user's process, or one without an address space (a kernel thread):
         * sampled all the same, PSS null */
        if (rc == MS_EACCES || rc == MS_ENOTSUP) {
            mon_status_clear(m);
            cli_error(m->name, "PSS and USS left out: %s", ms_session_error(m->s));
            m->walk_denied = true;
            walk = false;
            rc = 0;
        }
    }
    if (rc == MS_ESRCH && !m->child)
        return MON_GONE;
    if (rc) {
        if (full)
            m->have_full = false;
        if (!m->warned && !(m->child && rc == MS_ESRCH)) {
            mon_status_clear(m);
            cli_error(m->name, "skipping samples that cannot be read: %s", ms_session_error(m->s));
            m->warned = true;
        }
        return MON_SKIPPED;
    }
    if (!full) { /* statm, on top of the last full figures */
        ms_snapshot *s = &m->snap;
        const struct ms__field *pf = ms__sections[MS__SEC_PROCESS].fields;
        uint64_t statm = 0;
        s->timestamp_ns = dst->timestamp_ns;
        s->monotonic_ns = dst->monotonic_ns;
        for (int k = 0; k < MON_STATM_FIELDS; k++) {
            *(uint64_t *)(void *)((char *)s + pf[k].snap_offset) = ms__snap_value(dst, &pf[k]);
            statm |= 1ull << pf[k].bit;
        }
        s->process.valid = (s->process.valid & ~statm) | (dst->process.valid & statm);
    } else {
        m->have_full = true;
        mon_walk_keep(m, walk ? &m->light : NULL);
    }
    const ms_process_mem *p = &m->snap.process;
    if (m->child) {
        mon_reap(m);
        if (m->child_done)
            return MON_SKIPPED; /* perhaps read from the zombie */
    } else if (ms_valid(p, MS_PF_vms_bytes) && p->vms_bytes == 0 && mon_zombie(m, pid)) {
        return MON_GONE;
    }
    if (full && m->tree)
        walk_ns += mon_tree_scan(m, pid, walk);
    if (walk) /* the next walk waits MON_WALK_FACTOR times the CPU the walks took */
        m->walk_next = t0 + MON_WALK_FACTOR * walk_ns;
    mon_start(m);
    if (m->out_fd >= 0 && (full || m->fmt != MS_FORMAT_JSON || !mon_light_sample(m))) {
        mon_compose_sample(m, full, m->fmt == MS_FORMAT_JSON);
        if (mon_end(m) == 0)
            mon_flush(m);
    }
    if (m->fl)
        ms__flight_push(m->fl, &m->snap);
    if (full) {
        struct mon_usage u = mon_tightest(&m->snap, true);
        m->recent[m->nrecent++ % MON_RECENT] = u.found ? u.pct : 0;
        /* alerts first: a sample that crosses the threshold and shows the OOM kill puts its
         * alert in the flight recorder's ring before the bundle is written */
        if (m->kind == CLI_MON_TRACK)
            mon_thresholds(m, pid);
        mon_check_oom(m, pid);
    }
    m->seq++;
    return MON_SAMPLED;
}

/* ---------------------------------------------------------------------------------------- */
/* The command                                                                              */
/* ---------------------------------------------------------------------------------------- */

static volatile sig_atomic_t mon_child_pid; /* the command, for forwarding signals */
static volatile sig_atomic_t mon_stop;      /* the signal that asked a --pid monitor to stop */
static const int mon_signals[] = {SIGINT, SIGTERM, SIGHUP};
#define MON_NSIGNALS (sizeof(mon_signals) / sizeof(mon_signals[0]))

/* SIGINT, SIGTERM, SIGHUP: passed on to the command (unless the kernel sent it to the whole
 * process group, Ctrl-C: the command has it already), or, with --pid, the end of the
 * monitoring. SIGCHLD only interrupts the sleep. */
static void mon_on_signal(int sig, siginfo_t *si, void *ctx)
{
    (void)ctx;
    int saved = errno;
    if (sig != SIGCHLD) {
        if (mon_child_pid > 0) {
            if (si->si_code != SI_KERNEL)
                kill((pid_t)mon_child_pid, sig);
        } else {
            mon_stop = sig;
        }
    }
    errno = saved;
}

/* SIGPIPE (the reader of the output went away: `| head`): the write fails with EPIPE instead,
 * reported like any failed write, and the command is still waited for. A handler, unlike
 * SIG_IGN, is not passed on to the command through exec. */
static void mon_on_sigpipe(int sig)
{
    (void)sig;
}

/* What the child reports on the pipe when it cannot start the command. */
struct mon_exec_err {
    int stage; /* 0 exec, 1 entering the cgroup, 2 the tracker's environment */
    int err;   /* errno, or an MS_E* code for stage 1 */
};

/* The child side of the fork: into the cgroup, the tracker's environment, exec. */
static void mon_child(struct mon *m, int fd)
{
    struct mon_exec_err e = {0, 0};
    int rc;
    if (m->cg && (rc = ms__cglimit_enter(m->cg, 0)) != 0) {
        e = (struct mon_exec_err){1, rc};
    } else if (m->trace) {
        const struct cli_tracker t = {.preload = m->preload, .trace = m->tr.tmp};
        if (cli_tracker_env(&t) != 0)
            e = (struct mon_exec_err){2, errno};
    }
    if (e.stage == 0 && e.err == 0)
        e.err = cli_exec(m->path, m->argv);
    while (write(fd, &e, sizeof(e)) < 0 && errno == EINTR)
        ;
    _exit(127);
}

/* Starts the command; returns 0, or the exit status after printing why it did not start. */
static int mon_spawn(struct mon *m, const struct sigaction *old, const sigset_t *oldmask)
{
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0) {
        cli_error(m->name, "pipe: %s", strerror(errno));
        return CLI_FAIL;
    }
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, NULL);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        for (size_t i = 0; i < MON_NSIGNALS; i++)
            sigaction(mon_signals[i], &old[i], NULL);
        sigaction(SIGCHLD, &old[MON_NSIGNALS], NULL);
        sigprocmask(SIG_SETMASK, oldmask, NULL);
        mon_child(m, pfd[1]);
    }
    int fork_err = errno;
    close(pfd[1]);
    if (pid > 0) {
        m->child = pid;
        mon_child_pid = pid;
    }
    sigprocmask(SIG_SETMASK, oldmask, NULL);
    if (pid < 0) {
        close(pfd[0]);
        cli_error(m->name, "fork: %s", strerror(fork_err));
        return CLI_FAIL;
    }
    struct mon_exec_err e;
    ssize_t got;
    while ((got = read(pfd[0], &e, sizeof(e))) < 0 && errno == EINTR)
        ;
    close(pfd[0]);
    if (got != (ssize_t)sizeof(e))
        return 0; /* exec'd */
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    m->child = 0;
    mon_child_pid = 0;
    if (e.stage == 1) {
        cli_error(m->name, "cannot move '%s' into the cgroup %s: %s", m->argv[0],
                  ms__cglimit_dir(m->cg), ms_strerror(e.err));
        return CLI_FAIL;
    }
    if (e.stage == 2) {
        cli_error(m->name, "cannot set up the tracker's environment: %s", strerror(e.err));
        return CLI_FAIL;
    }
    cli_error(m->name, "cannot execute '%s': %s", m->argv[0], strerror(e.err));
    return 127;
}

/* Waits for the command to end, without sampling. */
static void mon_wait_child(struct mon *m)
{
    while (m->child && !m->child_done) {
        int status;
        pid_t p = waitpid(-1, &status, 0);
        if (p == m->child) {
            m->child_done = true;
            m->child_status = status;
        } else if (p > 0 && m->hooks) {
            m->hooks--;
        } else if (p < 0 && errno != EINTR) {
            break;
        }
    }
}

/* Ends the command at --duration, as timeout -k does: SIGTERM, then SIGKILL when it is still
 * running --kill-after later (a command that ignores SIGTERM), and waits for it. Only the
 * command is signalled, not the processes it started. */
static void mon_stop_command(struct mon *m)
{
    kill(m->child, SIGTERM);
    if (m->kill_after_ns) {
        uint64_t now = mon_clock(CLOCK_MONOTONIC), deadline = now + m->kill_after_ns;
        for (; !m->child_done && now < deadline; now = mon_clock(CLOCK_MONOTONIC)) {
            mon_reap(m);
            if (m->child_done)
                break;
            /* SIGCHLD cuts the sleep short; the poll bounds the race with the reap above */
            uint64_t wake = deadline - now < MON_KILL_POLL_NS ? deadline : now + MON_KILL_POLL_NS;
            struct timespec ts = {(time_t)(wake / NS_PER_S), (long)(wake % NS_PER_S)};
            clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
        }
        if (!m->child_done) {
            kill(m->child, SIGKILL);
            m->sent_kill = true;
            mon_status_clear(m);
            cli_error(m->name, "%s did not end %.3g s after SIGTERM: sent SIGKILL", m->argv[0],
                      (double)m->kill_after_ns / 1e9);
        }
    }
    mon_wait_child(m);
}

/* After the command ended: its OOM, if it had one, reported on stderr and as an "oom"
 * record. An OOM is the --memory-limit cgroup's OOM-kill count rising, or the command dying by
 * SIGKILL when its cgroup hit the limit (the failure count: some kernels, Linux 6.18 with
 * cgroup v1, leave oom_kill at 0) or with memory at 95% of its tightest limit in the last
 * samples. */
static void mon_command_oom(struct mon *m, pid_t pid)
{
    /* a SIGKILL that --kill-after sent is not the OOM killer's */
    bool killed =
        WIFSIGNALED(m->child_status) && WTERMSIG(m->child_status) == SIGKILL && !m->sent_kill;
    int64_t kills = m->cg ? ms__cglimit_oom_kills(m->cg) : -1;
    char limit[32] = "";
    if (m->cg)
        ms_format_bytes(limit, sizeof(limit), ms__cglimit_limit(m->cg));
    mon_status_clear(m);
    if (kills > 0) {
        if (killed)
            cli_error(m->name, "%s was killed by the OOM killer (memory limit %s)", m->argv[0],
                      limit);
        else
            cli_error(m->name,
                      "the OOM killer killed %" PRId64 " process%s of %s (memory limit %s)", kills,
                      kills == 1 ? "" : "es", m->argv[0], limit);
        if (kills > m->cg_oom_seen)
            mon_oom(m, "cgroup_oom_kill", pid);
        return;
    }
    if (!killed)
        return;
    if (m->cg && ms__cglimit_failcnt(m->cg) > 0) {
        cli_error(m->name, "%s was killed by the OOM killer (memory limit %s)", m->argv[0], limit);
        mon_oom(m, "sigkill_at_limit", pid);
        return;
    }
    double top = 0;
    for (unsigned i = 0; i < MON_RECENT && i < m->nrecent; i++)
        top = m->recent[i] > top ? m->recent[i] : top;
    if (top >= MON_AT_LIMIT_PCT) {
        cli_error(m->name, "%s was killed by SIGKILL at %.1f%% of its memory limit (out of memory)",
                  m->argv[0], top);
        mon_oom(m, "sigkill_at_limit", pid);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* The command line                                                                         */
/* ---------------------------------------------------------------------------------------- */

/* Checks -o FILE and --record TRACE before anything is opened: each absent or a regular file;
 * neither the command's program nor both one file (usage errors). Returns 0, or the exit
 * status after printing why not. */
static int mon_check_outputs(struct mon *m)
{
    const char *out = m->kind != CLI_MON_RUN ? m->output : NULL;
    char *prog = m->argv ? cli_find_program(m->argv[0]) : NULL; /* NULL: found later, or not */
    const char *const names[] = {out, m->record};
    int rc = 0;
    for (int i = 0; i < 2 && !rc; i++) {
        if (names[i] && prog && cli_same_file(names[i], prog)) {
            cli_error(m->name, "refusing to write %s: it is the program to be run", names[i]);
            rc = CLI_USAGE;
        }
    }
    free(prog);
    if (rc)
        return rc;
    const char *const avoid[] = {m->record, NULL};
    if (out && (rc = cli_output_check(m->name, out, avoid)) != 0)
        return rc == -2 ? CLI_USAGE : CLI_FAIL;
    if (m->record && cli_output_check(m->name, m->record, NULL) != 0)
        return CLI_FAIL;
    return 0;
}

/* Opens what the run needs before the command starts: the output, the session, the --record
 * trace, the flight recorder and the cgroup. Returns 0, or the exit status after printing why
 * not. */
static int mon_prepare(struct mon *m)
{
    int bad = mon_check_outputs(m);
    if (bad)
        return bad;
    if (m->kind != CLI_MON_RUN) {
        if (m->output) {
            if (cli_output_open(m->name, m->output, &m->out) != 0)
                return CLI_FAIL;
            m->out_fd = fileno(m->out.fp);
        } else {
            fflush(stdout);
            m->out_fd = STDOUT_FILENO;
        }
    }
    if (!(m->mf = open_memstream(&m->mbuf, &m->mlen)) || ms_writer_open(&m->sw, m->fmt, m->mf)) {
        cli_error(m->name, "out of memory");
        return CLI_FAIL;
    }
    if (cli_open_session(m->name, m->procfs, m->sysfs, &m->s) != 0)
        return CLI_FAIL;
    if (m->pid) {
        int rc = ms_capture(m->s, m->pid, MS_CAPTURE_BASIC, &m->light);
        if (rc) {
            cli_error(m->name, "cannot watch pid %d: %s", (int)m->pid,
                      rc == MS_ESRCH ? "no such process" : ms_session_error(m->s));
            return CLI_FAIL;
        }
    } else if (!(m->path = cli_find_program(m->argv[0]))) {
        cli_error(m->name, "cannot execute '%s': %s", m->argv[0], strerror(errno));
        return 127;
    }
    if (m->tree && !(m->members = calloc(MON_MEMBERS_MAX, sizeof(*m->members)))) {
        cli_error(m->name, "out of memory");
        return CLI_FAIL;
    }
    if (m->record) {
        if (!(m->preload = cli_find_preload(m->name)))
            return CLI_FAIL;
        char *cwd = getcwd(NULL, 0);
        if (!cwd || (m->record[0] == '/' ? !(m->trace = strdup(m->record))
                                         : asprintf(&m->trace, "%s/%s", cwd, m->record) < 0)) {
            free(cwd);
            m->trace = NULL;
            cli_error(m->name, "--record: %s", strerror(errno));
            return CLI_FAIL;
        }
        free(cwd);
        /* The tracker writes a temporary name beside TRACE (its directory is tried now: the
         * tracker cannot say why it could not write), renamed over TRACE once the command has
         * ended: what is at TRACE (checked by mon_check_outputs) stays until then. */
        if (cli_trace_open(m->name, m->record, &m->tr) != 0)
            return CLI_FAIL;
    }
    if (m->flight) {
        char err[512] = "";
        const struct ms__flight_opts fo = {
            .dump_dir = m->dump_dir ? m->dump_dir : "memsnap-oom",
            .buffer_size = m->ring,
            .max_dumps = (unsigned)m->max_dumps,
            .max_total_bytes = (uint64_t)m->max_mb << 20,
            .trace_path = m->tr.tmp, /* read while the command runs */
            .argv = (const char *const *)m->argv,
        };
        if (ms__flight_open(&m->fl, &fo, err, sizeof(err)) != 0) {
            cli_error(m->name, "OOM flight recorder: %s", err);
            return CLI_FAIL;
        }
    }
    if (m->limit) {
        char err[512] = "";
        if (ms__cglimit_create(&m->cg, m->procfs, m->sysfs, m->limit, err, sizeof(err)) != 0) {
            m->cg = NULL;
            cli_error(m->name, "--memory-limit: %s", err);
            return CLI_FAIL;
        }
        if (err[0]) /* made under the hierarchy's root: says why */
            cli_error(m->name, "note: %s", err);
    }
    if (m->fmt == MS_FORMAT_CSV && m->out_fd >= 0 && mon_csv_header(m) != 0) {
        cli_error(m->name, "out of memory");
        return CLI_FAIL;
    }
    m->tty = m->kind != CLI_MON_RUN && isatty(STDERR_FILENO);
    return 0;
}

/* Samples until the command or the --pid ends, --duration passes or a signal stops a --pid
 * monitor; returns the end record's reason. */
static const char *mon_loop(struct mon *m)
{
    pid_t target = m->child ? m->child : m->pid;
    uint64_t t0 = mon_clock(CLOCK_MONOTONIC), next = t0, last_full = 0;
    uint64_t end_at = m->duration_ns ? t0 + m->duration_ns : UINT64_MAX;
    bool sampling = m->kind != CLI_MON_RUN || m->fl;
    m->t0 = t0;
    for (;;) {
        if (m->child) {
            mon_reap(m);
            if (m->child_done)
                return "command_exited";
        }
        if (mon_stop)
            return "interrupted";
        uint64_t now = mon_clock(CLOCK_MONOTONIC);
        if (now >= end_at)
            return "duration";
        if (sampling && !m->write_failed && now >= next) {
            bool full = !m->have_full || now - last_full >= m->full_ns;
            int rc = mon_sample(m, target, full);
            if (rc == MON_GONE)
                return "pid_exited";
            if (rc == MON_SAMPLED && full)
                last_full = now;
            mon_status(m, now);
            next += m->interval_ns;
            if (next <= now) /* late (a slow read, a stopped memsnap): skip the missed ticks */
                next += ((now - next) / m->interval_ns + 1) * m->interval_ns;
        }
        if (!sampling || m->write_failed) {
            if (!m->child)
                return "interrupted";
            mon_wait_child(m);
            continue;
        }
        uint64_t wake = next < end_at ? next : end_at;
        struct timespec ts = {(time_t)(wake / NS_PER_S), (long)(wake % NS_PER_S)};
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL); /* a signal cuts it short */
    }
}

/* Frees everything m holds (the cgroup is removed). */
static void mon_free(struct mon *m)
{
    if (m->cg) {
        if (ms__cglimit_destroy(m->cg) != 0)
            cli_error(m->name, "cannot remove the cgroup made for --memory-limit");
        m->cg = NULL;
    }
    if (m->fl)
        ms__flight_close(m->fl);
    if (m->sw)
        ms_writer_close(m->sw);
    if (m->mf)
        fclose(m->mf);
    free(m->mbuf);
    free(m->lt);
    cli_output_abort(&m->out); /* (after a failure: what was at -o FILE stays) */
    cli_trace_abort(&m->tr);   /* (the command never ran: what was at TRACE stays) */
    ms_session_close(m->s);
    free(m->members);
    free(m->hook);
    free(m->hook_buf);
    free(m->hook_path);
    free(m->path);
    free(m->preload);
    free(m->trace);
    free(m);
}

int cli_monitor_main(enum cli_mon_kind kind, int argc, char **argv, void (*usage)(FILE *fp))
{
    struct mon *m = calloc(1, sizeof(*m)); /* large with its snapshots: not on the stack */
    if (!m) {
        cli_error(mon_names[kind], "out of memory");
        return CLI_FAIL;
    }
    m->kind = kind;
    m->name = mon_names[kind];
    m->interval_ns = NS_PER_S;
    m->full_ns = MON_FULL_DEFAULT;
    m->kill_after_ns = MON_KILL_AFTER;
    m->walk_budget = true;
    m->gpu = true;
    m->rank = m->world_size = -1;
    m->warn = m->crit = -1;
    m->out_fd = -1;
    m->cg_oom_seen = 0;
    ms_snapshot_init(&m->snap);
    ms_snapshot_init(&m->light);
    int rc = mon_options_parse(m, argc, argv, usage);
    if (rc) {
        mon_free(m);
        return rc < 0 ? CLI_OK : rc;
    }
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
    if ((rc = mon_prepare(m)) != 0) {
        mon_free(m);
        return rc;
    }

    /* Signals: forwarded to the command (or ending a --pid monitor) from before the fork on. */
    /* SA_RESTART: reads and writes go on; clock_nanosleep is never restarted, so a signal
     * still cuts the sleep short. */
    struct sigaction act = {.sa_sigaction = mon_on_signal, .sa_flags = SA_SIGINFO | SA_RESTART};
    struct sigaction old[MON_NSIGNALS + 1];
    sigset_t block, oldmask;
    sigemptyset(&block);
    for (size_t i = 0; i < MON_NSIGNALS; i++)
        sigaddset(&block, mon_signals[i]);
    sigaddset(&block, SIGCHLD);
    act.sa_mask = block;
    sigprocmask(SIG_BLOCK, &block, &oldmask);
    for (size_t i = 0; i < MON_NSIGNALS; i++) {
        sigaction(mon_signals[i], NULL, &old[i]);
        if (old[i].sa_handler != SIG_IGN) /* ignored (nohup): kept so */
            sigaction(mon_signals[i], &act, NULL);
    }
    sigaction(SIGCHLD, &act, &old[MON_NSIGNALS]);
    struct sigaction pipe_act = {.sa_handler = mon_on_sigpipe}, old_pipe;
    sigaction(SIGPIPE, NULL, &old_pipe);
    if (old_pipe.sa_handler != SIG_IGN)
        sigaction(SIGPIPE, &pipe_act, NULL);
    mon_stop = 0;
    mon_child_pid = 0;
    rc = 0;
    if (m->argv)
        rc = mon_spawn(m, old, &oldmask);
    sigprocmask(SIG_SETMASK, &oldmask, NULL);
    const char *reason = NULL;
    pid_t target = m->child ? m->child : m->pid;
    if (rc == 0) {
        reason = mon_loop(m);
        if (m->child && !m->child_done) /* --duration: the command is stopped, like timeout(1) */
            mon_stop_command(m);
        mon_child_pid = 0;
        if (m->child)
            mon_command_oom(m, target);
        mon_status_clear(m);
        mon_start(m);
        struct mon_event e = {.record = "end",
                              .time_ns = mon_clock(CLOCK_REALTIME),
                              .seq = -1,
                              .reason = reason,
                              .exit_status = -1,
                              .signal = -1};
        if (m->child && m->child_done) {
            if (WIFSIGNALED(m->child_status)) {
                e.signal = WTERMSIG(m->child_status);
                rc = 128 + e.signal;
            } else {
                e.exit_status = WEXITSTATUS(m->child_status);
                rc = e.exit_status;
            }
        }
        mon_event(m, &e);
        if (m->write_failed && rc == 0)
            rc = CLI_FAIL;
        if (m->tr.tmp && cli_trace_commit(m->name, &m->tr) != 0 && rc == 0)
            rc = CLI_FAIL; /* no trace: one line said so, TRACE as it was */
        if (!m->child && strcmp(reason, "pid_exited") == 0)
            cli_error(m->name, "pid %d exited after %" PRIu64 " sample%s", (int)m->pid, m->seq,
                      m->seq == 1 ? "" : "s");
    }
    while (m->hooks && waitpid(-1, NULL, 0) > 0) /* --on-critical hooks still running */
        m->hooks--;
    for (size_t i = 0; i < MON_NSIGNALS; i++)
        sigaction(mon_signals[i], &old[i], NULL);
    sigaction(SIGCHLD, &old[MON_NSIGNALS], NULL);
    sigaction(SIGPIPE, &old_pipe, NULL);
    if (m->out.fp && m->out.published) {
        m->out_fd = -1;
        if (cli_output_commit(m->name, &m->out) != 0 && rc == 0)
            rc = CLI_FAIL;
    }
    mon_free(m);
    return rc;
}
