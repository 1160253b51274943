"""Browser tests of the console: Playwright (Python) driving Debian's Chromium.

infra/web-e2e.sh starts the private stack and sets TIERDESK_CONSOLE_URL and
TIERDESK_SCREENSHOTS. Never `playwright install`: the browser is /usr/bin/chromium.
"""

import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request

import pytest
from playwright.sync_api import Page, sync_playwright

BASE = os.environ.get("TIERDESK_CONSOLE_URL", "http://127.0.0.1:3000")
SHOTS = os.environ.get("TIERDESK_SCREENSHOTS", "target/screenshots")
CHROMIUM = os.environ.get("TIERDESK_CHROMIUM", "/usr/bin/chromium")
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--headless",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield b
        b.close()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def dev_token(role: str, partner: str | None = None, user: str | None = None) -> str:
    """The token the dev sign-in hands the app (read from its redirect)."""
    q = {"role": role}
    if partner:
        q["partner"] = partner
    if user:
        q["user"] = user
    opener = urllib.request.build_opener(NoRedirect)
    try:
        opener.open(f"{BASE}/dev/sign-in?{urllib.parse.urlencode(q)}")
    except urllib.error.HTTPError as e:
        location = e.headers["Location"]
        fragment = urllib.parse.parse_qs(urllib.parse.urlparse(location).fragment)
        return fragment["token"][0]
    raise AssertionError("dev sign-in did not redirect")


def api(method: str, path: str, token: str | None = None, body=None):
    """The API directly, to compare what a screen shows with what the API says."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"{BASE}{path}", data=data, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req) as r:
            raw = r.read()
            return r.status, (json.loads(raw) if raw and r.headers.get_content_type() == "application/json" else raw)
    except urllib.error.HTTPError as e:
        raw = e.read()
        return e.code, (json.loads(raw) if raw else None)


_pages: list[Page] = []


@pytest.fixture
def sign_in(browser):
    """sign_in(role, partner=None, user=None, next=None) -> a signed-in Page at 1280×800."""
    contexts = []

    def open_as(role: str, partner: str | None = None, user: str | None = None, next: str | None = None) -> Page:
        ctx = browser.new_context(viewport=DESKTOP, accept_downloads=True)
        ctx.set_default_timeout(10_000)
        contexts.append(ctx)
        page = ctx.new_page()
        page.on("pageerror", lambda e: page._errors.append(str(e)))  # type: ignore[attr-defined]
        # The gateway serves the console with the deployed CSP (no inline script or
        # style); anything the browser refuses under it fails the test.
        page.on(
            "console",
            lambda m: "Content Security Policy" in m.text and page._errors.append(m.text),  # type: ignore[attr-defined]
        )
        page._errors = []  # type: ignore[attr-defined]
        q = {"role": role}
        for k, v in (("partner", partner), ("user", user), ("next", next)):
            if v:
                q[k] = v
        page.goto(f"{BASE}/dev/sign-in?{urllib.parse.urlencode(q)}")
        page.get_by_test_id("signed-in-role").wait_for()
        _pages.append(page)
        return page

    yield open_as
    for page in list(_pages):
        errors = getattr(page, "_errors", [])
        assert not errors, f"uncaught errors in the page: {errors}"
    _pages.clear()
    for ctx in contexts:
        ctx.close()


def shoot(page: Page, name: str) -> None:
    """A screenshot of the screen at 1280×800 and at 390 px wide (full page)."""
    os.makedirs(SHOTS, exist_ok=True)
    safe = re.sub(r"[^a-z0-9_-]+", "-", name.lower())
    page.wait_for_load_state("networkidle")
    # from the top: a full-page shot of a scrolled page draws the sticky header mid-page
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=os.path.join(SHOTS, f"{safe}-1280.png"))
    page.set_viewport_size(PHONE)
    page.wait_for_timeout(150)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=os.path.join(SHOTS, f"{safe}-390.png"), full_page=True)
    page.set_viewport_size(DESKTOP)
    page.wait_for_timeout(100)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        os.makedirs(SHOTS, exist_ok=True)
        for i, page in enumerate(_pages):
            try:
                page.screenshot(path=os.path.join(SHOTS, f"FAILED-{item.name}-{i}.png"), full_page=True)
            except Exception:  # the page may be gone; the failure itself is what matters
                pass
