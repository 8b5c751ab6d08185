"""Errors shared across the package (kept out of cli.py, which also runs as ``__main__``)."""

from __future__ import annotations


class CLIError(Exception):
    """An error the user can fix; the CLI prints it as one line and exits 1."""
