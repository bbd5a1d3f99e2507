"""Images the UI tests browse, pushed once per session to the shared real registry."""

import datetime as dt

import pytest

from tests.support.images import build_image, build_platform_index, push_image, push_index

APP_CREATED = {
    "1.10": dt.datetime(2023, 3, 1, tzinfo=dt.UTC),
    "1.2": dt.datetime(2023, 6, 1, tzinfo=dt.UTC),
    "1.9": dt.datetime(2023, 9, 1, tzinfo=dt.UTC),
}


def app_image(version, created):
    return build_image(
        created=created,
        extra_files={"app/VERSION": version},
        labels={"org.opencontainers.image.version": version},
        entrypoint=["/app/run"],
        exposed_ports=["8080/tcp"],
        workdir="/app",
        user="app",
    )


@pytest.fixture(scope="session")
def ui_images(registry):
    """ui/app: 1.2, 1.9 (also `latest`), 1.10 with their own created dates; ui/multi:v1 index."""
    images = {version: app_image(version, created) for version, created in APP_CREATED.items()}
    for version, image in images.items():
        push_image(registry.url, "ui/app", version, image)
    push_image(registry.url, "ui/app", "latest", images["1.9"])
    index = build_platform_index()
    push_index(registry.url, "ui/multi", "v1", index)
    return {"app": images, "multi": index}
