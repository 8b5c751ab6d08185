"""Just enough Kubernetes protobuf to read what `kubectl create namespace|configmap|secret|serviceaccount|role|
rolebinding|clusterrole|clusterrolebinding|token` and `kubectl auth can-i|whoami` send.

kubectl's generators post built-in objects as `application/vnd.kubernetes.protobuf`; a real API
server reads it. Decoding needs each type's message layout, so only these simple kinds are
supported (the rest get 415); replies are always JSON, which client-go accepts.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from typing import Any

MAGIC = b"k8s\x00"


class ProtobufError(ValueError):
    """A body the sandbox cannot decode (unsupported kind or malformed)."""


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result, shift = 0, 0
    while True:
        if pos >= len(buf):
            raise ProtobufError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) pairs: ints for varints, bytes for length-delimited fields."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            yield number, value
        elif wire == 2:
            length, pos = _varint(buf, pos)
            yield number, buf[pos : pos + length]
            pos += length
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")


def _str(v: int | bytes) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _map(entries: list[bytes], binary: bool = False) -> dict[str, str]:
    out = {}
    for entry in entries:
        key, value = "", b""
        for n, v in _fields(entry):
            if n == 1:
                key = _str(v)
            elif n == 2 and isinstance(v, bytes):
                value = v
        out[key] = base64.b64encode(value).decode() if binary else value.decode()
    return out


def _owner(buf: bytes) -> dict[str, Any]:
    names = {1: "kind", 3: "name", 4: "uid", 5: "apiVersion"}
    ref: dict[str, Any] = {}
    for n, v in _fields(buf):
        if n in names:
            ref[names[n]] = _str(v)
        elif n == 6:
            ref["controller"] = bool(v)
        elif n == 7:
            ref["blockOwnerDeletion"] = bool(v)
    return ref


def _object_meta(buf: bytes) -> dict[str, Any]:
    strings = {1: "name", 2: "generateName", 3: "namespace"}
    meta: dict[str, Any] = {}
    labels: list[bytes] = []
    annotations: list[bytes] = []
    for n, v in _fields(buf):
        if n in strings and v:  # gogo-protobuf writes empty strings too
            meta[strings[n]] = _str(v)
        elif n == 11 and isinstance(v, bytes):
            labels.append(v)
        elif n == 12 and isinstance(v, bytes):
            annotations.append(v)
        elif n == 13 and isinstance(v, bytes):
            meta.setdefault("ownerReferences", []).append(_owner(v))
        elif n == 14:
            meta.setdefault("finalizers", []).append(_str(v))
    if labels:
        meta["labels"] = _map(labels)
    if annotations:
        meta["annotations"] = _map(annotations)
    return meta


def _namespace(buf: bytes) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for n, v in _fields(buf):
        if n == 1 and isinstance(v, bytes):
            obj["metadata"] = _object_meta(v)
        elif n == 2 and isinstance(v, bytes):
            finalizers = [_str(f) for m, f in _fields(v) if m == 1]
            if finalizers:
                obj["spec"] = {"finalizers": finalizers}
    return obj


def _configmap(buf: bytes) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    data: list[bytes] = []
    binary: list[bytes] = []
    for n, v in _fields(buf):
        if n == 1 and isinstance(v, bytes):
            obj["metadata"] = _object_meta(v)
        elif n == 2 and isinstance(v, bytes):
            data.append(v)
        elif n == 3 and isinstance(v, bytes):
            binary.append(v)
        elif n == 4:
            obj["immutable"] = bool(v)
    if data:
        obj["data"] = _map(data)
    if binary:
        obj["binaryData"] = _map(binary, binary=True)
    return obj


def _secret(buf: bytes) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    data: list[bytes] = []
    string_data: list[bytes] = []
    for n, v in _fields(buf):
        if n == 1 and isinstance(v, bytes):
            obj["metadata"] = _object_meta(v)
        elif n == 2 and isinstance(v, bytes):
            data.append(v)
        elif n == 3 and v:
            obj["type"] = _str(v)
        elif n == 4 and isinstance(v, bytes):
            string_data.append(v)
        elif n == 5:
            obj["immutable"] = bool(v)
    if data:
        obj["data"] = _map(data, binary=True)
    if string_data:
        obj["stringData"] = _map(string_data)
    return obj


def _message(buf: bytes, strings: dict[int, str], lists: dict[int, str] | None = None) -> dict[str, Any]:
    """A flat message: optional strings (empty ones dropped) and repeated strings (empty ones kept: `""` is
    the core API group in a PolicyRule)."""
    out: dict[str, Any] = {}
    for n, v in _fields(buf):
        if n in strings and v:
            out[strings[n]] = _str(v)
        elif lists and n in lists:
            out.setdefault(lists[n], []).append(_str(v))
    return out


def _label_selector(buf: bytes) -> dict[str, Any]:
    out: dict[str, Any] = {}
    labels: list[bytes] = []
    for n, v in _fields(buf):
        if n == 1 and isinstance(v, bytes):
            labels.append(v)
        elif n == 2 and isinstance(v, bytes):
            expr = _message(v, {1: "key", 2: "operator"}, {3: "values"})
            out.setdefault("matchExpressions", []).append(expr)
    if labels:
        out["matchLabels"] = _map(labels)
    return out


_RULE = {1: "verbs", 2: "apiGroups", 3: "resources", 4: "resourceNames", 5: "nonResourceURLs"}


def _role(buf: bytes) -> dict[str, Any]:
    """Role and ClusterRole (`kubectl create role|clusterrole`)."""
    obj: dict[str, Any] = {}
    for n, v in _fields(buf):
        if n == 1 and isinstance(v, bytes):
            obj["metadata"] = _object_meta(v)
        elif n == 2 and isinstance(v, bytes):
            obj.setdefault("rules", []).append(_message(v, {}, _RULE))
        elif n == 3 and isinstance(v, bytes):
            selectors = [_label_selector(s) for m, s in _fields(v) if m == 1 and isinstance(s, bytes)]
            obj["aggregationRule"] = {"clusterRoleSelectors": selectors}
    return obj


def _role_binding(buf: bytes) -> dict[str, Any]:
    """RoleBinding and ClusterRoleBinding (`kubectl create rolebinding|clusterrolebinding`)."""
    obj: dict[str, Any] = {}
    for n, v in _fields(buf):
        if n == 1 and isinstance(v, bytes):
            obj["metadata"] = _object_meta(v)
        elif n == 2 and isinstance(v, bytes):
            subject = _message(v, {1: "kind", 2: "apiGroup", 3: "name", 4: "namespace"})
            obj.setdefault("subjects", []).append(subject)
        elif n == 3 and isinstance(v, bytes):
            obj["roleRef"] = _message(v, {1: "apiGroup", 2: "kind", 3: "name"})
    return obj


def _service_account(buf: bytes) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for n, v in _fields(buf):
        if n == 1 and isinstance(v, bytes):
            obj["metadata"] = _object_meta(v)
        elif n == 4:
            obj["automountServiceAccountToken"] = bool(v)
    return obj


def _review(spec_decoder: Callable[[bytes], dict[str, Any]]) -> Callable[[bytes], dict[str, Any]]:
    """A review (TokenRequest, access reviews): metadata, spec; the status a client sends is ignored."""

    def decode(buf: bytes) -> dict[str, Any]:
        obj: dict[str, Any] = {}
        for n, v in _fields(buf):
            if n == 1 and isinstance(v, bytes):
                obj["metadata"] = _object_meta(v)
            elif n == 2 and isinstance(v, bytes):
                obj["spec"] = spec_decoder(v)
        return obj

    return decode


def _token_request_spec(buf: bytes) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    for n, v in _fields(buf):
        if n == 1:
            spec.setdefault("audiences", []).append(_str(v))
        elif n == 3 and isinstance(v, bytes):
            spec["boundObjectRef"] = _message(v, {1: "kind", 2: "apiVersion", 3: "name", 4: "uid"})
        elif n == 4 and isinstance(v, int):
            spec["expirationSeconds"] = v
    return spec


def _access_review_spec(buf: bytes) -> dict[str, Any]:
    """SelfSubjectAccessReviewSpec: resourceAttributes or nonResourceAttributes."""
    spec: dict[str, Any] = {}
    for n, v in _fields(buf):
        if n == 1 and isinstance(v, bytes):
            names = {1: "namespace", 2: "verb", 3: "group", 4: "version", 5: "resource", 6: "subresource", 7: "name"}
            spec["resourceAttributes"] = _message(v, names)
        elif n == 2 and isinstance(v, bytes):
            spec["nonResourceAttributes"] = _message(v, {1: "path", 2: "verb"})
    return spec


DECODERS: dict[tuple[str, str], Callable[[bytes], dict[str, Any]]] = {
    ("v1", "Namespace"): _namespace,
    ("v1", "ConfigMap"): _configmap,
    ("v1", "Secret"): _secret,
    ("v1", "ServiceAccount"): _service_account,
    ("rbac.authorization.k8s.io/v1", "Role"): _role,
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): _role,
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): _role_binding,
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): _role_binding,
    ("authentication.k8s.io/v1", "TokenRequest"): _review(_token_request_spec),
    ("authentication.k8s.io/v1", "SelfSubjectReview"): _review(lambda buf: {}),
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"): _review(_access_review_spec),
    ("authorization.k8s.io/v1", "SelfSubjectRulesReview"): _review(lambda buf: _message(buf, {1: "namespace"})),
}


def decode(body: bytes) -> dict[str, Any]:
    """A `k8s\\0`-framed runtime.Unknown holding one of DECODERS' kinds, as a JSON-style dict."""
    if not body.startswith(MAGIC):
        raise ProtobufError("missing the k8s protobuf magic number")
    api_version = kind = ""
    raw = b""
    for n, v in _fields(body[len(MAGIC) :]):
        if n == 1 and isinstance(v, bytes):
            for m, t in _fields(v):
                if m == 1:
                    api_version = _str(t)
                elif m == 2:
                    kind = _str(t)
        elif n == 2 and isinstance(v, bytes):
            raw = v
    decoder = DECODERS.get((api_version, kind))
    if decoder is None:
        raise ProtobufError(f"protobuf bodies of {api_version}/{kind} are not supported by the sandbox")
    obj = decoder(raw)
    obj.update({"apiVersion": api_version, "kind": kind})
    obj.setdefault("metadata", {})
    return obj
