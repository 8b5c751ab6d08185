"""`GET /api/v1/namespaces/{ns}/pods/{name}/log`: the sandbox kubelet's log files, as `kubectl logs` reads them.

The workload runner appends each container's output to `<pod_log_dir>/<ns>/<pod>/<container>.log`,
with one marker line per start; this serves the latest start's output (or the one before with
`previous=true`), honouring `container`, `tailLines`, `limitBytes` and `follow`, with kube's errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from modelops.sandbox.errors import ApiError

MARKER = re.compile(rb"^--- sandbox: container \S+ started \(restart \d+\) at \S+ ---\n", re.MULTILINE)
FOLLOW_POLL = 0.2


def runs_of(data: bytes) -> list[bytes]:
    """The output of each start of a container, oldest first (marker lines removed)."""
    parts = MARKER.split(data)
    return parts[1:] if len(parts) > 1 else parts


def pick_container(pod: dict[str, Any], wanted: str | None) -> str:
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    names = [str(c.get("name")) for group in ("initContainers", "containers") for c in spec.get(group) or []]
    main = [str(c.get("name")) for c in spec.get("containers") or []]
    if wanted:
        if wanted not in names:
            raise ApiError(400, f"container {wanted} is not valid for pod {meta.get('name')}")
        return wanted
    if len(main) == 1:
        return main[0]
    raise ApiError(
        400, f"a container name must be specified for pod {meta.get('name')}, choose one of: [{' '.join(main)}]"
    )


def _tail(data: bytes, lines: int) -> bytes:
    if lines <= 0:
        return b""
    parts = data.splitlines(keepends=True)
    return b"".join(parts[-lines:])


def _running(lookup: Callable[[], dict[str, Any]], uid: str) -> bool:
    """The same pod still exists and has not ended (a follow stops when it has)."""
    try:
        pod = lookup()
    except ApiError:
        return False
    same = (pod.get("metadata") or {}).get("uid") == uid
    return same and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


async def serve(request: web.Request, lookup: Callable[[], dict[str, Any]], log_dir: Path | None) -> web.StreamResponse:
    """Answer a pods/log request from the runner's files (400 when there is nothing to show yet).

    `lookup` returns the pod from the store (raising the store's 404 when it is gone).
    """
    pod = lookup()
    meta = pod.get("metadata") or {}
    q = request.query
    container = pick_container(pod, q.get("container"))
    path = (log_dir / str(meta.get("namespace")) / str(meta.get("name")) / f"{container}.log") if log_dir else None
    if path is None or not path.exists():
        raise ApiError(
            400, f'container "{container}" in pod "{meta.get("name")}" is waiting to start: ContainerCreating'
        )
    data = path.read_bytes()
    runs = runs_of(data)
    if q.get("previous") in ("true", "1"):
        if len(runs) < 2:
            raise ApiError(400, f'previous terminated container "{container}" in pod "{meta.get("name")}" not found')
        body = runs[-2]
    else:
        body = runs[-1] if runs else b""
    try:
        tail = int(q["tailLines"]) if "tailLines" in q else None
        limit = int(q["limitBytes"]) if "limitBytes" in q else None
    except ValueError:
        raise ApiError(400, "tailLines and limitBytes must be integers") from None
    if tail is not None:
        body = _tail(body, tail)
    if limit is not None:
        body = body[:limit]
    follow = q.get("follow") in ("true", "1") and q.get("previous") not in ("true", "1")
    if not follow:
        return web.Response(body=body, content_type="text/plain")
    response = web.StreamResponse(status=200, headers={"Content-Type": "text/plain"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    offset = len(data)
    with contextlib.suppress(ConnectionError, asyncio.CancelledError):
        await response.write(body)
        while _running(lookup, str(meta.get("uid"))):  # the only polling: while someone follows a log
            await asyncio.sleep(FOLLOW_POLL)
            size = path.stat().st_size if path.exists() else 0
            if size > offset:
                with path.open("rb") as f:
                    f.seek(offset)
                    chunk = f.read(size - offset)
                offset = size
                chunk = MARKER.sub(b"", chunk)
                if chunk:
                    await response.write(chunk)
            if request.transport is None or request.transport.is_closing():
                break
        await response.write_eof()
    return response
