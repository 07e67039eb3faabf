/*
 * cli.c - helpers every subcommand uses: errors, numbers, sessions and files, and those of the
 * commands that start a program (record, monitor, track, run): finding it, exec, and the
 * allocation tracker's environment.
 */
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

void cli_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "memsnap%s%s: ", cmd ? " " : "", cmd ? cmd : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int cli_bad_option(const char *cmd, int c, char **argv)
{
    const char *arg = argv[optind - 1];
    if (c == ':')
        cli_error(cmd, "option '%s' needs a value (see 'memsnap %s --help')", arg, cmd);
    else if (optopt)
        cli_error(cmd, "unknown option '-%c' (see 'memsnap %s --help')", optopt, cmd);
    else
        cli_error(cmd, "unknown option '%s' (see 'memsnap %s --help')", arg, cmd);
    return CLI_USAGE;
}

int cli_shared_option(const char *cmd, int c, char **argv, struct cli_common *co)
{
    switch (c) {
    case 'p':
        if (cli_parse_pid(optarg, &co->pid) != 0) {
            cli_error(cmd, "invalid PID '%s'", optarg);
            return CLI_USAGE;
        }
        return 0;
    case 'F': {
        ms_format fmt;
        if (ms_format_parse(optarg, &fmt) != 0 || !(co->formats & (1u << fmt))) {
            static const char *const names[] = {"text", "json", "csv"};
            char list[32] = "";
            for (unsigned i = 0; i < 3; i++)
                if (co->formats & (1u << i))
                    snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
                             list[0] ? ", " : "", names[i]);
            cli_error(cmd, "unknown format '%s' (%s)", optarg, list);
            return CLI_USAGE;
        }
        co->fmt = fmt;
        return 0;
    }
    case CLI_OPT_PROCFS:
        co->procfs = optarg;
        return 0;
    case CLI_OPT_SYSFS:
        co->sysfs = optarg;
        return 0;
    default:
        return cli_bad_option(cmd, c, argv);
    }
}

int cli_parse_uint(const char *text, unsigned long *out)
{
    if (!text || !*text || *text == '-' || *text == '+')
        return -1;
    char *end;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    if (errno || *end || v == 0)
        return -1;
    *out = v;
    return 0;
}

int cli_parse_pid(const char *text, pid_t *out)
{
    unsigned long v;
    if (cli_parse_uint(text, &v) != 0 || v > INT_MAX)
        return -1;
    *out = (pid_t)v;
    return 0;
}

/* Checks that path names a directory; prints why not. */
static int cli_check_dir(const char *cmd, const char *opt, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        cli_error(cmd, "%s %s: %s", opt, path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        cli_error(cmd, "%s %s: not a directory", opt, path);
        return -1;
    }
    return 0;
}

int cli_open_session(const char *cmd, const char *procfs, const char *sysfs, ms_session **out)
{
    if ((procfs && cli_check_dir(cmd, "--procfs", procfs) != 0) ||
        (sysfs && cli_check_dir(cmd, "--sysfs", sysfs) != 0))
        return -1;
    ms_options opts = {.size = sizeof(opts), .procfs = procfs, .sysfs = sysfs};
    int rc = ms_session_open(out, &opts);
    if (rc) {
        cli_error(cmd, "cannot open a session: %s", ms_strerror(rc));
        return -1;
    }
    return 0;
}

char *cli_read_file(const char *path, size_t *len)
{
    FILE *fp = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!fp)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n - 1, fp);
        n += got;
        if (n < cap - 1) {
            if (ferror(fp)) {
                free(buf);
                buf = NULL;
                errno = EIO;
            }
            break;
        }
        if (cap > (64u << 20)) { /* a snapshot is a few KiB: refuse absurd input */
            free(buf);
            buf = NULL;
            errno = EFBIG;
            break;
        }
        char *nbuf = realloc(buf, cap * 2);
        if (!nbuf) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nbuf;
        cap *= 2;
    }
    int saved = errno;
    if (fp != stdin)
        fclose(fp);
    errno = saved;
    if (buf) {
        buf[n] = '\0';
        *len = n;
    }
    return buf;
}

FILE *cli_create_file(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return NULL;
    FILE *fp = fdopen(fd, "w");
    if (!fp) {
        int saved = errno;
        close(fd);
        errno = saved;
    }
    return fp;
}

int cli_capture(ms_session *s, pid_t pid, unsigned what, ms_snapshot *snap, char *denied,
                size_t len)
{
    if (denied)
        denied[0] = '\0';
    int rc = ms_capture(s, pid, what, snap);
    if (rc != MS_EACCES || !(what & MS_CAPTURE_PSS))
        return rc;
    if (denied)
        snprintf(denied, len, "%s", ms_session_error(s));
    rc = ms_capture(s, pid, what & ~(unsigned)MS_CAPTURE_PSS, snap);
    if (rc && denied)
        denied[0] = '\0'; /* not only PSS: the error is the session's */
    return rc;
}

bool cli_gpu_available(ms_session *s, char *why, size_t len)
{
    ms_gpu_backend_info b[8];
    int n = ms_gpu_backends(s, b, sizeof(b) / sizeof(b[0]));
    size_t off = 0;
    if (len)
        snprintf(why, len, "%s", n < 0 ? ms_strerror(n) : ""); /* listing them failed */
    for (int i = 0; i < n && i < 8; i++) {
        if (b[i].available)
            return true;
        int w = snprintf(why + off, len - off, "%s%s: %s", off ? "; " : "", b[i].name, b[i].detail);
        if (w > 0 && off + (size_t)w < len)
            off += (size_t)w;
    }
    return false;
}

int cli_parse_bytes(const char *text, unsigned long long *out)
{
    if (*text < '0' || *text > '9')
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno)
        return -1;
    unsigned shift = 0;
    const char *units = "kKmMgG", *u = *end ? strchr(units, *end) : NULL;
    if (u) {
        shift = 10 * (unsigned)((u - units) / 2 + 1);
        end++;
        if (*end == 'i')
            end++;
    }
    if (*end == 'B')
        end++;
    if (*end || v > ULLONG_MAX >> shift)
        return -1;
    *out = v << shift;
    return 0;
}

/* True when path is an existing regular file. */
static bool cli_is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

char *cli_find_preload(const char *cmd)
{
    const char *env = getenv("MEMSNAP_PRELOAD");
    if (env && *env) {
        struct stat st;
        char *abs = NULL;
        if (stat(env, &st) != 0)
            cli_error(cmd, "MEMSNAP_PRELOAD=%s: %s", env, strerror(errno));
        else if (!S_ISREG(st.st_mode))
            cli_error(cmd, "MEMSNAP_PRELOAD=%s: not a regular file", env);
        else if (!(abs = realpath(env, NULL)))
            cli_error(cmd, "MEMSNAP_PRELOAD=%s: %s", env, strerror(errno));
        return abs;
    }
    char exe[PATH_MAX], tried[PATH_MAX + 64] = "";
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            slash[1] = '\0';
            snprintf(tried, sizeof(tried), "%s../preload/" PRELOAD_NAME, exe);
            if (cli_is_file(tried))
                return realpath(tried, NULL);
        }
    }
    if (cli_is_file(MEMSNAP_PRELOAD_INSTALLED))
        return realpath(MEMSNAP_PRELOAD_INSTALLED, NULL);
    cli_error(cmd,
              "cannot find " PRELOAD_NAME " (tried %s%s" MEMSNAP_PRELOAD_INSTALLED
              "; set MEMSNAP_PRELOAD to its path)",
              tried, *tried ? " and " : "");
    return NULL;
}

char *cli_find_program(const char *name)
{
    if (!*name) {
        errno = ENOENT;
        return NULL;
    }
    struct stat st;
    if (strchr(name, '/')) {
        if (stat(name, &st) != 0)
            return NULL;
        if (!S_ISREG(st.st_mode) || access(name, X_OK) != 0) {
            errno = EACCES;
            return NULL;
        }
        return strdup(name);
    }
    const char *path = getenv("PATH");
    char defpath[256];
    if (!path) {
        if (confstr(_CS_PATH, defpath, sizeof(defpath)) == 0)
            snprintf(defpath, sizeof(defpath), "/bin:/usr/bin");
        path = defpath;
    }
    int err = ENOENT;
    for (const char *p = path;; p++) {
        const char *colon = strchrnul(p, ':');
        char *cand;
        int dirlen = (int)(colon - p);
        if (asprintf(&cand, "%.*s%s%s", dirlen, p, dirlen ? "/" : "", name) < 0)
            return NULL;
        if (stat(cand, &st) == 0) {
            if (S_ISREG(st.st_mode) && access(cand, X_OK) == 0)
                return cand;
            err = EACCES;
        }
        free(cand);
        if (!*colon)
            break;
        p = colon;
    }
    errno = err;
    return NULL;
}

/* setenv(name, value), or unsetenv(name) when value is NULL; 0 or -1 with errno. */
static int cli_setenv(const char *name, const char *value)
{
    return value ? setenv(name, value, 1) : unsetenv(name);
}

int cli_tracker_env(const struct cli_tracker *o)
{
    const char *old = getenv("LD_PRELOAD");
    char *preload, root[24];
    if (old && *old) {
        if (asprintf(&preload, "%s:%s", o->preload, old) < 0)
            return -1;
    } else if (!(preload = strdup(o->preload))) {
        return -1;
    }
    snprintf(root, sizeof(root), "%ld", (long)getpid());
    int rc = 0;
    rc |= cli_setenv("LD_PRELOAD", preload);
    rc |= cli_setenv("MEMSNAP_TRACE_FILE", o->trace);
    rc |= cli_setenv("MEMSNAP_TRACE_ROOT", root);
    rc |= cli_setenv("MEMSNAP_TRACE_DEPTH", o->depth);
    rc |= cli_setenv("MEMSNAP_TRACE_UNWIND", o->unwind);
    rc |= cli_setenv("MEMSNAP_TRACE_SAMPLE_RATE", o->sample_rate);
    rc |= cli_setenv("MEMSNAP_TRACE_MMAP", o->mmap ? "1" : NULL);
    rc |= cli_setenv("MEMSNAP_TRACE_NO_FOLLOW", o->no_follow ? "1" : NULL);
    rc |= cli_setenv("MEMSNAP_TRACE_APPEND", NULL); /* the tracker's own, across exec */
    free(preload);
    return rc ? -1 : 0;
}

int cli_exec(const char *path, char *const argv[])
{
    execv(path, argv);
    int err = errno;
    if (err == ENOEXEC) {
        int argc = 0;
        while (argv[argc])
            argc++;
        char **sh = calloc((size_t)argc + 2, sizeof(*sh));
        if (sh) {
            sh[0] = "sh";
            sh[1] = (char *)path;
            memcpy(sh + 2, argv + 1, (size_t)argc * sizeof(*sh));
            execv("/bin/sh", sh);
            free(sh);
        }
        err = ENOEXEC;
    }
    return err;
}
