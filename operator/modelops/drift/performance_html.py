"""The performance section of the HTML report: verdict, metrics against thresholds, metrics over time.

Self-contained like the drift report (inline CSS and SVG, no scripts). :func:`performance_section`
is the section alone (``modelops.drift.html.render_html`` accepts it as an extra section);
:func:`render_performance_html` a whole page. No scipy here: the report is cheap to render.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

from modelops.api.performance import PerformanceMetricResult, PerformanceResult, PerformanceWindow

OK = "#2e7d32"
BAD = "#c62828"
UNSURE = "#8d6e00"
LINE = "#2f6fde"
REGISTERED = "#6b7280"
VERDICT_COLOUR = {"Healthy": OK, "Degraded": BAD, "Inconclusive": UNSURE}

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1d2330;background:#f6f7f9}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:22px 0 6px} .sub{color:#5b6475;margin-bottom:8px}
.verdict{display:inline-block;padding:6px 12px;border-radius:6px;color:#fff;font-weight:600}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(440px,1fr));gap:14px;margin-top:10px}
.card{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:12px 14px}
.meta{color:#5b6475;font-size:12px}
table{border-collapse:collapse;margin-top:8px;background:#fff} td,th{padding:3px 10px;border-bottom:1px solid #eceef2;text-align:left;font-size:13px}
"""


def _fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
        return f"{value:.3g}"
    return f"{value:.4f}"


def _status(m: PerformanceMetricResult) -> tuple[str, str]:
    if m.passed is True:
        return "ok", OK
    if m.passed is False:
        return "degraded", BAD
    if m.value is None:
        return f"undefined: {m.note or 'n/a'}", UNSURE
    return "reported", REGISTERED


def _chart(name: str, windows: Sequence[PerformanceWindow], m: PerformanceMetricResult, width: int = 420) -> str:
    """The metric per window (points joined by a line), its bounds (red) and the registered value (grey)."""
    points = [(i, next((x.value for x in w.metrics if x.name == name), None)) for i, w in enumerate(windows)]
    values = [v for _, v in points if v is not None]
    refs = [v for v in (m.min, m.max, m.registered) if v is not None]
    if not values:
        return "<div class='meta'>no labelled predictions in any window</div>"
    lo, hi = min(values + refs), max(values + refs)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    pad = (hi - lo) * 0.08
    lo, hi = lo - pad, hi + pad
    height, left, bottom = 150, 44, 22
    plot_w, plot_h = width - left - 8, height - bottom - 8

    def x(i: int) -> float:
        return left + (plot_w * (i + 0.5) / len(windows))

    def y(v: float) -> float:
        return 8 + plot_h * (1 - (v - lo) / (hi - lo))

    parts = [f'<svg width="{width}" height="{height}" role="img" aria-label="{html.escape(name)} per window">']
    parts.append(f'<rect x="{left}" y="8" width="{plot_w}" height="{plot_h}" fill="#fafbfc" stroke="#eceef2"/>')
    for v, colour, label in ((m.min, BAD, "min"), (m.max, BAD, "max"), (m.registered, REGISTERED, "registered")):
        if v is None:
            continue
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="{colour}" '
            f'stroke-dasharray="5,3" stroke-width="1.5"><title>{label} {_fmt(v)}</title></line>'
            f'<text x="{left + plot_w - 2}" y="{y(v) - 3:.1f}" font-size="9" text-anchor="end" fill="{colour}">'
            f"{label} {html.escape(_fmt(v))}</text>"
        )
    path: list[str] = []
    for i, v in points:
        if v is None:
            continue
        path.append(f"{'M' if not path else 'L'}{x(i):.1f},{y(v):.1f}")
    parts.append(f'<path d="{" ".join(path)}" fill="none" stroke="{LINE}" stroke-width="2"/>')
    for (i, v), w in zip(points, windows, strict=True):
        if v is None:
            continue
        bad = (m.min is not None and v < m.min) or (m.max is not None and v > m.max)
        parts.append(
            f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3.5" fill="{BAD if bad else LINE}">'
            f"<title>{html.escape(w.start.isoformat())}: {_fmt(v)} ({w.labelled:,}/{w.predictions:,} labelled)"
            "</title></circle>"
        )
    for v in (lo + pad, hi - pad):
        parts.append(
            f'<text x="{left - 4}" y="{y(v) + 3:.1f}" font-size="9" text-anchor="end" fill="#5b6475">{_fmt(v)}</text>'
        )
    first, last = windows[0].start, windows[-1].end
    parts.append(
        f'<text x="{left}" y="{height - 6}" font-size="9" fill="#5b6475">{html.escape(first.strftime("%Y-%m-%d %H:%M"))}</text>'
        f'<text x="{left + plot_w}" y="{height - 6}" font-size="9" text-anchor="end" fill="#5b6475">'
        f"{html.escape(last.strftime('%Y-%m-%d %H:%M'))}</text></svg>"
    )
    return "".join(parts)


def performance_section(result: PerformanceResult) -> str:
    """The performance part of a report, as an HTML fragment."""
    colour = VERDICT_COLOUR.get(result.verdict, UNSURE)
    window = ""
    if result.window_start is not None or result.window_end is not None:
        start = result.window_start.isoformat() if result.window_start else "start"
        end = result.window_end.isoformat() if result.window_end else "end"
        window = f" · window {html.escape(start)} → {html.escape(end)}"
    rows = []
    for m in result.metrics:
        status, scolour = _status(m)
        rows.append(
            f"<tr><td>{html.escape(m.name)}</td><td>{_fmt(m.value)}</td><td>{_fmt(m.min)}</td><td>{_fmt(m.max)}</td>"
            f"<td>{_fmt(m.registered)}</td><td style='color:{scolour}'>{html.escape(status)}</td></tr>"
        )
    parts = [
        "<section class='performance'><h2>Model performance</h2>",
        f"<div class='sub'>{html.escape(result.task)} · {result.predictions:,} predictions, {result.labelled:,} "
        f"labelled (coverage {result.coverage:.1%}, minimum {result.min_coverage:.0%}){window}</div>",
        f"<span class='verdict' style='background:{colour}'>{html.escape(result.verdict)}: "
        f"{html.escape(result.reason)}</span><div class='sub' style='margin-top:6px'>{html.escape(result.message)}</div>",
        "<table><tr><th>metric</th><th>value</th><th>min</th><th>max</th><th>registered</th><th>status</th></tr>",
        "".join(rows),
        "</table>",
    ]
    if result.windows:
        parts.append("<h2>Metrics over time</h2><div class='grid'>")
        for m in result.metrics:
            parts.append(
                f"<div class='card'><div><b>{html.escape(m.name)}</b> <span class='meta'>per window "
                f"({len(result.windows)}), bounds in red, registered value in grey</span></div>"
                f"{_chart(m.name, result.windows, m)}</div>"
            )
        parts.append("</div>")
    quality = {k: v for k, v in result.quality.to_wire().items() if v not in (0, None, [])}
    if quality:
        parts.append("<h2>Label and prediction quality</h2><table>")
        for key, value in quality.items():
            shown = ", ".join(value) if isinstance(value, list) else f"{value:,}"
            parts.append(f"<tr><td>{html.escape(key)}</td><td>{html.escape(shown)}</td></tr>")
        parts.append("</table>")
    if result.median_label_delay_seconds is not None:
        hours = result.median_label_delay_seconds / 3600
        parts.append(f"<div class='meta' style='margin-top:6px'>median label delay: {hours:.1f} h</div>")
    est = result.estimate
    if est is not None:
        parts.append(
            "<h2>Estimated performance (no labels needed)</h2><table>"
            "<tr><th></th><th>estimate</th><th>realised (labelled rows)</th></tr>"
            f"<tr><td>accuracy</td><td>{_fmt(est.accuracy)}</td><td>{_fmt(est.realised_accuracy)}</td></tr>"
            f"<tr><td>auc</td><td>{_fmt(est.auc)}</td><td>{_fmt(est.realised_auc)}</td></tr></table>"
            f"<div class='meta'>estimated over {est.rows:,} predictions. {html.escape(est.assumptions)}</div>"
        )
    parts.append("</section>")
    return "".join(parts)


def render_performance_html(
    result: PerformanceResult, title: str = "Model performance report", sources: Sequence[str] = ()
) -> str:
    src = "".join(f"<div class='sub'>{html.escape(s)}</div>" for s in sources)
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{src}{performance_section(result)}</body></html>"
    )
