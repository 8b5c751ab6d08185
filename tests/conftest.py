"""Repository-wide pytest configuration: fixture plugins live in tests/support/.

tests.support.skipguard fails a CI run (MODELOPS_CI=1, set by .ci/run) that skipped any test
other than the Docker-only `e2e` suite.
"""

pytest_plugins = [
    "tests.support.apiserver",
    "tests.support.operator",
    "tests.support.cluster",
    "tests.support.skipguard",
    "tests.support.wheel",
]
