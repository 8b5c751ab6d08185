"""The `modelops` command: one entry point, one module per command group under `modelops.commands`.

Every failure a user can cause (bad kubeconfig, unreachable API, bad file) ends in one line on
stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence

from modelops import __version__
from modelops.errors import CLIError

# Each module defines `register(subparsers)` and sets `func` on its parsers.
COMMAND_MODULES = (
    "modelops.commands.crds",
    "modelops.commands.run",
    "modelops.commands.registry",
    "modelops.commands.sandbox",
    "modelops.commands.demo",
    "modelops.commands.drift",
    "modelops.commands.serve",
    "modelops.commands.rollout",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modelops", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--version", action="version", version=f"modelops {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            # A group not built yet, or an optional extra not installed: the rest still works.
            if exc.name == name or not (exc.name or "").startswith("modelops"):
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        # urllib3 logs every retry with a full traceback; the one-line CLIError says it all.
        logging.getLogger("urllib3").setLevel(logging.ERROR)
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return func(args)
    except KeyboardInterrupt:
        return 130
    except CLIError as exc:
        print(f"modelops: error: {exc}", file=sys.stderr)
        return 1


__all__ = ["CLIError", "build_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())
