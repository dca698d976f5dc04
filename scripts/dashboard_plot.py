#!/usr/bin/env python3
"""Plot a Grafana dashboard's panels from a Prometheus, as one SVG.

A test tool, not a renderer: it runs every target of every panel of the
dashboard through Prometheus' range query API and draws each panel as a
line chart (a stat panel too), so that a test run can show, and check,
that every panel's query finds series.

    dashboard_plot.py --prometheus http://127.0.0.1:9090 \\
        --dashboard charts/logbook/dashboards/logbook.json \\
        --start 1700000000 --end 1700003600 --out docs/images/dashboard.svg \\
        [--var namespace=shop --var valkeycluster=vault] [--require-data]

Template variables: `--var name=regex` for each of the dashboard's own
(one not given matches everything, `.*`); `$__rate_interval` is
`--rate-interval` (default 1m), `$__interval` the query's step, `$__range`
the plotted span. Python's standard library only.
"""

import argparse
import json
import math
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from xml.sax.saxutils import escape

POINTS = 120
MAX_SERIES = 8
COLUMNS = 3
PANEL_W, PANEL_H = 460, 300
PLOT_LEFT, PLOT_RIGHT, PLOT_TOP, PLOT_BOTTOM = 56, 28, 30, 110
COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728",
          "#9467bd", "#8c564b", "#e377c2", "#17becf"]


class QueryError(Exception):
    """A query Prometheus refused or could not be asked."""


def load_panels(dashboard):
    """The dashboard's panels that hold queries, in order: rows are
    sections, not panels, and a collapsed row keeps its panels inside it."""
    panels = []
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            panels.extend(panel.get("panels", []))
        else:
            panels.append(panel)
    return [p for p in panels if p.get("targets")]


def variables(dashboard, given, rate_interval, step, span):
    """Every variable's value: those given, `.*` for the dashboard's
    other template variables, and Grafana's built-in intervals."""
    values = {}
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("type") != "datasource":
            values[var["name"]] = var.get("allValue") or ".*"
    values.update(given)
    values["__rate_interval"] = rate_interval
    values["__interval"] = f"{step}s"
    values["__range"] = f"{span}s"
    return values


def substitute(expr, values):
    """The expression with `$name` and `${name}` replaced; an unknown
    variable is an error rather than a query Prometheus would refuse
    less clearly."""
    def value(match):
        name = match.group(1) or match.group(2)
        if name not in values:
            raise QueryError(f"unknown variable ${name}")
        return values[name]
    return re.sub(r"\$\{([A-Za-z_]\w*)(?::\w+)?\}|\$([A-Za-z_]\w*)", value, expr)


def query_range(base, expr, start, end, step):
    """The series of a range query: a list of (labels, [(t, v), ...]),
    points that are not finite numbers (NaN of an empty histogram)
    left out."""
    params = urllib.parse.urlencode(
        {"query": expr, "start": start, "end": end, "step": step})
    url = f"{base.rstrip('/')}/api/v1/query_range?{params}"
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            body = json.load(response)
    except urllib.error.HTTPError as e:
        # Prometheus explains a refused query in the body of its 4xx.
        try:
            body = json.load(e)
        except ValueError:
            raise QueryError(f"HTTP {e.code}") from e
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise QueryError(str(e)) from e
    if body.get("status") != "success":
        raise QueryError(body.get("error", "query failed"))
    series = []
    for result in body["data"]["result"]:
        points = [(float(t), float(v)) for t, v in result["values"]]
        series.append((result["metric"],
                       [(t, v) for t, v in points if math.isfinite(v)]))
    return series


def legend(fmt, labels):
    """The series' name as Grafana shows it: legendFormat with
    `{{label}}` replaced, else the series' labels."""
    if fmt and fmt != "__auto":
        return re.sub(r"\{\{\s*(\w+)\s*\}\}",
                      lambda m: labels.get(m.group(1), ""), fmt)
    name = labels.get("__name__", "")
    rest = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())
                     if k != "__name__")
    return f"{name}{{{rest}}}" if rest else name or "{}"


def fetch_panel(panel, base, values, start, end, step):
    """The panel's series as (legend, points), and a list of problems,
    one per target that found no series or failed."""
    series, problems = [], []
    for target in panel["targets"]:
        ref = target.get("refId", "?")
        try:
            found = query_range(base, substitute(target.get("expr", ""), values),
                                start, end, step)
        except QueryError as e:
            problems.append(f"target {ref}: error: {e}")
            continue
        if not found:
            problems.append(f"target {ref}: no series")
        for labels, points in found:
            series.append((legend(target.get("legendFormat", ""), labels), points))
    series.sort(key=lambda s: s[0])
    return series, problems


def axis(lo, hi, count=4):
    """The value axis over [lo, hi]: about `count` round ticks, the first
    and last enclosing the range."""
    raw = (hi - lo) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first, last = math.floor(lo / step), math.ceil(hi / step)
    return [i * step for i in range(first, last + 1)]


def format_value(v):
    """A tick label: short, with an SI prefix."""
    if v == 0:
        return "0"
    for factor, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"),
                           (1, ""), (1e-3, "m"), (1e-6, "µ")):
        if abs(v) >= factor:
            return f"{v / factor:.3g}{suffix}"
    return f"{v:.2g}"


def y_range(series):
    """The range of the series' values, widened to include 0 (a flat
    line then sits at its height, not in the middle), never empty."""
    values = [v for _, points in series for _, v in points]
    lo, hi = min(min(values), 0.0), max(max(values), 0.0)
    return (lo, hi) if hi > lo else (0.0, 1.0)


def polylines(points, sx, sy, step):
    """Point lists for `<polyline>`, broken where a point is missing so a
    gap shows as a gap."""
    lines, line, last = [], [], None
    for t, v in points:
        if last is not None and t - last > 1.5 * step:
            lines.append(line)
            line = []
        line.append(f"{sx(t):.1f},{sy(v):.1f}")
        last = t
    lines.append(line)
    return [" ".join(line) for line in lines if line]


def draw_panel(x0, y0, title, series, problems, start, end, step):
    """The SVG elements of one panel at (x0, y0)."""
    out = [f'<g transform="translate({x0},{y0})">',
           f'<rect width="{PANEL_W}" height="{PANEL_H}" fill="#fff" stroke="#ccc"/>',
           f'<text x="8" y="18" font-weight="bold">{escape(title)}</text>']
    left, top = PLOT_LEFT, PLOT_TOP
    width = PANEL_W - PLOT_LEFT - PLOT_RIGHT
    height = PANEL_H - PLOT_TOP - PLOT_BOTTOM
    out.append(f'<rect x="{left}" y="{top}" width="{width}" height="{height}" '
               'fill="none" stroke="#999"/>')
    drawn = [(name, points) for name, points in series if points][:MAX_SERIES]
    hidden = len([s for s in series if s[1]]) - len(drawn)
    if not drawn:
        note = "no data" + (f" ({problems[0]})" if problems else "")
        out.append(f'<text x="{left + width / 2}" y="{top + height / 2}" '
                   f'text-anchor="middle" fill="#888">{escape(note[:70])}</text>')
        out.append("</g>")
        return out
    ticks = axis(*y_range(drawn))
    lo, hi = ticks[0], ticks[-1]
    def sx(t):
        return left + (t - start) / (end - start) * width
    def sy(v):
        return top + height - (v - lo) / (hi - lo) * height
    for v in ticks:
        y = sy(v)
        out.append(f'<line x1="{left}" x2="{left + width}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>')
        out.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{escape(format_value(v))}</text>')
    clock = "%H:%M:%S" if end - start < 600 else "%H:%M"
    for i in range(5):
        t = start + (end - start) * i / 4
        label = time.strftime(clock, time.gmtime(t))
        out.append(f'<text x="{sx(t):.1f}" y="{top + height + 14}" text-anchor="middle">{label}</text>')
    for i, (name, points) in enumerate(drawn):
        color = COLORS[i % len(COLORS)]
        for line in polylines(points, sx, sy, step):
            out.append(f'<polyline points="{line}" fill="none" stroke="{color}" stroke-width="1.5"/>')
        lx = 8 + (i % 2) * (PANEL_W // 2)
        ly = top + height + 32 + (i // 2) * 15
        out.append(f'<rect x="{lx}" y="{ly - 8}" width="10" height="3" fill="{color}"/>')
        out.append(f'<text x="{lx + 14}" y="{ly}">{escape(name[:34])}</text>')
    if hidden:
        out.append(f'<text x="{PANEL_W - 8}" y="{PANEL_H - 6}" text-anchor="end" '
                   f'fill="#888">+{hidden} more series</text>')
    if problems:
        out.append(f'<text x="8" y="{PANEL_H - 6}" fill="#c00">'
                   f'{escape(problems[0][:60])}</text>')
    out.append("</g>")
    return out


def render(title, panels, start, end, step):
    """The whole SVG document: a heading, then the panels in a grid.
    `panels` is a list of (title, series, problems)."""
    rows = max(1, math.ceil(len(panels) / COLUMNS))
    width = COLUMNS * (PANEL_W + 10) + 10
    height = 40 + rows * (PANEL_H + 10)
    span = (f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(start))} to "
            f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(end))} UTC")
    out = ['<?xml version="1.0" encoding="UTF-8"?>',
           f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
           f'<rect width="{width}" height="{height}" fill="#f7f7f7"/>',
           f'<text x="10" y="26" font-size="16" font-weight="bold">{escape(title)}</text>',
           f'<text x="{width - 10}" y="26" text-anchor="end">{escape(span)}</text>']
    for i, (panel_title, series, problems) in enumerate(panels):
        x0 = 10 + (i % COLUMNS) * (PANEL_W + 10)
        y0 = 40 + (i // COLUMNS) * (PANEL_H + 10)
        out.extend(draw_panel(x0, y0, panel_title, series, problems, start, end, step))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def parse_args(argv):
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prometheus", required=True, help="base URL, e.g. http://127.0.0.1:9090")
    parser.add_argument("--dashboard", required=True, help="Grafana dashboard JSON")
    parser.add_argument("--start", required=True, type=int, help="Unix seconds")
    parser.add_argument("--end", required=True, type=int, help="Unix seconds")
    parser.add_argument("--out", required=True, help="SVG file to write")
    parser.add_argument("--var", action="append", default=[], metavar="NAME=REGEX",
                        help="a template variable's value (default .*)")
    parser.add_argument("--rate-interval", default="1m", help="$__rate_interval (default 1m)")
    parser.add_argument("--require-data", action="store_true",
                        help="exit 1 when a target finds no series or fails")
    args = parser.parse_args(argv)
    if args.end <= args.start:
        parser.error("--end must be after --start")
    given = {}
    for item in args.var:
        name, sep, value = item.partition("=")
        if not sep or not name:
            parser.error(f"--var {item!r}: expected NAME=REGEX")
        given[name] = value
    args.var = given
    return args


def main(argv):
    """Query, print a line per panel, write the SVG; 1 when data is
    required and some target found none."""
    args = parse_args(argv)
    with open(args.dashboard, encoding="utf-8") as f:
        dashboard = json.load(f)
    step = max(1, round((args.end - args.start) / POINTS))
    values = variables(dashboard, args.var, args.rate_interval, step,
                       args.end - args.start)
    plotted, missing = [], []
    for panel in load_panels(dashboard):
        title = panel.get("title", f"panel {panel.get('id')}")
        series, problems = fetch_panel(panel, args.prometheus, values,
                                       args.start, args.end, step)
        points = sum(len(p) for _, p in series)
        print(f"panel {title}: {len(series)} series, {points} points")
        missing.extend(f"panel {title}: {p}" for p in problems)
        plotted.append((title, series, problems))
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(render(dashboard.get("title", "dashboard"), plotted,
                       args.start, args.end, step))
    if args.require_data and missing:
        print("no data:", *missing, sep="\n  ", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
