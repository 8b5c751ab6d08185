"""What the demo applies, shipped inside the package: it runs from an installed wheel, from any directory.

``assets/`` mirrors the repository's ``examples/`` (same relative paths, byte-identical files; a
test keeps them so): ``artifacts/`` (the churn models), ``registry/`` and ``canary/`` (ModelVersions,
the ModelPolicy, the ModelDeployment and its Gateway), ``drift/`` (the DriftMonitor) and
``retrain/`` (its reference data). The manifests use ``${MODELOPS_EXAMPLES}`` for that directory, as ``envsubst`` would
fill it from a checkout; the demo fills in this one, plus the sandbox's paths and image.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

ASSETS = Path(__file__).resolve().parent / "assets"

Obj = dict[str, Any]


def load_all(relative: str, values: Mapping[str, str]) -> list[Obj]:
    """The documents of ``assets/<relative>`` with ``${NAME}`` filled from ``values``.

    A variable a document uses but ``values`` lacks is an error (ValueError naming it), never an
    empty string sent to the API server (the comments may name others, such as ``$PWD``).
    """
    text = (ASSETS / relative).read_text()
    docs = [doc for doc in yaml.safe_load_all(string.Template(text).safe_substitute(values)) if doc]
    left = sorted(set(re.findall(r"\$\{(\w+)\}", json.dumps(docs))))
    if left:
        raise ValueError(f"{relative}: no value for {', '.join(left)}")
    return docs


def load(relative: str, values: Mapping[str, str]) -> Obj:
    """The single document of ``assets/<relative>``, filled as by :func:`load_all`."""
    docs = load_all(relative, values)
    if len(docs) != 1:
        raise ValueError(f"{relative}: expected one document, found {len(docs)}")
    return docs[0]
