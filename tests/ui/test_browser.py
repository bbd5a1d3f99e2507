"""The team UI in a real Chromium against a live server, a real registry and a real sync."""

import datetime as dt
import re

import pytest
import requests
from playwright.sync_api import expect

from jobs.models import Job
from registries.models import Tag
from tests.support.browser import login, screenshots
from tests.support.cache_rows import sync_into
from tests.support.images import MANIFEST_ACCEPT, build_image, push_image
from tests.support.personas import PERSONA_PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def tag_order(page):
    return page.locator("#tags tbody tr").evaluate_all("rows => rows.map(r => r.dataset.tag)")


def first_row(page):
    return page.locator("#tags tbody tr").first


def registry_tags(server, repository):
    answer = requests.get(f"{server.url}/v2/{repository}/tags/list", timeout=10)
    return set(answer.json().get("tags") or [])


def test_login_dashboard_and_sync_now(page, live_server, registry, ui_images, alice):
    registry_a = sync_into(alice.registry_memberships.get().registry, registry, ["ui/app"])
    page.goto(live_server.url)
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    screenshots(page, "login")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", PERSONA_PASSWORD)
    page.click("button[type=submit]")

    card = page.locator(f"[data-registry='{registry_a.name}']")
    expect(card).to_contain_text("Healthy")
    expect(card).to_contain_text("4")  # tags of ui/app
    expect(page.locator("#registry-cards")).not_to_contain_text("registry-b")
    expect(page.locator("canvas[data-chart]")).to_be_visible()
    screenshots(page, "dashboard")

    card.get_by_role("button", name="Sync now").click()
    expect(page.locator(".alert-success")).to_contain_text("Sync of registry-a started")


def test_repository_sorts_tags_by_created_and_name(page, live_server, registry, ui_images, carol):
    registry_a = sync_into(carol.registry_memberships.get().registry, registry, ["ui/app"])
    login(page, live_server, carol).goto(f"{live_server.url}/registries/{registry_a.pk}/")
    search = page.locator("#repo-search input[name=q]")
    search.fill("nothing-like-this")
    expect(page.locator("#repository-table")).to_contain_text("No repository matches")
    search.fill("")
    page.select_option("#repo-search select[name=ns]", "ui")
    expect(page.locator("#repository-table .namespace-row")).to_have_text("ui/")
    assert "ns=ui" in page.url
    page.get_by_role("link", name="app").click()
    expect(page.locator("h1")).to_contain_text("ui/app")
    # Newest first by default; `latest` shares 1.9's digest and says so.
    assert tag_order(page) == ["1.9", "latest", "1.2", "1.10"]
    expect(page.locator("tr[data-tag='latest'] .sibling-tag")).to_have_text("1.9")

    page.locator("a.sort-link[data-sort=created]").click()
    expect(page.locator("a.sort-link[data-sort=created]")).to_have_class(re.compile("active"))
    expect(first_row(page)).to_have_attribute("data-tag", "1.10")
    assert tag_order(page) == ["1.10", "1.2", "1.9", "latest"]
    assert "sort=created" in page.url

    page.locator("a.sort-link[data-sort=name]").click()
    expect(first_row(page)).to_have_attribute("data-tag", "1.2")
    assert tag_order(page) == ["1.2", "1.9", "1.10", "latest"]  # 1.10 after 1.9

    page.fill("input[name=q]", "1.1")
    expect(page.locator("#tags tbody tr")).to_have_count(1)
    assert tag_order(page) == ["1.10"]
    page.fill("input[name=q]", "")
    expect(page.locator("#tags tbody tr")).to_have_count(4)
    screenshots(page, "repository")


def test_index_image_switches_platform(page, live_server, registry, ui_images, carol):
    registry_a = sync_into(carol.registry_memberships.get().registry, registry, ["ui/multi"])
    login(page, live_server, carol)
    page.goto(f"{live_server.url}/registries/{registry_a.pk}/repositories/ui/multi/-/tags/v1/")
    switcher = page.locator("#platform-switcher")
    expect(switcher.locator(".nav-link")).to_have_count(2)  # attestations are not platforms
    expect(page.locator("#shown-platform")).to_have_text("linux/amd64")
    amd64_layers = page.locator("#image-platform .digest").all_inner_texts()

    switcher.get_by_role("tab", name="linux/arm64/v8").click()
    expect(page.locator("#shown-platform")).to_have_text("linux/arm64/v8")
    expect(switcher.locator(".nav-link.active")).to_have_text("linux/arm64/v8")
    assert page.locator("#image-platform .digest").all_inner_texts() != amd64_layers
    assert "platform=linux" in page.url

    page.locator("#raw-config summary").click()
    expect(page.locator("#raw-config pre")).to_contain_text('"architecture": "arm64"')
    screenshots(page, "image")


def test_operator_deletes_a_tag_with_its_siblings(page, live_server, registry, repo_name, bob):
    image = build_image(created=dt.datetime(2024, 2, 2, tzinfo=dt.UTC), extra_files={"x": "1"})
    other = build_image(created=dt.datetime(2024, 3, 3, tzinfo=dt.UTC), extra_files={"x": "2"})
    for tag in ("a", "a-alias"):
        push_image(registry.url, repo_name, tag, image)
    push_image(registry.url, repo_name, "b", other)
    registry_a = sync_into(bob.registry_memberships.get().registry, registry, [repo_name])

    login(page, live_server, bob)
    page.goto(f"{live_server.url}/registries/{registry_a.pk}/repositories/{repo_name}/")
    page.locator("tr[data-tag='a'] [data-action=delete]").click()
    dialog = page.locator("#modal")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#tags-going li")).to_have_count(2)
    expect(dialog).to_contain_text(f"{repo_name}:a-alias")
    dialog.locator("#confirm-delete").click()

    expect(page.locator(".alert-success")).to_contain_text("Deleted a, a-alias")
    assert tag_order(page) == ["b"]
    assert registry_tags(registry, repo_name) == {"b"}
    gone = requests.get(
        f"{registry.url}/v2/{repo_name}/manifests/{image.digest}",
        headers={"Accept": MANIFEST_ACCEPT},
        timeout=10,
    )
    assert gone.status_code == 404


def test_viewer_sees_no_delete_and_a_forged_post_is_refused(
    page, live_server, registry, ui_images, carol
):
    registry_a = sync_into(carol.registry_memberships.get().registry, registry, ["ui/app"])
    login(page, live_server, carol)
    page.goto(f"{live_server.url}/registries/{registry_a.pk}/repositories/ui/app/")
    expect(page.locator("#tags tbody tr")).to_have_count(4)
    expect(page.locator("[data-action=delete]")).to_have_count(0)
    expect(page.get_by_role("link", name="Bulk cleanup")).to_have_count(0)

    token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    delete_url = (
        f"{live_server.url}/registries/{registry_a.pk}/repositories/ui/app/-/tags/1.2/delete/"
    )
    answer = page.request.post(
        delete_url,
        form={"csrfmiddlewaretoken": token},
        headers={"X-CSRFToken": token, "Referer": page.url},
    )
    assert answer.status == 403
    assert "1.2" in registry_tags(registry, "ui/app")
    assert Tag.objects.filter(repository__registry=registry_a, name="1.2").exists()


def test_bulk_cleanup_deletes_exactly_the_preview(page, live_server, registry, repo_name, alice):
    def image(month, marker):
        created = dt.datetime(2023, month, 1, tzinfo=dt.UTC)
        return build_image(created=created, extra_files={"marker": marker})

    pushed = {
        "pr-1": image(1, "1"),
        "pr-2": image(2, "2"),
        "pr-3": image(3, "3"),
        "pr-4": image(4, "4"),
        "v1.0": image(1, "release"),
    }
    pushed["stable-2"] = pushed["pr-2"]  # keeps pr-2's digest: pr-2 must be held back
    pushed["pr-3-alias"] = pushed["pr-3"]  # goes together with pr-3
    pushed["latest"] = pushed["pr-4"]
    for tag, built in pushed.items():
        push_image(registry.url, repo_name, tag, built)
    registry_a = sync_into(alice.registry_memberships.get().registry, registry, [repo_name])

    login(page, live_server, alice)
    page.goto(f"{live_server.url}/registries/{registry_a.pk}/")
    page.get_by_role("link", name="Bulk cleanup").click()
    page.fill("#id_tag_pattern", "pr-*")
    page.fill("#id_keep_newest", "1")
    expect(page.locator("#id_protected")).to_have_value("latest")
    page.click("#preview-button")

    planned = set(page.locator(".plan-tag").all_inner_texts())
    assert planned == {"pr-1", "pr-3", "pr-3-alias"}
    expect(page.locator("[data-repository]")).to_contain_text("pr-2")  # held, with the reason
    expect(page.locator("[data-repository]")).to_contain_text("stable-2")
    assert registry_tags(registry, repo_name) == set(pushed)  # a dry run deletes nothing
    screenshots(page, "cleanup-preview")

    page.click("#confirm-cleanup")
    expect(page.locator("#job-panel")).to_have_attribute("data-status", "succeeded")
    expect(page.locator("#job-results tbody tr[data-result=deleted]")).to_have_count(3)
    expect(page.locator("#gc-guidance")).to_contain_text("--delete-untagged")
    assert registry_tags(registry, repo_name) == set(pushed) - planned
    screenshots(page, "cleanup-job")

    page.goto(f"{live_server.url}/jobs/")
    expect(page.locator("#job-table")).to_contain_text("Cleanup")
    screenshots(page, "jobs")


def test_dark_mode_toggles_and_persists(page, live_server, carol):
    login(page, live_server, carol).goto(f"{live_server.url}/")
    html = page.locator("html")
    page.evaluate("localStorage.removeItem('regui-theme')")
    page.emulate_media(color_scheme="light")
    page.reload()
    expect(html).to_have_attribute("data-bs-theme", "light")
    page.click("#theme-toggle")
    expect(html).to_have_attribute("data-bs-theme", "dark")
    page.reload()
    expect(html).to_have_attribute("data-bs-theme", "dark")
    page.goto(f"{live_server.url}/jobs/")
    expect(html).to_have_attribute("data-bs-theme", "dark")
    page.click("#theme-toggle")
    expect(html).to_have_attribute("data-bs-theme", "light")
    page.reload()
    expect(html).to_have_attribute("data-bs-theme", "light")


def test_jobs_page_follows_a_running_job(page, live_server, registry_a, carol):
    job = Job.objects.create(
        kind=Job.Kind.SYNC, registry=registry_a, status=Job.Status.RUNNING, progress_total=4
    )
    login(page, live_server, carol).goto(f"{live_server.url}/jobs/")
    row = page.locator(f"tr[data-job='{job.pk}']")
    expect(row).to_contain_text("Running")

    job.report_progress(2)
    expect(row).to_contain_text("2/4")  # htmx polls while a job is active
    job.succeed({"tags": 4})
    expect(row).to_contain_text("Succeeded")
    expect(page.locator("#job-table")).not_to_have_attribute("hx-trigger", "every 2s")
