"""`stagegate model ...` and `stagegate card export`: models and their cards over HTTP."""

from __future__ import annotations

import click

from app.clikit import Fail, as_json_option, emit, limit_option, remote

COLUMNS = ["id", "lab", "slug", "name", "public", "licence", "version"]


def resolve_model(client, ref: str) -> dict:
    """A model by id or LAB/MODEL, as the API's `model` filters accept them."""
    if ref.isdigit():
        return client.get(f"/api/v1/models/{ref}")
    lab, _, slug = ref.partition("/")
    if not slug:
        raise Fail(f"model {ref!r}: give LAB/MODEL or a model id")
    for item in client.items("/api/v1/models/", None, lab=lab):
        if item["slug"] == slug:
            return item
    raise Fail(f"no model {ref!r} (or you may not see it)")


@click.group()
def model() -> None:
    """Models (over HTTP)."""


@model.command("create")
@click.argument("ref", metavar="LAB/SLUG")
@click.option("--name", required=True, help="display name")
@click.option("--licence", "--license", "licence", help="licence identifier (API: licence)")
@click.option("--architecture")
@click.option("--private", is_flag=True, help="visible to the lab only (API: public=false)")
@as_json_option
@remote
def model_create(client, ref: str, name: str, licence: str | None,
                 architecture: str | None, private: bool, as_json: bool) -> None:
    """Register a model of your lab."""
    lab, _, slug = ref.partition("/")
    if not slug:
        raise Fail("give the model as LAB/SLUG, e.g. my-lab/my-model")
    body = {"lab": lab, "slug": slug, "name": name, "public": not private}
    body |= {k: v for k, v in {"licence": licence, "architecture": architecture}.items() if v}
    created = client.post("/api/v1/models/", body)
    if as_json:
        return emit(created, True)
    click.echo(f"model {created['id']} {created['lab']}/{created['slug']}: {created['name']}")


@model.command("list")
@click.option("--lab", help="lab slug")
@limit_option
@as_json_option
@remote
def model_list(client, lab: str | None, limit: int, as_json: bool) -> None:
    """Models you may see."""
    emit(list(client.items("/api/v1/models/", limit, lab=lab)), as_json, COLUMNS)


@model.command("show")
@click.argument("ref", metavar="MODEL")
@as_json_option
@remote
def model_show(client, ref: str, as_json: bool) -> None:
    """One model (MODEL is LAB/SLUG or an id)."""
    body = resolve_model(client, ref)
    emit(body, as_json, None if as_json else COLUMNS + ["architecture", "parameter_count",
                                                       "updated_at"])


@click.group()
def card() -> None:
    """Model cards (over HTTP)."""


@card.command("export")
@click.argument("ref", metavar="MODEL")
@click.option("--checkpoint", "checkpoint_id", type=int,
              help="the README of one checkpoint (one Hub repository) instead")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True),
              help="write to this file (default: standard output)")
@remote
def card_export(client, ref: str, checkpoint_id: int | None, output: str | None) -> None:
    """Export a model card as Hugging Face README.md (YAML metadata + Markdown)."""
    if checkpoint_id is not None:
        # MODEL still names the model: a checkpoint of another one is refused, never
        # exported under the wrong name.
        ckpt = client.get(f"/api/v1/checkpoints/{checkpoint_id}")
        if ref not in (ckpt["model"], str(ckpt["model_id"])):
            raise Fail(f"checkpoint {checkpoint_id} belongs to {ckpt['model']}, not {ref}")
        path = f"/api/v1/checkpoints/{checkpoint_id}/card.md"
    else:
        path = f"/api/v1/models/{resolve_model(client, ref)['id']}/card.md"
    text = client.request("GET", path).text
    if output:
        with open(output, "w", encoding="utf-8") as f:
            f.write(text)
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text, nl=False)
