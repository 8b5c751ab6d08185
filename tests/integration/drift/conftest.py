"""Fixtures shared by the DriftMonitor integration tests."""

from tests.integration.drift.test_drift_monitor_operator import api, model_version, operator

__all__ = ["api", "model_version", "operator"]
