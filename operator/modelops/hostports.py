"""Container ports as this process should bind them: identity on a cluster, remapped in the sandbox.

On Kubernetes every pod has its own network namespace, so two model servers both listen on 8080.
The sandbox runs pods as processes on one loopback interface instead; its kubelet gives each
container port a free local port and passes the mapping in ``MODELOPS_SANDBOX_PORT_MAP`` (JSON,
``{"8080": 41234}``). Every place modelops binds a listening port goes through ``host_port``.
"""

from __future__ import annotations

import json
import os

ENV = "MODELOPS_SANDBOX_PORT_MAP"


def port_map(environ: dict[str, str] | None = None) -> dict[int, int]:
    raw = (os.environ if environ is None else environ).get(ENV, "")
    if not raw:
        return {}
    try:
        data = json.loads(raw)
        return {int(k): int(v) for k, v in data.items()}
    except (ValueError, TypeError, AttributeError):
        raise ValueError(f"{ENV} must be a JSON object of port numbers, got {raw!r}") from None


def host_port(port: int, environ: dict[str, str] | None = None) -> int:
    """The local port to bind for container port ``port`` (unchanged outside the sandbox)."""
    return port_map(environ).get(port, port)
