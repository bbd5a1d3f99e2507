"""Shared fixtures: the real services (registry, Trivy, browser) and the test personas.

Each family of fixtures lives in its own module under tests/support/ and is listed here.
"""

pytest_plugins = [
    "tests.support.browser",
    "tests.support.registry_fixtures",
    "tests.support.trivy_fixtures",
    "tests.support.personas",
    "tests.support.scanning_fixtures",
    "tests.support.sync_fixtures",
    "tests.support.worker_fixtures",
]
