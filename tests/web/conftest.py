"""Web fixtures: a live server with demo-like data, and one headless Chromium per session.

`live` is the server ({url, coord_token, alice_token, model, model_id, checkpoints,
incident_id}); `browser` is Debian's chromium driven by Playwright (never downloaded);
`page_` is a fresh page per test that fails the test on any uncaught page error;
`axe` checks a page with axe-core; `shot` saves a screenshot under tests/web/artifacts/;
`accounts` gives coord and alice console passwords (sign in with tests/web/browsing.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.web.browsing import PASSWORDS

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM = os.environ.get("STAGEGATE_CHROMIUM", "/usr/bin/chromium")
os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")


@pytest.fixture(scope="session")
def live(tmp_path_factory):
    data = tmp_path_factory.mktemp("live")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "STAGEGATE_DATA_DIR": str(data)}
    env.pop("STAGEGATE_DATABASE_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "tests.web.server", str(data)], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        if not line:
            pytest.fail(f"the live server did not start (exit {proc.wait(10)})")
        info = json.loads(line)
        info["url"] = f"http://127.0.0.1:{info['port']}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(info["url"] + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail("the live server did not answer /healthz")
            time.sleep(0.1)
        yield info
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"chromium not found at {CHROMIUM} (CI installs it with apt-get)")
        pytest.skip(f"chromium not found at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox", "--disable-gpu"])
        yield browser
        browser.close()


@pytest.fixture
def page_(browser, live):
    """A fresh context per test; page errors and dialogs are collected for assertions."""
    context = browser.new_context(base_url=live["url"], viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.errors, page.dialogs = [], []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))

    def on_dialog(dialog):
        page.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    yield page
    context.close()


@pytest.fixture(scope="session")
def axe():
    """axe-core (shipped inside axe-playwright-python) run in the page."""
    from axe_playwright_python.sync_playwright import Axe

    checker = Axe()

    def serious(page) -> list[dict]:
        results = checker.run(page)
        return [v for v in results.response["violations"]
                if v.get("impact") in ("serious", "critical")]

    return serious


@pytest.fixture(scope="session")
def shot():
    ARTIFACTS.mkdir(exist_ok=True)

    def save(page, name: str) -> Path:
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return save


@pytest.fixture(scope="module")
def accounts(live, tmp_path_factory):
    """Passwords for the live server's users, set the way an operator does: the CLI."""
    # The `live` fixture's data folder (pytest names it live0, live1, ...).
    data = {p.resolve() for p in tmp_path_factory.getbasetemp().glob("live[0-9]*")
            if (p / "stagegate.db").exists()}
    assert len(data) == 1, data
    env = {**os.environ, "PYTHONPATH": str(ROOT), "STAGEGATE_DATA_DIR": str(data.pop())}
    env.pop("STAGEGATE_DATABASE_URL", None)
    for name, password in PASSWORDS.items():
        done = subprocess.run([sys.executable, "-c", "from app.cli import main; main()",
                               "user", "set-password", name, "--password-stdin"],
                              input=password + "\n", env=env, capture_output=True, text=True,
                              timeout=60, check=False)
        assert done.returncode == 0, done.stderr
    return PASSWORDS
