"""`stagegate checkpoint ...`: upload and list hosted checkpoints from the console."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import click

from app.auth.principal import SYSTEM


@click.group()
def checkpoint() -> None:
    """Hosted checkpoints."""


@checkpoint.command("upload")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--model", required=True, help="LAB/MODEL the checkpoint belongs to")
@click.option("--name", required=True, help="checkpoint name, unique within the model")
@click.option("--access", type=click.Choice(["public", "partners", "internal"]),
              default="internal", show_default=True)
@click.option("--user", "user_name", help="upload as this user (default: the console operator)")
@click.option("--no-eval", is_flag=True, help="do not queue the model's evaluation suites")
def upload(directory: Path, model: str, name: str, access: str, user_name: str | None,
           no_eval: bool) -> None:
    """Upload every file in DIRECTORY, checked exactly as an API upload is."""
    from app.auth.service import get_user, principal_for_user
    from app.checkpoints.schemas import CheckpointCreate
    from app.checkpoints.service import upload_checkpoint
    from app.db import session_scope

    data = CheckpointCreate(model=model, name=name, access_level=access)
    paths = sorted(p for p in directory.iterdir() if p.is_file() and not p.name.startswith("."))
    with ExitStack() as stack, session_scope() as session:
        actor = principal_for_user(session, get_user(session, user_name)) if user_name \
            else SYSTEM
        files = [(p.name, stack.enter_context(p.open("rb"))) for p in paths]
        ckpt = upload_checkpoint(session, actor, data, files, enqueue=not no_eval)
        click.echo(f"checkpoint {ckpt.id} {model}@{name} ({access}): "
                   f"{ckpt.parameter_count:,} parameters, {len(files)} files, "
                   f"manifest {ckpt.manifest_digest[:12]}")


@checkpoint.command("list")
@click.option("--model", help="LAB/MODEL")
def list_checkpoints(model: str | None) -> None:
    from app.checkpoints.service import list_checkpoints as list_all
    from app.db import session_scope
    from app.pagination import PageRequest

    with session_scope(write=False) as session:
        rows, _ = list_all(session, SYSTEM, PageRequest(limit=200), model=model)
        for c in rows:
            click.echo(f"{c.id}\t{c.name}\t{c.access_level}\t{c.parameter_count}\t"
                       f"{c.manifest_digest[:12]}")
