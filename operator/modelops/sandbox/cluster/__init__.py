"""The sandbox's workload runner and networking: what a cluster's controllers and kubelet do, for one machine.

`kube` is the async HTTP client everything here talks through (never the store directly).
"""

from __future__ import annotations

from modelops.sandbox.cluster.kube import ApiResource, ApiStatusError, Informer, Kube, ListResult, WorkQueue

__all__ = ["ApiResource", "ApiStatusError", "Informer", "Kube", "ListResult", "WorkQueue"]
