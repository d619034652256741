from tests.factories import FOUR_STAGES


def create(client, world, **extra):
    body = {"model": "lab-a/m", "title": "Staged release", "stages": FOUR_STAGES} | extra
    r = client.post("/api/v1/plans", json=body, headers=world.a_member.headers)
    assert r.status_code == 201, r.text
    return r.json()


def test_file_plan_returns_stages_in_order_with_etag(client, world):
    r = client.post("/api/v1/plans", json={"model": "lab-a/m", "title": "T",
                                            "stages": FOUR_STAGES, "file": True},
                    headers=world.a_member.headers)
    assert r.status_code == 201 and r.headers["etag"] == '"1"'
    plan = r.json()
    assert plan["status"] == "filed" and plan["lab"] == "lab-a"
    assert [(s["position"], s["name"], s["status"]) for s in plan["stages"]] == [
        (1, "124M", "planned"), (2, "355M", "planned"), (3, "774M", "planned"),
        (4, "1.5B", "planned")]


def test_client_cannot_set_status_or_version_on_create(client, world):
    body = {"model": "lab-a/m", "title": "T", "stages": FOUR_STAGES, "status": "active"}
    r = client.post("/api/v1/plans", json=body, headers=world.a_member.headers)
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "status"


def test_bad_stage_names_the_field(client, world):
    stages = [{"name": "x", "access_level": "everyone"}]
    r = client.post("/api/v1/plans", json={"model": "lab-a/m", "title": "T", "stages": stages},
                    headers=world.a_member.headers)
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "stages[0].access_level"
    assert client.get("/api/v1/plans", headers=world.a_member.headers).json()["items"] == []


def test_unknown_model_is_a_clear_404(client, world):
    r = client.post("/api/v1/plans", json={"model": "lab-a/nope", "title": "T",
                                            "stages": FOUR_STAGES}, headers=world.a_member.headers)
    assert r.status_code == 404 and r.json()["errors"][0]["field"] == "model"


def test_revise_with_stale_version_is_409_and_changes_nothing(client, world):
    plan = create(client, world)
    url = f"/api/v1/plans/{plan['id']}"
    ok = client.patch(url, json={"title": "Second", "version": 1}, headers=world.a_member.headers)
    assert ok.status_code == 200 and ok.json()["version"] == 2
    stale = client.patch(url, json={"title": "Third", "version": 1},
                         headers=world.a_member.headers)
    assert stale.status_code == 409 and stale.json()["errors"][0]["field"] == "version"
    assert client.get(url, headers=world.a_member.headers).json()["title"] == "Second"


def test_if_match_header_carries_the_version(client, world):
    plan = create(client, world)
    url = f"/api/v1/plans/{plan['id']}"
    h = world.a_member.headers
    assert client.patch(url, json={"title": "X"}, headers=h).status_code == 422
    r = client.patch(url, json={"title": "X"}, headers=h | {"If-Match": '"1"'})
    assert r.status_code == 200 and r.headers["etag"] == '"2"'
    assert client.patch(url, json={"title": "Y"}, headers=h | {"If-Match": '"1"'}).status_code == 409


def test_revisions_are_listed_fetched_and_diffed(client, world):
    plan = create(client, world, file=True)
    url = f"/api/v1/plans/{plan['id']}"
    h = world.a_member.headers
    stages = [dict(s) for s in FOUR_STAGES]
    stages[3]["planned_date"] = "2019-12-01"
    client.patch(url, json={"version": 1, "stages": stages, "summary": "Pushed back"}, headers=h)
    revisions = client.get(f"{url}/revisions").json()
    assert [r["number"] for r in revisions] == [1, 2]
    assert revisions[0]["author"] == "a_member"
    first = client.get(f"{url}/revisions/1").json()
    assert first["content"]["stages"][3]["planned_date"] == "2019-11-05"
    changes = client.get(f"{url}/diff?a=1&b=2").json()["changes"]
    assert {"path": "stages[3].planned_date", "from": "2019-11-05", "to": "2019-12-01"} in changes
    assert {"path": "summary", "from": "", "to": "Pushed back"} in changes
    assert client.get(f"{url}/revisions/9").status_code == 404


def test_lifecycle_and_illegal_moves_name_the_allowed_ones(client, world):
    plan = create(client, world)
    url, h = f"/api/v1/plans/{plan['id']}", world.a_member.headers
    r = client.post(f"{url}/stages/1/transitions", json={"to": "ready", "version": 1}, headers=h)
    assert r.status_code == 409 and "draft" in r.json()["detail"]
    r = client.post(f"{url}/transitions", json={"to": "completed", "version": 1}, headers=h)
    assert r.status_code == 409 and r.json()["allowed"] == ["filed", "withdrawn"]
    assert client.post(f"{url}/transitions", json={"to": "filed", "version": 1},
                       headers=h).json()["status"] == "filed"
    r = client.post(f"{url}/stages/1/transitions", json={"to": "released", "version": 2},
                    headers=h)
    assert r.status_code == 409 and r.json()["allowed"] == ["ready", "deferred", "cancelled"]
    client.post(f"{url}/stages/1/transitions", json={"to": "ready", "version": 2}, headers=h)
    # A past release date is a coordinator's import of history (tests/plans/test_dates.py).
    r = client.post(f"{url}/stages/1/transitions",
                    json={"to": "released", "version": 3, "actual_date": "2019-02-14"},
                    headers=world.coord.headers)
    body = r.json()
    assert body["status"] == "active" and body["stages"][0]["status"] == "released"
    assert body["stages"][0]["actual_date"] == "2019-02-14"
    r = client.post(f"{url}/transitions", json={"to": "completed", "version": 4}, headers=h)
    assert r.status_code == 409 and "[2, 3, 4]" in r.json()["detail"]


def test_released_stage_cannot_be_rewritten(client, world):
    plan = create(client, world, file=True)
    url, h = f"/api/v1/plans/{plan['id']}", world.a_member.headers
    client.post(f"{url}/stages/1/transitions", json={"to": "ready", "version": 1}, headers=h)
    client.post(f"{url}/stages/1/transitions", json={"to": "released", "version": 2}, headers=h)
    stages = [dict(s) for s in FOUR_STAGES]
    stages[0]["name"] = "renamed"
    r = client.patch(url, json={"version": 3, "stages": stages}, headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "stages[0]"


def test_pagination_walks_every_plan_once(client, world):
    ids = {world.plan(filed=True, title=f"P{i}") for i in range(5)}
    seen, cursor = [], None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = client.get("/api/v1/plans", params=params).json()
        seen += [p["id"] for p in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(ids) and len(seen) == 5
    assert client.get("/api/v1/plans", params={"cursor": "garbage!"}).status_code == 422
    assert client.get("/api/v1/plans", params={"limit": 0}).status_code == 422


def test_markdown_is_rendered_safely(client, world):
    plan = create(client, world, summary="**bold** <script>alert(1)</script> [x](javascript:alert(1))")
    html = plan["summary_html"]
    assert "<strong>bold</strong>" in html
    assert "<script" not in html and 'href="javascript:' not in html
    assert "&lt;script&gt;" in html  # shown as text, not run


def test_cached_read_sees_a_commit_from_another_connection(client, world):
    plan_id = world.plan(filed=True)
    assert client.get(f"/api/v1/plans/{plan_id}").json()["version"] == 1
    from app.db import session_scope
    from app.plans.schemas import PlanUpdate
    from app.plans.service import revise_plan

    with session_scope() as s:  # as if from the CLI: not through this app's handlers
        revise_plan(s, world.a_member.principal, plan_id, PlanUpdate(version=1, title="New"))
    assert client.get(f"/api/v1/plans/{plan_id}").json()["title"] == "New"
