"""Who is calling the sandbox, and may they: ServiceAccount tokens, impersonation, access reviews.

A request without credentials is `system:admin` in `system:masters` (the operator, kubectl and the
tests use the credential-less kubeconfig): full access, checked by nothing. A request with
`Authorization: Bearer <token>` is the ServiceAccount the token was issued for, authorized by the
RBAC objects in the store (`rbac.py`); an unknown, tampered or expired token, or one whose
ServiceAccount (or bound Pod/Secret) was deleted or recreated since, is 401 as in kube-apiserver.

Tokens come from the TokenRequest API (`POST .../serviceaccounts/<name>/token`), the way a kubelet
gets a pod's projected token. They are JWTs with kube's claims (`sub`, `aud`, `exp`, `kubernetes.io`
namespace/serviceaccount/pod), signed HS256 with a key drawn per server: a token from another
server, or from before a restart, is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from multidict import MultiMapping

from modelops.sandbox import rbac
from modelops.sandbox.errors import ApiError, conflict, invalid, not_found
from modelops.sandbox.rbac import ADMIN, Attributes, Policy, UserInfo
from modelops.sandbox.resources import Resource
from modelops.sandbox.schema import Cause, fmt

Obj = dict[str, Any]
Objects = Mapping[tuple[str, str], Mapping[tuple[str, str], Obj]]

API_AUDIENCE = "https://kubernetes.default.svc.cluster.local"
ISSUER = API_AUDIENCE
DEFAULT_EXPIRATION = 3600
MIN_EXPIRATION = 600
MAX_EXPIRATION = 1 << 32

SERVICE_ACCOUNTS = ("", "serviceaccounts")
AUTHZ = "authorization.k8s.io"
AUTHN = "authentication.k8s.io"
REVIEWS = {
    (AUTHZ, "selfsubjectaccessreviews"),
    (AUTHZ, "subjectaccessreviews"),
    (AUTHZ, "localsubjectaccessreviews"),
    (AUTHZ, "selfsubjectrulesreviews"),
    (AUTHN, "selfsubjectreviews"),
    (AUTHN, "tokenreviews"),
}
"""Resources that are verbs, not storage: POST answers, nothing is kept."""

_POD_NAME, _POD_UID = "authentication.kubernetes.io/pod-name", "authentication.kubernetes.io/pod-uid"
_CREDENTIAL_ID = "authentication.kubernetes.io/credential-id"


def unauthorized() -> ApiError:
    """kube-apiserver's answer to a bad credential: no hint why (the server log has it)."""
    return ApiError(401, "Unauthorized", reason="Unauthorized")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _timestamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _epoch(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


class Request(Protocol):
    """What `identify` reads of an HTTP request (aiohttp's `web.Request` is one)."""

    @property
    def method(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def query(self) -> Mapping[str, str]: ...
    @property
    def headers(self) -> MultiMapping[str]: ...


class Auth:
    """Authentication and authorization of one sandbox API server, over its store's objects."""

    def __init__(
        self,
        objects: Objects,
        *,
        clock: Callable[[], float] = time.time,
        key: bytes | None = None,
        audiences: tuple[str, ...] = (API_AUDIENCE,),
    ) -> None:
        self._objects = objects
        self.policy = Policy(objects)
        self.clock = clock
        self._key = key or secrets.token_bytes(32)
        self.audiences = audiences
        self._signed: dict[str, Any] = {}  # token -> its claims, once the signature checked out
        self._header = _b64(json.dumps({"alg": "HS256", "kid": "sandbox"}, separators=(",", ":")).encode())

    # -- tokens -------------------------------------------------------------------------------

    def _get(self, plural: str, namespace: str, name: str) -> Obj | None:
        return (self._objects.get(("", plural)) or {}).get((namespace, name))

    def issue(
        self,
        namespace: str,
        service_account: Obj,
        expiration_seconds: int = DEFAULT_EXPIRATION,
        audiences: list[str] | None = None,
        bound: tuple[str, Obj] | None = None,
    ) -> tuple[str, float]:
        """A signed token for the ServiceAccount (optionally bound to a Pod or Secret), and its expiry."""
        now = int(self.clock())
        sa_meta = service_account["metadata"]
        k8s: Obj = {"namespace": namespace, "serviceaccount": {"name": sa_meta["name"], "uid": sa_meta.get("uid", "")}}
        if bound is not None:
            kind, obj = bound
            k8s[kind.lower()] = {"name": obj["metadata"]["name"], "uid": obj["metadata"].get("uid", "")}
        claims = {
            "aud": audiences or list(self.audiences),
            "exp": now + expiration_seconds,
            "iat": now,
            "iss": ISSUER,
            "jti": str(uuid.uuid4()),
            "kubernetes.io": k8s,
            "nbf": now,
            "sub": f"{rbac.SA_PREFIX}{namespace}:{sa_meta['name']}",
        }
        signing_input = f"{self._header}.{_b64(json.dumps(claims, separators=(',', ':')).encode())}"
        signature = hmac.new(self._key, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{_b64(signature)}", float(claims["exp"])  # type: ignore[arg-type]

    def verify(self, token: str, audiences: tuple[str, ...] | None = None) -> UserInfo | None:
        """The ServiceAccount user a token stands for, or None if it is not (or no longer) valid."""
        try:
            claims = self._signed.get(token)
            if claims is None:
                header, payload, signature = token.split(".")
                expected = hmac.new(self._key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
                if not hmac.compare_digest(_unb64(signature), expected):
                    return None
                claims = json.loads(_unb64(payload))
                if len(self._signed) >= 4096:
                    self._signed.clear()
                self._signed[token] = claims
            k8s = claims["kubernetes.io"]
            namespace, sa = str(k8s["namespace"]), k8s["serviceaccount"]
            now = self.clock()
            if not claims["nbf"] <= now < claims["exp"]:
                return None
            if not set(claims["aud"]) & set(audiences or self.audiences):
                return None
        except (ValueError, KeyError, TypeError, AttributeError):
            return None
        if not self._alive("serviceaccounts", namespace, sa, now):
            return None
        extra: dict[str, tuple[str, ...]] = {}
        for kind in ("pod", "secret"):
            ref = k8s.get(kind)
            if ref is not None and not self._alive(f"{kind}s", namespace, ref, now):
                return None
        if k8s.get("pod"):
            extra = {_POD_NAME: (k8s["pod"]["name"],), _POD_UID: (k8s["pod"]["uid"],)}
        extra[_CREDENTIAL_ID] = (f"JTI={claims['jti']}",)
        return rbac.service_account_user(namespace, str(sa["name"]), str(sa.get("uid", "")), extra)

    def _alive(self, plural: str, namespace: str, ref: Any, now: float) -> bool:
        """The referenced object still exists as the same incarnation (uid), and is not past its deletion."""
        obj = self._get(plural, namespace, str(ref["name"]))
        if obj is None or obj["metadata"].get("uid") != ref.get("uid"):
            return False
        deleting = obj["metadata"].get("deletionTimestamp")
        return not (deleting and _epoch(deleting) < now)

    # -- per request --------------------------------------------------------------------------

    def identify(self, request: Request) -> UserInfo:
        """The user of a request, authorized for what the request does (raises 400/401/403 ApiError).

        Credential-less requests return after two header lookups: they are every operator request.
        """
        headers = request.headers
        auth = headers.get("Authorization")
        imp_user = headers.get("Impersonate-User")
        if auth is None and imp_user is None:
            if "Impersonate-Group" in headers or "Impersonate-Uid" in headers:
                raise ApiError(400, "requested impersonation of groups or a uid without impersonating a user")
            return ADMIN
        user = ADMIN if auth is None else self.authenticate(auth)
        if imp_user is not None:
            user = self.impersonate(user, imp_user, headers)
        if rbac.MASTERS not in user.groups:
            attrs = rbac.request_attributes(user, request.method, request.path, request.query)
            decision = rbac.authorize(attrs, self.policy)
            if not decision.allowed:
                raise rbac.forbidden(attrs, decision.reason)
        return user

    def authenticate(self, authorization: str) -> UserInfo:
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthorized()
        user = self.verify(token.strip())
        if user is None:
            raise unauthorized()
        return user

    def impersonate(self, requestor: UserInfo, username: str, headers: MultiMapping[str]) -> UserInfo:
        """kube's impersonation filter: each impersonated identity needs the `impersonate` verb."""
        groups = list(headers.getall("Impersonate-Group", []))
        uid = headers.get("Impersonate-Uid", "")
        extra: dict[str, tuple[str, ...]] = {}
        for key in headers:
            if key.lower().startswith("impersonate-extra-"):
                extra[key[len("impersonate-extra-") :].lower()] = tuple(headers.getall(key))
        checks: list[Attributes] = []
        sa = rbac.split_service_account(username)
        if sa is not None:
            checks.append(Attributes(requestor, "impersonate", namespace=sa[0], resource="serviceaccounts", name=sa[1]))
            if not groups:
                groups = [rbac.SA_GROUP, f"{rbac.SA_GROUP}:{sa[0]}"]
        else:
            checks.append(Attributes(requestor, "impersonate", resource="users", name=username))
        checks += [
            Attributes(requestor, "impersonate", resource="groups", name=g)
            for g in headers.getall("Impersonate-Group", [])
        ]
        checks += [
            Attributes(requestor, "impersonate", api_group=AUTHN, resource="userextras", subresource=k, name=v)
            for k, vs in extra.items()
            for v in vs
        ]
        if uid:
            checks.append(Attributes(requestor, "impersonate", api_group=AUTHN, resource="uids", name=uid))
        if rbac.MASTERS not in requestor.groups:
            for attrs in checks:
                decision = rbac.authorize(attrs, self.policy)
                if not decision.allowed:
                    raise rbac.forbidden(attrs, decision.reason)
        if username == "system:anonymous":
            if rbac.UNAUTHENTICATED not in groups:
                groups.append(rbac.UNAUTHENTICATED)
        elif rbac.AUTHENTICATED not in groups and rbac.UNAUTHENTICATED not in groups:
            groups.append(rbac.AUTHENTICATED)
        return UserInfo(username, tuple(groups), uid, extra)

    # -- TokenRequest -------------------------------------------------------------------------

    def token_request(self, namespace: str, name: str, body: Any) -> Obj:
        """`POST /api/v1/namespaces/<ns>/serviceaccounts/<name>/token` (authentication.k8s.io/v1 TokenRequest),
        checked in kube's order: the request, its metadata against the URL, the ServiceAccount, the bound object."""
        body = body if body is not None else {}
        if not isinstance(body, dict):
            raise ApiError(400, "the body of a TokenRequest must be an object")
        _check_kind(body, AUTHN, "TokenRequest")
        meta = body.get("metadata") or {}
        spec = body.get("spec") or {}
        if not isinstance(meta, dict) or not isinstance(spec, dict):
            raise ApiError(400, "TokenRequest metadata and spec must be objects")
        seconds = spec.get("expirationSeconds", DEFAULT_EXPIRATION)
        audiences = spec.get("audiences") or list(self.audiences)
        causes = []
        if not isinstance(seconds, int) or isinstance(seconds, bool):
            causes.append(_bad("spec.expirationSeconds", seconds, "must be an integer"))
        elif seconds < MIN_EXPIRATION:
            causes.append(_bad("spec.expirationSeconds", seconds, "may not specify a duration less than 10 minutes"))
        elif seconds > MAX_EXPIRATION:
            causes.append(
                _bad("spec.expirationSeconds", seconds, "may not specify a duration larger than 2^32 seconds")
            )
        if not isinstance(audiences, list) or not all(isinstance(a, str) and a for a in audiences):
            causes.append(_bad("spec.audiences", audiences, "must be a list of non-empty strings"))
        if causes:
            raise invalid(f"TokenRequest.{AUTHN}", "", AUTHN, "TokenRequest", causes)
        for key, url_value, what in (("name", name, "name"), ("namespace", namespace, "namespace")):
            if meta.get(key) and meta[key] != url_value:
                cause = _bad(f"metadata.{key}", meta[key], f"must match the service account {what} if specified")
                raise invalid(f"TokenRequest.{AUTHN}", name, AUTHN, "TokenRequest", [cause])
        sa = self._get("serviceaccounts", namespace, name)
        if sa is None:
            raise not_found("serviceaccounts", name)
        if meta.get("uid") and meta["uid"] != sa["metadata"].get("uid"):
            raise conflict(
                f"TokenRequest.{AUTHN}", name, AUTHN,
                f"the UID in the token request ({meta['uid']}) does not match the UID of the service account "
                f"({sa['metadata'].get('uid')})",
            )  # fmt: skip
        bound = self._bound_object(namespace, name, spec.get("boundObjectRef"))
        token, expiry = self.issue(namespace, sa, seconds, audiences, bound)
        out_spec: Obj = {"audiences": audiences, "expirationSeconds": seconds}
        if bound is not None:
            out_spec["boundObjectRef"] = spec["boundObjectRef"]
        out_meta = {**meta, "name": name, "namespace": namespace, "creationTimestamp": _timestamp(self.clock())}
        return {
            "kind": "TokenRequest",
            "apiVersion": f"{AUTHN}/v1",
            "metadata": out_meta,
            "spec": out_spec,
            "status": {"token": token, "expirationTimestamp": _timestamp(expiry)},
        }

    def _bound_object(self, namespace: str, sa_name: str, ref: Any) -> tuple[str, Obj] | None:
        if not ref:
            return None
        if not isinstance(ref, dict):
            raise ApiError(400, "spec.boundObjectRef must be an object")
        api_version, kind, name = (
            str(ref.get("apiVersion") or ""),
            str(ref.get("kind") or ""),
            str(ref.get("name") or ""),
        )
        group, _, version = api_version.rpartition("/")
        if group or kind not in ("Pod", "Secret"):
            raise ApiError(400, f"cannot bind token to object of type {group}/{version}, Kind={kind}")
        obj = self._get(f"{kind.lower()}s", namespace, name)
        if obj is None:
            raise not_found(f"{kind.lower()}s", name)
        pod_spec = obj.get("spec") or {}
        if (
            kind == "Pod"
            and (pod_spec.get("serviceAccountName") or pod_spec.get("serviceAccount") or "default") != sa_name
        ):
            raise ApiError(
                400,
                f'cannot bind token for serviceaccount "{sa_name}" to pod running with different serviceaccount name.',
            )
        uid = obj["metadata"].get("uid")
        if ref.get("uid") and ref["uid"] != uid:
            raise conflict(
                kind, name, "",
                f"the UID in the bound object reference ({ref['uid']}) does not match the UID in record. "
                "The object might have been deleted and then recreated",
            )  # fmt: skip
        return kind, obj

    # -- reviews ------------------------------------------------------------------------------

    def review(self, method: str, res: Resource, namespace: str | None, user: UserInfo, body: Any) -> Obj:
        """Answer a SelfSubjectAccessReview, SubjectAccessReview, LocalSubjectAccessReview,
        SelfSubjectRulesReview, SelfSubjectReview or TokenReview from the same authorizer."""
        if method != "POST":
            raise ApiError(405, f"the server does not allow this method on the requested resource: {method}")
        if not isinstance(body, dict):
            raise ApiError(400, f"the body of a {res.kind} must be an object")
        _check_kind(body, res.group, res.kind)
        spec = body.get("spec") or {}
        if not isinstance(spec, dict):
            raise ApiError(400, f"{res.kind} spec must be an object")
        raw_meta = body.get("metadata") or {}
        if not isinstance(raw_meta, dict):
            raise ApiError(400, f"{res.kind} metadata must be an object")
        meta = {k: v for k, v in raw_meta.items() if k in ("name", "generateName", "labels", "annotations")}
        meta["creationTimestamp"] = None
        if namespace:
            meta["namespace"] = namespace
        out: Obj = {"kind": res.kind, "apiVersion": res.api_version, "metadata": meta}
        plural = res.plural
        if plural == "selfsubjectreviews":
            return {**out, "status": {"userInfo": user.as_dict()}}
        if plural == "tokenreviews":
            return {**out, "spec": spec, "status": self._token_review(spec)}
        if plural == "selfsubjectrulesreviews":
            return {**out, "spec": spec, "status": self._rules_review(user, str(spec.get("namespace") or ""))}
        subject = user
        if plural in ("subjectaccessreviews", "localsubjectaccessreviews"):
            if not spec.get("user") and not spec.get("groups"):
                cause = _bad("spec.user", spec.get("user", ""), "at least one of user or group must be specified")
                raise invalid(f"{res.kind}.{AUTHZ}", str(meta.get("name") or ""), AUTHZ, res.kind, [cause])
            groups, extra = spec.get("groups") or [], spec.get("extra") or {}
            if not isinstance(groups, list) or not isinstance(extra, dict):
                raise ApiError(400, f"{res.kind} spec.groups must be a list and spec.extra an object")
            extras = {str(k): tuple(map(str, v)) if isinstance(v, list) else (str(v),) for k, v in extra.items()}
            subject = UserInfo(str(spec.get("user") or ""), tuple(map(str, groups)), str(spec.get("uid") or ""), extras)
        attrs = self._review_attributes(res, namespace, subject, spec, str(meta.get("name") or ""))
        decision = rbac.authorize(attrs, self.policy)
        status: Obj = {"allowed": decision.allowed}
        if decision.reason:
            status["reason"] = decision.reason
        return {**out, "spec": spec, "status": status}

    @staticmethod
    def _review_attributes(res: Resource, namespace: str | None, user: UserInfo, spec: Obj, name: str) -> Attributes:
        ra, nra = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
        for field_name, value in (("resourceAttributes", ra), ("nonResourceAttributes", nra)):
            if value is not None and not isinstance(value, dict):
                raise ApiError(400, f"spec.{field_name} of a {res.kind} must be an object")
        causes = []
        if ra is not None and nra is not None:
            causes.append(
                _bad("spec.nonResourceAttributes", nra, "cannot be specified in combination with resourceAttributes")
            )
        elif ra is None and nra is None:
            causes.append(
                _bad(
                    "spec.resourceAttributes",
                    None,
                    "exactly one of nonResourceAttributes or resourceAttributes must be specified",
                )
            )
        elif nra is not None and res.plural == "localsubjectaccessreviews":
            causes.append(_bad("spec.nonResourceAttributes", nra, "disallowed on this kind of request"))
        if causes:
            raise invalid(f"{res.kind}.{AUTHZ}", name, AUTHZ, res.kind, causes)
        if nra is not None:
            assert isinstance(nra, dict)
            return Attributes(user, str(nra.get("verb") or ""), False, str(nra.get("path") or ""))
        assert isinstance(ra, dict)
        if namespace is not None and (ra.get("namespace") or namespace) != namespace:
            raise ApiError(400, f"spec.resourceAttributes.namespace must match namespace: {namespace}")
        return Attributes(
            user,
            str(ra.get("verb") or ""),
            True,
            api_group=str(ra.get("group") or ""),
            api_version=str(ra.get("version") or ""),
            namespace=str(ra.get("namespace") or namespace or ""),
            resource=str(ra.get("resource") or ""),
            subresource=str(ra.get("subresource") or ""),
            name=str(ra.get("name") or ""),
        )

    def _token_review(self, spec: Obj) -> Obj:
        token, audiences = str(spec.get("token") or ""), spec.get("audiences") or list(self.audiences)
        user = self.verify(token, tuple(audiences)) if token else None
        if user is None:
            return {
                "authenticated": False,
                "user": {},
                "error": "[invalid bearer token, service account token is not valid]",
            }
        return {"authenticated": True, "user": user.as_dict(), "audiences": audiences}

    def _rules_review(self, user: UserInfo, namespace: str) -> Obj:
        """Every rule that applies to the user in the namespace (kubectl auth can-i --list)."""
        resource_rules: list[Obj] = []
        nonresource_rules: list[Obj] = []
        errors: list[str] = []
        bindings = [(b, "") for b in self.policy.cluster_role_bindings()]
        if namespace:
            bindings += [(b, namespace) for b in self.policy.role_bindings(namespace)]
        for binding, ns in bindings:
            if not any(rbac.applies_to(user, s, ns) for s in binding.get("subjects") or []):
                continue
            try:
                rules = rbac.role_rules(self.policy, binding.get("roleRef"), ns)
            except rbac.RoleNotFound as exc:
                errors.append(str(exc))
                continue
            for r in rules:
                if r.get("resources"):
                    rule = {k: list(r[k]) for k in ("verbs", "apiGroups", "resources", "resourceNames") if r.get(k)}
                    resource_rules.append(rule)
                if r.get("nonResourceURLs"):
                    nonresource_rules.append(
                        {"verbs": list(r.get("verbs") or []), "nonResourceURLs": list(r["nonResourceURLs"])}
                    )
        status: Obj = {"resourceRules": resource_rules, "nonResourceRules": nonresource_rules, "incomplete": False}
        if errors:
            status["evaluationError"] = "; ".join(errors)
        return status


def _bad(path: str, value: Any, detail: str) -> Cause:
    return Cause("FieldValueInvalid", path, f"Invalid value: {fmt(value)}: {detail}")


def _check_kind(body: Obj, group: str, kind: str) -> None:
    """A body may omit apiVersion/kind (the URL says them), but not contradict them."""
    av, k = body.get("apiVersion"), body.get("kind")
    if av and av.rpartition("/")[0] != group:
        raise ApiError(400, f"the API version in the data ({av}) does not match the expected API version ({group}/v1)")
    if k and k != kind:
        raise ApiError(400, f"the kind in the data ({k}) does not match the expected kind ({kind})")
