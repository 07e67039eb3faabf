/*
 * html.c - the HTML report of a timeline analysis (ms_timeline_write_html, `memsnap analyze
 * --html`): one self-contained file that needs no network (inline CSS, JavaScript and SVG; no
 * CDN, no fonts, no images).
 *
 * The C side writes the analysis object (docs/analyze-format.md) into the page as JSON, with
 * the samples of each metric cut to at most 2 * CHART_BUCKETS points (the smallest and the
 * largest of each bucket, so spikes stay visible) and, for a trace, the folded stacks of the
 * heap at its peak. The script renders everything from that: for monitor output a timeline
 * of the metrics (click the legend to hide one; hover for the values) with the thresholds,
 * alerts, markers, OOM records and spikes on it, the summary, leak and event tables; for a
 * trace an interactive flame graph (hover a frame for its bytes, click to zoom in, click it
 * again or a frame below to zoom out; "#zoom=NAME" in the URL opens zoomed on the largest
 * frame called NAME) and the peak and leak sites. A script error is shown at the top of the
 * page and counted in the data-errors attribute of <html>; a page that rendered has
 * data-rendered="ok" on <body>.
 */
#include "timeline.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHART_BUCKETS 1500

static const char css[] =
    "body { font: 14px/1.4 system-ui, sans-serif; margin: 16px 24px; color: #222; background: "
    "#fff; }\n"
    "h1 { font-size: 18px; margin: 0 0 4px; word-break: break-all; }\n"
    "h2 { font-size: 16px; margin: 18px 0 6px; }\n"
    ".info { margin: 0 0 8px; color: #444; }\n"
    "table { border-collapse: collapse; margin: 4px 0 8px; }\n"
    "th, td { border-bottom: 1px solid #ddd; padding: 3px 10px; text-align: right; vertical-align: "
    "top; }\n"
    "th { background: #f4f4f4; }\n"
    "td:first-child, th:first-child, td:last-child, th:last-child { text-align: left; }\n"
    "pre { margin: 0; font: 12px/1.3 ui-monospace, monospace; text-align: left; }\n"
    ".sev { padding: 1px 6px; border-radius: 3px; color: #fff; font-weight: 600; }\n"
    ".sev-none { background: #6c9a6c; } .sev-low { background: #c9a227; }\n"
    ".sev-medium { background: #e0701a; } .sev-high { background: #c62828; }\n"
    ".chart svg, .flame svg { max-width: 100%; height: auto; }\n"
    ".tick { font: 11px sans-serif; fill: #555; }\n"
    ".tip { font: 12px sans-serif; fill: #111; pointer-events: none; }\n"
    ".legend { margin: 4px 0 8px 80px; }\n"
    ".legend .item { cursor: pointer; margin-right: 16px; user-select: none; }\n"
    ".legend .item.off { opacity: 0.35; }\n"
    ".swatch { display: inline-block; width: 12px; height: 12px; margin-right: 5px; "
    "vertical-align: -1px; }\n"
    ".frame { cursor: pointer; }\n"
    ".frame:hover rect { stroke: #000; stroke-width: 0.5; }\n"
    ".ftext { font: 11px ui-monospace, monospace; fill: #000; pointer-events: none; }\n"
    ".finfo { font: 12px ui-monospace, monospace; min-height: 16px; margin: 4px 0; }\n"
    "#ms-errors { display: none; background: #fdd; color: #900; padding: 6px; white-space: "
    "pre-wrap; }\n";

/* Installed first, so that an error anywhere later is caught and shown. */
static const char error_js[] =
    "window.addEventListener('error', function (e) {\n"
    "  var b = document.getElementById('ms-errors');\n"
    "  var n = Number(document.documentElement.getAttribute('data-errors') || 0) + 1;\n"
    "  document.documentElement.setAttribute('data-errors', String(n));\n"
    "  if (b) {\n"
    "    b.style.display = 'block';\n"
    "    b.textContent += 'report error: ' + e.message + ' (line ' + e.lineno + ')\\n';\n"
    "  }\n"
    "});\n";

static const char report_js[] =
    "(function () {\n"
    "  'use strict';\n"
    "  var data = JSON.parse(document.getElementById('ms-data').textContent);\n"
    "  var A = data.analysis;\n"
    "  var SVG = 'http://www.w3.org/2000/svg';\n"
    "  var COLORS = {process_rss: '#1f77b4', process_pss: '#2ca02c', cgroup_current: '#9467bd',\n"
    "    system_used: '#8c564b', gpu_used: '#e377c2', tree_rss: '#17becf'};\n"
    "  var LEVEL = {warning: '#ff7f0e', critical: '#d62728', ok: '#2ca02c', limit: '#555555'};\n"
    "\n"
    "  function el(tag, attrs, text) {\n"
    "    var e = document.createElement(tag);\n"
    "    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);\n"
    "    if (text !== undefined) e.textContent = text;\n"
    "    return e;\n"
    "  }\n"
    "  function sv(tag, attrs, text) {\n"
    "    var e = document.createElementNS(SVG, tag);\n"
    "    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);\n"
    "    if (text !== undefined) e.textContent = text;\n"
    "    return e;\n"
    "  }\n"
    "  function bytes(b) {\n"
    "    if (b === null || b === undefined) return '-';\n"
    "    var neg = b < 0, v = Math.abs(b), u = 0;\n"
    "    var units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];\n"
    "    if (v < 1024) return (neg ? '-' : '') + Math.round(v) + ' B';\n"
    "    while (v >= 1024 - 0.005 && u < 6) { v /= 1024; u++; }\n"
    "    return (neg ? '-' : '') + v.toFixed(2) + ' ' + units[u];\n"
    "  }\n"
    "  function secs(s) {\n"
    "    if (s === null || s === undefined) return '-';\n"
    "    var a = Math.abs(s);\n"
    "    if (a < 120) return s.toFixed(3) + ' s';\n"
    "    if (a < 7200) return (s / 60).toFixed(1) + ' min';\n"
    "    return (s / 3600).toFixed(2) + ' h';\n"
    "  }\n"
    "  function rate(bps) {\n"
    "    if (bps === null || bps === undefined) return '-';\n"
    "    var m = bps * 60;\n"
    "    return (m > 0 ? '+' : '') + bytes(m) + '/min';\n"
    "  }\n"
    "  /* A round step near raw: 1, 2 or 5 times a power of base (1024 for bytes, 10 else). */\n"
    "  function nice(raw, base) {\n"
    "    if (!(raw > 0)) return 1;\n"
    "    var p = 1;\n"
    "    if (base === 1024) {\n"
    "      while (raw / p >= 1024) p *= 1024;\n"
    "    }\n"
    "    var e = Math.pow(10, Math.floor(Math.log10(raw / p)));\n"
    "    var m = raw / p / e;\n"
    "    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * e * p;\n"
    "  }\n"
    "  function table(parent, head, rows) {\n"
    "    var t = el('table'), tr = el('tr');\n"
    "    head.forEach(function (h) { tr.appendChild(el('th', {}, h)); });\n"
    "    t.appendChild(tr);\n"
    "    rows.forEach(function (r) {\n"
    "      var row = el('tr');\n"
    "      r.forEach(function (c) {\n"
    "        var td = el('td');\n"
    "        if (c instanceof Node) td.appendChild(c); else td.textContent = c;\n"
    "        row.appendChild(td);\n"
    "      });\n"
    "      t.appendChild(row);\n"
    "    });\n"
    "    parent.appendChild(t);\n"
    "    return t;\n"
    "  }\n"
    "  function section(title) {\n"
    "    var s = el('section');\n"
    "    s.appendChild(el('h2', {}, title));\n"
    "    document.getElementById('ms-main').appendChild(s);\n"
    "    return s;\n"
    "  }\n"
    "  function badge(sev) {\n"
    "    return el('span', {'class': 'sev sev-' + sev}, sev);\n"
    "  }\n"
    "\n"
    "  var main = document.getElementById('ms-main');\n"
    "  var head = document.getElementById('ms-head');\n"
    "  document.title = 'memsnap analyze: ' + A.file;\n"
    "  head.appendChild(el('h1', {}, 'memsnap analyze: ' + A.file));\n"
    "\n"
    "  /* ---------------------------------------------------------------- monitor output */\n"
    "  function monitor() {\n"
    "    var t0 = A.time_origin_ns;\n"
    "    var info = A.samples + ' samples over ' + secs(A.duration_s) + ' (' +\n"
    "      (A.format === 'csv' ? 'CSV' : 'JSON lines') + ')';\n"
    "    var st = A.start;\n"
    "    if (st && st.pid !== undefined && st.pid !== null) {\n"
    "      info += ', pid ' + st.pid;\n"
    "      if (st.command) info += ': ' + st.command.join(' ');\n"
    "    }\n"
    "    if (A.leak) info += '; leak verdict: ';\n"
    "    var p = el('p', {'class': 'info'}, info);\n"
    "    if (A.leak) p.appendChild(badge(A.leak.severity));\n"
    "    head.appendChild(p);\n"
    "    chart();\n"
    "    var keys = Object.keys(A.metrics);\n"
    "    var s = section('Summary');\n"
    "    table(s, ['metric', 'min', 'mean', 'p50', 'p90', 'p99', 'max', 'peak at'],\n"
    "      keys.map(function (k) {\n"
    "        var m = A.metrics[k];\n"
    "        return [m.label, bytes(m.min), bytes(m.mean), bytes(m.p50), bytes(m.p90), "
    "bytes(m.p99),\n"
    "          bytes(m.max), secs(m.peak.offset_s)];\n"
    "      }));\n"
    "    s = section('Leaks');\n"
    "    table(s, ['metric', 'slope', '95% interval', 'p-value', 'rising', 'growth', 'to limit',\n"
    "      'severity', 'why'], keys.map(function (k) {\n"
    "        var t = A.metrics[k].trend;\n"
    "        return [A.metrics[k].label, rate(t.slope_bytes_per_s),\n"
    "          rate(t.ci95_bytes_per_s[0]) + ' .. ' + rate(t.ci95_bytes_per_s[1]),\n"
    "          t.p_value === null ? '-' : t.p_value.toPrecision(2),\n"
    "          Math.round(t.rising_share * 100) + '%',\n"
    "          (t.growth_bytes > 0 ? '+' : '') + bytes(t.growth_bytes) + ' (' +\n"
    "            (t.growth_pct === null ? '-' : t.growth_pct.toFixed(1)) + '%)',\n"
    "          secs(t.time_to_limit_s), badge(t.severity), t.reason];\n"
    "      }));\n"
    "    s = section('Spikes');\n"
    "    var rows = [];\n"
    "    keys.forEach(function (k) {\n"
    "      A.metrics[k].spikes.list.forEach(function (x) {\n"
    "        rows.push([A.metrics[k].label, '#' + x.seq, secs(x.offset_s), bytes(x.bytes),\n"
    "          bytes(x.median_bytes), '+' + bytes(x.excess_bytes)]);\n"
    "      });\n"
    "    });\n"
    "    if (rows.length)\n"
    "      table(s, ['metric', 'sample', 'at', 'value', 'rolling median', 'above it'], rows);\n"
    "    else s.appendChild(el('p', {}, 'none'));\n"
    "    s = section('Alerts, OOM records and markers');\n"
    "    rows = [];\n"
    "    A.alerts.forEach(function (a) {\n"
    "      rows.push([a.offset_s, 'alert ' + a.level, (a.metric || '') + ': ' +\n"
    "        bytes(a.used_bytes) + ' of ' + bytes(a.limit_bytes) +\n"
    "        (a.percent !== null ? ' (' + a.percent.toFixed(1) + '%)' : '')]);\n"
    "    });\n"
    "    A.ooms.forEach(function (o) {\n"
    "      rows.push([o.offset_s, 'OOM', (o.reason || '?') +\n"
    "        (o.backend ? ' (' + o.backend + ')' : '') + (o.pid !== null ? ' pid ' + o.pid : '') "
    "+\n"
    "        (o.bundle ? ', ' + o.bundle : '')]);\n"
    "    });\n"
    "    A.markers.forEach(function (m) { rows.push([m.offset_s, 'marker', m.label || '']); });\n"
    "    rows.sort(function (a, b) { return a[0] - b[0]; });\n"
    "    rows.forEach(function (r) { r[0] = secs(r[0]); });\n"
    "    if (rows.length) table(s, ['at', 'what', 'detail'], rows);\n"
    "    else s.appendChild(el('p', {}, 'none'));\n"
    "  }\n"
    "\n"
    "  /* The timeline: one line per metric, thresholds, alerts, markers, OOMs, spikes. */\n"
    "  function chart() {\n"
    "    var box = el('div', {'class': 'chart', id: 'ms-chart'});\n"
    "    head.appendChild(box);\n"
    "    var legend = el('div', {'class': 'legend'});\n"
    "    head.appendChild(legend);\n"
    "    var keys = Object.keys(data.series).filter(function (k) { return data.series[k].length; "
    "});\n"
    "    /* a metric 20 times larger than the process's (the system's, a big cgroup's) would "
    "flatten\n"
    "       it: such a metric starts hidden (its legend entry shows it) */\n"
    "    var shown = {}, proc = 0;\n"
    "    ['process_rss', 'process_pss', 'tree_rss'].forEach(function (k) {\n"
    "      if (A.metrics[k]) proc = Math.max(proc, A.metrics[k].max);\n"
    "    });\n"
    "    keys.forEach(function (k) {\n"
    "      shown[k] = !(proc > 0 && !/^(process_|tree_)/.test(k) && A.metrics[k].max > 20 * "
    "proc);\n"
    "    });\n"
    "    var W = 1100, H = 380, ML = 80, MR = 150, MT = 16, MB = 34;\n"
    "    var PW = W - ML - MR, PH = H - MT - MB;\n"
    "    var events = [];\n"
    "    A.alerts.forEach(function (a) {\n"
    "      events.push({t: a.offset_s, kind: 'alert', color: LEVEL[a.level] || '#ff7f0e',\n"
    "        text: 'alert ' + a.level + ' ' + (a.metric || '') + ' ' + bytes(a.used_bytes) +\n"
    "          (a.percent !== null ? ' (' + a.percent.toFixed(1) + '%)' : '')});\n"
    "    });\n"
    "    A.markers.forEach(function (m) {\n"
    "      events.push({t: m.offset_s, kind: 'marker', color: '#777', text: m.label || "
    "'marker'});\n"
    "    });\n"
    "    A.ooms.forEach(function (o) {\n"
    "      events.push({t: o.offset_s, kind: 'oom', color: '#d62728', text: 'OOM ' + (o.reason || "
    "'')});\n"
    "    });\n"
    "    function draw() {\n"
    "      box.textContent = '';\n"
    "      var svg = sv('svg', {viewBox: '0 0 ' + W + ' ' + H, width: W, height: H,\n"
    "        'data-series': keys.filter(function (k) { return shown[k]; }).join(',')});\n"
    "      box.appendChild(svg);\n"
    "      var vis = keys.filter(function (k) { return shown[k]; });\n"
    "      var x0 = Infinity, x1 = -Infinity, y1 = 0;\n"
    "      keys.forEach(function (k) {\n"
    "        data.series[k].forEach(function (p) {\n"
    "          x0 = Math.min(x0, p[0]); x1 = Math.max(x1, p[0]);\n"
    "          if (shown[k]) y1 = Math.max(y1, p[1]);\n"
    "        });\n"
    "      });\n"
    "      events.forEach(function (e) { x0 = Math.min(x0, e.t); x1 = Math.max(x1, e.t); });\n"
    "      /* threshold lines of the metrics shown, on the scale when within twice their values "
    "*/\n"
    "      var top = y1, off = [];\n"
    "      var lines = (A.thresholds || []).filter(function (t) {\n"
    "        if (!shown[t.metric]) return false;\n"
    "        if (t.bytes > 2 * top && top > 0) { off.push(t); return false; }\n"
    "        return true;\n"
    "      });\n"
    "      lines.forEach(function (t) { y1 = Math.max(y1, t.bytes); });\n"
    "      if (!isFinite(x0)) { x0 = 0; x1 = 1; }\n"
    "      if (x1 <= x0) x1 = x0 + 1;\n"
    "      if (y1 <= 0) y1 = 1;\n"
    "      y1 *= 1.05;\n"
    "      function X(t) { return ML + (t - x0) / (x1 - x0) * PW; }\n"
    "      function Y(v) { return MT + PH - v / y1 * PH; }\n"
    "      svg.appendChild(sv('rect', {x: ML, y: MT, width: PW, height: PH, fill: '#fff',\n"
    "        stroke: '#ccc'}));\n"
    "      var ys = nice(y1 / 8, 1024), v;\n"
    "      for (v = 0; v <= y1; v += ys) {\n"
    "        var y = Y(v);\n"
    "        svg.appendChild(sv('line', {x1: ML, x2: ML + PW, y1: y, y2: y, stroke: '#eee'}));\n"
    "        svg.appendChild(sv('text', {x: ML - 6, y: y + 4, 'text-anchor': 'end',\n"
    "          'class': 'tick'}, bytes(v)));\n"
    "      }\n"
    "      var span = x1 - x0, unit = span >= 7200 ? 3600 : span >= 120 ? 60 : 1;\n"
    "      var uname = unit === 3600 ? ' h' : unit === 60 ? ' min' : ' s';\n"
    "      var xs = nice(span / unit / 6, 10) * unit;\n"
    "      for (v = Math.ceil(x0 / xs) * xs; v <= x1; v += xs)\n"
    "        svg.appendChild(sv('text', {x: X(v), y: MT + PH + 16, 'text-anchor': 'middle',\n"
    "          'class': 'tick'}, +(v / unit).toFixed(3) + uname));\n"
    "      lines.forEach(function (t) {\n"
    "        var y = Y(t.bytes);\n"
    "        svg.appendChild(sv('line', {x1: ML, x2: ML + PW, y1: y, y2: y, stroke: "
    "LEVEL[t.level],\n"
    "          'stroke-dasharray': '6 4', 'class': 'threshold'}));\n"
    "        svg.appendChild(sv('text', {x: ML + PW + 4, y: y + 4, 'class': 'tick',\n"
    "          fill: LEVEL[t.level]}, t.level === 'limit' ? t.of :\n"
    "          t.level + ' ' + t.percent + '% of ' + t.of));\n"
    "      });\n"
    "      off.forEach(function (t, i) {\n"
    "        svg.appendChild(sv('text', {x: ML + PW - 4, y: MT + 14 + 13 * i, 'text-anchor': "
    "'end',\n"
    "          'class': 'tick off-scale', fill: LEVEL[t.level]}, '\\u2191 ' + (t.level === 'limit' "
    "?\n"
    "          t.of : t.level + ' ' + t.percent + '% of ' + t.of) + ': ' + bytes(t.bytes)));\n"
    "      });\n"
    "      events.forEach(function (e) {\n"
    "        var x = X(e.t);\n"
    "        var g = sv('g', {'class': 'event event-' + e.kind});\n"
    "        g.appendChild(sv('title', {}, secs(e.t) + ': ' + e.text));\n"
    "        g.appendChild(sv('line', {x1: x, x2: x, y1: MT, y2: MT + PH, stroke: e.color,\n"
    "          'stroke-width': e.kind === 'oom' ? 2 : 1,\n"
    "          'stroke-dasharray': e.kind === 'marker' ? '3 3' : ''}));\n"
    "        if (e.kind === 'alert')\n"
    "          g.appendChild(sv('path', {d: 'M' + (x - 5) + ',' + MT + 'h10l-5,8z', fill: "
    "e.color}));\n"
    "        else\n"
    "          g.appendChild(sv('text', {x: x + 3, y: MT + 12, 'class': 'tick', fill: e.color},\n"
    "            e.kind === 'oom' ? 'OOM' : e.text));\n"
    "        svg.appendChild(g);\n"
    "      });\n"
    "      vis.forEach(function (k) {\n"
    "        var pts = data.series[k].map(function (p) {\n"
    "          return X(p[0]).toFixed(1) + ',' + Y(p[1]).toFixed(1);\n"
    "        });\n"
    "        svg.appendChild(sv('polyline', {points: pts.join(' '), fill: 'none', stroke: "
    "COLORS[k],\n"
    "          'stroke-width': 1.5, 'class': 'series', 'data-metric': k}));\n"
    "        (A.metrics[k] ? A.metrics[k].spikes.list : []).forEach(function (s) {\n"
    "          var c = sv('circle', {cx: X(s.offset_s), cy: Y(s.bytes), r: 4, fill: 'none',\n"
    "            stroke: '#d62728', 'stroke-width': 1.5, 'class': 'spike'});\n"
    "          c.appendChild(sv('title', {}, A.metrics[k].label + ' spike at ' + secs(s.offset_s) "
    "+\n"
    "            ': ' + bytes(s.bytes) + ' (median ' + bytes(s.median_bytes) + ')'));\n"
    "          svg.appendChild(c);\n"
    "        });\n"
    "      });\n"
    "      var cursor = sv('line', {y1: MT, y2: MT + PH, stroke: '#333', visibility: 'hidden'});\n"
    "      var tip = sv('text', {'class': 'tip', visibility: 'hidden'});\n"
    "      svg.appendChild(cursor);\n"
    "      svg.appendChild(tip);\n"
    "      svg.addEventListener('mousemove', function (ev) {\n"
    "        var r = svg.getBoundingClientRect();\n"
    "        var px = (ev.clientX - r.left) * W / r.width;\n"
    "        if (px < ML || px > ML + PW) { cursor.setAttribute('visibility', 'hidden');\n"
    "          tip.setAttribute('visibility', 'hidden'); return; }\n"
    "        var t = x0 + (px - ML) / PW * (x1 - x0);\n"
    "        cursor.setAttribute('x1', px); cursor.setAttribute('x2', px);\n"
    "        cursor.setAttribute('visibility', 'visible');\n"
    "        tip.textContent = '';\n"
    "        var lines = [secs(t)];\n"
    "        vis.forEach(function (k) {\n"
    "          var s = data.series[k], lo = 0, hi = s.length - 1;\n"
    "          while (lo < hi) { var mid = (lo + hi) >> 1; if (s[mid][0] < t) lo = mid + 1; else "
    "hi = mid; }\n"
    "          if (lo > 0 && Math.abs(s[lo - 1][0] - t) < Math.abs(s[lo][0] - t)) lo--;\n"
    "          lines.push(A.metrics[k].label + ': ' + bytes(s[lo][1]));\n"
    "        });\n"
    "        lines.forEach(function (l, i) {\n"
    "          tip.appendChild(sv('tspan', {x: px + 8, y: MT + 14 + 14 * i}, l));\n"
    "        });\n"
    "        tip.setAttribute('visibility', 'visible');\n"
    "      });\n"
    "    }\n"
    "    keys.forEach(function (k) {\n"
    "      var item = el('span', {'class': 'item' + (shown[k] ? '' : ' off'), 'data-metric': k,\n"
    "        title: 'click to hide or show'});\n"
    "      item.appendChild(el('span', {'class': 'swatch', style: 'background:' + COLORS[k]}));\n"
    "      item.appendChild(document.createTextNode(A.metrics[k].label));\n"
    "      item.addEventListener('click', function () {\n"
    "        shown[k] = !shown[k];\n"
    "        item.classList.toggle('off', !shown[k]);\n"
    "        draw();\n"
    "      });\n"
    "      legend.appendChild(item);\n"
    "    });\n"
    "    draw();\n"
    "  }\n"
    "\n"
    "  /* ---------------------------------------------------------------- traces */\n"
    "  function frameText(f) {\n"
    "    if (f.function)\n"
    "      return f.function + (f.file ? ' ' + f.file + ':' + f.line : '') + ' [' +\n"
    "        f.module.replace(/.*\\//, '') + ']';\n"
    "    return f.module.replace(/.*\\//, '') + ' (unresolved)';\n"
    "  }\n"
    "  function sites(title, v) {\n"
    "    var s = section(title);\n"
    "    s.appendChild(el('p', {}, bytes(v.live_bytes) + ' in ' + v.live_allocations +\n"
    "      ' allocations at ' + secs(v.time_ns / 1e9)));\n"
    "    table(s, ['#', 'bytes', 'allocations', 'call stack (innermost first)'],\n"
    "      v.sites.map(function (x, i) {\n"
    "        var pre = el('pre', {}, x.stack.slice(0, 8).map(frameText).join('\\n') +\n"
    "          (x.stack.length > 8 ? '\\n...' : ''));\n"
    "        return [String(i + 1), bytes(x.bytes), String(x.count), pre];\n"
    "      }));\n"
    "  }\n"
    "  function trace() {\n"
    "    head.appendChild(el('p', {'class': 'info'}, 'a memsnap trace: the heap peaked at ' +\n"
    "      bytes(A.peak.live_bytes) + ' (' + secs(A.peak.time_ns / 1e9) + '), ' +\n"
    "      bytes(A.leaks.live_bytes) + ' never freed'));\n"
    "    flame();\n"
    "    sites('The heap at its peak', A.peak);\n"
    "    sites('Leaks: never freed', A.leaks);\n"
    "  }\n"
    "\n"
    "  /* The flame graph of the live heap at the peak: click a frame to zoom, hover for bytes. "
    "*/\n"
    "  function flame() {\n"
    "    var root = {name: 'all', value: 0, children: {}, depth: 0, parent: null};\n"
    "    var depth = 0;\n"
    "    data.folded.forEach(function (f) {\n"
    "      var node = root, names = f[0].split(';');\n"
    "      root.value += f[1];\n"
    "      names.forEach(function (n, i) {\n"
    "        if (!node.children[n])\n"
    "          node.children[n] = {name: n, value: 0, children: {}, depth: i + 1, parent: node};\n"
    "        node = node.children[n];\n"
    "        node.value += f[1];\n"
    "      });\n"
    "      depth = Math.max(depth, names.length);\n"
    "    });\n"
    "    function kids(n) {\n"
    "      return Object.keys(n.children).sort().map(function (k) { return n.children[k]; });\n"
    "    }\n"
    "    (function place(n, start) {\n"
    "      n.start = start;\n"
    "      kids(n).forEach(function (c) { place(c, start); start += c.value; });\n"
    "    })(root, 0);\n"
    "    var box = el('div', {'class': 'flame', id: 'ms-flame'});\n"
    "    var info = el('div', {'class': 'finfo', id: 'ms-flame-info'},\n"
    "      'Hover a frame for its bytes; click to zoom, click the bottom bar to zoom out.');\n"
    "    head.appendChild(el('h2', {}, 'Flame graph of the heap at its peak'));\n"
    "    head.appendChild(box);\n"
    "    head.appendChild(info);\n"
    "    var W = 1100, RH = 18, H = (depth + 1) * RH;\n"
    "    function draw(z) {\n"
    "      box.textContent = '';\n"
    "      var svg = sv('svg', {viewBox: '0 0 ' + W + ' ' + H, width: W, height: H,\n"
    "        'data-zoom': z.name});\n"
    "      box.appendChild(svg);\n"
    "      (function walk(n) {\n"
    "        var x, w;\n"
    "        if (n.start + n.value <= z.start || n.start >= z.start + z.value) return;\n"
    "        var anc = n.depth < z.depth;\n"
    "        x = anc ? 0 : (n.start - z.start) / z.value * W;\n"
    "        w = anc ? W : n.value / z.value * W;\n"
    "        if (w < 0.5) return;\n"
    "        var y = H - (n.depth + 1) * RH;\n"
    "        var g = sv('g', {'class': 'frame'});\n"
    "        var h = 0;\n"
    "        for (var i = 0; i < n.name.length; i++) h = (h * 31 + n.name.charCodeAt(i)) >>> 0;\n"
    "        var pct = root.value ? (100 * n.value / root.value).toFixed(2) : '0';\n"
    "        g.appendChild(sv('title', {}, n.name + ': ' + bytes(n.value) + ' (' + pct + '%)'));\n"
    "        g.appendChild(sv('rect', {x: x.toFixed(2), y: y, width: w.toFixed(2), height: RH - "
    "1,\n"
    "          fill: n === root ? '#c8c8c8' : 'hsl(' + (10 + h % 45) + ',85%,' + (55 + h % 15) + "
    "'%)',\n"
    "          'data-name': n.name, 'data-bytes': n.value, 'data-depth': n.depth}));\n"
    "        if (w > 40) {\n"
    "          var chars = Math.floor((w - 6) / 6.5);\n"
    "          g.appendChild(sv('text', {x: x + 3, y: y + RH - 5, 'class': 'ftext'},\n"
    "            n.name.length > chars ? n.name.slice(0, Math.max(0, chars - 2)) + '..' : "
    "n.name));\n"
    "        }\n"
    "        g.addEventListener('mouseover', function () {\n"
    "          info.textContent = n.name + ': ' + bytes(n.value) + ' (' + n.value + ' bytes, ' + "
    "pct +\n"
    "            '% of the peak)';\n"
    "        });\n"
    "        g.addEventListener('click', function () { draw(n === z && n.parent ? n.parent : n); "
    "});\n"
    "        svg.appendChild(g);\n"
    "        kids(n).forEach(walk);\n"
    "      })(root);\n"
    "    }\n"
    "    var want = /^#zoom=(.*)$/.exec(location.hash);\n"
    "    var target = root;\n"
    "    if (want) {\n"
    "      var name = decodeURIComponent(want[1]);\n"
    "      (function find(n) {\n"
    "        if (target !== root) return;\n"
    "        if (n.name === name && n !== root) { target = n; return; }\n"
    "        kids(n).sort(function (a, b) { return b.value - a.value; }).forEach(find);\n"
    "      })(root);\n"
    "    }\n"
    "    draw(target);\n"
    "  }\n"
    "\n"
    "  if (A.kind === 'trace') trace(); else monitor();\n"
    "  document.body.setAttribute('data-rendered', 'ok');\n"
    "})();\n";

/* [offset_s, bytes] of every sample of metric m, or of the smallest and largest in each of
 * CHART_BUCKETS ranges of samples when there are more. */
static json_t *series_json(const struct ms__tl_series *s, int m, uint64_t t0)
{
    json_t *out = json_array();
    size_t buckets = s->n > 2 * CHART_BUCKETS ? CHART_BUCKETS : s->n;
    for (size_t b = 0; out && b < buckets; b++) {
        size_t lo = b * s->n / buckets, hi = (b + 1) * s->n / buckets;
        size_t imin = SIZE_MAX, imax = SIZE_MAX;
        for (size_t i = lo; i < hi; i++) {
            if (!(s->valid[i] >> m & 1))
                continue;
            if (imin == SIZE_MAX || s->val[m][i] < s->val[m][imin])
                imin = i;
            if (imax == SIZE_MAX || s->val[m][i] > s->val[m][imax])
                imax = i;
        }
        if (imin == SIZE_MAX)
            continue;
        size_t pick[2] = {imin < imax ? imin : imax, imin < imax ? imax : imin};
        for (int k = 0; k < (imin == imax ? 1 : 2); k++) {
            size_t i = pick[k];
            /* the offset by the clock durations are measured by (ms__tl_series_clock) */
            double x =
                (double)(int64_t)(s->time_ns[0] - t0) / 1e9 + (double)ms__tl_elapsed_ns(s, i) / 1e9;
            json_t *p = json_pack("[f,I]", x, (json_int_t)s->val[m][i]);
            if (!p || json_array_append_new(out, p)) {
                json_decref(out);
                return NULL;
            }
        }
    }
    return out;
}

/* The folded stacks ("a;b;c 123" lines) as [[stack, bytes], ...]. */
static json_t *folded_json(const char *folded)
{
    json_t *out = json_array();
    for (const char *p = folded; out && *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        const char *sp = len ? memrchr(p, ' ', len) : NULL;
        if (sp) {
            long long bytes = strtoll(sp + 1, NULL, 10);
            json_t *stack = json_stringn(p, (size_t)(sp - p));
            json_t *e = stack ? json_pack("[o,I]", stack, (json_int_t)bytes) : NULL;
            if (!e || json_array_append_new(out, e)) {
                json_decref(out);
                return NULL;
            }
        }
        p += len + (nl != NULL);
    }
    return out;
}

/* Writes text as the content of a <script> element: '<' escaped as \u003c (JSON allows it
 * in strings, the only place a '<' can be), so that nothing in it can close the element. */
static int write_script_json(FILE *fp, const char *text)
{
    for (const char *p = text; *p; p++) {
        const char *lt = strchr(p, '<');
        size_t n = lt ? (size_t)(lt - p) : strlen(p);
        if (fwrite(p, 1, n, fp) != n)
            return -1;
        p += n;
        if (!*p)
            break;
        if (fputs("\\u003c", fp) == EOF)
            return -1;
    }
    return 0;
}

int ms__tl_write_html(FILE *fp, json_t *analysis, const struct ms__tl_series *s, const char *folded)
{
    json_t *data = json_pack("{s:O}", "analysis", analysis);
    if (!data)
        return -1;
    int bad = 0;
    if (s) {
        uint64_t t0 = (uint64_t)json_integer_value(json_object_get(analysis, "time_origin_ns"));
        json_t *series = json_object();
        bad |= !series || json_object_set_new(data, "series", series);
        for (int m = 0; m < MS__TL_METRICS && !bad; m++)
            if (json_object_get(json_object_get(analysis, "metrics"), ms__tl_metric_key(m)))
                bad |= json_object_set_new(series, ms__tl_metric_key(m), series_json(s, m, t0));
    }
    if (folded)
        bad |= json_object_set_new(data, "folded", folded_json(folded));
    char *text = bad ? NULL : json_dumps(data, JSON_COMPACT | JSON_REAL_PRECISION(10));
    json_decref(data);
    if (!text)
        return -1;
    fprintf(fp,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<title>memsnap analyze</title>\n<style>\n%s</style>\n<script>\n%s</script>\n"
            "</head>\n<body>\n<div id=\"ms-errors\"></div>\n<header id=\"ms-head\"></header>\n"
            "<main id=\"ms-main\"></main>\n<noscript>This report is drawn by JavaScript: "
            "enable it to see the report.</noscript>\n"
            "<script type=\"application/json\" id=\"ms-data\">",
            css, error_js);
    bad = write_script_json(fp, text);
    free(text);
    fprintf(fp, "</script>\n<script>\n%s</script>\n</body>\n</html>\n", report_js);
    return bad || ferror(fp) ? -1 : 0;
}
