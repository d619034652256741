"""The public site in real Chromium: browsing, live evaluation progress, accessibility,
small screens, the report form without JavaScript, and an XSS corpus stored via the API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.web.browsing import api, page_without_js
from tests.web.conftest import ARTIFACTS


def public_pages(live) -> list[str]:
    # Every plan the public may read (the demo also holds a hidden draft, so ids skip).
    plans = [f"/plans/{p['id']}" for p in httpx.get(f"{live['url']}/api/v1/plans",
                                                   timeout=10).json()["items"]]
    return ["/", "/models", f"/models/{live['model']}", "/models/openai/gpt-2", *plans,
            "/incidents", "/incidents?q=detector", f"/incidents/{live['incident_id']}",
            "/incidents/report", "/agreements/1", "/policies", "/policies/gpt2-2019",
            "/policies/pai-publication-norms", "/policies/capability-thresholds", "/labs/openai",
            "/labs/tinyscale", "/no-such-page"]


def test_browse_from_home_to_a_model_card_and_its_chart(page_, live, shot):
    page_.goto("/")
    shot(page_, "home")
    page_.get_by_role("link", name="Tiny GPT-2 family").first.click()
    page_.wait_for_url(f"**/models/{live['model']}")
    assert page_.get_by_role("heading", level=1).inner_text().startswith("Tiny GPT-2 family")
    chart = page_.locator("#charts figure.chart svg[role=img]").first
    chart.scroll_into_view_if_needed()
    assert chart.is_visible()
    box = chart.bounding_box()
    assert box["width"] > 200 and box["height"] > 100
    # The chart's data points are there for every checkpoint, drawn without any script.
    assert page_.locator("#charts figure").count() >= 5
    assert "tiny-124m" in page_.locator("#charts figcaption").first.inner_text()
    assert page_.locator("#transfer table.heat td.num").count() == 16
    assert page_.locator("#bias svg.cibar").count() >= 12
    assert page_.locator(".mark-measured").count() > 10
    shot(page_, "model-card")
    page_.locator("#charts").screenshot(path=str(ARTIFACTS / "model-card-charts.png"))
    page_.locator("#evaluations").screenshot(path=str(ARTIFACTS / "model-card-evaluations.png"))
    assert page_.errors == []


@pytest.mark.parametrize("width", [1200, 360])
def test_every_public_page_is_accessible_and_fits(browser, live, axe, shot, width):
    context = browser.new_context(base_url=live["url"], viewport={"width": width, "height": 800})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error"
            and "404" not in msg.text else None)
    try:
        for url in public_pages(live):
            response = page.goto(url)
            assert response.status == (404 if url == "/no-such-page" else 200), url
            csp = response.headers.get("content-security-policy", "")
            assert "script-src 'self'" in csp and "unsafe-inline" not in csp, url
            violations = axe(page)
            assert violations == [], (url, [(v["id"], v["help"]) for v in violations])
            if url == "/plans/1":  # a plan under gpt2-2019: its compliance, stage by stage
                assert page.locator("#compliance table.compliance").count() >= 4, url
            if url == "/policies/gpt2-2019":
                assert page.get_by_text("At least 60 days between two releases.").is_visible()
            overflow = page.evaluate("document.documentElement.scrollWidth")
            assert overflow <= width + 1, (url, overflow)
        if width == 360:
            page.goto(f"/models/{live['model']}")
            shot(page, "model-card-360")
        assert errors == []  # no CSP violations, no script errors
    finally:
        context.close()


def test_card_updates_while_an_evaluation_runs(page_, live):
    page_.goto(f"/models/{live['model']}")
    page_.evaluate("window.__loadedOnce = true")
    ckpt = live["checkpoints"]["tiny-124m"]
    before = page_.locator("tr[data-run]").count()
    with api(live, "alice") as alice:
        r = alice.post("/api/v1/evals/runs", json={"checkpoint_id": ckpt, "suite": "perplexity"})
    assert r.status_code in (200, 201), r.text
    run_id = r.json()["id"]
    row = page_.locator(f'tr[data-run="{run_id}"]')
    # The new run appears without a reload, then finishes; the page was never reloaded.
    row.wait_for(timeout=30_000)
    page_.wait_for_function(
        f"""() => {{ const r = document.querySelector('tr[data-run="{run_id}"] .run-status');
                     return r && r.textContent.includes('succeeded'); }}""", timeout=120_000)
    assert page_.evaluate("window.__loadedOnce") is True
    assert page_.locator("tr[data-run]").count() == before  # replaced the older perplexity run
    assert row.locator("progress").get_attribute("value") in ("1", "1.0")
    assert page_.errors == []


def test_report_form_works_without_javascript(browser, live):
    with page_without_js(browser, live) as page:
        page.goto("/incidents/report")
        page.fill("#title", "Chatbot wrote phishing mails")
        page.fill("#summary", "Seen *in the wild*.")
        page.check("input[value=phishing]")
        page.select_option("#severity", "high")
        page.fill("#occurred", "2026-02-01")
        page.fill("#models", "no-such-lab/no-model")
        page.click("button[type=submit]")
        # Refused (unknown model): the error names the field and nothing typed is lost.
        assert "models" in page.locator("#form-errors").inner_text()
        assert page.input_value("#title") == "Chatbot wrote phishing mails"
        assert page.input_value("#summary") == "Seen *in the wild*."
        assert page.is_checked("input[value=phishing]")
        page.fill("#models", live["model"])
        page.click("button[type=submit]")
        assert "waits for a coordinator" in page.locator(".notice").inner_text()
    with api(live, "coord") as coord:
        queue = coord.get("/api/v1/incidents?status=submitted").json()
    assert "Chatbot wrote phishing mails" in [h["incident"]["title"] for h in queue["items"]]


XSS = [
    "<script>window.__xss = 1</script>",
    "<img src=x onerror=\"window.__xss = 1\">",
    "<svg onload=\"window.__xss = 1\"><circle r=1></circle></svg>",
    "\"><script>window.__xss = 1</script>",
    "'><img src=x onerror=window.__xss=1>",
    "[click me](javascript:window.__xss=1)",
    "[click](JaVaScRiPt:window.__xss=1)",
    "[click](jav&#x09;ascript:window.__xss=1)",
    "<a href=\"javascript:window.__xss=1\">x</a>",
    "[data](data:text/html;base64,PHNjcmlwdD53aW5kb3cuX194c3M9MTwvc2NyaXB0Pg==)",
    "![img](javascript:window.__xss=1)",
    "<iframe src=\"javascript:window.__xss=1\"></iframe>",
    "<details open ontoggle=\"window.__xss=1\">",
    "{{ 7*7 }}<style>body{display:none}</style>",
]


# No whitespace (refused on input since app/urls.py): the attribute-breaking payload uses `/`.
XSS_URL = "https://example.org/\"><img/src/onerror=window.__xss=1><script>window.__xss=1</script>"


def _store_corpus(live) -> list[str]:
    """Every payload into every field a public page shows; returns the pages to check."""
    payload = "\n\n".join(XSS)
    one = XSS[1]
    coord, alice = api(live, "coord"), api(live, "alice")
    # javascript: URLs are refused on input; a URL that tries to break out of its
    # attribute is stored and must stay inert on every page.
    r = coord.post("/api/v1/labs", json={"slug": "xss-lab", "name": one,
                                         "url": "javascript:window.__xss=1"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "url", r.text
    r = coord.post("/api/v1/labs", json={"slug": "xss-lab", "name": one, "url": XSS_URL})
    assert r.status_code == 201, r.text
    r = coord.post("/api/v1/models", json={
        "lab": "tinyscale", "slug": "xss-model", "name": one, "licence": "other",
        "architecture": XSS[0][:100], "languages": [one],
        **{k: payload for k in ("model_details", "intended_use", "factors", "metrics",
                                "evaluation_data", "training_data", "quantitative_analyses",
                                "ethical_considerations", "caveats_and_recommendations")}})
    assert r.status_code == 201, r.text
    stage = {"name": one, "checkpoint_ref": XSS[0], "access_level": "public_weights",
             "rationale": payload, "risk_assessment": payload, "planned_date": "2027-01-01"}
    r = alice.post("/api/v1/plans", json={"model": "tinyscale/xss-model", "title": one,
                                          "summary": payload, "stages": [stage], "file": True})
    assert r.status_code == 201, r.text
    plan = r.json()
    r = alice.patch(f"/api/v1/plans/{plan['id']}", json={
        "version": plan["version"], "title": XSS[3], "summary": payload + "\nrevised"})
    assert r.status_code == 200, r.text
    r = alice.post("/api/v1/incidents", json={
        "title": one, "summary": payload, "occurred": "2026-03-01", "harm_types": ["other"],
        "severity": "low", "labs": ["tinyscale"], "models": ["tinyscale/xss-model"],
        "reports": [{"text": payload, "url": XSS_URL}]})
    assert r.status_code == 201, r.text
    incident = r.json()
    for to in ("triaged", "confirmed"):
        r = coord.post(f"/api/v1/incidents/{incident['id']}/transitions",
                       json={"to": to, "version": incident["version"]})
        assert r.status_code == 200, r.text
        incident = r.json()
    now = datetime.now(UTC)
    r = alice.post("/api/v1/agreements", json={
        "title": one, "kind": "research_access", "discloser": "tinyscale",
        "parties": ["openai"], "scope": {"models": ["tinyscale/xss-model"]}, "terms": payload,
        "starts_at": (now - timedelta(days=2)).isoformat(),
        "ends_at": (now + timedelta(days=30)).isoformat(),
        "confidential_until": (now - timedelta(days=1)).isoformat()})
    pages = ["/", "/models", "/models/tinyscale/xss-model", f"/plans/{plan['id']}",
             f"/plans/{plan['id']}?a=1&b=2", "/incidents", "/incidents?q=click",
             f"/incidents/{incident['id']}", "/labs/xss-lab", "/labs/tinyscale",
             "/feeds/incidents.atom", "/feeds/releases.atom"]
    assert r.status_code == 201, r.text
    agreement = r.json()
    r = alice.post(f"/api/v1/agreements/{agreement['id']}/transitions",
                   json={"to": "proposed", "version": agreement["version"]})
    assert r.status_code == 200, r.text
    pages.append(f"/agreements/{agreement['id']}")
    return pages


def test_xss_corpus_runs_no_script_on_any_public_page(page_, live):
    pages = _store_corpus(live)
    assert len(pages) >= 12
    for url in pages:
        response = page_.goto(url)
        assert response.status == 200, url
        page_.wait_for_load_state("load")
        assert page_.evaluate("window.__xss") is None, url
        if url.endswith(".atom"):
            continue
        # Not only did nothing run (the CSP would stop inline script anyway): nothing of the
        # payload became markup either.
        found = page_.evaluate("""() => ({
            scripts: [...document.scripts].filter(s => !s.src.includes('/static/')).length,
            handlers: [...document.querySelectorAll('*')].filter(
                el => [...el.attributes].some(a => a.name.startsWith('on'))).length,
            badLinks: [...document.querySelectorAll('[href],[src]')].filter(el => /^\\s*(javascript|data|vbscript):/i.test(
                el.getAttribute('href') || el.getAttribute('src') || '')).length,
            frames: document.querySelectorAll('iframe, object, embed, details[ontoggle]').length,
            styles: document.querySelectorAll('main style').length })""")
        assert found == {"scripts": 0, "handlers": 0, "badLinks": 0, "frames": 0,
                         "styles": 0}, (url, found)
    assert page_.dialogs == []
