#!/bin/sh
# make demo: memsnap watches the bundled example program from outside while it allocates
# 64 MiB, compares the two snapshots, records the program with memsnap record and prints
# memsnap report of the trace, then monitors it over time and analyzes the timeline.
# Usage: demo.sh MEMSNAP ALLOC_STEPS [HTML_DIR] (where the HTML report stays; default: a
# temporary directory, removed at the end)
set -eu
memsnap=$1
example=$2
dir=$(mktemp -d)
html_dir=${3:-$dir}
trap 'exec 3>&- 2>/dev/null; rm -rf "$dir"' EXIT

if [ -t 1 ]; then bold=$(printf '\033[1m'); plain=$(printf '\033[0m'); else bold=; plain=; fi
step() { printf '\n%s$ %s%s\n' "$bold" "$*" "$plain"; }

step "memsnap info"
"$memsnap" info

# Start the example paused; talk to it through a FIFO on its standard input.
mkfifo "$dir/in"
"$example" --wait 64 <"$dir/in" >"$dir/out" &
exec 3>"$dir/in"
wait_for() { # wait_for PATTERN: until the example has printed it (10 s at most)
    i=0
    until grep -q "$1" "$dir/out" 2>/dev/null; do
        i=$((i + 1)); [ $i -lt 200 ] || { echo "demo: the example did not say '$1'" >&2; exit 1; }
        sleep 0.05
    done
}
wait_for '^pid '
pid=$(sed -n 's/^pid //p' "$dir/out")

step "memsnap snapshot --pid $pid --full --label before --format json > before.json"
"$memsnap" snapshot --pid "$pid" --full --label before --format json >"$dir/before.json"
echo 1 >&3
wait_for '^allocated'
step "memsnap snapshot --pid $pid --full --label after-64MiB"
"$memsnap" snapshot --pid "$pid" --full --label after-64MiB
"$memsnap" snapshot --pid "$pid" --full --label after-64MiB --format json >"$dir/after.json"
step "memsnap diff before.json after.json"
"$memsnap" diff "$dir/before.json" "$dir/after.json"
echo 1 >&3
wait
step "what the example printed about itself (libmemsnap, in-process)"
sed -n '/^\[/p' "$dir/out"

# The same program again, with every allocation recorded by the LD_PRELOAD tracker.
step "memsnap record --mmap -o steps.mst -- alloc_steps 64   # it maps its memory with mmap"
"$memsnap" record --mmap -o "$dir/steps.mst" -- "$example" 64 >/dev/null
step "memsnap report steps.mst --stats"
"$memsnap" report "$dir/steps.mst" --stats

# And once more, watched over time: a timeline, then its analysis and a one-page HTML report.
# The run lasts 0.2 s, so every sample re-reads every figure (the default is every 0.1 s).
step "memsnap monitor --interval 0.01 --full-interval 0.01 --no-gpu --output steps.jsonl -- alloc_steps 64"
"$memsnap" monitor --interval 0.01 --full-interval 0.01 --no-gpu --output "$dir/steps.jsonl" \
    -- "$example" 64 >/dev/null
step "memsnap analyze steps.jsonl --html $html_dir/demo.html"
"$memsnap" analyze "$dir/steps.jsonl" --html "$html_dir/demo.html" >"$dir/analysis.txt"
sed -n '1,12p' "$dir/analysis.txt"
