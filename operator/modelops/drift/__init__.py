"""PURE drift statistics (numpy/scipy, no Kubernetes): tests, profiles, data readers, verdicts.

The operator's entry points::

    profile = load_reference(uri, fmt, mapping)            # cached prepared reference
    current = load_frame(uri, fmt, mapping)                # or read_prediction_log(...)
    result = run_check(profile, current, settings, mapping, now, min_rows=...)  # -> CheckResult

Bad data raises :class:`DriftDataError` whose ``reason`` is a condition reason.
"""

from __future__ import annotations

import importlib
from typing import Any

# Lazy exports (PEP 562): `modelops.drift.durations` is imported by the operator's policy code,
# and must not pull scipy.stats (~2 s) into every process that merely parses a duration.
_EXPORTS = {
    "DriftReport": "engine",
    "FeatureDrift": "engine",
    "compute_drift": "engine",
    "default_method": "engine",
    "run_check": "engine",
    "DriftDataError": "errors",
    "CategoricalColumn": "frame",
    "Frame": "frame",
    "categorical": "frame",
    "frame_from_arrays": "frame",
    "numerical": "frame",
    "LogFilter": "predlog",
    "read_prediction_log": "predlog",
    "ProfileCache": "profile",
    "ReferenceProfile": "profile",
    "build_profile": "profile",
    "load_frame": "readers",
    "load_reference": "readers",
    "REGISTRY": "stattests",
    "StatTest": "stattests",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"modelops.drift.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'modelops.drift' has no attribute {name!r}")


__all__ = [
    "REGISTRY",
    "CategoricalColumn",
    "DriftDataError",
    "DriftReport",
    "FeatureDrift",
    "Frame",
    "LogFilter",
    "ProfileCache",
    "ReferenceProfile",
    "StatTest",
    "build_profile",
    "categorical",
    "compute_drift",
    "default_method",
    "frame_from_arrays",
    "load_frame",
    "load_reference",
    "numerical",
    "read_prediction_log",
    "run_check",
]
