"""Gather what a decision needs: the artifact's digest (only when still unverified) and siblings."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from pydantic import ValidationError

from modelops.api.base import describe_spec_error
from modelops.api.modelpolicy import ModelPolicySpec
from modelops.api.modelversion import ModelVersionSpec, ModelVersionStatus, Stage
from modelops.artifact_verifier import Verifier
from modelops.artifacts import ArtifactRefused, ArtifactUnreachable
from modelops.core.registry import DigestObservation, Observations, Sibling, reads_policies
from modelops.core.validation_gates import PolicyRef
from modelops.k8s.resources import MODEL_POLICY, MODEL_VERSION, CustomObjects, NotFound, Obj


async def observe_digest(verifier: Verifier, namespace: str, spec: ModelVersionSpec) -> DigestObservation:
    """Read and hash the artifact on the event loop: the verifier's own slots and pool, never a
    handler worker, so a slow store delays only its own versions."""
    try:
        got = await verifier.digest(spec.artifact.uri, namespace)
    except ArtifactUnreachable as exc:
        reason = "ArtifactRefused" if isinstance(exc, ArtifactRefused) else "ArtifactUnreachable"
        return DigestObservation("unreachable", error=str(exc), reason=reason)
    return DigestObservation(
        "match" if got.value == spec.artifact.digest else "mismatch", actual=got.value, size_bytes=got.size_bytes
    )


SIBLING_READS_MAX = 32
"""Up to this many siblings are read one by one; more, and one listing of the namespace is cheaper."""


def _read_siblings(api: CustomObjects, namespace: str, names: Collection[str] | None) -> list[Obj]:
    """Fresh reads: of ``names`` (a model's versions, as the watch knows them), or of the namespace."""
    if names is None or len(names) > SIBLING_READS_MAX:
        return api.list(MODEL_VERSION, namespace)
    found = []
    for name in sorted(names):
        try:
            found.append(api.get(MODEL_VERSION, namespace, name))
        except NotFound:  # deleted since the watch saw it
            continue
    return found


def observe_siblings(
    api: CustomObjects, namespace: str, model_name: str, names: Collection[str] | None = None
) -> tuple[Sibling, ...]:
    """The versions of ``model_name``, read fresh. ``names``: which they are (from the operator's
    index of versions by model), so a promotion reads its own model's versions, not the namespace's."""
    siblings = []
    for obj in _read_siblings(api, namespace, names):
        spec = obj.get("spec") or {}
        if spec.get("modelName") != model_name:
            continue
        siblings.append(sibling_of(obj))
    return tuple(siblings)


def sibling_of(obj: Mapping[str, Any]) -> Sibling:
    """A ModelVersion object as the registry's decisions read another version."""
    spec = obj.get("spec") or {}
    return Sibling(
        name=str(obj["metadata"]["name"]),
        requested_stage=Stage(spec.get("stage") or Stage.NONE),
        status=ModelVersionStatus.model_validate(obj.get("status") or {}),
        resource_version=str(obj["metadata"].get("resourceVersion") or ""),
        metrics=spec.get("metrics") or None,
    )


def observe_policies(api: CustomObjects, namespace: str, model_name: str) -> tuple[PolicyRef, ...]:
    """The ModelPolicies of ``model_name``; one that does not parse is kept, with its error (gates stay shut)."""
    try:
        items = api.list(MODEL_POLICY, namespace)
    except NotFound:  # the ModelPolicy CRD is not installed: no policy can exist
        return ()
    policies = []
    for obj in items:
        raw = obj.get("spec") or {}
        if raw.get("modelName") != model_name:
            continue
        name = str(obj["metadata"]["name"])
        try:
            policies.append(PolicyRef(name, ModelPolicySpec.model_validate(raw)))
        except ValidationError as exc:
            policies.append(PolicyRef(name, None, describe_spec_error(exc)))
    return tuple(policies)


def observe_model_version(
    api: CustomObjects,
    namespace: str,
    name: str,
    spec: ModelVersionSpec,
    status: ModelVersionStatus,
    digest: DigestObservation | None,
    sibling_names: Collection[str] | None = None,
) -> Observations:
    """``digest``: the outcome of ``observe_digest``, read beforehand when ``needs_digest_check``;
    ``sibling_names``: the versions of the same model as the watch knows them (None: list them)."""
    policies = observe_policies(api, namespace, spec.model_name) if reads_policies(spec, status) else ()
    wants_production = spec.stage == Stage.PRODUCTION and status.stage != Stage.PRODUCTION
    read = wants_production or policies
    siblings = observe_siblings(api, namespace, spec.model_name, sibling_names) if read else ()
    return Observations(digest, tuple(s for s in siblings if s.name != name), policies)
