"""Schema-driven fuzzing of the live API with schemathesis: no 5xx, every answer in schema.

Each operation of /api/schema/ becomes a test; schemathesis generates requests (valid and
edge-case data) sent over HTTP to pytest-django's live server as a superuser's API token.
Generated ids and digests are half the time swapped for ones that exist, so requests reach
past the 404s. Bounded by REGUI_FUZZ_EXAMPLES per operation (`make fuzz` raises it).
"""

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode, checks

from accounts import tokens
from tests.api.conftest import FUZZ_REQUESTS
from tests.support.scanning_fixtures import fixture_image, push_and_cache

EXAMPLES = int(os.environ.get("REGUI_FUZZ_EXAMPLES", "8"))
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


@pytest.fixture
def fuzz_requests():
    """Counts the requests sent; tests/api/conftest.py prints the total after the run."""
    return FUZZ_REQUESTS


@pytest.fixture
def fuzz_world(
    live_server, settings, registry, live_registry_a, repo_name, scanned_image, personas
):
    """Registry A (live, limited to one repository) with a pushed image and a scanned one."""
    live_registry_a.catalog_mode = "list"
    live_registry_a.repository_list = repo_name
    live_registry_a.save()
    pushed = push_and_cache(registry, live_registry_a, repo_name, "v1", fixture_image("amd64"))
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"anon": "100000/min", "token": "100000/min"},
    }
    _, token = tokens.issue(personas["root"], name="fuzz")
    return {
        "base_url": live_server.url,
        "token": token,
        "registry": live_registry_a.pk,
        "digests": [scanned_image.digest, pushed.digest],
        "repository": repo_name,
    }


def aim_at_existing_objects(case, world):
    """Point about half of the generated ids at objects that exist."""
    for name, value in (case.path_parameters or {}).items():
        if name in ("id", "registry_pk") and "/registries/" in case.path:
            if isinstance(value, int) and value % 2 == 0:
                case.path_parameters[name] = world["registry"]
        elif name == "digest" and len(str(value)) % 2 == 0:
            case.path_parameters[name] = world["digests"][len(str(value)) % 4 // 2]
    query = case.query or {}
    for name in ("registry", "registry_id"):
        if isinstance(query.get(name), int) and query[name] % 2 == 0:
            query[name] = world["registry"]
    if isinstance(query.get("repository"), str) and len(query["repository"]) % 2 == 0:
        query["repository"] = world["repository"]


def fuzz_operation(operation, mode, world, sent):
    """Run the operation's generated cases; its first failure as text, if any."""

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case):
        aim_at_existing_objects(case, world)
        sent["count"] += 1
        case.call_and_validate(
            base_url=world["base_url"],
            headers={"Authorization": f"Bearer {world['token']}"},
            checks=CHECKS,
            timeout=60,
        )

    try:
        run()
    except BaseExceptionGroup as failure:  # schemathesis's FailureGroup, after shrinking
        return [f"{operation.label} ({mode.value}): {failure}"]
    return []


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_api_answers_within_its_schema(fuzz_world, fuzz_requests, trivy_settings):
    schema = schemathesis.openapi.from_url(f"{fuzz_world['base_url']}/api/schema/")
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            failures += fuzz_operation(operation, mode, fuzz_world, fuzz_requests)

    assert not failures, "\n\n".join(failures[:20])
