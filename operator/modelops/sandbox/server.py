"""The HTTP face of the sandbox: kube-apiserver's URL layout, discovery, watch streaming, errors.

Plain aiohttp (no kmock): one catch-all route parses the URL the way kube-apiserver does, so any
unknown path is a 404 and any unknown resource is a 404, never an accidental new "resource".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml
from aiohttp import web

from modelops.sandbox import auth, fieldlabels, openapi, podlogs, protobuf, tables
from modelops.sandbox.errors import ApiError
from modelops.sandbox.protobuf import ProtobufError
from modelops.sandbox.resources import CRD_KEY, Resource
from modelops.sandbox.selectors import Matcher, SelectorError, field_matcher, label_matcher
from modelops.sandbox.store import Store

logger = logging.getLogger(__name__)

KUBE_VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0-modelops-sandbox",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.23.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}
DEFAULT_WATCH_TIMEOUT = 1800.0


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


def _json(obj: Any, status: int = 200, warnings: Iterable[str] = ()) -> web.Response:
    escaped = [w.replace("\\", "\\\\").replace('"', '\\"') for w in warnings]
    headers = {"Warning": ", ".join(f'299 - "{w}"' for w in escaped)} if escaped else None
    return web.Response(text=_dumps(obj), status=status, content_type="application/json", headers=headers)


def _error(exc: ApiError) -> web.Response:
    return _json(exc.status(), exc.code)


def _user_agent(request: web.Request) -> str:
    """What names a write's field manager when the request gives no `fieldManager` (kube does the same)."""
    return request.headers.get("User-Agent", "")


_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_CRD_CACHE: dict[tuple[str, int, int], list[dict[str, Any]]] = {}


def _crds_in(path: Path) -> list[dict[str, Any]]:
    """CRD documents of one file, parsed once per content version (tests start many servers)."""
    st = path.stat()
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    if key not in _CRD_CACHE:
        docs = yaml.load_all(path.read_text(), Loader=_YAML_LOADER)
        _CRD_CACHE[key] = [d for d in docs if isinstance(d, dict) and d.get("kind") == "CustomResourceDefinition"]
    return _CRD_CACHE[key]


def load_crd_files(paths: Iterable[Path | str]) -> list[dict[str, Any]]:
    """Every CustomResourceDefinition document in the given files and directories (*.yaml, *.yml, *.json).

    The returned documents are shared: copy before mutating (the store copies on create).
    """
    out: list[dict[str, Any]] = []
    for p in map(Path, paths):
        files = sorted(f for f in p.iterdir() if f.suffix in (".yaml", ".yml", ".json")) if p.is_dir() else [p]
        for f in files:
            out.extend(_crds_in(f))
    return out


class _Accept:
    """What representation the client asked for (kubectl: Table; client-go metadata: PartialObjectMetadata)."""

    def __init__(self, header: str) -> None:
        self.table = "as=Table" in header
        self.partial = "as=PartialObjectMetadata" in header and not self.table


class ApiServer:
    """A fake kube-apiserver on 127.0.0.1, in the caller's event loop (`async with ApiServer() as api`)."""

    def __init__(
        self,
        port: int = 0,
        crds: Iterable[Path | str] = (),
        *,
        host: str = "127.0.0.1",
        event_log_size: int = 10_000,
        watch_cache_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        bookmark_interval: float = 5.0,
        strict_crds: bool = True,
        sock: socket.socket | None = None,
        pod_log_dir: Path | str | None = None,
    ) -> None:
        self.host = host
        # where the workload runner writes container output (`<dir>/<ns>/<pod>/<container>.log`): pods/log
        self.pod_log_dir = Path(pod_log_dir) if pod_log_dir else None
        self.port = port
        # an already listening socket (`sandbox up` binds it before its slow start, so that clients
        # started meanwhile wait in the backlog instead of being refused)
        self.sock = sock
        self.crds = list(crds)
        self.bookmark_interval = bookmark_interval
        self.store = Store(event_log_size, strict_crds, watch_cache_seconds, clock)
        self.auth = auth.Auth(self.store.objects)
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> ApiServer:
        crd_res = self.store.lookup("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        for crd in load_crd_files(self.crds):
            self.store.create(crd_res, None, crd)
        self.store.collect_garbage()
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site: web.BaseSite = (
            web.SockSite(self._runner, self.sock)
            if self.sock is not None
            else web.TCPSite(self._runner, self.host, self.port)
        )
        await site.start()
        self.port = int(self._runner.addresses[0][1])  # the real port when 0 was asked for
        logger.info("sandbox apiserver serving on %s", self.url)
        return self

    def end_watches(self) -> None:
        """End every open watch stream, as a kube-apiserver restart does: clients resume from their last
        resourceVersion (and list again if it was compacted meanwhile)."""
        self.store.close_watchers()

    async def stop(self) -> None:
        self.store.close_watchers()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> ApiServer:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def kubeconfig(self, namespace: str = "default") -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "sandbox", "cluster": {"server": self.url}}],
            "contexts": [
                {"name": "sandbox", "context": {"cluster": "sandbox", "user": "sandbox", "namespace": namespace}}
            ],
            "current-context": "sandbox",
            "users": [{"name": "sandbox", "user": {}}],
            "preferences": {},
        }

    def write_kubeconfig(self, path: Path | str) -> Path:
        """Write a kubeconfig (cluster, context and user all named `sandbox`; no auth, plain http)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(self.kubeconfig(), sort_keys=False))
        return path

    # -- routing ------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        try:
            request["user"] = self.auth.identify(request)
            return await self._route(request)
        except ApiError as exc:
            return _error(exc)
        except SelectorError as exc:
            return _error(ApiError(400, str(exc)))
        except Exception as exc:  # a bug here must look like a server error, not a dropped connection
            logger.exception("sandbox apiserver failed on %s %s", request.method, request.path_qs)
            return _error(ApiError(500, f"sandbox internal error: {exc!r}"))

    async def _route(self, request: web.Request) -> web.StreamResponse:
        parts = [p for p in request.path.split("/") if p]
        if request.method == "GET":
            static = self._static(parts)
            if static is not None:
                return _json(static)
        if len(parts) >= 3 and parts[0] == "api" and parts[1] == "v1":
            group, version, rest = "", "v1", parts[2:]
        elif len(parts) >= 4 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise ApiError(404, "the server could not find the requested resource")
        watch_path = rest[0] == "watch"
        if watch_path:
            rest = rest[1:]
        namespace: str | None = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            candidate = self.store.find(group, version, rest[2])
            if candidate is not None and candidate.namespaced:
                namespace, rest = rest[1], rest[2:]
        if not rest or len(rest) > 3:
            raise ApiError(404, "the server could not find the requested resource")
        res = self.store.lookup(group, version, rest[0])
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if namespace is not None and not res.namespaced:
            raise ApiError(404, "the server could not find the requested resource")
        if res.namespaced and name is not None and namespace is None:
            raise ApiError(404, "the server could not find the requested resource")
        q = request.query
        if watch_path or (name is None and request.method == "GET" and q.get("watch") in ("true", "1")):
            params = dict(q)
            if name is not None:
                params["fieldSelector"] = ",".join(s for s in (q.get("fieldSelector"), f"metadata.name={name}") if s)
            return await self._watch(request, res, namespace, params)
        if name is None:
            return await self._collection(request, res, namespace)
        return await self._item(request, res, namespace, name, sub)

    def _static(self, parts: list[str]) -> Any:
        if not parts:
            paths = ["/api", "/api/v1", "/apis", "/version", "/healthz", "/readyz", "/livez", "/openapi/v3"]
            paths += [f"/apis/{g}" for g in self.store.groups() if g]
            return {"paths": sorted(paths)}
        if parts in (["healthz"], ["readyz"], ["livez"]):
            return "ok"
        if parts == ["version"]:
            return KUBE_VERSION
        if parts == ["api"]:
            return {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": f"{self.host}:{self.port}"}
                ],
            }
        if parts == ["api", "v1"]:
            return self._resource_list("", "v1")
        if parts == ["apis"]:
            return {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [self._group(g, vs) for g, vs in self.store.groups().items() if g],
            }
        if len(parts) == 2 and parts[0] == "apis":
            versions = self.store.groups().get(parts[1])
            if not versions:
                raise ApiError(404, "the server could not find the requested resource")
            return {"kind": "APIGroup", "apiVersion": "v1", **self._group(parts[1], versions)}
        if len(parts) == 3 and parts[0] == "apis":
            if parts[2] not in self.store.groups().get(parts[1], []):
                raise ApiError(404, "the server could not find the requested resource")
            return self._resource_list(parts[1], parts[2])
        if parts == ["openapi", "v3"]:
            return openapi.root(self._openapi_docs())
        if parts[:2] == ["openapi", "v3"]:
            doc = self._openapi_docs().get("/".join(parts[2:]))
            if doc is None:
                raise ApiError(404, "the server could not find the requested resource")
            return doc
        return None

    def _openapi_docs(self) -> dict[str, dict[str, Any]]:
        docs = {}
        for group, versions in self.store.groups().items():
            for version in versions:
                gv = f"apis/{group}/{version}" if group else f"api/{version}"
                docs[gv] = openapi.group_version_doc(self.store.resources_in(group, version), gv)
        return docs

    @staticmethod
    def _group(group: str, versions: list[str]) -> dict[str, Any]:
        gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {"name": group, "versions": gvs, "preferredVersion": gvs[0]}

    def _resource_list(self, group: str, version: str) -> dict[str, Any]:
        resources = [entry for r in self.store.resources_in(group, version) for entry in r.discovery()]
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": resources,
        }

    # -- collections and items ----------------------------------------------------------------

    def _field_matcher(self, res: Resource, expr: str | None) -> Matcher:
        """A fieldSelector on the fields `res` supports (400 on others, as kube-apiserver answers)."""
        crd = self.store.objects[CRD_KEY].get(("", res.crd_name)) if res.crd_name else None
        return field_matcher(expr, fieldlabels.resolver(res, crd))

    @staticmethod
    async def _body(request: web.Request) -> Any:
        raw = await request.read()
        if not raw.strip():
            return None
        ctype = request.headers.get("Content-Type", "")
        if "protobuf" in ctype:
            try:
                return protobuf.decode(raw)
            except ProtobufError as exc:
                raise ApiError(
                    415, f"the body of the request was in an unknown format: {exc}; use JSON or YAML"
                ) from None
        if "cbor" in ctype:
            raise ApiError(
                415,
                "the body of the request was in an unknown format - accepted media types include: "
                "application/json, application/yaml, application/vnd.kubernetes.protobuf",
            )
        try:
            if "yaml" in ctype:
                return yaml.load(raw, Loader=_YAML_LOADER)
            return json.loads(raw)
        except (ValueError, yaml.YAMLError) as exc:
            raise ApiError(400, f"the body of the request could not be decoded: {exc}") from None

    def _render(self, request: web.Request, res: Resource, obj: dict[str, Any]) -> dict[str, Any]:
        accept = _Accept(request.headers.get("Accept", ""))
        if accept.table:
            return tables.table(res, [obj], str(self.store.rv), request.query.get("includeObject", ""))
        if accept.partial:
            return tables.partial(obj)
        return obj

    async def _collection(self, request: web.Request, res: Resource, namespace: str | None) -> web.StreamResponse:
        if res.key in auth.REVIEWS:
            review = self.auth.review(request.method, res, namespace, request["user"], await self._body(request))
            return _json(review, 201)
        q = request.query
        labels, fields = label_matcher(q.get("labelSelector")), self._field_matcher(res, q.get("fieldSelector"))
        dry = q.get("dryRun") == "All"
        if request.method == "GET":
            out = self.store.list_objects(res, namespace, labels, fields, int(q.get("limit") or 0), q.get("continue"))
            accept = _Accept(request.headers.get("Accept", ""))
            if accept.table:
                meta = {k: v for k, v in out["metadata"].items() if k != "resourceVersion"}
                return _json(
                    tables.table(
                        res, out["items"], out["metadata"]["resourceVersion"], q.get("includeObject", ""), meta=meta
                    )
                )
            if accept.partial:
                out = {**out, "kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1",
                       "items": [tables.partial(o) for o in out["items"]]}  # fmt: skip
            return _json(out)
        if request.method == "POST":
            body = await self._body(request)
            result = self.store.create(
                res, namespace, body, dry, q.get("fieldValidation", ""), q.get("fieldManager"), _user_agent(request)
            )
            return _json(self._render(request, res, result.obj), 201, result.warnings)
        if request.method == "DELETE":
            body = await self._body(request) or {}
            options = {**body, **{k: q[k] for k in ("propagationPolicy", "gracePeriodSeconds") if k in q}}
            return _json(self.store.delete_collection(res, namespace, labels, fields, options, dry))
        raise ApiError(405, f"the server does not allow this method on the requested resource: {request.method}")

    async def _item(
        self, request: web.Request, res: Resource, namespace: str | None, name: str, sub: str | None
    ) -> web.StreamResponse:
        q = request.query
        dry = q.get("dryRun") == "All"
        fv = q.get("fieldValidation", "")
        if sub == "token" and res.key == auth.SERVICE_ACCOUNTS and request.method == "POST":
            return _json(self.auth.token_request(namespace or "", name, await self._body(request)), 201)
        if sub == "log" and res.key == ("", "pods") and request.method == "GET":
            return await podlogs.serve(request, lambda: self.store.get(res, namespace, name), self.pod_log_dir)
        if sub is not None and (sub != "status" or not res.status):
            raise ApiError(404, "the server could not find the requested resource")
        if request.method == "GET":
            return _json(self._render(request, res, self.store.get(res, namespace, name)))
        if request.method == "PUT":
            body = await self._body(request)
            manager = q.get("fieldManager")
            result = self.store.replace(res, namespace, name, body, sub, dry, fv, manager, _user_agent(request))
            return _json(self._render(request, res, result.obj), 200, result.warnings)
        if request.method == "PATCH":
            body = await self._body(request)
            ctype, manager, agent = request.headers.get("Content-Type", ""), q.get("fieldManager"), _user_agent(request)
            result = self.store.patch(res, namespace, name, ctype, body, sub, dry, fv, manager, agent, q.get("force"))
            return _json(self._render(request, res, result.obj), 201 if result.created else 200, result.warnings)
        if request.method == "DELETE" and sub is None:
            body = await self._body(request) or {}
            if not isinstance(body, dict):
                raise ApiError(400, "DeleteOptions must be an object")
            options = {**body, **{k: q[k] for k in ("propagationPolicy", "gracePeriodSeconds") if k in q}}
            result = self.store.delete(res, namespace, name, options, dry)
            return _json(self._render(request, res, result.obj), 200 if result.deleted else 202)
        raise ApiError(405, f"the server does not allow this method on the requested resource: {request.method}")

    # -- watch --------------------------------------------------------------------------------

    async def _watch(self, request: web.Request, res: Resource, namespace: str | None, q: Any) -> web.StreamResponse:
        labels, fields = label_matcher(q.get("labelSelector")), self._field_matcher(res, q.get("fieldSelector"))
        since = q.get("resourceVersion")
        bookmarks = q.get("allowWatchBookmarks") in ("true", "1")
        initial_end = q.get("sendInitialEvents") in ("true", "1") and bookmarks
        timeout = float(q.get("timeoutSeconds") or DEFAULT_WATCH_TIMEOUT)
        accept = _Accept(request.headers.get("Accept", ""))
        include = q.get("includeObject", "")
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        try:
            watcher, initial = self.store.watch(res, namespace, labels, fields, None if initial_end else since)
        except ApiError as exc:
            if exc.code != 410:
                raise
            await response.prepare(request)
            await response.write((_dumps({"type": "ERROR", "object": exc.status()}) + "\n").encode())
            await response.write_eof()
            return response
        await response.prepare(request)
        headers_sent = False

        def encode(etype: str, obj: dict[str, Any]) -> bytes:
            nonlocal headers_sent
            if etype != "BOOKMARK" and accept.table:
                obj = tables.table(
                    res, [obj], obj["metadata"].get("resourceVersion", ""), include, headers=not headers_sent
                )
                headers_sent = True
            elif etype != "BOOKMARK" and accept.partial:
                obj = tables.partial(obj)
            return (_dumps({"type": etype, "object": obj}) + "\n").encode()

        registered_rv = self.store.rv  # everything up to here is in `initial`, later events are queued

        def bookmark(rv: int, extra: dict[str, str] | None = None) -> bytes:
            meta: dict[str, Any] = {"resourceVersion": str(rv)}
            if extra:
                meta["annotations"] = extra
            return encode("BOOKMARK", {"kind": res.kind, "apiVersion": res.api_version, "metadata": meta})

        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        next_bookmark = loop.time() + self.bookmark_interval
        try:
            for etype, obj in initial:
                await response.write(encode(etype, obj))
            if initial_end:
                await response.write(bookmark(registered_rv, {"k8s.io/initial-events-end": "true"}))
            while True:
                now = loop.time()
                if now >= deadline:
                    break
                if bookmarks and now >= next_bookmark and watcher.queue.empty():
                    # only with nothing queued: a bookmark promises every earlier event was sent
                    await response.write(bookmark(self.store.rv))
                    next_bookmark = now + self.bookmark_interval
                wait = min(deadline - now, 1.0, (next_bookmark - now) if bookmarks else 1.0)
                try:
                    item = await asyncio.wait_for(watcher.queue.get(), max(wait, 0.01))
                except TimeoutError:
                    if request.transport is None or request.transport.is_closing():
                        break
                    continue
                if item is None:
                    break
                await response.write(encode(*item))
            with contextlib.suppress(ConnectionError):
                await response.write_eof()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.store.unwatch(watcher)
        return response


def serve_until_stopped(loop: asyncio.AbstractEventLoop, stop: Callable[[], Awaitable[object]]) -> None:
    """Run ``loop`` until ``loop.stop()``, then ``stop()`` and close it as ``asyncio.run`` would.

    Tasks still parked (keep-alive connections, watches) are cancelled and awaited, so closing the
    loop destroys no pending task. Shared by the server's and the workload runner's threads.
    """
    try:
        loop.run_forever()
    finally:
        loop.run_until_complete(stop())
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


class ServerThread:
    """The sandbox in its own event loop on a daemon thread, for synchronous code (demo, sync clients)."""

    def __init__(self, port: int = 0, crds: Iterable[Path | str] = (), **kwargs: Any) -> None:
        self._args = (port, list(crds), kwargs)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.api: ApiServer | None = None

    def start(self) -> ServerThread:
        self._thread = threading.Thread(target=self._run, name="modelops-sandbox-apiserver", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise self._error
        if self.api is None:
            raise RuntimeError("sandbox apiserver did not start within 30s")
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        port, crds, kwargs = self._args
        try:
            self.api = loop.run_until_complete(ApiServer(port, crds, **kwargs).start())
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        serve_until_stopped(loop, self.api.stop)

    @property
    def url(self) -> str:
        assert self.api is not None, "ServerThread not started"
        return self.api.url

    @property
    def store(self) -> Store:
        assert self.api is not None, "ServerThread not started"
        return self.api.store

    def write_kubeconfig(self, path: Path | str) -> Path:
        assert self.api is not None, "ServerThread not started"
        return self.api.write_kubeconfig(path)

    def end_watches(self) -> None:
        """ApiServer.end_watches, from another thread."""
        assert self.api is not None, "ServerThread not started"
        assert self._loop is not None, "ServerThread not started"
        self._loop.call_soon_threadsafe(self.api.end_watches)

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
