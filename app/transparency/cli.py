"""`stagegate log`: the transparency log's key, the monitor and inclusion proofs. `key`
without --url reads this machine's key file; everything else runs over HTTP."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import click

from app.clikit import Fail

ENTITY_TYPES = ("plan", "incident", "agreement", "model", "checkpoint", "eval_run", "lab")


@click.group("log")
def log_group() -> None:
    """The transparency log: key, verify (the monitor), prove (over HTTP)."""


@log_group.command("key")
@click.option("--url", help="ask this registry for its key (default: this machine's key file)")
def log_key(url: str | None) -> None:
    """Print the log's public key in note verifier-key format."""
    if url:
        from app.client import Client

        client = Client(url)
        try:
            click.echo(client.request("GET", "/api/v1/log/key").text.strip())
        finally:
            client.http.close()
        return
    from app.transparency.service import signer

    click.echo(str(signer().verifier))


@log_group.command("verify")
@click.option("--url", help="the registry (default: --url, STAGEGATE_URL or your login)")
@click.option("--state", "state_path", type=click.Path(dir_okay=False, path_type=Path),
              help="where to keep the last checkpoint seen and its leaves' hashes")
@click.option("--key", help="the verifier key to pin (default: the one in --state; on a "
                            "first run, the one the registry serves)")
def log_verify(url: str | None, state_path: Path | None, key: str | None) -> None:
    """Check the log: signature, consistency with the last run, every leaf and opening.
    Exit 0 when consistent, 1 naming the first bad index when not."""
    from app.transparency.monitor import run

    url = url or click.get_current_context().find_root().params.get("url")
    code, line = run(url, state_path, key)
    click.echo(line, err=code != 0)
    if code:
        raise SystemExit(code)


@log_group.command("prove")
@click.argument("entity")
@click.option("--url", help="the registry (default: --url, STAGEGATE_URL or your login)")
@click.option("--key", help="verifier key to check the checkpoint with (default: served)")
@click.option("--json", "as_json", is_flag=True, help="print the proof as JSON")
def log_prove(entity: str, url: str | None, key: str | None, as_json: bool) -> None:
    """Print and check the inclusion proof of ENTITY's latest leaf (e.g. plan/3)."""
    from app.client import Client
    from app.transparency import merkle
    from app.transparency.note import Checkpoint, Verifier, open_note

    kind, _, ident = entity.partition("/")
    if kind not in ENTITY_TYPES or not ident:
        raise Fail(f"ENTITY is TYPE/ID with TYPE one of {', '.join(ENTITY_TYPES)} "
                   f"(e.g. plan/3), not {entity!r}")
    client = Client(url or click.get_current_context().find_root().params.get("url"))
    try:
        vkey = key or client.request("GET", "/api/v1/log/key").text.strip()
        cp = Checkpoint.parse(open_note(client.request("GET", "/log/checkpoint").text,
                                        Verifier.parse(vkey)))
        index = client.get(f"/api/v1/log/entity/{kind}/{ident}")["leaf_index"]
        if index >= cp.size:
            raise Fail(f"{entity}'s leaf {index} is newer than the checkpoint ({cp.size} "
                       "leaves): try again in a few seconds")
        proof = client.get("/api/v1/log/proof/inclusion", index=index, tree_size=cp.size)
        leaf = client.get("/api/v1/log/entries", start=index, end=index + 1)["entries"][0]
    finally:
        client.http.close()
    leaf_hash = merkle.leaf_hash(leaf["leaf"].encode())
    hashes = [base64.b64decode(h) for h in proof["hashes"]]
    ok = merkle.verify_inclusion(index, cp.size, leaf_hash, hashes, cp.root)
    if as_json:
        click.echo(json.dumps({"entity": entity, "index": index, "tree_size": cp.size,
                               "root_hash": base64.b64encode(cp.root).decode(),
                               "leaf": leaf["leaf"], "opening": leaf["opening"],
                               "hashes": proof["hashes"], "verified": ok}, indent=2))
    else:
        click.echo(f"{entity}: leaf {index} of {cp.size} ({cp.origin})")
        click.echo(f"leaf {leaf['leaf']}")
        click.echo(f"leaf hash {base64.b64encode(leaf_hash).decode()}")
        for h in proof["hashes"]:
            click.echo(f"  {h}")
        click.echo(f"root {base64.b64encode(cp.root).decode()}: "
                   + ("inclusion verified" if ok else "PROOF DOES NOT VERIFY"))
    if not ok:
        raise SystemExit(1)
