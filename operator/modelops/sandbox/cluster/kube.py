"""A small async Kubernetes client (aiohttp) for the sandbox's controllers, kubelet and proxy.

The sandbox's controllers talk to the fake API server only through its HTTP API, as
kube-controller-manager and the kubelet do, so they exercise the same semantics the operator
meets (resourceVersions, conflicts, watches, 410 Expired). The official client is synchronous and
heavy; this one is what an informer needs: get, list, watch, create, patch, replace, delete.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import aiohttp

logger = logging.getLogger(__name__)

Obj = dict[str, Any]

PATCH_TYPES = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
    "apply": "application/apply-patch+yaml",
}


@dataclass(frozen=True)
class ApiResource:
    """A resource kind as the URL names it: group ("" for core), version, plural; kind for bodies."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None, subresource: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name is not None:
            base += f"/{name}"
            if subresource:
                base += f"/{subresource}"
        return base


PODS = ApiResource("", "v1", "pods", "Pod")
EVENTS = ApiResource("", "v1", "events", "Event")
SERVICES = ApiResource("", "v1", "services", "Service")
ENDPOINTS = ApiResource("", "v1", "endpoints", "Endpoints")
CONFIGMAPS = ApiResource("", "v1", "configmaps", "ConfigMap")
SECRETS = ApiResource("", "v1", "secrets", "Secret")
SERVICEACCOUNTS = ApiResource("", "v1", "serviceaccounts", "ServiceAccount")
NAMESPACES = ApiResource("", "v1", "namespaces", "Namespace", namespaced=False)
DEPLOYMENTS = ApiResource("apps", "v1", "deployments", "Deployment")
REPLICASETS = ApiResource("apps", "v1", "replicasets", "ReplicaSet")
JOBS = ApiResource("batch", "v1", "jobs", "Job")
CRONJOBS = ApiResource("batch", "v1", "cronjobs", "CronJob")
HTTPROUTES = ApiResource("gateway.networking.k8s.io", "v1", "httproutes", "HTTPRoute")
ENDPOINTSLICES = ApiResource("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice")


class ApiStatusError(Exception):
    """A non-2xx answer of the API server, with the fields of its `Status` body."""

    def __init__(self, code: int, reason: str = "", message: str = "") -> None:
        super().__init__(f"{code} {reason}: {message}")
        self.code = code
        self.reason = reason
        self.message = message


@dataclass
class ListResult:
    items: list[Obj]
    resource_version: str


def key_of(obj: Mapping[str, Any]) -> tuple[str, str]:
    """(namespace, name) of an object ("" namespace for cluster-scoped ones)."""
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


class Kube:
    """Async client for one API server (`async with Kube(url) as kube`), optional bearer token.

    Every method raises `ApiStatusError` on a non-2xx answer (404 for a missing object, 409 conflict).
    """

    def __init__(self, base_url: str, token: str | None = None, *, watch_timeout: float = 240.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.watch_timeout = watch_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            headers = {"Accept": "application/json"}
            if self.token:
                headers["Authorization"] = f"Bearer {self.token}"
            self._session = aiohttp.ClientSession(
                headers=headers, connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=None)
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> Kube:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- raw ----------------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        request_timeout: float = 30.0,
    ) -> Any:
        """One request; the decoded JSON answer (text when not JSON). Raises ApiStatusError on >= 400."""
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": content_type} if data is not None else None
        async with self.session.request(
            method,
            self.base_url + path,
            params=dict(params or {}),
            data=data,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=request_timeout),
        ) as resp:
            text = await resp.text()
            decoded: Any = text
            if "json" in resp.headers.get("Content-Type", "") and text:
                try:
                    decoded = json.loads(text)
                except ValueError:
                    decoded = text
            if resp.status >= 400:
                raise _status_error(resp.status, decoded)
            return decoded

    # -- verbs --------------------------------------------------------------------------------

    async def get(self, res: ApiResource, namespace: str | None, name: str, *, subresource: str | None = None) -> Obj:
        out: Obj = await self.request("GET", res.path(namespace, name, subresource))
        return out

    async def list(
        self,
        res: ApiResource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> ListResult:
        """Every matching object (all namespaces when `namespace` is None) and the list's resourceVersion."""
        params = _selectors(label_selector, field_selector)
        out = await self.request("GET", res.path(namespace), params=params)
        items = out.get("items") or []
        for item in items:  # list items carry no kind/apiVersion on a real server
            item.setdefault("kind", res.kind)
            item.setdefault("apiVersion", res.api_version)
        return ListResult(items, str((out.get("metadata") or {}).get("resourceVersion") or ""))

    async def create(self, res: ApiResource, namespace: str | None, body: Obj) -> Obj:
        body = {"apiVersion": res.api_version, "kind": res.kind, **body}
        out: Obj = await self.request("POST", res.path(namespace), body=body)
        return out

    async def patch(
        self,
        res: ApiResource,
        namespace: str | None,
        name: str,
        body: Any,
        *,
        patch_type: str = "merge",
        subresource: str | None = None,
        field_manager: str | None = None,
        force: bool = False,
    ) -> Obj:
        """Patch with `patch_type` merge | strategic | json | apply; `subresource="status"` for status."""
        params: dict[str, str] = {}
        if field_manager:
            params["fieldManager"] = field_manager
        if force:
            params["force"] = "true"
        out: Obj = await self.request(
            "PATCH", res.path(namespace, name, subresource), params=params, body=body,
            content_type=PATCH_TYPES[patch_type],
        )  # fmt: skip
        return out

    async def replace(
        self, res: ApiResource, namespace: str | None, name: str, body: Obj, *, subresource: str | None = None
    ) -> Obj:
        out: Obj = await self.request("PUT", res.path(namespace, name, subresource), body=body)
        return out

    async def delete(
        self,
        res: ApiResource,
        namespace: str | None,
        name: str,
        *,
        grace_period_seconds: int | None = None,
        propagation_policy: str | None = None,
        preconditions: Mapping[str, str] | None = None,
    ) -> Obj:
        """Delete; returns the deleted (or, with finalizers, the marked) object."""
        options: Obj = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        if propagation_policy:
            options["propagationPolicy"] = propagation_policy
        if preconditions:
            options["preconditions"] = dict(preconditions)
        out: Obj = await self.request("DELETE", res.path(namespace, name), body=options)
        return out

    # -- watch --------------------------------------------------------------------------------

    async def watch(
        self,
        res: ApiResource,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        retry_delay: float = 0.5,
    ) -> AsyncIterator[tuple[str, Obj]]:
        """Endless (type, object) events: ADDED, MODIFIED, DELETED; never BOOKMARK or ERROR.

        Without `resource_version`, the current objects come first as ADDED (a list). Server-side
        timeouts and dropped connections resume from the last resourceVersion seen; a 410 Expired
        re-lists and yields the difference to what this watch has yielded (ADDED / MODIFIED for
        objects new or changed meanwhile, DELETED for those gone), as client-go's reflector does.
        """
        known: dict[tuple[str, str], Obj] = {}
        rv = resource_version  # None: the list below yields everything as ADDED
        delay = retry_delay
        while True:
            if rv is None:
                try:
                    listed = await self.list(
                        res, namespace, label_selector=label_selector, field_selector=field_selector
                    )
                except (aiohttp.ClientError, TimeoutError, ApiStatusError) as exc:
                    logger.debug("list %s failed (%s); retrying", res.plural, exc)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
                    continue
                seen = set()
                for obj in listed.items:
                    key = key_of(obj)
                    seen.add(key)
                    old = known.get(key)
                    if old is None:
                        known[key] = obj
                        yield "ADDED", obj
                    elif _rv(old) != _rv(obj):
                        known[key] = obj
                        yield "MODIFIED", obj
                for key in [k for k in known if k not in seen]:
                    yield "DELETED", known.pop(key)
                rv = listed.resource_version
            params = {
                "watch": "true",
                "resourceVersion": rv,
                "allowWatchBookmarks": "true",
                "timeoutSeconds": str(int(self.watch_timeout)),
                **_selectors(label_selector, field_selector),
            }
            try:
                async with self.session.get(
                    self.base_url + res.path(namespace),
                    params=params,
                    timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=self.watch_timeout + 30),
                ) as resp:
                    if resp.status == 410:
                        rv = None
                        continue
                    if resp.status >= 400:
                        raise _status_error(resp.status, await _json_or_text(resp))
                    delay = retry_delay
                    async for line in _lines(resp.content):
                        event = json.loads(line)
                        etype, obj = event.get("type"), event.get("object") or {}
                        if etype == "ERROR":
                            if obj.get("code") == 410:
                                rv = None
                                break
                            raise _status_error(int(obj.get("code") or 500), obj)
                        new_rv = _rv(obj)
                        if new_rv:
                            rv = new_rv
                        if etype == "BOOKMARK":
                            continue
                        obj.setdefault("kind", res.kind)
                        obj.setdefault("apiVersion", res.api_version)
                        key = key_of(obj)
                        if etype == "DELETED":
                            known.pop(key, None)
                        else:
                            known[key] = obj
                        yield str(etype), obj
            except (aiohttp.ClientError, TimeoutError, ApiStatusError, ValueError) as exc:
                logger.debug("watch %s interrupted (%s); resuming from %s", res.plural, exc, rv)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)


def _rv(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def _rv_order(obj: Mapping[str, Any]) -> int:
    rv = _rv(obj)
    return int(rv) if rv.isdigit() else 0


def _selectors(label_selector: str | None, field_selector: str | None) -> dict[str, str]:
    params: dict[str, str] = {}
    if label_selector:
        params["labelSelector"] = label_selector
    if field_selector:
        params["fieldSelector"] = field_selector
    return params


async def _json_or_text(resp: aiohttp.ClientResponse) -> Any:
    text = await resp.text()
    try:
        return json.loads(text)
    except ValueError:
        return text


def _status_error(code: int, body: Any) -> ApiStatusError:
    if isinstance(body, dict):
        return ApiStatusError(code, str(body.get("reason") or ""), str(body.get("message") or ""))
    return ApiStatusError(code, "", str(body)[:500])


async def _lines(stream: aiohttp.StreamReader) -> AsyncIterator[bytes]:
    """Newline-delimited chunks of a watch stream (an event may be larger than one read)."""
    buf = b""
    async for chunk in stream.iter_any():
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if line.strip():
                yield line
    if buf.strip():
        yield buf


Handler = Callable[[str, Obj, Obj | None], Awaitable[None] | None]


class Informer:
    """A local cache of one resource kind, kept by a watch, calling handlers on every change.

    Handlers get (event type, new object, old object or None); for DELETED the new object is the
    last state. `await informer.start()` returns once the initial list is in the cache.
    """

    def __init__(
        self,
        kube: Kube,
        res: ApiResource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> None:
        self.kube = kube
        self.res = res
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.cache: dict[tuple[str, str], Obj] = {}
        self.synced = asyncio.Event()
        self._handlers: list[Handler] = []
        self._task: asyncio.Task[None] | None = None

    def add_handler(self, handler: Handler) -> None:
        self._handlers.append(handler)

    def get(self, namespace: str | None, name: str) -> Obj | None:
        return self.cache.get((namespace or "", name))

    def items(self, namespace: str | None = None) -> list[Obj]:
        if namespace is None:
            return list(self.cache.values())
        return [o for (ns, _), o in self.cache.items() if ns == namespace]

    def upsert(self, obj: Obj) -> None:
        """Write through what this process just wrote, so its next decision does not act on a stale cache."""
        key = key_of(obj)
        old = self.cache.get(key)
        if old is None or _rv_order(obj) >= _rv_order(old):
            self.cache[key] = obj

    def discard(self, namespace: str | None, name: str) -> None:
        self.cache.pop((namespace or "", name), None)

    def deleted(self, obj: Obj) -> None:
        """Write through a delete's answer: an object still there (finalizers, a pod's graceful
        deletion) stays cached marked for deletion, so it is not mistaken for a live one."""
        key = key_of(obj)
        if (obj.get("metadata") or {}).get("deletionTimestamp") and key in self.cache:
            self.upsert(obj)
        else:
            self.cache.pop(key, None)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"informer-{self.res.plural}")
        waiter = asyncio.create_task(self.synced.wait())
        done, _ = await asyncio.wait({waiter, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if waiter not in done:
            waiter.cancel()
            self._task.result()  # re-raise what stopped the informer

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        listed = await self._initial_list()
        for obj in listed.items:
            self.cache[key_of(obj)] = obj
        self.synced.set()
        for obj in listed.items:
            await self._notify("ADDED", obj, None)
        async for etype, obj in self.kube.watch(
            self.res,
            self.namespace,
            resource_version=listed.resource_version,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
        ):
            key = key_of(obj)
            old = self.cache.get(key)
            if etype == "DELETED":
                self.cache.pop(key, None)
            elif old is None or _rv_order(obj) >= _rv_order(old):  # not older than what `upsert` wrote through
                self.cache[key] = obj
            await self._notify(etype, obj, old)

    async def _initial_list(self) -> ListResult:
        delay = 0.2
        while True:
            try:
                return await self.kube.list(
                    self.res, self.namespace, label_selector=self.label_selector, field_selector=self.field_selector
                )
            except (aiohttp.ClientError, TimeoutError, ApiStatusError) as exc:
                logger.debug("initial list of %s failed (%s); retrying", self.res.plural, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _notify(self, etype: str, obj: Obj, old: Obj | None) -> None:
        for handler in self._handlers:
            try:
                result = handler(etype, obj, old)
                if result is not None:
                    await result
            except Exception:
                logger.exception("informer handler for %s failed", self.res.plural)


class WorkQueue:
    """Keys to reconcile, each at most once in the queue, with delayed re-adds (client-go's workqueue).

    A key being processed and re-added meanwhile is processed again after; `add_after` coalesces
    to the earliest requested time.
    """

    def __init__(self) -> None:
        self._queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self._queued: set[tuple[str, str]] = set()
        self._timers: dict[tuple[str, str], asyncio.TimerHandle] = {}

    def add(self, key: tuple[str, str]) -> None:
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        if key not in self._queued:
            self._queued.add(key)
            self._queue.put_nowait(key)

    def add_after(self, key: tuple[str, str], delay: float) -> None:
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        when = loop.time() + delay
        timer = self._timers.get(key)
        if timer is not None:
            if timer.when() <= when:
                return
            timer.cancel()
        self._timers[key] = loop.call_at(when, self._fire, key)

    def _fire(self, key: tuple[str, str]) -> None:
        self._timers.pop(key, None)
        self.add(key)

    async def get(self) -> tuple[str, str]:
        key = await self._queue.get()
        self._queued.discard(key)
        return key

    def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()


class Controller:
    """One worker draining a WorkQueue of (namespace, name) keys, as a kube-controller-manager loop.

    `reconcile` returns a delay after which the key is looked at again (None: only on the next
    change). A 409 Conflict (a stale cache) is retried at once; any other failure with back-off.
    """

    name = "controller"

    def __init__(self) -> None:
        self.queue = WorkQueue()
        self._task: asyncio.Task[None] | None = None
        self._failures: dict[tuple[str, str], int] = {}

    async def reconcile(self, namespace: str, name: str) -> float | None:
        raise NotImplementedError

    def enqueue(self, obj: Mapping[str, Any]) -> None:
        self.queue.add(key_of(obj))

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"controller-{self.name}")

    async def stop(self) -> None:
        self.queue.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            key = await self.queue.get()
            try:
                delay = await self.reconcile(*key)
            except ApiStatusError as exc:
                retry = self._failures.get(key, 0) + 1
                self._failures[key] = retry
                if exc.code not in (404, 409):
                    logger.warning("%s: reconciling %s/%s failed: %s", self.name, key[0], key[1], exc)
                self.queue.add_after(key, min(0.05 * 2**retry, 30.0))
            except Exception:
                retry = self._failures.get(key, 0) + 1
                self._failures[key] = retry
                logger.exception("%s: reconciling %s/%s failed", self.name, key[0], key[1])
                self.queue.add_after(key, min(0.5 * 2**retry, 60.0))
            else:
                self._failures.pop(key, None)
                if delay is not None:
                    self.queue.add_after(key, delay)
