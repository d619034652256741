"""The bounded candidate set on both databases: PostgreSQL's id windows find exactly what
one pass over every row finds, and the list pages through everything while its total and
facets come from the bound (exact within it, flagged estimates beyond it)."""

from __future__ import annotations

import pytest

from app.auth.principal import ANONYMOUS
from app.db import session_scope
from app.incidents import search
from app.incidents.search import SearchParams, search_incidents
from app.incidents.service import read_incidents
from app.incidents.tables import Incident

URL = "/api/v1/incidents"


@pytest.fixture
def many(world, file_incident):
    """Twelve public incidents ("dense" in all, "sparse" in two, "middling" in four),
    with two queued ones holding every word filed in between (hidden from outsiders)."""
    public, queued = [], []
    for i in range(12):
        words = "dense" + (" sparse" if i in (0, 5) else "") + \
            (" middling" if i % 3 == 0 else "")
        public.append(file_incident(
            to=("triaged", "confirmed"), title=f"Incident {i} {words}",
            severity=("low", "high")[i % 2], labs=["lab-a" if i % 2 else "lab-b"],
            occurred=f"{2010 + i}-01-01")["id"])
        if i in (3, 8):
            queued.append(file_incident(title="Queued dense sparse middling")["id"])
    return public, queued


def _answer(principal, **params) -> tuple:
    with session_scope(write=False) as s:
        r = search_incidents(s, principal, SearchParams(**params))
        return (r.total, r.facets, [(h.incident.id, h.score, h.snippet) for h in r.hits],
                r.next_cursor, r.total_is_estimate, r.facets_are_estimates)


QUERIES = ["dense", "sparse", "middling", "dense -sparse", '"incident 3"', "sparse OR middling"]


def test_windows_find_what_one_pass_finds(client, world, many, monkeypatch, backend):
    """Tiny windows and thresholds force every path of the window walk (first window,
    density-sized windows, the rare-word pass below them); each answer, every page, must
    equal the one-window answer, for an outsider and for the queued incidents' reporter."""
    public, queued = many
    monkeypatch.setattr(search, "CANDIDATES", 4)

    def pages(principal, q, sort):
        out, cursor = [], None
        for _ in range(10):
            out.append(_answer(principal, q=q, sort=sort, limit=2, cursor=cursor))
            cursor = out[-1][3]
            if not cursor:
                return out
        raise AssertionError("paging did not end")

    for principal in (ANONYMOUS, world.a_member.principal):
        for q in QUERIES:
            for sort in ("relevance", "date"):
                monkeypatch.setattr(search, "FIRST_WINDOW", 10 ** 9)
                whole = pages(principal, q, sort)
                for first, rare in ((1, 1), (2, 1), (3, 2), (1, 100), (5, 3)):
                    monkeypatch.setattr(search, "FIRST_WINDOW", first)
                    monkeypatch.setattr(search, "RARE", rare)
                    assert pages(principal, q, sort) == whole, (principal, q, sort, first, rare)
    # And the one-window answer is the right one: the 4 newest visible matches.
    monkeypatch.setattr(search, "FIRST_WINDOW", 1)
    total, _, hits, _, estimate, _ = _answer(ANONYMOUS, q="dense", sort="date", limit=10)
    assert [h[0] for h in hits] == public[-1:-5:-1] and estimate and total >= 5
    total, _, hits, _, estimate, _ = _answer(ANONYMOUS, q="sparse", sort="date")
    assert [h[0] for h in hits] == [public[5], public[0]] and (total, estimate) == (2, False)
    _, _, hits, _, _, _ = _answer(world.a_member.principal, q="sparse", sort="date")
    assert {h[0] for h in hits} == {public[5], public[0], *queued}


def _list(client, headers=None, **params) -> dict:
    r = client.get(URL, params=params, headers=headers or {})
    assert r.status_code == 200, r.text
    return r.json()


def test_list_pages_everything_and_bounds_its_counts(client, world, many, monkeypatch,
                                                     backend):
    public, queued = many
    monkeypatch.setattr(search, "CANDIDATES", 4)
    seen, params = [], {"limit": 5}
    for _ in range(10):
        page = _list(client, **params)
        assert (page["total_is_estimate"], page["facets_are_estimates"]) == (True, True)
        assert page["total"] >= 5
        seen += [h["incident"]["id"] for h in page["items"]]
        if not page["next_cursor"]:
            break
        params["cursor"] = page["next_cursor"]
    # Every public incident once, newest occurrence first; the queued ones never.
    assert seen == public[::-1]
    lab = _list(client, lab="lab-a")
    assert lab["total_is_estimate"] and [h["incident"]["id"] for h in lab["items"]] == \
        public[11::-2]
    # Within the bound everything is exact, for each caller.
    monkeypatch.setattr(search, "CANDIDATES", 300)
    page = _list(client)
    assert (page["total"], page["total_is_estimate"], page["facets_are_estimates"]) == \
        (12, False, False)
    facets = {k: {x["value"]: x["count"] for x in v} for k, v in page["facets"].items()}
    assert facets["severity"] == {"low": 6, "high": 6}
    assert facets["lab"] == {"lab-a": 6, "lab-b": 6}
    assert facets["status"] == {"confirmed": 12}
    assert _list(client, world.coord.headers)["total"] == 14
    assert _list(client, world.a_member.headers)["total"] == 14  # their own queued ones
    assert _list(client, world.b_member.headers)["total"] == 12


def test_status_filter_sees_only_what_the_caller_may(client, world, many, backend):
    """A status filter drops the public branch of the visibility clause when it cannot
    hold: the same rows as before, for every kind of caller."""
    public, queued = many
    expected = {"anonymous": ({}, set()), "b_member": (world.b_member.headers, set()),
                "reporter": (world.a_member.headers, set(queued)),
                "coordinator": (world.coord.headers, set(queued))}
    for who, (headers, ids) in expected.items():
        page = _list(client, headers, status="submitted")
        assert {h["incident"]["id"] for h in page["items"]} == ids, who
        assert page["total"] == len(ids), who
        found = client.get(f"{URL}/search", params={"q": "dense", "status": "submitted"},
                           headers=headers).json()
        assert {h["incident"]["id"] for h in found["items"]} == ids, who
        assert len(_list(client, headers, status="confirmed")["items"]) == 12, who


def test_list_hits_read_exactly_as_read_incidents(client, world, many, backend):
    """The list builds its rows with one statement: each caller must get exactly what
    read_incidents gives them, in list order."""
    for principal in (ANONYMOUS, world.a_member.principal, world.b_member.principal,
                      world.coord.principal):
        with session_scope(write=False) as s:
            hits = [h.incident for h in search_incidents(
                s, principal, SearchParams(limit=50)).hits]
            expected = read_incidents(s, principal, [s.get(Incident, h.id) for h in hits],
                                      html=False)
        assert len(hits) >= 12 and hits == expected, principal


def test_postgresql_plans_each_search_for_its_values(client, world, many, backend):
    """psycopg prepares a statement after 5 runs on a connection and PostgreSQL then may
    reuse a generic plan blind to the word and the id window (10x slower at 1M rows).
    Search asks for a custom plan, for its own transaction only."""
    if backend != "postgresql":
        pytest.skip("PostgreSQL plan cache")
    from sqlalchemy import text
    with session_scope(write=False) as s:
        for _ in range(7):  # past psycopg's prepare threshold
            assert search_incidents(s, ANONYMOUS, SearchParams(q="dense")).total == 12
        assert s.execute(text("SHOW plan_cache_mode")).scalar() == "force_custom_plan"
        # Bitmap heap scans prefetch scattered pages for its transaction only, too.
        assert s.execute(text("SHOW effective_io_concurrency")).scalar() == "64"
    with session_scope(write=False) as s:
        assert s.execute(text("SHOW plan_cache_mode")).scalar() == "auto"
        assert s.execute(text("SHOW effective_io_concurrency")).scalar() == "1"
