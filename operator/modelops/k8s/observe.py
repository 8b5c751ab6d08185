"""Gather what a decision needs: the artifact's digest (only when still unverified) and siblings."""

from __future__ import annotations

from modelops.api.modelversion import ModelVersionSpec, ModelVersionStatus, Stage
from modelops.artifacts import ArtifactUnreachable, compute_digest
from modelops.core.registry import DigestObservation, Observations, Sibling, needs_digest_check
from modelops.k8s.resources import MODEL_VERSION, CustomObjects


def observe_digest(spec: ModelVersionSpec) -> DigestObservation:
    try:
        got = compute_digest(spec.artifact.uri)
    except ArtifactUnreachable as exc:
        return DigestObservation("unreachable", error=str(exc))
    return DigestObservation(
        "match" if got.value == spec.artifact.digest else "mismatch", actual=got.value, size_bytes=got.size_bytes
    )


def observe_siblings(api: CustomObjects, namespace: str, model_name: str) -> tuple[Sibling, ...]:
    siblings = []
    for obj in api.list(MODEL_VERSION, namespace):
        spec = obj.get("spec") or {}
        if spec.get("modelName") != model_name:
            continue
        siblings.append(
            Sibling(
                name=obj["metadata"]["name"],
                requested_stage=Stage(spec.get("stage", Stage.NONE)),
                status=ModelVersionStatus.model_validate(obj.get("status") or {}),
                resource_version=str(obj["metadata"].get("resourceVersion", "")),
            )
        )
    return tuple(siblings)


def observe_model_version(
    api: CustomObjects, namespace: str, name: str, spec: ModelVersionSpec, status: ModelVersionStatus
) -> Observations:
    digest = observe_digest(spec) if needs_digest_check(status) else None
    wants_production = spec.stage == Stage.PRODUCTION and status.stage != Stage.PRODUCTION
    siblings = observe_siblings(api, namespace, spec.model_name) if wants_production else ()
    return Observations(digest, tuple(s for s in siblings if s.name != name))
