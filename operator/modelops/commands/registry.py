"""`modelops registry`: register, list, show, promote and trace ModelVersions."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops import API_VERSION
from modelops.core.naming import dns1123, model_version_name
from modelops.errors import CLIError, describe_validation

if TYPE_CHECKING:
    from modelops.k8s.resources import CustomObjects

# The parser is built from the standard library only (`registry --help` must not import pydantic
# or kubernetes): the API models, the Kubernetes client and YAML are imported where they are used.
STAGES = ("None", "Staging", "Production", "Archived")
"""``--to`` choices: the values of ``modelops.api.modelversion.Stage`` (tests/cli/test_startup.py)."""

REGISTER_FLAGS = {
    "modelName": "--name",
    "version": "--version",
    "artifact.uri": "--uri",
    "artifact.format": "--format",
    "framework": "--framework",
    "lineage.dataset.uri": "--dataset-uri",
    "lineage.dataset.digest": "--dataset-digest",
    "lineage.codeCommit": "--code-commit",
    "lineage.trainingRun": "--training-run",
    "lineage.parentVersion": "--parent",
    "referenceProfile": "--reference-profile",
}
"""The register flag behind each spec field, so a validation error names what to change."""


def _kv(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CLIError(f"{what} must be key=value, got {item!r}")
        out[key] = value
    return out


def _client(args: argparse.Namespace) -> CustomObjects:
    from modelops.k8s.client import KubeConnectionError, load_api_client
    from modelops.k8s.resources import CustomObjects

    try:
        return CustomObjects(load_api_client(args.kubeconfig, args.context))
    except KubeConnectionError as exc:
        raise CLIError(str(exc)) from exc


def _call(fn: Any, *a: Any, **kw: Any) -> Any:
    """Run one API call; every failure a user can cause becomes a one-line CLIError."""
    from modelops.k8s.client import KubeConnectionError
    from modelops.k8s.resources import Conflict, NotFound, Rejected

    try:
        return fn(*a, **kw)
    except (KubeConnectionError, NotFound, Conflict, Rejected) as exc:
        kind = {NotFound: "not found", Conflict: "conflict", Rejected: "rejected"}.get(type(exc), "")
        raise CLIError(f"{kind + ': ' if kind else ''}{exc}") from exc


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-n", "--namespace", default="default")
    p.add_argument("--kubeconfig", default=None)
    p.add_argument("--context", default=None)


REGISTER_ENV = {
    "--name": "MODEL_NAME",
    "--version": "MODELOPS_NEXT_VERSION",
    "--parent": "MODELOPS_PARENT_VERSION",
    "--code-commit": "MODELOPS_CODE_COMMIT|GIT_COMMIT",
    "--training-run": "MODELOPS_TRAINING_RUN",
    "--drift-monitor": "MODELOPS_DRIFT_MONITOR",
    "--drift-check-time": "MODELOPS_DRIFT_CHECK_TIME",
    "--drift-report-uri": "MODELOPS_DRIFT_REPORT_URI",
    "--retrain-job": "MODELOPS_RETRAIN_JOB",
    "-n": "MODELOPS_NAMESPACE",
}
"""`registry register` options that default to the environment a retraining Job gets (first set wins)."""


def _env(option: str) -> str | None:
    for name in REGISTER_ENV[option].split("|"):
        if os.environ.get(name):
            return os.environ[name]
    return None


def register(sub: Any) -> None:
    reg = sub.add_parser("registry", help="the model registry (ModelVersion)")
    rs = reg.add_subparsers(dest="registry_command", metavar="SUBCOMMAND")

    def usage(_args: argparse.Namespace) -> int:
        reg.print_help()
        return 2

    reg.set_defaults(func=usage)  # `modelops registry` alone: the subcommands, like `drift`

    p = rs.add_parser(
        "register",
        help="hash an artifact and create its ModelVersion",
        description="Hash an artifact and create its ModelVersion. Inside a DriftMonitor's retraining Job "
        "the unset options default to the Job's env (" + ", ".join(f"{k} {v}" for k, v in REGISTER_ENV.items()) + ").",
    )
    p.add_argument("file", help="the artifact file (its sha256 is computed here)")
    p.add_argument("--name", default=_env("--name"), help="model name")
    p.add_argument("--version", default=_env("--version"), help="model version")
    p.add_argument("--uri", help="where the cluster reads the artifact (default: file://<absolute path>)")
    p.add_argument("--format", default="joblib", help="artifact format (joblib, onnx, ...)")
    p.add_argument("--framework", default="sklearn")
    p.add_argument("--metrics", nargs="*", default=[], metavar="K=V", help="offline metrics, numbers")
    p.add_argument("--params", nargs="*", default=[], metavar="K=V", help="training parameters")
    p.add_argument("--dataset-uri")
    p.add_argument("--dataset-digest")
    p.add_argument("--code-commit", default=_env("--code-commit"))
    p.add_argument("--training-run", default=_env("--training-run"))
    p.add_argument("--parent", default=_env("--parent"), help="ModelVersion this one was retrained from")
    p.add_argument("--drift-monitor", default=_env("--drift-monitor"), help="DriftMonitor whose check triggered it")
    p.add_argument("--drift-check-time", default=_env("--drift-check-time"), help="that check's time (RFC 3339)")
    p.add_argument("--drift-report-uri", default=_env("--drift-report-uri"), help="where that check's report is")
    p.add_argument(
        "--retrain-job", default=_env("--retrain-job"), help="retraining Job registering it (labels the version)"
    )
    p.add_argument("--reference-profile", help="URI of the drift reference profile")
    p.add_argument("--object-name", help="metadata.name (default: <name>-v<version>)")
    p.add_argument("--dry-run", action="store_true", help="print the YAML (for GitOps) instead of creating it")
    _common(p)
    p.set_defaults(func=_register, namespace=os.environ.get("MODELOPS_NAMESPACE") or "default")

    p = rs.add_parser("list", help="list ModelVersions")
    p.add_argument("--model", help="only this model")
    _common(p)
    p.set_defaults(func=_list)

    p = rs.add_parser("show", help="show one ModelVersion with its history")
    p.add_argument("name")
    _common(p)
    p.set_defaults(func=_show)

    p = rs.add_parser(
        "promote", help="request a stage (the model's ModelPolicy gates it); Production needs an approval"
    )
    p.add_argument("name")
    p.add_argument("--to", required=True, choices=STAGES, dest="stage")
    p.add_argument("--approved-by", help="who approves (required for Production unless a ModelPolicy waives it)")
    p.add_argument("--reason", help="why (required for Production)")
    p.add_argument("--wait", type=float, default=30.0, help="seconds to wait for the operator's verdict (0: don't)")
    _common(p)
    p.set_defaults(func=_promote)

    p = rs.add_parser("lineage", help="walk parent versions back to the first")
    p.add_argument("name")
    _common(p)
    p.set_defaults(func=_lineage)


def build_model_version(args: argparse.Namespace, digest: str) -> dict[str, Any]:
    from modelops.api.modelversion import ModelVersionSpec
    from modelops.core.drift_cronjob import RETRAIN_JOB_LABEL, RETRAINED_BY_LABEL

    lineage: dict[str, Any] = {}
    if args.dataset_uri:
        lineage["dataset"] = {
            "uri": args.dataset_uri,
            **({"digest": args.dataset_digest} if args.dataset_digest else {}),
        }
    retrain_job = getattr(args, "retrain_job", None)
    for key, value in (
        ("codeCommit", args.code_commit),
        ("trainingRun", args.training_run or (f"job/{retrain_job}" if retrain_job else None)),
        ("parentVersion", args.parent),
    ):
        if value:
            lineage[key] = value
    monitor = getattr(args, "drift_monitor", None)
    if monitor:
        check_time, report_uri = getattr(args, "drift_check_time", None), getattr(args, "drift_report_uri", None)
        lineage["driftReport"] = {
            "monitor": monitor,
            **({"checkTime": check_time} if check_time else {}),
            **({"uri": report_uri} if report_uri else {}),
        }
    if not args.name or not args.version:
        missing = "--name (or MODEL_NAME)" if not args.name else "--version (or MODELOPS_NEXT_VERSION)"
        raise CLIError(f"registry register needs {missing}")
    try:
        metrics = {k: float(v) for k, v in _kv(args.metrics, "--metrics").items()}
    except ValueError as exc:
        raise CLIError(f"--metrics values must be numbers: {exc}") from exc
    raw: dict[str, Any] = {
        "modelName": args.name,
        "version": args.version,
        "artifact": {"uri": args.uri or Path(args.file).resolve().as_uri(), "digest": digest, "format": args.format},
        "framework": args.framework,
        "metrics": metrics or None,
        "params": _kv(args.params, "--params") or None,
        "lineage": lineage or None,
        "referenceProfile": args.reference_profile,
    }
    try:
        spec = ModelVersionSpec.model_validate({k: v for k, v in raw.items() if v is not None})
    except ValueError as exc:
        raise CLIError(f"invalid ModelVersion: {describe_validation(exc, 'spec.', REGISTER_FLAGS)}") from exc
    labels = {"modelops.dev/model": spec.model_name}
    if monitor:
        labels[RETRAINED_BY_LABEL] = dns1123(monitor, 63)
    if retrain_job:
        labels[RETRAIN_JOB_LABEL] = retrain_job
    return {
        "apiVersion": API_VERSION,
        "kind": "ModelVersion",
        "metadata": {
            "name": args.object_name or model_version_name(args.name, args.version),
            "namespace": args.namespace,
            "labels": labels,
        },
        "spec": spec.to_wire(),
    }


def _register(args: argparse.Namespace) -> int:
    import yaml

    from modelops.artifacts import ArtifactUnreachable, compute_digest
    from modelops.k8s.resources import MODEL_VERSION

    try:
        digest = compute_digest(args.file).value
    except ArtifactUnreachable as exc:
        raise CLIError(str(exc)) from exc
    obj = build_model_version(args, digest)
    if args.dry_run:
        sys.stdout.write(yaml.safe_dump(obj, sort_keys=False))
        return 0
    created = _call(_client(args).create, MODEL_VERSION, args.namespace, obj)
    print(f"modelversion/{created['metadata']['name']} created ({digest})")
    return 0


def _row(obj: dict[str, Any]) -> list[str]:
    spec, status = obj.get("spec", {}), obj.get("status") or {}
    return [
        obj["metadata"]["name"],
        spec.get("modelName", ""),
        spec.get("version", ""),
        status.get("stage") or "None",
        status.get("phase") or "Pending",
        spec.get("artifact", {}).get("digest", "")[:19],
    ]


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "   ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]
    )


def _list(args: argparse.Namespace) -> int:
    from modelops.k8s.resources import MODEL_VERSION

    items = _call(_client(args).list, MODEL_VERSION, args.namespace)
    if args.model:
        items = [o for o in items if o.get("spec", {}).get("modelName") == args.model]
    items.sort(key=lambda o: (o["spec"].get("modelName", ""), o["metadata"].get("creationTimestamp", "")))
    print(_table(["NAME", "MODEL", "VERSION", "STAGE", "PHASE", "DIGEST"], [_row(o) for o in items]))
    return 0


def _show(args: argparse.Namespace) -> int:
    import yaml

    from modelops.k8s.resources import MODEL_VERSION

    obj = _call(_client(args).get, MODEL_VERSION, args.namespace, args.name)
    view = {"name": obj["metadata"]["name"], "spec": obj.get("spec"), "status": obj.get("status") or {}}
    sys.stdout.write(yaml.safe_dump(view, sort_keys=False))
    return 0


def _promote(args: argparse.Namespace) -> int:
    from modelops.k8s.resources import MODEL_VERSION

    patch: dict[str, Any] = {"spec": {"stage": args.stage}}
    if args.approved_by or args.reason:
        if not (args.approved_by and args.reason):
            raise CLIError("an approval needs both --approved-by and --reason")
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        patch["spec"]["approval"] = {
            "approvedBy": args.approved_by,
            "approvedAt": now.isoformat(),
            "reason": args.reason,
        }
    api = _client(args)
    updated = _call(api.patch, MODEL_VERSION, args.namespace, args.name, patch)
    generation = updated["metadata"].get("generation", 0)
    deadline = time.monotonic() + args.wait
    while args.wait > 0 and time.monotonic() < deadline:
        obj = _call(api.get, MODEL_VERSION, args.namespace, args.name)
        status = obj.get("status") or {}
        cond = next((c for c in status.get("conditions", []) if c["type"] == "StageSynced"), None)
        settled = (status.get("observedGeneration") or 0) >= generation and cond is not None
        if settled and cond and cond.get("reason") != "WaitingForVerification":
            print(f"{args.name}: {cond.get('message')}")
            return 0 if cond["status"] == "True" else 1
        time.sleep(0.2)
    if args.wait > 0:
        raise CLIError(f"{args.name}: stage {args.stage} requested; no verdict from the operator in {args.wait:.0f}s")
    print(f"{args.name}: stage {args.stage} requested")
    return 0


def _lineage(args: argparse.Namespace) -> int:
    from modelops.k8s.client import KubeConnectionError
    from modelops.k8s.resources import MODEL_VERSION, Conflict, NotFound, Rejected

    api = _client(args)
    name: str | None = args.name
    seen: set[str] = set()
    depth = 0
    while name:
        if name in seen:
            raise CLIError(f"lineage cycle at {name}")
        seen.add(name)
        try:
            obj = api.get(MODEL_VERSION, args.namespace, name)
        except NotFound as exc:
            if depth == 0:  # the version asked for: an error, as for show and promote
                raise CLIError(f"not found: {exc}") from exc
            print(f"{'  ' * depth}{name} (not found)")  # an ancestor since deleted: the walk ends there
            break
        except (KubeConnectionError, Conflict, Rejected) as exc:
            raise CLIError(str(exc)) from exc
        spec, status = obj["spec"], obj.get("status") or {}
        lin = spec.get("lineage") or {}
        data = lin.get("dataset", {})
        print(
            f"{'  ' * depth}{name}: {spec['modelName']} {spec['version']} [{status.get('stage') or 'None'}, "
            f"{status.get('phase') or 'Pending'}]"
            + (f" data={data.get('uri')}" if data else "")
            + (f" commit={lin['codeCommit']}" if lin.get("codeCommit") else "")
            + (f" run={lin['trainingRun']}" if lin.get("trainingRun") else "")
            + (
                f" drift={lin['driftReport'].get('monitor')}@{lin['driftReport'].get('checkTime', '?')}"
                if lin.get("driftReport")
                else ""
            )
        )
        name = lin.get("parentVersion")
        depth += 1
    return 0
