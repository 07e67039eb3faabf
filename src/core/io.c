/*
 * io.c - reading and scanning the small text files of procfs, sysfs and cgroupfs.
 *
 * Every probe reads through ms__read_fd(): one pread from offset 0 into the session's buffer
 * (grown only for files that do not fit, such as smaps), so a kept-open descriptor costs one
 * system call per capture. ms__scan_keys() turns "Key: value kB" lines into bytes.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

ssize_t ms__read_fd(ms_session *s, int fd)
{
    size_t len = 0;
    for (;;) {
        size_t room = s->cap - len - 1;
        ssize_t n = pread(fd, s->buf + len, room, (off_t)len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        len += (size_t)n;
        /* procfs, sysfs and regular files return short only at the end of the file */
        if ((size_t)n < room)
            break;
        size_t ncap = s->cap * 2;
        char *nbuf = realloc(s->buf, ncap);
        if (!nbuf)
            return -ENOMEM;
        s->buf = nbuf;
        s->cap = ncap;
    }
    s->buf[len] = '\0';
    return (ssize_t)len;
}

int ms__open_file(const char *path)
{
    /* A --procfs or --sysfs tree is any directory: a FIFO there must not block the open, and
     * a FIFO, socket, device or directory is not read (a device could be read for ever).
     * procfs, sysfs and cgroupfs files are regular files to fstat. One fstat per open: the
     * probes keep their descriptors open between captures. O_NONBLOCK stays set: it changes
     * nothing for regular files, and reads pread only. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    int err = fstat(fd, &st) != 0    ? errno
              : S_ISDIR(st.st_mode)  ? EISDIR
              : !S_ISREG(st.st_mode) ? EINVAL
                                     : 0;
    if (err) {
        close(fd);
        return -err;
    }
    return fd;
}

int ms__open_at_root(const char *root, const char *rel)
{
    char path[PATH_MAX];
    int n = snprintf(path, sizeof(path), "%s/%s", root, rel);
    if (n < 0 || (size_t)n >= sizeof(path))
        return -ENAMETOOLONG;
    return ms__open_file(path);
}

ssize_t ms__read_file(ms_session *s, const char *root, const char *rel)
{
    int fd = ms__open_at_root(root, rel);
    if (fd < 0)
        return fd;
    ssize_t n = ms__read_fd(s, fd);
    close(fd);
    return n;
}

const char *ms__parse_u64(const char *p, const char *end, uint64_t *out)
{
    uint64_t v = 0;
    const char *start = p;
    while (p < end && *p >= '0' && *p <= '9') {
        uint64_t d = (uint64_t)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return NULL;
        v = v * 10 + d;
        p++;
    }
    if (p == start)
        return NULL;
    *out = v;
    return p;
}

int ms__scan_keys(ms_session *s, const char *file, const char *buf, size_t len,
                  const struct ms__key *keys, size_t nkeys, uint64_t *vals, uint64_t *found,
                  bool sum)
{
    const char *p = buf, *end = buf + len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        const char *k = p;
        while (k < eol && *k != ':' && *k != ' ' && *k != '\t')
            k++;
        size_t klen = (size_t)(k - p);
        for (size_t i = 0; i < nkeys; i++) {
            if (keys[i].len != klen || memcmp(keys[i].name, p, klen) != 0)
                continue;
            const char *v = k;
            if (v < eol && *v == ':')
                v++;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            uint64_t n;
            const char *after = ms__parse_u64(v, eol, &n);
            if (!after)
                return ms__fail(s, MS_EPARSE, "%s: malformed value for '%.*s'", file, (int)klen, p);
            while (after < eol && *after == ' ')
                after++;
            if (eol - after >= 2 && after[0] == 'k' && after[1] == 'B') {
                if (n > UINT64_MAX / 1024)
                    return ms__fail(s, MS_EPARSE, "%s: value for '%.*s' overflows", file, (int)klen,
                                    p);
                n *= 1024;
                after += 2;
                while (after < eol && *after == ' ')
                    after++;
            }
            if (after != eol)
                return ms__fail(s, MS_EPARSE, "%s: malformed value for '%.*s'", file, (int)klen, p);
            uint8_t f = keys[i].field;
            bool add = sum && (*found >> f & 1u);
            if (add && vals[f] > UINT64_MAX - n)
                return ms__fail(s, MS_EPARSE, "%s: sum of '%.*s' overflows", file, (int)klen, p);
            vals[f] = add ? vals[f] + n : n;
            *found |= UINT64_C(1) << f;
            break;
        }
        p = eol + 1;
    }
    return 0;
}

char **ms__argv_dup(const char *const *argv)
{
    size_t n = 0;
    while (argv[n])
        n++;
    char **v = calloc(n + 1, sizeof(*v));
    for (size_t i = 0; v && i < n; i++)
        if (!(v[i] = strdup(argv[i]))) {
            ms__argv_free(v);
            return NULL;
        }
    return v;
}

void ms__argv_free(char **argv)
{
    for (char **a = argv; a && *a; a++)
        free(*a);
    free(argv);
}
