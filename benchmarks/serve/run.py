"""Side-by-side load test of v2 model servers on one scikit-learn model, in one run.

Servers: modelops serve (metrics and prediction log on), MLServer (mlserver + mlserver-sklearn),
KServe's Python model server (a minimal kserve.Model), and a bare aiohttp floor. Each runs at
1 and 2 workers and is loaded with wrk on loopback at concurrency 1/16/64 and batch 1/32. The
peers live in their own virtualenvs (created when missing), never in the project's environment.

    python benchmarks/serve/run.py [--duration 5] [--servers modelops,floor,mlserver,kserve]

Writes results JSON and a Markdown table (see README.md). Not a test: numbers depend on the
machine and on whatever else runs on it, so compare ratios measured in the same run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
PEERS = {
    # uvloop 0.22 made get_event_loop() raise, which MLServer 1.7.1's inference workers call.
    "mlserver": ["mlserver==1.7.1", "mlserver-sklearn==1.7.1", "uvloop<0.22"],
    "kserve": ["kserve==0.21.0"],
}
LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open(os.getenv("BODY_FILE"), "r")
wrk.body = f:read("*a")
f:close()
"""


@dataclass
class Cell:
    server: str
    workers: int
    batch: int
    concurrency: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    rss_mb: float
    load_avg: float
    cpu_us_per_req: float


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def ensure_venv(root: Path, name: str) -> Path:
    """The peer's virtualenv, created on first use with the same scikit-learn as ours."""
    import sklearn

    venv = root / name
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"creating {venv} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *PEERS[name], f"scikit-learn=={sklearn.__version__}"],
            check=True,
        )
    return python


def package_version(python: Path, dist: str) -> str:
    out = subprocess.run(
        [str(python), "-c", f"from importlib.metadata import version; print(version('{dist}'))"],
        capture_output=True,
        text=True,
    )
    return out.stdout.strip() or "?"


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants, in MiB."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    total_kb = 0
    stack = [pid]
    while stack:
        p = stack.pop()
        stack.extend(children.get(p, []))
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
        except OSError:
            pass
    return total_kb / 1024


def tree_cpu_seconds(pid: int) -> float:
    """user+system CPU time of a process tree: per request, robust to a busy shared machine."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # fields[1] is ppid; pgid at [2]; utime, stime at [11], [12]
        if int(entry) == pid or int(fields[2]) == pid:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {timeout}s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group, then SIGKILL what is left."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


def parse_wrk(text: str) -> tuple[float, float, float, int]:
    def ms(value: str) -> float:
        m = re.match(r"([\d.]+)(us|ms|s)", value)
        if not m:
            return float("nan")
        return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))  # type: ignore[union-attr]
    p50 = ms(re.search(r"\s50%\s+(\S+)", text).group(1))  # type: ignore[union-attr]
    p99 = ms(re.search(r"\s99%\s+(\S+)", text).group(1))  # type: ignore[union-attr]
    errors = 0
    for pattern in (r"Non-2xx or 3xx responses:\s+(\d+)", r"Socket errors:.*?timeout (\d+)"):
        m = re.search(pattern, text)
        if m:
            errors += int(m.group(1))
    return rps, p50, p99, errors


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work = Path(tempfile.mkdtemp(prefix="modelops-bench-"))
        self.model_dir = self.work / "model"
        self.model_dir.mkdir()
        self.model_path = self.model_dir / "model.joblib"
        self.lua = self.work / "post.lua"
        self.lua.write_text(LUA)
        self.bodies: dict[int, Path] = {}
        self.versions: dict[str, str] = {}
        self.results: list[Cell] = []

    def prepare(self) -> None:
        import joblib
        import sklearn
        from sklearn.linear_model import LogisticRegression

        rng = np.random.default_rng(0)
        x = rng.normal(size=(5000, 20))
        y = (x @ rng.normal(size=20) > 0).astype(np.int64)
        model = LogisticRegression().fit(x, y)
        joblib.dump(model, self.model_path)
        self.digest = "sha256:" + hashlib.sha256(self.model_path.read_bytes()).hexdigest()
        for batch in self.args.batches:
            rows = rng.normal(size=(batch, 20)).round(6).tolist()
            body = {"inputs": [{"name": "input-0", "shape": [batch, 20], "datatype": "FP64", "data": rows}]}
            path = self.work / f"body-{batch}.json"
            path.write_text(json.dumps(body))
            self.bodies[batch] = path
        started = time.perf_counter()
        for _ in range(1000):
            model.predict(x[:1])
        self.predict_us = (time.perf_counter() - started) * 1e3
        import aiohttp

        self.versions.update(
            python=platform.python_version(),
            scikit_learn=sklearn.__version__,
            aiohttp=aiohttp.__version__,
            wrk=subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.splitlines()[0]
            if shutil.which("wrk")
            else "?",
        )

    # -- servers: each returns (process, infer URL, ready URL) --------------------------------
    def start(self, server: str, workers: int, port: int) -> tuple[subprocess.Popen[bytes], str, str]:
        log = (self.work / f"{server}-{workers}.log").open("wb")
        env = {**os.environ}
        base = f"http://127.0.0.1:{port}"
        cmd: list[str]
        cwd: Path | None = None
        if server == "modelops":
            plog = self.work / f"predictions-{workers}"
            cmd = [
                sys.executable, "-m", "modelops.cli", "serve", "--model-uri", str(self.model_path),
                "--digest", self.digest, "--name", "lr", "--version", "1", "--host", "127.0.0.1",
                "--port", str(port), "--workers", str(workers), "--prediction-log", str(plog),
                "--prediction-log-sample-rate", str(self.args.sample_rate), "--shutdown-delay", "0",
            ]  # fmt: skip
        elif server == "floor":
            cmd = [sys.executable, str(HERE / "floor_server.py"), str(self.model_path), str(port), str(workers)]
        elif server == "mlserver":
            python = ensure_venv(self.args.venvs, "mlserver")
            self.versions["mlserver"] = package_version(python, "mlserver")
            cwd = self.work / f"mlserver-{workers}"
            (cwd / "lr").mkdir(parents=True, exist_ok=True)
            shutil.copy(self.model_path, cwd / "lr" / "model.joblib")
            settings: dict[str, Any] = {
                "http_port": port,
                "grpc_port": free_port(),
                "metrics_port": free_port(),
                "host": "127.0.0.1",
            }
            if workers > 1:
                settings["parallel_workers"] = workers
            (cwd / "settings.json").write_text(json.dumps(settings))
            (cwd / "lr" / "model-settings.json").write_text(
                json.dumps(
                    {
                        "name": "lr",
                        "implementation": "mlserver_sklearn.SKLearnModel",
                        "parameters": {"uri": "./model.joblib", "version": "1"},
                    }
                )
            )
            cmd = [str(python.parent / "mlserver"), "start", str(cwd)]
        elif server == "kserve":
            python = ensure_venv(self.args.venvs, "kserve")
            self.versions["kserve"] = package_version(python, "kserve")
            cmd = [
                str(python), str(HERE / "kserve_server.py"), "--model_dir", str(self.model_dir), "--model_name", "lr",
                "--http_port", str(port), "--grpc_port", str(free_port()), "--workers", str(workers),
            ]  # fmt: skip
        else:
            raise ValueError(server)
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=cwd, env=env, start_new_session=True)
        ready = f"{base}/v2/health/ready" if server != "kserve" else f"{base}/v2/models/lr/ready"
        return proc, f"{base}/v2/models/lr/infer", ready

    def load(self, url: str, batch: int, concurrency: int, duration: float) -> str:
        threads = 1 if concurrency == 1 else 2
        cmd = [
            "wrk", f"-t{threads}", f"-c{concurrency}", f"-d{max(1, round(duration))}s", "--latency", "--timeout", "10s",
            "-s", str(self.lua), url,
        ]  # fmt: skip
        env = {**os.environ, "BODY_FILE": str(self.bodies[batch])}
        return subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout

    def run(self) -> None:
        """All servers of one worker count run side by side; each cell loads them in turn,
        ``--repeat`` rounds, so that a busy shared machine slows them alike. Median of rounds."""
        self.prepare()
        print(f"predict alone: {self.predict_us:.0f} us; work dir {self.work}", flush=True)
        for workers in self.args.workers:
            running: dict[str, tuple[subprocess.Popen[bytes], str]] = {}
            try:
                for server in self.args.servers:
                    proc, url, ready = self.start(server, workers, free_port())
                    running[server] = (proc, url)
                    wait_ready(ready, proc)
                    self.check(url)
                for batch in self.args.batches:
                    for concurrency in self.args.concurrency:
                        rounds: dict[str, list[Cell]] = {s: [] for s in running}
                        for _ in range(self.args.repeat):
                            for server, (proc, url) in running.items():
                                rounds[server].append(self.measure(server, proc, url, workers, batch, concurrency))
                        for server, cells in rounds.items():
                            cell = sorted(cells, key=lambda c: c.rps)[len(cells) // 2]
                            self.results.append(cell)
                            print(
                                f"{server:9s} w={workers} b={batch:<3d} c={concurrency:<3d} "
                                f"{cell.rps:9.0f} req/s  p50 {cell.p50_ms:7.2f} ms  p99 {cell.p99_ms:7.2f} ms  "
                                f"cpu {cell.cpu_us_per_req:5.0f} us/req  rss {cell.rss_mb:6.0f} MiB  "
                                f"err {cell.errors}  load {cell.load_avg:.2f}  (rounds: "
                                + ", ".join(f"{c.rps:.0f}" for c in cells)
                                + ")",
                                flush=True,
                            )
            finally:
                for proc, _ in running.values():
                    stop(proc)

    def measure(
        self, server: str, proc: subprocess.Popen[bytes], url: str, workers: int, batch: int, concurrency: int
    ) -> Cell:
        self.load(url, batch, concurrency, self.args.warmup)
        cpu_before = tree_cpu_seconds(proc.pid)
        out = self.load(url, batch, concurrency, self.args.duration)
        cpu = tree_cpu_seconds(proc.pid) - cpu_before
        rps, p50, p99, errors = parse_wrk(out)
        requests = rps * self.args.duration
        return Cell(
            server, workers, batch, concurrency, rps, p50, p99, errors,
            tree_rss_mb(proc.pid), os.getloadavg()[0], 1e6 * cpu / requests if requests else 0.0,
        )  # fmt: skip

    def check(self, url: str) -> None:
        """One request by hand: every server must answer the same payload correctly."""
        req = urllib.request.Request(
            url, data=self.bodies[1].read_bytes(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            outputs = json.loads(resp.read())["outputs"]
        data = outputs[0]["data"]
        if len(data) != 1 or data[0] not in (0, 1, [0], [1]):
            raise RuntimeError(f"unexpected answer from {url}: {outputs}")

    def table(self) -> str:
        lines = [
            "| server | workers | batch | conc. | req/s | p50 ms | p99 ms | CPU µs/req | RSS MiB | errors |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        order = {s: i for i, s in enumerate(["modelops", "floor", "mlserver", "kserve"])}
        for c in sorted(self.results, key=lambda c: (c.workers, c.batch, c.concurrency, order.get(c.server, 9))):
            lines.append(
                f"| {c.server} | {c.workers} | {c.batch} | {c.concurrency} | {c.rps:,.0f} | {c.p50_ms:.2f} | "
                f"{c.p99_ms:.2f} | {c.cpu_us_per_req:.0f} | {c.rss_mb:.0f} | {c.errors} |"
            )
        return "\n".join(lines)

    def ratios(self) -> str:
        by = {(c.server, c.workers, c.batch, c.concurrency): c for c in self.results}
        lines = []
        for workers in self.args.workers:
            for batch in self.args.batches:
                for conc in self.args.concurrency:
                    ours = by.get(("modelops", workers, batch, conc))
                    if ours is None:
                        continue
                    parts = []
                    for peer in ("mlserver", "kserve", "floor"):
                        other = by.get((peer, workers, batch, conc))
                        if other and other.rps:
                            parts.append(f"{ours.rps / other.rps:.2f}x {peer}")
                    lines.append(f"- w={workers} b={batch} c={conc}: " + ", ".join(parts))
        return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", default="modelops,floor,mlserver,kserve", type=lambda s: s.split(","))
    parser.add_argument("--workers", default="1,2", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--batches", default="1,32", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--concurrency", default="1,16,64", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds measured per cell")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of load before each cell")
    parser.add_argument("--repeat", type=int, default=3, help="rounds per cell; the median is reported")
    parser.add_argument("--sample-rate", type=float, default=0.1, help="modelops prediction-log sampling (CRD default)")
    parser.add_argument("--venvs", type=Path, default=Path("/work/bench-venvs"), help="where the peers' venvs live")
    parser.add_argument("--out", type=Path, default=HERE / "results.json")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (server logs)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk not found: apt-get install wrk", file=sys.stderr)
        return 2
    bench = Bench(args)
    try:
        bench.run()
    finally:
        result = {
            "versions": bench.versions,
            "machine": {
                "cpus": os.cpu_count(),
                "cpu": next(
                    (
                        ln.split(":", 1)[1].strip()
                        for ln in Path("/proc/cpuinfo").read_text().splitlines()
                        if ln.startswith("model name")
                    ),
                    "?",
                ),
                "kernel": platform.release(),
            },
            "predict_us": getattr(bench, "predict_us", None),
            "command": " ".join(sys.argv),
            "cells": [asdict(c) for c in bench.results],
        }
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(bench.table())
        print(bench.ratios())
        if not args.keep:
            shutil.rmtree(bench.work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
