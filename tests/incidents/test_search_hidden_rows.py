"""Issue 7 item 2: nothing a caller cannot see moves any byte of a search answer.

Every search output an outsider gets (anonymous, or a lab with its own visible incident
holding the query words) is recorded, hidden incidents of every kind holding the same
words are filed, and every output is compared byte for byte: scores, order, snippets,
totals, facets, cursors and the estimate flags, for words, phrases, OR, NOT, a word
common to every row, both sorts and every page.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.timeutil import freeze

URL = "/api/v1/incidents"
NOW = datetime(2029, 6, 1, 12, 0, 0, tzinfo=UTC)
QUERIES = ["falcon", '"falcon wing"', "falcon OR heron", "falcon -heron", "heron NOT wing",
           "common", "common falcon", '"wing common" OR heron']
HIDDEN_TEXT = ("falcon falcon falcon wing common heron falcon wing common "
               "falcon wing falcon heron common")


def _answers(client, headers: dict) -> list[tuple[str, bytes]]:
    """Every page of every query (both sorts, small pages, cursors followed), plus the
    plain list; the raw bytes of each body."""
    out = []
    for q in QUERIES:
        for sort in ("relevance", "date"):
            params = {"q": q, "sort": sort, "limit": 2}
            for _ in range(20):
                r = client.get(f"{URL}/search", params=params, headers=headers)
                assert r.status_code == 200, r.text
                out.append((f"{q} {sort} {params.get('cursor')}", r.content))
                cursor = r.json()["next_cursor"]
                if not cursor:
                    break
                params["cursor"] = cursor
        r = client.get(f"{URL}/search", params={"q": q, "facets": "false"}, headers=headers)
        out.append((f"{q} no facets", r.content))
    r = client.get(URL, params={"limit": 3}, headers=headers)
    out.append(("list", r.content))
    return out


@pytest.mark.parametrize("bound", [300, 3], ids=["exact", "estimated"])
def test_hidden_incidents_change_no_byte_of_an_outsiders_search(
        client, world, file_incident, backend, monkeypatch, bound):
    from app.incidents import search
    monkeypatch.setattr(search, "CANDIDATES", bound)
    freeze(NOW)
    public = [
        file_incident(to=("triaged", "confirmed"), title="Falcon wing scraping",
                      summary="a common falcon story", labs=["lab-a"], severity="low"),
        file_incident(to=("triaged", "confirmed", "resolved"), title="Heron bot",
                      summary="common heron text with a falcon", labs=["lab-b"],
                      reports=[{"text": "the falcon wing report, common"}]),
        file_incident(to=("triaged", "confirmed"), title="Common spam",
                      summary="common words only", labs=["lab-a"], models=["lab-a/m"]),
        file_incident(to=("triaged", "confirmed"), title="Wing common",
                      summary="falcon falcon heron", labs=["lab-b"], severity="critical"),
    ]
    # Lab B's own incident, still in the queue: visible to lab B only.
    own = file_incident(who="b_member", title="Our falcon wing incident",
                        summary="common falcon notes", labs=["lab-b"])
    callers = {"anonymous": {}, "lab b": world.b_member.headers}
    before = {who: _answers(client, h) for who, h in callers.items()}
    # Sanity: the outsiders do see matches, scores and (for lab B) their own incident.
    first = client.get(f"{URL}/search", params={"q": "falcon"},
                       headers=world.b_member.headers).json()
    assert own["id"] in [h["incident"]["id"] for h in first["items"]]
    assert all(h["score"] > 0 for h in first["items"])
    assert {p["id"] for p in public} & {h["incident"]["id"] for h in first["items"]}

    # Hidden from both callers: unmoderated (signed in and anonymous), triaged, rejected,
    # confirmed under embargo, with linked reports, with a model, affecting lab A only.
    coord = world.coord.headers
    file_incident(title="Falcon wing falcon", summary=HIDDEN_TEXT, labs=["lab-a"])
    file_incident(who=None, title="Falcon heron", summary=HIDDEN_TEXT, labs=[])
    file_incident(to=("triaged",), title="Falcon wing common", summary=HIDDEN_TEXT,
                  labs=["lab-a"], models=["lab-a/m"], severity="critical",
                  harm_types=["spam"], occurred="2018-01-01")
    file_incident(to=("rejected",), title="Heron falcon", summary=HIDDEN_TEXT,
                  labs=["lab-a"], reports=[{"text": HIDDEN_TEXT * 5}])
    embargoed = file_incident(to=("triaged",), title="Falcon wing embargoed",
                              summary=HIDDEN_TEXT, labs=["lab-a"], occurred="2030-01-01",
                              reports=[{"text": HIDDEN_TEXT}])
    r = client.post(f"{URL}/{embargoed['id']}/embargo", headers=coord, json={
        "embargo_until": (NOW + timedelta(days=30)).isoformat(),
        "version": embargoed["version"]})
    assert r.status_code == 200, r.text
    r = client.post(f"{URL}/{embargoed['id']}/transitions", headers=coord,
                    json={"to": "confirmed", "version": r.json()["version"]})
    assert r.status_code == 200, r.text
    for i in range(6):  # enough to move any corpus-wide statistic
        file_incident(title=f"Common falcon {i}", summary=HIDDEN_TEXT, labs=["lab-a"])

    for who, headers in callers.items():
        after = _answers(client, headers)
        assert [k for k, _ in after] == [k for k, _ in before[who]], who
        for (key, old), (_, new) in zip(before[who], after, strict=True):
            assert new == old, f"{who}: {key}"
    # The hidden rows are really there and match: the coordinator finds them.
    monkeypatch.setattr(search, "CANDIDATES", 300)
    seen = client.get(f"{URL}/search", params={"q": "falcon", "limit": 50},
                      headers=coord).json()
    assert embargoed["id"] in [h["incident"]["id"] for h in seen["items"]]
