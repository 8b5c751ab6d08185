"""`modelops sandbox up | down | status`: one supervisor process runs the whole sandbox cluster.

The supervisor (a detached process in its own session) runs, in one asyncio loop, the fake API
server, the workload runner, the endpoints controllers, the service proxy and the gateway; and
as children the operator (`modelops run -A`) and Prometheus. Every child gets a parent-death
signal, so a supervisor that dies (even by SIGKILL) takes them with it. The directory DIR holds
what the other commands read: `state.json` (pids, ports, URLs), `pods.json` (each pod's process),
`kubeconfig`, `logs/`, the runner's pod directories and Prometheus' data.

`up` waits on a pipe for the supervisor's one-line verdict (ready, or which component failed),
so it needs no polling and never reports ready before everything answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops.sandbox.cluster.processes import (
    alive,
    die_with_parent,
    free_port,
    kill_all,
    live_processes,
    open_log,
    terminate,
    wait_gone,
)

if TYPE_CHECKING:
    from modelops.sandbox.cluster.prometheus import PrometheusProcess
    from modelops.sandbox.cluster.runner import WorkloadRunner

logger = logging.getLogger(__name__)

Obj = dict[str, Any]

DEFAULT_DIR = Path(".modelops-sandbox")
READY_TIMEOUT = 60.0
COMPONENT_ORDER = ("apiserver", "operator", "prometheus", "runner", "endpoints", "proxy", "gateway")


class SandboxError(Exception):
    """A sandbox command failed in a way the user can act on (one line, names the component and log)."""


@dataclass(frozen=True)
class Layout:
    """Where the files of one sandbox directory live."""

    root: Path

    @property
    def state(self) -> Path:
        return self.root / "state.json"

    @property
    def pods(self) -> Path:
        return self.root / "pods.json"

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def workloads(self) -> Path:
        return self.root / "workloads"

    @property
    def prometheus(self) -> Path:
        return self.root / "prometheus"

    def log(self, component: str) -> Path:
        return self.logs / f"{component}.log"


def write_json(path: Path, data: Any) -> None:
    """Replace `path` atomically: readers never see half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
    os.replace(tmp, path)


def write_kubeconfig(path: Path, api_url: str) -> Path:
    """The sandbox kubeconfig (cluster, context, user all `sandbox`; plain http, no credentials),
    as `ApiServer.write_kubeconfig` writes it, without importing the server."""
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "sandbox", "cluster": {"server": api_url}}],
        "contexts": [{"name": "sandbox", "context": {"cluster": "sandbox", "user": "sandbox", "namespace": "default"}}],
        "current-context": "sandbox",
        "users": [{"name": "sandbox", "user": {}}],
        "preferences": {},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2))  # JSON is YAML: kubectl and our loader read it
    return path


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def read_state(layout: Layout) -> Obj | None:
    state = read_json(layout.state)
    return state if isinstance(state, dict) and isinstance(state.get("pid"), int) else None


def live_state(layout: Layout) -> Obj | None:
    """The state of a running supervisor in this directory; a stale state file (dead pid) is removed."""
    state = read_state(layout)
    if state is None:
        return None
    if alive(state["pid"]) and _is_supervisor(state["pid"], layout):
        return state
    clear_state(layout)
    return None


def _is_supervisor(pid: int, layout: Layout) -> bool:
    """The pid is still this directory's supervisor (not a recycled pid of something else)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"supervise" in argv and str(layout.root).encode() in argv


def clear_state(layout: Layout) -> None:
    for path in (layout.state, layout.pods):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def recorded_pids(layout: Layout, state: Obj | None) -> list[int]:
    """Every pid the sandbox in `layout` recorded: supervisor, children, pod processes."""
    pids: set[int] = set()
    if state:
        pids.add(int(state["pid"]))
        for comp in (state.get("components") or {}).values():
            if isinstance(comp.get("pid"), int):
                pids.add(comp["pid"])
    for pod in read_json(layout.pods) or []:
        if isinstance(pod, dict) and isinstance(pod.get("pid"), int):
            pids.add(pod["pid"])
    return sorted(pids)


# -- the control side: up and down (run in the user's shell) ------------------------------------


def start(
    layout: Layout,
    *,
    port: int = 0,
    scrape_interval: float = 2.0,
    cron_minute_seconds: float = 60.0,
    restart_backoff: float = 10.0,
    timeout: float = READY_TIMEOUT,
    env: dict[str, str] | None = None,
) -> Obj:
    """Start a detached supervisor for `layout` and return its state once everything is ready.

    Raises SandboxError (one line naming the failed component and its log) when it could not
    start; then nothing it started is left running.
    """
    layout.root.mkdir(parents=True, exist_ok=True)
    layout.logs.mkdir(exist_ok=True)
    clear_state(layout)
    read_fd, write_fd = os.pipe()
    argv = [
        sys.executable, "-m", "modelops.cli", "sandbox", "supervise", "--dir", str(layout.root),
        "--port", str(port), "--ready-fd", str(write_fd), "--scrape-interval", str(scrape_interval),
        "--cron-minute-seconds", str(cron_minute_seconds), "--restart-backoff", str(restart_backoff),
    ]  # fmt: skip
    log_path = layout.log("supervisor")
    with open_log(log_path) as log:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            pass_fds=(write_fd,),
            start_new_session=True,
            env={**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"},
            cwd=layout.root,
        )
    os.close(write_fd)
    try:
        line = _read_line(read_fd, timeout)
    finally:
        os.close(read_fd)
    verdict = _parse(line)
    if verdict is None or not verdict.get("ok"):
        _kill_session(proc.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)
        clear_state(layout)
        if verdict is None:
            code = proc.poll()
            how = f"exited with code {code}" if code is not None else f"was not ready within {timeout:.0f}s"
            raise SandboxError(f"sandbox supervisor {how}; see {log_path}")
        raise SandboxError(str(verdict.get("error")))
    state: Obj = verdict["state"]
    return state


def _read_line(fd: int, timeout: float) -> bytes:
    deadline = time.monotonic() + timeout
    data = b""
    while b"\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    return data


def _parse(line: bytes) -> Obj | None:
    try:
        verdict = json.loads(line.split(b"\n", 1)[0])
    except ValueError:
        return None
    return verdict if isinstance(verdict, dict) else None


def _kill_session(sid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(sid, signal.SIGKILL)


@dataclass(frozen=True)
class Stopped:
    """What `stop` did: stopped a live supervisor, and/or killed pod processes it had left behind."""

    supervisor: bool
    leftovers: tuple[int, ...] = ()

    @property
    def anything(self) -> bool:
        return self.supervisor or bool(self.leftovers)


def stop(layout: Layout, *, grace: float = 4.0) -> Stopped:
    """Stop the sandbox in `layout`: SIGTERM to the supervisor, then SIGKILL whatever is left.

    Afterwards no recorded process is alive, and no process of a pod of this directory either,
    even when the supervisor was already dead (a SIGKILLed supervisor takes its pods' main
    processes with it, not what those started without a parent-death signal of their own).
    """
    state = read_state(layout)
    if state is None or not alive(state["pid"]) or not _is_supervisor(state["pid"], layout):
        leftovers = kill_pod_leftovers(layout)
        clear_state(layout)
        return Stopped(supervisor=False, leftovers=tuple(leftovers))
    pid = int(state["pid"])
    pids = recorded_pids(layout, state)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    wait_gone([pid], grace)
    # whatever did not stop in time: the supervisor's session, each pod's own group, each pid
    _kill_session(pid)
    pids = sorted(set(pids) | set(recorded_pids(layout, read_state(layout))))
    _kill_groups([p for p in pids if alive(p)])
    leftovers = kill_pod_leftovers(layout)
    wait_gone(pids, 2.0)
    clear_state(layout)
    return Stopped(supervisor=True, leftovers=tuple(leftovers))


def _kill_groups(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if os.getpgid(pid) == pid:
                os.killpg(pid, signal.SIGKILL)
    kill_all(pids)


def pod_processes(layout: Layout) -> dict[int, int]:
    """Live processes of this directory's pods, pid -> process group.

    A pod's process is known by the TMPDIR the kubelet gives it (`DIR/workloads/pods/<ns>/<pod>/tmp`),
    which whatever it starts inherits. That finds them without `pods.json` (gone or not yet
    written) and never matches a recycled pid of an unrelated process.
    """
    marker = f"TMPDIR={layout.workloads}{os.sep}".encode()
    found: dict[int, int] = {}
    for pid, fields in live_processes():
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                environ = f.read().split(b"\0")
        except OSError:
            continue
        if any(v.startswith(marker) for v in environ):
            found[pid] = int(fields[2])  # its process group
    return found


def kill_pod_leftovers(layout: Layout, timeout: float = 2.0) -> list[int]:
    """SIGKILL every process group of this directory's pods (pods run in their own sessions, so the
    supervisor's session does not hold them); returns the pids that were alive."""
    found = {pid: group for pid, group in pod_processes(layout).items() if pid != os.getpid()}
    own = os.getpgrp()
    for group in sorted(set(found.values()) - {own}):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)
    kill_all(found)
    wait_gone(found, timeout)
    return sorted(found)


# -- the supervisor itself (`modelops sandbox supervise`, hidden) -------------------------------


class ChildProcess:
    """A child process of the supervisor: started with a parent-death signal, its output in a log."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path, cwd: Path) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_path
        self.cwd = cwd
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    async def start(self) -> None:
        with open_log(self.log_path) as log:
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv, stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log, env=self.env, cwd=self.cwd,
                preexec_fn=die_with_parent(),
            )  # fmt: skip
        logger.info("%s started, pid %d", self.name, self.proc.pid)

    async def stop(self, grace: float = 1.0) -> None:
        """SIGTERM, SIGKILL after `grace`: the operator keeps its state in status, a hard stop loses nothing."""
        proc = self.proc
        await terminate(proc, grace)


def _age_at(monotonic: float) -> float | None:
    """Seconds from this process's exec to the `time.monotonic()` value given (interpreter start and
    imports, before `run` could time anything); None where /proc has no start time."""
    try:
        with open("/proc/self/stat") as f:
            ticks = int(f.read().rpartition(")")[2].split()[19])  # field 22: starttime, in clock ticks since boot
    except (OSError, ValueError, IndexError):
        return None
    now_boot = time.clock_gettime(time.CLOCK_BOOTTIME)
    return round(now_boot - (time.monotonic() - monotonic) - ticks / os.sysconf("SC_CLK_TCK"), 2)


async def _http_ok(url: str, session: Any) -> bool:
    import aiohttp

    try:
        async with session.get(url) as resp:
            return bool(resp.status == 200)
    except (aiohttp.ClientError, TimeoutError, OSError):
        return False


class Supervisor:
    """Everything `sandbox up` runs, in this process's event loop, until SIGTERM / SIGINT."""

    def __init__(
        self,
        layout: Layout,
        *,
        api_port: int = 0,
        scrape_interval: float = 2.0,
        cron_minute_seconds: float = 60.0,
        restart_backoff: float = 10.0,
    ) -> None:
        self.layout = layout
        self.api_port = api_port
        self.scrape_interval = scrape_interval
        self.cron_minute_seconds = cron_minute_seconds
        self.restart_backoff = restart_backoff
        self.state: Obj = {}
        self._stop = asyncio.Event()
        self._stopping = False
        # what to stop: processes (runner's pods, operator, Prometheus) together first, then the loops
        self._processes: list[Callable[[], Awaitable[None]]] = []
        self._loops: list[Callable[[], Awaitable[None]]] = []
        self._operator: ChildProcess | None = None
        self._prometheus: PrometheusProcess | None = None
        self._runner: WorkloadRunner | None = None
        self._began = time.monotonic()

    def _ready(self, name: str) -> None:
        """Record when `name` answered: seconds since `run` began (the benchmark and `status` read them)."""
        self.state["components"][name]["readySeconds"] = round(time.monotonic() - self._began, 2)

    async def run(self, report: Callable[[Obj], None]) -> int:
        """Start everything, `report` the verdict once, serve until told to stop, stop everything."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        self._began = started = time.monotonic()
        try:
            await self._start_all()
        except SandboxError as exc:
            logger.error("%s", exc)
            await self._stop_all()
            report({"ok": False, "error": str(exc)})
            return 1
        except BaseException:
            await self._stop_all()
            raise
        self.state["readySeconds"] = round(time.monotonic() - started, 2)
        self.state["readyExcludingPrometheusSeconds"] = max(
            (
                c["readySeconds"]
                for n, c in self.state["components"].items()
                if n != "prometheus" and "readySeconds" in c
            ),
            default=None,
        )
        self.state["supervisorStartSeconds"] = _age_at(started)
        write_json(self.layout.state, self.state)
        report({"ok": True, "state": self.state})
        logger.info("sandbox ready in %.2fs", self.state["readySeconds"])
        pods_task = asyncio.create_task(self._record_pods())
        watch_task = asyncio.create_task(self._keep_children())
        await self._stop.wait()
        logger.info("stopping the sandbox")
        pods_task.cancel()
        watch_task.cancel()
        await self._stop_all()
        clear_state(self.layout)
        return 0

    async def _start_all(self) -> None:
        import aiohttp

        from modelops.images import ENV as IMAGE_ENV
        from modelops.images import operator_image
        from modelops.sandbox.cluster.prometheus import MISSING, PrometheusProcess, find_binary

        layout = self.layout
        image = operator_image()
        os.environ[IMAGE_ENV] = image  # the kubelet's pods and the operator see the same image
        os.environ.pop("MODELOPS_SANDBOX_PORT_MAP", None)
        supervisor_log = str(layout.log("supervisor"))
        self.state = {
            "pid": os.getpid(),
            "dir": str(layout.root),
            "started": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "kubeconfig": str(layout.kubeconfig),
            "image": image,
            "components": {},
        }
        components: dict[str, Obj] = self.state["components"]

        # 1. the API's socket and the kubeconfig first, so that the children (slow to import) start
        # before anything heavy here; their first requests wait in the socket's backlog meanwhile
        api_sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            api_sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            api_sock.bind(("127.0.0.1", self.api_port))
            api_sock.listen(512)
        except OSError as exc:
            api_sock.close()
            raise SandboxError(
                f"API server: cannot listen on 127.0.0.1:{self.api_port}: {exc.strerror or exc}; see {supervisor_log}"
            ) from None
        api_port = int(api_sock.getsockname()[1])
        api_url = f"http://127.0.0.1:{api_port}"
        write_kubeconfig(layout.kubeconfig, api_url)
        health_port, metrics_port = free_port(), free_port()

        # 2. the children: Prometheus and the operator (kopf retries until the API answers)
        binary = find_binary()
        prometheus: PrometheusProcess | None = None
        if binary is None:
            components["prometheus"] = {"pid": None, "url": None, "missing": MISSING}
        else:
            prometheus = PrometheusProcess(
                layout.prometheus, binary=binary, scrape_interval=self.scrape_interval,
                operator_target=f"127.0.0.1:{metrics_port}", log_path=layout.log("prometheus"),
            )  # fmt: skip
            await prometheus.start()
            self._prometheus = prometheus
            self._processes.append(prometheus.stop)
            components["prometheus"] = {"pid": prometheus.pid, "url": prometheus.url, "port": prometheus.port,
                                        "log": str(prometheus.log_path)}  # fmt: skip
        env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
        if prometheus is not None:
            env["MODELOPS_PROMETHEUS_URL"] = prometheus.url
        operator = ChildProcess(
            "operator",
            [sys.executable, "-m", "modelops.cli", "run", "--all-namespaces", "--kubeconfig", str(layout.kubeconfig),
             "--health-port", str(health_port), "--metrics-port", str(metrics_port), "--host", "127.0.0.1",
             "--allow-file-artifacts"],  # local files are the sandbox's artifact store
            env, layout.log("operator"), layout.root,
        )  # fmt: skip
        await operator.start()
        self._operator = operator
        self._processes.append(operator.stop)
        components["operator"] = {
            "pid": operator.pid,
            "url": f"http://127.0.0.1:{health_port}/healthz",
            "port": health_port,
            "metricsPort": metrics_port,
            "metrics": f"http://127.0.0.1:{metrics_port}/metrics",
            "log": str(operator.log_path),
        }

        # 3. the API server, with our CRDs (generated from the models: no crds/ on disk needed)
        from modelops.api import crdgen
        from modelops.sandbox import ApiError, ApiServer, load_crd_files
        from modelops.sandbox.cluster.gateway import GATEWAY_API_CRDS, gateway_class
        from modelops.sandbox.cluster.network import ClusterNetwork
        from modelops.sandbox.cluster.runner import WorkloadRunner

        api = ApiServer(port=api_port, sock=api_sock, pod_log_dir=layout.workloads / "pods")  # kubectl logs
        crd_res = api.store.lookup("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        try:
            for crd in [crdgen.crd(kind) for kind in crdgen.KINDS] + load_crd_files([GATEWAY_API_CRDS]):
                api.store.create(crd_res, None, crd)
            api.store.create(api.store.lookup("gateway.networking.k8s.io", "v1", "gatewayclasses"), None,
                             gateway_class())  # fmt: skip
            await api.start()
        except ApiError as exc:
            raise SandboxError(f"API server: cannot install CRDs: {exc.message}; see {supervisor_log}") from None
        except OSError as exc:
            raise SandboxError(
                f"API server: cannot listen on 127.0.0.1:{api_port}: {exc.strerror or exc}; see {supervisor_log}"
            ) from None
        self._loops.append(api.stop)
        components["apiserver"] = {"pid": os.getpid(), "url": api.url, "port": api.port, "log": supervisor_log}
        self._ready("apiserver")

        # 3. in this loop: runner (controllers + kubelet), endpoints, proxy, gateway, scrape targets
        runner = WorkloadRunner(
            api.url, layout.workloads, image,
            restart_backoff=self.restart_backoff, cron_minute_seconds=self.cron_minute_seconds,
        )  # fmt: skip
        network = ClusterNetwork(api.url)
        if prometheus is not None:
            network.pods.add_handler(prometheus.targets.on_pod)
        self._runner = runner
        try:
            await asyncio.wait_for(asyncio.gather(runner.start(), network.start()), 30)
        except TimeoutError:
            raise SandboxError(f"workload runner: caches not synced within 30s; see {supervisor_log}") from None
        finally:
            self._processes.append(runner.stop)
            self._loops.append(network.stop)
        for name in ("runner", "proxy", "gateway", "endpoints"):
            components[name] = {"pid": os.getpid(), "url": None, "log": supervisor_log}
            self._ready(name)  # their caches are synced: they act on the next event

        # 4. ready: the operator's /healthz and Prometheus' /-/ready answer 200
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + READY_TIMEOUT - 5
            waiting = {"operator"} | ({"prometheus"} if prometheus is not None else set())
            while waiting:
                assert operator.proc is not None
                if operator.proc.returncode is not None:
                    raise SandboxError(
                        f"operator exited with code {operator.proc.returncode} before it was ready; "
                        f"see {operator.log_path}"
                    )
                if prometheus is not None and prometheus.proc is not None and prometheus.proc.returncode is not None:
                    raise SandboxError(
                        f"prometheus exited with code {prometheus.proc.returncode} before it was ready; "
                        f"see {prometheus.log_path}"
                    )
                if "operator" in waiting and await _http_ok(components["operator"]["url"], session):
                    waiting.discard("operator")
                    self._ready("operator")
                if "prometheus" in waiting and await _http_ok(f"{components['prometheus']['url']}/-/ready", session):
                    waiting.discard("prometheus")
                    self._ready("prometheus")
                if waiting and loop.time() > deadline:
                    name = sorted(waiting)[0]
                    raise SandboxError(f"{name} not ready in time; see {components[name]['log']}")
                if waiting:
                    await asyncio.sleep(0.05)

    async def _stop_all(self) -> None:
        """Processes first, together (each waits on its own), then the loops in reverse order of start."""
        self._stopping = True
        processes, self._processes = self._processes, []
        loops, self._loops = self._loops, []
        for result in await asyncio.gather(*(stop() for stop in processes), return_exceptions=True):
            if isinstance(result, BaseException):
                logger.warning("stopping: %r", result)
        for stop in reversed(loops):
            try:
                await stop()
            except Exception:
                logger.exception("stopping failed")

    async def _record_pods(self) -> None:
        """pods.json: every pod with its process (pid, kubectl-like state), for `status` and `down`."""
        last = None
        while self._runner is not None:
            rows = [
                {"namespace": p.namespace, "name": p.name, "pid": p.pid, "state": p.state} for p in self._runner.pods()
            ]
            if rows != last:
                write_json(self.layout.pods, rows)
                last = rows
            await asyncio.sleep(1.0)

    async def _keep_children(self) -> None:
        """A child that exits after `up` is restarted with back-off, as a Deployment's pod would be."""
        children = [c for c in (self._operator,) if c is not None]
        prometheus = self._prometheus
        delays: dict[str, float] = {}
        while True:
            await asyncio.sleep(1.0)
            for child in children:
                if child.proc is not None and child.proc.returncode is not None and not self._stopping:
                    delay = delays.get(child.name, 1.0)
                    logger.warning("%s exited with code %s; restarting in %.0fs", child.name,
                                   child.proc.returncode, delay)  # fmt: skip
                    await asyncio.sleep(delay)
                    delays[child.name] = min(delay * 2, 30.0)
                    await child.start()
                    self.state["components"][child.name]["pid"] = child.pid
                    write_json(self.layout.state, self.state)
            if prometheus is not None and prometheus.proc is not None and prometheus.proc.returncode is not None:
                delay = delays.get("prometheus", 1.0)
                logger.warning("prometheus exited with code %s; restarting in %.0fs", prometheus.proc.returncode, delay)
                await asyncio.sleep(delay)
                delays["prometheus"] = min(delay * 2, 30.0)
                await prometheus.start()
                self.state["components"]["prometheus"]["pid"] = prometheus.pid
                write_json(self.layout.state, self.state)


def supervise(
    layout: Layout,
    ready_fd: int | None,
    *,
    api_port: int = 0,
    scrape_interval: float = 2.0,
    cron_minute_seconds: float = 60.0,
    restart_backoff: float = 10.0,
) -> int:
    """The body of the hidden `modelops sandbox supervise`: run until SIGTERM, report readiness on `ready_fd`."""
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)

    def report(verdict: Obj) -> None:
        if ready_fd is None:
            print(json.dumps(verdict), flush=True)
            return
        with contextlib.suppress(OSError):
            os.write(ready_fd, (json.dumps(verdict) + "\n").encode())
            os.close(ready_fd)

    supervisor = Supervisor(
        layout, api_port=api_port, scrape_interval=scrape_interval, cron_minute_seconds=cron_minute_seconds,
        restart_backoff=restart_backoff,
    )  # fmt: skip
    try:
        return asyncio.run(supervisor.run(report))
    except Exception as exc:  # anything unforeseen: one line to `up`, the traceback to the log
        logger.exception("sandbox supervisor failed")
        report({"ok": False, "error": f"sandbox supervisor failed: {exc!r}; see {layout.log('supervisor')}"})
        return 1


# -- status ------------------------------------------------------------------------------------


def _api_list(api_url: str, path: str) -> list[Obj]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(api_url + path, timeout=5) as resp:
            return list(json.load(resp).get("items") or [])
    except (urllib.error.URLError, OSError, ValueError):
        return []


def _local_ports(obj: Obj) -> dict[str, int]:
    raw = ((obj.get("metadata") or {}).get("annotations") or {}).get("sandbox.modelops.dev/local-ports")
    try:
        return {str(k): int(v) for k, v in json.loads(raw or "{}").items()}
    except (ValueError, TypeError, AttributeError):
        return {}


def status_report(layout: Layout) -> Obj | None:
    """What `sandbox status` shows: components, Services and Gateways with local URLs, pods and processes.

    None when nothing runs in the directory.
    """
    state = live_state(layout)
    if state is None:
        return None
    components = []
    recorded = state.get("components") or {}
    for name in sorted(recorded, key=lambda n: (COMPONENT_ORDER.index(n) if n in COMPONENT_ORDER else 99, n)):
        comp = recorded[name]
        pid = comp.get("pid")
        entry = {"name": name, "pid": pid, "url": comp.get("url"), "alive": bool(pid) and alive(int(pid)),
                 "log": comp.get("log"), "readySeconds": comp.get("readySeconds")}  # fmt: skip
        if comp.get("missing"):
            entry["note"] = comp["missing"]
        components.append(entry)
    api_url = str((state.get("components") or {}).get("apiserver", {}).get("url") or "")
    services = []
    for svc in _api_list(api_url, "/api/v1/services"):
        meta, local = svc.get("metadata") or {}, _local_ports(svc)
        ports = [
            {"name": p.get("name") or "", "port": p.get("port"),
             "url": f"http://127.0.0.1:{local[str(p.get('port'))]}" if str(p.get("port")) in local else None}
            for p in (svc.get("spec") or {}).get("ports") or []
        ]  # fmt: skip
        services.append({"namespace": meta.get("namespace"), "name": meta.get("name"), "ports": ports})
    gateways = []
    for gw in _api_list(api_url, "/apis/gateway.networking.k8s.io/v1/gateways"):
        meta, local = gw.get("metadata") or {}, _local_ports(gw)
        listeners = [
            {"name": lst.get("name"), "port": lst.get("port"),
             "url": f"http://127.0.0.1:{local[str(lst.get('port'))]}" if str(lst.get("port")) in local else None}
            for lst in (gw.get("spec") or {}).get("listeners") or []
        ]  # fmt: skip
        gateways.append({"namespace": meta.get("namespace"), "name": meta.get("name"), "listeners": listeners})
    processes = {(p.get("namespace"), p.get("name")): p for p in read_json(layout.pods) or [] if isinstance(p, dict)}
    pods = []
    for pod in _api_list(api_url, "/api/v1/pods"):
        meta, status = pod.get("metadata") or {}, pod.get("status") or {}
        containers = status.get("containerStatuses") or []
        total = len((pod.get("spec") or {}).get("containers") or [])
        proc = processes.get((meta.get("namespace"), meta.get("name"))) or {}
        pid = proc.get("pid")
        pods.append({
            "namespace": meta.get("namespace"),
            "name": meta.get("name"),
            "phase": status.get("phase") or "Pending",
            "ready": f"{sum(1 for c in containers if c.get('ready'))}/{total}",
            "restarts": sum(int(c.get("restartCount") or 0) for c in containers),
            "state": proc.get("state") or status.get("phase") or "Pending",
            "pid": pid if isinstance(pid, int) and alive(pid) else None,
        })  # fmt: skip
    return {
        "dir": state.get("dir"),
        "pid": state["pid"],
        "started": state.get("started"),
        "kubeconfig": state.get("kubeconfig"),
        # seconds from the supervisor's start (after its imports, `supervisorStartSeconds`) to ready
        "readySeconds": state.get("readySeconds"),
        "readyExcludingPrometheusSeconds": state.get("readyExcludingPrometheusSeconds"),
        "supervisorStartSeconds": state.get("supervisorStartSeconds"),
        "components": components,
        "services": services,
        "gateways": gateways,
        "pods": pods,
    }


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def format_status(report: Obj) -> str:
    out = [f"sandbox in {report['dir']} (supervisor pid {report['pid']}, started {report['started']})",
           f"export KUBECONFIG={report['kubeconfig']}", ""]  # fmt: skip
    rows = [["COMPONENT", "PID", "STATE", "READY", "URL"]]
    for c in report["components"]:
        state = "alive" if c["alive"] else ("missing" if c.get("note") else "dead")
        ready = f"{c['readySeconds']:.2f}s" if isinstance(c.get("readySeconds"), int | float) else "-"
        rows.append([c["name"], str(c["pid"] or "-"), state, ready, c["url"] or "-"])
    out.append(_table(rows))
    if isinstance(report.get("readySeconds"), int | float):
        out.append(
            f"ready {report['readySeconds']:.2f}s after the supervisor's imports "
            f"({report.get('supervisorStartSeconds')}s), {report.get('readyExcludingPrometheusSeconds')}s "
            "without waiting for Prometheus"
        )
    notes = [c["note"] for c in report["components"] if c.get("note")]
    out += notes
    rows = [["SERVICE", "PORT", "LOCAL URL"]]
    for s in report["services"]:
        for p in s["ports"] or [{"port": "-", "url": None}]:
            rows.append([f"{s['namespace']}/{s['name']}", str(p["port"]), p["url"] or "-"])
    for g in report["gateways"]:
        for lst in g["listeners"]:
            rows.append([f"gateway {g['namespace']}/{g['name']}", str(lst["port"]), lst["url"] or "-"])
    out += ["", _table(rows) if len(rows) > 1 else "no services"]
    rows = [["POD", "PHASE", "READY", "RESTARTS", "PROCESS"]]
    for p in report["pods"]:
        process = f"{p['state']} (pid {p['pid']})" if p["pid"] else p["state"]
        rows.append([f"{p['namespace']}/{p['name']}", p["phase"], p["ready"], str(p["restarts"]), process])
    out += ["", _table(rows) if len(rows) > 1 else "no pods"]
    return "\n".join(out)
