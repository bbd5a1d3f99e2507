"""Fixtures for sync tests: Registry rows pointing at the real test registries.

registry_row(server_or_url, repositories=None, **fields)
    A saved Registry for a RegistryServer (its credentials copied) or a URL (a fault
    proxy). With `repositories`, the row syncs only those (catalog mode "list"), which
    keeps tests on the shared session registry to their own repositories.
"""

import itertools

import pytest

from registries.models import Registry


@pytest.fixture
def registry_row(db):
    numbers = itertools.count(1)

    def make(server_or_url, repositories=None, **fields):
        url = server_or_url if isinstance(server_or_url, str) else server_or_url.url
        row = Registry(name=f"sync-test-{next(numbers)}", url=url, **fields)
        username = getattr(server_or_url, "username", None)
        if username:
            row.username, row.secret = username, server_or_url.password
        if repositories is not None:
            row.catalog_mode = Registry.CatalogMode.LIST
            row.repository_list = "\n".join(repositories)
        row.save()
        return row

    return make
