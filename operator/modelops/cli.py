"""The `modelops` command: one entry point, one module per command group under `modelops.commands`.

Every failure a user can cause (bad kubeconfig, unreachable API, bad file, bad flag) ends in one
line on stderr and a non-zero exit, never a traceback: usage errors exit 2 (argparse's code),
CLIError its own code (1 unless the command documents another). Anything unforeseen is still one
line; ``-v`` shows its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from modelops import __version__
from modelops.commands.args import plain
from modelops.errors import CLIError, one_line

# Each module defines `register(subparsers)` and sets `func` on its parsers. Only the module of
# the command being run is imported, so `modelops serve` never pays for kopf or scipy; and
# `register` itself imports nothing heavy (stdlib and light modelops modules): numpy, scipy,
# pydantic, kubernetes, kopf and aiohttp are imported by the command function when it runs, so
# every `--help` starts in a blink (tests/cli/test_startup.py holds the line).
COMMANDS: dict[str, tuple[str, str]] = {
    "crds": ("modelops.commands.crds", "generate crds/*.yaml from the API models"),
    "run": ("modelops.commands.run", "run the operator"),
    "registry": ("modelops.commands.registry", "the model registry (ModelVersion)"),
    "rollout": ("modelops.commands.rollout", "watch and steer ModelDeployment rollouts (promote, abort, undo...)"),
    "sandbox": ("modelops.commands.sandbox", "a local cluster for trying and testing (up, down, status)"),
    "demo": ("modelops.commands.demo", "run the local end-to-end demo (no cluster needed)"),
    "drift": ("modelops.commands.drift", "drift checks, reference profiles and reports"),
    "performance": ("modelops.commands.performance", "model performance from delayed labels (a CI gate)"),
    "serve": ("modelops.commands.serve", "serve a model over the Open Inference Protocol v2"),
}


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (with where to look) instead of usage + error, and
    help shows docstrings' RST/Markdown literals (``x``, `x`) as plain text."""

    def format_help(self) -> str:
        return plain(super().format_help())

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see {self.prog} --help)\n")


def end_process(code: int) -> NoReturn:
    """Flush the output and end the process without the interpreter's teardown.

    For a command that has written everything and holds no resource (a file, a child, a lock)
    whose release matters: tearing down numpy, Arrow and pydantic module by module took 70 ms of
    a 1.6 s `performance check`. Only when `main` is the process's entry point, never in-process.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _chosen(argv: Sequence[str]) -> str | None:
    return next((a for a in argv if not a.startswith("-")), None)


def build_parser(argv: Sequence[str] | None = None, prog: str = "modelops") -> argparse.ArgumentParser:
    parser = Parser(
        prog=prog,
        description="Kubernetes-native MLOps: model registry, gated canary delivery, drift monitoring.",
    )
    parser.add_argument("--version", action="version", version=f"modelops {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    # `modelops --help` (no command chosen) imports no command module at all; `modelops X ...`
    # imports X's only. Only build_parser() without argv (docs, tests) builds every command.
    chosen = _chosen(argv) if argv is not None else None
    for name, (module_name, help_text) in COMMANDS.items():
        if argv is not None and name != chosen:
            sub.add_parser(name, help=help_text)  # listed in --help, not imported
            continue
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            # A group not built yet, or an optional extra not installed: the rest still works.
            if exc.name == module_name or not (exc.name or "").startswith("modelops"):
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None, prog: str = "modelops") -> int:
    entry_point = argv is None  # the process's own command line: `modelops ...`, `python -m modelops`
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv, prog)
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
        code = func(args)
        if entry_point and getattr(args, "skip_teardown", False):
            end_process(code)
        return code
    except KeyboardInterrupt:
        return 130
    except CLIError as exc:
        print(f"modelops: error: {one_line(exc)}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # `modelops ... | head`: the reader left; stop quietly, as a SIGPIPE'd tool does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as exc:  # a file or socket the command did not expect to fail
        if args.verbose:
            raise
        where = f": {exc.filename}" if exc.filename else ""
        print(f"modelops: error: {one_line(exc.strerror or exc)}{where}", file=sys.stderr)
        return 1
    except Exception as exc:
        if args.verbose:
            raise
        print(
            f"modelops: error: unexpected {type(exc).__name__}: {one_line(exc)} (rerun with -v for the traceback)",
            file=sys.stderr,
        )
        return 1


def kubectl_main() -> int:
    """The `kubectl-modelops` plugin: kubectl runs it for `kubectl modelops ...` (found on PATH)."""
    return main(prog="kubectl modelops")


__all__ = ["CLIError", "build_parser", "kubectl_main", "main"]

if __name__ == "__main__":
    sys.exit(main())
