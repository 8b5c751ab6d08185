"""A fake Kubernetes API server that keeps real API-server semantics, for tests and the local demo.

`ApiServer` runs in the caller's event loop; `ServerThread` runs one on a daemon thread for sync code.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelops.sandbox.errors import ApiError
    from modelops.sandbox.server import ApiServer, ServerThread, load_crd_files
    from modelops.sandbox.store import Store

# Imported on first use: `modelops sandbox status|down` import a submodule and must not pay for aiohttp.
_EXPORTS = {
    "ApiError": "modelops.sandbox.errors",
    "ApiServer": "modelops.sandbox.server",
    "ServerThread": "modelops.sandbox.server",
    "load_crd_files": "modelops.sandbox.server",
    "Store": "modelops.sandbox.store",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ApiError", "ApiServer", "ServerThread", "Store", "load_crd_files"]
