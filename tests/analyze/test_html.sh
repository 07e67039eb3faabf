#!/bin/sh
# test_html.sh - the HTML reports of `memsnap analyze --html` in headless Chromium (POSIX sh):
# each page loads with no script error and draws what it must, a screenshot shows the chart
# (its pixels counted with check.py's PNG decoder), and the flame graph of a trace zooms. A
# script error is caught two ways, both checked on a page with an error put in on purpose:
# Chromium's console log on stderr ("Uncaught ..."), and the page's own error handler, which
# counts errors in the data-errors attribute that --dump-dom shows. Skipped, with the reason,
# where Chromium is not installed.
#
# $1: the build directory of tests/record (snap_pattern). Environment (set by meson):
# MEMSNAP_BIN the built memsnap; MEMSNAP_CHROMIUM overrides the browser.

set -u

BIN=${MEMSNAP_BIN:?MEMSNAP_BIN must name the memsnap binary}
P=${1:?usage: test_html.sh BUILD_DIR_OF_TESTS_RECORD}
BIN=$(cd "$(dirname "$BIN")" && pwd -P)/$(basename "$BIN")
HERE=$(cd "$(dirname "$0")" && pwd -P)
MEMSNAP_PRELOAD=
export MEMSNAP_PRELOAD

TEST_NAME=analyze-html
. "$HERE/../lib.sh"

CHECK="python3 $HERE/check.py"
CHROME=${MEMSNAP_CHROMIUM:-$(command -v chromium || command -v chromium-browser ||
    command -v google-chrome || true)}
if [ -z "$CHROME" ]; then
    skip "every check: no chromium found (Debian package chromium)"
    finish
    exit $?
fi

# chrome OUT ARGS...: headless Chromium (its own profile; --no-sandbox: tests may run as
# root) with ARGS; stdout in $T/OUT.out, stderr with the console log in $T/OUT.log.
chrome() {
    out=$1
    shift
    timeout 120 "$CHROME" --headless --no-sandbox --disable-gpu --no-first-run \
        --user-data-dir="$T/profile" --hide-scrollbars --enable-logging=stderr --v=0 \
        "$@" >"$T/$out.out" 2>"$T/$out.log"
}

# loads DESC NAME FILE.html [#FRAGMENT]: the page renders (data-rendered="ok"), reports no
# script error (data-errors) and logs nothing on the console; the DOM in $T/NAME.out.
loads() {
    chrome "$2" --dump-dom "file://$3${4:-}"
    why=""
    if ! grep -q 'data-rendered="ok"' "$T/$2.out"; then why="the page did not render"; fi
    if grep -q 'data-errors=' "$T/$2.out"; then why="$why; the page caught a script error"; fi
    if grep -Eq 'CONSOLE|Uncaught' "$T/$2.log"; then
        why="$why; console: $(grep -E 'CONSOLE|Uncaught' "$T/$2.log" | head -2)"
    fi
    if [ -z "$why" ]; then ok "$1"; else not_ok "$1" "$why"; fi
}

# count NAME PATTERN: how many times PATTERN (extended regexp) occurs in $T/NAME.out.
count() {
    grep -Eo "$2" "$T/$1.out" | wc -l | tr -d ' '
}

python3 "$HERE/gen_monitor.py" events "$T" && python3 "$HERE/gen_monitor.py" spikes "$T" ||
    not_ok "gen_monitor.py"
"$BIN" analyze "$T/events.jsonl" --html "$T/events.html" >/dev/null 2>&1 ||
    not_ok "analyze --html events.jsonl"
"$BIN" analyze "$T/spikes.csv" --html "$T/spikes.html" >/dev/null 2>&1 ||
    not_ok "analyze --html spikes.csv"

# --- the error detection itself, on a page with an error put in -----------------------------
sed 's/document.body.setAttribute(.data-rendered., .ok.);/null.boom(); &/' "$T/events.html" >"$T/broken.html"
if ! grep -q 'null.boom' "$T/broken.html"; then
    not_ok "an error could be put into a copy of the page"
else
    chrome broken --dump-dom "file://$T/broken.html"
    if grep -q 'data-errors="1"' "$T/broken.out" && grep -q 'Uncaught TypeError' "$T/broken.log" &&
        ! grep -q 'data-rendered="ok"' "$T/broken.out"; then
        ok "a script error is caught: in the page (data-errors) and on the console"
    else
        not_ok "a script error is caught: in the page (data-errors) and on the console"
    fi
fi

# --- monitor output: the timeline -----------------------------------------------------------
loads "monitor report: loads with no script error" events "$T/events.html"
series=$(count events 'class="series" data-metric="(process_rss|cgroup_current)"')
thresholds=$(count events 'class="threshold"')
alerts=$(count events 'class="event event-alert"')
markers=$(count events 'class="event event-marker"')
ooms=$(count events 'class="event event-oom"')
if [ "$series" = 2 ] && [ "$thresholds" = 3 ] && [ "$alerts" = 3 ] && [ "$markers" = 1 ] &&
    [ "$ooms" = 1 ]; then
    ok "timeline: 2 series, 3 threshold lines (warning, critical, limit), 3 alerts, 1 marker, 1 OOM"
else
    not_ok "timeline: 2 series, 3 threshold lines, 3 alerts, 1 marker, 1 OOM" \
        "series $series, thresholds $thresholds, alerts $alerts, markers $markers, OOMs $ooms"
fi
mentions "the tables: summary, leaks, events" "$T/events.out" "Summary" "Leaks" \
    "cgroup: 870.00 MiB of 1.00 GiB (85.0%)" "cgroup_oom_kill" 'phase, "two"' "sev-high"
chrome events-shot --window-size=1200,900 --screenshot="$T/events.png" "file://$T/events.html"
# the chart lies at x 100..1000, y 80..430 of a 1200-pixel-wide window: process RSS is drawn
# in #1f77b4 and cgroup usage in #9467bd, and no other part of the page uses those colours
check "screenshot: the process RSS line is drawn in the chart" \
    $CHECK png "$T/events.png" 31,119,180 100,80,1000,430 400
check "screenshot: the cgroup line is drawn in the chart" \
    $CHECK png "$T/events.png" 148,103,189 100,80,1000,430 400
check "screenshot: the red lines are drawn (critical threshold, critical alert, OOM)" \
    $CHECK png "$T/events.png" 214,39,40 100,80,1000,430 200

loads "monitor report from CSV with spikes: loads with no script error" spikes "$T/spikes.html"
n=$(count spikes 'class="spike"')
if [ "$n" = 3 ]; then ok "the 3 spikes are marked on the chart"; else
    not_ok "the 3 spikes are marked on the chart" "$n marked"; fi

# --- a trace: the flame graph ---------------------------------------------------------------------
if "$BIN" record -o "$T/snap.mst" -- "$P/snap_pattern" >/dev/null 2>&1 &&
    "$BIN" analyze "$T/snap.mst" --html "$T/trace.html" >/dev/null 2>&1; then
    loads "trace report: loads with no script error" trace "$T/trace.html"
    if grep -q 'data-zoom="all"' "$T/trace.out" &&
        grep -Eq '<rect[^>]*data-name="leak_here" data-bytes="5000"' "$T/trace.out" &&
        grep -Eq '<rect[^>]*data-name="main" data-bytes="28000"' "$T/trace.out" &&
        grep -Eq '<rect[^>]*data-name="all" data-bytes="28000"' "$T/trace.out"; then
        ok "flame graph: all 28000 bytes, main 28000, leak_here 5000"
    else
        not_ok "flame graph: all 28000 bytes, main 28000, leak_here 5000"
    fi
    mentions "the peak and leak tables" "$T/trace.out" "The heap at its peak" "Leaks: never freed" \
        "snap_pattern.c:23"
    loads "trace report zoomed on leak_here (#zoom=leak_here): loads" zoom "$T/trace.html" \
        "#zoom=leak_here"
    if grep -q 'data-zoom="leak_here"' "$T/zoom.out" &&
        grep -Eq '<rect x="0.00" y="[0-9]+" width="1100.00" [^>]*data-name="leak_here"' "$T/zoom.out" &&
        grep -Eq '<rect x="0.00" y="[0-9]+" width="1100.00" [^>]*data-name="main"' "$T/zoom.out" &&
        grep -Eq '<rect [^>]*width="196.43" [^>]*data-name="leak_here"' "$T/trace.out"; then
        ok "zoom: leak_here grows from 5000/28000 of the width to all of it"
    else
        not_ok "zoom: leak_here grows from 5000/28000 of the width to all of it"
    fi
    chrome trace-shot --window-size=1200,900 --screenshot="$T/trace.png" "file://$T/trace.html"
    # the flame graph's frames are warm colours (hue 10..55, 85% saturation) at y 100..230
    python3 - "$HERE" "$T/trace.png" <<'EOF' && ok "screenshot: the flame graph is drawn" ||
import colorsys, sys
sys.path.insert(0, sys.argv[1])
import check
w, h, px = check.png_pixels(sys.argv[2])
warm = 0
for y in range(100, 230):
    for x in range(24, 1124):
        r, g, b = (v / 255 for v in px[y][x])
        hue, light, sat = colorsys.rgb_to_hls(r, g, b)
        warm += 0.02 <= hue <= 0.17 and sat > 0.6
sys.exit(0 if warm > 20000 else 1)
EOF
        not_ok "screenshot: the flame graph is drawn"
else
    not_ok "record and analyze snap_pattern"
fi

finish
