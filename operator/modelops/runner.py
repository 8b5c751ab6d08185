"""Run the kopf operator: handler registry, settings, login, metrics and health endpoints.

Used by `modelops run` (its own process) and by the demo and tests (a thread with its own loop).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import kopf
from prometheus_client import start_http_server

from modelops.artifact_verifier import FetchSettings, Verifier
from modelops.core.artifact_policy import ArtifactPolicy
from modelops.handlers import driftmonitor, modeldeployment, modelpolicy, modelversion
from modelops.hostports import host_port
from modelops.k8s.analysis import set_default_prometheus_url
from modelops.k8s.client import OPERATOR_USER_AGENT, load_api_client
from modelops.k8s.resources import CustomObjects
from modelops.leader import LeaderElectionConfig, host_identity, run_elected
from modelops.telemetry import LEADER, REGISTRY

log = logging.getLogger(__name__)


@dataclass
class OperatorConfig:
    namespaces: Sequence[str] = ()
    clusterwide: bool = False
    kubeconfig: str | None = None
    health_port: int | None = 8081
    metrics_port: int | None = 8083
    host: str = "0.0.0.0"
    prometheus_url: str | None = None
    """Canary analysis's default Prometheus; None: env MODELOPS_PROMETHEUS_URL at each use."""
    artifact_policy: ArtifactPolicy = field(default_factory=ArtifactPolicy)
    """Which artifact URIs the operator may read. The default is a cluster's: no file://."""
    artifact_fetch: FetchSettings = field(default_factory=FetchSettings)
    """Timeouts and concurrency of artifact reads."""
    api_timeout: float = 30.0
    """Seconds each request to the Kubernetes API may wait for an answer (watches excepted), the
    handlers' and kopf's; then it fails and is retried."""
    leader_election: LeaderElectionConfig | None = None
    """Run the handlers only while holding this Lease (modelops.leader); None: standalone, always act."""


def connection_info(kubeconfig: str | None) -> kopf.ConnectionInfo:
    """kopf's credentials from the same loader the CLI uses (kopf's own reads $KUBECONFIG at import)."""
    c = load_api_client(kubeconfig).configuration
    bearer = c.get_api_key_with_prefix("BearerToken") or c.get_api_key_with_prefix("authorization") or ""
    scheme, _, token = bearer.partition(" ")
    return kopf.ConnectionInfo(
        server=c.host,
        ca_path=c.ssl_ca_cert or None,
        insecure=not c.verify_ssl,
        username=c.username or None,
        password=c.password or None,
        scheme=scheme or None,
        token=token or None,
        certificate_path=c.cert_file or None,
        private_key_path=c.key_file or None,
    )


def build_registry(api_factory: Callable[[], CustomObjects], verifier: Verifier | None = None) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    modelversion.register(registry, api_factory, verifier or Verifier())
    modeldeployment.register(registry, api_factory)
    driftmonitor.register(registry, api_factory)
    modelpolicy.register(registry, api_factory)
    return registry


class RetriesAtWarning(logging.Filter):
    """kopf logs each TemporaryError, a retry it schedules, at ERROR (and posts an Error Event).

    Ours are routine (an artifact not reachable yet, a write conflict, a target not there yet) and
    retried with backoff, so they are WARNING; a retry that gives up ("... but will ...") stays ERROR.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.msg if isinstance(record.msg, str) else ""
        if record.levelno == logging.ERROR and " failed temporarily: " in msg and " but will " not in msg:
            record.levelno, record.levelname = logging.WARNING, logging.getLevelName(logging.WARNING)
        return True


def quiet_routine_retries() -> None:
    """Install RetriesAtWarning on kopf's per-object logger (once)."""
    logger = logging.getLogger("kopf.objects")
    if not any(isinstance(f, RetriesAtWarning) for f in logger.filters):
        logger.addFilter(RetriesAtWarning())


def build_settings(api_timeout: float = 30.0) -> kopf.OperatorSettings:
    """Progress in annotations (our status schema is ours alone), modest retries, quiet watches,
    and no request to the API server waiting longer than ``api_timeout`` (kopf's default: 5 min)."""
    settings = kopf.OperatorSettings()
    settings.networking.request_timeout = api_timeout
    settings.networking.connect_timeout = min(api_timeout, 10.0)
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="modelops.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="modelops.dev", key="last-handled-configuration"
    )
    settings.persistence.finalizer = "modelops.dev/finalizer"
    settings.posting.level = logging.INFO
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.execution.max_workers = 8
    settings.batching.error_delays = (1, 2, 5, 10, 30, 60)
    return settings


async def run_operator(
    cfg: OperatorConfig,
    stop_flag: asyncio.Event | threading.Event | None = None,
    ready_flag: asyncio.Event | threading.Event | None = None,
) -> None:
    """Run until ``stop_flag`` is set (or forever)."""
    shared: dict[str, CustomObjects] = {}

    def api_factory() -> CustomObjects:
        if "api" not in shared:
            api = load_api_client(cfg.kubeconfig, user_agent=OPERATOR_USER_AGENT, request_timeout=cfg.api_timeout)
            shared["api"] = CustomObjects(api)
        return shared["api"]

    verifier = Verifier(cfg.artifact_policy, cfg.artifact_fetch)
    log.info("artifact policy: %s", cfg.artifact_policy.describe())
    registry = build_registry(api_factory, verifier)
    quiet_routine_retries()
    if cfg.prometheus_url:
        set_default_prometheus_url(cfg.prometheus_url)

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return connection_info(cfg.kubeconfig)

    if cfg.metrics_port is not None:
        start_http_server(host_port(cfg.metrics_port), addr=cfg.host, registry=REGISTRY)
        log.info("metrics on http://%s:%d/metrics", cfg.host, cfg.metrics_port)
    if cfg.leader_election is not None:
        await _run_elected(cfg, cfg.leader_election, registry, verifier, stop_flag, ready_flag)
        return
    LEADER.labels(host_identity()).set(1)
    liveness = f"http://{cfg.host}:{host_port(cfg.health_port)}/healthz" if cfg.health_port is not None else None
    try:
        await kopf.operator(
            registry=registry,
            settings=build_settings(cfg.api_timeout),
            standalone=True,
            clusterwide=cfg.clusterwide,
            namespaces=list(cfg.namespaces),
            liveness_endpoint=liveness,
            stop_flag=stop_flag,
            ready_flag=ready_flag,
        )
    finally:
        await verifier.close()


async def _run_elected(
    cfg: OperatorConfig,
    election: LeaderElectionConfig,
    registry: kopf.OperatorRegistry,
    verifier: Verifier,
    stop_flag: asyncio.Event | threading.Event | None,
    ready_flag: asyncio.Event | threading.Event | None,
) -> None:
    """kopf only while this process holds the Lease; /healthz is modelops' own (it answers on a standby)."""
    settings = build_settings(cfg.api_timeout)

    async def handlers() -> None:
        await kopf.operator(
            registry=registry,
            settings=settings,
            standalone=True,
            clusterwide=cfg.clusterwide,
            namespaces=list(cfg.namespaces),
            stop_flag=stop_flag,
        )

    async def drain() -> None:
        """Before the Lease is released: every handler thread has finished its last write."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, lambda: settings.execution.executor.shutdown(wait=True))
        await verifier.close()
        await loop.shutdown_default_executor()

    health = (cfg.host, host_port(cfg.health_port)) if cfg.health_port is not None else None
    api = load_api_client(cfg.kubeconfig, user_agent=OPERATOR_USER_AGENT, request_timeout=cfg.api_timeout)
    try:
        await run_elected(election, api, handlers, drain, health=health, stop_flag=stop_flag, ready_flag=ready_flag)
    finally:
        await verifier.close()
        api.close()  # type: ignore[no-untyped-call]


class OperatorThread:
    """The operator in a daemon thread with its own event loop (the demo and in-process tests)."""

    def __init__(self, cfg: OperatorConfig) -> None:
        self.cfg = cfg
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="modelops-operator", daemon=True)
        self.error: BaseException | None = None

    def _main(self) -> None:
        try:
            asyncio.run(run_operator(self.cfg, stop_flag=self._stop, ready_flag=self._ready))
        except BaseException as exc:  # surfaced to the caller through .error
            self.error = exc
            self._ready.set()

    def start(self, timeout: float = 30.0) -> OperatorThread:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("operator did not become ready")
        if self.error is not None:
            raise RuntimeError(f"operator failed to start: {self.error}") from self.error
        return self

    def stop(self, timeout: float = 15.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def __enter__(self) -> OperatorThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
