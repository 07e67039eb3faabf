#!/bin/sh
# make bench: memsnap's snapshot cost against the raw /proc reads and against psutil, on the
# same target process, in the same run. Usage: bench/run.sh MEMSNAP
set -eu
memsnap=$1
rounds=${ROUNDS:-7}
here=$(dirname "$0")
# psutil comes from Debian's python3-psutil (make deps), so use Debian's interpreter.
py=/usr/bin/python3
[ -x "$py" ] || py=python3

# One idle target for everyone: a sleeping process of ordinary size.
sleep 600 &
target=$!
trap 'kill $target 2>/dev/null' EXIT

ms=$("$memsnap" bench snapshot --pid "$target" --rounds "$rounds" --json)
ps=$("$py" "$here/psutil_snapshot.py" "$target" "$rounds")

"$py" - "$ms" "$ps" <<'PY'
import json, sys
m = json.loads(sys.argv[1]); p = json.loads(sys.argv[2])
def us(ns): return "%8.2f us" % (ns / 1000.0)
print("snapshot benchmark: pid %d, median of %d rounds (psutil %s)" % (m["pid"], m["rounds"], p["psutil_version"]))
print("  %-34s %s" % ("raw pread of statm", us(m["raw_basic_ns"])))
print("  %-34s %s   %.2fx raw   (goal <= 1.3x)" % ("memsnap basic capture", us(m["basic_ns"]), m["basic_ns"] / m["raw_basic_ns"]))
print("  %-34s %s   %.2fx raw   memsnap is %.1fx faster" % ("psutil memory_info()", us(p["psutil_basic_ns"]), p["psutil_basic_ns"] / m["raw_basic_ns"], p["psutil_basic_ns"] / m["basic_ns"]))
print("  %-34s %s" % ("raw preads of the %d full files" % m["raw_full_files"], us(m["raw_full_ns"])))
print("  %-34s %s   %.2fx raw   (goal <= 1.3x)" % ("memsnap full capture", us(m["full_ns"]), m["full_ns"] / m["raw_full_ns"]))
print("  %-34s %s   %.2fx raw   memsnap is %.1fx faster" % ("psutil memory_full_info()", us(p["psutil_full_ns"]), p["psutil_full_ns"] / m["raw_full_ns"], p["psutil_full_ns"] / m["full_ns"]))
PY
