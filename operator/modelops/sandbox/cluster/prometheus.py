"""The sandbox's Prometheus: Debian's real `prometheus` binary, scraping the operator and annotated pods.

Pods are found as the common `kubernetes-pods` scrape job finds them on a cluster (annotations
`prometheus.io/scrape: "true"`, `prometheus.io/port`, `prometheus.io/path`, `prometheus.io/scheme`;
target labels `namespace`, `pod` and every pod label through `labelmap`), except that discovery
is a `file_sd_configs` file this module rewrites from a pod watch: the sandbox has no
kubernetes_sd endpoint to offer, and pod ports are local ports (`sandbox.modelops.dev/host-ports`).
docs/sandbox.md shows the equivalent `relabel_configs` for a real cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modelops.sandbox.cluster.processes import die_with_parent, free_port, open_log, terminate

logger = logging.getLogger(__name__)

Obj = dict[str, Any]

HOST_PORTS = "sandbox.modelops.dev/host-ports"
DEBIAN_PACKAGE = "prometheus"
MISSING = (
    "prometheus not found on PATH: install it with `apt-get install prometheus` (Debian package); "
    "until then canary analysis and modelops_* PromQL queries do not work"
)
_INVALID_LABEL_CHARS = re.compile(r"[^a-zA-Z0-9_]")


def find_binary() -> str | None:
    return shutil.which("prometheus")


def sanitize_label_name(name: str) -> str:
    """What Prometheus' Kubernetes discovery does to a label key in `__meta_kubernetes_pod_label_<key>`."""
    return _INVALID_LABEL_CHARS.sub("_", name)


def _duration(seconds: float) -> str:
    ms = max(1, round(seconds * 1000))
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def config(*, scrape_interval: float, targets_file: Path, operator_target: str | None) -> Obj:
    """prometheus.yml: the operator's metrics (static) and the annotated pods (file_sd)."""
    interval = _duration(scrape_interval)
    jobs: list[Obj] = []
    if operator_target:
        jobs.append({"job_name": "modelops-operator", "static_configs": [{"targets": [operator_target]}]})
    jobs.append({"job_name": "kubernetes-pods", "file_sd_configs": [{"files": [str(targets_file)]}]})
    return {
        "global": {
            "scrape_interval": interval,
            "scrape_timeout": _duration(min(scrape_interval, 10.0)),
            "evaluation_interval": interval,
        },
        "scrape_configs": jobs,
    }


def _ready(pod: Mapping[str, Any]) -> bool:
    phase = (pod.get("status") or {}).get("phase")
    return phase == "Running" and not (pod.get("metadata") or {}).get("deletionTimestamp")


def _container_ports(pod: Mapping[str, Any]) -> list[int]:
    out = []
    for c in (pod.get("spec") or {}).get("containers") or []:
        for p in c.get("ports") or []:
            if isinstance(p.get("containerPort"), int) and (p.get("protocol") or "TCP") == "TCP":
                out.append(p["containerPort"])
    return out


def pod_targets(pod: Mapping[str, Any]) -> list[Obj]:
    """file_sd target groups for one pod; [] unless it asks to be scraped and runs with local ports.

    Mirrors the usual relabelling: keep `prometheus.io/scrape == "true"`, drop Pending/Succeeded/
    Failed pods, address from `prometheus.io/port` (else every declared container port, as
    kubernetes_sd lists one target per port), path and scheme from their annotations, labels
    `namespace`, `pod` and each pod label sanitized.
    """
    meta = pod.get("metadata") or {}
    ann = meta.get("annotations") or {}
    if ann.get("prometheus.io/scrape") != "true" or not _ready(pod):
        return []
    try:
        host_ports = {int(k): int(v) for k, v in json.loads(ann.get(HOST_PORTS) or "{}").items()}
    except (ValueError, TypeError, AttributeError):
        return []
    port_ann = ann.get("prometheus.io/port")
    if port_ann is not None:
        if not str(port_ann).isdigit():
            return []
        ports = [int(port_ann)]
    else:
        ports = _container_ports(pod)
    addresses = sorted({f"127.0.0.1:{host_ports[p]}" for p in ports if p in host_ports})
    if not addresses:
        return []
    labels: dict[str, str] = {}
    for key, value in (meta.get("labels") or {}).items():
        labels[sanitize_label_name(key)] = str(value)
    path = ann.get("prometheus.io/path")
    if path:
        labels["__metrics_path__"] = str(path)
    scheme = ann.get("prometheus.io/scheme")
    if scheme in ("http", "https"):
        labels["__scheme__"] = scheme
    labels["namespace"] = str(meta.get("namespace") or "")
    labels["pod"] = str(meta.get("name") or "")
    return [{"targets": addresses, "labels": labels}]


class PodTargets:
    """Keeps a file_sd JSON file equal to the scrape targets of the pods it is told about.

    Feed it pod watch events (`on_pod` is an Informer handler); the file is replaced atomically
    (write + rename, as Prometheus' file discovery expects) and only when the targets change.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._by_pod: dict[tuple[str, str], list[Obj]] = {}
        self._written: str | None = None
        self.flush()

    def on_pod(self, etype: str, pod: Obj, _old: Obj | None = None) -> None:
        meta = pod.get("metadata") or {}
        key = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        groups = [] if etype == "DELETED" else pod_targets(pod)
        if groups:
            self._by_pod[key] = groups
        else:
            self._by_pod.pop(key, None)
        self.flush()

    def groups(self) -> list[Obj]:
        return [g for key in sorted(self._by_pod) for g in self._by_pod[key]]

    def flush(self) -> None:
        text = json.dumps(self.groups(), indent=1, sort_keys=True)
        if text == self._written:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.path)
        self._written = text


class PrometheusProcess:
    """One `prometheus` child on 127.0.0.1, its data, config and log under `directory`."""

    def __init__(
        self,
        directory: Path,
        *,
        binary: str,
        port: int = 0,
        scrape_interval: float = 2.0,
        operator_target: str | None = None,
        log_path: Path | None = None,
    ) -> None:
        self.directory = directory
        self.binary = binary
        self.port = port or free_port()
        self.scrape_interval = scrape_interval
        self.operator_target = operator_target
        self.log_path = log_path or directory / "prometheus.log"
        self.targets_file = directory / "targets" / "pods.json"
        self.config_file = directory / "prometheus.yml"
        self.targets = PodTargets(self.targets_file)
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def write_config(self) -> Path:
        import yaml

        self.directory.mkdir(parents=True, exist_ok=True)
        doc = config(
            scrape_interval=self.scrape_interval, targets_file=self.targets_file, operator_target=self.operator_target
        )
        self.config_file.write_text(yaml.safe_dump(doc, sort_keys=False))
        return self.config_file

    def command(self) -> list[str]:
        return [
            self.binary,
            f"--config.file={self.config_file}",
            f"--storage.tsdb.path={self.directory / 'data'}",
            "--storage.tsdb.retention.time=1d",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--web.enable-lifecycle",
        ]

    async def start(self) -> None:
        self.write_config()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open_log(self.log_path) as log:
            self.proc = await asyncio.create_subprocess_exec(
                *self.command(),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                preexec_fn=die_with_parent(),
            )
        logger.info("prometheus pid %s on %s", self.proc.pid, self.url)

    async def wait_ready(self, within: float = 30.0) -> None:
        """Until `/-/ready` answers 200; RuntimeError naming the log when the process exits or time runs out."""
        import aiohttp

        assert self.proc is not None, "start() first"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            while True:
                if self.proc.returncode is not None:
                    raise RuntimeError(f"prometheus exited with code {self.proc.returncode}; see {self.log_path}")
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with session.get(f"{self.url}/-/ready") as resp:
                        if resp.status == 200:
                            return
                if loop.time() > deadline:
                    raise RuntimeError(f"prometheus not ready after {within:.0f}s; see {self.log_path}")
                await asyncio.sleep(0.05)

    async def stop(self, grace: float = 3.0) -> None:
        proc, self.proc = self.proc, None
        await terminate(proc, grace)
