"""`modelops registry`: register, list, show, promote and trace ModelVersions."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from modelops import API_VERSION
from modelops.api.modelversion import ModelVersionSpec, Stage
from modelops.artifacts import ArtifactUnreachable, compute_digest
from modelops.core.naming import model_version_name
from modelops.errors import CLIError
from modelops.k8s.client import KubeConnectionError, load_api_client
from modelops.k8s.resources import MODEL_VERSION, Conflict, CustomObjects, NotFound, Rejected


def _kv(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CLIError(f"{what} must be key=value, got {item!r}")
        out[key] = value
    return out


def _client(args: argparse.Namespace) -> CustomObjects:
    try:
        return CustomObjects(load_api_client(args.kubeconfig, args.context))
    except KubeConnectionError as exc:
        raise CLIError(str(exc)) from exc


def _call(fn: Any, *a: Any, **kw: Any) -> Any:
    """Run one API call; every failure a user can cause becomes a one-line CLIError."""
    try:
        return fn(*a, **kw)
    except (KubeConnectionError, NotFound, Conflict, Rejected) as exc:
        kind = {NotFound: "not found", Conflict: "conflict", Rejected: "rejected"}.get(type(exc), "")
        raise CLIError(f"{kind + ': ' if kind else ''}{exc}") from exc


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-n", "--namespace", default="default")
    p.add_argument("--kubeconfig", default=None)
    p.add_argument("--context", default=None)


def register(sub: Any) -> None:
    reg = sub.add_parser("registry", help="the model registry (ModelVersion)")
    rs = reg.add_subparsers(dest="registry_command", metavar="SUBCOMMAND", required=True)

    p = rs.add_parser("register", help="hash an artifact and create its ModelVersion")
    p.add_argument("file", help="the artifact file (its sha256 is computed here)")
    p.add_argument("--name", required=True, help="model name")
    p.add_argument("--version", required=True, help="model version")
    p.add_argument("--uri", help="where the cluster reads the artifact (default: file://<absolute path>)")
    p.add_argument("--format", default="joblib", help="artifact format (joblib, onnx, ...)")
    p.add_argument("--framework", default="sklearn")
    p.add_argument("--metrics", nargs="*", default=[], metavar="K=V", help="offline metrics, numbers")
    p.add_argument("--params", nargs="*", default=[], metavar="K=V", help="training parameters")
    p.add_argument("--dataset-uri")
    p.add_argument("--dataset-digest")
    p.add_argument("--code-commit")
    p.add_argument("--training-run")
    p.add_argument("--parent", help="ModelVersion this one was retrained from")
    p.add_argument("--reference-profile", help="URI of the drift reference profile")
    p.add_argument("--object-name", help="metadata.name (default: <name>-v<version>)")
    p.add_argument("--dry-run", action="store_true", help="print the YAML (for GitOps) instead of creating it")
    _common(p)
    p.set_defaults(func=_register)

    p = rs.add_parser("list", help="list ModelVersions")
    p.add_argument("--model", help="only this model")
    _common(p)
    p.set_defaults(func=_list)

    p = rs.add_parser("show", help="show one ModelVersion with its history")
    p.add_argument("name")
    _common(p)
    p.set_defaults(func=_show)

    p = rs.add_parser("promote", help="request a stage; Production needs an approval")
    p.add_argument("name")
    p.add_argument("--to", required=True, choices=[s.value for s in Stage], dest="stage")
    p.add_argument("--approved-by", help="who approves (required for Production)")
    p.add_argument("--reason", help="why (required for Production)")
    p.add_argument("--wait", type=float, default=30.0, help="seconds to wait for the operator's verdict (0: don't)")
    _common(p)
    p.set_defaults(func=_promote)

    p = rs.add_parser("lineage", help="walk parent versions back to the first")
    p.add_argument("name")
    _common(p)
    p.set_defaults(func=_lineage)


def build_model_version(args: argparse.Namespace, digest: str) -> dict[str, Any]:
    lineage: dict[str, Any] = {}
    if args.dataset_uri:
        lineage["dataset"] = {
            "uri": args.dataset_uri,
            **({"digest": args.dataset_digest} if args.dataset_digest else {}),
        }
    for key, value in (
        ("codeCommit", args.code_commit),
        ("trainingRun", args.training_run),
        ("parentVersion", args.parent),
    ):
        if value:
            lineage[key] = value
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
        raise CLIError(f"invalid ModelVersion: {exc}".splitlines()[0] + " " + str(exc).splitlines()[-1]) from exc
    return {
        "apiVersion": API_VERSION,
        "kind": "ModelVersion",
        "metadata": {
            "name": args.object_name or model_version_name(args.name, args.version),
            "namespace": args.namespace,
            "labels": {"modelops.dev/model": spec.model_name},
        },
        "spec": spec.to_wire(),
    }


def _register(args: argparse.Namespace) -> int:
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
    items = _call(_client(args).list, MODEL_VERSION, args.namespace)
    if args.model:
        items = [o for o in items if o.get("spec", {}).get("modelName") == args.model]
    items.sort(key=lambda o: (o["spec"].get("modelName", ""), o["metadata"].get("creationTimestamp", "")))
    print(_table(["NAME", "MODEL", "VERSION", "STAGE", "PHASE", "DIGEST"], [_row(o) for o in items]))
    return 0


def _show(args: argparse.Namespace) -> int:
    obj = _call(_client(args).get, MODEL_VERSION, args.namespace, args.name)
    view = {"name": obj["metadata"]["name"], "spec": obj.get("spec"), "status": obj.get("status") or {}}
    sys.stdout.write(yaml.safe_dump(view, sort_keys=False))
    return 0


def _promote(args: argparse.Namespace) -> int:
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
        except NotFound:
            print(f"{'  ' * depth}{name} (not found)")
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
        )
        name = lin.get("parentVersion")
        depth += 1
    return 0
