"""The whole demo, evaluated, walked in real Chromium: every public page reachable from `/`
(model cards with their charts, plans, agreements, incidents, policies, labs) passes
axe-core with no violation at all, and no script from stored text runs anywhere.

The demo is built as tests/web/test_demo_crawl.py builds it (the 2019 story, the tiny
family trained with the test recipe, the fictional lab's partners-only checkpoint, every
queued evaluation run by the worker), on SQLite, served by a real uvicorn. Before the
walk, stored text carrying script payloads goes in through the API as a lab member and a
coordinator would write it: the demo model's card prose, an incident on it (confirmed, so
public), its plan's summary, a public agreement's terms, a lab's name and address. Every
page is then checked for a `window.__xss` canary, a dialog, a page error, a console error
(a CSP refusal included) and any markup the payloads could have become.

Charts are drawn when results land (app/evals/charts.py): the walk runs with drawing
switched off in the server, so every model card's charts must come from the store.
"""

from __future__ import annotations

import time
from collections import deque
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlmodel import select

from app.auth.principal import SYSTEM
from app.auth.service import create_token, create_user
from app.checkpoints.demo import DEMO_MODEL, load_demo_family
from app.db import session_scope
from app.demo import load_demo
from app.evals import charts
from app.evals.demo_family import build_demo_family
from app.evals.tables import ModelChart
from app.incidents.demo import load_hidden_checkpoint
from app.models.service import find_model
from tests.evals.test_demo_family import TINY
from tests.evals.workers import work
from tests.web.test_browser import XSS, XSS_URL
from tests.web.test_demo_crawl import SKIP

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

MAX_PAGES = 200  # a walk longer than this is one that does not end
WALK_BUDGET_S = 90
# What a page's own markup may hold: scripts only from /static/, no event handler
# attributes, no javascript:/data:/vbscript: links or sources, no frames, no <style>.
FOUND = """() => ({
    scripts: [...document.scripts].filter(s => !s.src.includes('/static/')).length,
    handlers: [...document.querySelectorAll('*')].filter(
        el => [...el.attributes].some(a => a.name.toLowerCase().startsWith('on'))).length,
    badLinks: [...document.querySelectorAll('[href],[src],[action],[formaction]')].filter(
        el => /^\\s*(javascript|data|vbscript):/i.test(el.getAttribute('href')
            || el.getAttribute('src') || el.getAttribute('action')
            || el.getAttribute('formaction') || '')).length,
    frames: document.querySelectorAll('iframe, object, embed, frame').length,
    styles: document.querySelectorAll('style').length })"""
CLEAN = {"scripts": 0, "handlers": 0, "badLinks": 0, "frames": 0, "styles": 0}
LINKS = "() => [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href'))"


@pytest.fixture(scope="module")
def family(tmp_path_factory):
    """The crawl's tiny family: reused when test_demo_crawl.py built it earlier in this
    session (a complete build is marked, and build_demo_family returns it at once)."""
    for root in sorted(tmp_path_factory.getbasetemp().glob("family*")):
        if all((root / "demo-family" / name / ".recipe").exists() for name in TINY["sizes"]):
            return build_demo_family(root, progress=False, recipe_overrides=TINY)
    return build_demo_family(tmp_path_factory.mktemp("family"), progress=False,
                             recipe_overrides=TINY)


@pytest.fixture
def evaluated_demo(settings, family):
    """The full demo (with the partners-only checkpoint), every evaluation finished, and
    two API users: a coordinator and an admin of the demo's fictional lab."""
    for _ in load_demo(with_models=False):
        pass
    for _ in load_demo_family(family):
        pass
    with session_scope() as s:
        load_hidden_checkpoint(s, next(iter(family.values())))
        coord = create_user(s, SYSTEM, "coord", coordinator=True)
        alice = create_user(s, SYSTEM, "alice", lab_slug="tinyscale", role="lab_admin")
        tokens = {"coord": create_token(s, SYSTEM, coord)[1],
                  "alice": create_token(s, SYSTEM, alice)[1]}
    assert work(settings) > 0  # every queued suite, the transfer matrix included
    return tokens


def _client(base: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=base, timeout=30, headers={"Authorization": f"Bearer {token}"})


def _store_payloads(base: str, tokens: dict) -> dict:
    """Script payloads into the stored text public pages show; returns where they went."""
    payload = "\n\n".join(XSS)
    one = XSS[1]
    coord, alice = _client(base, tokens["coord"]), _client(base, tokens["alice"])
    with coord, alice:
        model = next(m for m in alice.get("/api/v1/models", params={"lab": "tinyscale"})
                     .json()["items"] if f"{m['lab']}/{m['slug']}" == DEMO_MODEL)
        r = alice.patch(f"/api/v1/models/{model['id']}", json={
            "version": model["version"],
            "card": {k: payload for k in ("model_details", "intended_use", "evaluation_data",
                                          "caveats_and_recommendations")}})
        assert r.status_code == 200, r.text
        r = coord.post("/api/v1/labs", json={"slug": "xss-lab", "name": one, "url": XSS_URL})
        assert r.status_code == 201, r.text
        r = alice.post("/api/v1/incidents", json={
            "title": one, "summary": payload, "occurred": "2026-03-01",
            "harm_types": ["other"], "severity": "low", "labs": ["tinyscale", "xss-lab"],
            "models": [DEMO_MODEL], "reports": [{"text": payload, "url": XSS_URL}]})
        assert r.status_code == 201, r.text
        incident = r.json()
        for to in ("triaged", "confirmed"):
            r = coord.post(f"/api/v1/incidents/{incident['id']}/transitions",
                           json={"to": to, "version": incident["version"]})
            assert r.status_code == 200, r.text
            incident = r.json()
        plan = alice.get("/api/v1/plans", params={"model": DEMO_MODEL}).json()["items"][0]
        r = alice.patch(f"/api/v1/plans/{plan['id']}", json={
            "version": plan["version"], "summary": payload})
        assert r.status_code == 200, r.text
        now = datetime.now(UTC)
        r = alice.post("/api/v1/agreements", json={
            "title": one, "kind": "research_access", "discloser": "tinyscale",
            "parties": ["openai"], "scope": {"models": [DEMO_MODEL]}, "terms": payload,
            "starts_at": (now - timedelta(days=2)).isoformat(),
            "ends_at": (now + timedelta(days=30)).isoformat(),
            "confidential_until": (now - timedelta(days=1)).isoformat()})
        assert r.status_code == 201, r.text
        agreement = r.json()
        r = alice.post(f"/api/v1/agreements/{agreement['id']}/transitions",
                       json={"to": "proposed", "version": agreement["version"]})
        assert r.status_code == 200, r.text
    return {"model": f"/models/{DEMO_MODEL}", "incident": f"/incidents/{incident['id']}",
            "plan": f"/plans/{plan['id']}", "agreement": f"/agreements/{agreement['id']}",
            "lab": "/labs/xss-lab"}


def _stored_public_charts() -> int:
    with session_scope(write=False) as s:
        model = find_model(s, SYSTEM, DEMO_MODEL)
        row = s.exec(select(ModelChart).where(ModelChart.model_id == model.id,
                                              ModelChart.audience == "public")).first()
        return len(row.charts) if row else 0


def test_the_evaluated_demo_walks_clean(evaluated_demo, live_server, browser, monkeypatch):
    from axe_playwright_python.sync_playwright import Axe

    # The evaluations stored the demo card's charts before any page was viewed.
    assert _stored_public_charts() >= 5
    payloads = _store_payloads(live_server, evaluated_demo)

    def refuse(*args):
        raise AssertionError("a chart was drawn on view")

    charts._CACHE.clear()
    monkeypatch.setattr(charts, "_render", refuse)  # the server runs in this process

    checker = Axe()
    context = browser.new_context(base_url=live_server, viewport={"width": 1200, "height": 900})
    page = context.new_page()
    problems: list[tuple[str, str]] = []
    dialogs: list[str] = []
    current = {"url": "/"}
    page.on("pageerror", lambda exc: problems.append((current["url"], str(exc))))

    def on_console(msg):
        if msg.type == "error":
            problems.append((current["url"], msg.text))

    def on_dialog(dialog):
        dialogs.append(f"{current['url']}: {dialog.message}")
        dialog.dismiss()

    page.on("console", on_console)
    page.on("dialog", on_dialog)
    started = time.perf_counter()
    seen, queue, walked, accessibility = {"/"}, deque(["/"]), [], []
    try:
        while queue:
            url = current["url"] = queue.popleft()
            response = page.goto(url)
            assert response.status == 200, (url, response.status)
            if "html" not in response.headers.get("content-type", ""):
                continue
            page.wait_for_load_state("load")
            walked.append(url)
            assert page.evaluate("window.__xss") is None, url
            assert page.evaluate(FOUND) == CLEAN, (url, page.evaluate(FOUND))
            if url in payloads.values():  # the payloads are there, as inert text
                assert "window.__xss" in page.inner_text("body"), url
            if url == payloads["model"]:  # the demo card's charts, as stored
                assert page.locator("#charts figure.chart svg[role=img]").count() >= 5
            accessibility += [(url, v) for v in checker.run(page).response["violations"]]
            for href in page.evaluate(LINKS):
                href = _walkable(href, seen)
                if href:
                    seen.add(href)
                    queue.append(href)
            assert len(walked) < MAX_PAGES, "the walk does not end"
    finally:
        context.close()
    took = time.perf_counter() - started
    assert problems == [] and dialogs == [], (problems, dialogs)
    assert accessibility == [], [(url, v["id"], v["impact"], v["help"],
                                  [n["target"] for n in v["nodes"]][:3])
                                 for url, v in accessibility]
    # The walk reached every kind of public page, the payload-carrying ones included.
    for path in (*payloads.values(), "/", "/models", "/incidents", "/policies",
                 "/policies/gpt2-2019", "/models/openai/gpt-2", "/models/fernhill/fern-lm",
                 "/labs/tinyscale", "/incidents/report"):
        assert path in walked, (path, sorted(walked))
    assert sum(u.startswith("/plans/") for u in walked) >= 2
    assert sum(u.startswith("/incidents?") for u in walked) >= 5  # facets, one each
    assert took < WALK_BUDGET_S, f"the walk took {took:.0f} s over {len(walked)} pages"


def _walkable(href: str, seen: set) -> str | None:
    """A same-site page link not walked yet, or None. Every path is walked; of the links
    that only filter a list (`/incidents?severity=low&year=2019`, ...) one per parameter,
    alone: the facets combine into hundreds of pages that all render one template."""
    href = href.split("#", 1)[0]
    if not href.startswith("/") or href.startswith("//") or SKIP.search(href) or href in seen:
        return None
    path, _, query = href.partition("?")
    if query:
        names = {part.partition("=")[0] for part in query.split("&")}
        if len(names) != 1 or any(s.partition("?")[0] == path
                                  and s.partition("?")[2].partition("=")[0] in names
                                  for s in seen):
            return None
    return href
