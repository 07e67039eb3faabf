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

# GPU snapshots (memsnap bench snapshot --gpu): on the real NVML when one loads, else on the
# test suite's fake libnvidia-ml.so.1 (memsnap's own overhead only). With a real NVIDIA GPU the
# same run times one nvidia-smi query and a fresh NVML init+shutdown per call.
build=$(cd "$(dirname "$memsnap")/../.." && pwd)
gpu_lib=""
"$memsnap" bench snapshot --gpu --rounds 1 --json >/dev/null 2>&1 ||
    gpu_lib="$build/tests/gpu/fake"
if gm=$(env ${gpu_lib:+LD_LIBRARY_PATH="$gpu_lib"} "$memsnap" bench snapshot --gpu \
        --pid "$target" --rounds "$rounds" --json 2>/dev/null); then
    "$py" - "$gm" "${gpu_lib:+fake NVML}" <<'PY'
import json, sys
m = json.loads(sys.argv[1]); src = sys.argv[2] or "real backends"
def us(ns): return "%8.2f us" % (ns / 1000.0)
print("  %-34s %s   (%s)" % ("memsnap GPU capture", us(m["gpu_ns"]), src))
if "nvsmi_ns" in m:
    print("  %-34s %s   memsnap is %.0fx faster" % ("nvidia-smi --query-gpu", us(m["nvsmi_ns"]), m["nvsmi_ratio"]))
if "init_per_call_ns" in m and src == "real backends":
    print("  %-34s %s   memsnap is %.0fx faster (goal >= 100x on a real GPU)" % ("NVML init+query+shutdown per call", us(m["init_per_call_ns"]), m["init_per_call_ratio"]))
PY
else
    echo "  GPU capture: no GPU backend (build the test suite for the fake NVML)"
fi
