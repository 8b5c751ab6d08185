"""Where analysis reads from: the servers' `deployment` label, the operator's default Prometheus."""

from __future__ import annotations

import argparse
from typing import Any

import helm_python as helm
import pytest
import yaml

from modelops.cli import build_parser, main
from modelops.server.app import ServerState
from modelops.server.metrics import render
from tests.support.render_chart import render_documents


def exposition(state: ServerState) -> str:
    return render(state.registry).decode()


def test_serve_deployment_labels_every_metric() -> None:
    text = exposition(ServerState(name="churn", version="2", track="canary", deployment="churn-prod"))
    samples = [line for line in text.splitlines() if line.startswith("modelops_")]
    assert samples
    assert all('deployment="churn-prod"' in line for line in samples)
    requests = [line for line in samples if line.startswith("modelops_inference_requests_total{")]
    assert len(requests) == 6  # one per status code
    assert all('track="canary"' in line and 'version="2"' in line for line in requests)


def test_serve_without_deployment_exports_no_such_label() -> None:
    text = exposition(ServerState(name="churn", version="2", track="stable"))
    assert "deployment=" not in text


def serve_args(*extra: str) -> argparse.Namespace:
    argv = ["serve", "--model-uri", "m.joblib", "--digest", "sha256:" + "a" * 64, "--name", "m", "--version", "1"]
    return build_parser([*argv, *extra]).parse_args([*argv, *extra])


def test_serve_flag_reaches_the_server_config() -> None:
    assert serve_args("--deployment", "churn-prod").deployment == "churn-prod"
    assert serve_args().deployment is None


def test_serve_rejects_an_empty_deployment(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["serve", "--model-uri", "m.joblib", "--digest", "sha256:" + "a" * 64, "--name", "m", "--version", "1"]
    assert main([*argv, "--deployment", " "]) == 2  # a bad argument
    assert "--deployment must not be empty" in capsys.readouterr().err


def run_args(monkeypatch: pytest.MonkeyPatch, env: str | None, *extra: str) -> Any:
    if env is None:
        monkeypatch.delenv("MODELOPS_PROMETHEUS_URL", raising=False)
    else:
        monkeypatch.setenv("MODELOPS_PROMETHEUS_URL", env)
    argv = ["run", "--all-namespaces", *extra]
    return build_parser(argv).parse_args(argv)


def test_run_prometheus_url_flag_then_env(monkeypatch: pytest.MonkeyPatch) -> None:
    assert run_args(monkeypatch, None).prometheus_url is None
    assert run_args(monkeypatch, "http://env:9090").prometheus_url == "http://env:9090"
    assert run_args(monkeypatch, "http://env:9090", "--prometheus-url", "http://flag:9090").prometheus_url == (
        "http://flag:9090"
    )


def test_run_rejects_a_prometheus_url_that_is_not_http(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("MODELOPS_PROMETHEUS_URL", raising=False)
    assert main(["run", "--all-namespaces", "--prometheus-url", "prometheus:9090"]) == 1
    assert "--prometheus-url must be an http(s) URL, got 'prometheus:9090'" in capsys.readouterr().err


def operator_env(values: dict[str, Any]) -> dict[str, Any]:
    docs = [yaml.safe_load(d) for d in render_documents(values)]
    deployment = next(d for d in docs if d and d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value") for e in container["env"]}


def test_chart_prometheus_address_becomes_the_operator_default() -> None:
    assert "MODELOPS_PROMETHEUS_URL" not in operator_env({})
    env = operator_env({"prometheus": {"address": "http://prometheus-operated.monitoring:9090"}})
    assert env["MODELOPS_PROMETHEUS_URL"] == "http://prometheus-operated.monitoring:9090"


def test_chart_rejects_a_prometheus_address_that_is_not_http() -> None:
    with pytest.raises(helm.HelmError):
        render_documents({"prometheus": {"address": "prometheus:9090"}})
