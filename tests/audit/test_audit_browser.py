"""The audit log in Chromium: reached from the navigation bar, filtered in place by htmx."""

import re

import pytest
from playwright.sync_api import expect

from audit.models import AuditEvent
from tests.support.browser import login, screenshots

pytestmark = pytest.mark.django_db(transaction=True)


def test_admin_filters_the_audit_log(page, live_server, registry_a, registry_b, alice):
    for number in range(30):
        AuditEvent.objects.create(
            action="tag.delete" if number % 3 else "registry.sync",
            registry=registry_a,
            actor_name="bob",
            target=f"team/app:{number}",
            params={"tags": [str(number)]},
        )
    AuditEvent.objects.create(action="tag.delete", registry=registry_b, actor_name="mallory")
    login(page, live_server, alice).goto(live_server.url + "/")

    page.get_by_role("link", name="Audit log").click()
    expect(page.locator("h1")).to_have_text("Audit log")
    expect(page.locator("tr[data-event]")).to_have_count(30)  # not B's event
    screenshots(page, "audit")

    page.get_by_label("Action").select_option("registry.sync")
    expect(page.locator("tr[data-event]")).to_have_count(10)
    expect(page).to_have_url(re.compile(r"action=registry\.sync"))
    page.get_by_label("Actor").fill("nobody")
    page.get_by_label("Actor").press("Enter")
    expect(page.locator("#audit-table")).to_contain_text("No events match these filters")
