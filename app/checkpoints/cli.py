"""`stagegate checkpoint ...`: upload, list, show, download hosted checkpoints over HTTP."""

from __future__ import annotations

import hashlib
from pathlib import Path

import click

from app.clikit import Fail, as_json_option, emit, limit_option, remote

ACCESS = click.Choice(["public", "partners", "internal"])
COLUMNS = ["id", "model", "name", "access_level", "parameter_count", "total_bytes"]


@click.group()
def checkpoint() -> None:
    """Hosted checkpoints (over HTTP)."""


class _Progress:
    """A file-like wrapper that advances a progress bar as httpx reads it."""

    def __init__(self, f, bar) -> None:
        self.f, self.bar = f, bar

    def read(self, n: int = -1) -> bytes:
        chunk = self.f.read(n)
        self.bar.update(len(chunk))
        return chunk

    def __getattr__(self, name):
        return getattr(self.f, name)


@checkpoint.command("upload")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--model", required=True, help="LAB/MODEL the checkpoint belongs to")
@click.option("--name", required=True, help="checkpoint name, unique within the model")
@click.option("--access-level", "--access", "access_level", type=ACCESS, default="internal",
              show_default=True, help="who may download it (API field access_level)")
@click.option("--stage", "stage", metavar="PLAN:N", callback=lambda c, p, v: _stage_ref(v),
              help="attach it to stage N of plan PLAN (a plan of the same model)")
@click.option("--no-progress", is_flag=True, help="no progress bar")
@as_json_option
@remote
def upload(client, directory: Path, model: str, name: str, access_level: str,
           stage: tuple[int, int] | None, no_progress: bool, as_json: bool) -> None:
    """Upload every file in DIRECTORY (e.g. a Hugging Face snapshot); the registry checks
    it exactly as an API upload (safetensors only, never pickles or remote code)."""
    paths = sorted(p for p in directory.iterdir() if p.is_file() and not p.name.startswith(".")
                   or p.name == ".gitattributes" and p.is_file())
    total = sum(p.stat().st_size for p in paths)
    handles = [p.open("rb") for p in paths]
    try:
        with click.progressbar(length=total, label=f"uploading {len(paths)} files",
                               file=click.get_text_stream("stderr"),
                               hidden=no_progress or as_json) as bar:
            files = [("files", (p.name, _Progress(f, bar), "application/octet-stream"))
                     for p, f in zip(paths, handles)]
            fields = {"model": model, "name": name, "access_level": access_level}
            if stage:
                fields.update(plan=str(stage[0]), stage=str(stage[1]))
            body = client.request("POST", "/api/v1/checkpoints/", files=files,
                                  data=fields).json()
    finally:
        for f in handles:
            f.close()
    if as_json:
        return emit(body, True)
    click.echo(f"checkpoint {body['id']} {model}@{name} ({body['access_level']}): "
               f"{body['parameter_count']:,} parameters, {len(paths)} files, "
               f"manifest {body['manifest_digest'][:12]}{_stage_words(body)}")


def _stage_ref(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    plan, _, position = value.partition(":")
    if not (plan.isdigit() and position.isdigit()):
        raise click.BadParameter(f"{value!r}: give PLAN:N, e.g. 2:3 for stage 3 of plan 2")
    return int(plan), int(position)


def _stage_words(body: dict) -> str:
    stage = body.get("stage")
    return f", stage {stage['stage']} ({stage['name']}) of plan {stage['plan']}" if stage else ""


@checkpoint.command("attach")
@click.argument("checkpoint_id", type=int)
@click.argument("stage", metavar="PLAN:N")
@as_json_option
@remote
def attach(client, checkpoint_id: int, stage: str, as_json: bool) -> None:
    """Attach a checkpoint to stage N of plan PLAN: a stage-scoped agreement then grants
    it to its partners, and the release gate reads it as the stage's checkpoint."""
    plan, position = _stage_ref(stage)
    body = client.request("PUT", f"/api/v1/checkpoints/{checkpoint_id}/stage",
                          json={"plan": plan, "stage": position}).json()
    if as_json:
        return emit(body, True)
    click.echo(f"checkpoint {body['id']} attached{_stage_words(body)}")


@checkpoint.command("detach")
@click.argument("checkpoint_id", type=int)
@as_json_option
@remote
def detach(client, checkpoint_id: int, as_json: bool) -> None:
    """Detach a checkpoint from its stage."""
    body = client.request("DELETE", f"/api/v1/checkpoints/{checkpoint_id}/stage").json()
    if as_json:
        return emit(body, True)
    click.echo(f"checkpoint {body['id']} is attached to no stage")


@checkpoint.command("list")
@click.option("--model", help="LAB/MODEL")
@limit_option
@as_json_option
@remote
def list_checkpoints(client, model: str | None, limit: int, as_json: bool) -> None:
    """Checkpoints you may see."""
    emit(list(client.items("/api/v1/checkpoints/", limit, model=model)), as_json, COLUMNS)


@checkpoint.command("show")
@click.argument("checkpoint_id", type=int)
@as_json_option
@remote
def show(client, checkpoint_id: int, as_json: bool) -> None:
    """One checkpoint and its files."""
    body = client.get(f"/api/v1/checkpoints/{checkpoint_id}")
    if as_json:
        return emit(body, True)
    emit(body, False, [k for k in COLUMNS + ["manifest_digest", "architecture"] if k in body])
    click.echo("")
    emit(body.get("manifest") or body.get("files") or [], False, ["name", "size", "sha256"])


@checkpoint.command("download")
@click.argument("checkpoint_id", type=int)
@click.option("--to", "dest", type=click.Path(file_okay=False, path_type=Path),
              default=Path("."), show_default=True, help="folder to write the files into")
@click.option("--no-progress", is_flag=True, help="no progress bar")
@remote
def download(client, checkpoint_id: int, dest: Path, no_progress: bool) -> None:
    """Download every file of a checkpoint, checking each file's SHA-256."""
    from app.client import ApiError

    try:
        body = client.get(f"/api/v1/checkpoints/{checkpoint_id}")
    except ApiError as exc:
        if exc.status == 404:
            # A partner whose agreement ended no longer sees the checkpoint; its file
            # route says why (403) where that tells them nothing new, else the same 404.
            client.stream(f"/api/v1/checkpoints/{checkpoint_id}/files/config.json").close()
        raise
    entries = body.get("manifest") or body.get("files") or []
    total = sum(e.get("size", 0) for e in entries)
    # The first file is asked for before the folder and the bar appear: a refused
    # download (403, with the reason) leaves nothing behind and prints only the error.
    first = client.stream(f"/api/v1/checkpoints/{checkpoint_id}/files/{entries[0]['name']}") \
        if entries else None
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except BaseException:
        if first is not None:
            first.close()
        raise
    with click.progressbar(length=total, label=f"downloading {len(entries)} files",
                           file=click.get_text_stream("stderr"), hidden=no_progress) as bar:
        for entry in entries:
            target = dest / Path(entry["name"]).name
            sha = hashlib.sha256()
            part = target.with_name(target.name + ".part")
            response, first = first or client.stream(
                f"/api/v1/checkpoints/{checkpoint_id}/files/{entry['name']}"), None
            try:
                with part.open("wb") as out:
                    for chunk in response.iter_bytes(1 << 20):
                        out.write(chunk)
                        sha.update(chunk)
                        bar.update(len(chunk))
            finally:
                response.close()
            if entry.get("sha256") and sha.hexdigest() != entry["sha256"]:
                part.unlink()
                raise Fail(f"{entry['name']}: SHA-256 does not match the "
                                           "manifest; nothing kept")
            part.replace(target)
    click.echo(f"downloaded {len(entries)} files to {dest}")


@checkpoint.command("access")
@click.argument("checkpoint_id", type=int)
@click.argument("access_level", type=ACCESS)
@as_json_option
@remote
def access(client, checkpoint_id: int, access_level: str, as_json: bool) -> None:
    """Change who may download a checkpoint (any member of its lab, as at upload)."""
    body = client.patch(f"/api/v1/checkpoints/{checkpoint_id}",
                        {"access_level": access_level})
    if as_json:
        return emit(body, True)
    click.echo(f"checkpoint {body['id']} is now {body['access_level']}")


@click.group()
def blobs() -> None:
    """Checkpoint file storage (operator, on this machine)."""


@blobs.command("clean")
@click.option("--dry-run", is_flag=True, help="list what would be removed; remove nothing")
@click.option("--min-age", "min_age_s", type=click.FloatRange(min=0), default=3600.0,
              show_default=True, help="seconds: younger blobs and uploads are left alone")
@as_json_option
def clean(dry_run: bool, min_age_s: float, as_json: bool) -> None:
    """Remove blobs no checkpoint names and remains of interrupted uploads (staging files,
    incomplete S3 multipart uploads) older than --min-age, from the local folder or the
    STAGEGATE_BLOB_URL bucket. Acts on this machine's registry database (operator); safe
    while the server runs."""
    from app.checkpoints.service import blob_store, clean_blobs
    from app.db import session_scope

    with session_scope(write=False) as session:
        report = clean_blobs(session, blob_store(), dry_run=dry_run, min_age_s=min_age_s)
    if as_json:
        return emit({"store": report.store, "dry_run": dry_run,
                     "orphans": [{"sha256": b.sha256, "size": b.size} for b in report.orphans],
                     "leftovers": [{"what": x.what, "name": x.name} for x in report.leftovers],
                     "referenced": report.referenced, "young": report.young}, True)
    verb = "would remove" if dry_run else "removed"
    for blob in report.orphans:
        click.echo(f"{verb} blob {blob.sha256} ({blob.size:,} bytes, named by no checkpoint)")
    for leftover in report.leftovers:
        click.echo(f"{verb} {leftover.what} {leftover.name}")
    click.echo(f"{report.store}: {verb} {len(report.orphans)} unnamed blobs "
               f"({report.orphan_bytes:,} bytes) and {len(report.leftovers)} upload remains; "
               f"{report.referenced} blobs named by checkpoints, {report.young} unnamed but "
               f"younger than {min_age_s:g} s kept")
