"""The fault proxy (tests/support/faultproxy.py) with the faults a real API server and network have.

Besides holding requests, a ChaosProxy records every request it sees (method, path, answer) and,
for the requests a rule's predicate picks:
- ``fail``: answers an error status (500, 503, ...) with a Kubernetes Status body, never forwarded;
- ``stall``: never answers and never closes the connection (a hung server, a dropped route): only
  the client's own timeout ends the request, even after the rule is removed;
- ``conflict``: answers every other one 409 Conflict, as kube-apiserver does when the object
  changed after the client read it (the other half are forwarded);
- ``cut``: cuts a watch stream (one already open too) in the middle of the next event the rule
  picks: half its line sent, then the socket closed;
- ``expire``: answers a watch ``200`` with one ``ERROR`` event ``410 Expired`` ("too old resource
  version") and ends the stream, exactly as kube-apiserver does after etcd compaction.
A rule applies ``times`` times (None: until removed with :meth:`ChaosProxy.heal`).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from tests.support.faultproxy import _HOP, FaultProxy, Predicate


@dataclass
class Seen:
    method: str
    path: str
    """Path with the query string."""
    at: float
    status: int | None = None
    fault: str | None = None
    """The rule's action when a rule answered it (or cut it)."""

    @property
    def is_watch(self) -> bool:
        return "watch=true" in self.path or "watch=1" in self.path

    @property
    def is_write(self) -> bool:
        return self.method in {"POST", "PUT", "PATCH", "DELETE"}


@dataclass
class Rule:
    action: str
    predicate: Predicate
    status: int = 503
    times: int | None = None
    event: Callable[[dict[str, Any]], bool] | None = None
    applied: int = 0
    seen: int = 0
    """Requests the predicate picked (for ``conflict``: every other one is answered 409)."""
    active: bool = True


def _event_matches(rule: Rule, line: bytes) -> bool:
    try:
        event = json.loads(line)
    except ValueError:
        return False
    return isinstance(event, dict) and rule.event is not None and bool(rule.event(event))


def status_body(code: int, reason: str, message: str) -> str:
    return json.dumps(
        {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
         "reason": reason, "code": code}
    )  # fmt: skip


REASONS = {500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout", 429: "TooManyRequests"}


@dataclass
class ChaosProxy(FaultProxy):
    log: list[Seen] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    body_holds: list[Callable[[str, str, bytes], bool]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- rules ------------------------------------------------------------------------------

    def _add(self, rule: Rule) -> Rule:
        with self._lock:
            self.rules.append(rule)
        return rule

    def hold_body(self, predicate: Callable[[str, str, bytes], bool]) -> None:
        """Hold (never forward) the requests ``predicate(method, path, body)`` picks: a test can
        pick a status write by what it writes, without asking the API server from the proxy."""
        with self._lock:
            self.body_holds.append(predicate)

    def fail(self, predicate: Predicate, status: int = 503, times: int | None = None) -> Rule:
        return self._add(Rule("fail", predicate, status=status, times=times))

    def stall(self, predicate: Predicate, times: int | None = None) -> Rule:
        return self._add(Rule("stall", predicate, times=times))

    def conflict(self, predicate: Predicate, times: int | None = None) -> Rule:
        return self._add(Rule("conflict", predicate, status=409, times=times))

    def cut(self, predicate: Predicate, event: Callable[[dict[str, Any]], bool], times: int | None = 1) -> Rule:
        """Cut the watch streams ``predicate`` picks (open ones too) in the middle of the next event
        ``event(parsed event)`` picks: half its line sent, then the connection closed."""
        return self._add(Rule("cut", predicate, event=event, times=times))

    def expire(self, predicate: Predicate, times: int | None = 1) -> Rule:
        return self._add(Rule("expire", predicate, status=410, times=times))

    def release_all(self) -> None:
        with self._lock:
            self.body_holds.clear()
        super().release_all()

    def heal(self, rule: Rule | None = None) -> None:
        """Remove one rule (or all): new requests pass again (stalled ones stay stalled)."""
        with self._lock:
            for r in self.rules if rule is None else [rule]:
                r.active = False
            self.rules = [r for r in self.rules if r.active]

    def _pick(self, method: str, path: str, cuts: bool, line: bytes = b"") -> Rule | None:
        """The first rule that applies (``cuts``: the cut rules, to the watch event ``line``; else the others)."""
        with self._lock:
            for r in self.rules:
                if not r.active or (r.action == "cut") != cuts or not r.predicate(method, path):
                    continue
                if cuts and not _event_matches(r, line):
                    continue
                if r.action == "conflict":
                    r.seen += 1
                    if r.seen % 2 == 0:
                        continue  # the retry of a conflicting write goes through
                if r.times is not None and r.applied >= r.times:
                    continue
                r.applied += 1
                return r
        return None

    # -- what happened ----------------------------------------------------------------------

    def seen(self, pred: Callable[[Seen], bool] = lambda _: True) -> list[Seen]:
        with self._lock:
            return [s for s in self.log if pred(s)]

    def writes(self, exclude: Callable[[str], bool] = lambda _: False) -> list[Seen]:
        """Writes (POST/PUT/PATCH/DELETE) that were forwarded, except those whose path ``exclude`` picks."""
        return self.seen(lambda s: s.is_write and s.fault is None and not exclude(s.path))

    # -- serving ----------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        seen = Seen(request.method, request.path_qs, time.monotonic())
        with self._lock:
            self.log.append(seen)
        body = await request.read()
        with self._lock:
            body_holds = list(self.body_holds)
        if any(p(request.method, request.path) for p in self.holds) or any(
            p(request.method, request.path, body) for p in body_holds
        ):
            seen.fault = "hold"
            self.held_requests.append((request.method, request.path_qs))
            self.held.set()
            self._closing = self._closing or asyncio.Event()
            await self._closing.wait()  # never forwarded; answered only when the proxy stops
            return web.Response(status=503, text="proxy stopped")
        rule = self._pick(request.method, request.path_qs, cuts=False)
        if rule is not None:
            seen.fault = rule.action
        if rule is not None and rule.action in {"fail", "conflict"}:
            seen.status = rule.status
            reason = "Conflict" if rule.status == 409 else REASONS.get(rule.status, "InternalError")
            message = (
                "Operation cannot be fulfilled: the object has been modified; please apply your changes to the "
                "latest version and try again"
                if rule.status == 409
                else f"injected fault: {rule.status}"
            )
            return web.Response(
                status=rule.status, text=status_body(rule.status, reason, message), content_type="application/json"
            )
        if rule is not None and rule.action == "stall":
            # A black hole: no answer, the connection left open even after the rule is healed (as a
            # server that died without a FIN, or a dropped route): only the client's timeout ends it.
            self._closing = self._closing or asyncio.Event()
            await self._closing.wait()
            return web.Response(status=503, text="proxy stopped")
        if rule is not None and rule.action == "expire":
            seen.status = 200
            response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
            await response.prepare(request)
            event = {"type": "ERROR", "object": json.loads(status_body(410, "Expired", "too old resource version"))}
            await response.write(json.dumps(event).encode() + b"\n")
            await response.write_eof()
            return response
        return await self._forward(request, seen)

    async def _forward(self, request: web.Request, seen: Seen) -> web.StreamResponse:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        async with (
            aiohttp.ClientSession(timeout=timeout, auto_decompress=False) as session,
            session.request(request.method, self.upstream + request.path_qs, data=body, headers=headers) as upstream,
        ):
            seen.status = upstream.status
            response = web.StreamResponse(status=upstream.status)
            for k, v in upstream.headers.items():
                if k.lower() not in _HOP:
                    response.headers[k] = v
            await response.prepare(request)
            if not seen.is_watch:
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
                return response
            buffer = b""
            async for chunk in upstream.content.iter_any():
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if self._pick(request.method, request.path_qs, cuts=True, line=line) is not None:
                        seen.fault = "cut"
                        await response.write(line[: len(line) // 2])
                        assert request.transport is not None
                        request.transport.close()  # mid-event: the client reads half a JSON line, then EOF
                        return response
                    await response.write(line + b"\n")
            if buffer:
                await response.write(buffer)
            await response.write_eof()
            return response
