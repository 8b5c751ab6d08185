"""`modelops crds`: write the CRD YAML generated from the pydantic models."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

CHART_CRDS = Path("files") / "crds"
"""Where a chart keeps its CRD copies: templates/crds.yaml renders them (not Helm's install-only crds/)."""


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser("crds", help="generate crds/*.yaml from the API models")
    parser.add_argument("-o", "--output", default="crds", type=Path, help="directory (default: crds)")
    parser.add_argument(
        "--chart",
        type=Path,
        default=None,
        help="also copy into this chart's files/crds/ (the chart templates them: crds.enabled, crds.keep)",
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from modelops.api.crdgen import write_all  # pydantic and every model: not for --help

    for path in write_all(args.output):
        print(path)
    if args.chart is not None:
        for path in write_all(args.chart / CHART_CRDS):
            print(path)
    return 0
