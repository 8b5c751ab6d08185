"""Kubernetes-style durations (``90s``, ``1h30m``, ``250ms``) as used by the CRDs."""

from __future__ import annotations

import re
from datetime import timedelta

_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> timedelta:
    """``"1h30m"`` -> 90 minutes; raises ValueError on anything the CRD pattern would reject."""
    pos = 0
    seconds = 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        seconds += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(f"invalid duration {text!r}; expected e.g. 90s, 15m, 1h30m")
    return timedelta(seconds=seconds)
