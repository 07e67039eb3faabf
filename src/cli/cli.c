/*
 * cli.c - helpers every subcommand uses: errors, numbers, sessions and files, and those of the
 * commands that start a program (record, monitor, track, run): finding it, exec, and the
 * allocation tracker's environment.
 */
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
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

int cli_parse_uint(const char *text, unsigned long *out)
{
    if (!text || !*text)
        return -1;
    for (const char *c = text; *c; c++) /* digits only: strtoul takes " 5", "+5", "-5" */
        if (*c < '0' || *c > '9')
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

/* Checks that path names a directory; prints why not, after what ("--procfs ",
 * "MEMSNAP_PROCFS=") says where path came from. */
static int cli_check_dir(const char *cmd, const char *what, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        cli_error(cmd, "%s%s: %s", what, path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        cli_error(cmd, "%s%s: not a directory", what, path);
        return -1;
    }
    return 0;
}

int cli_open_session(const char *cmd, const char *procfs, const char *sysfs, ms_session **out)
{
    ms_options opts = {.size = sizeof(opts), .procfs = procfs, .sysfs = sysfs};
    return cli_open_session_with(cmd, &opts, out);
}

int cli_open_session_with(const char *cmd, const ms_options *opts, ms_session **out)
{
    const char *procfs = opts->procfs, *sysfs = opts->sysfs;
    if ((procfs && cli_check_dir(cmd, "--procfs ", procfs) != 0) ||
        (sysfs && cli_check_dir(cmd, "--sysfs ", sysfs) != 0))
        return -1;
    /* The roots the library takes from the environment, named as they were set. */
    const char *env_procfs = procfs && *procfs ? NULL : getenv("MEMSNAP_PROCFS");
    const char *env_sysfs = sysfs && *sysfs ? NULL : getenv("MEMSNAP_SYSFS");
    if ((env_procfs && *env_procfs && cli_check_dir(cmd, "MEMSNAP_PROCFS=", env_procfs) != 0) ||
        (env_sysfs && *env_sysfs && cli_check_dir(cmd, "MEMSNAP_SYSFS=", env_sysfs) != 0))
        return -1;
    int rc = ms_session_open(out, opts);
    if (rc) {
        cli_error(cmd, "cannot open a session: %s", ms_strerror(rc));
        return -1;
    }
    return 0;
}

/* What st is, in words, when it is not a regular file; NULL for a regular file. */
static const char *cli_file_kind(const struct stat *st)
{
    if (S_ISREG(st->st_mode))
        return NULL;
    if (S_ISDIR(st->st_mode))
        return "it is a directory";
    if (S_ISFIFO(st->st_mode))
        return "it is a named pipe (FIFO)";
    if (S_ISSOCK(st->st_mode))
        return "it is a socket";
    if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode))
        return "it is a device";
    return "it is not a regular file";
}

int cli_open_input(const char *cmd, const char *path, struct stat *st)
{
    struct stat tmp;
    if (!st)
        st = &tmp;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        const char *kind = stat(path, st) == 0 ? cli_file_kind(st) : NULL; /* a socket: ENXIO */
        cli_error(cmd, "cannot read %s: %s", path, kind ? kind : strerror(err));
        return -1;
    }
    const char *why = NULL;
    if (fstat(fd, st) != 0)
        why = strerror(errno);
    else if (!(why = cli_file_kind(st)) && fcntl(fd, F_SETFL, 0) != 0)
        why = strerror(errno);
    if (why) {
        cli_error(cmd, "cannot read %s: %s", path, why);
        close(fd);
        return -1;
    }
    return fd;
}

char *cli_read_file(const char *cmd, const char *path, size_t *len)
{
    bool std = strcmp(path, "-") == 0;
    int fd = std ? STDIN_FILENO : cli_open_input(cmd, path, NULL);
    if (fd < 0)
        return NULL;
    const char *name = std ? "standard input" : path;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    const char *why = NULL;
    while (buf) {
        ssize_t got = read(fd, buf + n, cap - n - 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            why = strerror(errno);
            break;
        }
        if (got == 0)
            break;
        n += (size_t)got;
        if (n < cap - 1)
            continue;
        if (cap > (64u << 20)) { /* a snapshot is a few KiB: refuse absurd input */
            why = "larger than 64 MiB: not a memsnap snapshot";
            break;
        }
        char *nbuf = realloc(buf, cap * 2);
        if (!nbuf)
            break;
        buf = nbuf;
        cap *= 2;
    }
    if (!std)
        close(fd);
    if (!buf || why) {
        cli_error(cmd, "cannot read %s: %s", name, why ? why : "out of memory");
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* path with its directory resolved (realpath), for comparing paths of files that do not
 * exist yet; a copy of path when the directory cannot be resolved. NULL when out of memory. */
static char *cli_norm_path(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    char *dir = slash ? strndup(path, (size_t)(slash - path) + (slash == path)) : strdup(".");
    char *real = dir ? realpath(dir, NULL) : NULL, *out = NULL;
    if (real && *base && strcmp(base, ".") != 0 && strcmp(base, "..") != 0) {
        if (asprintf(&out, "%s%s%s", real, strcmp(real, "/") ? "/" : "", base) < 0)
            out = NULL;
    } else {
        out = strdup(path);
    }
    free(real);
    free(dir);
    return out;
}

bool cli_same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    bool ea = stat(a, &sa) == 0, eb = stat(b, &sb) == 0;
    if (ea && eb)
        return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    if (ea != eb)
        return false;
    char *na = cli_norm_path(a), *nb = cli_norm_path(b);
    bool same = na && nb ? strcmp(na, nb) == 0 : strcmp(a, b) == 0;
    free(na);
    free(nb);
    return same;
}

int cli_output_check(const char *cmd, const char *path, const char *const *avoid)
{
    struct stat st;
    const char *why = NULL;
    if (!*path) {
        why = "the name is empty";
    } else if (stat(path, &st) == 0) {
        if (!(why = cli_file_kind(&st)) && access(path, W_OK) != 0)
            why = strerror(errno);
    } else if (errno != ENOENT) {
        why = strerror(errno); /* EACCES, ENOTDIR, ELOOP: the name cannot be used */
    }
    if (why) {
        cli_error(cmd, "refusing to write %s: %s", path, why);
        return -1;
    }
    for (size_t i = 0; avoid && avoid[i]; i++) {
        if (cli_same_file(path, avoid[i])) {
            if (strcmp(path, avoid[i]) == 0)
                cli_error(cmd, "refusing to write %s: it is given twice", path);
            else
                cli_error(cmd, "refusing to write %s: it is the same file as %s", path, avoid[i]);
            return -2;
        }
    }
    return 0;
}

int cli_output_open(const char *cmd, const char *path, struct cli_output *out)
{
    memset(out, 0, sizeof(*out));
    if (cli_output_check(cmd, path, NULL) != 0)
        return -1;
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    int dirlen = slash ? (int)(slash - path) + 1 : 0;
    /* ".BASE.XXXXXX" must stay within NAME_MAX: a long base is shortened in the temp name */
    int blen = (int)strnlen(base, NAME_MAX - 8);
    int fd = -1;
    if (!(out->path = strdup(path)) ||
        asprintf(&out->tmp, "%.*s.%.*s.XXXXXX", dirlen, path, blen, base) < 0) {
        out->tmp = NULL;
        errno = ENOMEM;
    } else if ((fd = mkostemp(out->tmp, O_CLOEXEC)) >= 0 && !(out->fp = fdopen(fd, "w"))) {
        int saved = errno;
        unlink(out->tmp);
        close(fd);
        errno = saved;
    }
    if (!out->fp) {
        cli_error(cmd, "cannot create %s: %s", path, strerror(errno));
        free(out->path);
        free(out->tmp);
        memset(out, 0, sizeof(*out));
        return -1;
    }
    return 0;
}

/* Flushes out->fp, checking for an error: 0, or an errno. */
static int cli_output_flush(struct cli_output *out)
{
    errno = 0;
    if (fflush(out->fp) != 0 || ferror(out->fp))
        return errno ? errno : EIO;
    return 0;
}

/* Prints why out could not be written (err) and what became of its target. */
static void cli_output_failed(const char *cmd, const struct cli_output *out, int err)
{
    cli_error(cmd, "cannot write %s: %s; %s", out->path, strerror(err),
              out->published ? "it is incomplete" : "it was left unchanged");
}

int cli_output_publish(const char *cmd, struct cli_output *out)
{
    if (!out->fp || out->published)
        return 0;
    int err = cli_output_flush(out);
    if (!err && rename(out->tmp, out->path) != 0)
        err = errno;
    if (err) {
        cli_output_failed(cmd, out, err);
        cli_output_abort(out);
        return -1;
    }
    free(out->tmp);
    out->tmp = NULL;
    out->published = true;
    return 0;
}

int cli_output_commit(const char *cmd, struct cli_output *out)
{
    if (!out->fp)
        return 0;
    int err = cli_output_flush(out);
    /* fsync: a rename that reaches the disk before the data would leave an empty file after
     * a crash; and some file systems (NFS) report a full disk only here */
    if (!err && fsync(fileno(out->fp)) != 0 && errno != EINVAL && errno != EROFS)
        err = errno;
    errno = 0;
    if (fclose(out->fp) != 0 && !err)
        err = errno ? errno : EIO;
    out->fp = NULL;
    if (!err && out->tmp && rename(out->tmp, out->path) != 0)
        err = errno;
    if (err)
        cli_output_failed(cmd, out, err);
    cli_output_abort(out);
    return err ? -1 : 0;
}

void cli_output_abort(struct cli_output *out)
{
    if (out->fp)
        fclose(out->fp);
    if (out->tmp)
        unlink(out->tmp);
    free(out->tmp);
    free(out->path);
    memset(out, 0, sizeof(*out));
}

int cli_trace_open(const char *cmd, const char *path, struct cli_trace *t)
{
    memset(t, 0, sizeof(*t));
    char *cwd = path[0] == '/' ? NULL : getcwd(NULL, 0);
    if (path[0] != '/' && !cwd) {
        cli_error(cmd, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    int n = cwd ? asprintf(&t->path, "%s/%s", cwd, path) : (t->path = strdup(path)) ? 0 : -1;
    free(cwd);
    /* the name is reserved (O_EXCL, 0600) to see that the directory takes a file, then freed
     * for the tracker, which creates it O_EXCL|O_NOFOLLOW: a file planted meanwhile makes the
     * tracker fail, never write into it */
    struct cli_output probe;
    if (n < 0 || cli_output_open(cmd, t->path, &probe) != 0) {
        if (n < 0)
            cli_error(cmd, "cannot create %s: out of memory", path);
        free(t->path);
        memset(t, 0, sizeof(*t));
        return -1;
    }
    t->tmp = probe.tmp;
    probe.tmp = NULL; /* kept: closed, unlinked below, not by cli_output_abort */
    fclose(probe.fp);
    probe.fp = NULL;
    unlink(t->tmp);
    cli_output_abort(&probe);
    return 0;
}

/* Calls fn(dir, name, suffix, ctx) for each file of t->tmp's directory named t->tmp's base,
 * '.', digits (the tracker's trace of a forked child); suffix is the '.' and digits. */
static void cli_trace_children(const struct cli_trace *t,
                               void (*fn)(const struct cli_trace *t, const char *dir,
                                          const char *name, const char *suffix))
{
    const char *slash = strrchr(t->tmp, '/');
    char *dir = strndup(t->tmp, (size_t)(slash - t->tmp) + (slash == t->tmp));
    const char *base = slash + 1;
    size_t blen = strlen(base);
    DIR *d = dir ? opendir(dir) : NULL;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        const char *sfx = e->d_name + blen;
        if (strncmp(e->d_name, base, blen) != 0 || sfx[0] != '.' || !sfx[1] ||
            sfx[1 + strspn(sfx + 1, "0123456789")])
            continue;
        fn(t, dir, e->d_name, sfx);
    }
    if (d)
        closedir(d);
    free(dir);
}

/* The command that commits a trace, for cli_trace_rename_child's errors. */
static const char *cli_trace_cmd;

static void cli_trace_rename_child(const struct cli_trace *t, const char *dir, const char *name,
                                   const char *suffix)
{
    char *from = NULL, *to = NULL;
    if (asprintf(&from, "%s/%s", dir, name) >= 0 && asprintf(&to, "%s%s", t->path, suffix) >= 0 &&
        rename(from, to) != 0)
        cli_error(cli_trace_cmd, "cannot rename %s to %s: %s", from, to, strerror(errno));
    free(from);
    free(to);
}

static void cli_trace_remove_child(const struct cli_trace *t, const char *dir, const char *name,
                                   const char *suffix)
{
    (void)t;
    (void)suffix;
    char *p = NULL;
    if (asprintf(&p, "%s/%s", dir, name) >= 0)
        unlink(p);
    free(p);
}

int cli_trace_commit(const char *cmd, struct cli_trace *t)
{
    if (!t->tmp)
        return 0;
    int rc = 0;
    struct stat st;
    if (lstat(t->tmp, &st) != 0 || !S_ISREG(st.st_mode)) {
        cli_error(cmd, "the tracker wrote no trace: %s was left as it was", t->path);
        rc = -1;
    } else if (rename(t->tmp, t->path) != 0) {
        cli_error(cmd, "cannot rename the trace %s to %s: %s", t->tmp, t->path, strerror(errno));
        rc = -1;
    }
    cli_trace_cmd = cmd;
    cli_trace_children(t, cli_trace_rename_child);
    free(t->tmp);
    free(t->path);
    memset(t, 0, sizeof(*t));
    return rc;
}

void cli_trace_abort(struct cli_trace *t)
{
    if (!t->tmp)
        return;
    unlink(t->tmp);
    cli_trace_children(t, cli_trace_remove_child);
    free(t->tmp);
    free(t->path);
    memset(t, 0, sizeof(*t));
}

int cli_capture(ms_session *s, pid_t pid, unsigned what, ms_snapshot *snap, char *denied,
                size_t len)
{
    if (denied)
        denied[0] = '\0';
    int rc = ms_capture(s, pid, what, snap);
    /* EACCES: another user's process; ENOTSUP: no address space (a kernel thread) */
    if ((rc != MS_EACCES && rc != MS_ENOTSUP) || !(what & MS_CAPTURE_PSS))
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

json_t *cli_json_u64(uint64_t v)
{
    return v > (uint64_t)INT64_MAX ? json_real((double)v) : json_integer((json_int_t)v);
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
