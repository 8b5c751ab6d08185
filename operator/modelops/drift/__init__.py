"""PURE drift statistics (numpy/scipy, no Kubernetes): tests, profiles, data readers, verdicts.

The operator's entry points::

    profile = load_reference(uri, fmt, mapping)            # cached prepared reference
    current = load_frame(uri, fmt, mapping)                # or read_prediction_log(...)
    result = run_check(profile, current, settings, mapping, now, min_rows=...)  # -> CheckResult

Bad data raises :class:`DriftDataError` whose ``reason`` is a condition reason.
"""

from modelops.drift.engine import DriftReport, FeatureDrift, compute_drift, default_method, run_check
from modelops.drift.errors import DriftDataError
from modelops.drift.frame import CategoricalColumn, Frame, categorical, frame_from_arrays, numerical
from modelops.drift.predlog import LogFilter, read_prediction_log
from modelops.drift.profile import ProfileCache, ReferenceProfile, build_profile
from modelops.drift.readers import load_frame, load_reference
from modelops.drift.stattests import REGISTRY, StatTest

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
