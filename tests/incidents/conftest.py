"""Incident fixtures: a helper to file incidents through the API (the anonymous rate limit
lives in each test's own database, so it starts fresh)."""

from __future__ import annotations

import pytest


def body(title="Voice clone scam", **extra) -> dict:
    data = {"title": title, "summary": "Callers used a *cloned* voice.",
            "occurred": "2019-06-01", "harm_types": ["impersonation"], "severity": "high",
            "labs": ["lab-a"]}
    data.update(extra)
    return data


@pytest.fixture
def file_incident(client, world):
    """Submit as `who` (default a_member), then move it as the coordinator."""
    def make(who="a_member", to=(), **fields) -> dict:
        headers = getattr(world, who).headers if who else {}
        r = client.post("/api/v1/incidents", json=body(**fields), headers=headers)
        assert r.status_code == 201, r.text
        incident = r.json()
        for step in to:
            r = client.post(f"/api/v1/incidents/{incident['id']}/transitions",
                            json={"to": step, "version": incident["version"]},
                            headers=world.coord.headers)
            assert r.status_code == 200, r.text
            incident = r.json()
        return incident
    return make
