def test_smoke(client, world):
    plan_id = world.plan(filed=True)
    r = client.get(f"/api/v1/plans/{plan_id}")
    assert r.status_code == 200, r.text
    assert [s["name"] for s in r.json()["stages"]] == ["124M", "355M", "774M", "1.5B"]
