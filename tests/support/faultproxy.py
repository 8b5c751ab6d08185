"""A transparent HTTP proxy in front of the fake API server that can hold chosen requests.

It lets a test stop the operator at an exact point (e.g. after the digest check, at the status
write) without touching the operator's code: the request is held, never forwarded, and the test
kills the operator process.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

Predicate = Callable[[str, str], bool]  # (method, path) -> hold?

_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "host"}


@dataclass
class FaultProxy:
    upstream: str
    holds: list[Predicate] = field(default_factory=list)
    held: threading.Event = field(default_factory=threading.Event)
    held_requests: list[tuple[str, str]] = field(default_factory=list)
    url: str = ""

    def __post_init__(self) -> None:
        self._closing: asyncio.Event | None = None
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True)

    def hold(self, predicate: Predicate) -> None:
        self.holds.append(predicate)

    def release_all(self) -> None:
        self.holds.clear()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if any(p(request.method, request.path) for p in self.holds):
            self.held_requests.append((request.method, request.path_qs))
            self.held.set()
            # Never forwarded: the client is killed meanwhile. Answered 503 only when the proxy stops.
            self._closing = self._closing or asyncio.Event()
            await self._closing.wait()
            return web.Response(status=503, text="proxy stopped")
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        async with (
            aiohttp.ClientSession(timeout=timeout, auto_decompress=False) as session,
            session.request(request.method, self.upstream + request.path_qs, data=body, headers=headers) as upstream,
        ):
            response = web.StreamResponse(status=upstream.status)
            for k, v in upstream.headers.items():
                if k.lower() not in _HOP:
                    response.headers[k] = v
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        self._ready.set()
        self._loop.run_forever()

    def start(self) -> FaultProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        async def _shutdown() -> None:
            if self._closing is not None:
                self._closing.set()
            await self._runner.cleanup()
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)

        fut = asyncio.run_coroutine_threadsafe(_shutdown(), self._loop)
        with contextlib.suppress(Exception):
            fut.result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


def kubeconfig_for(url: str, path: str) -> str:
    import yaml

    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "proxy", "cluster": {"server": url}}],
        "users": [{"name": "proxy", "user": {}}],
        "contexts": [{"name": "proxy", "context": {"cluster": "proxy", "user": "proxy", "namespace": "default"}}],
        "current-context": "proxy",
    }
    with open(path, "w") as fh:
        yaml.safe_dump(doc, fh)
    return path
