"""Shared pieces of every CRD model: camelCase wire names, conditions, references.

The pydantic models in this package are the single source of truth: CRD YAML in ``crds/`` is
generated from them (see :mod:`modelops.api.crdgen`), and every handler parses bodies with them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel


class KubeModel(BaseModel):
    """A Kubernetes object fragment: camelCase on the wire, snake_case in Python."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        use_enum_values=True,
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON body Kubernetes stores: aliases, no unset optionals."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class StatusModel(KubeModel):
    """Status is written by us, but read back leniently: other controllers may add fields."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        frozen=True,
        use_enum_values=True,
    )


ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(StatusModel):
    """A metav1.Condition, as kubectl and kstatus read it."""

    type: str = Field(max_length=316)
    status: ConditionStatus
    reason: str = Field(default="", max_length=1024)
    message: str = Field(default="", max_length=32768)
    last_transition_time: datetime | None = None
    observed_generation: int | None = None


class HistoryEntry(StatusModel):
    """One line of an audit trail: what changed, when and why."""

    time: datetime
    event: str = Field(description="What happened, e.g. StageChanged, Verified, RolledBack, DriftDetected.")
    reason: str = ""
    message: str = ""
    from_value: str | None = Field(default=None, alias="from")
    to_value: str | None = Field(default=None, alias="to")
    actor: str | None = Field(default=None, description="Who caused it, when known (approver, operator).")


class LocalObjectReference(KubeModel):
    """A reference to an object in the same namespace."""

    name: str = Field(min_length=1, max_length=253)


HISTORY_LIMIT = 50
"""Audit trails are bounded: the newest entries are kept, so status never outgrows etcd's limits."""


def with_cel_rules(base: ConfigDict, rules: list[dict[str, str]]) -> ConfigDict:
    """A model config whose generated schema carries ``x-kubernetes-validations`` (CEL) rules."""
    config = ConfigDict(**base)
    config["json_schema_extra"] = {"x-kubernetes-validations": list(rules)}  # type: ignore[dict-item,arg-type]
    return config


def describe_spec_error(exc: ValidationError) -> str:
    """The first validation error as ``spec.<field.path>: <message>``, for a condition and an Event."""
    first = exc.errors()[0]
    return "spec." + ".".join(str(p) for p in first["loc"]) + f": {first['msg']}"
