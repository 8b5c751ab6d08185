"""Retrain the churn model on the drifted window and register it: a thin wrapper around the packaged
example, which works from an installed wheel or the image too:

    python -m modelops.examples.retrain --help

See README.md in this directory.
"""

from __future__ import annotations

import sys

from modelops.examples.retrain import main

if __name__ == "__main__":
    sys.exit(main())
