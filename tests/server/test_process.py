"""Real `modelops serve` processes: digest first, graceful SIGTERM, prediction log on disk, workers."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from modelops.sandbox.cluster.processes import alive  # a zombie counts as gone

from .conftest import ArtifactFile, ServeProcess, free_port

pytestmark = pytest.mark.slow
Start = Callable[..., ServeProcess]


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def infer(url: str, body: dict[str, Any]) -> dict[str, Any]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        result: dict[str, Any] = json.loads(resp.read())
        return result


def body(request_id: str, batch: int) -> dict[str, Any]:
    rows = [[0.01 * (i + j) for j in range(20)] for i in range(batch)]
    return {"id": request_id, "inputs": [{"name": "input-0", "shape": [batch, 20], "datatype": "FP64", "data": rows}]}


def test_digest_mismatch_never_ready_and_exits_non_zero(serve_process: Start, lr_artifact: ArtifactFile) -> None:
    wrong = "sha256:" + "0" * 64
    server = serve_process("--model-uri", str(lr_artifact.path), "--digest", wrong, "--name", "lr", "--version", "1")
    seen: list[int] = []
    while server.proc.poll() is None:
        with contextlib.suppress(OSError):
            seen.append(status_of(server.url + "/v2/health/ready"))
        time.sleep(0.02)
    assert server.proc.returncode == 3
    assert 200 not in seen
    log = server.log()
    assert "REFUSING TO SERVE" in log
    assert f"digest mismatch: expected {wrong}, got {lr_artifact.digest}" in log
    assert "loaded" not in log


def test_graceful_sigterm_flushes_every_row_and_finishes_in_flight(
    serve_process: Start, lr_artifact: ArtifactFile, tmp_path: Path
) -> None:
    log_dir = tmp_path / "predictions"
    server = serve_process(
        "--model-uri", lr_artifact.path.as_uri(), "--digest", lr_artifact.digest, "--name", "lr", "--version", "5",
        "--track", "canary", "--prediction-log", str(log_dir), "--prediction-log-sample-rate", "1",
        "--prediction-log-rotate-seconds", "3600", "--shutdown-delay", "1.5",
    )  # fmt: skip
    server.wait_ready()
    url = server.url + "/v2/models/lr/infer"
    expected: dict[str, int] = {}
    for i in range(30):
        batch = 1 + i % 4
        assert infer(url, body(f"req-{i}", batch))["id"] == f"req-{i}"
        expected[f"req-{i}"] = batch

    # A request in flight across SIGTERM: headers and part of the body before, the rest after.
    payload = json.dumps(body("in-flight", 2)).encode()
    conn = socket.create_connection(("127.0.0.1", server.port))
    head = f"POST /v2/models/lr/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    conn.sendall(head.encode() + payload[:10])
    time.sleep(0.2)

    signalled = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    while status_of(server.url + "/v2/health/ready") != 503:
        assert time.monotonic() - signalled < 5, "readiness never went false"
        time.sleep(0.02)
    assert status_of(server.url + "/v2/health/live") == 200  # still serving while endpoints drain
    assert infer(url, body("during-drain", 1))["id"] == "during-drain"
    expected["during-drain"] = 1
    conn.sendall(payload[10:])
    response = conn.recv(65536).decode()
    conn.close()
    assert response.startswith("HTTP/1.1 200"), response
    assert '"id":"in-flight"' in response
    expected["in-flight"] = 2

    assert server.proc.wait(timeout=30) == 0
    assert time.monotonic() - signalled >= 1.5  # it kept answering for --shutdown-delay
    rows = [json.loads(line) for f in sorted(log_dir.glob("*.jsonl")) for line in f.read_text().splitlines()]
    by_id: dict[str, int] = {}
    for row in rows:
        by_id[row["request_id"]] = by_id.get(row["request_id"], 0) + 1
        assert (row["model"], row["version"], row["track"]) == ("lr", "5", "canary")
        assert {"input-0_0", "input-0_19"} <= set(row["inputs"])
        assert set(row["outputs"]) == {"predict"}
    assert by_id == expected
    log = server.log()
    assert log.index("not ready") < log.index("prediction log flushed")


def test_two_workers_share_the_port_and_the_metrics(serve_process: Start, lr_artifact: ArtifactFile) -> None:
    server = serve_process(
        "--model-uri", str(lr_artifact.path), "--digest", lr_artifact.digest, "--name", "lr", "--version", "1",
        "--workers", "2", "--shutdown-delay", "0",
    )  # fmt: skip
    server.wait_ready(60)
    url = server.url + "/v2/models/lr/infer"
    pids = set()
    for _i in range(60):
        b = body("", 1)
        del b["id"]
        pids.add(infer(url, b)["id"].split("-")[0])  # generated ids start with the worker's pid
    assert len(pids) == 2, "SO_REUSEPORT should spread new connections over both workers"
    for _ in range(3):  # whichever worker answers /metrics reports the sum of both
        with urllib.request.urlopen(server.url + "/metrics", timeout=5) as resp:
            text = resp.read().decode()
        line = next(
            x for x in text.splitlines() if x.startswith("modelops_inference_requests_total{") and 'code="200"' in x
        )
        assert float(line.rsplit(" ", 1)[1]) == 60
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=30) == 0


def test_workers_do_not_outlive_a_killed_supervisor(serve_process: Start, lr_artifact: ArtifactFile) -> None:
    server = serve_process(
        "--model-uri", str(lr_artifact.path), "--digest", lr_artifact.digest, "--name", "lr", "--version", "1",
        "--workers", "2", "--shutdown-delay", "0",
    )  # fmt: skip
    server.wait_ready(60)
    url = server.url + "/v2/models/lr/infer"
    workers: set[int] = set()
    for _i in range(200):
        if len(workers) == 2:
            break
        b = body("", 1)
        del b["id"]
        workers.add(int(infer(url, b)["id"].split("-")[0], 16))  # generated ids start with the pid in hex
    assert len(workers) == 2
    assert server.proc.pid not in workers
    try:
        server.proc.kill()  # SIGKILL: the supervisor forwards nothing
        server.proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [pid for pid in workers if alive(pid)], server.log()
    finally:
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_serve_a_registered_model_version_with_one_command(
    serve_process: Start, lr_artifact: ArtifactFile, tmp_path: Path
) -> None:
    manifest = tmp_path / "mv.yaml"
    manifest.write_text(
        "apiVersion: modelops.dev/v1alpha1\nkind: ModelVersion\nmetadata:\n  name: churn-3\nspec:\n"
        f"  modelName: churn\n  version: '3'\n  framework: sklearn\n"
        f"  artifact:\n    uri: {lr_artifact.path.as_uri()}\n    digest: {lr_artifact.digest}\n    format: joblib\n"
    )
    metrics_port = free_port()
    server = serve_process(
        "--model-version", str(manifest), "--metrics-port", str(metrics_port), "--shutdown-delay", "0"
    )
    server.wait_ready()
    with urllib.request.urlopen(server.url + "/v2/models/churn/versions/3", timeout=5) as resp:
        assert json.loads(resp.read())["name"] == "churn"
    assert infer(server.url + "/v2/models/churn/infer", body("x", 1))["model_version"] == "3"
    assert status_of(server.url + "/metrics") == 404  # served on --metrics-port instead
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as resp:
        assert (
            'modelops_inference_requests_total{code="200",model="churn",track="stable",version="3"} 1.0'
            in resp.read().decode()
        )
    assert server.terminate() == 0


def test_bad_arguments_fail_fast(lr_artifact: ArtifactFile, capsys: pytest.CaptureFixture[str]) -> None:
    from modelops.cli import main

    base = ["serve", "--host", "127.0.0.1", "--port", str(free_port()), "--name", "lr", "--version", "1"]
    assert main([*base, "--model-uri", str(lr_artifact.path), "--digest", "md5:abc"]) == 2
    assert "--digest must look like sha256" in capsys.readouterr().err
    assert main([*base, "--model-uri", str(lr_artifact.path)]) == 2
    assert "serve needs --digest" in capsys.readouterr().err
    missing = ["--model-uri", "/nonexistent/model.joblib", "--digest", lr_artifact.digest, "--shutdown-delay", "0"]
    assert main([*base, *missing]) == 4
