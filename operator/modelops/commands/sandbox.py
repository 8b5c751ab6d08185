"""`modelops sandbox apiserver`: the fake Kubernetes API server, standalone, until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from pathlib import Path
from typing import Any


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
