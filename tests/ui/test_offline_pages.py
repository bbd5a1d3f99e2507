"""Every page renders from the cache alone: the registry is stopped before any is opened."""

import pytest
from django.urls import reverse

from tests.support.cache_rows import sync_into
from tests.support.images import build_image, build_platform_index, push_image, push_index

pytestmark = pytest.mark.django_db


def test_every_page_renders_with_the_registry_stopped(registry_factory, registry_a, client_for):
    server = registry_factory()
    image = build_image(labels={"team": "core"})
    push_image(server.url, "team/app", "1.0", image)
    push_image(server.url, "team/app", "stable", image)
    index = build_platform_index()
    push_index(server.url, "team/multi", "v1", index)
    registry = sync_into(registry_a, server, ["team/app", "team/multi"])
    server.stop()

    client = client_for("alice")
    args = [registry.pk]
    app, multi = [*args, "team/app"], [*args, "team/multi"]
    child = index.children[1].digest
    pages = [
        reverse("dashboard"),
        reverse("registry", args=args),
        reverse("registry", args=args) + "?q=team&sort=-size&ns=team",
        reverse("repository", args=app),
        reverse("repository", args=app) + "?sort=name&q=1",
        reverse("image-tag", args=[*app, "1.0"]),
        reverse("image-digest", args=[*app, image.digest]),
        reverse("image-tag", args=[*multi, "v1"]) + "?platform=linux/arm64/v8",
        reverse("image-digest", args=[*multi, child]),
        reverse("image-raw", args=[*multi, index.digest, "manifest"]),
        reverse("image-raw", args=[*multi, child, "config"]),
        reverse("tag-delete", args=[*app, "1.0"]),
        reverse("cleanup", args=args),
        reverse("jobs"),
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
    preview = client.post(
        reverse("cleanup", args=args),
        {"syntax": "glob", "repository_pattern": "team/*", "tag_pattern": "*", "protected": ""},
    )
    assert preview.status_code == 200
    assert preview.context["plan"].tag_count == 3
    assert not server.running
