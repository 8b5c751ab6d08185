"""The PromQL of the canary checks: exact text, safe templating, valid for Prometheus's own parser."""

from __future__ import annotations

import math
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from modelops.core.analysis_queries import (
    TrackRequests,
    escape_label_value,
    histogram_count,
    histograms,
    latency_query,
    per_track,
    prediction_query,
    prom_duration,
    render_promql,
    request_counts,
    requests_query,
)

SEL = '{namespace="shop",deployment="churn",track=~"stable|canary"}'


def test_requests_query() -> None:
    assert requests_query("shop", "churn", "30s") == (
        f"sum by (track, code) (increase(modelops_inference_requests_total{SEL}[30s]))"
    )


def test_latency_query() -> None:
    assert latency_query("shop", "churn", "1m") == (
        f"histogram_quantile(0.99, sum by (track, le) (rate(modelops_inference_request_duration_seconds_bucket{SEL}[1m])))"
    )


def test_prediction_query_all_outputs_or_one() -> None:
    assert prediction_query("shop", "churn", "30s") == (
        f"sum by (track, output, le) (increase(modelops_prediction_value_bucket{SEL}[30s]))"
    )
    one = '{namespace="shop",deployment="churn",track=~"stable|canary",output="predict_proba"}'
    assert prediction_query("shop", "churn", "30s", "predict_proba") == (
        f"sum by (track, output, le) (increase(modelops_prediction_value_bucket{one}[30s]))"
    )


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("plain", "plain"),
        ('a"b', 'a\\"b'),
        ("back\\slash", "back\\\\slash"),
        ("new\nline", "new\\nline"),
        ('"}) or vector(1) #', '\\"}) or vector(1) #'),
    ],
)
def test_label_values_are_escaped(raw: str, escaped: str) -> None:
    assert escape_label_value(raw) == escaped
    assert requests_query(raw, "d", "30s").count(f'namespace="{escaped}"') == 1


@pytest.mark.parametrize(
    ("interval", "duration"),
    [("30s", "30s"), ("1m", "60s"), ("1m30s", "90s"), ("1.5s", "1500ms"), ("250ms", "250ms"), ("2h", "7200s")],
)
def test_prom_duration_uses_integer_units(interval: str, duration: str) -> None:
    assert prom_duration(interval) == duration


def test_render_promql_fills_every_placeholder() -> None:
    template = (
        'sum(rate(http_requests_total{namespace="{{namespace}}",app="{{ deployment }}",'
        'track="{{track}}",version="{{version}}",code=~"5.."}[{{interval}}]))'
    )
    rendered = render_promql(
        template, namespace="shop", deployment="churn", track="canary", version="v2", interval="1m"
    )
    assert rendered == (
        'sum(rate(http_requests_total{namespace="shop",app="churn",track="canary",version="v2",code=~"5.."}[60s]))'
    )


def test_render_promql_escapes_values_so_they_cannot_end_the_string() -> None:
    rendered = render_promql(
        'up{namespace="{{namespace}}"}',
        namespace='x"} or vector(1) or up{a="',
        deployment="d",
        track="canary",
        version="v",
        interval="30s",
    )
    assert rendered == 'up{namespace="x\\"} or vector(1) or up{a=\\""}'


def test_render_promql_names_an_unknown_placeholder() -> None:
    with pytest.raises(
        ValueError, match=r"unknown placeholder \{\{stable_version\}\} in the query; known: \{\{namespace\}\}"
    ):
        render_promql(
            "up{v='{{stable_version}}'}", namespace="n", deployment="d", track="canary", version="v", interval="30s"
        )


def test_request_counts_split_by_track_and_code() -> None:
    answer = [
        ({"track": "canary", "code": "200"}, 300.0),
        ({"track": "canary", "code": "400"}, 80.0),
        ({"track": "canary", "code": "500"}, 20.0),
        ({"track": "stable", "code": "200"}, 600.0),
        ({"track": "stable", "code": "503"}, math.nan),
    ]
    counts = request_counts(answer)
    assert counts == {"canary": TrackRequests(400.0, 100.0), "stable": TrackRequests(600.0, 0.0)}
    assert counts["canary"].error_rate == 0.25
    assert math.isnan(TrackRequests().error_rate)


def test_histograms_group_by_output_and_track_in_bound_order() -> None:
    answer = [
        ({"track": "canary", "output": "predict", "le": "+Inf"}, 10.0),
        ({"track": "canary", "output": "predict", "le": "0.0"}, 4.0),
        ({"track": "stable", "output": "predict", "le": "1.0"}, 7.0),
        ({"track": "stable", "output": "predict", "le": "+Inf"}, 7.0),
        ({"track": "canary", "output": "proba", "le": "+Inf"}, 0.0),
        ({"track": "canary", "output": "predict"}, 1.0),  # no le: not a bucket
    ]
    h = histograms(answer)
    assert h["predict"]["canary"] == [(0.0, 4.0), (math.inf, 10.0)]
    assert h["predict"]["stable"] == [(1.0, 7.0), (math.inf, 7.0)]
    assert histogram_count(h["predict"]["canary"]) == 10.0
    assert histogram_count([(1.0, 3.0)]) == 0.0
    assert per_track([({"track": "canary"}, 0.2), ({"track": "stable"}, 0.1)]) == {"canary": 0.2, "stable": 0.1}


@pytest.mark.skipif(shutil.which("promtool") is None, reason="needs promtool (Debian package prometheus)")
def test_every_query_parses_with_promtool(tmp_path: Path) -> None:
    queries = {
        "requests": requests_query('we"ird', "a\\b", prom_duration("1.5s")),
        "latency": latency_query("shop", "churn", "30s"),
        "predictions": prediction_query("shop", "churn", "30s", "predict"),
        "template": render_promql(
            'sum(rate(modelops_inference_requests_total{namespace="{{namespace}}",deployment="{{deployment}}",'
            'track="{{track}}",version="{{version}}"}[{{interval}}]))',
            namespace='n"s',
            deployment="d\n",
            track="canary",
            version="v\\2",
            interval="1m30s",
        ),
    }
    rules = {"groups": [{"name": "q", "rules": [{"record": f"check:{k}", "expr": v} for k, v in queries.items()]}]}
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(rules))
    done = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 4 rules found" in done.stdout
    # And promtool does reject broken PromQL, so the check above means something.
    path.write_text(yaml.safe_dump({"groups": [{"name": "q", "rules": [{"record": "x", "expr": 'up{a="b}'}]}]}))
    assert subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, timeout=30).returncode != 0
