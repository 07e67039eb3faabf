#!/bin/sh
# test_analyze.sh - end-to-end tests of `memsnap analyze` (POSIX sh; runs under dash): monitor
# output with exactly known figures written by gen_monitor.py in both formats, checked by
# check.py; every error path; and a trace of tests/record's snap_pattern (its peak: 28000
# bytes in 5 blocks; its leaks: 6000 bytes in 2, 5000 of them from leak_here).
#
# $1: the build directory of tests/record (snap_pattern); $2: truncate_on_mmap.so. Environment (set by meson):
# MEMSNAP_BIN the built memsnap. Prints one line per check, ends with the line
# "N passed, M failed, K skipped" and exits non-zero when a check failed.

set -u

BIN=${MEMSNAP_BIN:?MEMSNAP_BIN must name the memsnap binary}
P=${1:?usage: test_analyze.sh BUILD_DIR_OF_TESTS_RECORD TRUNCATE_SHIM}
TRUNCATE_SHIM=${2:?usage: test_analyze.sh BUILD_DIR_OF_TESTS_RECORD TRUNCATE_SHIM}
BIN=$(cd "$(dirname "$BIN")" && pwd -P)/$(basename "$BIN")
HERE=$(cd "$(dirname "$0")" && pwd -P)
# The tracker of this build tree, found next to memsnap; never a developer's.
MEMSNAP_PRELOAD=
export MEMSNAP_PRELOAD
PYTHONUTF8=1
export PYTHONUTF8

TEST_NAME=analyze
. "$HERE/../lib.sh"

GEN="python3 $HERE/gen_monitor.py"
CHECK="python3 $HERE/check.py"

# json NAME ARGS...: memsnap analyze ARGS --format json into $T/NAME.json; checks it succeeded
# with nothing on stderr.
json() {
    name=$1
    shift
    ms analyze "$@" --format json
    cp "$T/out" "$T/$name.json"
    if [ "$rc" -ne 0 ] || [ -s "$T/err" ]; then
        not_ok "analyze $* exits 0 without a message" "exit $rc"
        return 1
    fi
}

# pycheck DESC EXPR FILE: the Python expression EXPR holds with d the JSON document in FILE,
# m its metrics, M and G a MiB and a GiB.
pycheck() {
    if python3 -c 'import json, sys
d = json.load(open(sys.argv[2]))
m, M, G = d.get("metrics"), 1 << 20, 1 << 30
sys.exit(0 if eval("(" + sys.argv[1] + ")") else 1)' "$2" "$3"; then ok "$1"; else not_ok "$1" "$2"; fi
}

for s in known leak slowleak steady flat spikes staircase excursions events; do
    $GEN $s "$T" || not_ok "gen_monitor.py $s"
done

# --- the summary: min, max, mean, percentiles, the time at the peak -------------------------
for f in jsonl csv; do
    json known-$f "$T/known.$f" &&
        check "known series ($f): min, max, mean, p50/p90/p99 and peak of every metric" \
            $CHECK summary "$T/known-$f.json" "$T/known.expect.json"
done
# the same figures by hand: RSS is a permutation of 1..100 MiB, sample 27 holds 100 MiB
pycheck "process RSS: 1 MiB .. 100 MiB, mean 50.5 MiB, p50/p90/p99 50/90/99 MiB, peak at 28 s" \
    '[m["process_rss"][k] for k in ("min", "max", "mean", "p50", "p90", "p99")] ==
[M, 100 * M, 50.5 * M, 50 * M, 90 * M, 99 * M] and m["process_rss"]["peak"]["seq"] == 27 and
m["process_rss"]["peak"]["offset_s"] == 28.0' "$T/known-jsonl.json"
pycheck "GPU used is the sum over both GPUs; system used is total - available" \
    'm["gpu_used"]["min"] == 3 * G and m["gpu_used"]["max"] == 3 * G + 99 * M and
m["system_used"]["min"] == 4 * G + M' \
    "$T/known-jsonl.json"
ms analyze "$T/known.jsonl"
mentions "text output: the summary table, leak and spike sections, the watched command" "$T/out" \
    "100 samples over 99.000 s" "process RSS" "1.00 MiB" "50.50 MiB" "100.00 MiB" "28.000 s" \
    "command: app --serve" "leaks (" "spikes (" "alerts: 0"

# --- leaks by trend -----------------------------------------------------------------------------
for s in leak slowleak steady flat; do
    for f in jsonl csv; do
        json $s-$f "$T/$s.$f" &&
            check "$s ($f): slope within 10% and inside the 95% interval, severity as planted" \
                $CHECK trend "$T/$s-$f.json" "$T/$s.expect.json"
    done
done
ms analyze "$T/leak.csv"
mentions "text output names the leak and its severity" "$T/out" "high" "MiB/min" \
    "grew 25% of its median or more"

# --- spikes -------------------------------------------------------------------------------------
for f in jsonl csv; do
    json spikes-$f "$T/spikes.$f" &&
        check "spikes ($f): exactly the planted samples 50, 123, 300" \
            $CHECK spikes "$T/spikes-$f.json" "$T/spikes.expect.json"
done
# a spike is an excursion that comes back down; a step that lasts is growth (issue 14, item 7)
for f in jsonl csv; do
    json staircase-$f "$T/staircase.$f" &&
        check "staircase ($f): steps of 10 MiB that last, then a release: no spikes" \
            $CHECK spikes "$T/staircase-$f.json" "$T/staircase.expect.json"
    json excursions-$f "$T/excursions.$f" &&
        check "excursions ($f): 1, 2, 3 and 5 samples long, each one spike at its highest" \
            $CHECK spikes "$T/excursions-$f.json" "$T/excursions.expect.json"
done
pycheck "a straight line without noise has no spikes, at its ends neither" \
    'd["metrics"] and all(m["spikes"]["count"] == 0 for m in d["metrics"].values())' \
    "$T/steady-jsonl.json"

# --- alerts, OOM records, markers, thresholds ---------------------------------------------------
for f in jsonl csv; do
    json events-$f "$T/events.$f" &&
        check "events ($f): alerts, markers, OOMs, thresholds listed" \
            $CHECK events "$T/events-$f.json" "$T/events.expect.json"
done
ms analyze "$T/events.csv"
mentions "text output lists the alerts, the OOM, the marker and the end" "$T/out" \
    "alerts: 3" "warning  cgroup   870.00 MiB of 1.00 GiB (85.0%)" "critical" \
    "OOM records: 1" "cgroup_oom_kill (cgroup) pid 4242, bundle /tmp/oom_dump_x" \
    'phase, "two"' "command_exited, exit status 0" "thresholds: warning 80% critical 95%"

# --- CSV and JSON lines give the same analysis ----------------------------------------------------
for s in known leak spikes events; do
    check "$s: CSV and JSON lines give the same analysis" \
        $CHECK same "$T/$s-jsonl.json" "$T/$s-csv.json"
done

# --- the JSON fast path and jansson agree ---------------------------------------------------------
# Every sample line rewritten the ways a writer may differ: keys reordered, escapes and
# non-ASCII text, reals and exponents, unknown keys and deep nesting, spaces, CRLF, a repeated
# field whose last value counts (as in jansson). The fast path takes none of
# these lines as they are; the analysis must not change.
python3 - "$T/known.jsonl" "$T/variant.jsonl" <<'EOF'
import json, sys
out = open(sys.argv[2], "w", newline="")
for i, line in enumerate(open(sys.argv[1])):
    d = json.loads(line)
    if d["record"] != "sample":
        out.write(line)
        continue
    k = i % 6
    snap = d["snapshot"]
    if k == 0:
        d["snapshot"] = dict(reversed(list(snap.items())))
        text = json.dumps(dict(reversed(list(d.items()))))
    elif k == 1:
        snap["label"] = "caf\u00e9 \"x\"\n"
        d["x"] = {"a": [1.5e3, -2.25, 0, -0, True, False, None, [[[{"b": "\u2603"}]]]]}
        text = json.dumps(d, ensure_ascii=(i % 12 == 1))
    elif k == 2:
        text = json.dumps(d, indent=None, separators=(" , ", " : ")) + " \r"
    elif k == 3:
        rss = snap["process"]["rss_bytes"]
        text = json.dumps(d).replace('"rss_bytes": %d' % rss, '"rss_bytes": 7, "rss_bytes": %d' % rss)
    elif k == 4:
        snap["process"]["vms_bytes"] = 123456789012345678901234
        text = json.dumps(d)
    else:
        d["tree"] = dict(reversed(list(d["tree"].items())))
        d["snapshot"]["gpus"] = [dict(reversed(list(g.items()))) for g in snap["gpus"]]
        text = json.dumps(d)
    out.write(text + "\n")
EOF
# a 24-digit integer is out of jansson's range: that line is an error, so fix it to 10^17
sed 's/123456789012345678901234/100000000000000000/' "$T/variant.jsonl" >"$T/variant2.jsonl"
json variant "$T/variant2.jsonl" &&
    check "rewritten sample lines give the same analysis as the writer's" \
        $CHECK same "$T/known-jsonl.json" "$T/variant.json"
expect_error "an integer beyond 64 bits in any field is an error (as jansson says)" 1 \
    "variant.jsonl:5: invalid JSON: too big integer" analyze "$T/variant.jsonl"

# --- big files are read in chunks by several threads: the same analysis, the same errors -------
# MEMSNAP_ANALYZE_CHUNK sets the smallest chunk (4 MiB by default): 2000 bytes cuts these files
# into dozens of chunks, most of them in the middle of sample rows and of the quoted,
# multi-line marker label planted here (a CSV chunk that starts inside quotes must be
# detected and the rest read in order).
python3 - "$T/events.csv" "$T/multiline.csv" <<'EOF'
import sys
rows = open(sys.argv[1]).read().split("\n")
label = '"' + "\n".join('line %d, with ""quotes"" and, commas' % i for i in range(300)) + '"'
head = rows[0].split(",")
marker = [""] * len(head)
marker[0], marker[2], marker[head.index("event.text")] = "marker", "1795400060500000000", label
open(sys.argv[2], "w").write("\n".join(rows[:60] + [",".join(marker)] + rows[60:]))
EOF
MEMSNAP_ANALYZE_CHUNK=2000
export MEMSNAP_ANALYZE_CHUNK
for s in known events spikes; do
    for f in jsonl csv; do
        json $s-$f-chunked "$T/$s.$f" &&
            check "$s ($f) read in chunks: the same analysis" \
                $CHECK same "$T/$s-$f.json" "$T/$s-$f-chunked.json"
    done
done
json multiline-chunked "$T/multiline.csv"
MEMSNAP_ANALYZE_CHUNK=
json multiline "$T/multiline.csv" &&
    check "a quoted label of 300 lines across the chunk cuts: the same analysis as in one piece" \
        $CHECK same "$T/multiline.json" "$T/multiline-chunked.json"
pycheck "... and the label is read whole" \
    'len([x for x in d["markers"] if x["label"].count("\n") == 299]) == 1' "$T/multiline.json"
MEMSNAP_ANALYZE_CHUNK=2000
sed '77s/}$/,}/' "$T/known.jsonl" >"$T/late.jsonl"
expect_error "read in chunks, an error far into the file names its line" 1 \
    "late.jsonl:77: invalid JSON" analyze "$T/late.jsonl"
sed '88s/^sample,\([0-9]*\),\([0-9]*\),/sample,\1,x,/' "$T/known.csv" >"$T/late.csv"
expect_error "read in chunks, a CSV error far into the file names its line" 1 \
    "late.csv:88: column time_ns" analyze "$T/late.csv"
{ head -150 "$T/events.csv"; sed -n '2p' "$T/events.csv"; tail -n +151 "$T/events.csv"; } >"$T/late2.csv"
expect_error "read in chunks, a second start record far into the file" 1 \
    "late2.csv:151: a second start record" analyze "$T/late2.csv"
{ head -400 "$T/multiline.csv"; echo 'sample,0,12'; tail -n +401 "$T/multiline.csv"; } >"$T/late3.csv"
expect_error "read in chunks, an error after a 300-line label names its line" 1 \
    "late3.csv:401: 3 fields, the header has" analyze "$T/late3.csv"
MEMSNAP_ANALYZE_CHUNK=
export MEMSNAP_ANALYZE_CHUNK

# --- a cut last line: a warning, the line ignored -------------------------------------------------
for f in jsonl csv; do
    head -c -40 "$T/known.$f" >"$T/cut.$f"
    ms analyze "$T/cut.$f" --format json
    n=$(lines "$T/known.$f")
    if [ "$rc" -eq 0 ] && [ "$(lines "$T/err")" = 1 ] && grep -q "warning: .*cut.$f:$n: the last line is cut" "$T/err" &&
        python3 -c 'import json, sys; sys.exit(json.load(open(sys.argv[1]))["samples"] != 99)' "$T/out"; then
        ok "cut last line ($f): one warning naming line $n, 99 samples, exit 0"
    else
        not_ok "cut last line ($f): one warning naming line $n, 99 samples, exit 0" "exit $rc"
    fi
done
printf 'record,seq,time_ns,process.rss_bytes,event.level,event.metric,event.used_bytes,event.limit_bytes,event.percent,event.text\nsample,0,1000,5,,,,,,\nmarker,,2000,,,,,,,"cut inside quo' >"$T/cutq.csv"
ms analyze "$T/cutq.csv"
if [ "$rc" -eq 0 ] && grep -q "cutq.csv:3: the last line is cut" "$T/err"; then
    ok "a CSV cut inside a quoted field at the end: a warning"
else
    not_ok "a CSV cut inside a quoted field at the end: a warning" "exit $rc"
fi

# --- errors: one line naming the file and the line, exit 1 ----------------------------------------
expect_error "a missing file" 1 "nope.csv: No such file or directory" analyze "$T/nope.csv"
mkdir "$T/dir"
expect_error "a directory" 1 "cannot read $T/dir: it is a directory" analyze "$T/dir"
: >"$T/empty.csv"
expect_error "an empty file" 1 "empty.csv: empty file" analyze "$T/empty.csv"
printf '\n \n\n' >"$T/blank.jsonl"
expect_error "only blank lines" 1 "blank.jsonl:" analyze "$T/blank.jsonl"
printf 'hello world\n' >"$T/text.txt"
expect_error "not monitor output" 1 "text.txt:1: not memsnap monitor output" analyze "$T/text.txt"
printf 'record,seq,process.rss_bytes\nsample,0,5\n' >"$T/hdr.csv"
expect_error "a CSV header without time_ns" 1 "hdr.csv:1: bad CSV header: no column 'time_ns'" \
    analyze "$T/hdr.csv"
{ head -1 "$T/known.csv" | sed 's/process.rss_bytes,/process.rss_bytes,process.rss_bytes,/'; } >"$T/dup.csv"
expect_error "a CSV header naming a column twice" 1 "dup.csv:1: bad CSV header: column 'process.rss_bytes' appears twice" \
    analyze "$T/dup.csv"
sed '4s/^sample,\([0-9]*\),\([0-9]*\),/sample,\1,12x,/' "$T/known.csv" >"$T/num.csv"
expect_error "a bad number in a CSV row" 1 "num.csv:4: column time_ns: '12x'" analyze "$T/num.csv"
sed '5s/$/,extra/' "$T/known.csv" >"$T/fields.csv"
expect_error "a CSV row with a field too many" 1 "fields.csv:5:" analyze "$T/fields.csv"
sed '6s/^sample,/sample,"a"b,/' "$T/known.csv" >"$T/quote.csv"
expect_error "text after a closing quote" 1 "quote.csv:6: text after a closing quote" analyze "$T/quote.csv"
sed '7s/^sample//' "$T/known.csv" >"$T/kind.csv"
expect_error "a CSV row without a record kind" 1 "kind.csv:7: empty record kind" analyze "$T/kind.csv"
sed '5s/.*/{"record": "sample", oops}/' "$T/known.jsonl" >"$T/bad.jsonl"
expect_error "a bad JSON line in the middle" 1 "bad.jsonl:5: invalid JSON" analyze "$T/bad.jsonl"
# malformed lines that look like samples: the fast path must not take any of them
n=0
for mangle in 's/}$/,}/' 's/"label":null/"label":"\\x"/' 's/"threads":1/"threads":01/' \
    's/"swap_bytes":0/"swap_bytes":tru/' 's/"oom_kills":0/"oom_kills":-/' 's/}$/}}/' \
    's/"label":null/"label":"a\tb"/' 's/}$/,"a"}/'; do
    n=$((n + 1))
    sed "8$mangle" "$T/known.jsonl" >"$T/mal$n.jsonl"
    if cmp -s "$T/known.jsonl" "$T/mal$n.jsonl"; then
        not_ok "malformed JSON #$n: the test did not change the file ($mangle)"
        continue
    fi
    expect_error "malformed sample line ($mangle) is an error at its line" 1 "mal$n.jsonl:8: invalid JSON" \
        analyze "$T/mal$n.jsonl"
done
sed '9s/"rss_bytes":[0-9]*/"rss_bytes":"big"/' "$T/known.jsonl" >"$T/type.jsonl"
expect_error "a field of the wrong type" 1 "type.jsonl:9: field snapshot.process.rss_bytes: expected a non-negative integer" \
    analyze "$T/type.jsonl"
sed '9s/memsnap.snapshot\/1/memsnap.snapshot\/9/' "$T/known.jsonl" >"$T/schema.jsonl"
expect_error "an unknown snapshot schema" 1 "schema.jsonl:9: field snapshot.schema" analyze "$T/schema.jsonl"
sed '10s/"time_ns":[0-9]*,//' "$T/known.jsonl" >"$T/time.jsonl"
expect_error "a record without time_ns" 1 "time.jsonl:10: no time_ns" analyze "$T/time.jsonl"
sed '3s/.*/[1, 2]/' "$T/known.jsonl" >"$T/array.jsonl"
expect_error "a line that is not an object" 1 "array.jsonl:3: expected a JSON object" analyze "$T/array.jsonl"
{ cat "$T/known.jsonl"; head -1 "$T/known.jsonl"; echo; } >"$T/twostart.jsonl"
expect_error "a second start record" 1 "twostart.jsonl:102: a second start record" analyze "$T/twostart.jsonl"
# blank lines are skipped, and line numbers still count them
{ echo; head -3 "$T/known.jsonl"; echo; echo '{"record":"sample"'; tail -1 "$T/known.jsonl"; } >"$T/lineno.jsonl"
expect_error "line numbers count blank lines" 1 "lineno.jsonl:6:" analyze "$T/lineno.jsonl"
printf 'MEMSNAPT\001\000\000\000garbage' >"$T/corrupt.mst"
expect_error "a corrupt trace" 1 "corrupt.mst" analyze "$T/corrupt.mst"
expect_error "an HTML report that cannot be created" 1 "cannot create $T/dir/none/r.html" \
    analyze "$T/known.csv" --html "$T/dir/none/r.html" --format json
# a start record without warning_pct, whose command holds 'warning_pct=5': the command is
# the rest of the text, never read for keys
sed 's/warning_pct=[^;]*;//; s/command=[^,]*/command=app --opt;warning_pct=5/' "$T/known.csv" \
    >"$T/kv.csv"
json kv "$T/kv.csv" &&
    pycheck "a key inside the start record's command is not a key" \
        'not any(t["level"] == "warning" for t in d["thresholds"]) and
         d["start"]["command"][-1].endswith("=5")' \
        "$T/kv.json"
cp "$T/known.csv" "$T/self.csv"
expect_error "--html naming the input itself is refused" 2 "is the input itself" \
    analyze "$T/self.csv" --html "$T/self.csv"
check "... and the input is left whole" cmp -s "$T/known.csv" "$T/self.csv"
ln -s self.csv "$T/link.csv"
expect_error "... also through a link" 2 "is the input itself" \
    analyze "$T/self.csv" --html "$T/link.csv"
# A file truncated while analyze reads it (a monitor restarted with the same -o): the shim
# truncates it to two pages once analyze has mapped it; the pages after them raise SIGBUS.
{ cat "$T/known.jsonl"; cat "$T/known.jsonl" | grep -v '"record":"start"'; } >"$T/trunc.jsonl"
MEMSNAP_TEST_TRUNCATE="$T/trunc.jsonl" LD_PRELOAD="$TRUNCATE_SHIM" \
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
export MEMSNAP_TEST_TRUNCATE LD_PRELOAD ASAN_OPTIONS
expect_error "a file truncated while it is read: one line, no crash" 1 \
    "trunc.jsonl: the file was truncated while it was read" \
    analyze "$T/trunc.jsonl" --html "$T/trunc.html"
unset MEMSNAP_TEST_TRUNCATE LD_PRELOAD
check "... and no half-written report" [ ! -e "$T/trunc.html" ]
check "... the shim did truncate the file (to two pages)" \
    [ "$(wc -c <"$T/trunc.jsonl")" -eq "$(($(getconf PAGESIZE) * 2))" ]
ms analyze "$T/bad.jsonl" --html "$T/bad.html"
if [ "$rc" -eq 1 ] && [ ! -e "$T/bad.html" ]; then
    ok "no HTML report is left behind when the analysis fails"
else
    not_ok "no HTML report is left behind when the analysis fails" "exit $rc"
fi

# --- never a crash: mangled files, whole and in chunks --------------------------------------------
# 60 copies of each format with random bytes changed, inserted or deleted (seeded): each is
# an analysis (exit 0) or one error line (exit 1), never a crash (under the sanitizer build,
# any memory error aborts).
if python3 - "$BIN" "$T" <<'EOF'; then
import os, random, subprocess, sys
memsnap, tmp = sys.argv[1], sys.argv[2]
rnd = random.Random(6)
bad = []
for name in ("events.jsonl", "events.csv", "known.jsonl", "known.csv"):
    data = bytearray(open(os.path.join(tmp, name), "rb").read())
    for i in range(30):
        d = bytearray(data)
        for _ in range(rnd.randint(1, 8)):
            at = rnd.randrange(len(d))
            op = rnd.randrange(3)
            if op == 0:
                d[at] = rnd.choice(b'{}[]",:\n\\0123456789-e.tnfa\x00\xff ')
            elif op == 1:
                d[at:at] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 4)))
            else:
                del d[at:at + rnd.randint(1, 40)]
        path = os.path.join(tmp, "mangled")
        open(path, "wb").write(d)
        env = dict(os.environ, MEMSNAP_ANALYZE_CHUNK="1500" if i % 2 else "")
        p = subprocess.run([memsnap, "analyze", path, "--format", "json"], env=env,
                           capture_output=True)
        lines = p.stderr.decode(errors="replace").strip().split("\n")
        errors = [l for l in lines if l and "warning:" not in l]
        if p.returncode not in (0, 1) or (p.returncode == 1 and len(errors) != 1):
            bad.append("%s #%d: exit %d, %s" % (name, i, p.returncode, lines[-3:]))
for b in bad[:5]:
    print(b)
sys.exit(1 if bad else 0)
EOF
    ok "120 mangled files: an analysis or one error line each, never a crash"
else
    not_ok "120 mangled files: an analysis or one error line each, never a crash"
fi

# --- usage errors: exit 2 ------------------------------------------------------------------------
expect_error "no file" 2 "expected one file" analyze
expect_error "two files" 2 "expected one file" analyze "$T/known.csv" "$T/known.jsonl"
expect_error "--format csv" 2 "unknown format 'csv'" analyze --format csv "$T/known.csv"
expect_error "--top 0" 2 "invalid --top '0'" analyze --top 0 "$T/known.csv"
expect_error "an unknown option" 2 "unknown option '--bogus'" analyze --bogus "$T/known.csv"
ms analyze --help
mentions "--help describes the command" "$T/out" "usage: memsnap analyze FILE" "--html" \
    "Theil-Sen" "docs/analyze-format.md"

# --- a trace: the peak and leak sites -------------------------------------------------------------
if "$BIN" record -o "$T/snap.mst" -- "$P/snap_pattern" >/dev/null 2>"$T/rec.err"; then
    ms analyze "$T/snap.mst"
    mentions "trace (text): the peak, its sites and the leaks" "$T/out" "a memsnap trace" \
        "27.34 KiB (28000 bytes) live in 5 allocations" "leak_here" \
        "5.86 KiB (6000 bytes) live in 2 allocations"
    json trace "$T/snap.mst" &&
        pycheck "trace (JSON): peak 28000 bytes in 5, leaks 6000 in 2, leak_here a leak site" \
            'd["kind"] == "trace" and d["peak"]["live_bytes"] == 28000 and
d["peak"]["live_allocations"] == 5 and d["leaks"]["live_bytes"] == 6000 and
d["leaks"]["live_allocations"] == 2 and
any(s["bytes"] == 5000 and s["stack"][0]["function"] == "leak_here" for s in d["leaks"]["sites"])' \
            "$T/trace.json"
    ms analyze "$T/snap.mst" --top 1 --format json
    pycheck "--top 1 lists one site" 'len(d["peak"]["sites"]) == 1' "$T/out"
    ms analyze "$T/snap.mst" --html "$T/trace.html" --format json
    if [ "$rc" -eq 0 ] && grep -q '"folded":\[\[".*leak_here",5000\]' "$T/trace.html"; then
        ok "trace --html: the page holds the folded stacks of the peak"
    else
        not_ok "trace --html: the page holds the folded stacks of the peak" "exit $rc"
    fi
else
    not_ok "memsnap record snap_pattern" "$(cat "$T/rec.err")"
fi

# --- the HTML file itself (the page is tested in Chromium by test_html.sh) ------------------------
ms analyze "$T/events.jsonl" --html "$T/events.html"
mode=$(stat -c %a "$T/events.html" 2>/dev/null)
if [ "$rc" -eq 0 ] && [ "$mode" = 600 ] && grep -q "HTML report written to $T/events.html" "$T/err"; then
    ok "--html writes the report, mode 0600, and says where"
else
    not_ok "--html writes the report, mode 0600, and says where" "exit $rc, mode $mode"
fi
if grep -Eqi '<link|<img|<iframe|@import|url\(|(src|href)=' "$T/events.html" ||
    grep -Eo 'https?://[^"'"'"' ]*' "$T/events.html" | grep -v '^http://www.w3.org/2000/svg$' | grep -q .; then
    not_ok "the HTML report loads nothing from outside"
else
    ok "the HTML report loads nothing from outside"
fi
if python3 - "$T/events.html" <<'EOF'; then
import json, re, sys
page = open(sys.argv[1]).read()
m = re.search(r'<script type="application/json" id="ms-data">(.*?)</script>', page, re.S)
d = json.loads(m.group(1))
sys.exit(0 if d["analysis"]["samples"] == 200 and len(d["series"]["process_rss"]) == 200 else 1)
EOF
    ok "the page's data is the analysis and the samples"
else
    not_ok "the page's data is the analysis and the samples"
fi
# text that could close the data's <script> element stays inside it
sed 's/phase, \\"two\\"/<\/script><script>alert(1)<\/script>/' "$T/events.jsonl" >"$T/inject.jsonl"
ms analyze "$T/inject.jsonl" --html "$T/inject.html"
if [ "$rc" -eq 0 ] && grep -qF '\u003c/script>\u003cscript>alert' "$T/inject.html" &&
    ! grep -q '</script><script>alert' "$T/inject.html"; then
    ok "a marker label holding </script> cannot end the page's data"
else
    not_ok "a marker label holding </script> cannot end the page's data" "exit $rc"
fi

finish
