"""kube-apiserver's RBAC authorizer, pure over stored Role/ClusterRole/RoleBinding/ClusterRoleBinding objects.

Mirrors `plugin/pkg/auth/authorizer/rbac` and `pkg/registry/rbac/validation/rule.go`: rules come from
ClusterRoleBindings, then from RoleBindings of the request's namespace; a rule allows a request
when its verb, API group, resource (or `resource/subresource`, or `*/subresource`) and, when it
lists any, resourceNames match; wildcards `*`. Non-resource URLs match exactly or by a trailing `*`.
The request attributes are derived from the URL as kube's `RequestInfoFactory` does, so a denial
names the same verb, resource and scope as a real cluster's 403.

The default ClusterRoles and bindings every cluster has (cluster-admin for `system:masters`,
system:discovery, system:basic-user, system:public-info-viewer) are built in, not stored: a stored
object of the same name takes their place.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from modelops.sandbox.errors import ApiError
from modelops.sandbox.selectors import selector_matches

Obj = dict[str, Any]
Objects = Mapping[tuple[str, str], Mapping[tuple[str, str], Obj]]
"""`{(group, plural): {(namespace, name): object}}`: the store's own layout (`Store.objects`)."""

RBAC_GROUP = "rbac.authorization.k8s.io"
ROLES = (RBAC_GROUP, "roles")
ROLE_BINDINGS = (RBAC_GROUP, "rolebindings")
CLUSTER_ROLES = (RBAC_GROUP, "clusterroles")
CLUSTER_ROLE_BINDINGS = (RBAC_GROUP, "clusterrolebindings")

MASTERS = "system:masters"
AUTHENTICATED = "system:authenticated"
UNAUTHENTICATED = "system:unauthenticated"
SA_PREFIX = "system:serviceaccount:"
SA_GROUP = "system:serviceaccounts"


@dataclass(frozen=True)
class UserInfo:
    """Who makes a request: kube's `user.Info`."""

    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def as_dict(self) -> Obj:
        """As `authentication.k8s.io/v1` UserInfo (SelfSubjectReview, TokenReview)."""
        out: Obj = {"username": self.name}
        if self.uid:
            out["uid"] = self.uid
        if self.groups:
            out["groups"] = list(self.groups)
        if self.extra:
            out["extra"] = {k: list(v) for k, v in self.extra.items()}
        return out


ADMIN = UserInfo("system:admin", (MASTERS, AUTHENTICATED))
"""The credential-less caller (operator, kubectl, tests): full access, as a client certificate in system:masters."""


def service_account_user(
    namespace: str, name: str, uid: str = "", extra: Mapping[str, tuple[str, ...]] | None = None
) -> UserInfo:
    return UserInfo(
        f"{SA_PREFIX}{namespace}:{name}", (SA_GROUP, f"{SA_GROUP}:{namespace}", AUTHENTICATED), uid, extra or {}
    )


def split_service_account(username: str) -> tuple[str, str] | None:
    """(namespace, name) of a `system:serviceaccount:<ns>:<name>` username, else None."""
    if not username.startswith(SA_PREFIX):
        return None
    ns, sep, name = username[len(SA_PREFIX) :].partition(":")
    if not sep or not ns or not name or ":" in name:
        return None
    return ns, name


@dataclass(frozen=True)
class Attributes:
    """kube's `authorizer.Attributes`: what a request does, independent of whether the resource exists."""

    user: UserInfo
    verb: str
    resource_request: bool = True
    path: str = ""
    api_group: str = ""
    api_version: str = ""
    namespace: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""


_TRUE = ("1", "t", "T", "true", "TRUE", "True")  # Go's strconv.ParseBool
_METHOD_VERBS = {"POST": "create", "GET": "get", "HEAD": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
_NAMESPACE_SUBRESOURCES = ("status", "finalize")


def request_attributes(user: UserInfo, method: str, path: str, query: Mapping[str, str]) -> Attributes:
    """The attributes kube-apiserver's RequestInfoFactory derives from a request line."""
    parts = [p for p in path.strip("/").split("/") if p] if path.strip("/") else []
    nonresource = Attributes(user, method.lower(), False, path)
    if len(parts) < 3 or parts[0] not in ("api", "apis"):
        return nonresource
    if parts[0] == "apis":
        if len(parts) < 4:
            return nonresource
        group, rest = parts[1], parts[2:]
    else:
        group, rest = "", parts[1:]
    version, rest = rest[0], rest[1:]
    via_path = rest[0] in ("watch", "proxy")
    if via_path:
        if len(rest) < 2:
            return nonresource
        verb, rest = rest[0], rest[1:]
    else:
        verb = _METHOD_VERBS.get(method, "")
    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) >= 2 else ""
    subresource = rest[2] if len(rest) >= 3 and verb != "proxy" else ""
    if not name and verb == "get":
        verb = "watch" if query.get("watch", "") in _TRUE else "list"
        name = _exact_name(query.get("fieldSelector", ""))
    if not name and verb == "delete":
        verb = "deletecollection"
    return Attributes(user, verb, True, path, group, version, namespace, resource, subresource, name)


def _exact_name(selector: str) -> str:
    """`metadata.name` a field selector requires exactly (list/watch of one object by name)."""
    for term in selector.split(","):
        key, sep, value = term.partition("==") if "==" in term else term.partition("=")
        if sep and not key.endswith("!") and key.strip() == "metadata.name":
            value = value.strip()
            if value and value not in (".", "..") and "/" not in value and "%" not in value:
                return value
    return ""


# -- rules ------------------------------------------------------------------------------------


def _has(values: Any, wanted: str) -> bool:
    return isinstance(values, list) and ("*" in values or wanted in values)


def resource_matches(resources: Any, combined: str, subresource: str) -> bool:
    if not isinstance(resources, list):
        return False
    for r in resources:
        if r == "*" or r == combined:
            return True
        if subresource and r == f"*/{subresource}":
            return True
    return False


def nonresource_url_matches(urls: Any, path: str) -> bool:
    if not isinstance(urls, list):
        return False
    for u in urls:
        if not isinstance(u, str):
            continue
        if u == "*" or u == path or (u.endswith("*") and path.startswith(u.rstrip("*"))):
            return True
    return False


def rule_allows(attrs: Attributes, rule: Mapping[str, Any]) -> bool:
    """kube's `RuleAllows`."""
    if not _has(rule.get("verbs"), attrs.verb):
        return False
    if not attrs.resource_request:
        return nonresource_url_matches(rule.get("nonResourceURLs"), attrs.path)
    combined = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    names = rule.get("resourceNames")
    return (
        _has(rule.get("apiGroups"), attrs.api_group)
        and resource_matches(rule.get("resources"), combined, attrs.subresource)
        and (not names or attrs.name in names)
    )


# -- built-in policy (bootstrappolicy) --------------------------------------------------------

_DISCOVERY_URLS = ["/livez", "/readyz", "/healthz", "/version", "/version/", "/openapi", "/openapi/*",
                   "/api", "/api/*", "/apis", "/apis/*"]  # fmt: skip
_PUBLIC_URLS = ["/livez", "/readyz", "/healthz", "/version", "/version/"]


def _cluster_role(name: str, rules: list[Obj]) -> Obj:
    return {
        "apiVersion": f"{RBAC_GROUP}/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
        "rules": rules,
    }


def _cluster_binding(name: str, role: str, groups: list[str]) -> Obj:
    return {
        "apiVersion": f"{RBAC_GROUP}/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": RBAC_GROUP, "kind": "Group", "name": g} for g in groups],
    }


DEFAULT_CLUSTER_ROLES: dict[str, Obj] = {
    r["metadata"]["name"]: r
    for r in (
        _cluster_role(
            "cluster-admin",
            [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}, {"nonResourceURLs": ["*"], "verbs": ["*"]}],
        ),
        _cluster_role("system:discovery", [{"nonResourceURLs": _DISCOVERY_URLS, "verbs": ["get"]}]),
        _cluster_role("system:public-info-viewer", [{"nonResourceURLs": _PUBLIC_URLS, "verbs": ["get"]}]),
        _cluster_role(
            "system:basic-user",
            [
                {
                    "apiGroups": ["authorization.k8s.io"],
                    "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                    "verbs": ["create"],
                },
                {"apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"], "verbs": ["create"]},
            ],
        ),
    )
}
DEFAULT_CLUSTER_ROLE_BINDINGS: dict[str, Obj] = {
    b["metadata"]["name"]: b
    for b in (
        _cluster_binding("cluster-admin", "cluster-admin", [MASTERS]),
        _cluster_binding("system:discovery", "system:discovery", [AUTHENTICATED]),
        _cluster_binding("system:basic-user", "system:basic-user", [AUTHENTICATED]),
        _cluster_binding("system:public-info-viewer", "system:public-info-viewer", [AUTHENTICATED, UNAUTHENTICATED]),
    )
}


# -- the rule resolver ------------------------------------------------------------------------


class Policy:
    """Read-only view of the RBAC objects (live: the store's dicts are read on every call)."""

    def __init__(self, objects: Objects) -> None:
        self._objects = objects

    @classmethod
    def of(cls, objects: Iterable[Obj]) -> Policy:
        """A policy from a list of RBAC objects (tests)."""
        plural = {"Role": ROLES, "RoleBinding": ROLE_BINDINGS, "ClusterRole": CLUSTER_ROLES,
                  "ClusterRoleBinding": CLUSTER_ROLE_BINDINGS}  # fmt: skip
        out: dict[tuple[str, str], dict[tuple[str, str], Obj]] = {}
        for o in objects:
            meta = o["metadata"]
            out.setdefault(plural[o["kind"]], {})[(meta.get("namespace") or "", meta["name"])] = o
        return cls(out)

    def _bucket(self, key: tuple[str, str]) -> Mapping[tuple[str, str], Obj]:
        return self._objects.get(key) or {}

    def cluster_role(self, name: str) -> Obj | None:
        return self._bucket(CLUSTER_ROLES).get(("", name)) or DEFAULT_CLUSTER_ROLES.get(name)

    def cluster_roles(self) -> Iterator[Obj]:
        stored = self._bucket(CLUSTER_ROLES)
        yield from stored.values()
        yield from (r for n, r in DEFAULT_CLUSTER_ROLES.items() if ("", n) not in stored)

    def cluster_role_bindings(self) -> Iterator[Obj]:
        stored = self._bucket(CLUSTER_ROLE_BINDINGS)
        yield from (b for _, b in sorted(stored.items()))
        yield from (b for n, b in DEFAULT_CLUSTER_ROLE_BINDINGS.items() if ("", n) not in stored)

    def role(self, namespace: str, name: str) -> Obj | None:
        return self._bucket(ROLES).get((namespace, name))

    def role_bindings(self, namespace: str) -> Iterator[Obj]:
        yield from (b for (ns, _), b in sorted(self._bucket(ROLE_BINDINGS).items()) if ns == namespace)


def applies_to(user: UserInfo, subject: Any, namespace: str) -> bool:
    """kube's appliesToUser; a ServiceAccount subject defaults to the binding's namespace."""
    if not isinstance(subject, Mapping):
        return False
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "User":
        return bool(user.name == name)
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        sa_ns = subject.get("namespace") or namespace
        return bool(sa_ns) and user.name == f"{SA_PREFIX}{sa_ns}:{name}"
    return False


def _describe_subject(subject: Mapping[str, Any], binding_ns: str) -> str:
    if subject.get("kind") == "ServiceAccount":
        return f'ServiceAccount "{subject.get("name")}/{subject.get("namespace") or binding_ns}"'
    return f'{subject.get("kind")} "{subject.get("name")}"'


class RoleNotFound(Exception):
    """A binding's roleRef names a role that does not exist (reported in the 403, as kube does)."""


def role_rules(policy: Policy, role_ref: Any, namespace: str, _seen: frozenset[str] = frozenset()) -> list[Obj]:
    """kube's GetRoleReferenceRules; an aggregated ClusterRole's rules are its selected roles' rules
    (what the clusterrole-aggregation controller would have written)."""
    ref = role_ref if isinstance(role_ref, Mapping) else {}
    kind, name = str(ref.get("kind") or ""), str(ref.get("name") or "")
    if kind == "Role":
        role = policy.role(namespace, name)
        if role is None:
            raise RoleNotFound(f'role.{RBAC_GROUP} "{name}" not found')
        return [r for r in role.get("rules") or [] if isinstance(r, dict)]
    if kind == "ClusterRole":
        crole = policy.cluster_role(name)
        if crole is None:
            raise RoleNotFound(f'clusterrole.{RBAC_GROUP} "{name}" not found')
        rules = [r for r in crole.get("rules") or [] if isinstance(r, dict)]
        selectors = (crole.get("aggregationRule") or {}).get("clusterRoleSelectors")
        if selectors and name not in _seen:
            for other in policy.cluster_roles():
                other_name = other["metadata"]["name"]
                labels = other["metadata"].get("labels") or {}
                if other_name != name and any(selector_matches(s, labels) for s in selectors):
                    ref2 = {"kind": "ClusterRole", "name": other_name}
                    rules.extend(r for r in role_rules(policy, ref2, "", _seen | {name}) if r not in rules)
        return rules
    raise RoleNotFound(f'unsupported role reference kind: "{kind}"')


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""


def authorize(attrs: Attributes, policy: Policy) -> Decision:
    """system:masters, then RBAC (ClusterRoleBindings, then the namespace's RoleBindings)."""
    if MASTERS in attrs.user.groups:
        return Decision(True)
    errors: list[str] = []
    sources: list[tuple[str, Obj, str]] = [("ClusterRoleBinding", b, "") for b in policy.cluster_role_bindings()]
    if attrs.namespace:
        sources += [("RoleBinding", b, attrs.namespace) for b in policy.role_bindings(attrs.namespace)]
    for kind, binding, ns in sources:
        subject = next((s for s in binding.get("subjects") or [] if applies_to(attrs.user, s, ns)), None)
        if subject is None:
            continue
        try:
            rules = role_rules(policy, binding.get("roleRef"), ns)
        except RoleNotFound as exc:
            errors.append(str(exc))
            continue
        for rule in rules:
            if rule_allows(attrs, rule):
                name = binding["metadata"]["name"] + (f"/{ns}" if ns else "")
                ref = binding.get("roleRef") or {}
                return Decision(
                    True,
                    f'RBAC: allowed by {kind} "{name}" of {ref.get("kind")} "{ref.get("name")}" '
                    f"to {_describe_subject(subject, ns)}",
                )
    if not errors:
        return Decision(False)
    joined = errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"
    return Decision(False, f"RBAC: {joined}")


def forbidden_message(attrs: Attributes) -> str:
    """responsewriters.forbiddenMessage."""
    who = f'User "{attrs.user.name}"'
    if not attrs.resource_request:
        return f'{who} cannot {attrs.verb} path "{attrs.path}"'
    resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    if attrs.namespace:
        return f'{who} cannot {attrs.verb} resource "{resource}" in API group "{attrs.api_group}" in the namespace "{attrs.namespace}"'
    return f'{who} cannot {attrs.verb} resource "{resource}" in API group "{attrs.api_group}" at the cluster scope'


def forbidden(attrs: Attributes, reason: str = "") -> ApiError:
    """The 403 Status kube-apiserver writes (`apierrors.NewForbidden` of the request's group/resource)."""
    msg = forbidden_message(attrs)
    if reason:
        msg = f"{msg}: {reason}"
    qualified = f"{attrs.resource}.{attrs.api_group}" if attrs.api_group else attrs.resource
    details: Obj = {}
    if attrs.name:
        details["name"] = attrs.name
    if attrs.api_group:
        details["group"] = attrs.api_group
    if attrs.resource:
        details["kind"] = attrs.resource
    if not qualified:
        message = f"forbidden: {msg}"
    elif attrs.name:
        message = f'{qualified} "{attrs.name}" is forbidden: {msg}'
    else:
        message = f"{qualified} is forbidden: {msg}"
    return ApiError(403, message, reason="Forbidden", details=details)
