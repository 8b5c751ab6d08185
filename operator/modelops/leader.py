"""`modelops run --leader-elect`: hold a coordination.k8s.io/v1 Lease, run the handlers only while holding it.

The convention of controller-runtime operators (``LeaderElection: true``), with its defaults
(15 s lease, 10 s renew deadline, 2 s retry period) and its rule on losing the Lease: the process
exits at once, so that no handler acts without it (kopf cannot be trusted to stop in time: its
synchronous handlers run in threads that no cancellation reaches). The Deployment restarts the
container, which comes back as a standby. The timing decisions are pure, in
:mod:`modelops.core.leader_election`; docs/reliability.md says why a Lease rather than kopf's peering.

While standing by, the process serves ``/healthz`` (200, JSON naming the leader) and its metrics
(``modelops_leader{identity} 0``), and writes nothing but its attempts on the Lease.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import os
import random
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NoReturn, TypeVar

from aiohttp import web
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from modelops.core.leader_election import (
    DEFAULT_LEASE_NAME,
    JITTER_FACTOR,
    LeaseRecord,
    LeaseTiming,
    Move,
    lease_spec,
    next_move,
    released_spec,
    still_leading,
)
from modelops.telemetry import LEADER

log = logging.getLogger(__name__)
T = TypeVar("T")

LOST_EXIT_CODE = 1
"""Exit status after losing the Lease (controller-runtime's "leader election lost" is a plain failure)."""


def host_identity(environ: dict[str, str] | None = None) -> str:
    """``$POD_NAME`` (the chart sets it from the downward API), else the host name."""
    env = os.environ if environ is None else environ
    return env.get("POD_NAME") or socket.gethostname()


def default_identity(environ: dict[str, str] | None = None) -> str:
    """:func:`host_identity` and a random suffix: two processes never share an identity, not even
    a container restarted in its pod (it must not inherit a Lease its dead predecessor held), as
    controller-runtime's ``<host>_<uuid>``."""
    return f"{host_identity(environ)}_{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class LeaderElectionConfig:
    lease_namespace: str
    lease_name: str = DEFAULT_LEASE_NAME
    identity: str = field(default_factory=default_identity)
    timing: LeaseTiming = field(default_factory=LeaseTiming)

    @property
    def lease(self) -> str:
        return f"{self.lease_namespace}/{self.lease_name}"


class LeaseConflict(Exception):
    """Someone else wrote the Lease between our read and our write (409)."""


def _when(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def record_of(lease: Any) -> LeaseRecord:
    spec = lease.spec or client.V1LeaseSpec()
    return LeaseRecord(
        holder=spec.holder_identity or "",
        lease_seconds=spec.lease_duration_seconds,
        acquired_at=_when(spec.acquire_time),
        renewed_at=_when(spec.renew_time),
        transitions=int(spec.lease_transitions or 0),
        resource_version=str(lease.metadata.resource_version),
    )


class LeaseClient:
    """The Lease through the kubernetes client, on a thread of its own: a renewal never queues
    behind the handlers' threads, and a hung request costs at most its timeout."""

    def __init__(self, api: client.ApiClient, namespace: str, name: str, timeout: float) -> None:
        self.api = client.CoordinationV1Api(api)
        self.namespace, self.name, self.timeout = namespace, name, timeout
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="lease")

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def _body(self, spec: dict[str, object], resource_version: str | None = None) -> Any:
        """The Lease as a dict (the client sends it as is: MicroTimes exactly as written)."""
        meta: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if resource_version is not None:
            meta["resourceVersion"] = resource_version
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta, "spec": spec}

    def _read(self) -> LeaseRecord | None:
        try:
            return record_of(self.api.read_namespaced_lease(self.name, self.namespace, _request_timeout=self.timeout))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def _write(self, spec: dict[str, object], resource_version: str | None) -> LeaseRecord:
        try:
            if resource_version is None:
                lease = self.api.create_namespaced_lease(
                    self.namespace, self._body(spec), _request_timeout=self.timeout
                )
            else:
                lease = self.api.replace_namespaced_lease(
                    self.name, self.namespace, self._body(spec, resource_version), _request_timeout=self.timeout
                )
        except ApiException as exc:
            if exc.status == 409:
                raise LeaseConflict(str(exc.reason)) from exc
            raise
        return record_of(lease)

    async def read(self) -> LeaseRecord | None:
        return await self.run(self._read)

    async def write(self, spec: dict[str, object], resource_version: str | None) -> LeaseRecord:
        """Create the Lease (``resource_version`` None) or replace the version read."""
        return await self.run(self._write, spec, resource_version)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def exit_now(message: str) -> NoReturn:
    """Log and leave the process at once: no handler may act after the Lease is lost."""
    log.critical("%s; exiting so that no two operators act at once", message)
    for handler in logging.getLogger().handlers:
        with contextlib.suppress(Exception):  # a broken log must not keep a leaderless process alive
            handler.flush()
    sys.stderr.flush()
    os._exit(LOST_EXIT_CODE)


class LeaderElector:
    """One replica's view of the Lease and its moves on it."""

    def __init__(
        self,
        lease: LeaseClient,
        identity: str,
        timing: LeaseTiming,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_lost: Callable[[str], Any] = exit_now,
    ) -> None:
        self.lease, self.identity, self.timing = lease, identity, timing
        self.clock, self.wall, self._on_lost = clock, wall, on_lost
        self.leading = False
        self.holder = ""
        """The holder last read ("" unknown or nobody)."""
        self.last_renewal_sent = 0.0
        self._observed: LeaseRecord | None = None
        self._observed_at = 0.0
        self._lost = threading.Event()
        self._watchdog: threading.Thread | None = None
        LEADER.labels(identity).set(0)

    # -- one attempt ------------------------------------------------------------------------

    def _observe(self, record: LeaseRecord | None) -> None:
        seen = self._observed.resource_version if self._observed is not None else None
        now = record.resource_version if record is not None else None
        if now != seen or self._observed_at == 0.0:
            self._observed, self._observed_at = record, self.clock()
        self.holder = record.holder if record is not None else ""

    async def try_acquire_or_renew(self) -> bool:
        """Read the Lease and take, renew or leave it; True when this replica holds it now."""
        sent = self.clock()
        try:
            record = await self.lease.read()
        except Exception as exc:
            log.warning("cannot read Lease %s/%s: %s", self.lease.namespace, self.lease.name, _short(exc))
            return False
        self._observe(record)
        if self.leading and record is not None and record.holder != self.identity:
            self.lost(f"Lease {self.lease.namespace}/{self.lease.name} is now held by {record.holder or 'nobody'}")
            return False
        move = next_move(record, self.identity, self._observed_at, self.clock(), self.timing)
        if move is Move.WAIT:
            return False
        spec = lease_spec(record, move, self.identity, self.wall(), self.timing)
        try:
            written = await self.lease.write(spec, None if record is None else record.resource_version)
        except LeaseConflict:
            return False  # another replica moved first: read again next time
        except Exception as exc:
            log.warning("cannot %s Lease %s/%s: %s", move.value, self.lease.namespace, self.lease.name, _short(exc))
            return False
        self._observe(written)
        self.last_renewal_sent = sent
        if move is not Move.RENEW or not self.leading:
            log.info(
                "%s the Lease %s/%s as %s", "created" if move is Move.CREATE else "acquired",
                self.lease.namespace, self.lease.name, self.identity,
            )  # fmt: skip
        return True

    def _jittered(self) -> float:
        return self.timing.retry_period * random.uniform(1.0, JITTER_FACTOR)

    # -- standby ----------------------------------------------------------------------------

    async def acquire(self, stop: Callable[[], bool] = lambda: False) -> bool:
        """Try every retry period until this replica leads (True) or ``stop()`` (False)."""
        announced = ""
        while not stop():
            if await self.try_acquire_or_renew():
                self._lead()
                return True
            if self.holder and self.holder != announced:
                log.info(
                    "standing by: the Lease %s/%s is held by %s", self.lease.namespace, self.lease.name, self.holder
                )
                announced = self.holder
            await _sleep_unless(stop, self._jittered())
        return False

    def _lead(self) -> None:
        self.leading = True
        self.holder = self.identity
        LEADER.labels(self.identity).set(1)
        self._watchdog = threading.Thread(target=self._watch_deadline, name="lease-watchdog", daemon=True)
        self._watchdog.start()

    # -- leading ----------------------------------------------------------------------------

    async def keep(self) -> str:
        """Renew every retry period; return (why) once the renew deadline passed without a renewal."""
        while True:
            await asyncio.sleep(self.timing.retry_period)
            left = self.last_renewal_sent + self.timing.renew_deadline - self.clock()
            if left > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.try_acquire_or_renew(), left)
            if self._lost.is_set():
                return "the Lease was lost"
            if not still_leading(self.last_renewal_sent, self.clock(), self.timing):
                return (
                    f"could not renew the Lease {self.lease.namespace}/{self.lease.name} within the renew deadline "
                    f"({self.timing.renew_deadline:g}s)"
                )

    def _watch_deadline(self) -> None:
        """A thread, so that a stuck event loop cannot keep a leader acting past its deadline."""
        step = min(0.25, self.timing.retry_period / 4)
        while self.leading and not self._lost.is_set():
            if not still_leading(self.last_renewal_sent, self.clock(), self.timing):
                self.lost(f"no renewal of the Lease {self.lease.namespace}/{self.lease.name} "
                          f"within the renew deadline ({self.timing.renew_deadline:g}s)")  # fmt: skip
                return
            time.sleep(step)

    def lost(self, why: str) -> None:
        """Leadership is gone: stop acting (by default, exit the process). Once."""
        if self._lost.is_set():
            return
        self._lost.set()
        self.leading = False
        LEADER.labels(self.identity).set(0)
        self._on_lost(f"leader election lost by {self.identity}: {why}")

    async def release(self) -> None:
        """Give the Lease up on purpose (the handlers have stopped): a standby takes it at its next try."""
        if not self.leading:
            return
        self.leading = False
        LEADER.labels(self.identity).set(0)
        try:
            record = await self.lease.read()
            if record is not None and record.holder == self.identity:
                await self.lease.write(released_spec(record, self.wall()), record.resource_version)
                log.info("released the Lease %s/%s", self.lease.namespace, self.lease.name)
        except Exception as exc:  # it expires by itself
            log.warning("could not release the Lease %s/%s: %s", self.lease.namespace, self.lease.name, _short(exc))

    def describe(self, lease: str) -> dict[str, Any]:
        return {"identity": self.identity, "leader": self.leading, "holder": self.holder or None, "lease": lease}


def _short(exc: BaseException) -> str:
    if isinstance(exc, ApiException):
        return f"{exc.status} {exc.reason}"
    return " ".join(str(exc).split())[:300] or type(exc).__name__


async def _sleep_unless(stop: Callable[[], bool], seconds: float) -> None:
    """Sleep ``seconds``, looking at ``stop()`` (a flag of any kind, threading's too) every 0.2 s."""
    deadline = time.monotonic() + seconds
    while not stop() and (left := deadline - time.monotonic()) > 0:  # noqa: ASYNC110 - polls a thread's flag
        await asyncio.sleep(min(left, 0.2))


class HealthServer:
    """``GET /healthz``: 200 while the process runs, with who leads (the standby answers too: it is healthy)."""

    def __init__(self, host: str, port: int, status: Callable[[], dict[str, Any]]) -> None:
        self.host, self.port, self.status = host, port, status
        self._runner: web.AppRunner | None = None

    async def _healthz(self, _: web.Request) -> web.Response:
        return web.Response(text=json.dumps({"status": "ok", **self.status()}), content_type="application/json")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def _flag_set(flag: Any) -> bool:
    if flag is None:
        return False
    if isinstance(flag, asyncio.Future | concurrent.futures.Future):
        return bool(flag.done())
    return bool(flag.is_set())


def _set_flag(flag: Any) -> None:
    if flag is None:
        return
    if isinstance(flag, asyncio.Future | concurrent.futures.Future):
        if not flag.done():
            flag.set_result(None)
    else:
        flag.set()


async def run_elected(
    cfg: LeaderElectionConfig,
    api: client.ApiClient,
    run_handlers: Callable[[], Coroutine[Any, Any, None]],
    drain: Callable[[], Coroutine[Any, Any, None]],
    *,
    health: tuple[str, int] | None = None,
    stop_flag: Any = None,
    ready_flag: Any = None,
    on_lost: Callable[[str], Any] = exit_now,
) -> None:
    """Stand by until this process holds the Lease, then ``run_handlers()`` while renewing it.

    ``run_handlers`` returns when the operator is stopped (SIGTERM, ``stop_flag``); then
    ``drain()`` waits for handler threads still running, and the Lease is released. Losing the
    Lease calls ``on_lost`` (by default: exit the process at once).
    """
    timing = cfg.timing
    lease = LeaseClient(api, cfg.lease_namespace, cfg.lease_name, timeout=max(1.0, timing.renew_deadline / 2))
    elector = LeaderElector(lease, cfg.identity, timing, on_lost=on_lost)
    server = HealthServer(*health, lambda: elector.describe(cfg.lease)) if health is not None else None
    try:
        if server is not None:
            await server.start()
        _set_flag(ready_flag)  # a standby is ready: it serves /healthz and metrics
        log.info("leader election: Lease %s, identity %s", cfg.lease, cfg.identity)
        if not await elector.acquire(lambda: _flag_set(stop_flag)):
            return
        handlers = asyncio.create_task(run_handlers(), name="handlers")
        keeper = asyncio.create_task(elector.keep(), name="lease-renewal")
        done, _ = await asyncio.wait({handlers, keeper}, return_when=asyncio.FIRST_COMPLETED)
        if keeper in done:
            elector.lost(keeper.result())
            handlers.cancel()
            await asyncio.gather(handlers, return_exceptions=True)
            return
        keeper.cancel()
        await asyncio.gather(keeper, return_exceptions=True)
        try:
            handlers.result()
        finally:
            await drain()
            await elector.release()
    finally:
        elector.leading = False
        if server is not None:
            await server.stop()
        lease.close()


__all__ = [
    "DEFAULT_LEASE_NAME",
    "HealthServer",
    "LeaderElectionConfig",
    "LeaderElector",
    "LeaseClient",
    "LeaseConflict",
    "default_identity",
    "exit_now",
    "host_identity",
    "run_elected",
]
