"""The demo loader hosts the fictional family once, however often it runs."""

from __future__ import annotations

from app.checkpoints.demo import load_demo_family
from tests.checkpoints.tiny import tiny_gpt2


def test_demo_family_is_hosted_once_under_a_fictional_lab(settings, client, tmp_path):
    dirs = {"small": tiny_gpt2(tmp_path, 0), "large": tiny_gpt2(tmp_path, 1)}
    for path in dirs.values():  # as the real cache has it
        (path / "demo_family.json").write_text("{}")
    first = list(load_demo_family(dirs=dirs))
    assert all("evaluations queued" in line for line in first)
    again = list(load_demo_family(dirs=dirs))
    assert all("already hosted" in line for line in again)
    listed = client.get("/api/v1/checkpoints?model=tinyscale/tiny-gpt2").json()["items"]
    assert sorted(c["name"] for c in listed) == ["large", "small"]
    assert all(c["access_level"] == "public" for c in listed)
    lab = client.get("/api/v1/labs/tinyscale").json()
    assert "fictional" in lab["name"]
    plans = client.get("/api/v1/plans", params={"model": "tinyscale/tiny-gpt2"}).json()["items"]
    assert [s["name"] for s in plans[0]["stages"]] == ["small", "large"]
    runs = client.get("/api/v1/evals/runs", params={"model": "tinyscale/tiny-gpt2"}).json()
    assert {r["suite_id"] for r in runs["items"]} >= {"perplexity", "detectability",
                                                      "bias_association"}
