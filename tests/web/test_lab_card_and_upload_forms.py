"""Lab forms for a model: edit its card prose (optimistic version, refusals keep what was
typed) and upload a checkpoint folder (multipart, streamed: the CSRF token and the
caller are checked before any file is kept), over plain HTTP on both databases, and in
Chromium with JavaScript off."""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from app.web.forms import done_message
from tests.checkpoints.tiny import checkpoint_files, tiny_gpt2
from tests.web.test_console_auth import HTML, PASSWORD, log_in, people, token_of  # noqa: F401

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, bytes]:
    return checkpoint_files(tiny_gpt2(tmp_path_factory.mktemp("tiny")))


@pytest.fixture
def member(client, people):  # noqa: F811
    assert log_in(client, "a_member").status_code == 303
    return client


def model_api(client, world) -> dict:
    return client.get(f"/api/v1/models/{world.model_a}", headers=world.a_member.headers).json()


def card_form(client, world) -> tuple[str, dict]:
    page = client.get(f"/lab/models/{world.model_a}", headers=HTML)
    assert page.status_code == 200, page.text
    version = re.search(r'name="version" value="(\d+)"', page.text).group(1)
    return page.text, {"version": version, "_csrf_token": token_of(page.text)}


def test_lab_home_links_each_model_to_its_card_and_upload_forms(member, world):
    home = member.get("/lab/", headers=HTML)
    assert home.status_code == 200
    assert f'href="/lab/models/{world.model_a}"' in home.text
    assert f'href="/lab/models/{world.model_a}/checkpoints/new"' in home.text
    assert f"/lab/models/{world.model_b}" not in home.text  # another lab's model


def test_edit_the_card_prose_in_the_form(member, world):
    text, hidden = card_form(member, world)
    assert 'id="card-intended_use"' in text and "Caveats and recommendations" in text
    r = member.post(f"/lab/models/{world.model_a}", headers=HTML, follow_redirects=False,
                    data={**hidden, "intended_use": "Research only.\r\n\r\n*Not* chat.",
                          "metrics": "Perplexity <script>alert(1)</script>"})
    assert r.status_code == 303
    assert r.headers["location"] == f"/lab/models/{world.model_a}?done=card-saved"
    page = member.get(r.headers["location"], headers=HTML)
    assert '<p class="notice" role="status">Model card saved.</p>' in page.text
    body = model_api(member, world)
    assert body["version"] == 2
    assert body["intended_use"] == "Research only.\n\n*Not* chat."  # CRLF from the browser
    assert "<em>Not</em>" in body["card_html"]["intended_use"]
    assert "<script>" not in body["card_html"]["metrics"]  # rendered safely, as text
    # The public card shows it; saving again unchanged saves nothing.
    public = member.get("/models/lab-a/m", headers=HTML).text
    assert "<em>Not</em> chat." in public and "<script>alert(1)" not in public
    _, hidden = card_form(member, world)
    again = {**hidden, **{k: v for k, v in body.items() if k in (
        "intended_use", "metrics")}}
    r = member.post(f"/lab/models/{world.model_a}", headers=HTML, follow_redirects=False,
                    data=again)
    assert r.headers["location"].endswith("?done=card-unchanged")
    assert model_api(member, world)["version"] == 2


def test_a_stale_card_is_refused_in_the_page_keeping_what_was_typed(member, world):
    _, hidden = card_form(member, world)
    # Someone else saves first, over the API.
    assert member.patch(f"/api/v1/models/{world.model_a}", headers=world.a_admin.headers,
                        json={"version": 1, "card": {"factors": "Theirs."}}).status_code == 200
    r = member.post(f"/lab/models/{world.model_a}", headers=HTML,
                    data={**hidden, "factors": "Mine, typed with care."})
    assert r.status_code == 409
    assert "version 1 is stale" in r.text
    assert ">Mine, typed with care.</textarea>" in r.text
    assert "<pre>Theirs.</pre>" in r.text  # the text saved meanwhile, beside it
    assert model_api(member, world)["factors"] == "Theirs."
    # The page now carries the current version: saving again is a choice, and works.
    hidden = {"version": re.search(r'name="version" value="(\d+)"', r.text).group(1),
              "_csrf_token": token_of(r.text)}
    assert hidden["version"] == "2"
    r = member.post(f"/lab/models/{world.model_a}", headers=HTML, follow_redirects=False,
                    data={**hidden, "factors": "Mine, typed with care."})
    assert r.status_code == 303
    assert model_api(member, world)["factors"] == "Mine, typed with care."


def test_an_invalid_card_names_the_field_and_keeps_the_text(member, world):
    _, hidden = card_form(member, world)
    long = "x" * 100_001
    r = member.post(f"/lab/models/{world.model_a}", headers=HTML,
                    data={**hidden, "training_data": long, "metrics": "kept"})
    assert r.status_code == 422
    assert "<code>training_data</code>" in r.text and ">kept</textarea>" in r.text
    assert model_api(member, world)["version"] == 1


def test_only_the_labs_members_edit_and_every_write_needs_the_token(client, member, world):
    assert member.get(f"/lab/models/{world.model_b}", headers=HTML).status_code == 403
    _, hidden = card_form(member, world)
    r = member.post(f"/lab/models/{world.model_b}", headers=HTML, data={**hidden,
                                                                         "metrics": "x"})
    assert r.status_code == 403
    r = member.post(f"/lab/models/{world.model_a}", headers=HTML,
                    data={"version": "1", "metrics": "no token"})
    assert r.status_code == 403
    assert model_api(member, world)["metrics"] == ""
    assert done_message("card-saved") == "Model card saved."
    assert done_message("checkpoint-uploaded").startswith("Checkpoint uploaded")


# --- checkpoint upload -------------------------------------------------------------------

def upload_form(client, world, **params):
    page = client.get(f"/lab/models/{world.model_a}/checkpoints/new", params=params,
                      headers=HTML)
    assert page.status_code == 200, page.text
    assert 'enctype="multipart/form-data"' in page.text
    return page.text


def post_upload(client, world, token: str, files: dict[str, bytes], **fields):
    data = {"_csrf_token": token, "name": "step-1", "access_level": "public", "stage": "",
            **fields}
    parts = [("files", (name, content, "application/octet-stream"))
             for name, content in files.items()]
    return client.post(f"/lab/models/{world.model_a}/checkpoints/new", headers=HTML,
                       data=data, files=parts, follow_redirects=False)


def test_upload_a_checkpoint_folder_to_a_plan_stage(member, world, files):
    plan_id = world.plan(filed=True)
    text = upload_form(member, world, stage=f"{plan_id}:2")
    assert re.search(rf'<option value="{plan_id}:2" selected>', text)
    r = post_upload(member, world, token_of(text), files, name="355M",
                    access_level="partners", stage=f"{plan_id}:2")
    assert r.status_code == 303, r.text
    assert r.headers["location"] == f"/lab/models/{world.model_a}?done=checkpoint-uploaded"
    page = member.get(r.headers["location"], headers=HTML).text
    assert "Checkpoint uploaded; its evaluations are queued." in page
    assert "<td>355M</td><td>partners</td>" in page
    (ckpt,) = member.get("/api/v1/checkpoints?model=lab-a/m",
                         headers=world.a_member.headers).json()["items"]
    assert ckpt["name"] == "355M" and ckpt["access_level"] == "partners"
    assert ckpt["stage"] == {"plan": plan_id, "stage": 2, "name": "355M"}
    assert {e["name"] for e in ckpt["manifest"]} == set(files)
    runs = member.get(f"/api/v1/evals/runs?checkpoint_id={ckpt['id']}",
                      headers=world.a_member.headers).json()["items"]
    assert runs  # queued like an API upload
    # The plan's page links each stage to this form.
    plan_page = member.get(f"/lab/plans/{plan_id}", headers=HTML).text
    assert f"/lab/models/{world.model_a}/checkpoints/new?stage={plan_id}:1" in plan_page


def test_a_refused_upload_shows_why_and_keeps_the_fields(member, world, files):
    token = token_of(upload_form(member, world))
    assert post_upload(member, world, token, files).status_code == 303
    # The name is taken: refused before the files are read, the fields kept.
    r = post_upload(member, world, token, files, access_level="internal")
    assert r.status_code == 409
    assert "already exists" in r.text and 'value="step-1"' in r.text
    assert '<option value="internal" selected>' in r.text
    assert "choose them again" in r.text
    # A pickle is refused by name, nothing stored.
    r = post_upload(member, world, token, {**files, "pytorch_model.bin": b"\x80\x02}q"},
                    name="step-2")
    assert r.status_code == 422 and "pytorch_model.bin" in r.text
    # A file input left empty is sent as one part with no name and no content.
    r = post_upload(member, world, token, {"": b""}, name="step-3")
    assert r.status_code == 422 and "config.json" in r.text
    r = post_upload(member, world, token, files, name="bad name!")
    assert r.status_code == 422 and "<code>name</code>" in r.text
    r = post_upload(member, world, token, files, name="step-4", stage="999:1")
    assert r.status_code == 422 and "no stage 1" in r.text
    names = [c["name"] for c in member.get("/api/v1/checkpoints?model=lab-a/m",
                                           headers=world.a_member.headers).json()["items"]]
    assert names == ["step-1"]


def test_an_upload_without_the_token_or_to_another_lab_is_refused(member, world, files):
    token = token_of(upload_form(member, world))
    assert post_upload(member, world, "", files).status_code == 403
    assert post_upload(member, world, token[:-2] + "xx", files).status_code == 403
    r = member.post(f"/lab/models/{world.model_b}/checkpoints/new", headers=HTML,
                    data={"_csrf_token": token, "name": "x", "access_level": "public"},
                    files=[("files", ("config.json", b"{}", "application/json"))])
    assert r.status_code == 403
    assert member.get(f"/lab/models/{world.model_b}/checkpoints/new",
                      headers=HTML).status_code == 403
    r = member.post(f"/lab/models/{world.model_a}/checkpoints/new", headers={
        **HTML, "Origin": "https://evil.example"}, data={"_csrf_token": token, "name": "x"},
        files=[("files", ("config.json", b"{}", "application/json"))])
    assert r.status_code == 403
    assert member.get("/api/v1/checkpoints?model=lab-a/m",
                      headers=world.a_member.headers).json()["items"] == []


BOUNDARY = "sgformboundary"


def _stream(app, path: str, cookies: dict, fields: dict, chunks: int) -> tuple[int, int]:
    """POST a multipart body of `fields`, then one file part of up to `chunks` MiB,
    through the ASGI interface; returns (status, MiB the server pulled)."""
    head = "".join(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n'
                   f'{v}\r\n' for k, v in fields.items())
    head += (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; '
             'filename="model.safetensors"\r\n\r\n')
    pulled, sent = 0, []

    async def receive():
        nonlocal pulled
        pulled += 1
        if pulled == 1:
            return {"type": "http.request", "body": head.encode(), "more_body": True}
        return {"type": "http.request", "body": b"\0" * MiB, "more_body": pulled <= chunks}

    async def send(message):
        sent.append(message)

    cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(),
             "root_path": "", "query_string": b"", "client": ("127.0.0.1", 5000),
             "server": ("testserver.local", 80),
             "headers": [(b"host", b"testserver.local"), (b"accept", b"text/html"),
                         (b"cookie", cookie.encode()),
                         (b"content-type",
                          f"multipart/form-data; boundary={BOUNDARY}".encode())]}
    # A thread of its own: a browser test earlier in this process (Playwright's sync API)
    # leaves an event loop running in this one, where asyncio.run() refuses to start.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, app(scope, receive, send)).result()
    return next(m for m in sent if m["type"] == "http.response.start")["status"], pulled


def test_refusals_come_before_the_files_are_read(app, member, world, settings):
    token = token_of(upload_form(member, world))
    cookies = dict(member.cookies.items())
    path = f"/lab/models/{world.model_a}/checkpoints/new"
    # 2 GiB offered each time; each refusal comes after the fields, not after the file.
    for fields, status in (({"_csrf_token": "forged", "name": "big"}, 403),
                           ({"_csrf_token": token, "name": "bad name!"}, 422)):
        got, pulled = _stream(app, path, cookies, fields, chunks=2048)
        assert got == status and pulled <= 2, (fields, got, pulled)
    got, pulled = _stream(app, f"/lab/models/{world.model_b}/checkpoints/new", cookies,
                          {"_csrf_token": token, "name": "big"}, chunks=2048)
    assert got == 403 and pulled <= 2
    tmp = Path(settings.data_dir) / "blobs" / "tmp"
    assert not tmp.exists() or not any(tmp.iterdir())


def test_big_files_stream_past_the_frameworks_body_limit_and_the_upload_limit_holds(
        member, world, files, monkeypatch):
    token = token_of(upload_form(member, world))
    # 12 MiB, over Litestar's default 10 MB body limit: read to the end and checked by
    # content (not safetensors), not refused for its size.
    big = {**files, "model.safetensors": b"\0" * (12 * MiB)}
    r = post_upload(member, world, token, big)
    assert r.status_code == 422 and "model.safetensors" in r.text, r.text[:500]
    # Over the registry's own limit: refused, and the page can be sent again.
    monkeypatch.setenv("STAGEGATE_MAX_UPLOAD_BYTES", str(4 * MiB))
    r = post_upload(member, world, token, big)
    assert r.status_code == 413 and "larger than the limit" in r.text
    assert token_of(r.text)


# --- in a browser, JavaScript off --------------------------------------------------------

def test_card_and_upload_forms_work_in_chromium_without_javascript(
        browser, live_server, world, people, files, tmp_path, backend, axe):  # noqa: F811
    if backend != "sqlite":
        pytest.skip("the browser's part is the same on both databases")
    folder = tmp_path / "hf-folder"
    folder.mkdir()
    for name, content in files.items():
        (folder / name).write_bytes(content)
    context = browser.new_context(base_url=live_server, java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto("/console/login?next=/lab/")
        page.fill("#username", "a_member")
        page.fill("#password", f"{PASSWORD} a_member")
        page.click("button:has-text('Sign in')")
        page.click(f"a[href='/lab/models/{world.model_a}']")
        page.fill("#card-intended_use", "Studying **staged** release.")
        page.click("button:has-text('Save the card')")
        assert page.locator("p.notice").inner_text() == "Model card saved."
        page.click("a.button:has-text('Upload a checkpoint')")
        page.fill("#name", "124M")
        page.select_option("#access_level", "public")
        page.set_input_files("#files", sorted(str(p) for p in folder.iterdir()))
        page.click("button:has-text('Upload')")
        assert page.locator("p.notice").inner_text().startswith("Checkpoint uploaded")
        assert "124M" in page.locator("table").first.inner_text()
        public = context.new_page()
        public.goto("/models/lab-a/m")
        assert "<strong>staged</strong>" in public.content()
    finally:
        context.close()
    # The pages pass axe's serious and critical checks (axe itself needs JavaScript).
    context = browser.new_context(base_url=live_server)
    try:
        page = context.new_page()
        page.goto("/console/login?next=/lab/")
        page.fill("#username", "a_member")
        page.fill("#password", f"{PASSWORD} a_member")
        page.click("button:has-text('Sign in')")
        page.wait_for_url("**/lab/")
        for path in ("/lab/", f"/lab/models/{world.model_a}",
                     f"/lab/models/{world.model_a}/checkpoints/new"):
            page.goto(path)
            assert axe(page) == [], path
    finally:
        context.close()
