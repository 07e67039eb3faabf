/*
 * test_live.c - captures against the real /proc of this machine: allocations show up in RSS,
 * snapshots agree with statm read directly, full captures are complete, sessions survive
 * processes that exit or exec, fork and eviction of descriptor slots, and permission errors.
 *
 * Child processes are forked, touch a known amount of memory, report readiness through a pipe
 * and pause until the teardown kills and reaps them.
 */
#include "helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MIB          (UINT64_C(1) << 20)
#define MAX_CHILDREN 16
#define NOBODY       65534

static pid_t children[MAX_CHILDREN];
static int nchildren;

static const char *const process_field_names[] = {
#define X(name, unit, label, desc) #name,
    MS_PROCESS_FIELDS(X)
#undef X
};

/* A session on the real /proc and /sys, whatever the environment says. */
static ms_session *live_session(void)
{
    ms_options opts = {.size = sizeof(opts), .procfs = "/proc", .sysfs = "/sys"};
    ms_session *s = NULL;
    assert_int_equal(ms_session_open(&s, &opts), 0);
    assert_non_null(s);
    return s;
}

static uint64_t page_size(void)
{
    return (uint64_t)sysconf(_SC_PAGESIZE);
}

/* Reads a whole small file with plain system calls (no stdio, no malloc). Returns the length
 * or -1. */
static ssize_t read_small(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, len - 1);
    close(fd);
    if (n < 0)
        return -1;
    buf[n] = '\0';
    return n;
}

/* Reads /proc/PID/statm (pid 0: self) into its 7 page counts; 0 on success, -1 on failure. Safe
 * in a forked child: no assertion, no stdio. */
static int read_statm(pid_t pid, uint64_t v[7])
{
    char path[64], buf[256];
    if (pid)
        snprintf(path, sizeof(path), "/proc/%d/statm", (int)pid);
    else
        snprintf(path, sizeof(path), "/proc/self/statm");
    if (read_small(path, buf, sizeof(buf)) <= 0)
        return -1;
    char *p = buf;
    for (int i = 0; i < 7; i++) {
        char *end;
        errno = 0;
        v[i] = strtoull(p, &end, 10);
        if (end == p || errno)
            return -1;
        p = end;
    }
    return 0;
}

/* True when the statm page counts v and the basic fields of snap agree exactly. */
static bool statm_matches(const ms_snapshot *snap, const uint64_t v[7])
{
    uint64_t page = page_size();
    const ms_process_mem *m = &snap->process;
    return ms_valid(m, MS_PF_rss_bytes) && ms_valid(m, MS_PF_vms_bytes) &&
           ms_valid(m, MS_PF_shared_bytes) && ms_valid(m, MS_PF_text_bytes) &&
           ms_valid(m, MS_PF_data_bytes) && m->vms_bytes == v[0] * page &&
           m->rss_bytes == v[1] * page && m->shared_bytes == v[2] * page &&
           m->text_bytes == v[3] * page && m->data_bytes == v[5] * page;
}

/* Asserts that snap's basic fields are exactly pid's statm, read now. */
static void assert_statm(const ms_snapshot *snap, pid_t pid)
{
    uint64_t v[7];
    assert_int_equal(read_statm(pid, v), 0);
    uint64_t page = page_size();
    const ms_process_mem *m = &snap->process;
    assert_true(ms_valid(m, MS_PF_rss_bytes));
    assert_true(ms_valid(m, MS_PF_vms_bytes));
    assert_true(ms_valid(m, MS_PF_shared_bytes));
    assert_true(ms_valid(m, MS_PF_text_bytes));
    assert_true(ms_valid(m, MS_PF_data_bytes));
    assert_int_equal(m->vms_bytes, v[0] * page);
    assert_int_equal(m->rss_bytes, v[1] * page);
    assert_int_equal(m->shared_bytes, v[2] * page);
    assert_int_equal(m->text_bytes, v[3] * page);
    assert_int_equal(m->data_bytes, v[5] * page);
}

/* Maps and writes mib MiB of anonymous memory, one byte per page; NULL on failure. */
static char *touch_mib(uint64_t mib)
{
    size_t len = (size_t)(mib * MIB);
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    size_t page = (size_t)page_size();
    for (size_t off = 0; off < len; off += page)
        ((volatile char *)p)[off] = 1;
    return p;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits (up to 20 s) until pid sleeps, so that its memory no longer changes. */
static void wait_sleeping(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    for (int i = 0; i < 20000; i++) {
        ssize_t n = read_small(path, buf, sizeof(buf));
        const char *paren = n > 0 ? strrchr(buf, ')') : NULL;
        if (paren && paren[1] == ' ' && paren[2] == 'S')
            return;
        sleep_ms(1);
    }
    fail_msg("child %d never went to sleep", (int)pid);
}

/* Forks a child that touches mib MiB, says so on a pipe and pauses until killed. */
static pid_t spawn_child(uint64_t mib)
{
    assert_true(nchildren < MAX_CHILDREN);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        if (mib && !touch_mib(mib))
            _exit(1);
        char c = 'r';
        if (write(fds[1], &c, 1) != 1)
            _exit(1);
        for (;;)
            pause();
    }
    close(fds[1]);
    children[nchildren++] = pid;
    char c;
    ssize_t n;
    do
        n = read(fds[0], &c, 1);
    while (n < 0 && errno == EINTR);
    close(fds[0]);
    assert_int_equal(n, 1);
    wait_sleeping(pid);
    return pid;
}

/* Kills and reaps one child, forgetting it. */
static void reap_child(pid_t pid)
{
    for (int i = 0; i < nchildren; i++) {
        if (children[i] != pid)
            continue;
        kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        children[i] = children[--nchildren];
        return;
    }
}

/* Teardown: no child outlives its test, whether it passed or not. */
static int reap_children(void **state)
{
    (void)state;
    while (nchildren > 0)
        reap_child(children[nchildren - 1]);
    return 0;
}

/* Waits for pid and returns its exit status, or 128 + signal. */
static int wait_status(pid_t pid)
{
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ---------------------------------------------------------------------------------------- */

static void test_rss_follows_allocation(void **state)
{
    (void)state;
    ms_session *s = live_session();
    ms_snapshot before, during, after;
    ms_snapshot_init(&before);
    ms_snapshot_init(&during);
    ms_snapshot_init(&after);

    assert_int_equal(ms_capture(s, 0, MS_CAPTURE_BASIC, &before), 0);
    char *p = touch_mib(64);
    assert_non_null(p);
    assert_int_equal(ms_capture(s, 0, MS_CAPTURE_BASIC, &during), 0);
    assert_int_equal(munmap(p, (size_t)(64 * MIB)), 0);
    assert_int_equal(ms_capture(s, 0, MS_CAPTURE_BASIC, &after), 0);
    ms_session_close(s);

    int64_t rise = (int64_t)(during.process.rss_bytes - before.process.rss_bytes);
    int64_t fall = (int64_t)(during.process.rss_bytes - after.process.rss_bytes);
    print_message("RSS %llu -> %llu -> %llu bytes\n", (unsigned long long)before.process.rss_bytes,
                  (unsigned long long)during.process.rss_bytes,
                  (unsigned long long)after.process.rss_bytes);
    assert_in_range(rise, 56 * MIB, 72 * MIB);
    assert_in_range(fall, 56 * MIB, 72 * MIB);
    /* VMS followed the mapping too. */
    assert_true(during.process.vms_bytes >= before.process.vms_bytes + 64 * MIB);
}

static void test_child_matches_statm(void **state)
{
    (void)state;
    pid_t pid = spawn_child(3);
    ms_session *s = live_session();
    ms_snapshot snap;
    ms_snapshot_init(&snap);
    assert_int_equal(ms_capture(s, pid, MS_CAPTURE_BASIC, &snap), 0);
    assert_int_equal(snap.pid, pid);
    assert_int_equal(snap.captured, MS_CAPTURE_BASIC);
    assert_statm(&snap, pid);
    /* A second capture on the kept-open descriptor reads the same again. */
    assert_int_equal(ms_capture(s, pid, MS_CAPTURE_BASIC, &snap), 0);
    assert_statm(&snap, pid);
    ms_session_close(s);
}

static void test_full_self_process(void **state)
{
    (void)state;
    ms_session *s = live_session();
    ms_snapshot snap;
    ms_snapshot_init(&snap);
    int rc = ms_capture(s, 0, MS_CAPTURE_FULL, &snap);
    if (rc)
        fail_msg("full capture failed: %s: %s", ms_err_name(rc), ms_session_error(s));
    ms_session_close(s);

    assert_int_equal(snap.pid, getpid());
    assert_int_equal(snap.captured, MS_CAPTURE_FULL);
    for (int f = 0; f < MS_PF__COUNT; f++)
        if (!ms_valid(&snap.process, f))
            fail_msg("process field %s is not valid", process_field_names[f]);
    const ms_process_mem *m = &snap.process;
    assert_true(m->rss_bytes > 0);
    assert_true(m->pss_bytes <= m->rss_bytes);
    assert_true(m->uss_bytes <= m->pss_bytes);
    assert_true(m->threads >= 1);
    assert_true(m->peak_rss_bytes >= m->rss_bytes);
    assert_true(m->peak_vms_bytes >= m->vms_bytes);
    assert_true(m->rss_anon_bytes + m->rss_file_bytes + m->rss_shmem_bytes > 0);
    assert_true(m->minor_faults > 0);
}

static void test_full_self_system(void **state)
{
    (void)state;
    ms_session *s = live_session();
    ms_snapshot snap;
    ms_snapshot_init(&snap);
    assert_int_equal(ms_capture(s, 0, MS_CAPTURE_SYSTEM, &snap), 0);
    ms_session_close(s);

    const ms_system_mem *m = &snap.system;
    for (int f = 0; f < MS_SF__COUNT; f++)
        assert_true(ms_valid(m, f));
    assert_true(m->total_bytes > 0);
    assert_true(m->available_bytes <= m->total_bytes);
    assert_true(m->free_bytes <= m->total_bytes);
    assert_true(m->swap_free_bytes <= m->swap_total_bytes);
    /* Process and cgroup sections were not asked for. */
    assert_int_equal(snap.captured, MS_CAPTURE_SYSTEM);
    assert_int_equal(snap.process.valid, 0);
    assert_int_equal(snap.cgroup.valid, 0);
}

/* The path of the v1 memory controller line of /proc/self/cgroup into out; false when none. */
static bool self_memory_cgroup(char *out, size_t len)
{
    char buf[8192];
    if (read_small("/proc/self/cgroup", buf, sizeof(buf)) <= 0)
        return false;
    char *lines;
    for (char *line = strtok_r(buf, "\n", &lines); line; line = strtok_r(NULL, "\n", &lines)) {
        /* hierarchy-id:controller-list:path; controllers comma-separated */
        char *c1 = strchr(line, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        *c2 = '\0';
        char *words;
        for (char *w = strtok_r(c1 + 1, ",", &words); w; w = strtok_r(NULL, ",", &words)) {
            if (strcmp(w, "memory") == 0) {
                snprintf(out, len, "%s", c2 + 1);
                return true;
            }
        }
    }
    return false;
}

static void test_full_self_cgroup(void **state)
{
    (void)state;
    char want[4096];
    if (!self_memory_cgroup(want, sizeof(want))) {
        print_message("skipped: /proc/self/cgroup has no v1 memory controller line\n");
        skip();
    }
    ms_session *s = live_session();
    ms_snapshot snap;
    ms_snapshot_init(&snap);
    int rc = ms_capture(s, 0, MS_CAPTURE_FULL, &snap);
    if (rc)
        fail_msg("full capture failed: %s: %s", ms_err_name(rc), ms_session_error(s));
    ms_session_close(s);

    assert_int_not_equal(snap.cgroup.version, MS_CGROUP_NONE);
    assert_int_equal(snap.cgroup.version, MS_CGROUP_V1);
    assert_string_equal(snap.cgroup.path, want);
    assert_true(ms_valid(&snap.cgroup, MS_CF_current_bytes));
    assert_true(snap.cgroup.current_bytes > 0);
    assert_true(ms_valid(&snap.cgroup, MS_CF_max_bytes) || snap.cgroup.unlimited);
}
static void test_session_survives_exit(void **state)
{
    (void)state;
    pid_t gone = spawn_child(1);
    pid_t alive = spawn_child(2);
    ms_session *s = live_session();
    ms_snapshot snap;
    ms_snapshot_init(&snap);
    assert_int_equal(ms_capture(s, gone, MS_CAPTURE_FULL, &snap), 0);
    assert_int_equal(snap.pid, gone);

    reap_child(gone);
    /* The kept-open descriptors now point at a process that is gone... */
    int rc = ms_capture(s, gone, MS_CAPTURE_BASIC, &snap);
    assert_int_equal(rc, MS_ESRCH);
    const char *msg = ms_session_error(s);
    print_message("after exit: %s\n", msg);
    assert_true(strstr(msg, "exited") || strstr(msg, "does not exist"));
    char pidtext[32];
    snprintf(pidtext, sizeof(pidtext), "%d", (int)gone);
    assert_non_null(strstr(msg, pidtext));
    /* ...and so does a fresh open of its files. */
    assert_int_equal(ms_capture(s, gone, MS_CAPTURE_FULL, &snap), MS_ESRCH);
    assert_true(strstr(ms_session_error(s), "exited") ||
                strstr(ms_session_error(s), "does not exist"));

    /* The session itself is fine: another live process and self still capture. */
    assert_int_equal(ms_capture(s, alive, MS_CAPTURE_FULL, &snap), 0);
    assert_int_equal(snap.pid, alive);
    assert_string_equal(ms_session_error(s), "");
    assert_statm(&snap, alive);
    assert_int_equal(ms_capture(s, 0, MS_CAPTURE_BASIC, &snap), 0);
    assert_int_equal(snap.pid, getpid());
    ms_session_close(s);
}

/* Whether /proc/PID/stat shows a kernel thread (PF_KTHREAD in its flags, field 9). */
static bool is_kernel_thread(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *fp = fopen(path, "r");
    if (!fp)
        return false;
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    unsigned long flags = 0;
    return p && sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %lu", &flags) == 1 &&
           (flags & 0x00200000u) != 0;
}

/* A kernel thread (kthreadd, pid 2) has no address space: statm reads zeros and smaps_rollup
 * ESRCH. It is no exited process: everything but PSS and USS is read, and PSS says why. */
static void test_kernel_thread(void **state)
{
    (void)state;
    if (!is_kernel_thread(2)) {
        print_message("skipped: pid 2 is not a kernel thread here (a container?)\n");
        skip();
    }
    ms_session *s = live_session();
    ms_snapshot snap;
    ms_snapshot_init(&snap);
    unsigned all_but_pss = MS_CAPTURE_FULL & ~(unsigned)MS_CAPTURE_PSS;
    assert_int_equal(ms_capture(s, 2, all_but_pss, &snap), 0);
    assert_true(ms_valid(&snap.process, MS_PF_rss_bytes));
    assert_int_equal(snap.process.rss_bytes, 0);
    assert_int_equal(snap.process.vms_bytes, 0);
    assert_true(ms_valid(&snap.process, MS_PF_threads));
    for (int i = 0; i < 2; i++) { /* a fresh descriptor, then the kept one */
        assert_int_equal(ms_capture(s, 2, MS_CAPTURE_FULL, &snap), MS_ENOTSUP);
        assert_string_equal(ms_session_error(s), "process 2 has no address space (kernel thread)");
    }
    assert_int_equal(ms_capture(s, 2, all_but_pss, &snap), 0); /* the slot is still sound */
    ms_session_close(s);
}

/* A zombie has no address space either, but it has exited. */
static void test_zombie_is_exited(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(0);
    children[nchildren++] = pid;
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    for (int i = 0; i < 2000; i++) { /* until it is a zombie */
        char buf[256] = "";
        FILE *fp = fopen(path, "r");
        if (fp) {
            size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
            buf[n] = '\0';
            fclose(fp);
        }
        char *p = strrchr(buf, ')');
        if (p && p[1] == ' ' && p[2] == 'Z')
            break;
        sleep_ms(10);
    }
    ms_session *s = live_session();
    ms_snapshot snap;
    ms_snapshot_init(&snap);
    assert_int_equal(ms_capture(s, pid, MS_CAPTURE_PSS, &snap), MS_ESRCH);
    assert_non_null(strstr(ms_session_error(s), "exited"));
    ms_session_close(s);
}

/* Waits (up to 20 s) until pid's comm is name. */
static void wait_comm(pid_t pid, const char *name)
{
    char path[64], buf[64];
    snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
    for (int i = 0; i < 20000; i++) {
        if (read_small(path, buf, sizeof(buf)) > 0 && strcmp(strtok(buf, "\n"), name) == 0)
            return;
        sleep_ms(1);
    }
    fail_msg("child %d never became %s", (int)pid, name);
}

/* smaps_rollup reads the address space it was opened on: after the process execs, the kept
 * descriptor reads ESRCH. The capture must open it again, not report the process gone. */
static void test_session_survives_exec(void **state)
{
    (void)state;
    int go[2];
    assert_int_equal(pipe(go), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char c;
        close(go[1]);
        if (!touch_mib(32) || read(go[0], &c, 1) != 1)
            _exit(1);
        execlp("sleep", "sleep", "30", (char *)NULL);
        _exit(127);
    }
    close(go[0]);
    children[nchildren++] = pid;
    wait_sleeping(pid);
    ms_session *s = live_session();
    ms_snapshot snap;
    ms_snapshot_init(&snap);
    assert_int_equal(ms_capture(s, pid, MS_CAPTURE_FULL, &snap), 0);
    assert_true(ms_valid(&snap.process, MS_PF_pss_bytes));
    assert_true(snap.process.pss_bytes >= 32 * MIB);

    assert_int_equal(write(go[1], "x", 1), 1);
    close(go[1]);
    wait_comm(pid, "sleep");
    wait_sleeping(pid);
    for (int i = 0; i < 2; i++) { /* the reopened descriptor is kept, and reads again */
        int rc = ms_capture(s, pid, MS_CAPTURE_FULL, &snap);
        if (rc)
            fail_msg("capture after exec: %s", ms_session_error(s));
        assert_true(ms_valid(&snap.process, MS_PF_pss_bytes));
        assert_true(snap.process.pss_bytes < 8 * MIB); /* sleep's, not the 32 MiB image's */
        assert_statm(&snap, pid);
    }
    ms_session_close(s);
}

/* Exit codes of the forked child in test_fork_safety. */
enum { FORK_OK, FORK_NOMEM, FORK_CAPTURE, FORK_PID, FORK_STATM, FORK_RSS };

static void test_fork_safety(void **state)
{
    (void)state;
    ms_session *s = live_session();
    ms_snapshot snap;
    ms_snapshot_init(&snap);
    assert_int_equal(ms_capture(s, 0, MS_CAPTURE_BASIC, &snap), 0);
    assert_int_equal(snap.pid, getpid());

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* Make the child's RSS clearly differ from the parent's: a stale /proc/self
         * descriptor would report the parent's. */
        if (!touch_mib(16))
            _exit(FORK_NOMEM);
        int code = FORK_RSS;
        for (int attempt = 0; attempt < 20; attempt++) {
            uint64_t v[7];
            if (ms_capture(s, 0, MS_CAPTURE_BASIC, &snap) != 0)
                _exit(FORK_CAPTURE);
            if (snap.pid != getpid())
                _exit(FORK_PID);
            if (read_statm(0, v) != 0)
                _exit(FORK_STATM);
            if (statm_matches(&snap, v)) {
                code = FORK_OK;
                break;
            }
        }
        _exit(code);
    }
    int st = wait_status(pid);
    static const char *const why[] = {"ok",
                                      "mmap failed",
                                      "capture failed",
                                      "snap.pid is not the child's pid",
                                      "cannot read statm",
                                      "rss does not match the child's own statm"};
    if (st != FORK_OK)
        fail_msg("child: %s (exit %d)",
                 st >= 0 && st < (int)(sizeof(why) / sizeof(why[0])) ? why[st] : "crashed", st);

    /* The parent's session was not disturbed by the child. */
    assert_int_equal(ms_capture(s, 0, MS_CAPTURE_BASIC, &snap), 0);
    assert_int_equal(snap.pid, getpid());
    ms_session_close(s);
}

/* Exit codes of the unprivileged child in test_permission_denied. */
enum { PERM_OK, PERM_NODROP, PERM_SESSION, PERM_CAPTURED, PERM_CODE, PERM_MESSAGE };

static void test_permission_denied(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        print_message("skipped: not root, so there is no privilege to drop\n");
        skip();
    }
    pid_t target = spawn_child(1); /* a root process */
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        /* Root bypasses file modes: become nobody for good, groups first. */
        if (setgroups(0, NULL) != 0 || setgid(NOBODY) != 0 || setuid(NOBODY) != 0 ||
            getuid() != NOBODY || geteuid() != NOBODY)
            _exit(PERM_NODROP);
        ms_session *s;
        ms_options opts = {.size = sizeof(opts), .procfs = "/proc", .sysfs = "/sys"};
        if (ms_session_open(&s, &opts) != 0)
            _exit(PERM_SESSION);
        ms_snapshot snap;
        ms_snapshot_init(&snap);
        int rc = ms_capture(s, target, MS_CAPTURE_FULL, &snap);
        const char *msg = ms_session_error(s);
        if (write(fds[1], msg, strlen(msg)) < 0)
            _exit(PERM_MESSAGE);
        char file[64];
        snprintf(file, sizeof(file), "/proc/%d/smaps", (int)target);
        _exit(rc == 0             ? PERM_CAPTURED
              : rc != MS_EACCES   ? PERM_CODE
              : strstr(msg, file) ? PERM_OK
                                  : PERM_MESSAGE);
    }
    close(fds[1]);
    char msg[600] = "";
    size_t got = 0;
    ssize_t n;
    while ((n = read(fds[0], msg + got, sizeof(msg) - 1 - got)) > 0)
        got += (size_t)n;
    msg[got] = '\0';
    close(fds[0]);
    int st = wait_status(pid);
    if (st == PERM_NODROP) {
        print_message("skipped: cannot switch to uid/gid %d here\n", NOBODY);
        skip();
    }
    print_message("as nobody: %s\n", msg);
    static const char *const why[] = {"ok",
                                      "",
                                      "cannot open a session",
                                      "the capture succeeded",
                                      "the capture failed, not MS_EACCES",
                                      "the message does not name the smaps file"};
    if (st != PERM_OK)
        fail_msg("child: %s (exit %d; message '%s')",
                 st > 0 && st < (int)(sizeof(why) / sizeof(why[0])) ? why[st] : "crashed", st, msg);
}

static void test_many_slots(void **state)
{
    (void)state;
    enum { N = 10 };
    pid_t pids[N];
    /* Each child touches a different amount, so that mixed-up descriptors cannot agree. */
    for (int i = 0; i < N; i++)
        pids[i] = spawn_child((uint64_t)i + 1);
    ms_session *s = live_session();
    ms_snapshot snap;
    ms_snapshot_init(&snap);
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++) {
            int rc = ms_capture(s, pids[i], MS_CAPTURE_BASIC | MS_CAPTURE_PROCESS, &snap);
            if (rc)
                fail_msg("round %d child %d: %s", round, i, ms_session_error(s));
            assert_int_equal(snap.pid, pids[i]);
            assert_statm(&snap, pids[i]);
            assert_int_equal(snap.process.threads, 1);
            assert_true(snap.process.peak_rss_bytes >= snap.process.rss_bytes);
        }
    }
    /* Order changes nothing: backwards, and self in between. */
    for (int i = N - 1; i >= 0; i--) {
        assert_int_equal(ms_capture(s, pids[i], MS_CAPTURE_BASIC, &snap), 0);
        assert_statm(&snap, pids[i]);
        assert_int_equal(ms_capture(s, 0, MS_CAPTURE_BASIC, &snap), 0);
        assert_int_equal(snap.pid, getpid());
    }
    ms_session_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_rss_follows_allocation, reap_children),
        cmocka_unit_test_teardown(test_child_matches_statm, reap_children),
        cmocka_unit_test_teardown(test_full_self_process, reap_children),
        cmocka_unit_test_teardown(test_full_self_system, reap_children),
        cmocka_unit_test_teardown(test_full_self_cgroup, reap_children),
        cmocka_unit_test_teardown(test_session_survives_exit, reap_children),
        cmocka_unit_test_teardown(test_session_survives_exec, reap_children),
        cmocka_unit_test_teardown(test_fork_safety, reap_children),
        cmocka_unit_test_teardown(test_permission_denied, reap_children),
        cmocka_unit_test_teardown(test_kernel_thread, reap_children),
        cmocka_unit_test_teardown(test_zombie_is_exited, reap_children),
        cmocka_unit_test_teardown(test_many_slots, reap_children),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
