"""Defaults of reference profiles, apart from ``profile`` so the CLI's parser shows them without
importing numpy (``modelops drift --help`` imports this module and nothing heavy)."""

from __future__ import annotations

DEFAULT_KS_SAMPLE = 20_000
"""Distinct reference values kept per numerical column: KS within 5e-5 of the full data, and
larger than scipy's exact-KS limit so small references are stored (and tested) exactly."""
DEFAULT_BINS = 10
"""Reference-quantile bins for PSI, and for chi2/JS on continuous columns (deciles)."""
