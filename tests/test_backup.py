"""`stagegate backup` / `restore`: a consistent snapshot of the database, blobs and token
key, checked by restoring it into an empty registry and using it (both databases)."""

from __future__ import annotations

import hashlib
import stat
import tarfile

from click.testing import CliRunner
from litestar.testing import TestClient

from app import create_app
from app.cli import main
from app.db import engine_for, upgrade
from app.settings import Settings, configure
from tests.checkpoints.tiny import tiny_gpt2
from tests.conftest import drop_database_url, empty_database_url


def _cli(*args):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.output


def test_backup_then_restore_into_an_empty_registry(backend, settings, world, client,
                                                    tmp_path):
    src = tiny_gpt2(tmp_path)
    files = [("files", (p.name, p.read_bytes())) for p in sorted(src.iterdir())]
    up = client.post("/api/v1/checkpoints", files=files, headers=world.a_member.headers,
                     data={"model": "lab-a/m", "name": "c1", "access_level": "public"})
    assert up.status_code == 201, up.text
    plan = client.post("/api/v1/plans", headers=world.a_member.headers, json={
        "model": "lab-a/m", "title": "Kept", "file": True,
        "stages": [{"name": "s", "access_level": "api"}]}).json()
    archive = tmp_path / "backup.tar"
    code, out = _cli("backup", archive)
    assert code == 0, out
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600  # it holds the token key
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert "secret.key" in names and sum(n.startswith("blobs/") for n in names) == len(files)

    # A fresh, empty registry elsewhere (another data folder, another database).
    fresh_dir = tmp_path / "fresh"
    url = empty_database_url(backend, fresh_dir / "stagegate.db", "sg_r")
    restored = configure(Settings(data_dir=fresh_dir, database_url=url,
                                  inprocess_worker=False))
    try:
        upgrade(url)
        code, out = _cli("restore", archive)
        assert code == 0, out
        assert f"from {archive}" in out
        # Restoring over data is refused unless asked for.
        code, out = _cli("restore", archive)
        assert code == 2 and "--force" in out
        with TestClient(create_app(restored)) as fresh:
            # Tokens still verify (the key came along), plans and files are there.
            me = fresh.get("/api/v1/me", headers=world.a_member.headers)
            assert me.status_code == 200 and me.json()["name"] == "a_member"
            assert fresh.get(f"/api/v1/plans/{plan['id']}").json()["title"] == "Kept"
            cid = up.json()["id"]
            for path in src.iterdir():
                body = fresh.get(f"/api/v1/checkpoints/{cid}/files/{path.name}")
                assert body.status_code == 200
                assert hashlib.sha256(body.content).digest() == \
                    hashlib.sha256(path.read_bytes()).digest()
    finally:
        engine_for(url).dispose()
        engine_for.cache_clear()
        configure(settings)
        drop_database_url(url)


def test_restore_refuses_what_is_not_a_backup(settings, tmp_path):
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not a tar file at all" * 100)
    code, out = _cli("restore", junk)
    assert code == 2 and out.startswith("error (file):") and out.count("\n") == 1
