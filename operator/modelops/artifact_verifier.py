"""The operator's artifact reader: asynchronous, policed, bounded and fair.

Asynchronous, so a slow artifact store never holds one of the operator's handler workers: http(s)
is streamed with aiohttp and hashed chunk by chunk on the event loop; ``file://`` and fsspec
schemes run in a small thread pool of the verifier's own. Every read has a connect timeout and a
read-progress timeout (no bytes for N seconds: the artifact is unreachable), obeys the operator's
``ArtifactPolicy`` (schemes, hosts, link-local and metadata addresses, redirects, size), and takes
one of a bounded number of slots, granted round-robin across namespaces with a per-namespace cap,
so one namespace's hanging store cannot take every slot. Error messages name the URI and what
failed, never what the remote side sent (no body, no reason phrase, no header).
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import http
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from modelops.artifacts import CHUNK, ArtifactRefused, ArtifactUnreachable, Digest, DigestMismatch, local_path
from modelops.core.artifact_policy import (
    NETWORK_SCHEMES,
    ArtifactPolicy,
    Refusal,
    check_addresses,
    check_redirect,
    check_size,
    check_uri,
    scheme_of,
    where,
)
from modelops.core.artifact_policy import (
    FetchSettings as FetchSettings,  # re-exported: defined with the policy, so `run --help` needs no aiohttp
)

REDIRECTS = frozenset({301, 302, 303, 307, 308})


class FairLimiter:
    """At most ``limit`` holders, at most ``per_key`` of them with one key; waiters are served
    round-robin by key (the namespace), so a key with many waiters cannot starve the others."""

    def __init__(self, limit: int, per_key: int) -> None:
        if limit < 1 or per_key < 1:
            raise ValueError("limits must be >= 1")
        self.limit, self.per_key = limit, per_key
        self.active: collections.Counter[str] = collections.Counter()
        self._waiting: collections.OrderedDict[str, collections.deque[asyncio.Future[None]]] = collections.OrderedDict()

    @property
    def in_use(self) -> int:
        return sum(self.active.values())

    def _grant(self) -> None:
        """Hand free slots to waiters: the first key in rotation with room, which then goes last."""
        while self.in_use < self.limit:
            key = next((k for k in self._waiting if self.active[k] < self.per_key), None)
            if key is None:
                return
            queue = self._waiting[key]
            fut = queue.popleft()
            if queue:
                self._waiting.move_to_end(key)
            else:
                del self._waiting[key]
            if not fut.done():
                self.active[key] += 1
                fut.set_result(None)

    @asynccontextmanager
    async def slot(self, key: str) -> AsyncIterator[None]:
        if not self._waiting and self.in_use < self.limit and self.active[key] < self.per_key:
            self.active[key] += 1
        else:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiting.setdefault(key, collections.deque()).append(fut)
            self._grant()
            try:
                await fut
            except asyncio.CancelledError:
                if fut.done() and not fut.cancelled():  # granted and cancelled at once: give it back
                    self._release(key)
                else:
                    queue = self._waiting.get(key)
                    if queue is not None and fut in queue:
                        queue.remove(fut)
                        if not queue:
                            del self._waiting[key]
                raise
        try:
            yield
        finally:
            self._release(key)

    def _release(self, key: str) -> None:
        self.active[key] -= 1
        if self.active[key] <= 0:
            del self.active[key]
        self._grant()


Resolve = Callable[[str, int], Awaitable[list[str]]]
"""host, port -> IP addresses. Injected by tests (a fake DNS); default: the system resolver."""


class _Refused(OSError):
    """Raised inside aiohttp's connector by the policy resolver; unwrapped by the verifier."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal


class PolicyResolver(AbstractResolver):
    """An aiohttp resolver that checks every address a name resolves to, and returns only those
    (so the connection goes to a checked address: no second lookup to rebind)."""

    def __init__(self, policy: ArtifactPolicy, resolve: Resolve | None = None) -> None:
        self._policy = policy
        self._resolve = resolve
        self._system = ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if self._resolve is None:
            results = await self._system.resolve(host, port, family)
        else:
            results = [
                ResolveResult(
                    hostname=host,
                    host=a,
                    port=port,
                    family=socket.AF_INET6 if ":" in a else socket.AF_INET,
                    proto=0,
                    flags=socket.AI_NUMERICHOST,
                )
                for a in await self._resolve(host, port)
            ]
        refusal = check_addresses(host, [r["host"] for r in results], self._policy)
        if refusal is not None:
            raise _Refused(refusal)
        return results

    async def close(self) -> None:
        await self._system.close()


def _status_text(code: int) -> str:
    """Our own phrase for a status code: the server's reason phrase is its text, not ours to echo."""
    try:
        return f"HTTP {code} {http.HTTPStatus(code).phrase}"
    except ValueError:
        return f"HTTP {code}"


def _os_reason(exc: BaseException) -> str:
    """What went wrong in a local or fsspec read, without the library's message (it may quote a
    remote error body, e.g. an object store's XML)."""
    if isinstance(exc, FileNotFoundError):
        return "no such file or object"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, ImportError):  # a missing fsspec backend: a local message, worth showing
        return str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__


class Verifier:
    """The operator's artifact reader: one per operator, used from its event loop."""

    def __init__(
        self,
        policy: ArtifactPolicy | None = None,
        settings: FetchSettings | None = None,
        resolve: Resolve | None = None,
    ) -> None:
        self.policy = policy or ArtifactPolicy()
        self.settings = settings or FetchSettings()
        self._resolve = resolve
        self.limiter = FairLimiter(self.settings.max_concurrent, self.settings.max_per_namespace)
        self._session: aiohttp.ClientSession | None = None
        self._pool: ThreadPoolExecutor | None = None

    def _http_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=0,  # the FairLimiter bounds concurrency
                use_dns_cache=False,  # every connection resolves and checks again
                resolver=PolicyResolver(self.policy, self._resolve),
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                trust_env=False,  # no proxy from the environment: the policy sees the real peer
                auto_decompress=False,  # the digest is over the bytes as stored
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=self.settings.connect_timeout, sock_read=self.settings.read_timeout
                ),
            )
        return self._session

    def _blocking_pool(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.settings.blocking_workers, thread_name_prefix="modelops-artifact")
        return self._pool

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    async def digest(self, uri: str, namespace: str = "") -> Digest:
        """Stream the artifact through sha256. Raises ArtifactUnreachable (ArtifactRefused by policy)."""
        refusal = check_uri(uri, self.policy)
        if refusal is not None:
            raise ArtifactRefused(uri, refusal)
        async with self.limiter.slot(namespace):
            if scheme_of(uri) in NETWORK_SCHEMES:
                return await self._http_digest(uri)
            return await self._blocking_digest(uri)

    async def verify(self, uri: str, expected: str, namespace: str = "") -> Digest:
        got = await self.digest(uri, namespace)
        if got.value != expected:
            raise DigestMismatch(expected, got.value)
        return got

    async def _http_digest(self, uri: str) -> Digest:
        session = self._http_session()
        url, hops = uri, 0
        while True:
            try:
                async with session.get(url, allow_redirects=False) as resp:
                    if resp.status in REDIRECTS:
                        location = resp.headers.get("Location")
                        if not location:
                            raise ArtifactUnreachable(
                                f"cannot read {uri}: {_status_text(resp.status)} without Location"
                            )
                        hops += 1
                        url, refusal = check_redirect(url, location, hops, self.policy)
                        if refusal is not None:
                            raise ArtifactRefused(uri, refusal)
                        continue
                    if resp.status != 200:
                        at = "" if url == uri else f" (redirected to {where(url)})"
                        raise ArtifactUnreachable(f"cannot read {uri}{at}: {_status_text(resp.status)}")
                    if resp.content_length is not None:
                        refusal = check_size(resp.content_length, self.policy, declared=True)
                        if refusal is not None:
                            raise ArtifactRefused(uri, refusal)
                    h, size = hashlib.sha256(), 0
                    async for chunk in resp.content.iter_chunked(CHUNK):
                        size += len(chunk)
                        refusal = check_size(size, self.policy)
                        if refusal is not None:
                            raise ArtifactRefused(uri, refusal)
                        h.update(chunk)
                    return Digest(f"sha256:{h.hexdigest()}", size)
            except aiohttp.ClientConnectorError as exc:
                if isinstance(exc.os_error, _Refused):
                    raise ArtifactRefused(uri, exc.os_error.refusal) from None
                reason = exc.os_error.strerror or type(exc.os_error).__name__
                raise ArtifactUnreachable(f"cannot connect to {where(url)} for {uri}: {reason}") from None
            except aiohttp.ConnectionTimeoutError:
                raise ArtifactUnreachable(
                    f"cannot read {uri}: no connection to {where(url)} within {self.settings.connect_timeout:g}s"
                ) from None
            except (aiohttp.ServerTimeoutError, TimeoutError):
                raise ArtifactUnreachable(
                    f"cannot read {uri}: {where(url)} sent nothing for {self.settings.read_timeout:g}s"
                ) from None
            except aiohttp.InvalidURL:
                raise ArtifactUnreachable(f"cannot read {uri}: invalid URL {where(url)}") from None
            except aiohttp.ClientError as exc:
                raise ArtifactUnreachable(f"cannot read {uri}: {type(exc).__name__} from {where(url)}") from None

    async def _blocking_digest(self, uri: str) -> Digest:
        """file:// and fsspec in the verifier's pool; a stall (not opened within connect_timeout, no
        chunk for read_timeout) is unreachable.

        A thread stuck inside a read cannot be interrupted: it is abandoned (it stops at its next
        chunk) and its pool slot stays taken until the read returns. The handlers' workers are never
        involved.
        """
        loop = asyncio.get_running_loop()
        abandoned = threading.Event()
        progress = {"at": time.monotonic(), "opened": 0.0}
        policy = self.policy

        def work() -> Digest:
            progress["at"] = time.monotonic()
            h, size = hashlib.sha256(), 0
            with _open_blocking(uri) as fh:
                progress["opened"] = progress["at"] = time.monotonic()
                while chunk := fh.read(CHUNK):
                    if abandoned.is_set():
                        raise ArtifactUnreachable("abandoned")
                    progress["at"] = time.monotonic()
                    size += len(chunk)
                    refusal = check_size(size, policy)
                    if refusal is not None:
                        raise ArtifactRefused(uri, refusal)
                    h.update(chunk)
            return Digest(f"sha256:{h.hexdigest()}", size)

        fut = loop.run_in_executor(self._blocking_pool(), work)
        connect, read = self.settings.connect_timeout, self.settings.read_timeout
        poll = min(1.0, connect / 4, read / 4)
        try:
            while True:
                done, _ = await asyncio.wait({fut}, timeout=poll)
                if done:
                    break
                idle = time.monotonic() - progress["at"]
                if not progress["opened"] and idle > connect:
                    raise ArtifactUnreachable(f"cannot read {uri}: not opened within {connect:g}s")
                if progress["opened"] and idle > read:
                    raise ArtifactUnreachable(f"cannot read {uri}: no data for {read:g}s")
        finally:
            if not fut.done():
                abandoned.set()
                fut.add_done_callback(lambda f: f.cancelled() or f.exception())
        try:
            return fut.result()
        except ArtifactUnreachable:
            raise
        except Exception as exc:  # file systems and fsspec backends raise anything
            raise ArtifactUnreachable(f"cannot read {uri}: {_os_reason(exc)}") from None


def _open_blocking(uri: str) -> Any:
    """A context manager over the artifact's bytes (a local file or an fsspec OpenFile)."""
    path = local_path(uri)
    if path is not None:
        return path.open("rb")
    try:
        import fsspec
    except ImportError:
        scheme = scheme_of(uri)
        raise ArtifactUnreachable(f"scheme {scheme!r} needs fsspec: pip install 'modelops[drift]'") from None
    try:
        return fsspec.open(uri, "rb")
    except ValueError as exc:  # unknown protocol: fsspec's own message, nothing remote in it
        raise ArtifactUnreachable(f"cannot open {uri}: {exc}") from None
