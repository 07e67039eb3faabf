/*
 * monitor_loop.c - the loop of `memsnap monitor`, `memsnap track` and `memsnap run`, a thin
 * front end over the library: the sampler (ms_sampler_*: the schedule, full and statm-only
 * samples, the PSS walk budget, --tree), the alerts (ms_alerts_*: thresholds against the
 * tightest limit, re-arming, OOMs), the timeline writer (ms_timeline_writer_*: the records of
 * docs/monitor-format.md, each written with one write(2) the moment it exists) and the OOM
 * flight recorder (ms_flight_*). What stays here is the command line's: the output file
 * published at the first record, the messages on stderr, the terminal's status line, and the
 * watched command (monitor_launch.c).
 */
#include "cli.h"
#include "monitor_loop.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { MON_SAMPLED, MON_SKIPPED, MON_GONE };

static uint64_t mon_clock(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

/* The timeline writer's output: a record with one write(2) (the rest, if the kernel takes only
 * part); on a failure prints it once and stops the output (non-zero). */
static int mon_write(void *ctx, const char *rec, size_t len)
{
    struct mon *m = ctx;
    if (m->out_fd < 0 || m->write_failed)
        return -1;
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
            return -1;
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
        return -1;
    }
    return 0;
}

/* The watched process: the command, or --pid. */
static pid_t mon_target(const struct mon *m)
{
    return m->child ? m->child : m->pid;
}

/* Writes the start record once, with the limits of the first full sample when there is one
 * (and that sample's time, so that no record says it came before the start). */
static void mon_start(struct mon *m)
{
    const ms_snapshot *full = m->sampler ? ms_sampler_snapshot(m->sampler) : NULL;
    uint64_t now = mon_clock(CLOCK_REALTIME);
    if (full && full->timestamp_ns && full->timestamp_ns < now)
        now = full->timestamp_ns;
    ms_timeline_writer_start(m->tw, now, mon_target(m), full);
}

/* Writes a level alert, says it on stderr and runs --on-critical for a critical one. */
static void mon_alert(struct mon *m, const ms_alert_event *e, pid_t pid)
{
    ms_timeline_writer_alert(m->tw, e);
    const ms_usage *u = &e->usage;
    char used[32], limit[32], who[96] = "";
    ms_format_bytes(used, sizeof(used), u->used_bytes);
    ms_format_bytes(limit, sizeof(limit), u->limit_bytes);
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
    cli_error(m->name, "%s: %s at %.1f%% of its limit (%s of %s), pid %d%s",
              ms_alert_level_name(e->level), u->metric, u->percent, used, limit, (int)pid, who);
    if (e->level == MS_ALERT_CRITICAL && m->hook)
        mon_run_hook(m, e, (int64_t)ms_timeline_writer_samples(m->tw) - 1, pid);
}

/* Writes s as a JSON string (UTF-8 cleaned) to fp. */
static void mon_json_string(FILE *fp, const char *s)
{
    char *clean = ms_utf8_clean(s, strlen(s), NULL);
    json_t *j = clean ? json_string(clean) : NULL;
    char *text = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
    fputs(text ? text : "null", fp);
    free(text);
    json_decref(j);
    free(clean);
}

/* metadata.json's extra members of an OOM bundle: who watched, the limit, the job, the
 * signal. NULL when out of memory. */
static char *mon_oom_extra(struct mon *m)
{
    char *extra = NULL;
    size_t elen = 0;
    FILE *fp = open_memstream(&extra, &elen);
    if (!fp)
        return NULL;
    const ms_snapshot *full = m->sampler ? ms_sampler_snapshot(m->sampler) : NULL;
    ms_usage u;
    fprintf(fp, "{\"command\":\"%s\",\"memory_limit_bytes\":", m->name);
    if (m->limit)
        fprintf(fp, "%" PRIu64, m->limit);
    else
        fputs("null", fp);
    if (full && ms_usage_tightest(full, true, &u) == 0)
        fprintf(fp, ",\"last_metric\":\"%s\",\"last_percent\":%.2f", u.metric, u.percent);
    fputs(",\"job_id\":", fp);
    if (m->job_id)
        mon_json_string(fp, m->job_id);
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
        return NULL;
    }
    return extra;
}

/* Records an OOM of pid: the flight recorder's bundle (when it is on), the "oom" record and
 * one line on stderr. */
static void mon_oom(struct mon *m, const char *reason, pid_t pid)
{
    char bundle[PATH_MAX] = "";
    bool dumped = false;
    if (m->fl) {
        char *extra = mon_oom_extra(m);
        dumped = ms_flight_dump(m->fl, "cpu", pid, reason, extra, bundle, sizeof(bundle)) == 0;
        free(extra);
        mon_status_clear(m);
        if (!dumped)
            cli_error(m->name, "OOM flight recorder: cannot write a bundle: %s", ms_last_error());
    }
    uint64_t now = mon_clock(CLOCK_REALTIME);
    mon_start(m);
    ms_timeline_writer_oom(m->tw, now, reason, "cpu", pid, dumped ? bundle : NULL);
    if (dumped) {
        mon_status_clear(m);
        cli_error(m->name, "out of memory (%s) in pid %d: flight recorder bundle %s", reason,
                  (int)pid, bundle);
    }
}

/* The terminal's status line: elapsed time, samples, RSS, the tightest limit. */
static void mon_status(struct mon *m, uint64_t now)
{
    if (!m->tty || !m->last || now - m->status_ns < MON_STATUS_NS)
        return;
    m->status_ns = now;
    char rss[32] = "?";
    if (ms_valid(&m->last->process, MS_PF_rss_bytes))
        ms_format_bytes(rss, sizeof(rss), m->last->process.rss_bytes);
    ms_usage u;
    bool found = ms_usage_tightest(m->last, false, &u) == 0;
    fprintf(stderr, "\r\033[Kmemsnap %s: pid %d  %.1f s  %" PRIu64 " samples  RSS %s", m->name,
            (int)m->last->pid, (double)(now - m->t0) / 1e9, ms_timeline_writer_samples(m->tw), rss);
    if (found)
        fprintf(stderr, "  %s %.1f%%", u.metric, u.percent);
    ms_alert_level level = ms_alerts_level(m->alerts);
    if (level)
        fputs(level == MS_ALERT_CRITICAL ? "  [CRITICAL]" : "  [warning]", stderr);
    fflush(stderr);
    m->status_shown = true;
}

/* Takes the sample that is due and writes it; thresholds and OOMs on a full one. Returns
 * MON_SAMPLED, MON_SKIPPED (no sample: a failed read, reported once, or a command that ended
 * meanwhile) or MON_GONE (a --pid that ended). */
static int mon_sample(struct mon *m, pid_t pid)
{
    ms_sample smp = {.size = sizeof(smp)};
    int rc = ms_sampler_take(m->sampler, &smp);
    if (rc == MS_ESRCH && !m->child)
        return MON_GONE;
    if (rc) {
        if (!m->warned && !(m->child && rc == MS_ESRCH)) {
            mon_status_clear(m);
            cli_error(m->name, "skipping samples that cannot be read: %s", ms_last_error());
            m->warned = true;
        }
        return MON_SKIPPED;
    }
    if (smp.note) { /* another user's process, a kernel thread: sampled all the same */
        mon_status_clear(m);
        cli_error(m->name, "PSS and USS left out: %s", smp.note);
    }
    m->last = smp.snap;
    if (m->child) {
        mon_reap(m);
        if (m->child_done)
            return MON_SKIPPED; /* perhaps read from the zombie */
    }
    mon_start(m);
    ms_timeline_writer_sample(m->tw, &smp);
    if (smp.full) {
        ms_alert_event ev[MS_ALERTS_MAX_EVENTS];
        int n = ms_alerts_check(m->alerts, smp.snap, ev, MS_ALERTS_MAX_EVENTS);
        for (int i = 0; i < n; i++) {
            if (ev[i].kind == MS_ALERT_LEVEL)
                mon_alert(m, &ev[i], pid);
            else
                mon_oom(m, ev[i].reason, pid);
        }
    }
    return MON_SAMPLED;
}

/* After the command ended: its OOM, if it had one (ms_alerts_exit), reported on stderr and as
 * an "oom" record. */
static void mon_command_oom(struct mon *m, pid_t pid)
{
    /* a SIGKILL that --kill-after sent is not the OOM killer's */
    bool killed =
        WIFSIGNALED(m->child_status) && WTERMSIG(m->child_status) == SIGKILL && !m->sent_kill;
    const ms_alerts_exit_info x = {.size = sizeof(x),
                                   .wait_status = m->child_status,
                                   .sent_kill = m->sent_kill,
                                   .cgroup_oom_kills = m->cg ? ms_cglimit_oom_kills(m->cg) : -1,
                                   .cgroup_failcnt =
                                       m->cg && killed ? ms_cglimit_failcnt(m->cg) : -1};
    ms_alert_event e;
    int oom = ms_alerts_exit(m->alerts, &x, &e);
    int64_t kills = x.cgroup_oom_kills;
    char limit[32] = "";
    if (m->cg)
        ms_format_bytes(limit, sizeof(limit), ms_cglimit_limit(m->cg));
    mon_status_clear(m);
    if (kills > 0) {
        if (killed)
            cli_error(m->name, "%s was killed by the OOM killer (memory limit %s)", m->argv[0],
                      limit);
        else
            cli_error(m->name,
                      "the OOM killer killed %" PRId64 " process%s of %s (memory limit %s)", kills,
                      kills == 1 ? "" : "es", m->argv[0], limit);
    } else if (oom && x.cgroup_failcnt > 0) {
        cli_error(m->name, "%s was killed by the OOM killer (memory limit %s)", m->argv[0], limit);
    } else if (oom) {
        cli_error(m->name, "%s was killed by SIGKILL at %.1f%% of its memory limit (out of memory)",
                  m->argv[0], e.usage.percent);
    }
    if (oom)
        mon_oom(m, e.reason, pid);
}

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
 * trace, the flight recorder, the cgroup, the alerts and the timeline writer (a CSV header is
 * written now). Returns 0, or the exit status after printing why not. */
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
    if (cli_open_session(m->name, m->procfs, m->sysfs, &m->s) != 0)
        return CLI_FAIL;
    if (m->pid) {
        ms_snapshot *probe = malloc(sizeof(*probe)); /* large: not on the stack */
        int rc = MS_ENOMEM;
        if (probe) {
            ms_snapshot_init(probe);
            rc = ms_capture(m->s, m->pid, MS_CAPTURE_BASIC, probe);
            free(probe);
        }
        if (rc) {
            cli_error(m->name, "cannot watch pid %d: %s", (int)m->pid,
                      rc == MS_ESRCH ? "no such process" : ms_session_error(m->s));
            return CLI_FAIL;
        }
    } else if (!(m->path = cli_find_program(m->argv[0]))) {
        cli_error(m->name, "cannot execute '%s': %s", m->argv[0], strerror(errno));
        return 127;
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
        const ms_flight_options fo = {
            .size = sizeof(fo),
            .dump_dir = m->dump_dir ? m->dump_dir : "memsnap-oom",
            .buffer_size = m->ring,
            .max_dumps = (unsigned)m->max_dumps,
            .max_total_bytes = (uint64_t)m->max_mb << 20,
            .trace_path = m->tr.tmp, /* read while the command runs */
            .argv = (const char *const *)m->argv,
        };
        if (ms_flight_open(&m->fl, &fo) != 0) {
            cli_error(m->name, "OOM flight recorder: %s", ms_last_error());
            return CLI_FAIL;
        }
    }
    if (m->limit) {
        if (ms_cglimit_create(&m->cg, m->procfs, m->sysfs, m->limit) != 0) {
            cli_error(m->name, "--memory-limit: %s", ms_last_error());
            return CLI_FAIL;
        }
        if (ms_cglimit_note(m->cg)[0]) /* made under the hierarchy's root: says why */
            cli_error(m->name, "note: %s", ms_cglimit_note(m->cg));
    }
    const ms_alerts_options ao = {.size = sizeof(ao),
                                  .warning_pct = m->warn > 0 ? m->warn : 0,
                                  .critical_pct = m->crit > 0 ? m->crit : 0,
                                  .own_cgroup = m->cg ? ms_cglimit_path(m->cg) : NULL};
    ms_timeline_writer_options wo;
    ms_timeline_writer_options_init(&wo);
    wo.format = m->fmt;
    wo.write = m->out_fd >= 0 ? mon_write : NULL;
    wo.write_ctx = m;
    wo.flight = m->fl;
    wo.job_id = m->job_id;
    wo.rank = m->rank;
    wo.world_size = m->world_size;
    wo.argv = (const char *const *)m->argv;
    wo.interval_ns = m->interval_ns;
    wo.full_interval_ns = m->full_ns;
    wo.tree = m->tree;
    wo.warning_pct = ao.warning_pct;
    wo.critical_pct = ao.critical_pct;
    wo.memory_limit_bytes = m->limit;
    wo.trace = m->trace;
    if (ms_alerts_open(&m->alerts, &ao) != 0 || ms_timeline_writer_open(&m->tw, &wo) != 0) {
        cli_error(m->name, "%s", ms_last_error());
        return CLI_FAIL;
    }
    m->tty = m->kind != CLI_MON_RUN && isatty(STDERR_FILENO);
    return 0;
}

/* The sampler of the watched process, once it is known (after the command started): run
 * samples only for the flight recorder. Returns 0, or the exit status after printing why. */
static int mon_sampler_open(struct mon *m)
{
    if (m->kind == CLI_MON_RUN && !m->fl)
        return 0;
    const ms_sampler_options so = {
        .size = sizeof(so),
        .pid = mon_target(m),
        .interval_ns = m->interval_ns,
        .full_interval_ns = m->full_ns,
        .flags = (m->walk_budget ? 0u : MS_SAMPLER_EXACT_FULL) |
                 (m->no_gpu ? MS_SAMPLER_NO_GPU : 0u) | (m->tree ? MS_SAMPLER_TREE : 0u),
        .session = m->s,
    };
    if (ms_sampler_open(&m->sampler, &so) != 0) {
        cli_error(m->name, "%s", ms_last_error());
        return CLI_FAIL;
    }
    return 0;
}

/* Samples until the command or the --pid ends, --duration passes or a signal stops a --pid
 * monitor; returns the end record's reason. */
static const char *mon_loop(struct mon *m)
{
    pid_t target = mon_target(m);
    uint64_t t0 = mon_clock(CLOCK_MONOTONIC);
    uint64_t end_at = m->duration_ns ? t0 + m->duration_ns : UINT64_MAX;
    bool sampling = m->sampler != NULL;
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
        if (sampling && !m->write_failed && now >= ms_sampler_due(m->sampler)) {
            if (mon_sample(m, target) == MON_GONE)
                return "pid_exited";
            mon_status(m, now);
        }
        if (!sampling || m->write_failed) {
            if (!m->child)
                return "interrupted";
            mon_wait_child(m);
            continue;
        }
        uint64_t due = ms_sampler_due(m->sampler);
        uint64_t wake = due < end_at ? due : end_at;
        struct timespec ts = {(time_t)(wake / NS_PER_S), (long)(wake % NS_PER_S)};
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL); /* a signal cuts it short */
    }
}

/* Frees everything m holds (the cgroup is removed). */
static void mon_free(struct mon *m)
{
    if (m->cg && ms_cglimit_destroy(m->cg) != 0)
        cli_error(m->name, "cannot remove the cgroup made for --memory-limit");
    m->cg = NULL;
    ms_sampler_close(m->sampler);
    ms_timeline_writer_close(m->tw);
    ms_alerts_close(m->alerts);
    ms_flight_close(m->fl);
    cli_output_abort(&m->out); /* (after a failure: what was at -o FILE stays) */
    cli_trace_abort(&m->tr);   /* (the command never ran: what was at TRACE stays) */
    ms_session_close(m->s);
    free(m->hook);
    free(m->hook_buf);
    free(m->hook_path);
    free(m->path);
    free(m->preload);
    free(m->trace);
    free(m);
}

int cli_monitor_main(enum cli_mon_kind kind, int argc, char **argv, const struct mon_help *help)
{
    struct mon *m = calloc(1, sizeof(*m));
    if (!m) {
        cli_error(kind == CLI_MON_MONITOR ? "monitor"
                  : kind == CLI_MON_TRACK ? "track"
                                          : "run",
                  "out of memory");
        return CLI_FAIL;
    }
    m->kind = kind;
    int rc = mon_options_parse(m, argc, argv, help);
    if (rc) {
        mon_free(m);
        return rc < 0 ? CLI_OK : rc;
    }
    if ((rc = mon_prepare(m)) != 0) {
        mon_free(m);
        return rc;
    }

    /* Signals: forwarded to the command (or ending a --pid monitor) from before the fork on. */
    struct mon_signals sg;
    mon_signals_install(&sg);
    rc = 0;
    if (m->argv)
        rc = mon_spawn(m, &sg);
    mon_signals_unblock(&sg);
    if (rc == 0)
        rc = mon_sampler_open(m);
    const char *reason = NULL;
    pid_t target = mon_target(m);
    if (rc == 0) {
        reason = mon_loop(m);
        if (m->child && !m->child_done) /* --duration: the command is stopped, like timeout(1) */
            mon_stop_command(m);
        mon_child_pid = 0;
        if (m->child)
            mon_command_oom(m, target);
        mon_status_clear(m);
        mon_start(m);
        int exit_status = -1, signal = -1;
        if (m->child && m->child_done) {
            if (WIFSIGNALED(m->child_status)) {
                signal = WTERMSIG(m->child_status);
                rc = 128 + signal;
            } else {
                exit_status = WEXITSTATUS(m->child_status);
                rc = exit_status;
            }
        }
        ms_timeline_writer_end(m->tw, mon_clock(CLOCK_REALTIME), reason, exit_status, signal);
        if (m->write_failed && rc == 0)
            rc = CLI_FAIL;
        if (m->tr.tmp && cli_trace_commit(m->name, &m->tr) != 0 && rc == 0)
            rc = CLI_FAIL; /* no trace: one line said so, TRACE as it was */
        if (!m->child && strcmp(reason, "pid_exited") == 0) {
            uint64_t n = ms_timeline_writer_samples(m->tw);
            cli_error(m->name, "pid %d exited after %" PRIu64 " sample%s", (int)m->pid, n,
                      n == 1 ? "" : "s");
        }
    }
    while (m->hooks && waitpid(-1, NULL, 0) > 0) /* --on-critical hooks still running */
        m->hooks--;
    mon_signals_restore(&sg);
    if (m->out.fp && m->out.published) {
        m->out_fd = -1;
        if (cli_output_commit(m->name, &m->out) != 0 && rc == 0)
            rc = CLI_FAIL;
    }
    mon_free(m);
    return rc;
}
