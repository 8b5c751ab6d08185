"""Process lifecycle of ``modelops serve``: digest first, load, serve, drain, flush, exit.

One worker: a single process binds the port at once (live, not ready), verifies the artifact's
digest, loads the model in a thread, then reports ready. ``--workers N``: a supervisor verifies
the digest once, then starts N processes that each bind the same port with SO_REUSEPORT, so the
kernel spreads connections across them (a shared listening socket lets long-lived connections
pile onto one process). They share one block of memory for metrics and readiness flags, and
each gets SIGTERM from the kernel if the supervisor dies, even SIGKILLed (Linux parent-death signal).

SIGTERM/SIGINT: readiness goes false everywhere first, the server keeps answering for
``shutdown_delay`` seconds (endpoints drain out of Services), stops accepting, lets in-flight
requests finish, flushes the prediction log, and exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import logging
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import socket
import sys
import tempfile
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from aiohttp import web

from modelops.artifacts import ArtifactUnreachable, DigestMismatch, local_path, open_uri, verify
from modelops.hostports import host_port
from modelops.server.app import ServerState, build_app, build_metrics_app
from modelops.server.frameworks import Model, guess_framework, resolve
from modelops.server.metrics import PREDICTION_BUCKETS, Layout, Slots
from modelops.server.predlog import PredictionLog, PredictionLogConfig, replica_name

log = logging.getLogger("modelops.serve")

EXIT_DIGEST_MISMATCH = 3
EXIT_UNREACHABLE = 4
EXIT_LOAD_FAILED = 5
EXIT_WORKER_DIED = 6
EXIT_BIND_FAILED = 7
PR_SET_PDEATHSIG = 1  # linux/prctl.h


@dataclass(frozen=True)
class ServeConfig:
    """Everything ``modelops serve`` takes; picklable, so workers get it as is."""

    model_uri: str
    digest: str
    name: str
    version: str
    track: Literal["stable", "canary"] = "stable"
    deployment: str | None = None
    host: str = "0.0.0.0"
    port: int = 8080
    metrics_port: int | None = None
    framework: str | None = None
    artifact_format: str | None = None
    workers: int = 1
    max_body_bytes: int = 10 * 1024 * 1024
    prediction_log: str | None = None
    prediction_log_sample_rate: float = 1.0
    prediction_log_format: Literal["jsonl", "parquet"] = "jsonl"
    prediction_log_rotate_rows: int = 10_000
    prediction_log_rotate_seconds: float = 60.0
    prediction_buckets: tuple[float, ...] = PREDICTION_BUCKETS
    shutdown_delay: float = 3.0
    shutdown_timeout: float = 25.0
    feature_names: tuple[str, ...] = field(default_factory=tuple)

    @property
    def layout(self) -> Layout:
        return Layout(prediction_buckets=self.prediction_buckets)


class Artifact:
    """A digest-verified local copy: remote bytes are downloaded once and the copy is hashed,
    so the bytes loaded are exactly the bytes verified."""

    def __init__(self, path: Path, tmpdir: Path | None) -> None:
        self.path = path
        self._tmpdir = tmpdir

    def cleanup(self) -> None:
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)


def fetch_verified(uri: str, digest: str) -> Artifact:
    """Raise DigestMismatch/ArtifactUnreachable; never return unverified bytes."""
    path = local_path(uri)
    if path is not None:
        verify(str(path), digest)
        return Artifact(path, None)
    tmpdir = Path(tempfile.mkdtemp(prefix="modelops-artifact-"))
    name = Path(urllib.parse.urlparse(uri).path).name or "model"
    target = tmpdir / name
    try:
        with open_uri(uri) as src, target.open("wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        verify(str(target), digest)
    except BaseException:
        shutil.rmtree(tmpdir, ignore_errors=True)
        raise
    return Artifact(target, tmpdir)


def load_model(config: ServeConfig, path: Path) -> Model:
    cls = resolve(config.framework or guess_framework(config.model_uri, config.artifact_format))
    model = cls()
    model.load(path)
    return model


def bind(host: str, port: int, reuse_port: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, host_port(port)))
    sock.setblocking(False)
    return sock


def _event_loop_runner() -> asyncio.Runner:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is in the serve extra
        return asyncio.Runner()
    return asyncio.Runner(loop_factory=uvloop.new_event_loop)


class Worker:
    """One serving process (or the only one)."""

    def __init__(self, config: ServeConfig, slots: Slots, index: int, verified_path: Path | None) -> None:
        self.config = config
        self.index = index
        self.verified_path = verified_path
        self.state = ServerState(
            name=config.name,
            version=config.version,
            track=config.track,
            deployment=config.deployment,
            slots=slots,
            worker=index,
            max_body_bytes=config.max_body_bytes,
        )
        self.exit_code = 0

    def _prepare(self) -> Model:
        """Digest first (unless the supervisor already did it), then load: runs in a thread."""
        artifact: Artifact | None = None
        path = self.verified_path
        if path is None:
            log.info("verifying %s against %s", self.config.model_uri, self.config.digest)
            artifact = fetch_verified(self.config.model_uri, self.config.digest)
            log.info("digest verified: %s", self.config.digest)
            path = artifact.path
        try:
            return load_model(self.config, path)
        finally:
            if artifact is not None:
                artifact.cleanup()

    def _start_log(self, model: Model) -> None:
        c = self.config
        if not c.prediction_log:
            return
        features = dict(model.signature().feature_names)
        if c.feature_names and len(model.signature().inputs) == 1:
            features[model.signature().inputs[0].name] = list(c.feature_names)
        metrics = self.state.metrics
        predlog = PredictionLog(
            PredictionLogConfig(
                target=c.prediction_log,
                sample_rate=c.prediction_log_sample_rate,
                format=c.prediction_log_format,
                rotate_rows=c.prediction_log_rotate_rows,
                rotate_seconds=c.prediction_log_rotate_seconds,
                replica=replica_name(self.index),
            ),
            self.state.labels,
            features,
            on_rows=metrics.log_rows,
        )
        predlog.start()
        self.state.predlog = predlog

    async def run(self) -> int:
        c = self.config
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        separate_metrics = c.metrics_port is not None and c.metrics_port != c.port
        runner = web.AppRunner(
            build_app(self.state, with_metrics=not separate_metrics),
            access_log=None,
            shutdown_timeout=c.shutdown_timeout,
        )
        await runner.setup()
        try:
            sock = bind(c.host, c.port, reuse_port=c.workers > 1)
        except OSError as exc:
            log.error("cannot listen on %s:%d (--port): %s", c.host, c.port, exc.strerror or exc)
            await runner.cleanup()
            return EXIT_BIND_FAILED
        await web.SockSite(runner, sock, backlog=1024).start()
        metrics_runner: web.AppRunner | None = None
        if separate_metrics and self.index == 0 and c.metrics_port is not None:
            metrics_runner = web.AppRunner(build_metrics_app(self.state), access_log=None)
            await metrics_runner.setup()
            try:
                await web.TCPSite(metrics_runner, c.host, host_port(c.metrics_port)).start()
            except OSError as exc:
                log.error("cannot listen on %s:%d (--metrics-port): %s", c.host, c.metrics_port, exc.strerror or exc)
                await metrics_runner.cleanup()
                await runner.cleanup()
                return EXIT_BIND_FAILED
        log.info("worker %d listening on %s:%d (live, not ready)", self.index, c.host, sock.getsockname()[1])

        loading = loop.run_in_executor(None, self._prepare)
        stopping = asyncio.ensure_future(stop.wait())
        pending: list[asyncio.Future[Any]] = [loading, stopping]
        await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        if loading.done():
            code = self._loaded(loading)
            if code:
                stopping.cancel()
                await self._close(runner, metrics_runner)
                return code
            await stopping
        else:
            loading.cancel()  # the thread finishes on its own; the model is never published
        log.info("worker %d: shutting down: not ready; draining for %.1fs", self.index, c.shutdown_delay)
        self.state.start_draining()
        await asyncio.sleep(c.shutdown_delay)
        await self._close(runner, metrics_runner)
        log.info("worker %d: stopped", self.index)
        return 0

    def _loaded(self, loading: asyncio.Future[Model]) -> int:
        exc = loading.exception()
        if isinstance(exc, DigestMismatch):
            log.error(
                "REFUSING TO SERVE %s: %s; the artifact's bytes are not the registered model",
                self.config.model_uri,
                exc,
            )
            return EXIT_DIGEST_MISMATCH
        if isinstance(exc, ArtifactUnreachable):
            log.error("cannot read the model artifact: %s", exc)
            return EXIT_UNREACHABLE
        if exc is not None:
            log.error("cannot load the model: %s: %s", type(exc).__name__, exc)
            return EXIT_LOAD_FAILED
        model = loading.result()
        self._start_log(model)
        # Everything alive now (modules, the model) lives as long as the process: move it out of
        # the cyclic collector's sight, so collections on the request path only scan new objects.
        gc.collect()
        gc.freeze()
        self.state.set_model(model)
        log.info(
            "worker %d: model %s version %s (%s, track %s) loaded: ready",
            self.index,
            self.config.name,
            self.config.version,
            model.platform,
            self.config.track,
        )
        return 0

    async def _close(self, runner: web.AppRunner, metrics_runner: web.AppRunner | None) -> None:
        # Stops accepting, waits for in-flight handlers (up to shutdown_timeout), closes connections.
        await runner.cleanup()
        if self.state.predlog is not None:
            self.state.predlog.close()
            log.info("worker %d: prediction log flushed (%d files)", self.index, len(self.state.predlog.files))
        if metrics_runner is not None:
            await metrics_runner.cleanup()


def _stop_with_supervisor(supervisor: int) -> None:
    """SIGTERM this worker when the supervisor dies (Linux prctl): a SIGKILLed supervisor forwards
    nothing, and outside a container's cgroup nothing else would stop its workers. SIGTERM, not
    SIGKILL, so the worker drains and flushes its prediction log as on any stop."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM))
    if os.getppid() != supervisor:  # it died before the request took effect
        log.error("the supervisor (pid %d) is gone: not starting", supervisor)
        sys.exit(EXIT_WORKER_DIED)


def _worker_main(config: ServeConfig, index: int, shared: Any, verified_path: str, supervisor: int) -> None:
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s %(levelname)s modelops.serve[w{index}]: %(message)s")
    _stop_with_supervisor(supervisor)
    slots = Slots(memoryview(shared), config.workers, config.layout)
    with _event_loop_runner() as runner:
        code = runner.run(Worker(config, slots, index, Path(verified_path)).run())
    sys.exit(code)


def serve(config: ServeConfig) -> int:
    """Run until SIGTERM; the exit code tells why it stopped."""
    if config.workers <= 1:
        slots = Slots.local(config.layout)
        with _event_loop_runner() as runner:
            return runner.run(Worker(config, slots, 0, None).run())
    return _supervise(config)


def _supervise(config: ServeConfig) -> int:
    log.info("verifying %s against %s", config.model_uri, config.digest)
    try:
        artifact = fetch_verified(config.model_uri, config.digest)
    except DigestMismatch as exc:
        log.error("REFUSING TO SERVE %s: %s; the artifact's bytes are not the registered model", config.model_uri, exc)
        return EXIT_DIGEST_MISMATCH
    except ArtifactUnreachable as exc:
        log.error("cannot read the model artifact: %s", exc)
        return EXIT_UNREACHABLE
    log.info("digest verified: %s; starting %d workers", config.digest, config.workers)
    ctx = multiprocessing.get_context("spawn")
    shared = ctx.RawArray("d", Slots.nbytes(config.workers, config.layout) // 8)
    slots = Slots(memoryview(shared), config.workers, config.layout)
    procs = [
        ctx.Process(
            target=_worker_main,
            args=(config, k, shared, str(artifact.path), os.getpid()),
            name=f"modelops-serve-w{k}",
            daemon=False,
        )
        for k in range(config.workers)
    ]
    stopping = False

    def on_signal(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True
        slots.set_draining()  # readiness false in every worker before anything else
        for p in procs:
            if p.pid is not None and p.is_alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        for p in procs:
            p.start()
        code = 0
        alive = list(procs)
        while alive:
            multiprocessing.connection.wait([p.sentinel for p in alive])
            for p in [p for p in alive if not p.is_alive()]:
                alive.remove(p)
                if p.exitcode and not stopping:
                    log.error("%s exited with %s: stopping the others", p.name, p.exitcode)
                    code = p.exitcode if p.exitcode > 0 else EXIT_WORKER_DIED
                    on_signal(signal.SIGTERM, None)
                elif p.exitcode and p.exitcode > 0:  # killed by our own SIGTERM before it could drain: not an error
                    code = code or p.exitcode
        return code
    finally:
        artifact.cleanup()
