"""The validation of built-in kinds an operator's children run into on a real cluster.

Built-ins are otherwise stored as given; these checks are the common, costly mistakes: a selector
that does not match the template labels, a container without an image, an immutable field changed
on re-apply (Deployment selector, Job template, Service clusterIP, immutable ConfigMaps/Secrets).
"""

from __future__ import annotations

import json
import re
from typing import Any

from modelops.sandbox.resources import Resource
from modelops.sandbox.schema import Cause, fmt
from modelops.sandbox.selectors import selector_matches

Obj = dict[str, Any]

_WORKLOADS = {("apps", "deployments"), ("apps", "replicasets"), ("apps", "statefulsets"), ("apps", "daemonsets")}
_LABEL_1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _go(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _pod_template(res: Resource, obj: Obj) -> tuple[str, Obj | None]:
    """Where the pod spec lives for this kind, and the pod spec (None if the kind has none)."""
    if res.key == ("", "pods"):
        return "spec", _get(obj, "spec")
    if res.key in _WORKLOADS or res.key == ("batch", "jobs"):
        return "spec.template.spec", _get(obj, "spec", "template", "spec")
    if res.key == ("batch", "cronjobs"):
        return "spec.jobTemplate.spec.template.spec", _get(obj, "spec", "jobTemplate", "spec", "template", "spec")
    return "", None


def _containers(base: str, pod: Obj) -> list[Cause]:
    causes: list[Cause] = []
    containers = pod.get("containers")
    if not containers:
        return [Cause("FieldValueRequired", f"{base}.containers", "Required value")]
    seen: set[str] = set()
    for group in ("initContainers", "containers"):
        for n, c in enumerate(pod.get(group) or []):
            where = f"{base}.{group}[{n}]"
            if not isinstance(c, dict):
                causes.append(Cause("FieldValueInvalid", where, f"Invalid value: {fmt(c)}: must be an object"))
                continue
            name = c.get("name")
            if not name:
                causes.append(Cause("FieldValueRequired", f"{where}.name", "Required value"))
            elif len(name) > 63 or not _LABEL_1123.match(name):
                causes.append(
                    Cause("FieldValueInvalid", f"{where}.name", f"Invalid value: {fmt(name)}: a lowercase RFC 1123 label "
                          "must consist of lower case alphanumeric characters or '-', and must start and end with an "
                          "alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
                          "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
                )  # fmt: skip
            elif name in seen:
                causes.append(Cause("FieldValueDuplicate", f"{where}.name", f"Duplicate value: {fmt(name)}"))
            else:
                seen.add(name)
            if not c.get("image"):
                causes.append(Cause("FieldValueRequired", f"{where}.image", "Required value"))
            for p, port in enumerate(c.get("ports") or []):
                number = port.get("containerPort") if isinstance(port, dict) else None
                if not isinstance(number, int) or not 1 <= number <= 65535:
                    causes.append(
                        Cause("FieldValueInvalid", f"{where}.ports[{p}].containerPort",
                              f"Invalid value: {fmt(number)}: must be between 1 and 65535, inclusive")
                    )  # fmt: skip
    return causes


def builtin_causes(res: Resource, obj: Obj, old: Obj | None) -> list[Cause]:
    """Errors for a create (`old` None) or an update of a built-in kind."""
    causes: list[Cause] = []
    base, pod = _pod_template(res, obj)
    if pod is not None or base:
        if not isinstance(pod, dict):
            causes.append(Cause("FieldValueRequired", base, "Required value"))
        else:
            causes += _containers(base, pod)
    if res.key in _WORKLOADS:
        selector = _get(obj, "spec", "selector")
        labels = _get(obj, "spec", "template", "metadata", "labels") or {}
        if not selector:
            causes.append(Cause("FieldValueRequired", "spec.selector", "Required value"))
        elif not (selector.get("matchLabels") or selector.get("matchExpressions")):
            causes.append(
                Cause(
                    "FieldValueInvalid",
                    "spec.selector",
                    f"Invalid value: {_go(selector)}: empty selector is invalid for deployment",
                )
            )
        elif not selector_matches(selector, labels):
            causes.append(
                Cause("FieldValueInvalid", "spec.template.metadata.labels",
                      f"Invalid value: {_go(labels)}: `selector` does not match template `labels`")
            )  # fmt: skip
    if res.key == ("batch", "jobs") and old is None:
        selector = _get(obj, "spec", "selector")
        uid = _get(obj, "metadata", "uid")  # the selector generated on create selects this uid alone
        generated = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
        if selector and not _get(obj, "spec", "manualSelector") and selector != generated:
            causes.append(
                Cause(
                    "FieldValueInvalid",
                    "spec.selector",
                    f"Invalid value: {_go(selector)}: `selector` not auto-generated",
                )
            )
    if old is not None:
        causes += _immutable(res, obj, old)
    return causes


def _immutable(res: Resource, obj: Obj, old: Obj) -> list[Cause]:
    fields: list[tuple[str, ...]] = []
    if res.key in _WORKLOADS:
        fields.append(("spec", "selector"))
    if res.key == ("apps", "statefulsets"):
        fields += [("spec", "serviceName"), ("spec", "volumeClaimTemplates"), ("spec", "podManagementPolicy")]
    if res.key == ("batch", "jobs"):
        fields += [("spec", "selector"), ("spec", "template"), ("spec", "completions")]
    if res.key == ("", "services") and _get(old, "spec", "clusterIP"):
        fields.append(("spec", "clusterIP"))
    causes = []
    for path in fields:
        before, after = _get(old, *path), _get(obj, *path)
        if before != after:
            causes.append(
                Cause("FieldValueInvalid", ".".join(path), f"Invalid value: {_go(after)}: field is immutable")
            )
    if res.key in (("", "configmaps"), ("", "secrets")) and old.get("immutable"):
        for key in ("data", "binaryData", "stringData"):
            if obj.get(key) != old.get(key):
                causes.append(
                    Cause("FieldValueForbidden", key, "Forbidden: field is immutable when `immutable` is set")
                )
        if not obj.get("immutable"):
            causes.append(
                Cause("FieldValueForbidden", "immutable", "Forbidden: field is immutable when `immutable` is set")
            )
    return causes
