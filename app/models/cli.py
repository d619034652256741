"""`stagegate model ...` and `stagegate card ...`: models and their cards over HTTP."""

from __future__ import annotations

import re

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


# The card's prose sections (app.models.tables.CARD_SECTIONS, spelled out here so the CLI
# loads no ORM), each written in a card file as a `## Heading`, as the README export does.
SECTIONS = ("model_details", "intended_use", "factors", "metrics", "evaluation_data",
            "training_data", "quantitative_analyses", "ethical_considerations",
            "caveats_and_recommendations")
MAX_CARD_FILE = 1_000_000  # nine sections of at most 100,000 characters, with room
_HEADING = re.compile(r"^ {0,3}## +(.*?)(?: +#+)? *$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
# `card show` writes this first line: `card edit` reads the version back from it.
_MARKER = re.compile(r"^<!-- stagegate card (\S+) version ([1-9][0-9]{0,17})\b.*-->\s*$")


def heading(section: str) -> str:
    return section.replace("_", " ").capitalize()


def _section_of(title: str) -> str | None:
    key = re.sub(r"[\s_-]+", "_", title.strip().lower())
    return key if key in SECTIONS else None


def read_card_file(path: str) -> str:
    """The file's text (`-`: standard input), bounded and UTF-8, or one clear error."""
    if path == "-":
        raw = click.get_binary_stream("stdin").read(MAX_CARD_FILE + 1)
    else:
        try:
            with open(path, "rb") as f:
                raw = f.read(MAX_CARD_FILE + 1)
        except OSError as exc:
            raise Fail(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_CARD_FILE:
        raise Fail(f"{path}: larger than {MAX_CARD_FILE} bytes")
    try:
        return raw.decode("utf-8-sig").replace("\r\n", "\n")
    except UnicodeDecodeError:
        raise Fail(f"{path}: not UTF-8 text") from None


def parse_card(text: str, section: str | None = None) -> tuple[dict[str, str], tuple | None]:
    """A card file as {section: Markdown} and the (model, version) of its `card show`
    marker line, if it has one. Without `section`, each `## Model details`-style heading
    (outside code blocks) starts a section; sections the file leaves out stay as they are.
    With `section`, the whole file is that one section."""
    lines = text.split("\n")
    marker = None
    if lines and (m := _MARKER.match(lines[0])):
        marker, lines = (m.group(1), int(m.group(2))), lines[1:]
    if section is not None:
        return {section: _trim(lines)}, marker
    sections: dict[str, list[str]] = {}
    current, fence = None, None
    for number, line in enumerate(lines, start=2 if marker else 1):
        opened = _FENCE.match(line)
        if fence is not None:
            if opened and opened.group(1)[0] == fence[0] and len(opened.group(1)) >= len(fence):
                fence = None
        elif opened:
            fence = opened.group(1)
        elif m := _HEADING.match(line):
            current = _section_of(m.group(1))
            if current is None:
                raise Fail(f"line {number}: unknown section '## {m.group(1)}'; the sections "
                           f"are {', '.join(heading(s) for s in SECTIONS)} (use ### inside "
                           "a section)")
            if current in sections:
                raise Fail(f"line {number}: section '{heading(current)}' appears twice")
            sections[current] = []
            continue
        if current is None:
            if line.strip():
                raise Fail(f"line {number}: text before the first section heading; start "
                           "each section with a heading such as '## Intended use', or give "
                           "--section")
            continue
        sections[current].append(line)
    if not sections:
        raise Fail("no section headings (such as '## Intended use') in the file; give "
                   "--section to put the whole file in one section")
    return {key: _trim(body) for key, body in sections.items()}, marker


def _trim(lines: list[str]) -> str:
    """Blank lines around a section are layout, not prose."""
    while lines and not lines[0].strip():
        lines = lines[1:]
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    return "\n".join(lines)


def card_text(body: dict) -> str:
    """The model's prose as a card file: the marker line, then every section."""
    ref = f"{body['lab']}/{body['slug']}"
    marker = (f"<!-- stagegate card {ref} version {body['version']}: edit, then "
              f"`stagegate card edit {ref} --file THIS_FILE` -->")
    out = [marker, ""]
    for key in SECTIONS:
        out += [f"## {heading(key)}", ""]
        if body.get(key):
            out += [body[key], ""]
    return "\n".join(out)


def full_model(client, ref: str) -> dict:
    """The model with its card prose (lists carry no prose)."""
    return client.get(f"/api/v1/models/{resolve_model(client, ref)['id']}")


def _checked_marker(ref: str, current: dict, marker: tuple | None) -> int | None:
    if marker is None:
        return None
    named = f"{current['lab']}/{current['slug']}"
    if marker[0] not in (named, str(current["id"])):
        raise Fail(f"the file was shown for {marker[0]}, not {named}; remove its first "
                   "line to use it anyway")
    return marker[1]


def save_model(client, ref: str, *, version: int | None, name: str | None = None,
               licence: str | None = None, card_file: str | None = None,
               section: str | None = None) -> tuple[dict, list[str]]:
    """PATCH what changed (optimistic: `version`, else the card file's marker, else the
    version just read); returns the model as the API answers and the fields changed."""
    current = full_model(client, ref)
    card: dict = {}
    if card_file is not None:
        sections, marker = parse_card(read_card_file(card_file), section)
        version = version or _checked_marker(ref, current, marker)
        card = {k: v for k, v in sections.items() if v != (current.get(k) or "")}
    if licence is not None and licence != current.get("licence"):
        card["licence"] = licence
    body: dict = {"version": version or current["version"]}
    if card:
        body["card"] = card
    if name is not None and name != current["name"]:
        body["name"] = name
    changed = sorted(card) + (["name"] if "name" in body else [])
    if not changed:
        if version is not None and version != current["version"]:
            raise Fail(f"version {version} is stale; the current version is "
                       f"{current['version']} (nothing was changed)")
        return current, []
    return client.patch(f"/api/v1/models/{current['id']}", body), changed


def _say_saved(saved: dict, changed: list[str], what: str) -> None:
    ref = f"{saved['lab']}/{saved['slug']}"
    if not changed:
        click.echo(f"{what} {ref} unchanged (version {saved['version']})")
    else:
        words = ", ".join(heading(c).lower() if c in SECTIONS else c for c in changed)
        click.echo(f"{what} {ref} saved (version {saved['version']}): {words}")


version_option = click.option(
    "--version", "version", type=click.IntRange(1, 2**63 - 1),
    help="the version you edited (`model show`); a stale one is refused (409). Default: "
         "the version in a `card show` file's first line, else the current one")


@model.command("edit")
@click.argument("ref", metavar="MODEL")
@click.option("--name", help="display name")
@click.option("--licence", "--license", "licence", help="Hub licence identifier, e.g. mit")
@click.option("--card-file", type=click.Path(dir_okay=False, allow_dash=True),
              help="card prose as Markdown with '## Section' headings (see `card show`)")
@version_option
@as_json_option
@remote
def model_edit(client, ref: str, name: str | None, licence: str | None,
               card_file: str | None, version: int | None, as_json: bool) -> None:
    """Change a model of your lab: name, licence, card prose (MODEL is LAB/SLUG or an id)."""
    if name is None and licence is None and card_file is None:
        raise Fail("nothing to change: give --name, --licence or --card-file")
    if name is not None and not name.strip():
        raise Fail("--name must not be empty")
    saved, changed = save_model(client, ref, version=version, name=name, licence=licence,
                                card_file=card_file)
    if as_json:
        return emit(saved, True)
    _say_saved(saved, changed, "model")


@click.group()
def card() -> None:
    """Model cards (over HTTP)."""


@card.command("show")
@click.argument("ref", metavar="MODEL")
@as_json_option
@remote
def card_show(client, ref: str, as_json: bool) -> None:
    """Print a model card's prose as Markdown, one '## Section' per part, ready for
    `card edit` (its first line records the version shown)."""
    body = full_model(client, ref)
    if as_json:
        return emit(body, True)
    click.echo(card_text(body), nl=False)


@card.command("edit")
@click.argument("ref", metavar="MODEL")
@click.option("--file", "card_file", required=True,
              type=click.Path(dir_okay=False, allow_dash=True),
              help="Markdown: '## Model details', '## Intended use', ... sections (as "
                   "`card show` prints them); '-' reads standard input")
@click.option("--section", type=click.Choice(SECTIONS),
              help="put the whole file in this one section instead")
@version_option
@as_json_option
@remote
def card_edit(client, ref: str, card_file: str, section: str | None, version: int | None,
              as_json: bool) -> None:
    """Replace a model card's prose sections from a Markdown file (lab members). Sections
    the file leaves out stay as they are; a heading with nothing under it empties one."""
    saved, changed = save_model(client, ref, version=version, card_file=card_file,
                                section=section)
    if as_json:
        return emit(saved, True)
    _say_saved(saved, changed, "card")


@card.command("export")
@click.argument("ref", metavar="MODEL")
@click.option("--checkpoint", "checkpoint_id", type=int,
              help="the README of one checkpoint (one Hub repository) instead")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True),
              help="write to this file (default: standard output)")
@remote
def card_export(client, ref: str, checkpoint_id: int | None, output: str | None) -> None:
    """Export a model card as Hugging Face README.md (YAML metadata + Markdown).

    The model's README carries in `model-index` the lab's reported results for the model
    and the registry's measurements of its newest public checkpoint (what a Hub repo's
    main branch holds), each naming that checkpoint; --checkpoint gives one checkpoint's
    own README instead."""
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
