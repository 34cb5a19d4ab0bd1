#!/usr/bin/python3
"""Turns the JSON of scripts/report.sql (stdin) into one self-contained HTML page (stdout).

Six charts as inline SVG, CSS inline, no script and nothing fetched, so the file opens
anywhere, offline, and can be mailed. Standard library only (Debian's python3).

Every chart sits in a card at a fixed place on a fixed-size page (LAYOUT), and its <svg>
carries that place in page pixels as data-box="x y width height": test/report.sh
screenshots the page and checks each of those boxes for drawn marks.
"""
import html
import json
import math
import sys

PAGE_WIDTH = 1200
HEADER_HEIGHT = 110
CARD_WIDTH, CARD_HEIGHT, GAP = 570, 520, 20
SVG_LEFT, SVG_TOP = 10, 76            # the chart inside its card
SVG_WIDTH, SVG_HEIGHT = 550, 430
ROWS = 3
PAGE_HEIGHT = HEADER_HEIGHT + ROWS * (CARD_HEIGHT + GAP) + 40   # + the footer

STAGES = ["prospect", "new", "active", "at_risk", "inactive", "lapsed"]
STAGE_COLOURS = {"new": "#4e79a7", "active": "#59a14f", "at_risk": "#edc948",
                 "inactive": "#f28e2b", "lapsed": "#e15759"}
FONT = "DejaVu Sans, Verdana, sans-serif"


def esc(value):
    return html.escape(str(value), quote=True)


def text(x, y, content, size=11, anchor="start", colour="#333", extra=""):
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
            f'fill="{colour}"{extra}>{esc(content)}</text>')


def nice_ticks(high, count=5):
    """Round tick values from 0 to at least `high`."""
    if high <= 0:
        return [0, 1]
    raw = high / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    ticks = [0]
    while ticks[-1] < high:
        ticks.append(ticks[-1] + step)
    return ticks


def fmt(value):
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:g}"


class Plot:
    """A plot area inside the SVG, with a linear y axis (0 .. top tick) on the left."""

    def __init__(self, y_high, left=62, right=20, top=34, bottom=58):
        self.left, self.top = left, top
        self.width = SVG_WIDTH - left - right
        self.height = SVG_HEIGHT - top - bottom
        self.ticks = nice_ticks(y_high)
        self.y_max = self.ticks[-1]

    def y(self, value, y_max=None):
        return self.top + self.height * (1 - value / (y_max or self.y_max))

    def y_axis(self, title, percent=False):
        parts = []
        for t in self.ticks:
            y = self.y(t)
            parts.append(f'<line x1="{self.left}" x2="{self.left + self.width}" y1="{y:.1f}" '
                         f'y2="{y:.1f}" stroke="#e4e4e4"/>')
            parts.append(text(self.left - 6, y + 4, f"{fmt(t)}%" if percent else fmt(t),
                              size=10, anchor="end"))
        cx, cy = 14, self.top + self.height / 2
        parts.append(text(cx, cy, title, anchor="middle",
                          extra=f' transform="rotate(-90 {cx} {cy:.1f})"'))
        return parts

    def frame(self):
        b = self.top + self.height
        return [f'<line x1="{self.left}" x2="{self.left + self.width}" y1="{b}" y2="{b}" '
                f'stroke="#555"/>',
                f'<line x1="{self.left}" x2="{self.left}" y1="{self.top}" y2="{b}" '
                f'stroke="#555"/>']

    def x_title(self, title):
        return text(self.left + self.width / 2, SVG_HEIGHT - 6, title, anchor="middle")


def legend(items, x, y):
    """items: (label, colour, kind) with kind 'box' or 'line'; laid out left to right."""
    parts = []
    for label, colour, kind in items:
        if kind == "line":
            parts.append(f'<line x1="{x}" x2="{x + 16}" y1="{y - 4}" y2="{y - 4}" '
                         f'stroke="{colour}" stroke-width="2.5"/>')
        else:
            parts.append(f'<rect x="{x}" y="{y - 10}" width="12" height="12" fill="{colour}"/>')
        parts.append(text(x + 20, y, label, size=11))
        x += 28 + 6.5 * len(label)
    return parts


def no_data(message):
    return [text(SVG_WIDTH / 2, SVG_HEIGHT / 2, message, size=14, anchor="middle",
                 colour="#999")]


def blues(t):
    """A light-to-dark blue for t in [0, 1], and the text colour readable on it."""
    low, high = (239, 243, 255), (8, 69, 148)
    rgb = [round(a + (b - a) * t) for a, b in zip(low, high)]
    return "#%02x%02x%02x" % tuple(rgb), ("#fff" if t > 0.55 else "#222")


def month_label(day):
    return day[:7]


# ---- the charts; each returns the SVG's inner elements ----------------------------------

def stage_area(data):
    rows = data["stage_counts_daily"] or []
    if not rows:
        return no_data("no stage history")
    days = sorted({r["day"] for r in rows})
    index = {d: i for i, d in enumerate(days)}
    stages = [s for s in STAGES if s in STAGE_COLOURS]
    counts = {s: [0] * len(days) for s in stages}
    for r in rows:
        if r["stage"] in counts:
            counts[r["stage"]][index[r["day"]]] = r["customers"]
    totals = [sum(counts[s][i] for s in stages) for i in range(len(days))]
    p = Plot(max(totals))
    span = max(len(days) - 1, 1)

    def x(i):
        return p.left + p.width * i / span

    parts = p.y_axis("customers")
    base = [0] * len(days)
    for s in stages:      # stacked from the bottom: new, active, at_risk, inactive, lapsed
        top = [b + c for b, c in zip(base, counts[s])]
        upper = [f"{x(i):.1f},{p.y(v):.1f}" for i, v in enumerate(top)]
        lower = [f"{x(i):.1f},{p.y(v):.1f}" for i, v in reversed(list(enumerate(base)))]
        parts.append(f'<polygon points="{" ".join(upper + lower)}" fill="{STAGE_COLOURS[s]}" '
                     f'stroke="none"><title>{esc(s)}</title></polygon>')
        base = top
    # a tick at each quarter's first day
    for d in days:
        if d[8:] == "01" and d[5:7] in ("01", "04", "07", "10"):
            xi = x(index[d])
            parts.append(f'<line x1="{xi:.1f}" x2="{xi:.1f}" y1="{p.top + p.height}" '
                         f'y2="{p.top + p.height + 5}" stroke="#555"/>')
            parts.append(text(xi, p.top + p.height + 18, month_label(d), size=10,
                              anchor="middle"))
    parts += p.frame()
    parts.append(p.x_title("day (end of day)"))
    parts += legend([(s, STAGE_COLOURS[s], "box") for s in stages], p.left, 18)
    return parts


def churn_bars(data):
    rows = data["churn_per_month"] or []
    if not rows:
        return no_data("no complete month yet")
    p = Plot(max(max(r["churned"], r["reactivated"]) for r in rows), right=52)
    rates = [float(r["churn_rate"]) * 100 if r["churn_rate"] is not None else None
             for r in rows]
    rate_ticks = nice_ticks(max([v for v in rates if v is not None] or [1]))
    rate_max = rate_ticks[-1]
    slot = p.width / len(rows)
    bar = slot * 0.36
    parts = p.y_axis("customers")
    line = []
    for i, r in enumerate(rows):
        x0 = p.left + slot * i + slot * 0.14
        for j, (key, colour) in enumerate((("churned", "#e15759"), ("reactivated", "#59a14f"))):
            y = p.y(r[key])
            parts.append(f'<rect x="{x0 + j * bar:.1f}" y="{y:.1f}" width="{bar:.1f}" '
                         f'height="{p.top + p.height - y:.1f}" fill="{colour}">'
                         f'<title>{esc(r["month"][:7])} {key}: {r[key]}</title></rect>')
        xc = p.left + slot * (i + 0.5)
        if rates[i] is not None:
            line.append(f"{xc:.1f},{p.y(rates[i], rate_max):.1f}")
        parts.append(text(xc + 3, p.top + p.height + 10, r["month"][:7], size=9, anchor="end",
                          extra=f' transform="rotate(-45 {xc + 3:.1f} '
                                f'{p.top + p.height + 10:.1f})"'))
    parts.append(f'<polyline points="{" ".join(line)}" fill="none" stroke="#4e79a7" '
                 f'stroke-width="2.5"/>')
    for pt in line:
        cx, cy = pt.split(",")
        parts.append(f'<circle cx="{cx}" cy="{cy}" r="3" fill="#4e79a7"/>')
    right = p.left + p.width
    for t in rate_ticks:      # the churn rate's own axis, on the right
        parts.append(text(right + 6, p.y(t, rate_max) + 4, f"{fmt(t)}%", size=10,
                          colour="#4e79a7"))
    cx, cy = SVG_WIDTH - 8, p.top + p.height / 2
    parts.append(text(cx, cy, "churn rate (% of the month's base)", anchor="middle",
                      colour="#4e79a7", extra=f' transform="rotate(-90 {cx} {cy:.1f})"'))
    parts += p.frame()
    parts.append(p.x_title("month"))
    parts += legend([("churned", "#e15759", "box"), ("reactivated", "#59a14f", "box"),
                     ("churn rate", "#4e79a7", "line")], p.left, 18)
    return parts


def matrix(cells, rows, cols, row_title, col_title, value_text, shade, left=110, top=40,
           bottom=50, cell_height=None):
    """A grid of cells: cells[(row, col)] -> value; shade(value) -> t in [0, 1]."""
    width = SVG_WIDTH - left - 16
    height = SVG_HEIGHT - top - bottom
    cw = width / len(cols)
    ch = min(height / len(rows), cell_height or height)
    parts = []
    for i, rlabel in enumerate(rows):
        y = top + i * ch
        parts.append(text(left - 8, y + ch / 2 + 4, rlabel, size=11, anchor="end"))
        for j, clabel in enumerate(cols):
            x = left + j * cw
            value = cells.get((rlabel, clabel))
            if value is None:
                parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{cw:.1f}" height="{ch:.1f}" '
                             f'fill="#fff" stroke="#ddd"/>')
                continue
            fill, ink = blues(shade(value))
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{cw:.1f}" height="{ch:.1f}" '
                         f'fill="{fill}" stroke="#fff"><title>{esc(rlabel)} / {esc(clabel)}: '
                         f'{esc(value_text(value))}</title></rect>')
            label = value_text(value)
            if 6.2 * len(label) < cw:
                parts.append(text(x + cw / 2, y + ch / 2 + 4, label, size=10, anchor="middle",
                                  colour=ink))
    grid_bottom = top + len(rows) * ch
    for j, clabel in enumerate(cols):
        parts.append(text(left + (j + 0.5) * cw, grid_bottom + 15, clabel, size=10,
                          anchor="middle"))
    parts.append(text(left + width / 2, grid_bottom + 34, col_title, anchor="middle"))
    parts.append(text(8, top - 10, row_title, size=11))
    return parts


def scale_legend(low, high, x, y, width=160):
    """A small colour ramp with its two ends, for the shaded matrices."""
    parts = []
    steps = 8
    for k in range(steps):
        fill, _ = blues(k / (steps - 1))
        parts.append(f'<rect x="{x + k * width / steps:.1f}" y="{y - 10}" '
                     f'width="{width / steps + 0.5:.1f}" height="10" fill="{fill}"/>')
    parts.append(text(x - 4, y, low, size=10, anchor="end"))
    parts.append(text(x + width + 4, y, high, size=10))
    return parts


def rfm_heatmap(data):
    rows = data["rfm_grid"] or []
    if not rows:
        return no_data("no RFM scores yet")
    cells = {(str(r["r"]), str(r["f"])): r["customers"] for r in rows}
    high = max(cells.values())
    parts = matrix(cells, [str(r) for r in range(5, 0, -1)], [str(f) for f in range(1, 6)],
                   "R (recency score, 5 = most recent)", "F (frequency score, 5 = most purchase days)",
                   lambda v: f"{v:,}", lambda v: v / high, left=50, top=44)
    parts += scale_legend("0", f"{high:,} customers", SVG_WIDTH - 260, 18)
    return parts


def cohort_triangle(data):
    rows = data["cohort_retention"] or []
    if not rows:
        return no_data("no complete month since tracking")
    sizes = {}
    cells = {}
    for r in rows:
        label = f'{r["cohort"][:7]} ({r["customers"]:,})'
        sizes[r["cohort"]] = label
        cells[(label, str(r["months_since"]))] = float(r["retention"])
    cohorts = [sizes[c] for c in sorted(sizes)]
    months = [str(m) for m in range(max(r["months_since"] for r in rows) + 1)]
    parts = matrix(cells, cohorts, months, "first-purchase month (customers)",
                   "months since the first purchase (end of month)",
                   lambda v: f"{100 * v:.0f}", lambda v: v, left=120, top=44, cell_height=60)
    parts += scale_legend("0%", "100% retained (not lapsed)", SVG_WIDTH - 330, 18, width=120)
    return parts


def flow_matrix(data):
    rows = data["stage_flow"] or []
    if not rows:
        return no_data("no customers on these days")
    cells = {(r["from"], r["to"]): r["customers"] for r in rows}
    high = max(cells.values())
    used_from = [s for s in STAGES if any(k[0] == s for k in cells)]
    used_to = [s for s in STAGES if any(k[1] == s for k in cells)]
    # a log shade: the customers who stay lapsed would otherwise wash out every move
    parts = matrix(cells, used_from, used_to, f'stage on {data["flow_from"]} (from)',
                   f'stage on {data["flow_to"]} (to)', lambda v: f"{v:,}",
                   lambda v: math.log1p(v) / math.log1p(high), left=80, top=44)
    parts += scale_legend("1", f"{high:,} customers (log scale)", SVG_WIDTH - 330, 18)
    return parts


def model_chart(data):
    rows = data["model_by_frequency"] or []
    if not rows:
        return no_data("no model comparison")
    series = (("bgnbd", "BG/NBD", "#4e79a7"), ("mbgnbd", "MBG/NBD", "#f28e2b"),
              ("pareto_nbd", "Pareto/NBD", "#e15759"))
    high = max(max(r["actual"], *(r[k] or 0 for k, _, _ in series)) for r in rows)
    p = Plot(high, bottom=62)
    slot = p.width / len(rows)
    parts = p.y_axis("mean purchase days in the holdout")
    for i, r in enumerate(rows):
        x0 = p.left + slot * (i + 0.2)
        y = p.y(r["actual"])
        parts.append(f'<rect x="{x0:.1f}" y="{y:.1f}" width="{slot * 0.6:.1f}" '
                     f'height="{p.top + p.height - y:.1f}" fill="#a0cbe8"><title>actual: '
                     f'{r["actual"]:.3f}</title></rect>')
        xc = p.left + slot * (i + 0.5)
        label = f'{r["frequency"]}+' if i == len(rows) - 1 and r["frequency"] >= 7 \
            else str(r["frequency"])
        parts.append(text(xc, p.top + p.height + 14, label, size=10, anchor="middle"))
        parts.append(text(xc, p.top + p.height + 27, f'n={r["customers"]:,}', size=9,
                          anchor="middle", colour="#777"))
    for key, _, colour in series:
        points = [(p.left + slot * (i + 0.5), p.y(r[key])) for i, r in enumerate(rows)
                  if r[key] is not None]
        parts.append(f'<polyline points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in points)}" '
                     f'fill="none" stroke="{colour}" stroke-width="2"/>')
        parts += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>'
                  for x, y in points]
    parts += p.frame()
    parts.append(p.x_title(f'repeat purchase days up to {data["calibration_end"]} (calibration)'))
    parts += legend([("actual", "#a0cbe8", "box")] + [(n, c, "line") for _, n, c in series],
                    p.left, 18)
    return parts


CHARTS = [
    ("stages", "Customers per stage, day by day",
     "lifecycle.stage_counts_daily: the stage of every customer at the end of each day, "
     "stacked.", stage_area),
    ("churn", "Monthly churn and reactivation",
     "lifecycle.churn_per_month: customers of the month's base who lapsed in it, lapsed or "
     "inactive customers who bought again, and churned / base.", churn_bars),
    ("rfm", "RFM: customers per recency and frequency score",
     "lifecycle.customer_stage: the R and F scores (1-5) of every customer on the engine's "
     "date.", rfm_heatmap),
    ("cohorts", "Cohort retention",
     "lifecycle.cohort_retention: % of each first-purchase month's customers in any stage "
     "but lapsed at the end of each month.", cohort_triangle),
    ("flow", "Flow between stages",
     "lifecycle.stage_flow: each customer's stage on one day against another (prospect: not "
     "a customer yet).", flow_matrix),
    ("model", "Predicted vs actual purchases in the holdout",
     "lifecycle.compare_models_by_frequency: the models fitted up to the calibration end; "
     "per repeat-purchase count, mean holdout purchase days.", model_chart),
]

CSS = f"""
body {{ margin: 0; background: #f4f5f7; font-family: {FONT}; color: #222; }}
.page {{ position: relative; width: {PAGE_WIDTH}px; height: {PAGE_HEIGHT}px; }}
header {{ position: absolute; left: {GAP}px; top: 0; width: {PAGE_WIDTH - 2 * GAP}px;
          height: {HEADER_HEIGHT}px; overflow: hidden; }}
header h1 {{ font-size: 24px; margin: 18px 0 6px; }}
header p {{ font-size: 13px; margin: 0; color: #555; line-height: 1.5; }}
section {{ position: absolute; width: {CARD_WIDTH}px; height: {CARD_HEIGHT}px;
           background: #fff; border: 1px solid #dde; border-radius: 6px;
           box-sizing: border-box; overflow: hidden; }}
section h2 {{ position: absolute; left: 14px; top: 10px; margin: 0; font-size: 16px;
              height: 22px; white-space: nowrap; }}
section p {{ position: absolute; left: 14px; top: 36px; width: {CARD_WIDTH - 28}px; margin: 0;
             font-size: 11.5px; height: 34px; overflow: hidden; color: #666; line-height: 1.4; }}
section svg {{ position: absolute; left: {SVG_LEFT}px; top: {SVG_TOP}px;
               font-family: {FONT}; }}
footer {{ position: absolute; left: {GAP}px; top: {PAGE_HEIGHT - 34}px; font-size: 11px;
          color: #777; }}
"""


def render(data):
    cards = []
    for n, (key, title, note, draw) in enumerate(CHARTS):
        left = GAP + (n % 2) * (CARD_WIDTH + GAP)
        top = HEADER_HEIGHT + (n // 2) * (CARD_HEIGHT + GAP)
        box = f"{left + SVG_LEFT} {top + SVG_TOP} {SVG_WIDTH} {SVG_HEIGHT}"
        body = "\n".join(draw(data))
        cards.append(
            f'<section id="{key}" style="left:{left}px;top:{top}px">\n'
            f'<h2>{esc(title)}</h2>\n<p>{esc(note)}</p>\n'
            f'<svg id="chart-{key}" data-box="{box}" width="{SVG_WIDTH}" height="{SVG_HEIGHT}" '
            f'viewBox="0 0 {SVG_WIDTH} {SVG_HEIGHT}" role="img" aria-label="{esc(title)}">\n'
            f'{body}\n</svg>\n</section>')
    customers = data.get("customers") or 0
    purchase_days = data.get("purchase_days") or 0
    summary = (f'Source <b>{esc(data["source"])}</b>: {customers:,} customers, '
               f'{purchase_days:,} purchase days; tracked from {esc(data["tracked_on"])}, '
               f'engine date {esc(data["engine_date"])}. Stage flow from '
               f'{esc(data["flow_from"])} to {esc(data["flow_to"])}; models calibrated to '
               f'{esc(data["calibration_end"])}, holdout to {esc(data["holdout_end"])} (weeks).')
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>lifecycle report: {esc(data["source"])}</title>
<style>{CSS}</style>
</head>
<body>
<div class="page">
<header>
<h1>Customer lifecycle report: {esc(data["source"])}</h1>
<p>{summary}</p>
</header>
{chr(10).join(cards)}
<footer>Written by lifecycle's scripts/report.sql and scripts/report_html.py from
the extension's views; one file, no script, nothing fetched.</footer>
</div>
</body>
</html>
"""


if __name__ == "__main__":
    raw = sys.stdin.read().strip()
    document = json.loads(raw) if raw else None
    if document is None:
        sys.exit("report_html.py: no data (is the source tracked?)")
    sys.stdout.write(render(document))
