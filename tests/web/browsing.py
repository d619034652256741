"""Helpers for the Chromium tests: API clients as the live server's users, a page with
JavaScript off, and signing in to the console the way a person does."""

from __future__ import annotations

from contextlib import contextmanager

import httpx

# Set by the `accounts` fixture (tests/web/conftest.py) with `stagegate user set-password`.
PASSWORDS = {"coord": "coordinator passphrase 1", "alice": "alice lab passphrase 1"}


def api(live, who: str) -> httpx.Client:
    """The API as `who` ("coord" or "alice"), with the token the live server made."""
    return httpx.Client(base_url=live["url"], timeout=30,
                        headers={"Authorization": f"Bearer {live[f'{who}_token']}"})


@contextmanager
def page_without_js(browser, live):
    """A page in its own context with JavaScript off (forms must work without it)."""
    context = browser.new_context(base_url=live["url"], java_script_enabled=False)
    try:
        yield context.new_page()
    finally:
        context.close()


def submit_sign_in(page, name: str) -> None:
    """Fill and send the sign-in form the page shows now."""
    page.fill("#username", name)
    page.fill("#password", PASSWORDS[name])
    page.click("button:has-text('Sign in')")


def sign_in(page, name: str, next_: str = "") -> None:
    page.goto("/console/login" + (f"?next={next_}" if next_ else ""))
    submit_sign_in(page, name)
    assert f"Signed in as {name}" in page.locator(".console-nav").inner_text()
