"""`modelops sandbox`: the local cluster (`up`, `down`, `status`) and the bare fake API server (`apiserver`)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

DEFAULT_DIR = Path(".modelops-sandbox")


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser("sandbox", help="local stand-ins for a cluster (tests, demo)")
    group = parser.add_subparsers(dest="sandbox_command", metavar="SUBCOMMAND")
    api = group.add_parser("apiserver", help="serve a fake Kubernetes API on 127.0.0.1 (plain http, no auth)")
    api.add_argument("--port", type=int, default=8001, help="TCP port (0: any free port; default: 8001)")
    api.add_argument("--kubeconfig", type=Path, required=True, help="write a kubeconfig for it here")
    api.add_argument(
        "--crds", type=Path, action="append", default=[], help="CRD file or directory to preload (repeatable)"
    )
    api.add_argument(
        "--lenient-crds",
        action="store_true",
        help="accept CRD schemas a real apiserver rejects for wrongly typed fields (logs a warning instead)",
    )
    api.set_defaults(func=_apiserver)

    up = group.add_parser(
        "up", help="start a local cluster in the background: API server, operator, workloads, Prometheus"
    )
    _dir_arg(up)
    up.add_argument("--port", type=int, default=0, help="API server port (default: any free port)")
    _tuning_args(up)
    up.set_defaults(func=_up)
    down = group.add_parser("down", help="stop everything sandbox up started in DIR")
    _dir_arg(down)
    down.set_defaults(func=_down)
    status = group.add_parser("status", help="components, Services (local URLs) and pods of the sandbox in DIR")
    _dir_arg(status)
    status.add_argument("-o", "--output", choices=("text", "json"), default="text", help="output format")
    status.set_defaults(func=_status)
    # the detached process `up` starts; not for people
    supervise = group.add_parser("supervise")
    _dir_arg(supervise)
    supervise.add_argument("--port", type=int, default=0)
    supervise.add_argument("--ready-fd", type=int, default=None)
    _tuning_args(supervise)
    supervise.set_defaults(func=_supervise)
    group._choices_actions = [a for a in group._choices_actions if a.dest != "supervise"]

    def usage(_args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    parser.set_defaults(func=usage)


def _apiserver(args: argparse.Namespace) -> int:
    from modelops.errors import CLIError
    from modelops.sandbox import ApiError, ApiServer

    for path in args.crds:
        if not path.exists():
            raise CLIError(f"--crds {path}: no such file or directory")

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with ApiServer(port=args.port, crds=args.crds, strict_crds=not args.lenient_crds) as api:
            api.write_kubeconfig(args.kubeconfig)
            print(f"sandbox apiserver on {api.url}; kubeconfig: {args.kubeconfig}", flush=True)
            await stop.wait()

    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve())
    except ApiError as exc:
        raise CLIError(f"cannot load CRDs: {exc.message}") from None
    except OSError as exc:
        raise CLIError(f"cannot serve on port {args.port}: {exc.strerror or exc}") from None
    return 0


def _dir_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dir", type=Path, default=DEFAULT_DIR, help=f"the sandbox's state directory (default: {DEFAULT_DIR}/)"
    )


def _tuning_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scrape-interval", type=float, default=2.0, help="Prometheus scrape interval in seconds (default 2)"
    )
    parser.add_argument(
        "--cron-minute-seconds",
        type=float,
        default=60.0,
        help="real seconds per CronJob minute (default 60; smaller runs schedules faster, same path)",
    )
    parser.add_argument(
        "--restart-backoff",
        type=float,
        default=10.0,
        help="first crash-loop / Job retry back-off in seconds (default 10, as the kubelet)",
    )


def _layout(args: argparse.Namespace) -> Any:
    from modelops.sandbox.cluster.supervisor import Layout

    return Layout(args.dir.expanduser().resolve())


def _check_tuning(args: argparse.Namespace) -> None:
    from modelops.errors import CLIError

    if args.scrape_interval <= 0:
        raise CLIError("--scrape-interval must be positive")
    if args.cron_minute_seconds <= 0:
        raise CLIError("--cron-minute-seconds must be positive")
    if args.restart_backoff < 0:
        raise CLIError("--restart-backoff must not be negative")
    if not 0 <= args.port <= 65535:
        raise CLIError("--port must be within 0..65535")


def _up(args: argparse.Namespace) -> int:
    from modelops.errors import CLIError
    from modelops.sandbox.cluster.supervisor import SandboxError, live_state, start

    _check_tuning(args)
    layout = _layout(args)
    running = live_state(layout)
    if running is not None:
        print(f"sandbox already running in {layout.root} (supervisor pid {running['pid']})")
        print(f"export KUBECONFIG={running.get('kubeconfig')}")
        return 0
    began = time.monotonic()
    try:
        state = start(
            layout,
            port=args.port,
            scrape_interval=args.scrape_interval,
            cron_minute_seconds=args.cron_minute_seconds,
            restart_backoff=args.restart_backoff,
        )
    except SandboxError as exc:
        raise CLIError(str(exc)) from None
    comps = state["components"]
    print(f"sandbox up in {layout.root} (supervisor pid {state['pid']}, ready in {time.monotonic() - began:.1f}s)")
    print(f"export KUBECONFIG={state['kubeconfig']}")
    print(f"API server:  {comps['apiserver']['url']}")
    prometheus = comps.get("prometheus") or {}
    if prometheus.get("url"):
        print(f"Prometheus:  {prometheus['url']}")
    print(f"logs:        {layout.logs}/")
    print(f"stop with:   modelops sandbox down --dir {layout.root}")
    if prometheus.get("missing"):
        print(f"modelops: warning: {prometheus['missing']}", file=sys.stderr)
    return 0


def _down(args: argparse.Namespace) -> int:
    from modelops.sandbox.cluster.supervisor import stop

    layout = _layout(args)
    began = time.monotonic()
    stopped = stop(layout)
    if not stopped.anything:
        print(f"nothing running in {layout.root}")
        return 0
    if stopped.supervisor:
        print(f"sandbox in {layout.root} stopped ({time.monotonic() - began:.1f}s)")
    if stopped.leftovers:
        pids = ", ".join(str(p) for p in stopped.leftovers)
        what = "left running" if stopped.supervisor else "left by a supervisor that had died"
        print(f"killed {len(stopped.leftovers)} pod process(es) {what} in {layout.root}: pid {pids}")
    return 0


def _status(args: argparse.Namespace) -> int:
    from modelops.errors import CLIError
    from modelops.sandbox.cluster.supervisor import format_status, status_report

    layout = _layout(args)
    report = status_report(layout)
    if report is None:
        raise CLIError(f"nothing running in {layout.root} (start it with: modelops sandbox up --dir {layout.root})")
    print(json.dumps(report, indent=2) if args.output == "json" else format_status(report))
    return 0


def _supervise(args: argparse.Namespace) -> int:
    from modelops.sandbox.cluster.supervisor import supervise

    return supervise(
        _layout(args),
        args.ready_fd,
        api_port=args.port,
        scrape_interval=args.scrape_interval,
        cron_minute_seconds=args.cron_minute_seconds,
        restart_backoff=args.restart_backoff,
    )
