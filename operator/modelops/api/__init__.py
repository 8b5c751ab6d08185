"""Typed spec and status of every custom resource: the single source of truth for the CRDs."""

from modelops.api.driftmonitor import DriftMonitorSpec, DriftMonitorStatus
from modelops.api.modeldeployment import ModelDeploymentSpec, ModelDeploymentStatus
from modelops.api.modelversion import ModelVersionSpec, ModelVersionStatus, Phase, Stage

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
