"""Record Kubernetes Events through kopf's poster (batched, rate-limited, never blocking a handler)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from modelops.core.registry import EventSpec

_URI_CREDENTIALS = re.compile(r"(//)[^/@\s]+:[^/@\s]+@")


def redact(message: str) -> str:
    """Events are world-readable in a namespace: drop URI credentials (user:pass@) before posting."""
    return _URI_CREDENTIALS.sub(r"\1***@", message)


def record(body: Mapping[str, Any], events: Iterable[EventSpec]) -> None:
    import kopf  # here, not at the top: `redact` is imported by the drift check's pod, which never needs kopf

    for ev in events:
        kopf.event(body, type=ev.type, reason=ev.reason, message=redact(ev.message)[:1024])  # type: ignore[arg-type]
