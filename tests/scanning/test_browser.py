"""The findings page in a real Chromium: scan button, live refresh, filters, screenshots."""

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from tests.support.browser import login, screenshots
from tests.support.scanning_fixtures import fixture_image, push_and_cache

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_operator_scans_and_filters_the_findings(
    page, live_server, trivy_settings, registry, live_registry_a, repo_name, bob
):
    image = fixture_image("amd64")
    push_and_cache(registry, live_registry_a, repo_name, "v1", image)
    url = live_server.url + reverse(
        "image-scan", args=[live_registry_a.pk, repo_name, image.digest]
    )
    login(page, live_server, bob).goto(url)
    expect(page.locator("#not-scanned")).to_be_visible()

    page.locator("#scan-button").click()

    rows = page.locator("tr[data-finding]")
    expect(rows).to_have_count(6)
    expect(page.locator("#scan-meta")).to_contain_text("Trivy 0.59.1")
    expect(page.get_by_role("link", name="CVE-2099-0001").first).to_have_attribute(
        "href", "https://avd.aquasec.com/nvd/cve-2099-0001"
    )
    screenshots(page, "scan-findings")

    page.locator("#sev-CRITICAL").check()
    page.get_by_role("button", name="Apply").click()
    expect(rows).to_have_count(2)
    page.locator("#group-layer").check()
    page.get_by_role("button", name="Apply").click()
    expect(page.locator(f"[data-layer='{image.layers[1].digest}']")).to_contain_text("Layer 2")


def test_viewer_sees_no_scan_button(page, live_server, registry, live_registry_a, repo_name, carol):
    image = fixture_image("amd64")
    push_and_cache(registry, live_registry_a, repo_name, "v1", image)
    url = live_server.url + reverse(
        "image-scan", args=[live_registry_a.pk, repo_name, image.digest]
    )
    login(page, live_server, carol).goto(url)
    expect(page.locator("#not-scanned")).to_be_visible()
    expect(page.locator("#scan-button")).to_have_count(0)
