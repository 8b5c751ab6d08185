"""Repository-wide pytest configuration: fixture plugins live in tests/support/."""

pytest_plugins = ["tests.support.apiserver", "tests.support.operator", "tests.support.cluster"]
