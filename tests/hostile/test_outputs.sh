#!/bin/sh
# test_outputs.sh - the files memsnap writes and reads (issue 13, items 6, 7, 9, 11, 13, 16):
# -o, --record and --html never write into a directory, device, FIFO or socket, never destroy
# what is there when the run fails (a full disk, a command that cannot start), and refuse two
# outputs naming one file; every reader refuses a FIFO at once instead of blocking; bytes that
# are not UTF-8 on a command line or in --job-id do not make monitor output unreadable; I/O
# errors name the file and the cause.
#
# Environment (set by meson): MEMSNAP_BIN, MEMSNAP_FIXTURES. The full-disk cases mount a small
# tmpfs, which needs root: skipped, with the reason, where mount is not permitted.

set -u

BIN=${MEMSNAP_BIN:?MEMSNAP_BIN must name the memsnap binary}
FIX=${MEMSNAP_FIXTURES:?MEMSNAP_FIXTURES must name tests/fixtures}
HERE=$(cd "$(dirname "$0")" && pwd)
MEMSNAP_PROCFS=
MEMSNAP_SYSFS=
export MEMSNAP_PROCFS MEMSNAP_SYSFS

TEST_NAME=hostile-outputs
. "$HERE/../lib.sh"

# The tmpfs of the full-disk cases is unmounted before $T is removed.
cleanup() {
    for p in $BG; do kill "$p" 2>/dev/null; done
    [ -d "$T/full" ] && umount "$T/full" 2>/dev/null
    rm -rf "$T"
}

# Every memsnap run here ends within 5 s: a reader blocked on a FIFO shows as exit 124.
ms() {
    timeout 5 "$BIN" "$@" >"$T/out" 2>"$T/err"
    rc=$?
}

# json_get FILE EXPR: the Python expression EXPR over the JSON document in FILE (d).
json_get() {
    python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# no_temp DIR: DIR holds no temporary file of memsnap's (".NAME.XXXXXX").
no_temp() {
    [ -z "$(ls -A "$1" | grep '^\..*\.[A-Za-z0-9]\{6\}$')" ]
}

# same DESC FILE TEXT: FILE still holds exactly TEXT (and one newline).
same() {
    if [ "$(cat "$2" 2>/dev/null)" = "$3" ]; then ok "$1"; else not_ok "$1" "$2 changed"; fi
}

mkdir "$T/dir"
mkfifo "$T/fifo"
ln -s fifo "$T/fifo-link"
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$T/sock"
# Devices of our own (/dev/null and /dev/zero's numbers): a memsnap that unlinks or replaces
# its output (as --record did) must not take the system's /dev/null with it.
DEV=""
if mknod -m 666 "$T/null" c 1 3 2>/dev/null && mknod -m 666 "$T/zero" c 1 5 2>/dev/null; then
    DEV=yes
fi
QUICK="--no-gpu --interval 0.02"

# ---------------------------------------------------------------------------------------------
echo "# item 7: outputs that are not regular files are refused, one line, nothing written"

for cmd in "snapshot -o" "monitor $QUICK -o" "track $QUICK -o" "monitor $QUICK --record"; do
    set -- $cmd
    tail=""
    [ "$1" = snapshot ] || tail="-- true"
    expect_error "$cmd DIR" 1 "refusing to write $T/dir: it is a directory" "$@" "$T/dir" $tail
    expect_error "$cmd FIFO: refused without waiting for a reader" 1 \
        "refusing to write $T/fifo: it is a named pipe (FIFO)" "$@" "$T/fifo" $tail
    if [ -n "$DEV" ]; then
        expect_error "$cmd a device" 1 "refusing to write $T/null: it is a device" \
            "$@" "$T/null" $tail
        check "... it is still the device" [ -c "$T/null" ]
    fi
done
expect_error "snapshot -o a socket" 1 "refusing to write $T/sock: it is a socket" \
    snapshot -o "$T/sock"
expect_error "snapshot -o a symlink to a FIFO" 1 "it is a named pipe (FIFO)" \
    snapshot -o "$T/fifo-link"
check "... the FIFO is still a FIFO" [ -p "$T/fifo" ]
[ -n "$DEV" ] || skip "outputs that are devices: cannot make device nodes (mknod needs root)"
check "... the directory is untouched and holds no temporary file" \
    sh -c '[ -z "$(ls -A "$1")" ]' _ "$T/dir"

# A monitor output for analyze.
ms monitor --no-gpu --interval 0.02 -o "$T/run.jsonl" -- sh -c 'sleep 0.1'
check "a monitor output to analyze (exit $rc)" [ "$rc" -eq 0 ]
expect_error "analyze --html DIR" 1 "refusing to write $T/dir: it is a directory" \
    analyze "$T/run.jsonl" --html "$T/dir"
expect_error "analyze --html FIFO" 1 "refusing to write $T/fifo: it is a named pipe (FIFO)" \
    analyze "$T/run.jsonl" --html "$T/fifo"
if [ -n "$DEV" ]; then
    expect_error "analyze --html a device" 1 "it is a device" analyze "$T/run.jsonl" --html "$T/null"
fi

# The program being run is not an output.
cp /bin/true "$T/app"
cksum <"$T/app" >"$T/app.sum"
expect_error "monitor -o ./app -- ./app: usage error" 2 "it is the program to be run" \
    monitor $QUICK -o "$T/app" -- "$T/app"
expect_error "monitor --record ./app -- ./app: usage error" 2 "it is the program to be run" \
    monitor $QUICK --record "$T/app" -- "$T/app"
check "... and the program is intact" sh -c '[ "$(cksum <"$1/app")" = "$(cat "$1/app.sum")" ]' _ "$T"

# A regular file is replaced whole: a new file, 0600, and no temporary file left beside it.
echo "old" >"$T/snap.json"
chmod 644 "$T/snap.json"
ms snapshot -F json -o "$T/snap.json"
check "snapshot -o an existing file replaces it (exit $rc)" \
    sh -c '[ "$1" -eq 0 ] && grep -q "memsnap.snapshot/1" "$2"' _ "$rc" "$T/snap.json"
check "... created 0600" [ "$(stat -c %a "$T/snap.json")" = 600 ]
check "... no temporary file left" no_temp "$T"

# A failed start leaves the old output as it was.
echo "old monitor output" >"$T/keep.jsonl"
expect_error "monitor -o FILE with a command that cannot start: exit 127" 127 "cannot execute" \
    monitor $QUICK -o "$T/keep.jsonl" -- "$T/no-such-program"
same "... FILE is left as it was" "$T/keep.jsonl" "old monitor output"
check "... no temporary file left" no_temp "$T"
echo "old trace" >"$T/keep.mst"
: >"$T/not-a-dir"
ms monitor $QUICK --record "$T/keep.mst" --oom-dump-dir "$T/not-a-dir/x" -- true
check "monitor --record TRACE failing before the command starts: exit 1 ($rc)" [ "$rc" -eq 1 ]
same "... TRACE is left as it was" "$T/keep.mst" "old trace"
# --record TRACE: the tracker writes a temporary file, renamed over TRACE (and its children's
# TRACE.<pid> files) when the command has ended; until then TRACE is what it was.
mkdir "$T/rec"
echo "old trace" >"$T/rec/t.mst"
"$BIN" monitor --no-gpu --interval 0.05 -o "$T/rec/m.jsonl" --record "$T/rec/t.mst" \
    -- sh -c 'sleep 0.6 & wait' 2>"$T/rec.err" &
MON=$!
BG="$BG $MON"
wait_for grep -qs '"record":"sample"' "$T/rec/m.jsonl"
same "monitor --record TRACE: TRACE is the old file while the command runs" "$T/rec/t.mst" "old trace"
wait "$MON"
check "... then the new trace (exit $?)" sh -c 'head -c 8 "$1" | grep -q MEMSNAPT' _ "$T/rec/t.mst"
check "... the forked child's trace is TRACE.<pid>" sh -c 'ls "$1"/t.mst.[0-9]* >/dev/null' _ "$T/rec"
check "... no temporary file left" no_temp "$T/rec"
check "... the start record names TRACE" grep -q "\"trace\":\"$T/rec/t.mst\"" "$T/rec/m.jsonl"
echo "old report" >"$T/keep.html"
printf 'hello world\n' >"$T/text.txt"
expect_error "analyze --html OUT on input it cannot read: exit 1" 1 "not memsnap monitor output" \
    analyze "$T/text.txt" --html "$T/keep.html"
same "... OUT is left as it was" "$T/keep.html" "old report"
check "... no temporary file left" no_temp "$T"

# monitor -o replaces FILE at its first record, not at the end: a reader sees it grow.
echo "old" >"$T/grow.jsonl"
"$BIN" monitor --no-gpu --interval 0.05 -o "$T/grow.jsonl" -- sleep 2 2>"$T/grow.err" &
MON=$!
BG="$BG $MON"
grown() { grep -q '"record":"sample"' "$T/grow.jsonl"; }
if wait_for grown && kill -0 "$MON" 2>/dev/null; then
    ok "monitor -o FILE: samples can be read from FILE while the monitor runs"
else
    not_ok "monitor -o FILE: samples can be read from FILE while the monitor runs"
fi
wait "$MON"
check "... and the run ends with its end record" grep -q '"record":"end"' "$T/grow.jsonl"

# ---------------------------------------------------------------------------------------------
echo "# item 9: two outputs naming one file are a usage error"

echo "precious" >"$T/one.jsonl"
expect_error "monitor -o X --record X" 2 "refusing to write $T/one.jsonl: it is given twice" \
    monitor $QUICK -o "$T/one.jsonl" --record "$T/one.jsonl" -- true
expect_error "track -o X --record X" 2 "it is given twice" \
    track $QUICK -o "$T/one.jsonl" --record "$T/one.jsonl" -- true
ln -s one.jsonl "$T/one-link"
expect_error "monitor -o LINK --record X (LINK -> X)" 2 "it is the same file as $T/one.jsonl" \
    monitor $QUICK -o "$T/one-link" --record "$T/one.jsonl" -- true
same "... X is untouched" "$T/one.jsonl" "precious"
expect_error "two spellings of a file that does not exist yet" 2 "it is the same file as" \
    monitor $QUICK -o "$T/dir/../new.jsonl" --record "$T/new.jsonl" -- true
(cd "$T" && timeout 5 "$BIN" monitor $QUICK -o new.jsonl --record "./new.jsonl" -- true \
    >"$T/out" 2>"$T/err")
check "... also relative to the working directory (exit $?)" grep -q "same file" "$T/err"
check "... and nothing was created" [ ! -e "$T/new.jsonl" ]

# ---------------------------------------------------------------------------------------------
echo "# item 13: readers refuse a FIFO (nobody writes it) and other non-regular files at once"

expect_error "analyze FIFO" 1 "cannot read $T/fifo: it is a named pipe (FIFO)" analyze "$T/fifo"
expect_error "diff FIFO X" 1 "cannot read $T/fifo: it is a named pipe (FIFO)" \
    diff "$T/fifo" "$T/snap.json"
expect_error "diff X FIFO" 1 "cannot read $T/fifo: it is a named pipe (FIFO)" \
    diff "$T/snap.json" "$T/fifo"
expect_error "diff through a link to a FIFO" 1 "it is a named pipe (FIFO)" \
    diff "$T/fifo-link" "$T/snap.json"
expect_error "bench engine FIFO" 1 "cannot read $T/fifo: it is a named pipe (FIFO)" \
    bench engine "$T/fifo"
expect_error "report FIFO" 1 "it is a named pipe (FIFO)" report "$T/fifo"
expect_error "report --stats FIFO" 1 "is a named pipe (FIFO)" report --stats "$T/fifo"
expect_error "analyze a socket" 1 "cannot read $T/sock: it is a socket" analyze "$T/sock"
if [ -n "$DEV" ]; then
    expect_error "diff a device" 1 "cannot read $T/zero: it is a device" diff "$T/zero" "$T/snap.json"
fi
# A --procfs tree is any directory: a FIFO in it is refused, not waited on.
fixture_copy cli-basic "$T/tree"
ROOTS="--procfs $T/tree/proc --sysfs $T/tree/sys"
ms snapshot $ROOTS --pid 4242
check "the fixture tree can be read (exit $rc)" [ "$rc" -eq 0 ]
rm "$T/tree/proc/meminfo"
mkfifo "$T/tree/proc/meminfo"
expect_error "--procfs tree whose meminfo is a FIFO" 1 "$T/tree/proc/meminfo" snapshot $ROOTS --pid 4242
cp "$FIX/cli-basic/proc/meminfo" "$T/tree/proc/meminfo.new"
mv "$T/tree/proc/meminfo.new" "$T/tree/proc/meminfo"
rm "$T/tree/proc/4242/statm"
mkfifo "$T/tree/proc/4242/statm"
expect_error "--procfs tree whose PID's statm is a FIFO" 1 "$T/tree/proc/4242/statm" \
    snapshot $ROOTS --pid 4242
ms monitor $ROOTS --pid 4242 --no-gpu --duration 0.1 -o "$T/fifo-tree.jsonl"
check "monitor --pid over that tree fails at once (exit $rc)" [ "$rc" -eq 1 ]
# The cgroup and the DRM backends read the same trees through the same check.
cg="$T/tree/sys/fs/cgroup/app.slice/fixture.service"
cp "$FIX/cli-basic/proc/4242/statm" "$T/tree/proc/4242/statm.new"
mv "$T/tree/proc/4242/statm.new" "$T/tree/proc/4242/statm"
rm "$cg/memory.peak"
mkfifo "$cg/memory.peak"
ms snapshot $ROOTS --pid 4242 --format json
check "--sysfs tree whose cgroup memory.peak is a FIFO: no wait (exit $rc)" [ "$rc" -lt 124 ]
fixture_copy gpu-amdgpu "$T/gtree"
vram="$T/gtree/sys/class/drm/card0/device/mem_info_vram_used"
rm "$vram"
mkfifo "$vram"
MEMSNAP_GPU_BACKENDS=drm ms gpu ps --procfs "$T/gtree/proc" --sysfs "$T/gtree/sys"
check "--sysfs tree whose DRM mem_info_vram_used is a FIFO: no wait, used unknown (exit $rc)" \
    sh -c '[ "$1" -eq 0 ] && grep -q "? / 15.98 GiB" "$2"' _ "$rc" "$T/out"

# ---------------------------------------------------------------------------------------------
echo "# item 16: I/O errors name the file and the cause in words"

expect_error "diff DIR X" 1 "memsnap diff: cannot read $T/dir: it is a directory" \
    diff "$T/dir" "$T/snap.json"
expect_error "diff MISSING X" 1 "memsnap diff: cannot read $T/nope.json: No such file or directory" \
    diff "$T/nope.json" "$T/snap.json"
expect_error "bench engine DIR" 1 "memsnap bench: cannot read $T/dir: it is a directory" \
    bench engine "$T/dir"
expect_error "report DIR" 1 "memsnap report: cannot read $T/dir: it is a directory" report "$T/dir"
expect_error "snapshot -o in a missing directory" 1 \
    "memsnap snapshot: cannot create $T/nope/s.json: No such file or directory" \
    snapshot -o "$T/nope/s.json"

# ---------------------------------------------------------------------------------------------
echo "# item 11: bytes that are not UTF-8 in a command line or --job-id"

for f in json csv; do
    ms monitor --no-gpu --interval 0.02 -F "$f" --job-id "$(printf 'j\377b')" -o "$T/u.$f" \
        -- sh -c "exit 0" "$(printf 'a\377b')"
    check "monitor -F $f with non-UTF-8 bytes (exit $rc)" [ "$rc" -eq 0 ]
    ms analyze -F json "$T/u.$f"
    check "... analyze reads it (exit $rc)" [ "$rc" -eq 0 ]
    cp "$T/out" "$T/u-$f.json"
    check "... the job id shows, its bad byte as U+FFFD" \
        [ "$(json_get "$T/u-$f.json" "d['start']['job_id'] == 'j\ufffdb'")" = True ]
    check "... the command shows, its bad byte as U+FFFD" \
        [ "$(json_get "$T/u-$f.json" "'a\ufffdb' in ' '.join(d['start']['command'])")" = True ]
    ms analyze "$T/u.$f"
    check "... and the text report shows the command ($rc)" \
        grep -q "$(printf 'a\357\277\275b')" "$T/out"
done
check "the CSV holds UTF-8 only" python3 -c 'open(__import__("sys").argv[1], encoding="utf-8").read()' "$T/u.csv"
# A CSV written before the writer replaced them holds the raw bytes: read all the same.
sed "s/$(printf 'j\357\277\275b')/$(printf 'j\377b')/" "$T/u.csv" >"$T/raw.csv"
check "... (the raw copy has the raw byte)" grep -q "$(printf 'j\377b')" "$T/raw.csv"
ms analyze -F json "$T/raw.csv"
check "analyze reads a CSV with raw non-UTF-8 bytes (exit $rc)" [ "$rc" -eq 0 ]

# ---------------------------------------------------------------------------------------------
echo "# item 6: a full disk (a 64 KiB tmpfs)"

mkdir "$T/full"
if ! mount -t tmpfs -o size=64k tmpfs "$T/full" 2>"$T/mount.err"; then
    skip "full-disk cases: cannot mount a tmpfs ($(head -1 "$T/mount.err"))"
    rmdir "$T/full"
else
    F="$T/full"
    echo "old snapshot" >"$F/old.json"
    echo "old report" >"$F/old.html"
    echo "old monitor output" >"$F/old.jsonl"
    dd if=/dev/zero of="$F/fill" bs=4096 2>/dev/null
    expect_error "snapshot -o NEW on a full disk" 1 \
        "cannot write $F/new.json: No space left on device" snapshot -F json -o "$F/new.json"
    check "... leaves no file behind" [ ! -e "$F/new.json" ]
    check "... and no temporary file" no_temp "$F"
    expect_error "snapshot -o EXISTING on a full disk" 1 \
        "cannot write $F/old.json: No space left on device; it was left unchanged" \
        snapshot -F json -o "$F/old.json"
    same "... the existing file is unchanged" "$F/old.json" "old snapshot"
    ms analyze "$T/run.jsonl" --html "$F/old.html"
    check "analyze --html on a full disk: exit 1 ($rc)" [ "$rc" -eq 1 ]
    mentions "... one line naming the report and the cause" "$T/err" \
        "cannot write $F/old.html: No space left on device"
    same "... the existing report is unchanged" "$F/old.html" "old report"
    ms monitor --no-gpu --interval 0.01 -o "$F/old.jsonl" -- sh -c 'sleep 0.1; exit 3'
    check "monitor -o on a full disk: the command's status (exit $rc)" [ "$rc" -eq 3 ]
    mentions "... one line naming the output and the cause" "$T/err" \
        "cannot write $F/old.jsonl: No space left on device"
    same "... the existing output is unchanged" "$F/old.jsonl" "old monitor output"
    check "... and no temporary file" no_temp "$F"
    # Room for the first records only: the disk fills while sampling.
    rm "$F/fill"
    dd if=/dev/zero of="$F/fill" bs=4096 count=11 2>/dev/null
    ms monitor --no-gpu --interval 0.005 -o "$F/old.jsonl" -- sh -c 'sleep 0.5; exit 3'
    check "monitor -o filling the disk while sampling: the command's status (exit $rc)" \
        [ "$rc" -eq 3 ]
    check "... one line on stderr" [ "$(lines "$T/err")" -eq 1 ]
    mentions "... saying the output is incomplete" "$T/err" \
        "writing $F/old.jsonl failed: No space left on device; it is incomplete"
    check "... what was written is there" grep -q '"record":"start"' "$F/old.jsonl"
    umount "$F" && rmdir "$F"
fi

finish
