/*
 * cmd_record.c - `memsnap record [options] [--] PROGRAM [ARGS]`: runs a program with every
 * heap allocation recorded into a trace file.
 *
 * The recording itself is done inside the program by libmemsnap_preload.so, injected with
 * LD_PRELOAD. This command finds that library, checks that the program can be executed and
 * is dynamically linked (LD_PRELOAD cannot reach a static one), hands the tracker its
 * settings in MEMSNAP_TRACE_* variables (absolute paths; variables of memsnap's own
 * environment never leak through), forwards SIGINT, SIGTERM, SIGHUP and SIGQUIT to the
 * program while it waits, and exits with the program's status, after one note on where the
 * trace went and which forked children left traces of their own (FILE.<pid>).
 */
#include "cli.h"
#include "opts.h"

#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RECORD_DEPTH_MAX 256 /* the largest --depth the tracker accepts */
#define RECORD_LIST_MAX  8   /* child traces named on the closing note; the rest are counted */

/* What the options ask for; a field left unset leaves its variable out of the child's env. */
struct record_opts {
    const char *output;   /* -o FILE as given; NULL: memsnap.<program>.<pid>.mst */
    const char *depth;    /* --depth, validated, as given */
    const char *unwind;   /* --unwind: auto, fp, dwarf or libunwind */
    char sample_rate[24]; /* --sample-rate in bytes, decimal; "" when not given */
    bool mmap;            /* --mmap */
    bool no_follow;       /* --no-follow */
    const char *preload;  /* absolute path of libmemsnap_preload.so */
    const char *cwd;      /* memsnap's working directory, for relative paths */
    const char *path;     /* the program's file, found through PATH */
    char **argv;          /* the program's arguments, argv[0] as given */
    struct cli_trace tr;  /* the trace: the tracker writes tr.tmp, renamed over tr.path */
};

static int record_option(const struct cli_options *p, const struct cli_opt *o, const char *arg,
                         void *ctx);

enum { OPT_DEPTH, OPT_UNWIND, OPT_SAMPLE_RATE };

/* --help, around the option lines. */
static const char record_head[] =
    "usage: memsnap record [-o FILE] [--depth N] [--unwind HOW]\n"
    "                      [--sample-rate BYTES] [--mmap] [--no-follow]\n"
    "                      [--] PROGRAM [ARGS...]\n\n"
    "Run PROGRAM with every heap allocation recorded - malloc, calloc, realloc, free,\n"
    "the aligned family and C++ new/delete, each with its call stack - into a trace\n"
    "file for 'memsnap report'. The tracker, " PRELOAD_NAME ", is injected with\n"
    "LD_PRELOAD, so PROGRAM must be dynamically linked. Processes that PROGRAM forks\n"
    "are recorded too, each into FILE.<pid>, and so are the programs they exec.\n\n";
static const char record_tail[] =
    "\nOptions end at PROGRAM, or at '--' (needed when PROGRAM starts with '-'). PROGRAM\n"
    "is looked up in PATH as a shell does. When it ends, memsnap names the trace and\n"
    "the traces of forked children written during the run.\n\n"
    "Environment: MEMSNAP_PRELOAD names the tracker library; without it memsnap\n"
    "takes its build tree's (../preload/ beside memsnap's directory), else\n"
    "  " MEMSNAP_PRELOAD_INSTALLED "\n"
    "PROGRAM gets LD_PRELOAD (the tracker first), MEMSNAP_TRACE_FILE, _ROOT, _DEPTH,\n"
    "_UNWIND, _SAMPLE_RATE, _MMAP and _NO_FOLLOW as the options say; memsnap's own\n"
    "values of those never reach it (MEMSNAP_TRACE_SEED, the sampling's seed, does).\n\n"
    "Exit status: PROGRAM's; 128+N when signal N killed it (SIGINT, SIGTERM, SIGHUP\n"
    "and SIGQUIT sent to memsnap are passed on to PROGRAM); 127 when PROGRAM cannot\n"
    "be found or executed; 1 when memsnap cannot start it (statically linked, no\n"
    "tracker library, FILE's directory not writable), or when PROGRAM exited 0 but\n"
    "the trace stopped early (a full disk: FILE is then left as it was, and the part\n"
    "written is kept under a name that memsnap prints); 2 on a usage error.\n\n"
    "example: memsnap record -o app.mst -- ./app --input data.txt\n"
    "         memsnap report app.mst --stats\n";

static const struct cli_opt record_table[] = {
    OPT_NONEMPTY('o', "output", "FILE", struct record_opts, output,
                 "the trace (default memsnap.<program>.<pid>.mst in the\n"
                 "current directory). The tracker writes a new file\n"
                 "beside it (mode 0600), renamed over FILE when PROGRAM\n"
                 "has ended; FILE must be a regular file or absent"),
    OPT_CALLBACK(0, "depth", "N", record_option, OPT_DEPTH,
                 "stack frames kept per allocation, 1..256 (default 64)"),
    OPT_CALLBACK(0, "unwind", "HOW", record_option, OPT_UNWIND,
                 "auto (default): frame pointers through code built\n"
                 "with them, DWARF call-frame information elsewhere;\n"
                 "fp: frame pointers only; dwarf: DWARF CFI only (rules\n"
                 "read from .eh_frame once per return address, libunwind\n"
                 "for frames they cannot express); libunwind: libunwind's\n"
                 "unw_backtrace for every stack (the slowest; the\n"
                 "reference the others are tested against)"),
    OPT_CALLBACK(0, "sample-rate", "BYTES", record_option, OPT_SAMPLE_RATE,
                 "record a sample: about one allocation per BYTES bytes\n"
                 "allocated (suffixes K, M, G: 64K); the report scales\n"
                 "the figures back up. 0 (default) records every one"),
    OPT_BOOL(0, "mmap", struct record_opts, mmap, "also record mmap, mremap and munmap calls"),
    OPT_BOOL(0, "no-follow", struct record_opts, no_follow,
             "record neither the programs exec'd by PROGRAM (or by\n"
             "its children) nor their allocations"),
    OPT_HELP(),
    OPT_END(),
};

/* '+': options end at the program's name, so that its own options stay its own. */
static const struct cli_options record_options_def = {.cmd = "record",
                                                      .opts = record_table,
                                                      .column = 27,
                                                      .stop_at_operand = true,
                                                      .head = record_head,
                                                      .tail = record_tail};

/* True when path is an ELF executable without a PT_INTERP program header: statically
 * linked (static-pie too), so that no dynamic loader will ever read LD_PRELOAD. A script or a
 * file that cannot be read is not static. */
static bool record_is_static(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    bool is_static = false;
    union {
        unsigned char ident[EI_NIDENT];
        Elf32_Ehdr e32;
        Elf64_Ehdr e64;
    } h;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    const unsigned char native = ELFDATA2LSB;
#else
    const unsigned char native = ELFDATA2MSB;
#endif
    if (pread(fd, &h, sizeof(h), 0) >= (ssize_t)sizeof(h.e32) &&
        memcmp(h.ident, ELFMAG, SELFMAG) == 0 && h.ident[EI_DATA] == native) {
        bool is64 = h.ident[EI_CLASS] == ELFCLASS64;
        uint64_t off = is64 ? h.e64.e_phoff : h.e32.e_phoff;
        unsigned num = is64 ? h.e64.e_phnum : h.e32.e_phnum;
        unsigned entsize = is64 ? h.e64.e_phentsize : h.e32.e_phentsize;
        unsigned type = is64 ? h.e64.e_type : h.e32.e_type;
        size_t want = is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
        if ((type == ET_EXEC || type == ET_DYN) && entsize >= want && num > 0 && num < PN_XNUM) {
            is_static = true;
            for (unsigned i = 0; i < num && is_static; i++) {
                union {
                    Elf32_Phdr p32;
                    Elf64_Phdr p64;
                } ph;
                if (pread(fd, &ph, want, (off_t)(off + (uint64_t)i * entsize)) != (ssize_t)want)
                    is_static = false; /* unreadable: let exec decide */
                else if ((is64 ? ph.p64.p_type : ph.p32.p_type) == PT_INTERP)
                    is_static = false;
            }
        }
    }
    close(fd);
    return is_static;
}

/* The default trace name, relative to the current directory: memsnap.<program>.<pid>.mst. */
static char *record_default_name(const char *program, pid_t pid)
{
    const char *base = strrchr(program, '/');
    char *name;
    if (asprintf(&name, "memsnap.%s.%ld.mst", base ? base + 1 : program, (long)pid) < 0)
        return NULL;
    return name;
}

/* path made absolute against cwd (not normalized); malloc'd, NULL when out of memory. */
static char *record_absolute(const char *cwd, const char *path)
{
    char *abs;
    if (path[0] == '/')
        return strdup(path);
    if (asprintf(&abs, "%s/%s", cwd, path) < 0)
        return NULL;
    return abs;
}

/* Sets the tracker's variables in this (the child's) environment; 0 or -1 with errno. */
static int record_child_env(const struct record_opts *o)
{
    const struct cli_tracker t = {.preload = o->preload,
                                  .trace = o->tr.tmp,
                                  .depth = o->depth,
                                  .unwind = o->unwind,
                                  .sample_rate = o->sample_rate[0] ? o->sample_rate : NULL,
                                  .mmap = o->mmap,
                                  .no_follow = o->no_follow};
    return cli_tracker_env(&t);
}

/* The child side of the fork: the environment, then exec (through /bin/sh for a script
 * without "#!", as execvp does). Reports a failure's errno on fd and exits 127. */
static void record_exec(struct record_opts *o, int fd)
{
    int err = record_child_env(o) == 0 ? cli_exec(o->path, o->argv) : errno;
    while (write(fd, &err, sizeof(err)) < 0 && errno == EINTR)
        ;
    _exit(127);
}

/* The pid of the running program, for the signal handler; 0 when there is none. */
static volatile sig_atomic_t record_child;
static const int record_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
#define RECORD_NSIGNALS (sizeof(record_signals) / sizeof(record_signals[0]))

/* Passes a termination signal on to the program. A signal the kernel sent to the whole
 * foreground process group (Ctrl-C, a hangup) reached the program already: not twice. */
static void record_forward(int sig, siginfo_t *si, void *ctx)
{
    (void)ctx;
    int saved = errno;
    if (record_child > 0 && si->si_code != SI_KERNEL)
        kill((pid_t)record_child, sig);
    errno = saved;
}

/* For sorting pids. */
static int record_cmp_pid(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

/* Prints the one line naming the child traces trace.<pid> in trace's directory modified at or
 * after start (display is the trace's name as shown to the user). */
static void record_list_children(const char *trace, const char *display,
                                 const struct timespec *start)
{
    const char *slash = strrchr(trace, '/');
    char *dir = strndup(trace, (size_t)(slash - trace) + 1);
    DIR *d = dir ? opendir(dir) : NULL;
    free(dir);
    if (!d)
        return;
    const char *base = slash + 1;
    size_t blen = strlen(base), n = 0, cap = 0;
    long *pids = NULL;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *s = e->d_name;
        if (strncmp(s, base, blen) != 0 || s[blen] != '.' || !s[blen + 1] ||
            strspn(s + blen + 1, "0123456789") != strlen(s + blen + 1) || strlen(s + blen + 1) > 9)
            continue;
        struct stat st;
        if (fstatat(dirfd(d), s, &st, 0) != 0 || !S_ISREG(st.st_mode) ||
            st.st_mtim.tv_sec < start->tv_sec ||
            (st.st_mtim.tv_sec == start->tv_sec && st.st_mtim.tv_nsec < start->tv_nsec))
            continue;
        if (n == cap) {
            long *np = realloc(pids, (cap = cap ? cap * 2 : 16) * sizeof(*pids));
            if (!np)
                break;
            pids = np;
        }
        pids[n++] = strtol(s + blen + 1, NULL, 10);
    }
    closedir(d);
    if (n) {
        qsort(pids, n, sizeof(*pids), record_cmp_pid);
        fprintf(stderr, "memsnap record: %zu child trace%s:", n, n == 1 ? "" : "s");
        for (size_t i = 0; i < n && i < RECORD_LIST_MAX; i++)
            fprintf(stderr, " %s.%ld", display, pids[i]);
        if (n > RECORD_LIST_MAX)
            fprintf(stderr, " and %zu more", n - RECORD_LIST_MAX);
        fputc('\n', stderr);
    }
    free(pids);
}

/* Takes --depth, --unwind and --sample-rate, each checked as the tracker would take it. */
static int record_option(const struct cli_options *p, const struct cli_opt *opt, const char *arg,
                         void *ctx)
{
    struct record_opts *o = ctx;
    unsigned long depth;
    unsigned long long rate;
    (void)p;
    switch (opt->id) {
    case OPT_DEPTH:
        if (cli_parse_uint(arg, &depth) != 0 || depth > RECORD_DEPTH_MAX) {
            cli_error("record", "invalid --depth '%s' (1..%d)", arg, RECORD_DEPTH_MAX);
            return CLI_USAGE;
        }
        o->depth = arg;
        return 0;
    case OPT_UNWIND:
        if (strcmp(arg, "auto") != 0 && strcmp(arg, "fp") != 0 && strcmp(arg, "dwarf") != 0 &&
            strcmp(arg, "libunwind") != 0) {
            cli_error("record", "unknown --unwind '%s' (auto, fp, dwarf, libunwind)", arg);
            return CLI_USAGE;
        }
        o->unwind = arg;
        return 0;
    default: /* OPT_SAMPLE_RATE */
        if (cli_parse_bytes(arg, &rate) != 0) {
            cli_error("record", "invalid --sample-rate '%s' (bytes, e.g. 4096, 64K, 1M)", arg);
            return CLI_USAGE;
        }
        snprintf(o->sample_rate, sizeof(o->sample_rate), "%llu", rate);
        return 0;
    }
}

/* Parses the options into o and points o->argv at the program; returns 0 or CLI_USAGE (after
 * printing the error), or CLI_HELP after --help. */
static int record_options(int argc, char **argv, struct record_opts *o)
{
    int rc = cli_parse(&record_options_def, argc, argv, o);
    if (rc)
        return rc;
    if (optind >= argc) {
        cli_error("record", "no program to record (see 'memsnap record --help')");
        return CLI_USAGE;
    }
    o->argv = argv + optind;
    return 0;
}

/* Starts the program and waits for it; returns memsnap's exit status. */
static int record_run(struct record_opts *o)
{
    struct timespec start;
    clock_gettime(CLOCK_REALTIME_COARSE, &start); /* the clock of file times: never later */

    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0) {
        cli_error("record", "pipe: %s", strerror(errno));
        return CLI_FAIL;
    }
    /* Forward the termination signals from the fork on; the child restores them before exec. */
    sigset_t block, oldmask;
    struct sigaction fwd = {.sa_sigaction = record_forward, .sa_flags = SA_SIGINFO | SA_RESTART};
    struct sigaction old[RECORD_NSIGNALS];
    sigemptyset(&block);
    for (size_t i = 0; i < RECORD_NSIGNALS; i++)
        sigaddset(&block, record_signals[i]);
    fwd.sa_mask = block;
    sigprocmask(SIG_BLOCK, &block, &oldmask);
    for (size_t i = 0; i < RECORD_NSIGNALS; i++) {
        sigaction(record_signals[i], NULL, &old[i]);
        if (old[i].sa_handler != SIG_IGN) /* ignored (nohup, a background job): kept so */
            sigaction(record_signals[i], &fwd, NULL);
    }
    fflush(NULL);

    pid_t pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        for (size_t i = 0; i < RECORD_NSIGNALS; i++)
            sigaction(record_signals[i], &old[i], NULL);
        sigprocmask(SIG_SETMASK, &oldmask, NULL);
        record_exec(o, pfd[1]);
    }
    int fork_err = errno;
    close(pfd[1]);
    if (pid > 0)
        record_child = pid;
    sigprocmask(SIG_SETMASK, &oldmask, NULL);
    if (pid < 0) {
        close(pfd[0]);
        cli_error("record", "fork: %s", strerror(fork_err));
        return CLI_FAIL;
    }

    int exec_err = 0;
    ssize_t got;
    while ((got = read(pfd[0], &exec_err, sizeof(exec_err))) < 0 && errno == EINTR)
        ;
    close(pfd[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    record_child = 0;
    if (got == (ssize_t)sizeof(exec_err)) {
        cli_error("record", "cannot execute '%s': %s", o->argv[0], strerror(exec_err));
        return 127;
    }

    int rc;
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        const char *abbrev = sigabbrev_np(sig);
        char name[32];
        if (abbrev)
            snprintf(name, sizeof(name), "SIG%s", abbrev);
        else
            snprintf(name, sizeof(name), "signal %d", sig);
        cli_error("record", "%s killed by %s; the trace keeps what was flushed before", o->argv[0],
                  name);
        rc = 128 + sig;
    } else {
        rc = WEXITSTATUS(status);
    }

    /* The trace's name: the default one carries the child's pid. */
    char *display = o->output ? strdup(o->output) : record_default_name(o->argv[0], pid);
    char *trace = display ? record_absolute(o->cwd, display) : NULL;
    if (!trace) {
        free(display);
        cli_error("record", "out of memory");
        return rc;
    }
    free(o->tr.path);
    o->tr.path = strdup(trace); /* now the trace's */
    if (!o->tr.path) {
        free(trace);
        free(display);
        cli_error("record", "out of memory");
        return rc;
    }
    ms_trace_tail tail = {.size = sizeof(tail)};
    if (ms_trace_tail_get(o->tr.tmp, &tail) != 0) {
        cli_error("record",
                  "no trace was written to %s: %s ended before the tracker wrote anything, or "
                  "the tracker (%s) did not load",
                  display, o->argv[0], o->preload);
    } else if (!tail.complete && !WIFSIGNALED(status)) {
        /* The program ended, but the trace did not: the tracker stopped writing (a full
         * disk). What was at the target stays; the part that was written is kept. */
        struct statvfs vfs;
        bool full = statvfs(o->tr.tmp, &vfs) == 0 && vfs.f_bavail == 0;
        char done[64];
        ms_format_bytes(done, sizeof(done), tail.good_bytes);
        cli_error("record",
                  "the trace is incomplete: the tracker stopped writing after %s (%llu chunk%s)%s;"
                  " what it wrote is kept as %s, %s left as it was; %s exited with status %d",
                  done, (unsigned long long)tail.chunks, tail.chunks == 1 ? "" : "s",
                  full ? " because the file system is full" : "", o->tr.tmp, display, o->argv[0],
                  rc);
        rc = rc ? rc : CLI_FAIL;
    } else if (cli_trace_commit("record", &o->tr) == 0) {
        cli_error("record", "trace written to %s (%llu bytes)", display,
                  (unsigned long long)tail.file_bytes);
        record_list_children(trace, display, &start);
        cli_error("record",
                  "run 'memsnap report %s' for the heap at its peak (--stats: the summary)",
                  display);
    } else {
        rc = rc ? rc : CLI_FAIL;
    }
    free(trace);
    free(display);
    return rc;
}

int cmd_record(int argc, char **argv)
{
    struct record_opts o = {0};
    int rc = record_options(argc, argv, &o);
    if (rc)
        return rc < 0 ? CLI_OK : rc;

    char *path = cli_find_program(o.argv[0]);
    if (!path) {
        cli_error("record", "cannot execute '%s': %s", o.argv[0], strerror(errno));
        return 127;
    }
    char *preload = NULL, *cwd = NULL, *trace = NULL;
    rc = CLI_FAIL;
    if (record_is_static(path)) {
        cli_error("record",
                  "'%s' is statically linked: LD_PRELOAD cannot record a statically linked "
                  "program",
                  o.argv[0]);
        goto out;
    }
    if (!(preload = cli_find_preload("record")))
        goto out;
    if (strpbrk(preload, ": ")) {
        cli_error("record",
                  "the tracker's path %s has a ':' or a space, which LD_PRELOAD "
                  "cannot carry: set MEMSNAP_PRELOAD to a copy elsewhere",
                  preload);
        goto out;
    }
    if (!(cwd = getcwd(NULL, 0))) {
        cli_error("record", "getcwd: %s", strerror(errno));
        goto out;
    }
    /* -o is replaced only by a complete trace, and only when it is a regular file (and not
     * the program). The default name carries the child's pid: until it is known, the
     * temporary name is picked beside one that carries ours. */
    const char *avoid[] = {path, NULL};
    if (o.output && (rc = cli_output_check("record", o.output, avoid)) != 0) {
        rc = rc == -2 ? CLI_USAGE : CLI_FAIL;
        goto out;
    }
    rc = CLI_FAIL;
    if (!(trace = o.output ? strdup(o.output) : record_default_name(o.argv[0], getpid()))) {
        cli_error("record", "out of memory");
        goto out;
    }
    if (cli_trace_open("record", trace, &o.tr) != 0)
        goto out;
    /* the tracker names forked children's traces TMP.<pid>[.<n>], within PATH_MAX */
    if (strlen(o.tr.tmp) + sizeof(".4294967295.99") > PATH_MAX) {
        cli_error("record", "the trace path %s is too long (children's traces add .<pid>)",
                  o.output ? o.output : trace);
        goto out;
    }
    o.path = path;
    o.preload = preload;
    o.cwd = cwd;
    rc = record_run(&o);
out:
    if (o.tr.tmp) { /* not committed: the program never ran, or the trace was kept aside */
        free(o.tr.tmp);
        free(o.tr.path);
    }
    free(trace);
    free(cwd);
    free(preload);
    free(path);
    return rc;
}
