"""Bad input through the API and the UI: a 4xx that says what is wrong, and nothing changed.

"Nothing changed" is checked on the rows (jobs, audit events, cache, memberships, tokens,
registry settings) and on the real registry behind them (its tag lists).
"""

import datetime as dt
import json
from contextlib import contextmanager

import pytest
import requests
from django.forms.models import model_to_dict
from django.test import Client
from django.urls import reverse
from django.utils.html import escape
from rest_framework.test import APIClient

from accounts.models import ApiToken
from audit.models import AuditEvent
from jobs.models import Job
from registries.models import Manifest, Membership, Registry, Repository, Tag
from tests.support.cache_rows import sync_into
from tests.support.images import build_image, push_image

pytestmark = pytest.mark.django_db

COUNTED = [Job, Tag, Repository, Manifest, Membership, ApiToken, Registry]

BAD_REPOSITORIES = [
    "../etc/passwd",
    "app/../../v2",
    "%2e%2e/app",
    "App",
    "app//web",
    "-app",
    "app-",
    "app/",
    "a" * 256,
    "app?x=1",
    "app name",
]
BAD_TAGS = ["../latest", "-rc", ".hidden", "a/b", "a" * 129, "v1:2", "%2e%2e", "v 1"]


def snapshot():
    rows = {model.__name__: model.objects.count() for model in COUNTED}
    # Signing a test client in is audited; nothing else may be.
    rows["AuditEvent"] = AuditEvent.objects.exclude(action__startswith="login.").count()
    registries = {r.pk: model_to_dict(r) for r in Registry.objects.all()}
    return rows, registries


@contextmanager
def nothing_changes(*servers_and_repositories):
    """Asserts that no row count, no registry setting and no real tag list changes."""

    def tag_lists():
        return [listed_tags(server, name) for server, name in servers_and_repositories]

    before, remote = snapshot(), tag_lists()
    yield
    assert snapshot() == before
    assert tag_lists() == remote


def listed_tags(server, repository):
    answer = requests.get(f"{server.url}/v2/{repository}/tags/list", timeout=10)
    return sorted(answer.json().get("tags") or [])


def assert_readable_4xx(response, status=400, *words):
    assert response.status_code == status, (response.status_code, response.content[:300])
    text = response.content.decode()
    assert "Traceback" not in text
    for word in words:
        assert word.lower() in text.lower(), text[:300]


def api_for(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def images(registry, repo_name_factory, registry_a, registry_b):
    """A real repository synced into A and another into B, both with `v1` and `v2`."""
    names = {}
    for row, suffix in [(registry_a, "a"), (registry_b, "b")]:
        name = repo_name_factory(suffix)
        for tag in ("v1", "v2"):
            image = build_image(
                created=dt.datetime(2024, 1, 1, tzinfo=dt.UTC), extra_files={"t": name + tag}
            )
            push_image(registry.url, name, tag, image)
        sync_into(row, registry, [name])
        names[row.name] = name
    return names


def tag_of(registry_row, repository, name="v1"):
    return Tag.objects.select_related("manifest").get(
        repository__registry=registry_row, repository__name=repository, name=name
    )


# Names outside the distribution grammar


@pytest.mark.parametrize("repository", BAD_REPOSITORIES)
def test_api_scan_refuses_bad_repository_names(bob, registry_a, repository):
    body = {"registry_id": registry_a.pk, "repository": repository, "tag": "v1"}
    with nothing_changes():
        answer = api_for(bob).post("/api/scan", body, format="json")
    assert_readable_4xx(answer, 400, "repository")


@pytest.mark.parametrize("tag", BAD_TAGS)
def test_api_scan_refuses_bad_tag_names(bob, registry_a, tag):
    body = {"registry_id": registry_a.pk, "repository": "app", "tag": tag}
    with nothing_changes():
        answer = api_for(bob).post("/api/scan", body, format="json")
    assert_readable_4xx(answer, 400, "tag")


@pytest.mark.parametrize("repository", ["../etc", "App", "a" * 256])
def test_api_reads_refuse_bad_repository_names(carol, registry_a, repository):
    client = api_for(carol)
    query = {"registry": registry_a.pk, "repository": repository}
    assert_readable_4xx(client.get("/api/v1/tags/", query), 400, "repository")
    legacy = {"registry_id": registry_a.pk, "repository": repository, "tag": "v1"}
    assert_readable_4xx(client.get("/api/scan-results", legacy), 400, "repository")


@pytest.mark.parametrize("repository", ["../x", "%2e%2e/x", "X"])
def test_api_image_delete_refuses_bad_repository_names(
    registry, bob, registry_a, images, repository
):
    digest = tag_of(registry_a, images["registry-a"]).manifest.digest
    url = f"/api/v1/images/{digest}/?registry={registry_a.pk}&repository={repository}"
    with nothing_changes((registry, images["registry-a"])):
        answer = api_for(bob).delete(url)
    assert_readable_4xx(answer, 400, "repository")


@pytest.mark.parametrize("digest", ["sha256:..", "..", "sha256:%2e%2e", "SHA256:abc", "latest"])
def test_api_image_delete_refuses_bad_digests(registry, bob, registry_a, images, digest):
    url = f"/api/v1/images/{digest}/?registry={registry_a.pk}&repository={images['registry-a']}"
    with nothing_changes((registry, images["registry-a"])):
        answer = api_for(bob).delete(url)
    assert 400 <= answer.status_code < 500
    assert "detail" in answer.json()


@pytest.mark.parametrize(
    "repository_list", ["app\n../../etc", "App", "ok\nbad name", "a" * 256, "x/%2e%2e/y"]
)
def test_api_registry_settings_refuse_bad_repository_lists(alice, registry_a, repository_list):
    body = {"catalog_mode": "list", "repository_list": repository_list}
    with nothing_changes():
        answer = api_for(alice).patch(f"/api/v1/registries/{registry_a.pk}/", body, format="json")
    assert_readable_4xx(answer, 400, "repository_list")


def test_admin_registry_form_refuses_bad_repository_lists(registry_a):
    from registries.forms import RegistryForm

    data = {**model_to_dict(registry_a), "catalog_mode": "list", "repository_list": "ok\n../x"}
    form = RegistryForm(data, instance=registry_a)

    assert not form.is_valid()
    assert "../x" in str(form.errors["repository_list"])


# Over-long fields


@pytest.mark.parametrize(
    ("path", "body", "word"),
    [
        ("/api/v1/registries/{a}/", {"name": "n" * 101}, "name"),
        ("/api/v1/registries/{a}/", {"url": "http://x/" + "a" * 3000}, "url"),
        ("/api/v1/registries/{a}/", {"username": "u" * 5000}, "username"),
        ("/api/v1/registries/{a}/members/", {"username": "u" * 151, "role": "viewer"}, "username"),
    ],
)
def test_api_refuses_over_long_fields(alice, registry_a, path, body, word):
    method = "post" if path.endswith("members/") else "patch"
    with nothing_changes():
        answer = getattr(api_for(alice), method)(path.format(a=registry_a.pk), body, format="json")
    assert_readable_4xx(answer, 400, word)


def test_ui_token_form_refuses_an_over_long_name(client_for, carol):
    client = client_for("carol")
    with nothing_changes():
        answer = client.post("/accounts/tokens/", {"name": "t" * 101, "expires_days": "30"})
    assert answer.status_code in (200, 400)
    assert "at most 100 characters" in answer.content.decode()


# Cleanup rules


BAD_RULES = [
    ({"syntax": "regex", "tag_pattern": "("}, "not a valid regular expression"),
    ({"syntax": "regex", "repository_pattern": "[a-"}, "not a valid regular expression"),
    ({"syntax": "regex", "tag_pattern": "*"}, "not a valid regular expression"),
    ({"syntax": "glob", "tag_pattern": "   "}, "blank"),
    ({"syntax": "glob", "tag_pattern": "x" * 301}, "300"),
    ({"syntax": "shell", "tag_pattern": "*"}, "syntax"),
    ({"keep_newest": -1}, "keep_newest"),
    ({"older_than_days": "soon"}, "older_than_days"),
]


@pytest.mark.parametrize(("rules", "message"), BAD_RULES)
def test_api_cleanup_refuses_bad_rules(registry, alice, registry_a, images, rules, message):
    body = {"registry": registry_a.pk, "dry_run": False, **rules}
    with nothing_changes((registry, images["registry-a"])):
        answer = api_for(alice).post("/api/v1/cleanup/", body, format="json")
    assert_readable_4xx(answer, 400, message)


@pytest.mark.parametrize(("rules", "message"), BAD_RULES)
def test_ui_cleanup_refuses_bad_rules(
    registry, client_for, alice, registry_a, images, rules, message
):
    form = {"syntax": "glob", "repository_pattern": "*", "tag_pattern": "*", "protected": ""}
    client = client_for("alice")
    with nothing_changes((registry, images["registry-a"])):
        preview = client.post(reverse("cleanup", args=[registry_a.pk]), {**form, **rules})
        run = client.post(
            reverse("cleanup-run", args=[registry_a.pk]), {**form, **rules, "fingerprint": "x"}
        )
    for answer in (preview, run):
        assert answer.status_code == 200  # the form again, with its error shown
        [error, *_] = [text for errors in answer.context["form"].errors.values() for text in errors]
        assert escape(error) in answer.content.decode()


# Unknown, non-numeric and cross-registry ids


@pytest.mark.parametrize("registry_id", ["abc", "0", "-1", "99999999", "1.5", "1e3", "%2e%2e"])
def test_api_unknown_registry_ids(root, registry_a, registry_id):
    client = api_for(root)
    with nothing_changes():
        answers = [
            client.get(f"/api/v1/registries/{registry_id}/"),
            client.post(f"/api/v1/registries/{registry_id}/sync/"),
            client.post("/api/v1/cleanup/", {"registry": registry_id}, format="json"),
            client.post(
                "/api/scan",
                {"registry_id": registry_id, "repository": "app", "tag": "v1"},
                format="json",
            ),
        ]
    for answer in answers:
        assert answer.status_code in (400, 404), (answer.request, answer.content)
        assert answer.json().keys() - {"detail"} <= {"registry", "registry_id"}


@pytest.mark.parametrize("registry_id", ["99999999", "0"])
def test_ui_unknown_registry_ids(client_for, root, registry_id):
    client = client_for("root")
    with nothing_changes():
        answers = [
            client.get(f"/registries/{registry_id}/"),
            client.post(f"/registries/{registry_id}/sync/"),
            client.get(f"/registries/{registry_id}/cleanup/"),
        ]
    assert [answer.status_code for answer in answers] == [404, 404, 404]


def test_ui_non_numeric_registry_ids_are_not_found(client_for, root):
    for path in ["/registries/abc/", "/registries/abc/sync/", "/registries/%2e%2e/"]:
        assert client_for("root").get(path).status_code == 404


def test_cross_registry_tag_ids_are_refused(registry, images, registry_a, registry_b, alice, bob):
    """alice and bob run A; a tag of B used with A's ids is unknown to them, whatever the route."""
    b_repo = images["registry-b"]
    b_tag = tag_of(registry_b, b_repo)
    with nothing_changes((registry, b_repo)):
        answers = [
            api_for(bob).delete(f"/api/v1/tags/{b_tag.pk}/"),
            api_for(bob).get(f"/api/v1/tags/{b_tag.pk}/"),
            api_for(bob).delete(
                f"/api/v1/images/{b_tag.manifest.digest}/?registry={registry_a.pk}"
                f"&repository={b_repo}"
            ),
            api_for(bob).post(
                "/api/scan",
                {"registry_id": registry_a.pk, "repository": b_repo, "tag": "v1"},
                format="json",
            ),
            api_for(alice).get("/api/v1/tags/", {"registry": registry_a.pk, "repository": b_repo}),
        ]
        ui = Client()
        ui.force_login(bob)
        ui_answers = [
            ui.post(reverse("tag-delete", args=[registry_a.pk, b_repo, "v1"])),
            ui.get(reverse("image-digest", args=[registry_a.pk, b_repo, b_tag.manifest.digest])),
            ui.post(
                reverse("image-scan-start", args=[registry_a.pk, b_repo, b_tag.manifest.digest])
            ),
        ]
    assert [answer.status_code for answer in answers][:2] == [404, 404]
    assert all(answer.status_code in (400, 404) for answer in answers), answers
    assert all(answer.status_code == 404 for answer in ui_answers), ui_answers


def test_cross_registry_member_ids_are_refused(alice, mallory, registry_a, registry_b):
    members_of_a = f"/api/v1/registries/{registry_a.pk}/members/{mallory.pk}/"
    with nothing_changes():
        changed = api_for(alice).patch(members_of_a, {"role": "admin"}, format="json")
        removed = api_for(alice).delete(members_of_a)
        foreign = api_for(alice).delete(f"/api/v1/registries/{registry_b.pk}/members/{mallory.pk}/")
    assert [changed.status_code, removed.status_code, foreign.status_code] == [404, 404, 404]


def test_cross_registry_job_ids_are_refused(client_for, mallory, registry_a):
    job = Job.objects.create(kind=Job.Kind.SYNC, registry=registry_a, target="registry-a")
    assert client_for("mallory").get(reverse("job", args=[job.pk])).status_code == 404
    assert api_for(mallory).get(f"/api/v1/jobs/{job.pk}/").status_code == 404


# Forged POSTs: a signed-in browser without the CSRF token


def forged_client(user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def test_forged_ui_posts_are_refused(registry, images, registry_a, alice, carol):
    repository = images["registry-a"]
    digest = tag_of(registry_a, repository).manifest.digest
    token, _ = __import__("accounts.tokens", fromlist=["issue"]).issue(carol, name="mine")
    cleanup_rules = {"syntax": "glob", "repository_pattern": "*", "tag_pattern": "*"}
    forged = [
        (alice, reverse("tag-delete", args=[registry_a.pk, repository, "v1"]), {}),
        (alice, reverse("registry-sync", args=[registry_a.pk]), {}),
        (alice, reverse("cleanup-run", args=[registry_a.pk]), cleanup_rules),
        (alice, reverse("image-scan-start", args=[registry_a.pk, repository, digest]), {}),
        (carol, "/accounts/tokens/", {"name": "forged"}),
        (carol, f"/accounts/tokens/{token.pk}/revoke/", {}),
        (alice, "/accounts/logout/", {}),
    ]
    with nothing_changes((registry, repository)):
        for user, url, data in forged:
            answer = forged_client(user).post(url, data)
            assert answer.status_code == 403, url
            assert "CSRF" in answer.content.decode(), url


def test_forged_api_posts_with_a_session_are_refused(registry, images, registry_a, alice):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(alice)
    b_tag = tag_of(registry_a, images["registry-a"])
    with nothing_changes((registry, images["registry-a"])):
        answers = [
            client.delete(f"/api/v1/tags/{b_tag.pk}/"),
            client.patch(f"/api/v1/registries/{registry_a.pk}/", {"name": "x"}, format="json"),
            client.post("/api/v1/cleanup/", {"registry": registry_a.pk, "dry_run": False}),
        ]
    for answer in answers:
        assert answer.status_code == 403 and "CSRF" in answer.json()["detail"]


# Path traversal in page URLs, and the last guard before a registry request


@pytest.mark.parametrize(
    "tail",
    [
        "repositories/../../admin/",
        "repositories/%2e%2e/%2e%2e/admin/",
        "repositories/app/-/tags/..%2f..%2fv2/",
        "repositories/app/-/digests/sha256:..%2f..%2f/",
        "repositories/app/-/tags/x/delete/",
    ],
)
def test_traversal_in_page_urls_is_not_found(client_for, bob, registry_a, tail):
    client = client_for("bob")
    with nothing_changes():
        read = client.get(f"/registries/{registry_a.pk}/{tail}")
        write = client.post(f"/registries/{registry_a.pk}/{tail}")
    assert read.status_code == 404 and write.status_code in (404, 405)


@pytest.mark.parametrize(
    ("repository", "reference"),
    [("../v2", "latest"), ("app", "../../_catalog"), ("app/../x", "sha256:0"), ("App", "v1")],
)
def test_the_client_never_sends_a_name_outside_the_grammar(registry, repository, reference):
    from registries.client import InvalidName, RegistryClient

    row = Registry(name="direct", url=registry.url)
    with RegistryClient(row) as client, pytest.raises(InvalidName):
        client.manifest(repository, reference)


@pytest.mark.parametrize(
    "target",
    [
        {"repository": "../etc", "tag": "v1"},
        {"repository": "App", "tag": "v1"},
        {"repository": "app", "tag": "../v1"},
        {"repository": "app", "tag": 7},
        {"repository": "app", "digest": "sha256:../../x"},
    ],
)
def test_notifications_with_names_outside_the_grammar_are_refused(client, registry_a, target):
    secret = registry_a.new_notification_secret()
    registry_a.save()
    envelope = {
        "events": [{"action": "delete" if "digest" in target else "push", "target": target}]
    }
    with nothing_changes():
        answer = client.post(
            reverse("registry-events", args=[registry_a.pk]),
            json.dumps(envelope),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {secret}",
        )
    assert_readable_4xx(answer, 400, "outside the registry grammar")
