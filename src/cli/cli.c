/*
 * cli.c - helpers every subcommand uses: errors, numbers, sessions and files.
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

bool cli_gpu_available(ms_session *s, char *why, size_t len)
{
    ms_gpu_backend_info b[8];
    int n = ms_gpu_backends(s, b, sizeof(b) / sizeof(b[0]));
    size_t off = 0;
    if (len)
        why[0] = '\0';
    for (int i = 0; i < n && i < 8; i++) {
        if (b[i].available)
            return true;
        int w = snprintf(why + off, len - off, "%s%s: %s", off ? "; " : "", b[i].name, b[i].detail);
        if (w > 0 && off + (size_t)w < len)
            off += (size_t)w;
    }
    return false;
}
