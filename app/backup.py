"""`stagegate backup` / `stagegate restore`: the database, the blobs and the token key.

A backup is one tar file: `stagegate-backup.json` (what it holds), the database
(`database.sqlite` from SQLite's online backup API, or `database.pgdump` from pg_dump's
custom format, a consistent snapshot of a running server), `secret.key` (without it no
stored token hash verifies), `log.key` (the transparency log's signing key: a restored
registry must sign with the key monitors pinned) and `blobs/`. The database is read first and the blobs after:
blobs are content-addressed and written before the row that names them, and never
rewritten, so every blob the snapshot names is already on disk when it is copied.

With object storage (STAGEGATE_BLOB_URL=s3://...) the blobs are not copied: a bucket is
kept safe by its own versioning or replication, which a tar file on this machine cannot
replace at that size. The backup then names the bucket, and `restore` checks that every
blob the restored database names is in the bucket, and says which are not. A backup of
the local folder restored into a registry with object storage uploads its blobs there
(the way from one machine to object storage).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from pathlib import Path

import click

from app.errors import Invalid

MANIFEST = "stagegate-backup.json"
FORMAT = 1


def _sqlite_path(url: str) -> Path | None:
    return Path(url.split("///", 1)[-1]) if url.startswith("sqlite") else None


def _libpq(url: str) -> str:
    """SQLAlchemy's `postgresql+psycopg://` is a libpq URI without the driver part."""
    scheme, rest = url.split("://", 1)
    return f"{scheme.split('+', 1)[0]}://{rest}"


def _run(args: list[str]) -> None:
    if shutil.which(args[0]) is None:
        raise Invalid(f"{args[0]} is not installed; it is needed for PostgreSQL backups",
                      field="database")
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["failed"])[-1]
        raise Invalid(f"{args[0]}: {last}", field="database")


def create_backup(settings, target: Path) -> dict:
    """Write a backup of `settings`' registry to `target` (a .tar file); return its summary."""
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        work = Path(tmp)
        db_path = _sqlite_path(settings.database_url)
        if db_path:
            source = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
            dest = sqlite3.connect(work / "database.sqlite")
            with dest:
                source.backup(dest)  # online: a consistent copy while the server writes
            source.close()
            dest.close()
            db_file, kind = "database.sqlite", "sqlite"
        else:
            _run(["pg_dump", "--format=custom", "--no-owner", "--file",
                  str(work / "database.pgdump"), _libpq(settings.database_url)])
            db_file, kind = "database.pgdump", "postgresql"
        in_bucket = bool(getattr(settings, "blob_url", ""))
        blobs = sorted(p for p in settings.blob_dir.glob("??/*") if p.is_file()) \
            if settings.blob_dir.exists() and not in_bucket else []
        summary = {"format": FORMAT, "database": kind, "database_file": db_file,
                   "revision": _revision(settings.database_url),
                   "blobs": len(blobs), "blob_bytes": sum(p.stat().st_size for p in blobs)}
        if in_bucket:
            # Not copied (module docstring); what the snapshot names, and where it is.
            summary["blob_store"] = settings.blob_url
            summary["blobs_in_store"] = len(_named_blobs(settings))
        (work / MANIFEST).write_text(json.dumps(summary, indent=2))
        partial = target.with_name(target.name + ".part")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w") as tar:
            tar.add(work / MANIFEST, MANIFEST)
            tar.add(work / db_file, db_file)
            key = settings.data_dir / "secret.key"
            if key.exists():
                tar.add(key, "secret.key")
            if settings.log_key_path.exists():
                tar.add(settings.log_key_path, "log.key")
            for blob in blobs:
                tar.add(blob, f"blobs/{blob.parent.name}/{blob.name}")
        partial.replace(target)
    return summary


def restore_backup(settings, source: Path, *, force: bool = False) -> dict:
    """Restore `source` into `settings`' (stopped) registry; refuses a non-empty one
    unless `force`."""
    from app.db import engine_for

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        try:
            with tarfile.open(source) as tar:
                tar.extractall(work, filter="data")  # refuses absolute paths, links out
        except tarfile.TarError:
            raise Invalid(f"{source}: not a stagegate backup (not a tar file)",
                          field="file") from None
        try:
            summary = json.loads((work / MANIFEST).read_text())
        except (OSError, ValueError):
            raise Invalid(f"{source}: not a stagegate backup (no {MANIFEST})",
                          field="file") from None
        if summary.get("format") != FORMAT:
            raise Invalid(f"{source}: backup format {summary.get('format')} is not "
                          f"{FORMAT}", field="file")
        db_path = _sqlite_path(settings.database_url)
        if (summary["database"] == "sqlite") != bool(db_path):
            raise Invalid(f"{source} holds a {summary['database']} database; this registry "
                          "uses the other kind", field="database")
        if not force and _has_data(settings):
            raise Invalid("the target registry already holds data; stop it and pass "
                          "--force to replace it", field="database")
        engine_for.cache_clear()
        if db_path:
            db_path.parent.mkdir(parents=True, exist_ok=True)
            src = sqlite3.connect(work / summary["database_file"])
            dest = sqlite3.connect(db_path)
            with dest:
                src.backup(dest)
            src.close()
            dest.close()
        else:
            _run(["pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction",
                  "--dbname", _libpq(settings.database_url),
                  str(work / summary["database_file"])])
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        if (work / "secret.key").exists():
            key = settings.data_dir / "secret.key"
            shutil.copyfile(work / "secret.key", key)
            key.chmod(0o600)
        if (work / "log.key").exists():
            settings.log_key_path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(work / "log.key", settings.log_key_path)
            settings.log_key_path.chmod(0o600)
        if getattr(settings, "blob_url", ""):
            summary["missing_blobs"] = _restore_into_bucket(settings, work / "blobs")
            return summary
        for blob in sorted((work / "blobs").glob("??/*")):
            dest_blob = settings.blob_dir / blob.parent.name / blob.name
            dest_blob.parent.mkdir(parents=True, exist_ok=True)
            if not dest_blob.exists():
                shutil.copyfile(blob, dest_blob)
    return summary


def _named_blobs(settings) -> set[str]:
    from sqlmodel import Session

    from app.checkpoints.service import referenced_blobs
    from app.db import engine_for

    with Session(engine_for(settings.database_url)) as session:
        return referenced_blobs(session)


def _restore_into_bucket(settings, folder: Path) -> list[str]:
    """Upload the backup's blobs (a local-folder backup) that the bucket lacks; return
    the SHA-256s the restored database names that the bucket still does not hold."""
    from app.checkpoints.service import blob_store

    store = blob_store(settings)
    held = {b.sha256 for b in store.blobs()}
    for blob in sorted(folder.glob("??/*")):
        if blob.name not in held:
            store.commit(blob, blob.name)  # uploads, then removes the extracted copy
            held.add(blob.name)
    return sorted(_named_blobs(settings) - held)


def _revision(url: str) -> str | None:
    from sqlalchemy import text

    from app.db import engine_for

    with engine_for(url).connect() as conn:
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _has_data(settings) -> bool:
    from sqlalchemy import inspect, text

    from app.db import engine_for

    engine = engine_for(settings.database_url)
    if "lab" not in inspect(engine).get_table_names():
        return False
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM lab")).scalar() > 0


@click.command()
@click.argument("target", type=click.Path(dir_okay=False, path_type=Path))
def backup(target: Path) -> None:
    """Write a consistent backup of this machine's registry (database, blobs, token key)
    to TARGET, a tar file readable only by you; safe while the server runs (operator)."""
    from app.settings import get_settings

    summary = create_backup(get_settings(), target)
    if "blob_store" in summary:
        click.echo(f"backed up the {summary['database']} database (revision "
                   f"{summary['revision']}) to {target}; its {summary['blobs_in_store']} "
                   f"blobs were NOT copied: they stay in {summary['blob_store']}, which the "
                   "bucket's versioning or replication must protect")
        return
    click.echo(f"backed up the {summary['database']} database (revision "
               f"{summary['revision']}) and {summary['blobs']} blobs to {target}")


@click.command()
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="replace a registry that already holds data")
def restore(source: Path, force: bool) -> None:
    """Restore a backup into this machine's registry; stop the server first (operator)."""
    from app.settings import get_settings

    settings = get_settings()
    summary = restore_backup(settings, source, force=force)
    blobs = f"{summary['blobs']} blobs" if "blob_store" not in summary else \
        f"no blobs (they were in {summary['blob_store']})"
    click.echo(f"restored the {summary['database']} database (revision "
               f"{summary['revision']}) and {blobs} from {source}")
    if missing := summary.get("missing_blobs"):
        raise Invalid(f"{len(missing)} blobs the restored database names are not in "
                      f"{settings.blob_url} (first: {missing[0]}): recover them from the "
                      "bucket's versions or its replica; checkpoints naming them cannot be "
                      "downloaded or evaluated until then", field="blobs")
