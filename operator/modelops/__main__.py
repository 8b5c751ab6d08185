"""`python -m modelops`: the same entry point as the `modelops` console script."""

import sys

from modelops.cli import main

sys.exit(main())
