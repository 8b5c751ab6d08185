"""The field selectors kube-apiserver accepts per kind, and the value each one reads.

A real server answers a fieldSelector only on the fields a kind indexes (its field label
conversion functions: k8s.io/kubernetes pkg/apis/*/v1/conversion.go and the registries'
ToSelectableFields); anything else is a 400, so an operator that filters on `spec.x` works
nowhere but in a lenient fake. Custom resources accept `metadata.name`, `metadata.namespace`
(namespaced kinds) and the CRD version's declared `selectableFields`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from modelops.sandbox.resources import Resource
from modelops.sandbox.selectors import SelectorError

Getter = Callable[[Mapping[str, Any]], str]
Resolver = Callable[[str], Getter]
Obj = Mapping[str, Any]


def value(obj: Any, path: str) -> str:
    """The string a dotted path holds (booleans as Go prints them, missing as "")."""
    cur = obj
    for part in path.split("."):
        if not isinstance(cur, Mapping):
            return ""
        cur = cur.get(part)
    if cur is None or isinstance(cur, dict | list):
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def _at(path: str) -> Getter:
    return lambda obj: value(obj, path)


def _first(*paths: str) -> Getter:
    return lambda obj: next((v for v in (value(obj, p) for p in paths) if v), "")


def _pod_ip(obj: Obj) -> str:
    ips = (obj.get("status") or {}).get("podIPs") or []
    first = ips[0].get("ip", "") if ips and isinstance(ips[0], Mapping) else ""
    return str(first or value(obj, "status.podIP"))


def _default(getter: Getter, default: str) -> Getter:
    return lambda obj: getter(obj) or default


META: dict[str, Getter] = {"metadata.name": _at("metadata.name"), "metadata.namespace": _at("metadata.namespace")}
_INVOLVED = ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")

# (group, plural) -> label -> value; kinds not listed accept metadata.name and metadata.namespace only.
BUILTIN: dict[tuple[str, str], dict[str, Getter]] = {
    ("", "pods"): {
        **META,
        "spec.nodeName": _at("spec.nodeName"),
        "spec.host": _at("spec.nodeName"),  # what v1 clients once sent for spec.nodeName
        "spec.restartPolicy": _at("spec.restartPolicy"),
        "spec.schedulerName": _at("spec.schedulerName"),
        "spec.serviceAccountName": _at("spec.serviceAccountName"),
        "spec.hostNetwork": _default(_at("spec.hostNetwork"), "false"),
        "status.phase": _at("status.phase"),
        "status.podIP": _pod_ip,
        "status.podIPs": _pod_ip,
        "status.nominatedNodeName": _at("status.nominatedNodeName"),
    },
    ("", "events"): {
        **META,
        **{f"involvedObject.{k}": _at(f"involvedObject.{k}") for k in _INVOLVED},
        "reason": _at("reason"),
        "reportingComponent": _at("reportingComponent"),
        "source": _first("source.component", "reportingComponent"),
        "type": _at("type"),
    },
    ("events.k8s.io", "events"): {
        **META,
        **{f"regarding.{k}": _at(f"regarding.{k}") for k in _INVOLVED},
        "reason": _at("reason"),
        "reportingController": _at("reportingController"),
        "source": _first("deprecatedSource.component", "reportingController"),
        "type": _at("type"),
    },
    ("", "namespaces"): {
        "metadata.name": _at("metadata.name"),
        "name": _at("metadata.name"),
        "status.phase": _at("status.phase"),
    },
    ("", "nodes"): {
        "metadata.name": _at("metadata.name"),
        "spec.unschedulable": _default(_at("spec.unschedulable"), "false"),
    },
    ("", "secrets"): {**META, "type": _at("type")},
    ("", "services"): {**META, "spec.clusterIP": _at("spec.clusterIP"), "spec.type": _at("spec.type")},
    ("", "persistentvolumeclaims"): {**META, "name": _at("metadata.name")},
    ("", "replicationcontrollers"): {**META, "status.replicas": _default(_at("status.replicas"), "0")},
    ("apps", "replicasets"): {**META, "status.replicas": _default(_at("status.replicas"), "0")},
    ("batch", "jobs"): {**META, "status.successful": _default(_at("status.succeeded"), "0")},
}

_MESSAGES: dict[tuple[str, str], Callable[[str], str]] = {
    ("batch", "jobs"): lambda label: f'field label "{label}" not supported for batchv1.Job',
}


def _not_known(label: str) -> str:
    """runtime.DefaultMetaV1FieldSelectorConversion, for kinds without a conversion function of their own."""
    return f'"{label}" is not a known field selector: only "metadata.name", "metadata.namespace"'


def _not_supported(label: str) -> str:
    return f"field label not supported: {label}"


def custom_fields(namespaced: bool, selectable: list[Any]) -> dict[str, Getter]:
    """A custom resource's labels: name, namespace when namespaced, and the version's selectableFields."""
    fields = {"metadata.name": _at("metadata.name")}
    if namespaced:
        fields["metadata.namespace"] = _at("metadata.namespace")
    for entry in selectable:
        path = str(entry.get("jsonPath", "") if isinstance(entry, Mapping) else "").lstrip(".")
        if path:
            fields[path] = _at(path)
    return fields


def resolver(res: Resource, crd: Obj | None = None) -> Resolver:
    """label -> getter for `res`; an unsupported label raises SelectorError with kube-apiserver's message."""
    message: Callable[[str], str]
    if res.is_custom:
        version: Obj = next(
            (v for v in ((crd or {}).get("spec") or {}).get("versions") or [] if v.get("name") == res.version), {}
        )
        fields = custom_fields(res.namespaced, list(version.get("selectableFields") or []))
        message = _not_supported
    elif res.key in BUILTIN:
        fields = BUILTIN[res.key]
        message = _MESSAGES.get(res.key, _not_supported)
    else:
        fields, message = META, _not_known

    def resolve(label: str) -> Getter:
        try:
            return fields[label]
        except KeyError:
            raise SelectorError(message(label)) from None

    return resolve
