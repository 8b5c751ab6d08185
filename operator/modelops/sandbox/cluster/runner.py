"""The workload runner: kube-controller-manager (Deployments, ReplicaSets, Jobs, CronJobs) and a kubelet.

Everything goes through the API server's HTTP API, as on a cluster: informers (list + watch) feed
each controller's work queue; the kubelet runs pods of the project's image as local processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from pathlib import Path
from types import TracebackType
from typing import NamedTuple

from modelops.sandbox.cluster import kube as k
from modelops.sandbox.cluster.cronjobs import CronJobController
from modelops.sandbox.cluster.deployments import DeploymentController, ReplicaSetController
from modelops.sandbox.cluster.jobs import JobController
from modelops.sandbox.cluster.kube import Controller, Informer, Kube
from modelops.sandbox.cluster.kubelet import Kubelet
from modelops.sandbox.server import serve_until_stopped

logger = logging.getLogger(__name__)


class PodProcess(NamedTuple):
    """One pod as `modelops sandbox status` shows it: pid of its first running container, if any."""

    namespace: str
    name: str
    pid: int | None
    state: str


class WorkloadRunner:
    """Runs Deployments, ReplicaSets, Jobs, CronJobs and the pods of `image` against the API at `api_url`.

    `state_dir` holds pod directories (`pods/<ns>/<pod>/`: logs, volumes, kubeconfig, HOME, TMPDIR)
    and persistent volume claims (`pvcs/<ns>/<claim>/`). `restart_backoff` is the kubelet's first
    crash-loop back-off (10 s on a cluster, doubling to 300 s) and the Job controller's first back-off
    between failed pods; `cron_minute_seconds` is how many real seconds one cron minute lasts (60:
    real time; smaller runs CronJobs faster through the same path); `probe_period` is how often a
    readiness probe runs until the container is first Ready (then its own `periodSeconds`).
    """

    def __init__(
        self,
        api_url: str,
        state_dir: Path,
        image: str,
        *,
        restart_backoff: float = 10.0,
        cron_minute_seconds: float = 60.0,
        probe_period: float = 1.0,
        token: str | None = None,
    ) -> None:
        if cron_minute_seconds <= 0:
            raise ValueError(f"cron_minute_seconds must be positive, got {cron_minute_seconds}")
        if restart_backoff < 0:
            raise ValueError(f"restart_backoff must not be negative, got {restart_backoff}")
        self.api_url = api_url
        self.state_dir = Path(state_dir)
        self.image = image
        self.restart_backoff = restart_backoff
        self.cron_minute_seconds = cron_minute_seconds
        self.probe_period = probe_period
        self.kube = Kube(api_url, token)
        self.informers: dict[str, Informer] = {}
        self.controllers: list[Controller] = []
        self._kubelet: Kubelet | None = None
        self._started = False

    async def start(self) -> None:
        """Sync the caches, then start the controllers and the kubelet; returns once they run."""
        if self._started:
            return
        self._started = True
        self.state_dir.mkdir(parents=True, exist_ok=True)
        for res in (k.PODS, k.REPLICASETS, k.DEPLOYMENTS, k.JOBS, k.CRONJOBS):
            self.informers[res.plural] = Informer(self.kube, res)
        kubelet = Kubelet(
            self.kube,
            self.informers["pods"],
            self.state_dir,
            self.image,
            api_url=self.api_url,
            restart_backoff=self.restart_backoff,
            probe_period=self.probe_period,
        )
        self._kubelet = kubelet
        self.controllers = [
            DeploymentController(self.kube, self.informers),
            ReplicaSetController(self.kube, self.informers),
            JobController(self.kube, self.informers, backoff=self.restart_backoff),
            CronJobController(self.kube, self.informers, minute_seconds=self.cron_minute_seconds),
        ]
        await asyncio.gather(*(inf.start() for inf in self.informers.values()))
        for controller in self.controllers:
            controller.start()
        kubelet.start()
        logger.info("workload runner started (image %s, state %s)", self.image, self.state_dir)

    async def stop(self) -> None:
        """Stop every process started (SIGTERM, SIGKILL after the grace period, capped), then the loops."""
        for controller in self.controllers:
            await controller.stop()
        if self._kubelet is not None:
            await self._kubelet.stop()
        for informer in self.informers.values():
            await informer.stop()
        await self.kube.close()
        self._started = False

    def pods(self) -> list[PodProcess]:
        """Every pod the kubelet knows of, with the pid of its main process and a kubectl-like state."""
        if self._kubelet is None:
            return []
        return [PodProcess(*row) for row in self._kubelet.pod_table()]

    def pids(self) -> list[int]:
        """Every process id this runner ever started (for tests proving none is left)."""
        return self._kubelet.all_pids() if self._kubelet is not None else []

    async def __aenter__(self) -> WorkloadRunner:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


class RunnerThread:
    """A WorkloadRunner in its own event loop on a thread, for synchronous callers (tests, scripts).

    Child processes get a parent-death signal bound to this thread: they die if it ends without `stop`.
    """

    def __init__(
        self,
        api_url: str,
        state_dir: Path,
        image: str,
        *,
        restart_backoff: float = 10.0,
        cron_minute_seconds: float = 60.0,
        probe_period: float = 1.0,
    ) -> None:
        self.runner = WorkloadRunner(
            api_url,
            state_dir,
            image,
            restart_backoff=restart_backoff,
            cron_minute_seconds=cron_minute_seconds,
            probe_period=probe_period,
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self) -> RunnerThread:
        self._thread = threading.Thread(target=self._run, name="modelops-sandbox-runner", daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("workload runner did not start within 30 s")
        if self._error is not None:
            raise self._error
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self.runner.start())
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        serve_until_stopped(loop, self.runner.stop)

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(30)

    def __enter__(self) -> RunnerThread:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        with contextlib.suppress(Exception):
            self.stop()
