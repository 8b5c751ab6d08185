"""A self-contained HTML drift report: one file, inline CSS and SVG, no scripts, no network.

Read at a glance: the verdict on top, then one card per feature, drifted features first, each
with its score against the threshold and reference vs current distributions (histograms on
shared bins for numbers, bars for categories).
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

from modelops.api.performance import PerformanceResult
from modelops.drift.engine import DriftReport, FeatureDrift, Histogram
from modelops.drift.performance_html import performance_section
from modelops.drift.stattests import get_test

REF_COLOUR = "#8c96a5"
CUR_COLOUR = "#2f6fde"
DRIFT_COLOUR = "#c62828"
OK_COLOUR = "#2e7d32"
MAX_BARS = 25

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1d2330;background:#f6f7f9}
h1{font-size:20px;margin:0 0 4px} .sub{color:#5b6475;margin-bottom:16px}
.verdict{display:inline-block;padding:6px 12px;border-radius:6px;color:#fff;font-weight:600}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:14px;margin-top:16px}
.card{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:12px 14px}
.card.drift{border-left:5px solid DRIFT_COLOUR} .card.ok{border-left:5px solid OK_COLOUR}
.name{font-weight:600;font-size:15px} .meta{color:#5b6475;font-size:12px}
.tag{font-size:11px;padding:1px 6px;border-radius:4px;color:#fff;margin-left:6px}
table{border-collapse:collapse;margin-top:12px;background:#fff} td,th{padding:3px 10px;border-bottom:1px solid #eceef2;text-align:left;font-size:13px}
.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 10px;vertical-align:middle}
""".replace("DRIFT_COLOUR", DRIFT_COLOUR).replace("OK_COLOUR", OK_COLOUR)


def _fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
        return f"{value:.3g}"
    return f"{value:.4f}"


def _gauge(feature: FeatureDrift, width: int = 360) -> str:
    """Score and threshold on one axis (log scale for p-values), red when past the threshold."""
    test = get_test(feature.test)
    score = feature.score
    colour = DRIFT_COLOUR if feature.drifted else OK_COLOUR
    if score is None or math.isnan(score):
        return ""
    if test.score == "p_value":

        def pos(v: float) -> float:
            return min(max(-math.log10(max(v, 1e-12)) / 12.0, 0.0), 1.0)

        label = f"p = {_fmt(score)}  (drift below {_fmt(feature.threshold)})"
    else:
        top = max(feature.threshold * 3, score * 1.1, 1e-9)

        def pos(v: float) -> float:
            return min(max(v / top, 0.0), 1.0)

        label = f"{feature.test} = {_fmt(score)}  (drift at or above {_fmt(feature.threshold)})"
    x = pos(score) * width
    t = pos(feature.threshold) * width
    return (
        f'<svg width="{width}" height="30" role="img" aria-label="{html.escape(label)}">'
        f'<rect x="0" y="8" width="{width}" height="8" fill="#eceef2" rx="4"/>'
        f'<rect x="0" y="8" width="{x:.1f}" height="8" fill="{colour}" rx="4"/>'
        f'<line x1="{t:.1f}" x2="{t:.1f}" y1="3" y2="21" stroke="#1d2330" stroke-width="2"/>'
        f'<text x="0" y="29" font-size="10" fill="#5b6475">{html.escape(label)}</text></svg>'
    )


def _bars_svg(hist: Histogram, width: int = 400, height: int = 140) -> str:
    ref, cur = list(hist.reference), list(hist.current)
    labels = list(hist.labels or [])
    if hist.labels is not None and len(ref) > MAX_BARS:
        order = sorted(range(len(ref)), key=lambda i: -(ref[i] + cur[i]))
        keep, rest = order[: MAX_BARS - 1], order[MAX_BARS - 1 :]
        labels = [labels[i] for i in keep] + [f"other ({len(rest)})"]
        ref = [ref[i] for i in keep] + [sum(ref[i] for i in rest)]
        cur = [cur[i] for i in keep] + [sum(cur[i] for i in rest)]
    n = len(ref)
    if n == 0:
        return ""
    top = max(max(ref), max(cur), 1e-12)
    plot_h = height - 28
    slot = width / n
    parts = [f'<svg width="{width}" height="{height}" role="img" aria-label="distribution">']
    for i in range(n):
        x0 = i * slot
        if hist.labels is not None:
            bw = slot * 0.4
            for j, (v, colour) in enumerate(((ref[i], REF_COLOUR), (cur[i], CUR_COLOUR))):
                h = v / top * plot_h
                parts.append(
                    f'<rect x="{x0 + slot * 0.1 + j * bw:.1f}" y="{plot_h - h:.1f}" width="{bw:.1f}" '
                    f'height="{h:.1f}" fill="{colour}"><title>{html.escape(labels[i])}: '
                    f"{'reference' if j == 0 else 'current'} {v:.1%}</title></rect>"
                )
            if n <= 12:
                parts.append(
                    f'<text x="{x0 + slot / 2:.1f}" y="{plot_h + 12}" font-size="9" text-anchor="middle" '
                    f'fill="#5b6475">{html.escape(labels[i][:10])}</text>'
                )
        else:
            for v, colour, opacity in ((ref[i], REF_COLOUR, 0.75), (cur[i], CUR_COLOUR, 0.55)):
                h = v / top * plot_h
                parts.append(
                    f'<rect x="{x0:.1f}" y="{plot_h - h:.1f}" width="{max(slot - 1, 1):.1f}" height="{h:.1f}" '
                    f'fill="{colour}" fill-opacity="{opacity}"/>'
                )
    if hist.edges is not None:
        lo, hi = hist.edges[0], hist.edges[-1]
        parts.append(f'<text x="0" y="{height - 4}" font-size="10" fill="#5b6475">{html.escape(_fmt(lo))}</text>')
        parts.append(
            f'<text x="{width}" y="{height - 4}" font-size="10" text-anchor="end" fill="#5b6475">'
            f"{html.escape(_fmt(hi))}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _card(feature: FeatureDrift) -> str:
    colour = DRIFT_COLOUR if feature.drifted else OK_COLOUR
    verdict = "drift" if feature.drifted else "ok"
    test = get_test(feature.test)
    notes: list[str] = []
    if feature.nan_current or feature.nan_reference:
        notes.append(f"missing: {feature.nan_reference} reference, {feature.nan_current} current")
    if feature.unseen_categories:
        notes.append("unseen in reference: " + ", ".join(feature.unseen_categories))
    if feature.p_value_raw is not None and feature.p_value is not None and feature.p_value_raw != feature.p_value:
        notes.append(f"uncorrected p = {_fmt(feature.p_value_raw)}")
    stat = f"statistic {_fmt(feature.statistic)}" if test.score == "p_value" else ""
    body = [
        f'<div class="card {verdict}"><div><span class="name">{html.escape(feature.name)}</span>',
        f'<span class="tag" style="background:{colour}">{verdict}</span></div>',
        f'<div class="meta">{feature.kind} · {html.escape(test.display_name)} {stat} · '
        f"n = {feature.n_reference:,} reference / {feature.n_current:,} current</div>",
        _gauge(feature),
    ]
    if feature.histogram is not None:
        body.append(_bars_svg(feature.histogram))
    for note in notes:
        body.append(f'<div class="meta">{html.escape(note)}</div>')
    body.append("</div>")
    return "".join(body)


def render_html(
    report: DriftReport,
    title: str = "Drift report",
    sources: Sequence[str] = (),
    performance: PerformanceResult | None = None,
) -> str:
    """The whole report as one HTML document; with ``performance``, its section follows the features
    (metrics against thresholds and the registered values, and over time per window)."""
    features = report.sorted_features()
    colour = DRIFT_COLOUR if report.dataset_drift else OK_COLOUR
    verdict = "Dataset drift" if report.dataset_drift else "No dataset drift"
    rows = "".join(
        f"<tr><td>{html.escape(f.name)}</td><td>{f.test}</td><td>{_fmt(f.score)}</td><td>{_fmt(f.threshold)}</td>"
        f'<td style="color:{DRIFT_COLOUR if f.drifted else OK_COLOUR}">{"drift" if f.drifted else "ok"}</td></tr>'
        for f in features
    )
    src = "".join(f"<div class='sub'>{html.escape(s)}</div>" for s in sources)
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{src}"
        f"<div class='sub'>checked {html.escape(report.time.isoformat())} · {report.rows_reference:,} reference rows, "
        f"{report.rows_current:,} current rows · correction: {html.escape(report.correction)}</div>"
        f"<span class='verdict' style='background:{colour}'>{verdict}: {report.drifted_features} of "
        f"{len(report.features)} features drifted ({report.drift_share:.0%}; threshold "
        f"{report.drift_share_threshold:.0%})</span>"
        f"<div class='legend meta' style='margin-top:10px'><span style='background:{REF_COLOUR}'></span>reference"
        f"<span style='background:{CUR_COLOUR}'></span>current</div>"
        f"<div class='grid'>{''.join(_card(f) for f in features)}</div>"
        f"<table><tr><th>feature</th><th>test</th><th>score</th><th>threshold</th><th>verdict</th></tr>{rows}</table>"
        f"{performance_section(performance) if performance is not None else ''}"
        "</body></html>"
    )
