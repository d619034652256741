"""What people type into the search box (issue: each of these gave a 422 page), on SQLite
and PostgreSQL: the web form searches what can be searched and says what it did; the
API keeps 422 for what it cannot read, and reads `a OR NOT b`."""

from __future__ import annotations

import pytest

from app.incidents.search import parse_query, repair_query

URL = "/api/v1/incidents"
SYMBOLS = ["🦊", "%", "\\", "OR"]


@pytest.fixture
def corpus(file_incident):
    file_incident(to=("triaged", "confirmed"), title="Unbalanced phishing wave",
                  summary="Phishing emails in bulk.", harm_types=["phishing"])
    file_incident(to=("triaged", "confirmed"), title="Botnet spam",
                  summary="Spam about an unbalanced budget.", harm_types=["spam"])
    file_incident(to=("triaged", "confirmed"), title="Forum spam", summary="Plain spam.",
                  harm_types=["spam"])


def _titles(html: str) -> set[str]:
    return {t for t in ("Unbalanced phishing wave", "Botnet spam", "Forum spam") if t in html}


def test_unclosed_quote_closes_at_the_end(client, corpus):
    r = client.get("/incidents", params={"q": '"unbalanced'})
    assert r.status_code == 200
    assert _titles(r.text) == {"Unbalanced phishing wave", "Botnet spam"}
    assert "unclosed quote was closed" in r.text
    assert client.get(f"{URL}/search", params={"q": '"unbalanced'}).status_code == 422


@pytest.mark.parametrize("q", SYMBOLS)
def test_symbols_alone_give_no_results(client, corpus, q):
    r = client.get("/incidents", params={"q": q}, headers={"Accept": "text/html"})
    assert r.status_code == 200
    assert _titles(r.text) == set() and "No incident matches." in r.text
    assert "nothing in it to search for" in r.text
    assert 'id="q-hint"' in r.text  # the syntax hint under the box
    api = client.get(f"{URL}/search", params={"q": q})
    assert api.status_code == 422 and api.json()["errors"][0]["field"] == "q"


@pytest.mark.parametrize("q", ["a OR NOT b", "spam OR NOT botnet", "spam OR -botnet"])
def test_or_not_is_a_valid_query(client, corpus, q):
    """An exclusion excludes from the whole query: `a OR NOT b` reads as `a NOT b`."""
    r = client.get(f"{URL}/search", params={"q": q})
    assert r.status_code == 200, r.text
    titles = {h["incident"]["title"] for h in r.json()["items"]}
    if not q.startswith("a "):  # ("a" is a stop word on PostgreSQL, a word on SQLite)
        assert titles == {"Forum spam"}
    page = client.get("/incidents", params={"q": q})
    assert page.status_code == 200 and _titles(page.text) == titles


@pytest.mark.parametrize("q", ['"unbalanced', "🦊", "%", "\\", "OR", "a OR NOT b",
                               "NOT a", 'x -"y', "a OR OR b", "b NOT OR c", "x " * 40,
                               "y" * 600, '"' * 7])
def test_repaired_queries_always_parse(q):
    fixed, _ = repair_query(q)
    if fixed is not None:
        parse_query(fixed)

