"""`modelops demo`: the whole loop on a local sandbox cluster, no Kubernetes needed."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

EPILOG = """exit codes: 0 the loop completed as shown; 1 a step did not behave as shown (one line names the
step and the reason); 3 Prometheus is not installed (apt-get install prometheus): the parts that need
no Prometheus ran, the analysed canaries were skipped; 130 interrupted."""


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "demo",
        help="run the local end-to-end demo (no cluster needed)",
        description="Registry -> gated canary -> automatic rollback -> drift -> retraining -> validated version -> "
        "gated canary, on a local sandbox cluster (real processes, real Prometheus) under live traffic.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--keep",
        action="store_true",
        help="leave the sandbox running afterwards (it prints how to use and stop it)",
    )
    p.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="the sandbox's directory (default: a new temporary one, removed after a successful run)",
    )
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from modelops.demo.main import run_demo

    return run_demo(keep=args.keep, directory=args.dir)
