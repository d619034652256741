"""The models list gives summaries; the card's prose and its HTML come with one model."""

from __future__ import annotations


def test_list_items_are_summaries_and_the_detail_has_the_card(client, world):
    prose = "A long section. " * 500
    r = client.post("/api/v1/models", json={
        "lab": "lab-a", "slug": "summ", "name": "Summ", "licence": "mit",
        "parameter_count": 124_000_000, "pipeline_tag": "text-generation",
        "model_details": prose, "metrics": prose}, headers=world.a_member.headers)
    assert r.status_code == 201, r.text
    listing = client.get("/api/v1/models", params={"lab": "lab-a", "limit": 50})
    assert listing.status_code == 200
    item = next(m for m in listing.json()["items"] if m["slug"] == "summ")
    assert item["licence"] == "mit" and item["parameter_count"] == 124_000_000
    assert item["pipeline_tag"] == "text-generation" and item["lab"] == "lab-a"
    assert "model_details" not in item and "card_html" not in item
    assert len(listing.content) < len(prose)  # the prose is not on the wire
    full = client.get(f"/api/v1/models/{item['id']}").json()
    assert full["model_details"] == prose
    assert full["card_html"]["metrics"].startswith("<p>A long section.")


def test_the_models_page_filter_ignores_case_beyond_ascii(client, world):
    r = client.post("/api/v1/models", headers=world.a_member.headers,
                    json={"lab": "lab-a", "slug": "elan", "name": "Élan Ünicode"})
    assert r.status_code == 201, r.text
    for q in ("élan", "ÉLAN", "ünicode", "ÜNICODE", "Élan Ü"):
        assert "Élan Ünicode" in client.get("/models", params={"q": q}).text, q
    assert "Élan Ünicode" not in client.get("/models", params={"q": "elan x"}).text
