"""`modelops demo`: the whole system on an embedded fake API server, no cluster needed."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("demo", help="run the local end-to-end demo (no cluster needed)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from modelops.demo.main import run_demo

    return run_demo()
