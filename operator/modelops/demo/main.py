"""Run the demo end to end on the sandbox cluster; returns a process exit code."""

from __future__ import annotations

import logging
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from kubernetes import client

from modelops.demo import drift_act, registry_act, rollout_act
from modelops.demo.stage import DemoFailure, Stage
from modelops.k8s.client import load_api_client
from modelops.k8s.resources import CustomObjects


def find_examples() -> Path:
    for base in (Path.cwd(), *Path(__file__).resolve().parents):
        if (base / "examples" / "registry").is_dir():
            return (base / "examples").resolve()
    raise DemoFailure("examples/ not found: run the demo from the repository checkout")


def _metric_lines(url: str, prefixes: tuple[str, ...]) -> list[str]:
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    return [line for line in text.splitlines() if line.startswith(prefixes)]


def run_demo() -> int:
    from modelops.sandbox.cluster.supervisor import Layout, SandboxError, start, stop

    started = time.monotonic()
    for noisy in ("modelops", "aiohttp", "kubernetes"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    examples = find_examples()
    with tempfile.TemporaryDirectory(prefix="modelops-demo-") as tmp:
        layout = Layout(Path(tmp) / "sandbox")
        try:
            state: dict[str, Any] = start(layout, scrape_interval=1.0, restart_backoff=1.0)
        except SandboxError as exc:
            print(f"DEMO FAILED: cannot start the sandbox cluster: {exc}")
            return 1
        try:
            return _acts(state, examples, started)
        finally:
            stop(layout)


def _acts(state: dict[str, Any], examples: Path, started: float) -> int:
    kubeconfig = state["kubeconfig"]
    components = state["components"]
    api_client = load_api_client(kubeconfig)
    stage = Stage(CustomObjects(api_client), client.CoreV1Api(api_client), examples, started=started)
    stage.heading("Setup: the sandbox cluster (`modelops sandbox up`)")
    stage.say(f"API server {components['apiserver']['url']}, kubeconfig {kubeconfig}, CRDs installed")
    stage.say(f"operator: `modelops run -A` (pid {components['operator']['pid']}), workload runner, service proxy")
    prometheus = components.get("prometheus") or {}
    if prometheus.get("url"):
        stage.say(f"Prometheus {prometheus['url']} scraping the operator and every model-server pod")
    else:
        print(f"\nDEMO FAILED: {prometheus.get('missing', 'Prometheus did not start')}")
        return 1
    try:
        registry_act.run(stage)
        drift_act.run(stage)
        rollout_act.run(stage)
    except DemoFailure as exc:
        print(f"\nDEMO FAILED: {exc}")
        return 1
    stage.heading("Operator metrics (excerpt, from its /metrics)")
    prefixes = (
        "modelops_model_version_info",
        "modelops_reconcile_total",
        "modelops_drift_detected",
        "modelops_rollout_phase",
        "modelops_rollout_canary_weight",
    )
    for line in _metric_lines(components["operator"]["metrics"], prefixes):
        if not line.endswith(" 0.0") or "rollout_phase" not in line:
            print("  " + line)
    print(f"\nDemo finished in {time.monotonic() - started:.1f}s: all steps behaved as shown.")
    return 0
