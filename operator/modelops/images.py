"""The operator's own image: what its children (model servers, drift checks) run by default."""

from __future__ import annotations

import os

from modelops import __version__

ENV = "MODELOPS_IMAGE"


def operator_image() -> str:
    """MODELOPS_IMAGE (set by the chart, and by the sandbox) or the released image of this version."""
    return os.environ.get(ENV) or f"ghcr.io/modelops/modelops:{__version__}"
