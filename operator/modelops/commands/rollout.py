"""`modelops rollout` (also `kubectl modelops rollout`): watch and steer ModelDeployment rollouts.

Read commands show status; write commands (promote, abort, retry, pause, resume) patch the status
subresource, so a spec kept in Git is never touched; `undo` alone edits spec, as `kubectl rollout
undo` does. Decisions live in `modelops.core.rollout_control`, the layout in
`modelops.core.rollout_view`; this module fetches, watches and prints.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from modelops.drift.durations import parse_duration
from modelops.errors import CLIError

if TYPE_CHECKING:
    from modelops.core.rollout_control import ControlRequest
    from modelops.core.rollout_view import Outcome, Rollout
    from modelops.k8s.resources import CustomObjects, Obj

# The parser is built from the standard library only (`rollout --help` must not import pydantic or
# kubernetes): the decisions, the views and the client are imported where they are used.

EXIT_TIMEOUT = 2
CLEAR = "\x1b[H\x1b[2J"


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="the ModelDeployment")
    p.add_argument("-n", "--namespace", default=None, help="default: the kubeconfig context's namespace")
    p.add_argument("--kubeconfig", default=None)
    p.add_argument("--context", default=None)


def register(sub: Any) -> None:
    ro = sub.add_parser("rollout", help="watch and steer ModelDeployment rollouts")
    rs = ro.add_subparsers(dest="rollout_command", metavar="SUBCOMMAND", required=True)

    p = rs.add_parser("get", help="steps, weights, replicas, measurements and conditions at a glance")
    p.add_argument("-w", "--watch", action="store_true", help="redraw on every change until the rollout ends")
    _common(p)
    p.set_defaults(func=_get)

    p = rs.add_parser("status", help="wait for the rollout: exit 0 Healthy, 1 RolledBack/Degraded, 2 timeout")
    p.add_argument("--timeout", default="10m", help="how long to wait (e.g. 90s, 10m, 1h; 0: no limit)")
    _common(p)
    p.set_defaults(func=_status)

    p = rs.add_parser("promote", help="advance past the current step (--full: skip all remaining steps)")
    p.add_argument("--full", action="store_true", help="promote the canary to stable now")
    _common(p)
    p.set_defaults(func=lambda a: _control(a, lambda r: _decision("request_promote")(r, full=a.full)))

    for name, help_text, decide in (
        ("abort", "roll the canary back now", "request_abort"),
        ("retry", "roll out again the version that was rolled back", "request_retry"),
        ("pause", "hold the rollout at its current step", "request_pause"),
        ("resume", "lift a pause made with rollout pause", "request_resume"),
    ):
        p = rs.add_parser(name, help=help_text)
        _common(p)
        p.set_defaults(func=lambda a, d=decide: _control(a, _decision(d)))

    p = rs.add_parser("undo", help="set spec.model.versionRef back to the previous stable version")
    p.add_argument("--to-version", default=None, help="a ModelVersion name, or a version of the same model")
    _common(p)
    p.set_defaults(func=_undo)


# --- plumbing -----------------------------------------------------------------------------------


def _decision(name: str) -> Callable[..., ControlRequest]:
    """``modelops.core.rollout_control.<name>``, imported when a write command runs."""
    decide: Callable[..., ControlRequest] = getattr(importlib.import_module("modelops.core.rollout_control"), name)
    return decide


def _context_namespace(kubeconfig: str | None, context: str | None) -> str:
    """kubectl's default: the namespace of the kubeconfig context, else `default`."""
    from kubernetes import config

    try:
        contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)
        chosen = next((c for c in contexts if c.get("name") == context), None) if context else active
        return str((chosen or {}).get("context", {}).get("namespace") or "default")
    except Exception:  # in-cluster, or a kubeconfig load_api_client already judged
        return "default"


def _client(args: argparse.Namespace) -> CustomObjects:
    from modelops.k8s.client import KubeConnectionError, load_api_client
    from modelops.k8s.resources import CustomObjects

    try:
        api = CustomObjects(load_api_client(args.kubeconfig, args.context))
    except KubeConnectionError as exc:
        raise CLIError(str(exc)) from exc
    if args.namespace is None:
        args.namespace = _context_namespace(args.kubeconfig, args.context)
    return api


def _api_error(exc: Exception, args: argparse.Namespace) -> CLIError:
    from modelops.k8s.resources import Conflict, NotFound, Rejected

    if isinstance(exc, NotFound):
        return CLIError(f'not found: modeldeployment "{args.name}" in namespace "{args.namespace}"')
    if isinstance(exc, Conflict):
        return CLIError(f"conflict: modeldeployment/{args.name} kept changing while we wrote; try again ({exc})")
    if isinstance(exc, Rejected):
        return CLIError(f"rejected: {exc}")
    return CLIError(str(exc))


def _call(args: argparse.Namespace, fn: Callable[..., Any], *a: Any) -> Any:
    from modelops.k8s.client import KubeConnectionError
    from modelops.k8s.resources import Conflict, NotFound, Rejected
    from modelops.k8s.rollout_control import Deleted

    try:
        return fn(*a)
    except (KubeConnectionError, NotFound, Conflict, Rejected, Deleted) as exc:
        raise _api_error(exc, args) from exc


def _parse(obj: Obj) -> Rollout:
    from modelops.core.rollout_view import UnreadableStatus, parse_rollout

    try:
        return parse_rollout(obj)
    except UnreadableStatus as exc:
        name = obj.get("metadata", {}).get("name")
        raise CLIError(f"modeldeployment/{name} has a status this CLI cannot read: {exc}") from exc


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# --- get ----------------------------------------------------------------------------------------


def _exit_code(outcome: Outcome) -> int:
    from modelops.core.rollout_view import Outcome

    return {Outcome.SUCCEEDED: 0, Outcome.FAILED: 1}.get(outcome, 0)


def _get(args: argparse.Namespace) -> int:
    from modelops.core.rollout_view import Outcome, ended, pause_remaining, render
    from modelops.k8s.resources import MODEL_DEPLOYMENT
    from modelops.k8s.rollout_control import Feed

    api = _client(args)
    if not args.watch:
        once = _parse(_call(args, api.get, MODEL_DEPLOYMENT, args.namespace, args.name))
        print("\n".join(render(once, _now())))
        return 0
    tty = sys.stdout.isatty()
    feed = Feed(api, args.namespace, args.name)
    rollout: Rollout | None = None
    shown = ""
    while True:
        # On a terminal, a timed pause counts down once a second; otherwise draw on changes only.
        ticking = tty and rollout is not None and pause_remaining(rollout, _now()) is not None
        obj = _call(args, feed.latest, 1.0 if ticking else None)
        if obj is not None:
            rollout = _parse(obj)
        elif rollout is None:
            continue
        assert rollout is not None
        text = "\n".join(render(rollout, _now()))
        if tty:
            sys.stdout.write(CLEAR + text + "\n")
        elif text != shown:
            sys.stdout.write(("\n" if shown else "") + text + "\n")
        sys.stdout.flush()
        shown = text
        outcome = ended(rollout)
        if outcome is not Outcome.WAITING:
            return _exit_code(outcome)


# --- status -------------------------------------------------------------------------------------


def _timeout(text: str) -> float | None:
    """Seconds, or None for no limit; bare numbers are seconds (as `kubectl rollout status`)."""
    try:
        seconds = float(text) if text.replace(".", "", 1).isdigit() else parse_duration(text).total_seconds()
    except ValueError as exc:
        raise CLIError(f"--timeout: {exc}") from exc
    return None if seconds == 0 else seconds


def _status(args: argparse.Namespace) -> int:
    from modelops.core.rollout_view import Outcome, progress
    from modelops.k8s.rollout_control import Feed

    limit = _timeout(args.timeout)
    api = _client(args)
    deadline = None if limit is None else time.monotonic() + limit
    feed = Feed(api, args.namespace, args.name)
    last = ""
    phase = "unknown"
    while True:
        remaining = None if deadline is None else deadline - time.monotonic()
        obj = None if remaining is not None and remaining <= 0 else _call(args, feed.latest, remaining)
        if obj is None:
            print(
                f'modelops: error: timed out after {args.timeout} waiting for modeldeployment "{args.name}" '
                f"(phase {phase})",
                file=sys.stderr,
            )
            return EXIT_TIMEOUT
        rollout = _parse(obj)
        phase = str(rollout.status.phase)
        outcome, line = progress(rollout)
        if outcome is Outcome.FAILED:
            print(f"modelops: error: {line}", file=sys.stderr)
            return 1
        if line != last:
            print(line, flush=True)
            last = line
        if outcome is Outcome.SUCCEEDED:
            return 0


# --- writes -------------------------------------------------------------------------------------


def _control(args: argparse.Namespace, decide: Callable[[Rollout], ControlRequest]) -> int:
    from modelops.core.rollout_control import Refused
    from modelops.k8s.rollout_control import patch_status_guarded

    api = _client(args)
    summary: list[str] = []

    def patch_for(obj: Obj) -> Obj:
        try:
            request = decide(_parse(obj))
        except Refused as exc:
            raise CLIError(str(exc)) from exc
        summary[:] = [request.summary]
        return request.patch

    _call(args, patch_status_guarded, api, args.namespace, args.name, patch_for)
    print(summary[0])
    return 0


def _undo(args: argparse.Namespace) -> int:
    from modelops.core.rollout_control import Refused, request_undo
    from modelops.k8s.resources import MODEL_VERSION
    from modelops.k8s.rollout_control import patch_spec_guarded

    api = _client(args)
    summary: list[str] = []
    versions: list[Obj] = _call(args, api.list, MODEL_VERSION, args.namespace)

    def patch_for(obj: Obj) -> Obj:
        try:
            request = request_undo(_parse(obj), versions, args.to_version)
        except Refused as exc:
            raise CLIError(str(exc)) from exc
        summary[:] = [request.summary]
        return request.patch

    _call(args, patch_spec_guarded, api, args.namespace, args.name, patch_for)
    print(summary[0])
    return 0
