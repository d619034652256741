"""`stagegate eval ...` and `stagegate reported ...`: evaluation runs, results and
reported results over HTTP (`stagegate worker` stays in app/evals/cli.py, local)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from app.clikit import Fail, as_json_option, emit, limit_option, remote

RUN_COLUMNS = ["id", "checkpoint_id", "suite_id", "suite_version", "status", "progress",
               "attempts"]
RESULT_COLUMNS = ["id", "source", "model_id", "checkpoint_id", "suite_id", "dataset_name",
                  "metrics"]
DONE = {"succeeded", "failed", "cancelled"}


@click.group("eval")
def eval_group() -> None:
    """Evaluation runs and results (over HTTP)."""


@eval_group.command("runs")
@click.option("--model", help="LAB/MODEL or a model id")
@click.option("--checkpoint", "checkpoint_id", type=int)
@click.option("--status", type=click.Choice(["queued", "running", "succeeded", "failed",
                                             "cancelled"]))
@limit_option
@as_json_option
@remote
def runs(client, model, checkpoint_id, status, limit, as_json) -> None:
    """Evaluation runs you may see."""
    rows = client.items("/api/v1/evals/runs", limit, model=model,
                        checkpoint_id=checkpoint_id, status=status)
    emit(list(rows), as_json, RUN_COLUMNS)


@eval_group.command("results")
@click.option("--model", help="LAB/MODEL or a model id")
@click.option("--checkpoint", "checkpoint_id", type=int)
@click.option("--suite", help="suite id, e.g. detectability or detectability@1")
@click.option("--source", type=click.Choice(["measured", "reported"]))
@limit_option
@as_json_option
@remote
def results(client, model, checkpoint_id, suite, source, limit, as_json) -> None:
    """Measured and reported results you may see."""
    rows = client.items("/api/v1/evals/results", limit, model=model,
                        checkpoint_id=checkpoint_id, suite=suite, source=source)
    emit(list(rows), as_json, RESULT_COLUMNS)


@eval_group.command("rerun")
@click.argument("run_id", type=int)
@as_json_option
@remote
def rerun(client, run_id: int, as_json: bool) -> None:
    """Queue a new run of the same suite on the same checkpoint as RUN_ID."""
    old = client.get(f"/api/v1/evals/runs/{run_id}")
    new = client.post("/api/v1/evals/runs", {"checkpoint_id": old["checkpoint_id"],
                                             "suite": old["suite_id"]})
    if as_json:
        return emit(new, True)
    click.echo(f"run {new['id']} {new['status']}: {new['suite_id']} on checkpoint "
               f"{new['checkpoint_id']}")


@eval_group.command("watch")
@click.argument("run_id", type=int)
@click.option("--interval", type=click.FloatRange(0.1, 60), default=2.0, show_default=True,
              help="seconds between polls")
@click.option("--timeout", type=click.FloatRange(0), default=0, help="give up after this "
              "many seconds (0: never)")
@remote
def watch(client, run_id: int, interval: float, timeout: float) -> None:
    """Follow a run with a progress bar until it ends; exit 0 if it succeeded, else 2."""
    started = time.monotonic()
    run = client.get(f"/api/v1/evals/runs/{run_id}")
    with click.progressbar(length=1000, label=f"run {run_id} {run['suite_id']}",
                           file=click.get_text_stream("stderr")) as bar:
        shown = 0
        while True:
            done = min(1000, int(float(run.get("progress") or 0) * 1000))
            if run["status"] == "succeeded":
                done = 1000
            bar.update(max(0, done - shown))
            shown = max(shown, done)
            if run["status"] in DONE:
                break
            if timeout and time.monotonic() - started > timeout:
                raise Fail(f"run {run_id} is still {run['status']} after {timeout:g}s")
            time.sleep(interval)
            run = client.get(f"/api/v1/evals/runs/{run_id}")
    click.echo(f"run {run_id} {run['status']}")
    if run["status"] != "succeeded":
        raise Fail(f"run {run_id} {run['status']}: {run.get('error') or run.get('reason')}")


@click.group()
def reported() -> None:
    """Results a lab reports (lm-eval-harness JSON, Hugging Face model-index), over HTTP."""


@reported.command("import")
@click.argument("ref", metavar="MODEL")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["lm-eval-harness", "model-index"]),
              help="default: model-index for .md files, lm-eval-harness otherwise")
@click.option("--checkpoint", "checkpoint_id", type=int, help="the checkpoint they describe")
@click.option("--source-name", help="where the numbers were published")
@click.option("--source-url", help="absolute http(s) URL of that publication")
@as_json_option
@remote
def reported_import(client, ref, path: Path, fmt, checkpoint_id, source_name, source_url,
                    as_json) -> None:
    """Import reported results for MODEL (LAB/SLUG or id) from PATH."""
    from app.models.cli import resolve_model

    fmt = fmt or ("model-index" if path.suffix.lower() == ".md" else "lm-eval-harness")
    text = path.read_text(encoding="utf-8")
    if fmt == "lm-eval-harness":
        try:
            content = json.loads(text)
        except json.JSONDecodeError as exc:
            raise Fail(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    else:
        content = text
    body = {"format": fmt, "content": content, "checkpoint_id": checkpoint_id,
            "source_name": source_name, "source_url": source_url}
    model_id = resolve_model(client, ref)["id"]
    rows = client.post(f"/api/v1/models/{model_id}/reported-results",
                       {k: v for k, v in body.items() if v is not None})
    rows = rows.get("results", rows) if isinstance(rows, dict) else rows
    if as_json:
        return emit(rows, True)
    click.echo(f"imported {len(rows)} result(s)")
    emit(rows, False, RESULT_COLUMNS)


@reported.command("delete")
@click.argument("result_id", type=int)
@remote
def reported_delete(client, result_id: int) -> None:
    """Delete a reported result (lab members; recorded as an event)."""
    client.delete(f"/api/v1/evals/results/{result_id}")
    click.echo(f"deleted reported result {result_id}")
