/*
 * test_gpu.c - GPU memory in snapshots, through each backend's real code path.
 *
 * Run as `test_gpu GROUP`: nvml (the full fake libnvidia-ml.so.1 on LD_LIBRARY_PATH),
 * nvml-minimal (the fake without the versioned symbols), nvidia-smi (a fake nvidia-smi put on
 * PATH here), drm (fixture sysfs and fdinfo trees for amdgpu, i915 and xe) and none (no GPU, no
 * fake). The fake NVML's scenario is picked with MEMSNAP_FAKE_NVML before each session opens.
 */
#include "helpers.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define GiB (UINT64_C(1) << 30)
#define MiB (UINT64_C(1) << 20)

static ms_snapshot snap, snap2; /* large: not on the stack */

/* A session on the live /proc and an empty sysfs (no DRM card), with NVML scenario `mode`. */
static ms_session *nvml_session(const char *mode)
{
    setenv("MEMSNAP_FAKE_NVML", mode, 1);
    char sysfs[4096];
    snprintf(sysfs, sizeof(sysfs), "%s", fixture_path("gpu-none/sys"));
    ms_options opts = {.size = sizeof(opts), .sysfs = sysfs};
    ms_session *s = NULL;
    assert_int_equal(ms_session_open(&s, &opts), 0);
    return s;
}

/* Captures GPUs only of pid into snap. */
static void capture_gpu(ms_session *s, pid_t pid, ms_snapshot *out)
{
    ms_snapshot_init(out);
    int rc = ms_capture(s, pid, MS_CAPTURE_GPU, out);
    if (rc)
        fail_msg("capture: %s", ms_session_error(s));
    assert_true(out->captured & MS_CAPTURE_GPU);
}

/* The process entry of pid on g, or NULL. */
static const ms_gpu_proc *find_proc(const ms_gpu *g, int32_t pid)
{
    for (uint32_t i = 0; i < g->process_count; i++)
        if (g->processes[i].pid == pid)
            return &g->processes[i];
    return NULL;
}

/* The fake's counters: nvmlInit and nvmlShutdown calls, lists filled. */
static void fake_stats(unsigned *inits, unsigned *shutdowns, unsigned *fills)
{
    void *h = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_NOLOAD);
    assert_non_null(h);
    void (*fn)(unsigned *, unsigned *, unsigned *);
    *(void **)&fn = dlsym(h, "fake_nvml_stats");
    assert_non_null(fn);
    fn(inits, shutdowns, fills);
    dlclose(h);
}

/* Writes snap with a writer of the given format into a malloc'd string. */
static char *write_snapshot(ms_format fmt, const ms_snapshot *s)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    ms_writer *w;
    assert_int_equal(ms_writer_open(&w, fmt, fp), 0);
    assert_int_equal(ms_writer_snapshot(w, s), 0);
    assert_int_equal(ms_writer_close(w), 0);
    fclose(fp);
    return buf;
}

/* ---- NVML ------------------------------------------------------------------------------ */

static void test_nvml_devices_and_processes(void **state)
{
    (void)state;
    ms_session *s = nvml_session("several");
    capture_gpu(s, 0, &snap);
    assert_int_equal(snap.gpu_count, 3);
    const ms_gpu *g = &snap.gpus[0];
    assert_string_equal(g->backend, "nvml");
    assert_string_equal(g->name, "Fake H100");
    assert_string_equal(g->uuid, "GPU-fake-0000");
    assert_string_equal(g->pci_bus_id, "00000000:01:00.0");
    assert_true(ms_valid(g, MS_GF_total_bytes));
    assert_int_equal(g->total_bytes, 80 * GiB);
    assert_int_equal(g->used_bytes, 10 * GiB);
    assert_true(ms_valid(g, MS_GF_reserved_bytes)); /* from the v2 call */
    assert_int_equal(g->reserved_bytes, 512 * MiB);
    assert_int_equal(g->free_bytes, 80 * GiB - 10 * GiB - 512 * MiB);
    assert_true(g->is_per_process);
    /* compute + graphics list the caller twice: one entry; MPS adds 4242 */
    assert_int_equal(g->process_count, 3);
    assert_int_equal(g->processes[0].pid, 1); /* the largest first */
    assert_int_equal(g->processes[0].used_bytes, 3 * GiB);
    assert_non_null(find_proc(g, getpid()));
    assert_int_equal(find_proc(g, getpid())->used_bytes, 1 * GiB);
    assert_non_null(find_proc(g, 4242));
    assert_true(ms_valid(g, MS_GF_process_used_bytes));
    assert_int_equal(g->process_used_bytes, 1 * GiB);
    /* a GPU without processes: per-process, and the caller really holds 0 there */
    assert_true(snap.gpus[1].is_per_process);
    assert_int_equal(snap.gpus[1].process_count, 0);
    assert_true(ms_valid(&snap.gpus[1], MS_GF_process_used_bytes));
    assert_int_equal(snap.gpus[1].process_used_bytes, 0);
    assert_int_equal(snap.gpus[2].process_used_bytes, 256 * MiB);
    assert_int_equal(snap.gpus[2].index, 2);
    ms_session_close(s);
}

/* A session like nvml_session's that captures only the GPU named by device. */
static int device_session(const char *device, ms_session **s)
{
    setenv("MEMSNAP_FAKE_NVML", "several", 1);
    ms_options opts = {
        .size = sizeof(opts), .sysfs = fixture_path("gpu-none/sys"), .device = device};
    return ms_session_open(s, &opts);
}

static void test_device_by_index(void **state)
{
    (void)state;
    ms_session *s;
    assert_int_equal(device_session("2", &s), 0);
    capture_gpu(s, 0, &snap);
    assert_int_equal(snap.gpu_count, 1);
    const ms_gpu *g = &snap.gpus[0];
    assert_int_equal(g->index, 2); /* the index it has among every GPU, as gpu ps shows it */
    assert_string_equal(g->name, "Fake L4");
    assert_int_equal(g->total_bytes, 24 * GiB);
    assert_true(ms_valid(g, MS_GF_process_used_bytes)); /* its processes are sampled too */
    assert_int_equal(g->process_used_bytes, 256 * MiB);
    ms_session_close(s);
}

static void test_device_by_uuid_and_pci_bus_id(void **state)
{
    (void)state;
    static const char *const names[] = {"GPU-fake-0001", "gpu-FAKE-0001", "00000000:41:00.0"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        ms_session *s;
        assert_int_equal(device_session(names[i], &s), 0);
        capture_gpu(s, 0, &snap);
        assert_int_equal(snap.gpu_count, 1);
        assert_int_equal(snap.gpus[0].index, 1);
        assert_string_equal(snap.gpus[0].uuid, "GPU-fake-0001");
        assert_string_equal(snap.gpus[0].name, "Fake A100");
        ms_session_close(s);
    }
}

static void test_device_missing_is_an_error(void **state)
{
    (void)state;
    static const char *const names[] = {"3", "GPU-fake-0009"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        ms_session *s;
        assert_int_equal(device_session(names[i], &s), 0);
        ms_snapshot_init(&snap);
        assert_int_equal(ms_capture(s, 0, MS_CAPTURE_GPU, &snap), MS_ENOENT);
        assert_non_null(strstr(ms_session_error(s), names[i]));
        assert_non_null(strstr(ms_session_error(s), "3 GPUs found (index 0 to 2"));
        assert_int_equal(snap.gpu_count, 0);
        /* a capture without MS_CAPTURE_GPU does not look for it */
        assert_int_equal(ms_capture(s, 0, MS_CAPTURE_BASIC, &snap), 0);
        ms_session_close(s);
    }
    ms_session *s = NULL;
    assert_int_equal(device_session("", &s), MS_EINVAL); /* NULL, not "", means every GPU */
    assert_null(s);
    assert_non_null(strstr(ms_last_error(), "empty"));
}

static void test_device_ignored_by_an_older_caller(void **state)
{
    (void)state;
    /* a caller built before ms_options.device passes the smaller size: every GPU */
    setenv("MEMSNAP_FAKE_NVML", "several", 1);
    ms_options opts = {
        .size = offsetof(ms_options, device), .sysfs = fixture_path("gpu-none/sys"), .device = "1"};
    ms_session *s;
    assert_int_equal(ms_session_open(&s, &opts), 0);
    capture_gpu(s, 0, &snap);
    assert_int_equal(snap.gpu_count, 3);
    ms_session_close(s);
}

static void test_nvml_init_once_per_session(void **state)
{
    (void)state;
    unsigned i0, s0, f0, i1, s1, f1;
    ms_session *s = nvml_session("several");
    capture_gpu(s, 0, &snap);
    fake_stats(&i0, &s0, &f0);
    void *keep = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_NOLOAD); /* keep the counters */
    for (int k = 0; k < 10; k++)
        capture_gpu(s, 0, &snap);
    ms_gpu_backend_info b[4];
    assert_int_equal(ms_gpu_backends(s, b, 4), 3);
    fake_stats(&i1, &s1, &f1);
    assert_int_equal(i1, i0); /* no nvmlInit per capture */
    assert_int_equal(s1, s0);
    assert_true(f1 > f0);
    ms_session_close(s);
    fake_stats(&i1, &s1, &f1);
    assert_int_equal(s1, s0 + 1); /* nvmlShutdown at ms_session_close */
    dlclose(keep);
}

static void test_nvml_insufficient_size_retry(void **state)
{
    (void)state;
    ms_session *s = nvml_session("insufficient");
    capture_gpu(s, 0, &snap);
    const ms_gpu *g = &snap.gpus[0];
    assert_true(g->is_per_process);
    assert_non_null(find_proc(g, 999)); /* the process that appeared between the two calls */
    assert_int_equal(g->process_count, 4);
    ms_session_close(s);
}

static void test_nvml_v2_not_supported_falls_back(void **state)
{
    (void)state;
    ms_session *s = nvml_session("v2_unsupported");
    capture_gpu(s, 0, &snap);
    const ms_gpu *g = &snap.gpus[0];
    assert_false(ms_valid(g, MS_GF_reserved_bytes)); /* only v2 knows it */
    assert_int_equal(g->used_bytes, 10 * GiB + 512 * MiB);
    assert_int_equal(g->total_bytes, 80 * GiB);
    capture_gpu(s, 0, &snap); /* the refusal is remembered: same answer */
    assert_int_equal(snap.gpus[0].used_bytes, 10 * GiB + 512 * MiB);
    ms_session_close(s);
}

static void test_nvml_sentinels_dropped(void **state)
{
    (void)state;
    ms_session *s = nvml_session("sentinel");
    capture_gpu(s, 0, &snap);
    const ms_gpu *g = &snap.gpus[0];
    assert_null(find_proc(g, 777));  /* NVML_VALUE_NOT_AVAILABLE */
    assert_null(find_proc(g, 778));  /* more than the device holds */
    assert_false(g->is_per_process); /* a process had no figure: not a full per-process view */
    assert_false(ms_valid(g, MS_GF_process_used_bytes));
    for (uint32_t k = 0; k < g->process_count; k++)
        assert_true(g->processes[k].used_bytes <= g->total_bytes);
    assert_false(ms_valid(&snap.gpus[1], MS_GF_used_bytes)); /* sentinel device figure */
    assert_true(ms_valid(&snap.gpus[1], MS_GF_total_bytes));
    ms_session_close(s);
}

static void test_nvml_stride32_records(void **state)
{
    (void)state;
    ms_session *s = nvml_session("stride32");
    capture_gpu(s, 0, &snap);
    const ms_gpu *g = &snap.gpus[0];
    assert_int_equal(g->process_count, 3);
    assert_int_equal(find_proc(g, 1)->used_bytes, 3 * GiB);
    assert_int_equal(g->process_used_bytes, 1 * GiB);
    ms_session_close(s);
}

static void test_nvml_init_failure_explained(void **state)
{
    (void)state;
    ms_session *s = nvml_session("initfail");
    ms_gpu_backend_info b[4];
    assert_int_equal(ms_gpu_backends(s, b, 4), 3);
    assert_string_equal(b[0].name, "nvml");
    assert_false(b[0].available);
    assert_non_null(strstr(b[0].detail, "Driver Not Loaded"));
    capture_gpu(s, 0, &snap);
    assert_int_equal(snap.gpu_count, 0);
    ms_session_close(s);
}

static void test_nvml_backend_info(void **state)
{
    (void)state;
    ms_session *s = nvml_session("several");
    ms_gpu_backend_info b[4];
    assert_int_equal(ms_gpu_backends(s, b, 4), 3);
    assert_true(b[0].available);
    assert_int_equal(b[0].device_count, 3);
    assert_true(b[0].supports_device_total);
    assert_true(b[0].per_process);
    assert_string_equal(b[0].driver_version, "555.42.06");
    assert_string_equal(b[0].cuda_version, "12.5");
    assert_string_equal(b[1].name, "nvidia-smi");
    assert_false(b[1].available); /* a fallback only */
    assert_non_null(strstr(b[1].detail, "NVML is loaded"));
    ms_session_close(s);
}

/* The caller seen from an outer PID namespace: NSpid maps it to the PID NVML reports. */
static void test_nvml_nspid_mapping(void **state)
{
    (void)state;
    char root[] = "/tmp/memsnap-nspid-XXXXXX";
    assert_non_null(mkdtemp(root));
    char path[4096];
    snprintf(path, sizeof(path), "%s/5000", root);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/5000/status", root);
    FILE *fp = fopen(path, "w");
    fprintf(fp, "Name:\tcontained\nPid:\t5000\nNSpid:\t5000\t%d\n", (int)getpid());
    fclose(fp);
    setenv("MEMSNAP_FAKE_NVML", "several", 1);
    ms_options opts = {.size = sizeof(opts), .procfs = root, .sysfs = fixture_path("gpu-none/sys")};
    ms_session *s;
    assert_int_equal(ms_session_open(&s, &opts), 0);
    capture_gpu(s, 5000, &snap);
    assert_int_equal(snap.gpus[0].process_used_bytes, 1 * GiB);
    ms_session_close(s);
    unlink(path);
    snprintf(path, sizeof(path), "%s/5000", root);
    rmdir(path);
    rmdir(root);
}

/* ---- sinks and reports ------------------------------------------------------------------ */

static void test_json_round_trip(void **state)
{
    (void)state;
    ms_session *s = nvml_session("several");
    ms_snapshot_init(&snap);
    assert_int_equal(ms_capture(s, 0, MS_CAPTURE_DEFAULT | MS_CAPTURE_GPU, &snap), 0);
    ms_session_close(s);
    char *json = write_snapshot(MS_FORMAT_JSON, &snap);
    assert_non_null(strstr(json, "\"gpus\":[{\"index\":0,\"backend\":\"nvml\""));
    assert_non_null(strstr(json, "\"is_per_process\":true"));
    char err[256];
    assert_int_equal(ms_snapshot_from_json(json, strlen(json), &snap2, err, sizeof(err)), 0);
    assert_true(snap2.captured & MS_CAPTURE_GPU);
    assert_int_equal(snap2.gpu_count, 3);
    for (uint32_t i = 0; i < 3; i++) {
        const ms_gpu *a = &snap.gpus[i], *b = &snap2.gpus[i];
        assert_int_equal(a->valid, b->valid);
        assert_string_equal(a->name, b->name);
        assert_string_equal(a->uuid, b->uuid);
        assert_int_equal(a->total_bytes, b->total_bytes);
        assert_int_equal(a->process_used_bytes, b->process_used_bytes);
        assert_int_equal(a->process_count, b->process_count);
        assert_int_equal(a->is_per_process, b->is_per_process);
    }
    free(json);
}

static void test_json_without_gpu_has_no_gpus_key(void **state)
{
    (void)state;
    ms_snapshot_init(&snap);
    snap.captured = MS_CAPTURE_BASIC;
    char *json = write_snapshot(MS_FORMAT_JSON, &snap);
    assert_null(strstr(json, "gpus"));
    free(json);
    snap.captured = MS_CAPTURE_GPU; /* captured, none found: [] */
    json = write_snapshot(MS_FORMAT_JSON, &snap);
    assert_non_null(strstr(json, "\"gpus\":[]"));
    free(json);
}

static void test_json_bad_gpus_named(void **state)
{
    (void)state;
    static const struct {
        const char *json, *field;
    } cases[] = {
        {"{\"schema\":\"memsnap.snapshot/1\",\"gpus\":{}}", "gpus"},
        {"{\"schema\":\"memsnap.snapshot/1\",\"gpus\":[{\"index\":\"0\"}]}", "gpus[0].index"},
        {"{\"schema\":\"memsnap.snapshot/1\",\"gpus\":[{\"index\":0,\"total_bytes\":-1}]}",
         "gpus[0].total_bytes"},
        {"{\"schema\":\"memsnap.snapshot/1\",\"gpus\":[{\"index\":0,\"name\":5}]}", "gpus[0].name"},
        {"{\"schema\":\"memsnap.snapshot/1\",\"gpus\":[{\"index\":0,\"processes\":[{\"pid\":1}]}]}",
         "gpus[0].processes[0].used_bytes"},
        {"{\"schema\":\"memsnap.snapshot/1\",\"gpus\":[{\"index\":0,\"is_per_process\":1}]}",
         "gpus[0].is_per_process"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[256] = "";
        assert_int_equal(
            ms_snapshot_from_json(cases[i].json, strlen(cases[i].json), &snap, err, sizeof(err)),
            MS_EPARSE);
        if (!strstr(err, cases[i].field))
            fail_msg("error '%s' does not name %s", err, cases[i].field);
    }
}

static void test_csv_and_text(void **state)
{
    (void)state;
    ms_session *s = nvml_session("several");
    capture_gpu(s, 0, &snap);
    ms_session_close(s);
    char *csv = write_snapshot(MS_FORMAT_CSV, &snap);
    assert_non_null(strstr(csv, ",gpu0.backend,gpu0.name,"));
    assert_non_null(strstr(csv, ",gpu2.process_used_bytes,gpu2.is_per_process\n"));
    assert_non_null(strstr(csv, ",nvml,Fake H100,GPU-fake-0000,"));
    free(csv);
    char *text = write_snapshot(MS_FORMAT_TEXT, &snap);
    assert_non_null(strstr(text, "gpu 0 Fake H100 (nvml) [per-process]"));
    assert_non_null(strstr(text, "process used"));
    free(text);
}

static void test_delta_and_reports(void **state)
{
    (void)state;
    ms_session *s = nvml_session("several");
    capture_gpu(s, 0, &snap);
    capture_gpu(s, 0, &snap2);
    ms_session_close(s);
    snap2.gpus[0].process_used_bytes += 256 * MiB;
    ms_delta d;
    ms_delta_compute(&snap, &snap2, &d);
    assert_int_equal(d.gpu_count, 3);
    assert_int_equal(d.gpus[0].process_used_bytes, (int64_t)(256 * MiB));
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    assert_int_equal(ms_report_line(fp, &snap, &snap2), 0);
    assert_int_equal(ms_report_table(fp, &snap, &snap2), 0);
    assert_int_equal(ms_report_json(fp, &snap, &snap2), 0);
    fclose(fp);
    assert_non_null(strstr(buf, "VRAM gpu0 [per-process] 1.00 GiB -> 1.25 GiB (+256.00 MiB)"));
    assert_non_null(strstr(buf, "gpu 0 Fake H100 (nvml) [per-process]"));
    assert_non_null(strstr(buf, "\"gpus\":[{\"index\":0,\"is_per_process\":true"));
    free(buf);
}

/* ---- NVML without the optional symbols -------------------------------------------------- */

static void test_minimal_nvml(void **state)
{
    (void)state;
    ms_session *s = nvml_session("several");
    capture_gpu(s, 0, &snap);
    assert_int_equal(snap.gpu_count, 3);
    const ms_gpu *g = &snap.gpus[0];
    assert_string_equal(g->name, "Fake H100");
    assert_string_equal(g->uuid, "");       /* no nvmlDeviceGetUUID */
    assert_string_equal(g->pci_bus_id, ""); /* no nvmlDeviceGetPciInfo */
    assert_false(ms_valid(g, MS_GF_reserved_bytes));
    assert_int_equal(g->used_bytes, 10 * GiB + 512 * MiB);
    assert_true(g->is_per_process); /* the v1 compute list, 16-byte records */
    assert_int_equal(g->process_count, 2);
    assert_int_equal(g->process_used_bytes, 1 * GiB);
    ms_gpu_backend_info b[4];
    ms_gpu_backends(s, b, 4);
    assert_true(b[0].available);
    assert_string_equal(b[0].cuda_version, "");
    ms_session_close(s);
}

/* ---- nvidia-smi fallback ------------------------------------------------------------------ */

static char smi_dir[64];

/* Puts a fake nvidia-smi first on PATH (a wrapper running the fake script). */
static int smi_setup(void **state)
{
    (void)state;
    snprintf(smi_dir, sizeof(smi_dir), "/tmp/memsnap-smi-XXXXXX");
    if (!mkdtemp(smi_dir))
        return -1;
    char path[256];
    snprintf(path, sizeof(path), "%s/nvidia-smi", smi_dir);
    FILE *fp = fopen(path, "w");
    const char *script = getenv("MEMSNAP_FAKE_NVSMI_SCRIPT");
    fprintf(fp, "#!/bin/sh\nexec /bin/sh '%s' \"$@\"\n", script ? script : "fake-nvidia-smi");
    fclose(fp);
    chmod(path, 0755);
    setenv("PATH", smi_dir, 1);
    setenv("MEMSNAP_GPU_BACKENDS", "nvidia-smi", 1); /* even where a real NVML exists */
    return 0;
}

static int smi_teardown(void **state)
{
    (void)state;
    char path[256];
    snprintf(path, sizeof(path), "%s/nvidia-smi", smi_dir);
    unlink(path);
    rmdir(smi_dir);
    return 0;
}

static void test_nvsmi_fallback(void **state)
{
    (void)state;
    unsetenv("MEMSNAP_FAKE_NVSMI");
    char pid[16];
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    setenv("MEMSNAP_FAKE_NVSMI_PID", pid, 1);
    ms_session *s = nvml_session("several");
    capture_gpu(s, 0, &snap);
    assert_int_equal(snap.gpu_count, 2);
    const ms_gpu *g = &snap.gpus[0];
    assert_string_equal(g->backend, "nvidia-smi");
    assert_string_equal(g->name, "Fake Smi A100");
    assert_string_equal(g->uuid, "GPU-smi-0000");
    assert_int_equal(g->total_bytes, 40960 * MiB);
    assert_int_equal(g->used_bytes, 2048 * MiB);
    assert_true(ms_valid(g, MS_GF_reserved_bytes));
    assert_true(g->is_per_process);
    assert_int_equal(g->process_count, 2);
    assert_int_equal(g->process_used_bytes, 512 * MiB);
    const ms_gpu *t4 = &snap.gpus[1];
    assert_false(ms_valid(t4, MS_GF_reserved_bytes)); /* "[N/A]" is not a number */
    assert_false(t4->is_per_process);                 /* its only row says [N/A] */
    assert_false(ms_valid(t4, MS_GF_process_used_bytes));
    ms_gpu_backend_info b[4];
    ms_gpu_backends(s, b, 4);
    assert_true(b[1].available);
    assert_string_equal(b[1].driver_version, "550.54.15");
    ms_session_close(s);
}

static void test_nvsmi_failing(void **state)
{
    (void)state;
    setenv("MEMSNAP_FAKE_NVSMI", "fail", 1);
    ms_session *s = nvml_session("several");
    ms_gpu_backend_info b[4];
    ms_gpu_backends(s, b, 4);
    assert_false(b[1].available);
    assert_non_null(strstr(b[1].detail, "exit status 9"));
    capture_gpu(s, 0, &snap);
    assert_int_equal(snap.gpu_count, 0);
    ms_session_close(s);
    unsetenv("MEMSNAP_FAKE_NVSMI");
}

/* ---- DRM --------------------------------------------------------------------------------- */

static int drm_setup(void **state)
{
    (void)state;
    setenv("MEMSNAP_GPU_BACKENDS", "drm", 1);
    return 0;
}

static void test_drm_amdgpu(void **state)
{
    (void)state;
    ms_session *s = fixture_session("gpu-amdgpu");
    capture_gpu(s, 100, &snap);
    assert_int_equal(snap.gpu_count, 1); /* card0-DP-1 and renderD128 are not cards */
    const ms_gpu *g = &snap.gpus[0];
    assert_string_equal(g->backend, "drm");
    assert_string_equal(g->name, "AMD Radeon RX 6800");
    assert_string_equal(g->pci_bus_id, "0000:03:00.0");
    assert_string_equal(g->uuid, "1a2b3c4d5e6f7081");
    assert_int_equal(g->total_bytes, UINT64_C(17163091968));
    assert_int_equal(g->used_bytes, 2 * GiB);
    assert_int_equal(g->free_bytes, UINT64_C(17163091968) - 2 * GiB);
    assert_true(g->is_per_process);
    /* fd 5 and 6 share client 7 (512 MiB, once), fd 7 is client 8 (drm-total: 256 MiB) */
    assert_int_equal(find_proc(g, 100)->used_bytes, 768 * MiB);
    assert_int_equal(find_proc(g, 200)->used_bytes, 1 * GiB); /* no unit: bytes */
    assert_null(find_proc(g, 300));                           /* malformed values: skipped */
    assert_int_equal(g->process_used_bytes, 768 * MiB);
    ms_gpu_backend_info b[4];
    ms_gpu_backends(s, b, 4);
    assert_true(b[2].available);
    assert_true(b[2].supports_device_total);
    ms_session_close(s);
}

static void test_drm_i915_has_no_device_total(void **state)
{
    (void)state;
    ms_session *s = fixture_session("gpu-i915");
    capture_gpu(s, 300, &snap);
    assert_int_equal(snap.gpu_count, 1);
    const ms_gpu *g = &snap.gpus[0];
    assert_false(ms_valid(g, MS_GF_total_bytes)); /* invalid, never 0 */
    assert_false(ms_valid(g, MS_GF_free_bytes));
    assert_false(ms_valid(g, MS_GF_used_bytes));
    assert_non_null(strstr(g->name, "Intel"));
    assert_true(g->is_per_process);
    assert_int_equal(g->process_used_bytes, 64 * MiB); /* system0 total; stolen not counted */
    ms_gpu_backend_info b[4];
    ms_gpu_backends(s, b, 4);
    assert_true(b[2].available);
    assert_false(b[2].supports_device_total);
    assert_false(b[2].supports_device_free);
    assert_true(b[2].per_process);
    ms_session_close(s);
}

static void test_drm_xe_counts_vram(void **state)
{
    (void)state;
    ms_session *s = fixture_session("gpu-xe");
    capture_gpu(s, 400, &snap);
    assert_int_equal(snap.gpu_count, 1);
    assert_false(ms_valid(&snap.gpus[0], MS_GF_total_bytes));
    assert_int_equal(snap.gpus[0].process_used_bytes, 200 * MiB); /* vram0 only */
    ms_session_close(s);
}

/* ---- no GPU at all ------------------------------------------------------------------------ */

static void test_no_gpu(void **state)
{
    (void)state;
    void *real = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (real) {
        dlclose(real);
        skip(); /* a real NVIDIA driver is installed: this host is not GPU-less */
    }
    setenv("PATH", "/nonexistent", 1);
    ms_session *s = fixture_session("gpu-none");
    capture_gpu(s, 0, &snap);
    assert_int_equal(snap.gpu_count, 0);
    ms_gpu_backend_info b[4];
    assert_int_equal(ms_gpu_backends(s, b, 4), 3);
    for (int i = 0; i < 3; i++) {
        assert_false(b[i].available);
        assert_true(b[i].detail[0] != '\0');
    }
    assert_non_null(strstr(b[0].detail, "libnvidia-ml.so.1"));
    assert_non_null(strstr(b[1].detail, "not found on PATH"));
    assert_non_null(strstr(b[2].detail, "no AMD or Intel card"));
    char *json = write_snapshot(MS_FORMAT_JSON, &snap);
    assert_non_null(strstr(json, "\"gpus\":[]"));
    free(json);
    ms_session_close(s);
}

int main(int argc, char **argv)
{
    const char *group = argc > 1 ? argv[1] : "nvml";
    const struct CMUnitTest nvml[] = {
        cmocka_unit_test(test_nvml_devices_and_processes),
        cmocka_unit_test(test_device_by_index),
        cmocka_unit_test(test_device_by_uuid_and_pci_bus_id),
        cmocka_unit_test(test_device_missing_is_an_error),
        cmocka_unit_test(test_device_ignored_by_an_older_caller),
        cmocka_unit_test(test_nvml_init_once_per_session),
        cmocka_unit_test(test_nvml_insufficient_size_retry),
        cmocka_unit_test(test_nvml_v2_not_supported_falls_back),
        cmocka_unit_test(test_nvml_sentinels_dropped),
        cmocka_unit_test(test_nvml_stride32_records),
        cmocka_unit_test(test_nvml_init_failure_explained),
        cmocka_unit_test(test_nvml_backend_info),
        cmocka_unit_test(test_nvml_nspid_mapping),
        cmocka_unit_test(test_json_round_trip),
        cmocka_unit_test(test_json_without_gpu_has_no_gpus_key),
        cmocka_unit_test(test_json_bad_gpus_named),
        cmocka_unit_test(test_csv_and_text),
        cmocka_unit_test(test_delta_and_reports),
    };
    const struct CMUnitTest minimal[] = {cmocka_unit_test(test_minimal_nvml)};
    const struct CMUnitTest smi[] = {cmocka_unit_test(test_nvsmi_fallback),
                                     cmocka_unit_test(test_nvsmi_failing)};
    const struct CMUnitTest drm[] = {cmocka_unit_test(test_drm_amdgpu),
                                     cmocka_unit_test(test_drm_i915_has_no_device_total),
                                     cmocka_unit_test(test_drm_xe_counts_vram)};
    const struct CMUnitTest none[] = {cmocka_unit_test(test_no_gpu)};
    if (strcmp(group, "nvml") == 0)
        return cmocka_run_group_tests_name("gpu-nvml", nvml, NULL, NULL);
    if (strcmp(group, "nvml-minimal") == 0)
        return cmocka_run_group_tests_name("gpu-nvml-minimal", minimal, NULL, NULL);
    if (strcmp(group, "nvidia-smi") == 0)
        return cmocka_run_group_tests_name("gpu-nvidia-smi", smi, smi_setup, smi_teardown);
    if (strcmp(group, "drm") == 0)
        return cmocka_run_group_tests_name("gpu-drm", drm, drm_setup, NULL);
    if (strcmp(group, "none") == 0)
        return cmocka_run_group_tests_name("gpu-none", none, NULL, NULL);
    fprintf(stderr, "test_gpu: unknown group '%s'\n", group);
    return 2;
}
