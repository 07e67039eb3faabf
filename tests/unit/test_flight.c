/*
 * test_flight.c - the OOM flight recorder (src/monitor/flight.c): the ring keeps the last N
 * entries in order; a bundle holds every file, each valid JSON (parsed with jansson), with the
 * right names, modes, sizes and checksums; seq goes up across dumps and recorders; retention by
 * count and by size deletes the oldest bundles and nothing else; trace_tail.json from traces
 * written by the tests' trace writer, complete or cut; errors for an unusable dump directory.
 */
#include "helpers.h"

#include "monitor/flight.h"
#include "trace/format.h"
#include "trace_writer.h"

#include <dirent.h>
#include <jansson.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[256];

static int setup_dir(void **state)
{
    (void)state;
    temp_dir(dir, sizeof(dir), "flight");
    return 0;
}

static int teardown_dir(void **state)
{
    (void)state;
    temp_dir_remove(dir);
    return 0;
}

/* "<dir>/<rel>" in one of four static buffers. */
static const char *in_dir(const char *rel)
{
    static char bufs[4][4096];
    static int k;
    char *b = bufs[k++ % 4];
    snprintf(b, 4096, "%s/%s", dir, rel);
    return b;
}

static ms__flight *open_recorder(size_t buffer, unsigned max_dumps, uint64_t max_bytes,
                                 const char *trace, const char *const *argv)
{
    struct ms__flight_opts o = {.dump_dir = dir,
                                .buffer_size = buffer,
                                .max_dumps = max_dumps,
                                .max_total_bytes = max_bytes,
                                .trace_path = trace,
                                .argv = argv};
    ms__flight *f = NULL;
    char err[512] = "";
    int rc = ms__flight_open(&f, &o, err, sizeof(err));
    if (rc)
        fail_msg("ms__flight_open: %s (%s)", err, ms_err_name(rc));
    return f;
}

/* A sample labelled "s<i>" with a known RSS. */
static void push_sample(ms__flight *f, int i)
{
    ms_snapshot s;
    ms_snapshot_init(&s);
    char label[32];
    snprintf(label, sizeof(label), "s%d", i);
    ms_snapshot_set_label(&s, label);
    s.pid = 4242;
    s.timestamp_ns = 1700000000000000000u + (uint64_t)i;
    s.captured = MS_CAPTURE_BASIC;
    s.process.rss_bytes = 1000u * (uint64_t)i;
    ms_set_valid(&s.process, MS_PF_rss_bytes);
    ms__flight_push(f, &s);
}

static void push_event(ms__flight *f, int i)
{
    char ev[64];
    snprintf(ev, sizeof(ev), "{\"record\":\"marker\",\"label\":\"e%d\"}", i);
    ms__flight_event(f, ev);
}

/* Dumps, failing the test on error; the bundle's path goes into path. */
static void dump(ms__flight *f, const char *extra, char *path, size_t len)
{
    char err[512] = "";
    int rc = ms__flight_dump(f, "cpu", 4242, "cgroup_oom_kill", extra, path, len, err, sizeof(err));
    if (rc)
        fail_msg("ms__flight_dump: %s (%s)", err, ms_err_name(rc));
    assert_string_equal(err, "");
}

/* Parses <bundle>/<name>, failing the test when it is not valid JSON. */
static json_t *load(const char *bundle, const char *name)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", bundle, name);
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j)
        fail_msg("%s is not valid JSON: %s (line %d)", path, je.text, je.line);
    return j;
}

/* Names in dir, sorted, joined by ' ' (dot entries left out unless dots). */
static const char *listing(bool dots)
{
    static char buf[8192];
    struct dirent **list;
    int n = scandir(dir, &list, NULL, alphasort);
    assert_true(n >= 0);
    buf[0] = '\0';
    for (int i = 0; i < n; i++) {
        const char *name = list[i]->d_name;
        if (strcmp(name, ".") && strcmp(name, "..") && (dots || name[0] != '.')) {
            if (buf[0])
                strcat(buf, " ");
            strcat(buf, name);
        }
        free(list[i]);
    }
    free(list);
    return buf;
}

/* A finished bundle planted by hand, holding one file of bytes bytes. */
static void plant(const char *name, size_t bytes)
{
    assert_int_equal(mkdir(in_dir(name), 0700), 0);
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s/events.json", dir, name);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    for (size_t i = 0; i < bytes; i++)
        fputc('x', fp);
    fclose(fp);
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* ---------------------------------------------------------------------------------------- */
/* The ring and the files                                                                   */
/* ---------------------------------------------------------------------------------------- */

static void ring_keeps_the_last_entries_oldest_first(void **state)
{
    (void)state;
    ms__flight *f = open_recorder(5, 0, 0, NULL, NULL);
    /* s0 e0 s1 s2 e1 s3 s4 s5 e2: the ring of 5 holds s3..e2 */
    push_sample(f, 0);
    push_event(f, 0);
    push_sample(f, 1);
    push_sample(f, 2);
    push_event(f, 1);
    push_sample(f, 3);
    push_sample(f, 4);
    push_sample(f, 5);
    push_event(f, 2);
    char path[4096];
    dump(f, NULL, path, sizeof(path));
    json_t *ev = load(path, "events.json");
    assert_true(json_is_array(ev));
    assert_int_equal(json_array_size(ev), 5);
    static const char *const want[] = {"s3", "s4", "s5", "e2"};
    const char *got[5];
    for (size_t i = 0; i < 5; i++) {
        json_t *o = json_array_get(ev, i);
        json_t *label = json_object_get(o, "label");
        got[i] = json_string_value(label);
    }
    assert_string_equal(got[0], "e1");
    for (size_t i = 0; i < 4; i++)
        assert_string_equal(got[i + 1], want[i]);
    /* samples are the JSON sink's snapshot objects */
    json_t *s3 = json_array_get(ev, 1);
    assert_string_equal(json_string_value(json_object_get(s3, "schema")), "memsnap.snapshot/1");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(s3, "process"), "rss_bytes")), 3000);
    assert_true(json_is_null(json_object_get(json_object_get(s3, "process"), "pss_bytes")));
    json_decref(ev);
    json_t *meta = load(path, "metadata.json");
    assert_int_equal(json_integer_value(json_object_get(meta, "samples")), 3);
    assert_int_equal(json_integer_value(json_object_get(meta, "events")), 2);
    assert_int_equal(json_integer_value(json_object_get(meta, "buffer_size")), 5);
    json_decref(meta);
    ms__flight_close(f);
}

static void an_empty_ring_dumps_an_empty_array(void **state)
{
    (void)state;
    ms__flight *f = open_recorder(0, 0, 0, NULL, NULL);
    char path[4096];
    dump(f, NULL, path, sizeof(path));
    json_t *ev = load(path, "events.json");
    assert_int_equal(json_array_size(ev), 0);
    json_decref(ev);
    json_t *env = load(path, "environment.json");
    assert_true(json_is_null(json_object_get(env, "cgroup")));
    assert_true(json_is_null(json_object_get(env, "argv")));
    json_decref(env);
    json_t *meta = load(path, "metadata.json");
    assert_int_equal(json_integer_value(json_object_get(meta, "buffer_size")), 1000);
    json_decref(meta);
    ms__flight_close(f);
}

static void a_bundle_holds_every_file_as_valid_json(void **state)
{
    (void)state;
    static const char *const argv[] = {"python3", "train.py", "--batch", "64", NULL};
    setenv("RANK", "3", 1);
    setenv("WORLD_SIZE", "8", 1);
    unsetenv("SLURM_JOB_ID");
    ms__flight *f = open_recorder(10, 0, 0, NULL, argv);
    push_sample(f, 1);
    ms_snapshot s;
    ms_snapshot_init(&s);
    s.timestamp_ns = 1700000000000000009u;
    s.captured = MS_CAPTURE_CGROUP | MS_CAPTURE_GPU;
    s.cgroup.version = MS_CGROUP_V1;
    snprintf(s.cgroup.path, sizeof(s.cgroup.path), "/app/memsnap-1-0");
    s.cgroup.max_bytes = 32u << 20;
    ms_set_valid(&s.cgroup, MS_CF_max_bytes);
    s.gpu_count = 1;
    snprintf(s.gpus[0].backend, sizeof(s.gpus[0].backend), "nvml");
    snprintf(s.gpus[0].name, sizeof(s.gpus[0].name), "Fake H100");
    s.gpus[0].total_bytes = UINT64_C(80) << 30;
    ms_set_valid(&s.gpus[0], MS_GF_total_bytes);
    ms__flight_push(f, &s);
    ms__flight_event(f, "{\"record\":\"alert\",\"level\":\"critical\"}");
    ms__flight_event(f, "not json {");

    char path[4096];
    dump(f, "{\"job_id\":\"j42\",\"rank\":3,\"reason\":\"ignored\"}", path, sizeof(path));
    assert_true(strncmp(path, dir, strlen(dir)) == 0);

    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0700);
    static const char *const names[] = {"events.json", "metadata.json", "environment.json",
                                        "manifest.json"};
    for (size_t i = 0; i < 4; i++) {
        char p[4096];
        snprintf(p, sizeof(p), "%s/%s", path, names[i]);
        assert_int_equal(stat(p, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        json_decref(load(path, names[i]));
    }
    char p[4096];
    snprintf(p, sizeof(p), "%s/trace_tail.json", path);
    assert_false(access(p, F_OK) == 0); /* no trace given */

    json_t *meta = load(path, "metadata.json");
    assert_string_equal(json_string_value(json_object_get(meta, "schema")), "memsnap.oom_bundle/1");
    assert_string_equal(json_string_value(json_object_get(meta, "reason")), "cgroup_oom_kill");
    assert_string_equal(json_string_value(json_object_get(meta, "backend")), "cpu");
    assert_int_equal(json_integer_value(json_object_get(meta, "pid")), 4242);
    assert_int_equal(json_integer_value(json_object_get(meta, "seq")), 0);
    assert_int_equal(json_integer_value(json_object_get(meta, "samples")), 2);
    assert_int_equal(json_integer_value(json_object_get(meta, "events")), 2);
    assert_string_equal(json_string_value(json_object_get(meta, "job_id")), "j42");
    assert_int_equal(json_integer_value(json_object_get(meta, "rank")), 3);
    assert_true(json_integer_value(json_object_get(meta, "time_ns")) > 1700000000000000000);
    const char *t = json_string_value(json_object_get(meta, "time"));
    assert_non_null(t);
    assert_int_equal(strlen(t), strlen("2026-11-23T01:30:00.123456789Z"));
    assert_int_equal(t[strlen(t) - 1], 'Z');
    json_decref(meta);

    json_t *ev = load(path, "events.json");
    assert_int_equal(json_array_size(ev), 4);
    /* an event is kept as given; text that is not a JSON object is wrapped */
    assert_string_equal(json_string_value(json_object_get(json_array_get(ev, 2), "level")),
                        "critical");
    assert_string_equal(json_string_value(json_object_get(json_array_get(ev, 3), "invalid_event")),
                        "not json {");
    json_t *gpus = json_object_get(json_array_get(ev, 1), "gpus");
    assert_int_equal(json_array_size(gpus), 1);
    json_decref(ev);

    json_t *env = load(path, "environment.json");
    char host[256] = "";
    gethostname(host, sizeof(host) - 1);
    assert_string_equal(json_string_value(json_object_get(env, "hostname")), host);
    assert_string_equal(json_string_value(json_object_get(env, "memsnap_version")), ms_version());
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(env, "kernel"), "sysname")), "Linux");
    json_t *cg = json_object_get(env, "cgroup");
    assert_int_equal(json_integer_value(json_object_get(cg, "version")), 1);
    assert_string_equal(json_string_value(json_object_get(cg, "path")), "/app/memsnap-1-0");
    assert_int_equal(json_integer_value(json_object_get(cg, "limit_bytes")), 32 << 20);
    json_t *g0 = json_array_get(json_object_get(env, "gpus"), 0);
    assert_string_equal(json_string_value(json_object_get(g0, "name")), "Fake H100");
    assert_int_equal(json_integer_value(json_object_get(g0, "total_bytes")), INT64_C(80) << 30);
    json_t *a = json_object_get(env, "argv");
    assert_int_equal(json_array_size(a), 4);
    assert_string_equal(json_string_value(json_array_get(a, 1)), "train.py");
    json_t *vars = json_object_get(env, "env");
    assert_string_equal(json_string_value(json_object_get(vars, "RANK")), "3");
    assert_string_equal(json_string_value(json_object_get(vars, "WORLD_SIZE")), "8");
    assert_null(json_object_get(vars, "SLURM_JOB_ID")); /* unset: absent */
    json_decref(env);

    /* the manifest: every other file, its size and CRC-32C */
    json_t *man = load(path, "manifest.json");
    json_t *files = json_object_get(man, "files");
    assert_int_equal(json_array_size(files), 3);
    for (size_t i = 0; i < 3; i++) {
        json_t *e = json_array_get(files, i);
        const char *name = json_string_value(json_object_get(e, "name"));
        assert_string_equal(name, names[i]);
        snprintf(p, sizeof(p), "%s/%s", path, name);
        size_t len = 0;
        FILE *fp = fopen(p, "rb");
        assert_non_null(fp);
        static char buf[1 << 20];
        len = fread(buf, 1, sizeof(buf), fp);
        fclose(fp);
        assert_int_equal(json_integer_value(json_object_get(e, "bytes")), len);
        char crc[16];
        snprintf(crc, sizeof(crc), "%08x", (unsigned)ms_crc32c(0, buf, len));
        assert_string_equal(json_string_value(json_object_get(e, "crc32c")), crc);
    }
    json_decref(man);
    /* nothing half-written is left behind */
    assert_null(strstr(listing(true), ".tmp"));
    unsetenv("RANK");
    unsetenv("WORLD_SIZE");
    ms__flight_close(f);
}

static void extra_fields_that_are_not_an_object_are_reported(void **state)
{
    (void)state;
    ms__flight *f = open_recorder(4, 0, 0, NULL, NULL);
    char path[4096];
    dump(f, "[1,2", path, sizeof(path));
    json_t *meta = load(path, "metadata.json");
    assert_non_null(json_string_value(json_object_get(meta, "extra_error")));
    assert_string_equal(json_string_value(json_object_get(meta, "reason")), "cgroup_oom_kill");
    json_decref(meta);
    ms__flight_close(f);
}

/* ---------------------------------------------------------------------------------------- */
/* Names and seq                                                                            */
/* ---------------------------------------------------------------------------------------- */

static void names_match_the_pattern_and_seq_goes_up(void **state)
{
    (void)state;
    regex_t re;
    assert_int_equal(
        regcomp(&re, "^oom_dump_[0-9]{8}T[0-9]{6}Z_([0-9]+)_([a-z0-9.-]+)_([0-9]+)$", REG_EXTENDED),
        0);
    ms__flight *f = open_recorder(4, 0, 0, NULL, NULL);
    char path[4096], err[256];
    for (int i = 0; i < 3; i++) {
        dump(f, NULL, path, sizeof(path));
        regmatch_t m[4];
        assert_int_equal(regexec(&re, base_name(path), 4, m, 0), 0);
        assert_int_equal(atoi(base_name(path) + m[1].rm_so), 4242);
        assert_int_equal(atoi(base_name(path) + m[3].rm_so), i);
    }
    /* '_' would split the name's fields: a backend is sanitized */
    assert_int_equal(
        ms__flight_dump(f, "cu_da/x", 7, "cuda_oom", NULL, path, sizeof(path), err, sizeof(err)),
        0);
    regmatch_t m[4];
    assert_int_equal(regexec(&re, base_name(path), 4, m, 0), 0);
    assert_non_null(strstr(base_name(path), "_7_cu-da-x_3"));
    ms__flight_close(f);

    /* another recorder on the same directory goes on above every bundle there */
    plant("oom_dump_20200101T000000Z_1_cuda_41", 10);
    f = open_recorder(4, 0, 0, NULL, NULL);
    dump(f, NULL, path, sizeof(path));
    assert_int_equal(regexec(&re, base_name(path), 4, m, 0), 0);
    assert_int_equal(atoi(base_name(path) + m[3].rm_so), 42);
    json_t *meta = load(path, "metadata.json");
    assert_int_equal(json_integer_value(json_object_get(meta, "seq")), 42);
    json_decref(meta);
    ms__flight_close(f);
    regfree(&re);
}

/* ---------------------------------------------------------------------------------------- */
/* Retention                                                                                */
/* ---------------------------------------------------------------------------------------- */

/* What retention must never touch: files and directories whose names are not bundles'. */
static void plant_unrelated(void)
{
    write_text(in_dir("notes.txt"), "keep me");
    /* a file, not a bundle */
    write_text(in_dir("oom_dump_20000101T000000Z_1_cpu_0"), "keep me too");
    plant("oom_dump_junk", 5);                      /* not the pattern */
    plant("oom_dump_20000101T000000Z_1_cpu_0x", 5); /* seq not a number */
    plant("xoom_dump_20000101T000000Z_1_cpu_0", 5); /* a prefix before it */
    plant("oom_dump_2000010100000000Z_1_cpu_0", 5); /* no T in the time */
}

static const char *const unrelated[] = {"notes.txt",
                                        "oom_dump_20000101T000000Z_1_cpu_0",
                                        "oom_dump_junk",
                                        "oom_dump_20000101T000000Z_1_cpu_0x",
                                        "xoom_dump_20000101T000000Z_1_cpu_0",
                                        "oom_dump_2000010100000000Z_1_cpu_0"};

static void assert_unrelated_kept(void)
{
    for (size_t i = 0; i < sizeof(unrelated) / sizeof(unrelated[0]); i++)
        if (access(in_dir(unrelated[i]), F_OK) != 0)
            fail_msg("retention deleted %s", unrelated[i]);
}

static void retention_by_count_deletes_the_oldest_first(void **state)
{
    (void)state;
    plant_unrelated();
    /* oldest first: A, B (same second as A, higher seq), then C (newer time, lower seq) */
    plant("oom_dump_20200101T000000Z_10_cpu_9", 10);  /* A */
    plant("oom_dump_20200101T000000Z_10_cpu_10", 10); /* B */
    plant("oom_dump_20210101T000000Z_10_cpu_3", 10);  /* C */
    ms__flight *f = open_recorder(4, 3, 0, NULL, NULL);
    char path[4096];
    dump(f, NULL, path, sizeof(path));
    char first[4096];
    snprintf(first, sizeof(first), "%s", path);
    assert_false(access(in_dir("oom_dump_20200101T000000Z_10_cpu_9"), F_OK) == 0);
    assert_true(access(in_dir("oom_dump_20200101T000000Z_10_cpu_10"), F_OK) == 0);
    assert_true(access(in_dir("oom_dump_20210101T000000Z_10_cpu_3"), F_OK) == 0);
    assert_true(access(path, F_OK) == 0);
    assert_unrelated_kept();
    ms__flight_close(f);

    /* a limit of one keeps the newest: the one just written */
    f = open_recorder(4, 1, 0, NULL, NULL);
    dump(f, NULL, path, sizeof(path));
    assert_false(access(in_dir("oom_dump_20200101T000000Z_10_cpu_10"), F_OK) == 0);
    assert_false(access(in_dir("oom_dump_20210101T000000Z_10_cpu_3"), F_OK) == 0);
    assert_true(access(path, F_OK) == 0);
    assert_unrelated_kept();
    /* and the bundle that the earlier dump wrote, older than it, is gone too */
    assert_false(access(first, F_OK) == 0);
    ms__flight_close(f);
}

static void retention_by_size_deletes_the_oldest_first(void **state)
{
    (void)state;
    plant_unrelated();
    plant("oom_dump_20200101T000000Z_10_cpu_0", 10000); /* X1, the oldest */
    plant("oom_dump_20200102T000000Z_10_cpu_1", 10000); /* X2 */
    plant("oom_dump_20200103T000000Z_10_cpu_2", 10000); /* X3 */
    /* 25,000 bytes allowed: X1 must go (30,000 + the new bundle), and X2 may stay when the
     * new bundle is under 5,000 bytes */
    ms__flight *f = open_recorder(4, 0, 25000, NULL, NULL);
    push_sample(f, 1);
    char path[4096];
    dump(f, NULL, path, sizeof(path));
    json_t *man = load(path, "manifest.json");
    uint64_t bytes = 0;
    json_t *files = json_object_get(man, "files");
    for (size_t i = 0; i < json_array_size(files); i++)
        bytes += (uint64_t)json_integer_value(json_object_get(json_array_get(files, i), "bytes"));
    json_decref(man);
    char p[4096];
    snprintf(p, sizeof(p), "%s/manifest.json", path);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    bytes += (uint64_t)st.st_size;
    assert_true(bytes < 5000);
    assert_false(access(in_dir("oom_dump_20200101T000000Z_10_cpu_0"), F_OK) == 0);
    assert_true(access(in_dir("oom_dump_20200102T000000Z_10_cpu_1"), F_OK) == 0);
    assert_true(access(in_dir("oom_dump_20200103T000000Z_10_cpu_2"), F_OK) == 0);
    assert_unrelated_kept();
    ms__flight_close(f);

    /* a limit below one bundle: every older one goes, the new one stays */
    f = open_recorder(4, 0, 1, NULL, NULL);
    dump(f, NULL, path, sizeof(path));
    assert_true(access(path, F_OK) == 0);
    assert_false(access(in_dir("oom_dump_20200102T000000Z_10_cpu_1"), F_OK) == 0);
    assert_false(access(in_dir("oom_dump_20200103T000000Z_10_cpu_2"), F_OK) == 0);
    assert_unrelated_kept();
    ms__flight_close(f);
}

/* ---------------------------------------------------------------------------------------- */
/* trace_tail.json                                                                          */
/* ---------------------------------------------------------------------------------------- */

/* A trace of 1,403 events in two chunks, without END (the tracker was killed):
 *   chunk 1: 1,200 allocs of 100 bytes at stack 1 (t = 1..1200), 3 of 5,000 at stack 2
 *   chunk 2: frees of the first 200 blocks (t = 2001..2200)
 * Live at the end: stack 1 1,000 x 100 = 100,000 bytes; stack 2 15,000 bytes. */
static void write_trace(struct tw *w, size_t *first_chunk_end)
{
    tw_start(w, &(struct tw_start){.pid = 4242,
                                   .ppid = 1,
                                   .threads = TW_THREADS({1, 4242, 0, "main"}),
                                   .modules = TW_MODULES({1, 0x1000, 0x2000, "/usr/bin/prog"}),
                                   .stacks = TW_STACKS({1, 0, 0x1100}, {2, 1, 0x1200})});
    for (int i = 0; i < 1200; i++)
        ev_alloc(w, 1 + (uint64_t)i, 100, 1, 1);
    for (int i = 0; i < 3; i++)
        ev_alloc(w, 1500, 5000, 2, 1);
    tw_chunk(w, MS_CHUNK_CODEC_ZSTD);
    *first_chunk_end = w->file.len;
    for (uint64_t b = 0; b < 200; b++)
        ev_free(w, 2001 + b, b);
    tw_chunk(w, MS_CHUNK_CODEC_ZSTD);
}

static void trace_tail_has_the_last_events_and_the_top_live_sites(void **state)
{
    (void)state;
    struct tw w;
    size_t first;
    write_trace(&w, &first);
    const char *trace = in_dir("app.mst");
    tw_save(&w, trace);
    char tpath[4096];
    snprintf(tpath, sizeof(tpath), "%s", trace);
    ms__flight *f = open_recorder(4, 0, 0, tpath, NULL);
    char path[4096];
    dump(f, NULL, path, sizeof(path));
    json_t *tt = load(path, "trace_tail.json");
    assert_true(json_is_null(json_object_get(tt, "error")));
    assert_string_equal(json_string_value(json_object_get(tt, "trace")), tpath);
    assert_true(json_is_false(json_object_get(tt, "complete"))); /* no END record */
    assert_true(json_is_false(json_object_get(tt, "truncated")));
    assert_int_equal(json_integer_value(json_object_get(tt, "events_total")), 1403);
    json_t *ev = json_object_get(tt, "events");
    assert_int_equal(json_array_size(ev), 1000);
    /* the last 1000 of 1403: allocs 403..1199 (797), 3 big ones, 200 frees */
    json_t *e0 = json_array_get(ev, 0);
    assert_string_equal(json_string_value(json_object_get(e0, "kind")), "alloc");
    assert_int_equal(json_integer_value(json_object_get(e0, "block")), 403);
    assert_int_equal(json_integer_value(json_object_get(e0, "size")), 100);
    assert_int_equal(json_integer_value(json_object_get(e0, "stack")), 1);
    assert_int_equal(json_integer_value(json_object_get(e0, "tid")), 4242);
    json_t *e797 = json_array_get(ev, 797);
    assert_int_equal(json_integer_value(json_object_get(e797, "size")), 5000);
    json_t *last = json_array_get(ev, 999);
    assert_string_equal(json_string_value(json_object_get(last, "kind")), "free");
    assert_int_equal(json_integer_value(json_object_get(last, "block")), 199);
    assert_int_equal(json_integer_value(json_object_get(last, "time_ns")),
                     json_integer_value(json_object_get(tt, "duration_ns")));

    assert_int_equal(json_integer_value(json_object_get(tt, "live_bytes")), 115000);
    assert_int_equal(json_integer_value(json_object_get(tt, "live_allocations")), 1003);
    json_t *sites = json_object_get(tt, "top_sites");
    assert_int_equal(json_array_size(sites), 2);
    json_t *s0 = json_array_get(sites, 0), *s1 = json_array_get(sites, 1);
    assert_int_equal(json_integer_value(json_object_get(s0, "bytes")), 100000);
    assert_int_equal(json_integer_value(json_object_get(s0, "count")), 1000);
    assert_int_equal(json_integer_value(json_object_get(s1, "bytes")), 15000);
    json_t *frames = json_object_get(s1, "frames"); /* stack 2: 0x1200, then its parent */
    assert_int_equal(json_array_size(frames), 2);
    json_t *fr = json_array_get(frames, 0);
    assert_string_equal(json_string_value(json_object_get(fr, "module")), "/usr/bin/prog");
    assert_string_equal(json_string_value(json_object_get(fr, "ip")), "0x1200");
    assert_string_equal(json_string_value(json_object_get(fr, "offset")), "0x200");
    json_decref(tt);

    /* the manifest covers it */
    json_t *man = load(path, "manifest.json");
    assert_int_equal(json_array_size(json_object_get(man, "files")), 4);
    json_decref(man);
    ms__flight_close(f);
    tw_free(&w);
}

static void trace_tail_of_a_cut_trace_reads_up_to_the_last_good_chunk(void **state)
{
    (void)state;
    struct tw w;
    size_t first;
    write_trace(&w, &first);
    const char *trace = in_dir("cut.mst");
    write_bytes(trace, w.file.p, first + 30); /* the second chunk cut short */
    char tpath[4096];
    snprintf(tpath, sizeof(tpath), "%s", trace);
    ms__flight *f = open_recorder(4, 0, 0, tpath, NULL);
    char path[4096];
    dump(f, NULL, path, sizeof(path));
    json_t *tt = load(path, "trace_tail.json");
    assert_true(json_is_null(json_object_get(tt, "error")));
    assert_true(json_is_true(json_object_get(tt, "truncated")));
    assert_non_null(json_string_value(json_object_get(tt, "warning")));
    assert_int_equal(json_integer_value(json_object_get(tt, "events_total")), 1203);
    json_t *ev = json_object_get(tt, "events");
    assert_int_equal(json_array_size(ev), 1000);
    json_t *last = json_array_get(ev, 999);
    assert_int_equal(json_integer_value(json_object_get(last, "size")), 5000);
    assert_int_equal(json_integer_value(json_object_get(tt, "live_bytes")), 135000);
    json_decref(tt);
    ms__flight_close(f);
    tw_free(&w);
}

static void an_unreadable_trace_still_gives_a_bundle(void **state)
{
    (void)state;
    char tpath[4096];
    snprintf(tpath, sizeof(tpath), "%s", in_dir("missing.mst"));
    ms__flight *f = open_recorder(4, 0, 0, tpath, NULL);
    push_sample(f, 1);
    char path[4096];
    dump(f, NULL, path, sizeof(path));
    json_t *tt = load(path, "trace_tail.json");
    assert_contains(json_string_value(json_object_get(tt, "error")), "missing.mst");
    assert_int_equal(json_array_size(json_object_get(tt, "events")), 0);
    assert_true(json_is_null(json_object_get(tt, "live_bytes")));
    json_decref(tt);
    /* not a trace at all */
    write_text(tpath, "hello, not a trace\n");
    dump(f, NULL, path, sizeof(path));
    tt = load(path, "trace_tail.json");
    assert_non_null(json_string_value(json_object_get(tt, "error")));
    json_decref(tt);
    ms__flight_close(f);
}

/* ---------------------------------------------------------------------------------------- */
/* Errors                                                                                   */
/* ---------------------------------------------------------------------------------------- */

static void an_unusable_dump_directory_is_an_error(void **state)
{
    (void)state;
    char file[4096], sub[4096], err[512];
    snprintf(file, sizeof(file), "%s", in_dir("a-file"));
    write_text(file, "x");
    snprintf(sub, sizeof(sub), "%s/sub", file);
    ms__flight *f = NULL;
    struct ms__flight_opts o = {.dump_dir = file};
    assert_true(ms__flight_open(&f, &o, err, sizeof(err)) < 0);
    assert_null(f);
    assert_contains(err, file);
    assert_contains(err, "not a directory");
    o.dump_dir = sub; /* below a file: cannot be created */
    assert_true(ms__flight_open(&f, &o, err, sizeof(err)) < 0);
    assert_contains(err, sub);
    o.dump_dir = NULL;
    assert_int_equal(ms__flight_open(&f, &o, err, sizeof(err)), MS_EINVAL);

    /* a missing directory is created 0700 */
    char made[4096];
    snprintf(made, sizeof(made), "%s", in_dir("dumps"));
    o.dump_dir = made;
    assert_int_equal(ms__flight_open(&f, &o, err, sizeof(err)), 0);
    struct stat st;
    assert_int_equal(stat(made, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    /* it goes away and a file takes its place: the dump fails, saying why */
    assert_int_equal(rmdir(made), 0);
    write_text(made, "");
    char path[4096] = "x";
    int rc = ms__flight_dump(f, "cpu", 1, "sigkill_at_limit", NULL, path, sizeof(path), err,
                             sizeof(err));
    assert_true(rc < 0);
    assert_contains(err, made);
    assert_string_equal(path, "");
    ms__flight_close(f);
    if (geteuid() != 0) { /* permissions bind only when not root */
        unlink(made);
        mkdir(made, 0500);
        o.dump_dir = made;
        assert_true(ms__flight_open(&f, &o, err, sizeof(err)) < 0);
        assert_contains(err, "ermission denied");
    }
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup_dir, teardown_dir)
    const struct CMUnitTest tests[] = {
        T(ring_keeps_the_last_entries_oldest_first),
        T(an_empty_ring_dumps_an_empty_array),
        T(a_bundle_holds_every_file_as_valid_json),
        T(extra_fields_that_are_not_an_object_are_reported),
        T(names_match_the_pattern_and_seq_goes_up),
        T(retention_by_count_deletes_the_oldest_first),
        T(retention_by_size_deletes_the_oldest_first),
        T(trace_tail_has_the_last_events_and_the_top_live_sites),
        T(trace_tail_of_a_cut_trace_reads_up_to_the_last_good_chunk),
        T(an_unreadable_trace_still_gives_a_bundle),
        T(an_unusable_dump_directory_is_an_error),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
