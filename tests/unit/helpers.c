/*
 * helpers.c - fixture paths, fixture sessions, golden files, temporary directories, files and
 * fixture copies for the unit tests (helpers.h).
 */
#include "helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *fixture_path(const char *name)
{
    static char buf[4096];
    const char *root = getenv("MEMSNAP_FIXTURES");
    snprintf(buf, sizeof(buf), "%s/%s", root ? root : "tests/fixtures", name);
    return buf;
}

ms_session *fixture_session(const char *fixture)
{
    char procfs[4096], sysfs[4096];
    snprintf(procfs, sizeof(procfs), "%s/proc", fixture_path(fixture));
    snprintf(sysfs, sizeof(sysfs), "%s/sys", fixture_path(fixture));
    ms_options opts = {.size = sizeof(opts), .procfs = procfs, .sysfs = sysfs};
    ms_session *s = NULL;
    assert_int_equal(ms_session_open(&s, &opts), 0);
    assert_non_null(s);
    return s;
}

char *read_text(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, fp) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf)
        buf[n] = '\0';
    fclose(fp);
    return buf;
}

void assert_golden(const char *name, const char *got)
{
    const char *dir = getenv("MEMSNAP_GOLDEN");
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir ? dir : "tests/golden", name);
    const char *update = getenv("MEMSNAP_UPDATE_GOLDEN");
    if (update && strcmp(update, "1") == 0) {
        FILE *fp = fopen(path, "wb");
        assert_non_null(fp);
        fputs(got, fp);
        fclose(fp);
        return;
    }
    char *want = read_text(path);
    if (!want)
        fail_msg("golden file %s is missing (run with MEMSNAP_UPDATE_GOLDEN=1 to create it)", path);
    if (strcmp(want, got) != 0) {
        print_error("golden %s differs\n--- expected\n%s--- got\n%s", path, want, got);
        free(want);
        fail();
    }
    free(want);
}

char *capture_output(int (*fn)(FILE *fp, const void *arg), const void *arg)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    assert_non_null(fp);
    assert_int_equal(fn(fp, arg), 0);
    fclose(fp);
    return buf;
}

int fixture_capture(const char *fixture, pid_t pid, unsigned what, ms_snapshot *snap, char *err,
                    size_t errlen)
{
    ms_session *s = fixture_session(fixture);
    ms_snapshot_init(snap);
    int rc = ms_capture(s, pid, what, snap);
    if (err && errlen)
        snprintf(err, errlen, "%s", ms_session_error(s));
    ms_session_close(s);
    return rc;
}

void assert_contains(const char *haystack, const char *needle)
{
    if (!haystack || !strstr(haystack, needle))
        fail_msg("expected \"%s\" in \"%s\"", needle, haystack ? haystack : "(null)");
}

void snapshot_pin(ms_snapshot *snap)
{
    snap->timestamp_ns = FIXED_TIMESTAMP_NS;
    snap->monotonic_ns = FIXED_MONOTONIC_NS;
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    uint64_t *statm[] = {&snap->process.rss_bytes, &snap->process.vms_bytes,
                         &snap->process.shared_bytes, &snap->process.text_bytes,
                         &snap->process.data_bytes};
    for (size_t i = 0; i < sizeof(statm) / sizeof(statm[0]); i++)
        *statm[i] = *statm[i] / page * 4096;
}

void temp_dir(char *dir, size_t cap, const char *stem)
{
    int n = snprintf(dir, cap, "/tmp/memsnap-%s-XXXXXX", stem);
    assert_true(n > 0 && (size_t)n < cap);
    if (!mkdtemp(dir))
        fail_msg("mkdtemp %s: %s", dir, strerror(errno));
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

int temp_dir_remove(const char *dir)
{
    return dir[0] && nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}

void write_bytes(const char *path, const void *data, size_t len)
{
    FILE *fp = fopen(path, "wb");
    if (!fp)
        fail_msg("cannot write %s: %s", path, strerror(errno));
    assert_int_equal(fwrite(data, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}

void write_text(const char *path, const char *text)
{
    write_bytes(path, text, strlen(text));
}

void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb");
    if (!in)
        fail_msg("cannot read %s: %s", from, strerror(errno));
    int fd = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FILE *out = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (!out)
        fail_msg("cannot write %s: %s", to, strerror(errno));
    char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
        assert_int_equal(fwrite(buf, 1, n, out), n);
    fclose(in);
    assert_int_equal(fclose(out), 0);
}

void copy_fixture(const char *fixture, const char *dir)
{
    char cmd[8400];
    snprintf(cmd, sizeof(cmd), "cp -R '%s/.' '%s'", fixture_path(fixture), dir);
    assert_int_equal(system(cmd), 0);
}
