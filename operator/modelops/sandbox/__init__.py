"""A fake Kubernetes API server that keeps real API-server semantics, for tests and the local demo.

`ApiServer` runs in the caller's event loop; `ServerThread` runs one on a daemon thread for sync code.
"""

from __future__ import annotations

from modelops.sandbox.errors import ApiError
from modelops.sandbox.server import ApiServer, ServerThread, load_crd_files
from modelops.sandbox.store import Store

__all__ = ["ApiError", "ApiServer", "ServerThread", "Store", "load_crd_files"]
