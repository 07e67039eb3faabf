#!/bin/sh
# test_monitor.sh - `memsnap analyze` on what the real `memsnap monitor` writes (POSIX sh): a
# short command monitored in both formats, each analyzed; the figures a statm-only sample only
# repeats (PSS between walks, the cgroup and system between full samples) are not counted.
#
# Environment (set by meson): MEMSNAP_BIN the built memsnap.

set -u

BIN=${MEMSNAP_BIN:?MEMSNAP_BIN must name the memsnap binary}
BIN=$(cd "$(dirname "$BIN")" && pwd -P)/$(basename "$BIN")
HERE=$(cd "$(dirname "$0")" && pwd -P)
MEMSNAP_PROCFS=
MEMSNAP_SYSFS=
export MEMSNAP_PROCFS MEMSNAP_SYSFS

TEST_NAME=analyze-monitor
. "$HERE/../lib.sh"

for f in json csv; do
    ms monitor --interval 0.05 --format $f --output "$T/m.$f" -- sh -c 'sleep 1.2'
    if [ "$rc" -ne 0 ] || [ ! -s "$T/m.$f" ]; then
        not_ok "memsnap monitor --format $f on 'sleep 1.2' writes its records" "exit $rc"
        continue
    fi
    ok "memsnap monitor --format $f on 'sleep 1.2' writes its records"
    ms analyze "$T/m.$f" --format json
    cp "$T/out" "$T/a-$f.json"
    if [ "$rc" -eq 0 ] && [ ! -s "$T/err" ] && python3 - "$T/a-$f.json" <<'PY'; then
import json, sys
d = json.load(open(sys.argv[1]))
rss = d["metrics"]["process_rss"]
ok = (d["kind"] == "monitor" and d["samples"] >= 5 and d["start"] is not None and
      d["end"] is not None and d["end"]["reason"] == "command_exited" and
      d["end"]["exit_status"] == 0 and rss["samples"] >= 5 and 0 < rss["min"] <= rss["max"] and
      d["metrics"]["system_used"]["samples"] >= 5)
sys.exit(0 if ok else 1)
PY
        ok "analyze reads the monitor's $f: samples, RSS, system used, the start and end records"
    else
        not_ok "analyze reads the monitor's $f: samples, RSS, system used, the start and end records" \
            "exit $rc"
    fi
    if python3 - "$T/m.$f" "$T/a-$f.json" <<'PY'; then
import csv, json, sys
path, analysis = sys.argv[1], json.load(open(sys.argv[2]))
if path.endswith(".csv"):
    rows = [r for r in csv.DictReader(open(path)) if r["record"] == "sample"]
    full = [r["full"] == "true" for r in rows]
    fresh_pss = [r["pss_age_ns"] == "0" for r in rows]
else:
    rows = [d for d in map(json.loads, open(path)) if d["record"] == "sample"]
    full = [d["full"] for d in rows]
    fresh_pss = [d["pss_age_ns"] == 0 for d in rows]
m = analysis["metrics"]
ok = (0 < sum(full) < len(rows) and m["process_rss"]["samples"] == len(rows) and
      m["cgroup_current"]["samples"] == sum(full) and m["system_used"]["samples"] == sum(full) and
      m["process_pss"]["samples"] == sum(fresh_pss))
sys.exit(0 if ok else 1)
PY
        ok "... every sample counts for RSS, only full ones for the cgroup, fresh PSS for PSS ($f)"
    else
        not_ok "... every sample counts for RSS, only full ones for the cgroup, fresh PSS for PSS ($f)"
    fi
    ms analyze "$T/m.$f" --html "$T/m-$f.html"
    if [ "$rc" -eq 0 ] && [ -s "$T/m-$f.html" ]; then ok "an HTML report of the monitor's $f"; else
        not_ok "an HTML report of the monitor's $f" "exit $rc"; fi
done

finish
