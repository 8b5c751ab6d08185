"""`modelops sandbox up | status | down`: real processes, real kubectl, real Prometheus.

The tests of the shared sandbox run in file order: the last one stops it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from modelops.sandbox.cluster.processes import alive
from modelops.sandbox.cluster.supervisor import Layout, status_report

ROOT = Path(__file__).resolve().parents[3]
CHURN = ROOT / "examples" / "artifacts" / "churn-v1.joblib"
CHURN_DIGEST = "sha256:02352bf2e446d2ab19cd10135f311e345fff6f2edbd9aeb159bd535f38efc7d6"
# `python -m modelops.cli` would make a second `modelops.cli` module (and a second CLIError class).
MODELOPS = [sys.executable, "-c", "import sys; from modelops.cli import main; sys.exit(main())"]
needs_prometheus = pytest.mark.skipif(shutil.which("prometheus") is None, reason="needs the prometheus binary")


def modelops(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MODELOPS, *args], capture_output=True, text=True, timeout=timeout, env=env or dict(os.environ), check=False
    )


def wait_for(check: Any, within: float, what: str) -> Any:
    deadline = time.monotonic() + within
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"not true within {within}s: {what}")
        time.sleep(0.1)


def state_of(directory: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((directory / "state.json").read_text())
    return data


def every_pid(directory: Path) -> set[int]:
    """The supervisor, its children and every pod process it recorded."""
    state = state_of(directory)
    pids = {state["pid"]} | {c["pid"] for c in state["components"].values() if c.get("pid")}
    pods = json.loads((directory / "pods.json").read_text()) if (directory / "pods.json").exists() else []
    return pids | {p["pid"] for p in pods if p.get("pid")}


def session_members(sid: int) -> list[int]:
    """Processes (not zombies) of session `sid`, scanned in /proc."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            if int(fields[3]) == sid and fields[0] not in ("Z", "X"):
                out.append(int(entry.name))
    return out


def processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains `text` (e.g. a sandbox directory)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in cmdline and alive(int(entry.name)):
                out.append(int(entry.name))
    return out


@dataclass
class Sandbox:
    dir: Path
    output: str
    seconds: float

    @property
    def kubeconfig(self) -> Path:
        return self.dir / "kubeconfig"

    def kubectl(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig)}
        return subprocess.run(["kubectl", *args], capture_output=True, text=True, env=env, timeout=30, check=False)

    def status(self) -> dict[str, Any]:
        """What `sandbox status -o json` prints (its function, in this process: no interpreter start)."""
        report = status_report(Layout(self.dir))
        assert report is not None, f"nothing running in {self.dir}"
        return report

    def status_cli(self) -> dict[str, Any]:
        result = modelops("sandbox", "status", "--dir", str(self.dir), "-o", "json")
        assert result.returncode == 0, result.stderr
        data: dict[str, Any] = json.loads(result.stdout)
        return data


def up(directory: Path, *args: str, env: dict[str, str] | None = None) -> Sandbox:
    began = time.monotonic()
    result = modelops("sandbox", "up", "--dir", str(directory), *args, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return Sandbox(directory, result.stdout + result.stderr, time.monotonic() - began)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    directory = tmp_path_factory.mktemp("sandbox") / "cluster"
    box = up(directory, "--scrape-interval", "1")
    try:
        yield box
    finally:
        modelops("sandbox", "down", "--dir", str(directory))


def test_up_prints_how_to_use_and_stop_it(sandbox: Sandbox) -> None:
    assert f"export KUBECONFIG={sandbox.kubeconfig}" in sandbox.output
    assert f"modelops sandbox down --dir {sandbox.dir}" in sandbox.output
    state = state_of(sandbox.dir)
    assert f"API server:  {state['components']['apiserver']['url']}" in sandbox.output
    if shutil.which("prometheus"):
        assert f"Prometheus:  {state['components']['prometheus']['url']}" in sandbox.output
    doc = yaml.safe_load(sandbox.kubeconfig.read_text())
    assert doc["clusters"][0]["cluster"]["server"] == state["components"]["apiserver"]["url"]


def test_kubectl_works_with_the_printed_kubeconfig(sandbox: Sandbox) -> None:
    pods = sandbox.kubectl("get", "pods", "-A")
    assert pods.returncode == 0, pods.stderr
    crds = sandbox.kubectl("get", "crd", "-o", "name")
    assert crds.returncode == 0, crds.stderr
    names = set(crds.stdout.split())
    assert {
        "customresourcedefinition.apiextensions.k8s.io/modelversions.modelops.dev",
        "customresourcedefinition.apiextensions.k8s.io/httproutes.gateway.networking.k8s.io",
        "customresourcedefinition.apiextensions.k8s.io/gateways.gateway.networking.k8s.io",
    } <= names
    classes = sandbox.kubectl("get", "gatewayclass", "sandbox", "-o", "jsonpath={.spec.controllerName}")
    assert classes.stdout == "sandbox.modelops.dev/gateway-controller"


def test_status_lists_every_component_alive(sandbox: Sandbox) -> None:
    report = sandbox.status_cli()
    components = {c["name"]: c for c in report["components"]}
    assert {"apiserver", "operator", "prometheus", "runner", "endpoints", "proxy", "gateway"} <= set(components)
    for name in ("apiserver", "operator"):
        assert components[name]["alive"] is True
        assert alive(components[name]["pid"])
    assert components["apiserver"]["pid"] == report["pid"]  # in the supervisor's own loop
    assert components["operator"]["pid"] != report["pid"]  # a child process
    assert httpx.get(components["operator"]["url"]).status_code == 200
    # when each answered, in seconds since the supervisor began: in the order it starts them, and the
    # totals are the last of all and the last but Prometheus
    ready = {name: c["readySeconds"] for name, c in components.items()}
    assert all(isinstance(seconds, float | int) and seconds > 0 for seconds in ready.values()), ready
    assert ready["apiserver"] <= ready["runner"]  # the runner's caches list from the API server
    assert ready["runner"] == ready["proxy"] == ready["gateway"] == ready["endpoints"]
    assert report["readySeconds"] >= max(ready.values())
    assert report["readyExcludingPrometheusSeconds"] == max(s for n, s in ready.items() if n != "prometheus")
    assert report["readyExcludingPrometheusSeconds"] <= report["readySeconds"]
    assert report["supervisorStartSeconds"] > 0  # the supervisor's own interpreter start, before all that
    text = modelops("sandbox", "status", "--dir", str(sandbox.dir))
    assert text.returncode == 0
    assert "COMPONENT" in text.stdout
    assert "operator" in text.stdout
    assert f"{ready['operator']:.2f}s" in text.stdout


def test_a_second_up_says_it_is_already_running(sandbox: Sandbox) -> None:
    pid = state_of(sandbox.dir)["pid"]
    again = modelops("sandbox", "up", "--dir", str(sandbox.dir))
    assert again.returncode == 0
    assert f"already running in {sandbox.dir} (supervisor pid {pid})" in again.stdout
    assert state_of(sandbox.dir)["pid"] == pid


MODEL_SERVER = """
apiVersion: apps/v1
kind: Deployment
metadata: {{name: churn, namespace: default}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: churn}}}}
  template:
    metadata:
      labels: {{app: churn, modelops.dev/track: stable}}
      annotations: {{prometheus.io/scrape: "true", prometheus.io/port: "8080", prometheus.io/path: /metrics}}
    spec:
      containers:
      - name: server
        image: {image}
        args: [serve, --model-uri, /models/{artifact}, --digest, "{digest}", --name, churn, --version, "1",
               --track, stable, --port, "8080", --shutdown-delay, "0"]
        ports: [{{name: http, containerPort: 8080}}]
        readinessProbe: {{httpGet: {{path: /v2/health/ready, port: http}}, periodSeconds: 1}}
        volumeMounts: [{{name: models, mountPath: /models, readOnly: true}}]
      volumes: [{{name: models, hostPath: {{path: {models}}}}}]
---
apiVersion: v1
kind: Service
metadata: {{name: churn, namespace: default}}
spec:
  selector: {{app: churn}}
  ports: [{{name: http, port: 80, targetPort: http}}]
"""


@pytest.mark.prometheus
@needs_prometheus
def test_model_server_pods_serve_through_the_service_and_prometheus_scrapes_them(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    manifest = tmp_path / "churn.yaml"
    image = state_of(sandbox.dir)["image"]
    # The artifact through a hostPath volume, as on a node: a pod's /tmp is its own, so a bare path
    # would not resolve from a checkout under /tmp.
    manifest.write_text(MODEL_SERVER.format(image=image, artifact=CHURN.name, models=CHURN.parent, digest=CHURN_DIGEST))
    applied = sandbox.kubectl("apply", "-f", str(manifest))
    assert applied.returncode == 0, applied.stderr

    api = state_of(sandbox.dir)["components"]["apiserver"]["url"]

    def ready_pods() -> bool:
        pods = httpx.get(f"{api}/api/v1/namespaces/default/pods", params={"labelSelector": "app=churn"}).json()
        ready = [
            p for p in pods["items"]
            if any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
        ]  # fmt: skip
        return len(ready) == 2

    wait_for(ready_pods, 30, "two ready churn pods")

    def ready_endpoints() -> bool:
        slices = httpx.get(
            f"{api}/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
            params={"labelSelector": "kubernetes.io/service-name=churn"},
        ).json()
        return sum(1 for s in slices["items"] for e in s["endpoints"] if e["conditions"]["ready"]) == 2

    wait_for(ready_endpoints, 10, "the Service's EndpointSlices list both pods ready")
    report = sandbox.status()
    pods = [p for p in report["pods"] if p["name"].startswith("churn-")]
    assert len(pods) == 2
    assert all(p["phase"] == "Running" and p["ready"] == "1/1" and p["pid"] and alive(p["pid"]) for p in pods)
    service = next(s for s in report["services"] if s["name"] == "churn")
    url = service["ports"][0]["url"]
    assert url.startswith("http://127.0.0.1:")

    body = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [1.0, 2.0, 3.0, 4.0]}]}
    for _ in range(10):  # a new connection each: the proxy balances connections
        assert httpx.post(f"{url}/v2/models/churn/infer", json=body).status_code == 200

    prometheus = state_of(sandbox.dir)["components"]["prometheus"]["url"]

    def scraped() -> list[dict[str, Any]] | None:
        query = 'sum by (namespace, pod, modelops_dev_track) (modelops_inference_requests_total{code="200"})'
        result: list[dict[str, Any]] = httpx.get(f"{prometheus}/api/v1/query", params={"query": query}).json()["data"][
            "result"
        ]
        return result if sum(float(r["value"][1]) for r in result) == 10 else None

    result = wait_for(scraped, 15, "Prometheus counts the 10 requests")
    assert {r["metric"]["pod"] for r in result} == {p["name"] for p in pods}  # both replicas got traffic
    for r in result:
        assert r["metric"]["namespace"] == "default"
        assert r["metric"]["modelops_dev_track"] == "stable"
        assert float(r["value"][1]) == 5

    # ... and the operator: its own metrics through the same Prometheus
    def operator_scraped() -> list[dict[str, Any]] | None:
        query = (
            'count({job="modelops-operator", __name__=~"modelops_.+"}) > 0 and on() up{job="modelops-operator"} == 1'
        )
        found: list[dict[str, Any]] = httpx.get(f"{prometheus}/api/v1/query", params={"query": query}).json()["data"][
            "result"
        ]
        return found or None

    wait_for(operator_scraped, 15, "Prometheus scrapes the operator's /metrics")


def test_down_stops_everything_it_started(sandbox: Sandbox) -> None:
    pids = every_pid(sandbox.dir)
    supervisor = state_of(sandbox.dir)["pid"]
    down = modelops("sandbox", "down", "--dir", str(sandbox.dir))  # its time: benchmarks/sandbox/
    assert down.returncode == 0, down.stderr
    assert f"sandbox in {sandbox.dir} stopped" in down.stdout
    assert [p for p in pids if alive(p)] == []
    assert session_members(supervisor) == []
    assert not (sandbox.dir / "state.json").exists()
    again = modelops("sandbox", "down", "--dir", str(sandbox.dir))
    assert (again.returncode, again.stdout.strip()) == (0, f"nothing running in {sandbox.dir}")
    status = modelops("sandbox", "status", "--dir", str(sandbox.dir))
    assert status.returncode == 1
    assert status.stderr.strip() == (
        f"modelops: error: nothing running in {sandbox.dir} (start it with: modelops sandbox up --dir {sandbox.dir})"
    )


# the pod's process starts a child of its own and sleeps; the child carries `marker` on its command line
FORKER = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)', sys.argv[1]]); time.sleep(600)"


def forker_pod(image: str, marker: str) -> dict[str, Any]:
    container = {"name": "main", "image": image, "command": [sys.executable, "-c", FORKER, marker]}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "forker", "namespace": "default"},
            "spec": {"containers": [container]}}  # fmt: skip


def test_without_prometheus_the_rest_runs_and_a_killed_supervisor_takes_its_children(tmp_path: Path) -> None:
    path = [d for d in os.environ["PATH"].split(os.pathsep) if d and not (Path(d) / "prometheus").exists()]
    env = {**os.environ, "PATH": os.pathsep.join(path)}
    directory = tmp_path / "noprom"
    result = modelops("sandbox", "up", "--dir", str(directory), env=env)
    try:
        assert result.returncode == 0, result.stderr
        # one line: the package to install and what does not work without it
        assert result.stderr.count("\n") == 1
        assert "apt-get install prometheus" in result.stderr
        assert "canary analysis" in result.stderr
        assert "modelops_*" in result.stderr
        assert "Prometheus:" not in result.stdout
        box = Sandbox(directory, result.stdout, 0.0)
        manifest = tmp_path / "forker.json"
        marker = f"child-of-a-pod-of-{directory}"
        manifest.write_text(json.dumps(forker_pod(state_of(directory)["image"], marker)))
        assert box.kubectl("apply", "-f", str(manifest)).returncode == 0, "kubectl apply"

        def pod_running() -> bool:
            pods = json.loads((directory / "pods.json").read_text()) if (directory / "pods.json").exists() else []
            return any(p["pid"] and alive(p["pid"]) for p in pods)

        wait_for(pod_running, 20, "the pod's process runs")
        # the pod's child: its command line holds the marker, the pod's (`-c ... marker`) too
        [child] = wait_for(
            lambda: [p for p in processes_mentioning(marker) if p not in every_pid(directory)], 20, "the pod's child"
        )
        components = {c["name"]: c for c in box.status()["components"]}
        assert components["operator"]["alive"] is True
        assert components["prometheus"]["alive"] is False
        assert "apt-get install prometheus" in components["prometheus"]["note"]
        pids = every_pid(directory)
        supervisor = state_of(directory)["pid"]
        assert len(pids) == 3  # supervisor, operator, the pod

        os.kill(supervisor, signal.SIGKILL)

        wait_for(lambda: not [p for p in pids if alive(p)], 10, f"every one of {sorted(pids)} gone")
        # the stale state file is noticed and cleaned up
        assert status_report(Layout(directory)) is None
        assert not (directory / "state.json").exists()
        # the parent-death signal reached the pod's process, not its child: `down` finds and kills it
        assert alive(child)
        down = modelops("sandbox", "down", "--dir", str(directory))
        assert down.returncode == 0, down.stderr
        assert down.stdout.strip() == (
            f"killed 1 pod process(es) left by a supervisor that had died in {directory}: pid {child}"
        )
        assert not alive(child)
        assert processes_mentioning(str(directory)) == []
        again = modelops("sandbox", "down", "--dir", str(directory))
        assert again.stdout.strip() == f"nothing running in {directory}"
    finally:
        modelops("sandbox", "down", "--dir", str(directory))


def test_a_busy_port_fails_in_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = modelops("sandbox", "up", "--dir", str(tmp_path / "busy"), "--port", str(port))
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"modelops: error: API server: cannot listen on 127.0.0.1:{port}:")
    assert f"see {tmp_path / 'busy' / 'logs' / 'supervisor.log'}" in result.stderr
    assert not (tmp_path / "busy" / "state.json").exists()
    assert modelops("sandbox", "status", "--dir", str(tmp_path / "busy")).returncode == 1
    assert processes_mentioning(str(tmp_path / "busy")) == []


def test_an_operator_that_crashes_fails_up_in_one_line_naming_its_log(tmp_path: Path) -> None:
    broken = tmp_path / "broken"  # a kopf that cannot be imported: the operator exits at start
    broken.mkdir()
    (broken / "kopf.py").write_text('raise SystemExit("kopf is broken on purpose")\n')
    directory = tmp_path / "crash"
    result = modelops("sandbox", "up", "--dir", str(directory), env={**os.environ, "PYTHONPATH": str(broken)})
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    log = directory / "logs" / "operator.log"
    assert result.stderr.startswith("modelops: error: operator exited with code 1 before it was ready;")
    assert f"see {log}" in result.stderr
    assert "kopf is broken on purpose" in log.read_text()
    assert not (directory / "state.json").exists()
    assert processes_mentioning(str(directory)) == []
