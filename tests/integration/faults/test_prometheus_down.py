"""Prometheus goes down in the middle of a canary analysis: the measurements it cannot take are
errors, never passes; past the metric's errorLimit the analysis fails and the canary is rolled
back. The canary is never promoted."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from modelops.k8s.resources import MODEL_DEPLOYMENT
from tests.integration.faults.conftest import Chaos
from tests.integration.rollout.conftest import NS, wait_status
from tests.support.rollout_checks import assert_rolled_back_without_promotion


class FakePrometheus:
    """Answers every instant query with both tracks' request counts: 200 answers, no errors."""

    def __init__(self) -> None:
        self.queries: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.queries.append(self.path)
                result = [
                    {"metric": {"track": track, "code": "200"}, "value": [0, "120"]} for track in ("canary", "stable")
                ]
                body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        self.up = True

    def down(self) -> None:
        """Gone: connections refused from now on."""
        if self.up:
            self._server.shutdown()
            self._server.server_close()
            self.up = False


@pytest.fixture
def prometheus() -> Iterator[FakePrometheus]:
    p = FakePrometheus()
    yield p
    p.down()


def test_prometheus_down_during_analysis_never_promotes(chaos: Chaos, prometheus: FakePrometheus):
    name = "promdown"
    errors = {"name": "errors", "kind": "errorRate", "max": 0.05, "interval": "1s", "count": 6, "errorLimit": 1,
              "minSamples": 10}  # fmt: skip
    steps = [{"setWeight": 25}, {"analysis": {"metrics": [errors]}}]
    rec = chaos.start_rollout(name, steps=steps)
    chaos.api.patch(MODEL_DEPLOYMENT, NS, name, {"spec": {"prometheus": {"address": prometheus.url}}})

    def measured_once(s: dict) -> bool:
        runs = s.get("analysisRuns") or []
        return bool(runs) and any(m.get("phase") == "Successful" for m in runs[-1].get("measurements") or [])

    chaos.to_v2(name)
    wait_status(chaos.api, measured_once, "a first successful measurement", name, timeout=60)
    prometheus.down()
    st = wait_status(chaos.api, lambda s: s.get("phase") in ("RolledBack", "Healthy"), "the analysis ends", name, 60)
    assert_rolled_back_without_promotion(rec.stop(), st, f"{name}-v1", f"{name}-v2")
    phases = [m["phase"] for m in st["analysisRuns"][-1]["measurements"]]
    assert phases[0] == "Successful"
    assert phases.count("Error") == 2  # errorLimit 1: the second error fails the metric
    assert set(phases) == {"Successful", "Error"}
    assert prometheus.url in st["analysisRuns"][-1]["measurements"][-1]["message"]
