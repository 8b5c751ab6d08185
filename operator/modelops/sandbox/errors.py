"""kube-apiserver's error responses: a `Status` object with the same reason, code and wording."""

from __future__ import annotations

from typing import Any

from modelops.sandbox.schema import Cause

_REASONS = {
    400: "BadRequest",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    500: "InternalError",
}


class ApiError(Exception):
    """Raised anywhere in the sandbox; the HTTP layer turns it into a `Status` response."""

    def __init__(self, code: int, message: str, reason: str | None = None, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or _REASONS.get(code, "Unknown")
        self.details = details

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body


def not_found(qualified: str, name: str, kind: str = "", group: str = "") -> ApiError:
    resource = qualified.split(".", 1)[0]
    return ApiError(404, f'{qualified} "{name}" not found', details={"name": name, "group": group, "kind": resource})


def already_exists(qualified: str, name: str, group: str) -> ApiError:
    resource = qualified.split(".", 1)[0]
    return ApiError(
        409,
        f'{qualified} "{name}" already exists',
        reason="AlreadyExists",
        details={"name": name, "group": group, "kind": resource},
    )


def conflict(qualified: str, name: str, group: str, why: str) -> ApiError:
    resource = qualified.split(".", 1)[0]
    return ApiError(
        409,
        f'Operation cannot be fulfilled on {qualified} "{name}": {why}',
        reason="Conflict",
        details={"name": name, "group": group, "kind": resource},
    )


def invalid(group_kind: str, name: str, group: str, kind: str, causes: list[Cause]) -> ApiError:
    """422 Invalid with one cause per field error, the message joining them like kube-apiserver."""
    lines = [c.line() for c in causes]
    joined = lines[0] if len(lines) == 1 else "[" + ", ".join(lines) + "]"
    return ApiError(
        422,
        f'{group_kind} "{name}" is invalid: {joined}',
        reason="Invalid",
        details={"name": name, "group": group, "kind": kind, "causes": [c.as_dict() for c in causes]},
    )
