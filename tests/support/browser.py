"""Browser fixtures: Playwright's pytest plugin driving Debian's /usr/bin/chromium.

One browser for the session (pytest-playwright's `browser`), a fresh context and `page` per
test. Playwright's sync API keeps an event loop on the main thread, which makes Django refuse
database access from "async" code; DJANGO_ALLOW_ASYNC_UNSAFE is set before any test runs.

    login(page, live_server, user)       signed in through a session cookie (fast)
    screenshots(page, name)              PNGs under test-artifacts/: light and dark,
                                         desktop and narrow widths
"""

import os
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
DESKTOP = {"width": 1366, "height": 900}
NARROW = {"width": 390, "height": 844}


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "headless": True,
        "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": DESKTOP, "locale": "en-GB"}


def login(page, live_server, user):
    """Sign the page's context in as `user` without going through the form."""
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    page.context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": cookie.value, "url": live_server.url}]
    )
    return page


def set_theme(page, theme):
    page.evaluate("theme => localStorage.setItem('regui-theme', theme)", theme)
    page.reload()
    page.wait_for_load_state("networkidle")


def screenshots(page, name):
    """Save the current page in both themes at desktop and narrow widths; restore after."""
    ARTIFACTS.mkdir(exist_ok=True)
    before = page.evaluate("() => localStorage.getItem('regui-theme')")
    for theme in ("light", "dark"):
        set_theme(page, theme)
        for label, viewport in (("desktop", DESKTOP), ("narrow", NARROW)):
            page.set_viewport_size(viewport)
            page.evaluate("() => window.scrollTo(0, 0)")  # or the sticky navbar lands mid-page
            page.wait_for_timeout(150)  # charts and layout settle after a resize
            page.screenshot(path=str(ARTIFACTS / f"{name}-{theme}-{label}.png"), full_page=True)
    page.set_viewport_size(DESKTOP)
    set_theme(page, before or "light")
