"""Runnable examples shipped in the package, so they work from an installed wheel or the image.

- :mod:`modelops.examples.retrain`: the retraining script a DriftMonitor's Job runs
  (``python -m modelops.examples.retrain``).
"""
