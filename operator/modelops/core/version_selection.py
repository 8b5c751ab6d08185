"""Which ModelVersion a ModelDeployment should serve: a chain of pure eligibility checks.

``versionRef`` names one version: it must exist and be Verified, and, when ``model.stage`` is
set, be in that stage (with ``requireApproval``, approved). ``modelName`` picks the newest
eligible version of the model, eligible meaning Verified, in ``model.stage`` (default
Production) and, with ``requireApproval``, approved. *Newest* is the latest
``creationTimestamp`` (ties: the larger name): registration order is unambiguous, where version
strings ("1.10" vs "1.9", "v3") are not.

Each check returns a :class:`~modelops.core.stage_policy.Verdict` ``(reason, message, failed)``,
as in :mod:`modelops.core.stage_policy`; the first failure names why nothing is rolled out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from modelops.api.modeldeployment import ModelRef
from modelops.api.modelversion import Phase, Stage
from modelops.core.stage_policy import OK, Verdict

NOT_FOUND = "NotFound"
NOT_VERIFIED = "NotVerified"
VERIFICATION_PENDING = "VerificationPending"
WRONG_STAGE = "WrongStage"
NOT_APPROVED = "NotApproved"
NO_ELIGIBLE_VERSION = "NoEligibleVersion"

TRANSIENT_REASONS = frozenset({VERIFICATION_PENDING})
"""Reasons that resolve by themselves (the registry is still verifying): not a Stalled rollout."""


@dataclass(frozen=True)
class VersionInfo:
    """A ModelVersion as the rollout needs it: identity, eligibility, and what a server loads."""

    name: str
    model_name: str
    version: str
    uri: str
    digest: str
    artifact_format: str = "joblib"
    framework: str = "sklearn"
    phase: Phase = Phase.PENDING
    stage: Stage = Stage.NONE
    approved: bool = False
    created: datetime | None = None

    @staticmethod
    def from_object(obj: Mapping[str, Any]) -> VersionInfo:
        """From a ModelVersion body; the effective stage is the operator's ``status.stage``."""
        meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
        artifact = spec.get("artifact") or {}
        created = meta.get("creationTimestamp")
        return VersionInfo(
            name=str(meta.get("name", "")),
            model_name=str(spec.get("modelName", "")),
            version=str(spec.get("version", "")),
            uri=str(artifact.get("uri", "")),
            digest=str(artifact.get("digest", "")),
            artifact_format=str(artifact.get("format", "joblib")),
            framework=str(spec.get("framework", "sklearn")),
            phase=Phase(status.get("phase") or Phase.PENDING),
            stage=Stage(status.get("stage") or Stage.NONE),
            approved=spec.get("approval") is not None,
            created=datetime.fromisoformat(created.replace("Z", "+00:00")) if isinstance(created, str) else None,
        )


@dataclass(frozen=True)
class Selection:
    """The version to serve, or why there is none (``reason`` is empty when one was chosen)."""

    version: VersionInfo | None
    reason: str = ""
    message: str = ""

    @property
    def transient(self) -> bool:
        return self.reason in TRANSIENT_REASONS


Check = Callable[[VersionInfo, ModelRef], Verdict]


def required_stage(ref: ModelRef) -> Stage | None:
    """The stage a version must be in: ``model.stage``; for ``modelName`` Production by default."""
    if ref.stage is not None:
        return Stage(ref.stage)
    return Stage.PRODUCTION if ref.model_name is not None else None


def verified(v: VersionInfo, ref: ModelRef) -> Verdict:
    if v.phase == Phase.PENDING:
        return Verdict(VERIFICATION_PENDING, f"ModelVersion {v.name} is waiting for its artifact digest check", True)
    if v.phase != Phase.VERIFIED:
        return Verdict(NOT_VERIFIED, f"ModelVersion {v.name} is not Verified (phase {v.phase})", True)
    return OK


def in_stage(v: VersionInfo, ref: ModelRef) -> Verdict:
    stage = required_stage(ref)
    if stage is not None and v.stage != stage:
        return Verdict(WRONG_STAGE, f"ModelVersion {v.name} is in stage {v.stage}, model.stage requires {stage}", True)
    return OK


def approved(v: VersionInfo, ref: ModelRef) -> Verdict:
    if required_stage(ref) is not None and ref.require_approval and not v.approved:
        return Verdict(NOT_APPROVED, f"ModelVersion {v.name} has no spec.approval and requireApproval is set", True)
    return OK


DEFAULT_CHECKS: tuple[Check, ...] = (verified, in_stage, approved)


def eligibility(v: VersionInfo, ref: ModelRef, checks: Sequence[Check] = DEFAULT_CHECKS) -> Verdict:
    """The first failing check for ``v``, or OK."""
    for check in checks:
        verdict = check(v, ref)
        if verdict.failed:
            return verdict
    return OK


def _newest_first(versions: Sequence[VersionInfo]) -> list[VersionInfo]:
    floor = datetime.min.replace(tzinfo=None)
    return sorted(
        versions,
        key=lambda v: ((v.created.replace(tzinfo=None) if v.created else floor), v.name),
        reverse=True,
    )


def select_version(ref: ModelRef, versions: Sequence[VersionInfo]) -> Selection:
    """The version ``ref`` resolves to among ``versions`` (all ModelVersions of the namespace)."""
    if ref.version_ref is not None:
        found = next((v for v in versions if v.name == ref.version_ref), None)
        if found is None:
            return Selection(None, NOT_FOUND, f"ModelVersion {ref.version_ref} not found")
        verdict = eligibility(found, ref)
        return Selection(found) if not verdict.failed else Selection(None, verdict.reason, verdict.message)
    candidates = _newest_first([v for v in versions if v.model_name == ref.model_name])
    if not candidates:
        return Selection(None, NOT_FOUND, f"no ModelVersion of model {ref.model_name}")
    verdicts = []
    for v in candidates:
        verdict = eligibility(v, ref)
        if not verdict.failed:
            return Selection(v)
        verdicts.append(verdict)
    newest = verdicts[0]
    stage = required_stage(ref)
    if newest.reason in TRANSIENT_REASONS:
        return Selection(None, newest.reason, newest.message)
    return Selection(
        None,
        NO_ELIGIBLE_VERSION,
        f"no eligible version of model {ref.model_name} (Verified, stage {stage}"
        f"{', approved' if ref.require_approval else ''}); newest: {newest.message}",
    )
