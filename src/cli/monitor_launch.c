/*
 * monitor_launch.c - the command that `memsnap monitor`, `track` and `run` watch: started in a
 * memory cgroup of its own (--memory-limit, entered by the child before exec) under the
 * allocation tracker (--record), with SIGINT, SIGTERM and SIGHUP passed on to it, stopped at
 * --duration as timeout -k does, and reaped; and the --on-critical hook, run with an argv and
 * the alert in its environment. The loop (monitor_loop.c) calls these.
 */
#include "cli.h"
#include "monitor_loop.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

volatile sig_atomic_t mon_child_pid;
volatile sig_atomic_t mon_stop;
static const int mon_signals[] = {SIGINT, SIGTERM, SIGHUP};
#define MON_NSIGNALS (sizeof(mon_signals) / sizeof(mon_signals[0]))

void mon_status_clear(struct mon *m)
{
    if (m->status_shown) {
        fputs("\r\033[K", stderr);
        m->status_shown = false;
    }
}

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

void mon_signals_install(struct mon_signals *sg)
{
    /* SA_RESTART: reads and writes go on; clock_nanosleep is never restarted, so a signal
     * still cuts the sleep short. */
    struct sigaction act = {.sa_sigaction = mon_on_signal, .sa_flags = SA_SIGINFO | SA_RESTART};
    sigset_t block;
    sigemptyset(&block);
    for (size_t i = 0; i < MON_NSIGNALS; i++)
        sigaddset(&block, mon_signals[i]);
    sigaddset(&block, SIGCHLD);
    act.sa_mask = block;
    sigprocmask(SIG_BLOCK, &block, &sg->oldmask);
    for (size_t i = 0; i < MON_NSIGNALS; i++) {
        sigaction(mon_signals[i], NULL, &sg->old[i]);
        if (sg->old[i].sa_handler != SIG_IGN) /* ignored (nohup): kept so */
            sigaction(mon_signals[i], &act, NULL);
    }
    sigaction(SIGCHLD, &act, &sg->old[MON_NSIGNALS]);
    struct sigaction pipe_act = {.sa_handler = mon_on_sigpipe};
    sigaction(SIGPIPE, NULL, &sg->old_pipe);
    if (sg->old_pipe.sa_handler != SIG_IGN)
        sigaction(SIGPIPE, &pipe_act, NULL);
    mon_stop = 0;
    mon_child_pid = 0;
}

void mon_signals_unblock(const struct mon_signals *sg)
{
    sigprocmask(SIG_SETMASK, &sg->oldmask, NULL);
}

void mon_signals_restore(const struct mon_signals *sg)
{
    for (size_t i = 0; i < MON_NSIGNALS; i++)
        sigaction(mon_signals[i], &sg->old[i], NULL);
    sigaction(SIGCHLD, &sg->old[MON_NSIGNALS], NULL);
    sigaction(SIGPIPE, &sg->old_pipe, NULL);
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
    if (m->cg && (rc = ms_cglimit_enter(m->cg, 0)) != 0) {
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

int mon_spawn(struct mon *m, const struct mon_signals *sg)
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
            sigaction(mon_signals[i], &sg->old[i], NULL);
        sigaction(SIGCHLD, &sg->old[MON_NSIGNALS], NULL);
        sigprocmask(SIG_SETMASK, &sg->oldmask, NULL);
        mon_child(m, pfd[1]);
    }
    int fork_err = errno;
    close(pfd[1]);
    if (pid > 0) {
        m->child = pid;
        mon_child_pid = pid;
    }
    sigprocmask(SIG_SETMASK, &sg->oldmask, NULL);
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
                  ms_cglimit_dir(m->cg), ms_strerror(e.err));
        return CLI_FAIL;
    }
    if (e.stage == 2) {
        cli_error(m->name, "cannot set up the tracker's environment: %s", strerror(e.err));
        return CLI_FAIL;
    }
    cli_error(m->name, "cannot execute '%s': %s", m->argv[0], strerror(e.err));
    return 127;
}

void mon_reap(struct mon *m)
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

void mon_wait_child(struct mon *m)
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

static uint64_t mon_monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

/* SIGTERM, then SIGKILL when it is still running --kill-after later (a command that ignores
 * SIGTERM). Only the command is signalled, not the processes it started. */
void mon_stop_command(struct mon *m)
{
    kill(m->child, SIGTERM);
    if (m->kill_after_ns) {
        uint64_t now = mon_monotonic(), deadline = now + m->kill_after_ns;
        for (; !m->child_done && now < deadline; now = mon_monotonic()) {
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

/* Its stdout goes to stderr, so that it never mixes with the records. */
void mon_run_hook(struct mon *m, const ms_alert_event *e, int64_t seq, pid_t pid)
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
    snprintf(vars[v++], sizeof(vars[0]), "MEMSNAP_ALERT_LEVEL=%s", ms_alert_level_name(e->level));
    snprintf(vars[v++], sizeof(vars[0]), "MEMSNAP_ALERT_METRIC=%s", e->usage.metric);
    snprintf(vars[v++], sizeof(vars[0]), "MEMSNAP_ALERT_USED_BYTES=%" PRIu64, e->usage.used_bytes);
    snprintf(vars[v++], sizeof(vars[0]), "MEMSNAP_ALERT_LIMIT_BYTES=%" PRIu64,
             e->usage.limit_bytes);
    snprintf(vars[v++], sizeof(vars[0]), "MEMSNAP_ALERT_PERCENT=%.2f", e->usage.percent);
    snprintf(vars[v++], sizeof(vars[0]), "MEMSNAP_ALERT_PID=%d", (int)pid);
    snprintf(vars[v++], sizeof(vars[0]), "MEMSNAP_ALERT_SEQ=%" PRId64, seq);
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
