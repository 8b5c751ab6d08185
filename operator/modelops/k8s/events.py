"""Record Kubernetes Events through kopf's poster (batched, rate-limited, never blocking a handler)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import kopf

from modelops.core.registry import EventSpec

_SECRET_MARKERS = ("password", "token", "secret", "apikey", "api_key")


def redact(message: str) -> str:
    """Events are world-readable in a namespace: drop URI credentials (user:pass@) before posting."""
    import re

    return re.sub(r"(//)[^/@\s]+:[^/@\s]+@", r"\1***@", message)


def record(body: Mapping[str, Any], events: Iterable[EventSpec]) -> None:
    for ev in events:
        kopf.event(body, type=ev.type, reason=ev.reason, message=redact(ev.message)[:1024])  # type: ignore[arg-type]
