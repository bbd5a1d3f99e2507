"""In Chromium: a user makes a token on "My API tokens", and the API docs page renders from
local files only, under the site's CSP."""

from urllib.parse import urlsplit

import pytest

from tests.support.browser import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_token_page_then_docs_page(page, live_server, alice):
    problems, hosts = [], set()
    page.on(
        "console",
        lambda message: (
            message.type == "error"
            and problems.append(f"{message.text} {message.location.get('url')}")
        ),
    )
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("request", lambda request: hosts.add(urlsplit(request.url).netloc))
    page.on(
        "response",
        lambda response: (
            response.status >= 400 and problems.append(f"{response.status} {response.url}")
        ),
    )
    login(page, live_server, alice)

    page.goto(f"{live_server.url}/accounts/tokens/")
    page.fill("input[name=name]", "laptop")
    page.check("input[name=read_only]")
    page.get_by_role("button", name="Create token").click()
    token = page.input_value("#new-token input")
    assert token.startswith("regui_")
    answer = page.request.get(
        f"{live_server.url}/api/v1/me/", headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status == 200 and answer.json()["token"]["read_only"] is True

    page.goto(f"{live_server.url}/api/docs/")
    page.wait_for_selector(".opblock", timeout=15000)

    assert page.locator(".opblock").count() > 20
    assert page.get_by_text("/api/v1/cleanup/").count() >= 1
    assert hosts == {urlsplit(live_server.url).netloc}
    assert not problems, problems
