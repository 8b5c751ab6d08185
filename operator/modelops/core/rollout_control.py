"""What each `modelops rollout` write command asks the operator, or why it refuses: pure.

Control requests are status fields (``abort``, ``promoteFull``, ``promoteStep``, ``pausedByUser``,
and ``failedVersion: null`` for retry) written through the status subresource, as Argo Rollouts
does, so a spec owned by GitOps is never touched. Only `undo` edits spec, like `kubectl rollout
undo`. Each function gets the rollout as read, and the caller writes the patch with that read's
resourceVersion as precondition, so a request never acts on a state the user did not see.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from modelops.api.modeldeployment import RolloutPhase
from modelops.core.rollout_view import FAILED_PHASES, Rollout, describe_step


class Refused(Exception):
    """The command makes no sense for the rollout as it stands; the message says why, in one line."""


@dataclass(frozen=True)
class ControlRequest:
    """A merge patch (wire names) and the one line telling the user what was asked."""

    patch: dict[str, Any]
    summary: str


def _ref(rollout: Rollout) -> str:
    return f"modeldeployment/{rollout.name}"


def _no_canary(rollout: Rollout, verb: str) -> Refused:
    s = rollout.status
    if s.phase in FAILED_PHASES:
        failed = f" (failed version {s.failed_version})" if s.failed_version else ""
        return Refused(
            f"{_ref(rollout)} is {s.phase}{failed}: nothing to {verb}"
            + (f"; `modelops rollout retry {rollout.name}` rolls it out again" if s.failed_version else "")
        )
    serving = f", {s.stable_version} serves 100%" if s.stable_version else ""
    return Refused(f"{_ref(rollout)} has no canary in progress (phase {s.phase}{serving}): nothing to {verb}")


def _step_text(rollout: Rollout, index: int) -> str:
    steps = rollout.steps
    if 0 <= index < len(steps):
        return f"step {index + 1}/{len(steps)} ({describe_step(steps[index])})"
    return f"step {index + 1}"


def _unpause(rollout: Rollout) -> dict[str, Any]:
    """Promote also lifts a pause the user asked for: promoting means "go on" (Argo does the same)."""
    return {"pausedByUser": False} if rollout.status.paused_by_user else {}


def request_promote(rollout: Rollout, full: bool = False) -> ControlRequest:
    s = rollout.status
    if not rollout.in_progress:
        raise _no_canary(rollout, "promote")
    if s.abort:
        raise Refused(f"{_ref(rollout)} has an abort pending: the canary {s.canary_version} is being rolled back")
    lifted = " and lifted the user pause" if s.paused_by_user else ""
    if full:
        if s.promote_full:
            raise Refused(f"{_ref(rollout)}: full promotion of {s.canary_version} already requested")
        return ControlRequest(
            {"promoteFull": True, **_unpause(rollout)},
            f"{_ref(rollout)}: requested full promotion of {s.canary_version}{lifted}: "
            "the remaining steps are skipped and it becomes stable",
        )
    index = s.current_step_index
    if index is None:
        raise Refused(f"{_ref(rollout)} has no current step yet (phase {s.phase}): nothing to promote")
    if index >= len(rollout.steps):
        raise Refused(f"{_ref(rollout)}: all steps are done, {s.canary_version} is being promoted already")
    if s.promote_step == index:
        raise Refused(f"{_ref(rollout)}: promotion past {_step_text(rollout, index)} already requested")
    return ControlRequest(
        {"promoteStep": index, **_unpause(rollout)},
        f"{_ref(rollout)}: requested to advance {s.canary_version} past {_step_text(rollout, index)}{lifted}",
    )


def request_abort(rollout: Rollout) -> ControlRequest:
    s = rollout.status
    if not rollout.in_progress:
        raise _no_canary(rollout, "abort")
    if s.abort:
        raise Refused(f"{_ref(rollout)}: abort already requested")
    if s.current_step_index is not None and s.current_step_index >= len(rollout.steps):
        # The operator ignores an abort once the canary is being promoted: say so now.
        raise Refused(
            f"{_ref(rollout)}: all steps are done, {s.canary_version} is being promoted: too late to abort; "
            f"`modelops rollout undo {rollout.name}` goes back to the previous version"
        )
    stable = f", {s.stable_version} back to 100%" if s.stable_version else ""
    return ControlRequest(
        {"abort": True},
        f"{_ref(rollout)}: requested abort: canary {s.canary_version} to 0%{stable}",
    )


def request_retry(rollout: Rollout) -> ControlRequest:
    s = rollout.status
    if s.failed_version is None and not s.abort:
        raise Refused(f"{_ref(rollout)}: nothing failed (phase {s.phase}): retry rolls a rolled-back version out again")
    if s.failed_version is None:
        return ControlRequest(
            {"abort": False, "failedVersion": None},
            f"{_ref(rollout)}: withdrew the pending abort of {s.canary_version}",
        )
    return ControlRequest(
        {"abort": False, "failedVersion": None},
        f"{_ref(rollout)}: requested retry: {s.failed_version} will be rolled out again from the first step",
    )


def request_pause(rollout: Rollout) -> ControlRequest:
    s = rollout.status
    if not rollout.in_progress:
        raise _no_canary(rollout, "pause")
    if s.paused_by_user:
        raise Refused(f"{_ref(rollout)} is already paused")
    where = _step_text(rollout, s.current_step_index) if s.current_step_index is not None else "the current step"
    return ControlRequest(
        {"pausedByUser": True},
        f"{_ref(rollout)}: requested pause at {where}, canary {s.canary_version} at {s.canary_weight}%",
    )


def request_resume(rollout: Rollout) -> ControlRequest:
    s = rollout.status
    if s.paused_by_user:
        return ControlRequest({"pausedByUser": False}, f"{_ref(rollout)}: requested resume of {s.canary_version}")
    if rollout.spec is not None and rollout.spec.paused:
        raise Refused(
            f"{_ref(rollout)} is paused by spec.paused, not by `modelops rollout pause`: "
            "set spec.paused to false where the spec is kept (e.g. in Git)"
        )
    index = s.current_step_index
    if s.phase == RolloutPhase.PAUSED and index is not None and 0 <= index < len(rollout.steps):
        if rollout.steps[index].pause is not None:
            raise Refused(
                f"{_ref(rollout)} waits at {_step_text(rollout, index)}, a step, not a user pause: "
                f"`modelops rollout promote {rollout.name}` goes on"
            )
        # e.g. an inconclusive analysis: the operator paused and waits for a person's verdict
        why = f": {' '.join(s.message.split())}" if s.message else ""
        raise Refused(
            f"{_ref(rollout)} was paused by the operator at {_step_text(rollout, index)}{why}; "
            f"`modelops rollout promote {rollout.name}` goes on, `abort` rolls back"
        )
    raise Refused(f"{_ref(rollout)} is not paused by a user (phase {s.phase})")


# --- undo: the one command that edits spec -------------------------------------------------------


def previous_stable(rollout: Rollout, versions: Sequence[Mapping[str, Any]]) -> str | None:
    """The version that was stable before the current one.

    From status.history: the newest entry that moved something *to* the current stable from another
    version. Without one (history trimmed), the newest verified ModelVersion of the same model created
    before the current stable, skipping the version that failed.
    """
    s = rollout.status
    current = s.stable_version
    if current is None:
        return None
    for entry in reversed(s.history):
        if entry.to_value == current and entry.from_value and entry.from_value != current:
            return entry.from_value
    by_name = {str(v.get("metadata", {}).get("name")): v for v in versions}
    now_obj = by_name.get(current)
    if now_obj is None:
        return None
    model = now_obj.get("spec", {}).get("modelName")
    created = now_obj.get("metadata", {}).get("creationTimestamp") or ""
    older = [
        v
        for name, v in by_name.items()
        if name not in (current, s.failed_version)
        and v.get("spec", {}).get("modelName") == model
        and (v.get("status") or {}).get("phase") == "Verified"
        and (v.get("metadata", {}).get("creationTimestamp") or "") < created
    ]
    older.sort(key=lambda v: (v.get("metadata", {}).get("creationTimestamp") or "", v["metadata"]["name"]))
    return str(older[-1]["metadata"]["name"]) if older else None


def find_version(wanted: str, model: str | None, versions: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """A ModelVersion by object name, else by ``spec.version`` within ``model``."""
    for v in versions:
        if v.get("metadata", {}).get("name") == wanted:
            return v
    for v in versions:
        spec = v.get("spec", {})
        if spec.get("version") == wanted and (model is None or spec.get("modelName") == model):
            return v
    return None


def request_undo(
    rollout: Rollout, versions: Sequence[Mapping[str, Any]], to_version: str | None = None
) -> ControlRequest:
    """A spec patch setting ``spec.model.versionRef``: back to what served before, or to ``to_version``.

    During a canary or after a rollback, "before" is the stable version (the spec's version never
    became stable); otherwise the previous stable from history.
    """
    if rollout.spec is None:
        raise Refused(f"{_ref(rollout)} has an invalid spec ({rollout.spec_error}): fix it first")
    ref = rollout.spec.model
    s = rollout.status
    if ref.model_name is not None:
        stage = ref.stage or "Production"
        raise Refused(
            f"{_ref(rollout)} tracks the newest {stage} version of model {ref.model_name} (spec.model.modelName): "
            f"pinning a version here would stop registry-driven delivery; move the bad version out of {stage} "
            "(`modelops registry promote NAME --to Archived`) and the previous one is rolled out"
        )
    current = ref.version_ref
    by_name = {str(v.get("metadata", {}).get("name")): v for v in versions}
    model = (by_name.get(current or "") or by_name.get(s.stable_version or "") or {}).get("spec", {}).get("modelName")
    if to_version is not None:
        found = find_version(to_version, model, versions)
        if found is None:
            of = f" of model {model}" if model else ""
            raise Refused(f"no ModelVersion named {to_version!r} or with version {to_version!r}{of}")
        target = str(found["metadata"]["name"])
    elif s.stable_version is not None and s.stable_version != current:
        target = s.stable_version
    else:
        previous = previous_stable(rollout, versions)
        if previous is None:
            raise Refused(
                f"{_ref(rollout)}: no previous stable version is known (status.history has none): "
                "name one with --to-version"
            )
        target = previous
    if target == current:
        raise Refused(f"{_ref(rollout)} already has spec.model.versionRef {target}")
    found_obj = by_name.get(target)
    if found_obj is None:
        raise Refused(f"ModelVersion {target} does not exist (any more): name another with --to-version")
    mv_status = found_obj.get("status") or {}
    if mv_status.get("phase") == "Failed":
        raise Refused(f"ModelVersion {target} failed verification ({mv_status.get('message') or 'digest mismatch'})")
    if ref.stage is not None and (mv_status.get("stage") or "None") != ref.stage:
        raise Refused(
            f"ModelVersion {target} is in stage {mv_status.get('stage') or 'None'}, "
            f"but spec.model.stage requires {ref.stage}"
        )
    return ControlRequest(
        {"spec": {"model": {"versionRef": target}}},
        f"{_ref(rollout)}: spec.model.versionRef {current} -> {target} (rolled out by the operator)",
    )
