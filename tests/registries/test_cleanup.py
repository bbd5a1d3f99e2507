"""Bulk cleanup: rules -> plan (dry run), and the job that deletes exactly that plan."""

import datetime as dt

import pytest
import requests

from audit.models import AuditEvent
from jobs.models import Job
from registries.cleanup import CleanupRules, InvalidRule, build_plan, start_cleanup
from registries.models import Tag
from tests.support.cache_rows import image_manifest, index_manifest, repository_with_tags, sync_into
from tests.support.images import build_image, build_platform_index, push_image, push_index

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2024, 12, 1, tzinfo=dt.UTC)


def day(number):
    return dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(days=number)


def planned_tags(plan):
    return {tag for item in plan.deletions for tag in item.tags}


def rules(**options):
    return CleanupRules(**{"protected": (), **options})


@pytest.fixture
def images(registry_a):
    """Five images of registry-a, created on days 1..5, with layers of their own."""
    return [image_manifest(registry_a, f"img{n}", created=day(n)) for n in range(1, 6)]


def test_keep_newest_goes_by_created_date_not_name(registry_a, images):
    # Names sort the other way round from the created dates.
    tags = {f"v{9 - n}": image for n, image in enumerate(images)}
    repository_with_tags(registry_a, "app", tags)
    plan = build_plan(registry_a, rules(keep_newest=2), now=NOW)
    assert planned_tags(plan) == {"v9", "v8", "v7"}  # days 1, 2, 3: the oldest


def test_age_rule_never_removes_undated_tags(registry_a, images):
    undated = image_manifest(registry_a, "undated", created=None)
    repository_with_tags(registry_a, "app", {"old": images[0], "undated": undated})
    assert planned_tags(build_plan(registry_a, rules(older_than_days=30), now=NOW)) == {"old"}
    assert planned_tags(build_plan(registry_a, rules(keep_newest=0), now=NOW)) == {"old"}
    # Without a date rule, patterns alone decide.
    assert planned_tags(build_plan(registry_a, rules(tag_pattern="*"), now=NOW)) == {
        "old",
        "undated",
    }


def test_age_and_keep_rules_both_must_allow_a_delete(registry_a, images):
    repository_with_tags(registry_a, "app", {f"t{n}": image for n, image in enumerate(images)})
    cutoff_days = (NOW - day(3)).days  # images of days 1 and 2 are older than that
    plan = build_plan(registry_a, rules(older_than_days=cutoff_days, keep_newest=4), now=NOW)
    assert planned_tags(plan) == {"t0"}


def test_protected_tags_and_the_default(registry_a, images):
    repository_with_tags(registry_a, "app", {"latest": images[0], "v1.0.0": images[1]})
    assert CleanupRules().protected == ("latest",)
    assert planned_tags(build_plan(registry_a, CleanupRules(), now=NOW)) == {"v1.0.0"}
    semver = CleanupRules(
        syntax="regex", repository_pattern=".*", tag_pattern=".*", protected=(r"v\d+\.\d+\.\d+",)
    )
    assert planned_tags(build_plan(registry_a, semver, now=NOW)) == {"latest"}


def test_a_kept_sibling_holds_the_digest_back(registry_a, images):
    repository_with_tags(
        registry_a, "app", {"pr-1": images[0], "release-1": images[0], "pr-2": images[1]}
    )
    plan = build_plan(registry_a, rules(tag_pattern="pr-*"), now=NOW)
    assert planned_tags(plan) == {"pr-2"}
    [held] = plan.repositories[0].held
    assert held.tag == "pr-1"
    assert "release-1" in held.reason


def test_siblings_that_all_match_go_together(registry_a, images):
    repository_with_tags(registry_a, "app", {"pr-1": images[0], "pr-1-b": images[0]})
    [item] = build_plan(registry_a, rules(tag_pattern="pr-*"), now=NOW).deletions
    assert item.tags == ["pr-1", "pr-1-b"]


def test_repository_patterns_glob_and_regex(registry_a, images):
    repository_with_tags(registry_a, "team/app", {"a": images[0]})
    repository_with_tags(registry_a, "team/tools/ci", {"b": images[1]})
    repository_with_tags(registry_a, "other", {"c": images[2]})
    glob = build_plan(registry_a, rules(repository_pattern="team/*"), now=NOW)
    assert [repo.name for repo in glob.repositories] == ["team/app", "team/tools/ci"]
    regex = rules(syntax="regex", repository_pattern=r"team/[^/]+", tag_pattern=".*")
    assert [repo.name for repo in build_plan(registry_a, regex, now=NOW).repositories] == [
        "team/app"
    ]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"syntax": "regex", "tag_pattern": "v(1"}, "not a valid regular expression"),
        ({"tag_pattern": "  "}, "cannot be empty"),
        ({"keep_newest": -1}, "cannot be negative"),
        ({"syntax": "sql"}, "Unknown pattern syntax"),
    ],
)
def test_bad_rules_are_refused(options, message):
    with pytest.raises(InvalidRule, match=message):
        CleanupRules(**options)


def test_freed_bytes_leave_out_blobs_anything_kept_uses(registry_a):
    shared = ("shared-base", 5000)
    old = image_manifest(registry_a, "old", created=day(1), layers=[shared, ("own-old", 700)])
    new = image_manifest(registry_a, "new", created=day(2), layers=[shared, ("own-new", 300)])
    elsewhere = image_manifest(registry_a, "else", created=day(1), layers=[("own-else", 900)])
    repository_with_tags(registry_a, "app", {"old": old, "new": new})
    # Another repository keeps `elsewhere`: deleting it from "app" frees none of its blobs.
    repository_with_tags(registry_a, "keeper", {"x": elsewhere})
    repository_with_tags(registry_a, "app2", {"gone": elsewhere})
    chosen = rules(syntax="regex", repository_pattern="app.*", tag_pattern="old|gone")
    plan = build_plan(registry_a, chosen, now=NOW)
    assert planned_tags(plan) == {"old", "gone"}
    assert plan.bytes_freed == 700 + old.config_size + len(old.raw.encode())


def test_an_index_takes_its_unused_platform_manifests_along(registry_a):
    amd = image_manifest(registry_a, "amd", arch="amd64", created=day(1))
    arm = image_manifest(registry_a, "arm", arch="arm64", created=day(1))
    old_index = index_manifest(registry_a, "old", [amd, arm], created=day(1))
    arm_new = image_manifest(registry_a, "arm-new", arch="arm64", created=day(2))
    new_index = index_manifest(registry_a, "new", [amd, arm_new], created=day(2))
    repository_with_tags(registry_a, "multi", {"v1": old_index, "v2": new_index})
    [item] = build_plan(registry_a, rules(keep_newest=1), now=NOW).deletions
    assert item.digest == old_index.digest
    assert item.children == [arm.digest]  # amd64 is still used by v2


def test_cleanup_job_deletes_the_plan_and_frees_what_it_said(
    fresh_registry, registry_a, alice, django_capture_on_commit_callbacks
):
    def image(month, marker):
        return build_image(
            created=dt.datetime(2023, month, 1, tzinfo=dt.UTC), extra_files={"m": marker}
        )

    for tag, month in (("pr-1", 1), ("pr-2", 2), ("pr-3", 3)):
        push_image(fresh_registry.url, "app", tag, image(month, tag))
    push_index(fresh_registry.url, "multi", "old", build_platform_index(created=day(1)))
    newer = build_platform_index(created=day(300), amd64_packages=[("musl", "1.2.4-r3")])
    push_index(fresh_registry.url, "multi", "new", newer)
    registry = sync_into(registry_a, fresh_registry, ["app", "multi"])

    chosen = CleanupRules(keep_newest=1, protected=())
    plan = build_plan(registry, chosen)
    assert planned_tags(plan) == {"pr-1", "pr-2", "old"}
    with django_capture_on_commit_callbacks(execute=True):
        job = start_cleanup(registry, chosen, plan, user=alice)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.result["deleted"] == 3
    assert {row["tag"] for row in job.result["results"]} == {"pr-1", "pr-2", "old"}
    assert set(
        Tag.objects.filter(repository__registry=registry).values_list("name", flat=True)
    ) == {
        "pr-3",
        "new",
    }
    listed = requests.get(f"{fresh_registry.url}/v2/app/tags/list", timeout=10).json()["tags"]
    assert listed == ["pr-3"]

    before = fresh_registry.storage_bytes()
    fresh_registry.garbage_collect()
    assert before - fresh_registry.storage_bytes() == plan.bytes_freed
    # The kept index still pulls: its platform manifests survived the collection.
    for child in newer.children:
        answer = requests.head(
            f"{fresh_registry.url}/v2/multi/blobs/{child.layers[0].digest}", timeout=10
        )
        assert answer.status_code == 200

    actions = list(AuditEvent.objects.filter(registry=registry).values_list("action", "params"))
    start = next(params for action, params in actions if action == "cleanup.start")
    assert start["rules"]["keep_newest"] == 1
    assert any(action == "cleanup.finish" for action, _ in actions)


def test_cleanup_skips_a_digest_that_gained_a_tag_since_the_preview(
    registry, repo_name, registry_a, alice, django_capture_on_commit_callbacks
):
    old = build_image(created=dt.datetime(2023, 1, 1, tzinfo=dt.UTC), extra_files={"a": "1"})
    new = build_image(created=dt.datetime(2023, 2, 1, tzinfo=dt.UTC), extra_files={"a": "2"})
    push_image(registry.url, repo_name, "pr-1", old)
    push_image(registry.url, repo_name, "pr-2", new)
    registry_row = sync_into(registry_a, registry, [repo_name])
    chosen = CleanupRules(tag_pattern="pr-*", keep_newest=1, protected=())
    plan = build_plan(registry_row, chosen)
    push_image(registry.url, repo_name, "release", old)  # someone tags it meanwhile
    sync_into(registry_row, registry, [repo_name])
    with django_capture_on_commit_callbacks(execute=True):
        job = start_cleanup(registry_row, chosen, plan, user=alice)
    job.refresh_from_db()
    assert job.result["skipped"] == 1
    assert "release" in job.result["results"][0]["detail"]
    listed = requests.get(f"{registry.url}/v2/{repo_name}/tags/list", timeout=10).json()["tags"]
    assert set(listed) == {"pr-1", "pr-2", "release"}


def test_cleanup_stops_at_disabled_deletes_and_says_how_to_enable_them(
    registry_factory, registry_a, alice, django_capture_on_commit_callbacks
):
    server = registry_factory(delete_enabled=False)
    for number in range(3):
        created = dt.datetime(2023, 1 + number, 1, tzinfo=dt.UTC)
        push_image(
            server.url,
            "app",
            f"pr-{number}",
            build_image(created=created, extra_files={"n": str(number)}),
        )
    registry = sync_into(registry_a, server, ["app"])
    chosen = CleanupRules(protected=())
    with django_capture_on_commit_callbacks(execute=True):
        job = start_cleanup(registry, chosen, build_plan(registry, chosen), user=alice)
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert job.result["failed"] == 1
    assert job.result["not_attempted"] == 2
    assert "REGISTRY_STORAGE_DELETE_ENABLED=true" in job.result["results"][0]["detail"]
    assert Tag.objects.filter(repository__registry=registry).count() == 3
    finish = AuditEvent.objects.get(action="cleanup.finish")
    assert finish.result == AuditEvent.Result.FAILED
