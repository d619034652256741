"""The console and lab forms in Chromium: moderate a submitted report, search, filter by a
facet, open and triage, file a plan and see a lifecycle violation without losing input,
sign out, keyboard-only sign-in, axe-core, and no script from stored text runs."""

from __future__ import annotations

import re

from tests.web.browsing import PASSWORDS, api, page_without_js, sign_in, submit_sign_in


def test_report_form_submission_is_moderated_in_the_console_without_js(browser, live,
                                                                       accounts):
    with page_without_js(browser, live) as page:
        page.goto("/incidents/report")
        page.fill("#title", "Voice clone used in a moderation test")
        page.fill("#summary", "Reported through the public form.")
        page.check("input[value=phishing]")
        page.select_option("#severity", "low")
        page.fill("#occurred", "2026-03-01")
        page.click("button[type=submit]")
        assert page.locator(".notice").count() == 1

        page.goto("/console/moderation")  # not signed in: sent to sign in, then back
        assert page.url.endswith("/console/login?next=/console/moderation")
        submit_sign_in(page, "coord")
        assert page.url.endswith("/console/moderation")
        item = page.locator("ol.queue > li", has_text="Voice clone used in a moderation test")
        assert item.count() == 1 and "anonymous" in item.inner_text()
        item.locator("input[name=reason]").fill("credible, with a recording")
        item.locator("button", has_text="Accept").click()
        assert "Moved to triaged." in page.locator(".notice").inner_text()
        assert page.locator("ol.queue > li", has_text="Voice clone used").count() == 0


def test_coordinator_searches_filters_opens_and_triages(page_, live, accounts, axe, shot):
    with api(live, "alice") as alice:
        for n, severity in enumerate(["high", "low", "high"]):
            r = alice.post("/api/v1/incidents", json={
                "title": f"Watermark stripping case {n}", "occurred": f"2026-04-0{n + 1}",
                "harm_types": ["disinformation"], "severity": severity,
                "summary": "Watermarks were stripped by resampling."})
            assert r.status_code == 201, r.text
    sign_in(page_, "coord")
    page_.fill("#q", "watermark")
    page_.click("button:has-text('Search')")
    assert "3 incidents" in page_.locator("#results-title").inner_text()
    assert page_.locator(".results mark").count() >= 3
    assert axe(page_) == []
    shot(page_, "console-search")

    page_.locator(".facets a.facet", has_text="high").first.click()
    assert "2 incidents" in page_.locator("#results-title").inner_text()
    assert "Severity: high" in page_.locator(".facets").inner_text()
    page_.locator(".results h3 a").first.click()
    assert re.search(r"/console/incidents/\d+$", page_.url)
    assert axe(page_) == []
    page_.check("#to-triaged")
    page_.fill("#reason", "confirmed by the lab")
    page_.click("button:has-text('Move')")
    assert "Moved to triaged." in page_.locator(".notice").inner_text()
    assert "triaged" in page_.locator("dl.meta").inner_text()
    shot(page_, "console-incident")
    assert page_.errors == []


def test_plan_form_shows_a_lifecycle_violation_and_keeps_the_input(page_, live, accounts,
                                                                   axe, shot):
    sign_in(page_, "alice")
    assert page_.url.endswith("/lab/")
    page_.click("text=File a new plan")
    assert axe(page_) == []
    page_.select_option("#model", live["model"])
    page_.fill("#title", "Browser-filed staged release")
    page_.fill("#summary", "Filed *from the form*.")
    page_.fill("#stage-0-name", "small")
    page_.fill("#stage-0-parameter_count", "167000")
    page_.select_option("#stage-0-access_level", "public_weights")
    page_.check("#stage-0-artifact-weights")
    page_.fill("#stage-0-rationale", "The smallest goes first.")
    page_.fill("#stage-1-name", "large")
    page_.check("#file")
    page_.click("button:has-text('Save plan')")
    assert "Plan saved." in page_.locator(".notice").inner_text()

    # Releasing a stage that is only planned is not a legal move.
    page_.select_option("#stage-1-to", "released")
    page_.fill("#stage-1-reason", "eager to ship")
    page_.fill("#stage-1-actual_date", "2026-05-01")
    page_.click("button:has-text('Move stage 1')")
    alert = page_.locator("#form-errors")
    assert "cannot become released" in alert.inner_text()
    assert "ready, deferred, cancelled" in alert.inner_text()
    assert page_.input_value("#stage-1-reason") == "eager to ship"
    assert page_.input_value("#stage-1-actual_date") == "2026-05-01"
    assert page_.input_value("#stage-1-to") == "released"
    assert page_.input_value("#title") == "Browser-filed staged release"
    assert axe(page_) == []
    shot(page_, "lab-plan-violation")
    assert page_.errors == []


def test_a_lab_member_cannot_open_the_console_and_signing_out_ends_it(page_, live, accounts,
                                                                      axe):
    sign_in(page_, "alice")
    response = page_.goto("/console/")
    assert response.status == 403
    page_.goto("/lab/")
    assert axe(page_) == []
    page_.click("button:has-text('Sign out')")
    assert "You are signed out" in page_.locator("main").inner_text()
    page_.goto("/lab/")
    assert "/console/login" in page_.url


def test_sign_in_with_the_keyboard_only(page_, live, accounts, axe):
    page_.goto("/console/login")
    assert axe(page_) == []
    page_.focus("#username")
    page_.keyboard.type("coord")
    page_.keyboard.press("Tab")
    page_.keyboard.type(PASSWORDS["coord"])
    page_.keyboard.press("Enter")
    page_.wait_for_url(re.compile(r"/console/?$"))
    # Every control on the console page is reachable with Tab and says what it is.
    labels = page_.evaluate("""() => [...document.querySelectorAll('main input, main select')]
        .filter(el => el.type !== 'hidden')
        .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
        .map(el => el.id || el.name)""")
    assert labels == []
    page_.goto("/console/moderation")
    assert axe(page_) == []


def test_stored_script_never_runs_in_the_console(page_, live, accounts):
    payload = "<img src=x onerror=\"window.__xss=1\"><script>window.__xss=1</script>"
    with api(live, "alice") as alice:
        r = alice.post("/api/v1/incidents", json={
            "title": f"xsscase {payload}", "occurred": "2026-04-09",
            "harm_types": ["disinformation"], "severity": "low",
            "summary": f"xsscase {payload} [x](javascript:window.__xss=1)",
            "reporter_contact": payload,
            "reports": [{"text": f"xsscase {payload}",
                         "url": "https://example.org/\"><script>window.__xss=1</script>"}]})
        assert r.status_code == 201, r.text
        incident_id = r.json()["id"]
    sign_in(page_, "coord")
    for path in ("/console/?q=xsscase", "/console/moderation", f"/console/incidents/{incident_id}"):
        page_.goto(path)
        assert page_.evaluate("() => window.__xss") is None, path
        bad = page_.evaluate("""() => [...document.querySelectorAll('[href],[src]')]
            .map(el => el.getAttribute('href') || el.getAttribute('src'))
            .filter(v => /^\\s*(javascript|data):/i.test(v))""")
        assert bad == [], path
    assert page_.dialogs == [] and page_.errors == []
