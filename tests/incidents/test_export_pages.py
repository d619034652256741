"""The incidents export answers in pages linked by `Link: rel="next"`: following the
links gives every incident the caller may see exactly once, in id order, and nothing the
caller may not see changes a page."""

import csv
import io

import httpx

URL = "/api/v1/incidents/export"


def follow(client, headers=None, **params) -> list[list]:
    """Each page's rows, following `Link: rel="next"` (the path it names, as a client would)."""
    pages, response = [], client.get(URL, params=params, headers=headers or {})
    while True:
        assert response.status_code == 200, response.text
        if response.headers["content-type"].startswith("text/csv"):
            pages.append(list(csv.DictReader(io.StringIO(response.text))))
        else:
            pages.append(response.json())
        nxt = httpx.Response(200, headers=response.headers).links.get("next")
        if nxt is None:
            assert "x-next-cursor" not in response.headers
            return pages
        assert response.headers["x-next-cursor"] in nxt["url"]
        response = client.get(nxt["url"], headers=headers or {})


def test_pages_hold_each_visible_incident_once_in_id_order(client, world, file_incident):
    public = [file_incident(to=("triaged", "confirmed"), title=f"Public {n}")["id"]
              for n in range(5)]
    hidden = file_incident(title="Still in moderation")["id"]  # between public ones in id
    public += [file_incident(to=("triaged", "confirmed"), title="Public 5")["id"]]

    pages = follow(client, limit=2)
    assert [len(p) for p in pages] == [2, 2, 2]
    assert [row["id"] for page in pages for row in page] == public

    csv_pages = follow(client, format="csv", limit=4)
    assert [[int(r["id"]) for r in p] for p in csv_pages] == [public[:4], public[4:]]
    # Every CSV page starts with the header row, so each page opens in a spreadsheet.
    assert all(p and "title" in p[0] for p in csv_pages)

    # The lab that filed them sees the one in moderation too, at its place in id order.
    member = follow(client, world.a_member.headers, limit=3)
    assert [row["id"] for page in member for row in page] == sorted(public + [hidden])


def test_default_page_is_everything_in_a_small_registry(client, world, file_incident):
    ids = [file_incident(to=("triaged", "confirmed"))["id"] for _ in range(3)]
    r = client.get(URL)
    assert [x["id"] for x in r.json()] == ids and "link" not in r.headers


def test_an_empty_export_is_an_empty_page(client, world):
    r = client.get(URL)
    assert r.status_code == 200 and r.json() == [] and "link" not in r.headers
    r = client.get(URL, params={"format": "csv"})
    assert r.text.splitlines()[0].startswith('"id"') or r.text.startswith("id")


def test_bad_page_parameters_name_the_field(client, world):
    for params, field in (({"limit": 0}, "limit"), ({"limit": 10_001}, "limit"),
                          ({"cursor": "not-ours"}, "cursor"),
                          ({"cursor": "aWQ6OTk5OTk5OTk5OTk5OTk5OTk5OTk5"}, "cursor")):
        r = client.get(URL, params=params)
        assert r.status_code == 422, (params, r.text)
        assert [e["field"] for e in r.json()["errors"]] == [field], params
