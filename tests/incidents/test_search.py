from datetime import UTC, datetime, timedelta

import pytest

from app.auth.principal import SYSTEM
from app.auth.service import create_token, create_user
from app.db import session_scope
from app.timeutil import freeze

URL = "/api/v1/incidents"
EMBARGO = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)


def _search(client, headers=None, **params):
    r = client.get(f"{URL}/search", params=params, headers=headers or {})
    assert r.status_code == 200, r.text
    return r.json()


def test_embargo_never_leaks_through_search(client, world, file_incident):
    """Sweep results, snippets, facets, totals, paging, lists, export and GET, one second
    each side of the embargo, for every kind of caller."""
    with session_scope() as s:
        user = create_user(s, SYSTEM, "rep")
        _, secret = create_token(s, SYSTEM, user)
    rep = {"Authorization": f"Bearer {secret}"}
    freeze(EMBARGO - timedelta(days=1))
    other = file_incident(to=("triaged", "confirmed"), title="Public spam wave",
                          harm_types=["spam"], severity="low", labs=["lab-b"])
    r = client.post(URL, headers=rep, json={
        "title": "Quokka leak", "summary": "secret quokka details", "occurred": "2029-05-01",
        "harm_types": ["privacy"], "severity": "critical", "labs": ["lab-a"],
        "reports": [{"text": "the quokka dossier"}]})
    hidden = r.json()
    for step, version in (("triaged", 1), ("confirmed", 2)):
        client.post(f"{URL}/{hidden['id']}/transitions", json={"to": step, "version": version},
                    headers=world.coord.headers)
    r = client.post(f"{URL}/{hidden['id']}/embargo",
                    json={"embargo_until": EMBARGO.isoformat(), "version": 3},
                    headers=world.coord.headers)
    assert r.status_code == 200, r.text
    callers = {"anonymous": ({}, False), "reporter": (rep, True),
               "affected lab": (world.a_member.headers, True),
               "unrelated lab": (world.b_member.headers, False),
               "coordinator": (world.coord.headers, True)}
    for moment, lifted in ((EMBARGO - timedelta(seconds=1), False),
                           (EMBARGO + timedelta(seconds=1), True)):
        freeze(moment)
        for who, (headers, privileged) in callers.items():
            sees = privileged or lifted
            where = f"{who} at {moment}"
            page = _search(client, headers, q="quokka")
            assert page["total"] == int(sees), where
            assert [h["incident"]["id"] for h in page["items"]] == \
                ([hidden["id"]] if sees else []), where
            if sees:
                assert "<mark>quokka</mark>" in page["items"][0]["snippet"].lower()
            counts = {k: sum(v["count"] for v in vs) for k, vs in page["facets"].items()}
            assert counts == {"lab": int(sees), "model": 0, "harm_type": int(sees),
                              "severity": int(sees), "status": int(sees),
                              "year": int(sees)}, where
            paged = _search(client, headers, q="quokka OR spam", limit=1)
            ids = [h["incident"]["id"] for h in paged["items"]]
            while paged["next_cursor"]:
                paged = _search(client, headers, q="quokka OR spam", limit=1,
                                cursor=paged["next_cursor"])
                ids += [h["incident"]["id"] for h in paged["items"]]
            assert sorted(ids) == sorted([other["id"]] + ([hidden["id"]] if sees else []))
            listed = client.get(URL, params={"severity": "critical"}, headers=headers).json()
            assert listed["total"] == int(sees), where
            assert {f["value"] for f in _search(client, headers)["facets"]["severity"]} == \
                ({"low", "critical"} if sees else {"low"}), where
            exported = client.get(f"{URL}/export", headers=headers).json()
            assert (hidden["id"] in [x["id"] for x in exported]) == sees, where
            csv = client.get(f"{URL}/export", params={"format": "csv"}, headers=headers).text
            assert ("Quokka" in csv) == sees, where
            status = client.get(f"{URL}/{hidden['id']}", headers=headers).status_code
            assert status == (200 if sees else 404), where


@pytest.fixture
def corpus(world, file_incident):
    """Four public incidents with distinct facets, plus one in the queue."""
    ids = {}
    ids["title"] = file_incident(to=("triaged", "confirmed"), title="Phishing kit <script>",
                                 summary="emails", harm_types=["phishing"], severity="high",
                                 occurred="2019-03-01", labs=["lab-a"])["id"]
    ids["summary"] = file_incident(to=("triaged", "confirmed"), title="Mail campaign",
                                   summary="a phishing run with voice", harm_types=["phishing",
                                   "impersonation"], severity="low", occurred="2020-07-01",
                                   labs=["lab-b"])["id"]
    ids["report"] = file_incident(to=("triaged", "confirmed", "resolved"), title="Other",
                                  summary="nothing", harm_types=["spam"], severity="low",
                                  occurred="2021-01-01", labs=["lab-a"],
                                  reports=[{"text": "someone mentioned phishing"}])["id"]
    ids["voice"] = file_incident(to=("triaged", "confirmed"), title="Voice clone",
                                 summary="voice fraud", harm_types=["impersonation"],
                                 severity="critical", occurred="2020-01-01",
                                 labs=["lab-a"], models=["lab-a/m"])["id"]
    ids["queued"] = file_incident(title="Queued phishing", severity="high")["id"]
    return ids


def test_ranking_snippets_facets(client, corpus, backend):
    page = _search(client, q="phishing")
    order = [h["incident"]["id"] for h in page["items"]]
    assert order == [corpus["title"], corpus["summary"], corpus["report"]]
    assert page["total"] == 3
    first = page["items"][0]
    assert "<script>" not in first["snippet"]
    if backend == "sqlite":  # PostgreSQL's headline drops tag-like tokens altogether
        assert "&lt;script&gt;" in first["snippet"]
    assert "<mark>Phishing</mark>" in first["snippet"]
    assert first["score"] > page["items"][1]["score"] > page["items"][2]["score"]
    # A match only in a linked report still gets a snippet from the report.
    assert "<mark>phishing</mark>" in page["items"][2]["snippet"]
    f = {k: {x["value"]: x["count"] for x in v} for k, v in page["facets"].items()}
    assert f["severity"] == {"high": 1, "low": 2}
    assert f["lab"] == {"lab-a": 2, "lab-b": 1}
    assert f["harm_type"] == {"phishing": 2, "impersonation": 1, "spam": 1}
    assert f["year"] == {"2019": 1, "2020": 1, "2021": 1}
    assert f["status"] == {"confirmed": 2, "resolved": 1}
    assert _search(client, q="voice")["facets"]["model"] == [{"value": "lab-a/m", "count": 1}]


def test_filters_sort_and_syntax(client, corpus):
    def ids(**params):
        return [h["incident"]["id"] for h in _search(client, **params)["items"]]
    assert ids(q="phishing", severity="low") == [corpus["summary"], corpus["report"]]
    assert ids(q="phishing", lab="lab-b") == [corpus["summary"]]
    assert ids(q="phishing", harm_type="spam") == [corpus["report"]]
    assert ids(q="phishing", year=2019) == [corpus["title"]]
    assert ids(q="phishing", status="resolved") == [corpus["report"]]
    assert ids(q="phishing", occurred_from="2020-01-01", occurred_to="2020-12-31") == \
        [corpus["summary"]]
    assert ids(q="voice", model="lab-a/m") == [corpus["voice"]]
    assert ids(q="phishing", sort="date") == [corpus["report"], corpus["summary"],
                                              corpus["title"]]
    assert ids(q='"phishing run"') == [corpus["summary"]]
    assert ids(q="phishing -voice") == [corpus["title"], corpus["report"]]
    assert ids(q="phishing NOT voice") == [corpus["title"], corpus["report"]]
    assert set(ids(q="fraud OR emails")) == {corpus["voice"], corpus["title"]}
    assert ids(q="voice phishing") == [corpus["summary"]]


@pytest.mark.parametrize("sort", ["relevance", "date"])
def test_cursor_pagination_walks_everything_once(client, corpus, sort):
    seen, cursor = [], None
    for _ in range(10):
        params = {"q": "phishing OR voice", "sort": sort, "limit": 1}
        if cursor:
            params["cursor"] = cursor
        page = _search(client, **params)
        seen += [h["incident"]["id"] for h in page["items"]]
        assert page["total"] == 4
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted([corpus["title"], corpus["summary"], corpus["report"],
                                   corpus["voice"]])
    r = client.get(f"{URL}/search", params={"q": "x", "cursor": "garbage"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "cursor"


@pytest.mark.parametrize("q", ['"unclosed phrase', "OR", "phishing OR", "NOT", "-voice",
                               "phishing NOT", "*)(:^", "x " * 20])
def test_bad_queries_answer_422(client, world, q):
    r = client.get(f"{URL}/search", params={"q": q})
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "q"


@pytest.mark.parametrize("q", ["AND", "near(a b)", "title:phishing", "a^b", "c++ OR c#"])
def test_engine_syntax_is_just_words(client, world, q):
    assert client.get(f"{URL}/search", params={"q": q}).status_code == 200


# --- the bounded candidate set (both databases) ---------------------------------------------------
@pytest.fixture
def small_bound(monkeypatch):
    """Shrink the candidate set so a handful of incidents exercise the 1M-row behaviour."""
    from app.incidents import search
    monkeypatch.setattr(search, "CANDIDATES", 2)
    return search


def _service_search(principal, **params):
    from app.incidents.search import SearchParams, search_incidents
    with session_scope(write=False) as s:
        r = search_incidents(s, principal, SearchParams(**params))
        return (r.total, r.facets, [h.incident.id for h in r.hits], r.next_cursor,
                r.total_is_estimate, r.facets_are_estimates)


def test_bounded_search_estimates_only_from_visible_rows(client, world, file_incident,
                                                         small_bound, backend):
    from app.auth.principal import ANONYMOUS
    freeze(EMBARGO - timedelta(days=1))
    public = [file_incident(to=("triaged", "confirmed"), title=f"Zebra event {i}",
                            severity="low", labs=["lab-b"])["id"] for i in range(4)]
    before = _service_search(ANONYMOUS, q="zebra")
    # The newest match is embargoed (set before it is confirmed, so it is never public).
    hidden = file_incident(to=("triaged",), title="Zebra secret", severity="critical",
                           labs=["lab-a"])
    r = client.post(f"{URL}/{hidden['id']}/embargo", headers=world.coord.headers,
                    json={"embargo_until": EMBARGO.isoformat(), "version": hidden["version"]})
    assert r.status_code == 200, r.text
    r = client.post(f"{URL}/{hidden['id']}/transitions", headers=world.coord.headers,
                    json={"to": "confirmed", "version": r.json()["version"]})
    assert r.status_code == 200, r.text
    after = _service_search(ANONYMOUS, q="zebra")
    # Hits, total, facets, cursor and flags: identical whether or not the embargoed row
    # exists, so nothing about it can be read off an anonymous search.
    assert after == before
    total, facets, ids, cursor, total_est, facets_est = after
    assert hidden["id"] not in ids
    assert {v for v, _ in facets["severity"]} == {"low"}
    # Both databases: the two newest visible matches (equal scores: newest first).
    assert (total_est, facets_est) == (True, True)
    assert ids == [public[3], public[2]]
    assert total >= 3 and cursor is None  # paging ends with the candidates
    page = _search(client, q="zebra")  # and HTTP callers are told so
    assert (page["total_is_estimate"], page["facets_are_estimates"]) == (True, True)
    coord = _service_search(world.coord.principal, q="zebra")
    assert hidden["id"] in coord[2]
    freeze(EMBARGO + timedelta(seconds=1))
    lifted = _service_search(ANONYMOUS, q="zebra")
    assert hidden["id"] in lifted[2]


def test_within_the_bound_everything_is_exact(client, corpus, small_bound, backend):
    from app.auth.principal import ANONYMOUS
    small_bound.CANDIDATES = 3
    total, facets, ids, _, total_est, facets_est = _service_search(ANONYMOUS, q="phishing")
    assert (total, total_est, facets_est) == (3, False, False)
    assert ids == [corpus["title"], corpus["summary"], corpus["report"]]
    assert dict(facets["severity"]) == {"high": 1, "low": 2}


def test_scores_are_per_document_and_rank_coverage(client, corpus, backend):
    """A score depends on its row only: the same text scores the same whatever else is
    stored, title beats summary beats reports, and matching more of the query wins."""
    page = _search(client, q="phishing voice")
    assert [h["incident"]["id"] for h in page["items"]] == [corpus["summary"]]
    assert page["items"][0]["score"] > 0
    both = _search(client, q="phishing OR voice")
    scores = {h["incident"]["id"]: h["score"] for h in both["items"]}
    assert scores[corpus["summary"]] > scores[corpus["report"]]
    assert scores[corpus["voice"]] > scores[corpus["report"]]


def test_bounded_paging_walks_the_candidates_once(client, corpus, small_bound, backend):
    small_bound.CANDIDATES = 3
    seen, cursor = [], None
    for _ in range(10):
        params = {"q": "phishing OR voice", "limit": 1, **({"cursor": cursor} if cursor else {})}
        page = _search(client, **params)
        seen += [h["incident"]["id"] for h in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    # The 3 newest of 4 matches, each once, on both databases.
    assert sorted(seen) == sorted([corpus["summary"], corpus["report"], corpus["voice"]])


def test_search_hits_read_exactly_as_read_incidents(client, world, corpus, backend):
    """Search builds its hits with its own batched statement on SQLite: each caller must
    get exactly what read_incidents gives them (labs, visible models, report counts,
    reporter fields), in rank order."""
    from app.auth.principal import ANONYMOUS
    from app.incidents.search import SearchParams, search_incidents
    from app.incidents.service import read_incidents
    from app.incidents.tables import Incident
    for principal in (ANONYMOUS, world.a_member.principal, world.b_member.principal,
                      world.coord.principal):
        for sort in ("relevance", "date"):
            with session_scope(write=False) as s:
                hits = [h.incident for h in search_incidents(
                    s, principal, SearchParams(q="phishing OR voice", sort=sort)).hits]
                expected = read_incidents(s, principal, [s.get(Incident, h.id) for h in hits],
                                          html=False)
            assert len(hits) >= 4 and hits == expected, (principal, sort)


def test_text_cannot_carry_the_match_markers(client, world):
    """Search counts its private-use markers to score and to build <mark>: text holding
    them could rank itself first or forge tags, so it is refused, naming the field."""
    base = {"title": "Ok", "occurred": "2019-06-01", "harm_types": ["spam"],
            "severity": "low"}
    for field, body in (("title", {**base, "title": "\ue000win\ue001"}),
                        ("summary", {**base, "summary": "x\ue000"}),
                        ("reports[0].text", {**base, "reports": [{"text": "\ue001"}]})):
        r = client.post(URL, json=body, headers=world.a_member.headers)
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["field"] == field
    assert _search(client, world.coord.headers)["total"] == 0
