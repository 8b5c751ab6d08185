"""Typed spec and status of every custom resource: the single source of truth for the CRDs.

The names below are loaded on first use (PEP 562): importing one module of this package (for
example ``modelops.api.performance`` in ``modelops performance check``) does not build every
other CRD's models.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelops.api.driftmonitor import DriftMonitorSpec, DriftMonitorStatus
    from modelops.api.modeldeployment import ModelDeploymentSpec, ModelDeploymentStatus
    from modelops.api.modelversion import ModelVersionSpec, ModelVersionStatus, Phase, Stage

_EXPORTS = {
    "DriftMonitorSpec": "driftmonitor",
    "DriftMonitorStatus": "driftmonitor",
    "ModelDeploymentSpec": "modeldeployment",
    "ModelDeploymentStatus": "modeldeployment",
    "ModelVersionSpec": "modelversion",
    "ModelVersionStatus": "modelversion",
    "Phase": "modelversion",
    "Stage": "modelversion",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"modelops.api.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'modelops.api' has no attribute {name!r}")


__all__ = [
    "DriftMonitorSpec",
    "DriftMonitorStatus",
    "ModelDeploymentSpec",
    "ModelDeploymentStatus",
    "ModelVersionSpec",
    "ModelVersionStatus",
    "Phase",
    "Stage",
]
