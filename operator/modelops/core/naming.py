"""Kubernetes object names derived from model names and versions (DNS-1123 subdomains)."""

from __future__ import annotations

import hashlib
import re

_INVALID = re.compile(r"[^a-z0-9.-]+")


def dns1123(name: str, max_length: int = 253) -> str:
    """Lowercase, invalid runs to '-', trimmed; long names keep a hash suffix so they stay unique."""
    cleaned = _INVALID.sub("-", name.lower()).strip("-.") or "x"
    if len(cleaned) <= max_length:
        return cleaned
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{cleaned[: max_length - 9].rstrip('-.')}-{digest}"


def model_version_name(model: str, version: str) -> str:
    """``churn`` + ``1.2`` -> ``churn-v1.2``; ``churn`` + ``v3`` -> ``churn-v3``."""
    v = version if version.lower().startswith("v") else f"v{version}"
    return dns1123(f"{model}-{v}")
