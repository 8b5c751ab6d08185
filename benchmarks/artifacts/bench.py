"""Noisy neighbours: ten ModelVersions on an artifact store that accepts and never answers, then
one good ModelVersion and one DriftMonitor. Measures:

- how long the good version takes to be Verified (and, alone, as the baseline);
- how long the DriftMonitor takes to get its status;
- for the hanging versions: each attempt's start (a connection to the store) and end (the status
  write "attempt N, retrying in Xs"), so the actual gap between an announced retry and the next
  attempt can be compared with the announcement.

Runs against whatever `modelops` is importable, so the code before the asynchronous verifier can
be measured too: `PYTHONPATH=<old checkout>/operator python benchmarks/artifacts/bench.py`.

    python benchmarks/artifacts/bench.py [--hanging 10] [--duration 90] [--json out.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from modelops.k8s.client import load_api_client
from modelops.k8s.resources import DRIFT_MONITOR, MODEL_VERSION, CustomObjects
from modelops.runner import OperatorConfig, OperatorThread
from modelops.sandbox import ServerThread
from modelops.sandbox.cluster.gateway import GATEWAY_API_CRDS

ROOT = Path(__file__).resolve().parents[2]
NS = "default"


class HangingStore:
    """Accepts, reads the request line (to know which artifact), never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(256)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.accepts: list[tuple[float, str]] = []
        self.held: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            t = time.monotonic()
            self.held.append(conn)
            threading.Thread(target=self._read_path, args=(conn, t), daemon=True).start()

    def _read_path(self, conn: socket.socket, t: float) -> None:
        conn.settimeout(5)
        try:
            line = conn.recv(4096).split(b"\r\n", 1)[0].decode()
        except OSError:
            line = "? ?"
        self.accepts.append((t, line.split(" ")[1] if " " in line else "?"))

    def close(self) -> None:
        self.sock.close()
        for c in self.held:
            c.close()


def mv(name: str, uri: str, digest: str, version: str) -> dict[str, Any]:
    return {
        "apiVersion": "modelops.dev/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {"name": name},
        "spec": {"modelName": "churn", "version": version, "artifact": {"uri": uri, "digest": digest}},
    }


def operator_config(kubeconfig: str) -> OperatorConfig:
    cfg = OperatorConfig(namespaces=[NS], kubeconfig=kubeconfig, health_port=None, metrics_port=None)
    try:  # the asynchronous verifier's settings; the code before it reads file:// anyway
        from modelops.core.artifact_policy import ArtifactPolicy

        cfg.artifact_policy = ArtifactPolicy.build(allow_file=True)
    except ImportError:
        pass
    return cfg


def wait(pred: Any, timeout: float, step: float = 0.02) -> float | None:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if pred():
            return time.monotonic() - start
        time.sleep(step)
    return None


def run(hanging: int, duration: float, tmp: Path) -> dict[str, Any]:
    server = ServerThread(port=0, crds=[ROOT / "crds", GATEWAY_API_CRDS]).start()
    kubeconfig = str(server.write_kubeconfig(tmp / "kubeconfig"))
    api = CustomObjects(load_api_client(kubeconfig))
    store = HangingStore()
    data = b"good model bytes" * 1000
    good = tmp / "good.joblib"
    good.write_bytes(data)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    ref = tmp / "ref.csv"
    ref.write_text("x\n1\n2\n")
    out: dict[str, Any] = {"hanging": hanging}

    def verified(name: str) -> bool:
        return (api.get(MODEL_VERSION, NS, name).get("status") or {}).get("phase") == "Verified"

    def drift_monitor(name: str) -> dict[str, Any]:
        return {
            "apiVersion": "modelops.dev/v1alpha1",
            "kind": "DriftMonitor",
            "metadata": {"name": name},
            "spec": {
                "target": {"modelVersion": "alone"},
                "schedule": "0 * * * *",
                "reference": {"uri": str(ref)},
                "current": {"source": "uri", "uri": str(ref)},
            },
        }

    def has_status(name: str) -> bool:
        return bool((api.get(DRIFT_MONITOR, NS, name).get("status") or {}).get("observedGeneration"))

    attempt_ends: dict[str, dict[int, float]] = {}
    watching = threading.Event()

    def watch_attempts() -> None:
        """When each "attempt N, retrying in Xs" status lands (a watch: no polling delay)."""
        from kubernetes import client, watch

        custom = client.CustomObjectsApi(load_api_client(kubeconfig))
        w = watch.Watch()
        watching.set()
        for ev in w.stream(custom.list_namespaced_custom_object, "modelops.dev", "v1alpha1", NS, "modelversions"):
            obj = ev["object"]
            n = (obj.get("status") or {}).get("verifyAttempts")
            if n:
                attempt_ends.setdefault(obj["metadata"]["name"], {}).setdefault(n, time.monotonic())

    op = OperatorThread(operator_config(kubeconfig)).start()
    try:
        threading.Thread(target=watch_attempts, daemon=True).start()
        watching.wait(10)
        api.create(MODEL_VERSION, NS, mv("warm-up", good.as_uri(), digest, "w"))
        wait(lambda: verified("warm-up"), 60)
        api.create(MODEL_VERSION, NS, mv("alone", good.as_uri(), digest, "0"))
        out["good_alone_s"] = wait(lambda: verified("alone"), 60)
        api.create(DRIFT_MONITOR, NS, drift_monitor("dm-alone"))
        out["driftmonitor_alone_s"] = wait(lambda: has_status("dm-alone"), 60)

        t0 = time.monotonic()
        for i in range(hanging):
            api.create(MODEL_VERSION, NS, mv(f"slow-{i}", f"{store.url}/slow-{i}", "sha256:" + "0" * 64, f"s{i}"))
        wait(lambda: len(store.accepts) >= min(hanging, 8), 30)  # the store is being waited on
        t1 = time.monotonic()
        api.create(MODEL_VERSION, NS, mv("good", good.as_uri(), digest, "1"))
        api.create(DRIFT_MONITOR, NS, drift_monitor("dm"))
        wait(lambda: verified("good"), 120)
        out["good_with_neighbours_s"] = time.monotonic() - t1
        wait(lambda: has_status("dm"), 120)
        out["driftmonitor_with_neighbours_s"] = time.monotonic() - t1
        time.sleep(max(0.0, duration - (time.monotonic() - t0)))
        ends = {f"slow-{i}": dict(attempt_ends.get(f"slow-{i}", {})) for i in range(hanging)}
        starts: dict[str, list[float]] = {}
        for t, path in sorted(store.accepts):
            starts.setdefault(path.strip("/"), []).append(t)
        gaps = []  # (announced, actual) seconds between "retrying in Xs" and the next attempt
        for name, seen in ends.items():
            for n, end in seen.items():
                announced = min(600.0, 5.0 * 2 ** (n - 1))
                nxt = [s for s in starts.get(name, []) if s > end]
                if nxt:
                    gaps.append((announced, nxt[0] - end))
        out["attempts_in_window"] = {name: max(seen, default=0) for name, seen in ends.items()}
        out["retry_gaps"] = gaps
        first = [gap for a, gap in gaps if a == 5.0]
        out["retry_after_announced_5s"] = {
            "n": len(first),
            "median_s": statistics.median(first) if first else None,
            "max_s": max(first) if first else None,
        }
        out["load_average"] = os.getloadavg()
    finally:
        store.close()
        op.stop()
        server.stop()
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hanging", type=int, default=10)
    p.add_argument("--duration", type=float, default=90.0, help="seconds to watch the hanging versions retry")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = run(args.hanging, args.duration, Path(tmp))
    import modelops

    result["modelops"] = str(Path(modelops.__file__).parent)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
