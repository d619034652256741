"""The live model card (measured vs reported, with provenance) and its HF README export."""

from __future__ import annotations

import math
import re

from huggingface_hub import EvalResult as HubEvalResult
from huggingface_hub import ModelCard, ModelCardData
from markdown_it import MarkdownIt
from markdown_it.common.utils import unescapeAll
from sqlmodel import Session, select

from app.access import visible_checkpoints, visible_results
from app.auth.principal import ANONYMOUS, Principal
from app.checkpoints.service import get_checkpoint
from app.checkpoints.tables import Checkpoint
from app.evals import service
from app.evals.tables import EvalResult, EvalRun
from app.labs.tables import Lab
from app.models.tables import CARD_SECTIONS, AIModel

# The Hub reserves `verified: true` for its own evaluations; a registry measurement says so
# through its source: this name and an absolute URL to the stored result.
MEASURED_SOURCE = "Stagegate: measured by this registry"
REPORTED_SOURCE = "Stagegate: reported by the lab"


def _measured(r: EvalResult) -> dict:
    current = service.suites().get(r.suite_id)
    return {
        "id": r.id, "suite": f"{r.suite_id}@{r.suite_version}", "suite_id": r.suite_id,
        "metrics": r.metrics,
        "current": current is not None and current.version == r.suite_version,
        "provenance": {
            "source": "measured", "manifest_digest": r.manifest_digest,
            "dataset_name": r.dataset_name, "dataset_digest": r.dataset_digest, "seed": r.seed,
            "config": r.config, "config_digest": r.config_digest,
            "code_version": r.code_version, "library_versions": r.library_versions,
            "device": r.device, "dtype": r.dtype, "duration_s": r.duration_s,
            "tokens_processed": r.tokens_processed, "run_id": r.run_id,
            "measured_at": r.created_at.isoformat()},
    }


def _reported(r: EvalResult) -> dict:
    return {
        "id": r.id, "suite_id": r.suite_id, "suite_version": r.suite_version,
        "dataset_name": r.dataset_name, "metrics": r.metrics, "details": r.details,
        "provenance": {"source": "reported", "origin": r.origin, "config": r.config,
                       "checkpoint_manifest_digest": r.manifest_digest,
                       "imported_at": r.created_at.isoformat()},
    }


def _run(r: EvalRun) -> dict:
    return {"id": r.id, "suite": f"{r.suite_id}@{r.suite_version}", "status": r.status,
            "progress": r.progress, "attempts": r.attempts, "error": r.error,
            "finished_at": r.finished_at.isoformat() if r.finished_at else None}


def live_card(session: Session, principal: Principal, model_id: int) -> dict:
    model, ckpts, results, runs = service.model_results(session, principal, model_id)
    lab = session.get(Lab, model.lab_id)
    by_ckpt: dict[int | None, list[EvalResult]] = {}
    for r in results:
        by_ckpt.setdefault(r.checkpoint_id, []).append(r)
    latest_runs: dict[tuple[int, str], EvalRun] = {}
    for run in runs:  # ordered by id: the last one per suite wins
        latest_runs[(run.checkpoint_id, run.suite_id)] = run
    checkpoints = []
    for c in ckpts:
        rows = by_ckpt.get(c.id, [])
        checkpoints.append({
            "id": c.id, "name": c.name, "access_level": c.access_level,
            "manifest_digest": c.manifest_digest, "parameter_count": c.parameter_count,
            "architecture": c.architecture,
            "measured": [_measured(r) for r in rows if r.source == "measured"],
            "reported": [_reported(r) for r in rows if r.source == "reported"],
            "runs": [_run(r) for (cid, _), r in sorted(latest_runs.items()) if cid == c.id],
        })
    return {
        "model": {"id": model.id, "ref": f"{lab.slug}/{model.slug}", "name": model.name,
                  "licence": model.licence, "architecture": model.architecture,
                  "parameter_count": model.parameter_count,
                  "library_name": model.library_name, "pipeline_tag": model.pipeline_tag,
                  "base_model": model.base_model, "datasets": model.datasets},
        "suites": {s.id: s.version for s in service.suites().values()},
        "checkpoints": checkpoints,
        "reported": [_reported(r) for r in by_ckpt.get(None, []) if r.source == "reported"],
    }


def _finite(value) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def result_url(base_url: str, result_id: int) -> str:
    return f"{base_url.rstrip('/')}/api/v1/evals/results/{result_id}"


def legacy_hub(r: EvalResult) -> dict:
    """The Hub description of a reported row stored before rows kept their own."""
    return {"task": {"type": "text-generation", "name": r.suite_id},
            "dataset": {"type": r.suite_id, "name": r.dataset_name or r.suite_id},
            "metrics": {label: {"type": label.partition(",")[0],
                                "config": label.partition(",")[2] or None}
                        for label in r.metrics}}


def hub_of(r: EvalResult) -> dict:
    """How one stored result reads on the Hub: task, dataset and per-metric fields."""
    if r.source == "reported":
        return (r.details or {}).get("hub") or legacy_hub(r)
    ref = f"{r.suite_id}@{r.suite_version}"
    return {"task": {"type": "text-generation", "name": ref},
            # The registry's corpus plays the Hub dataset; its content digest is the revision
            # and the suite reference is the configuration measured on it.
            "dataset": {"type": r.dataset_name or r.suite_id, "name": f"{ref} ({r.dataset_name})",
                        "config": ref, "revision": r.dataset_digest,
                        "args": {"seed": r.seed}},
            "metrics": {label: {"type": label} for label in r.metrics}}


def eval_results(r: EvalResult, base_url: str, taken: set,
                 checkpoint_name: str | None = None) -> list[HubEvalResult]:
    """One stored result as huggingface_hub EvalResults (one per metric); a measurement
    shown on the model's card (not its checkpoint's) names its `checkpoint_name`.

    The Hub groups metrics by (task type, dataset type, config, split, revision) and keeps
    the first group member's source and names, so two stored results sharing that key would
    merge on a load-save; the later one is told apart by its task name as dataset type."""
    hub = hub_of(r)
    task, dataset = hub["task"], dict(hub["dataset"])
    key = (task["type"], dataset["type"], dataset.get("config"), dataset.get("split"),
           dataset.get("revision"))
    n = 1
    while key in taken:
        n += 1
        dataset["type"] = f"{task.get('name') or r.suite_id}" + (f"-{n}" if n > 2 else "")
        key = (task["type"], dataset["type"], *key[2:])
    taken.add(key)
    origin = r.origin or {}
    if r.source == "measured":
        # The URL stays the stored result's own: it names the checkpoint too, and the
        # importer knows it for the registry's measurement and never stores it as a report.
        source_name = (f"{MEASURED_SOURCE} on checkpoint {checkpoint_name}"
                       if checkpoint_name else MEASURED_SOURCE)
        source_url = result_url(base_url, r.id)
    else:
        source_name = origin.get("source_name") or REPORTED_SOURCE
        source_url = origin.get("source_url") or result_url(base_url, r.id)
    stderr = (r.details or {}).get("stderr") or {}
    out = []
    for label, value in r.metrics.items():
        if not _finite(value):
            continue
        meta = hub["metrics"].get(label) or {"type": label}
        args = dict(meta.get("args") or {})
        if _finite(stderr.get(label)):
            args["stderr"] = stderr[label]
        out.append(HubEvalResult(
            task_type=task["type"], task_name=task.get("name"),
            dataset_type=dataset["type"], dataset_name=dataset.get("name") or dataset["type"],
            dataset_config=dataset.get("config"), dataset_split=dataset.get("split"),
            dataset_revision=dataset.get("revision"), dataset_args=dataset.get("args") or None,
            metric_type=meta["type"], metric_value=value, metric_name=meta.get("name"),
            metric_config=meta.get("config"), metric_args=args or None,
            source_name=source_name, source_url=source_url))
    return out


def card_data(model: AIModel, lab: Lab, name: str, results: list[EvalResult],
              base_url: str, checkpoint_names: dict[int, str] | None = None) -> ModelCardData:
    """`checkpoint_names`: the checkpoints whose measurements a model-level card carries,
    so each one says where it came from."""
    taken: set = set()
    names = checkpoint_names or {}
    evals = [e for r in results
             for e in eval_results(r, base_url, taken, names.get(r.checkpoint_id))]
    meta = {"license": model.licence, "language": list(model.languages) or None,
            "library_name": model.library_name, "pipeline_tag": model.pipeline_tag,
            "base_model": list(model.base_model) or None,
            "datasets": list(model.datasets) or None}
    return ModelCardData(model_name=name, eval_results=evals or None, tags=["stagegate"],
                         **{k: v for k, v in meta.items() if v is not None})


# --- user Markdown in the export ---------------------------------------------------------
# The site renders card text with raw HTML off and links validated (app/markdown.py:
# markdown-it js-default, then nh3); a Hub README is rendered by someone else's Markdown,
# which may pass raw HTML. So the export applies the site's rules to the Markdown itself:
# raw HTML is escaped (`<` outside code becomes `&lt;`: shown as text, as on the site)
# and a link whose destination the site's validator refuses (javascript:, vbscript:,
# file:, data:) points to `#` instead.
_SITE_MD = MarkdownIt("js-default")
_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
_CODE_SPAN = re.compile(r"(`+)(?:.+?)(?<!`)\1(?!`)")
_AUTOLINK = re.compile(r"<(?:https?://|mailto:)[^\s<>]*>", re.IGNORECASE)
_INLINE_DEST = re.compile(r"(\]\(\s*)(<[^>\n]*>|[^\s)]+)")
_REF_DEF = re.compile(r"^(\s{0,3}\[[^\]\n]+\]:\s*)(<[^>\n]*>|\S+)")


def _safe_dest(match: re.Match) -> str:
    dest = match.group(2)
    url = unescapeAll(dest[1:-1] if dest.startswith("<") else dest)
    if _SITE_MD.validateLink(_SITE_MD.normalizeLink(url)):
        return match.group(0)
    return match.group(1) + "#"


def _escape_html(text: str) -> str:
    out, last = [], 0
    for m in _AUTOLINK.finditer(text):
        out += [text[last:m.start()].replace("<", "&lt;"), m.group(0)]
        last = m.end()
    return "".join(out + [text[last:].replace("<", "&lt;")])


def safe_markdown(text: str) -> str:
    """User Markdown for the exported README, under the site's rules (see above)."""
    lines, fence = [], None
    for line in text.split("\n"):
        opened = _FENCE.match(line)
        if fence is not None:  # inside a fenced code block: text, never HTML
            if opened and opened.group(1)[0] == fence[0] and len(opened.group(1)) >= len(fence):
                fence = None
            lines.append(line)
            continue
        if opened:
            fence = opened.group(1)
            lines.append(line)
            continue
        line = _REF_DEF.sub(_safe_dest, line)
        parts, last = [], 0
        for m in _CODE_SPAN.finditer(line):
            parts += [_INLINE_DEST.sub(_safe_dest, _escape_html(line[last:m.start()])),
                      m.group(0)]
            last = m.end()
        parts.append(_INLINE_DEST.sub(_safe_dest, _escape_html(line[last:])))
        lines.append("".join(parts))
    return "\n".join(lines)


def _render(data: ModelCardData, title: str, model: AIModel, body: list[str]) -> str:
    lines = [f"# {safe_markdown(title)}", ""]
    for section in CARD_SECTIONS:
        text = getattr(model, section)
        if text:
            lines += [f"## {section.replace('_', ' ').capitalize()}", "",
                      safe_markdown(text.strip()), ""]
    text = "\n".join(lines + body).rstrip() + "\n"
    # huggingface_hub writes the YAML; we only put its own block above the body.
    return str(ModelCard(f"---\n{data.to_yaml()}\n---\n\n{text}"))


def main_branch(session: Session, model_id: int) -> tuple[Checkpoint | None,
                                                         list[EvalResult]]:
    """The checkpoint a Hub repository's main branch holds: the model's newest checkpoint
    that anyone may see (public access level, public model), and the measured results on
    it that anyone may see. Read as the public reads them whoever exports, so a lab
    member's export (meant for the Hub) never carries an internal or partners-only
    checkpoint's numbers, nor a derived result that names one."""
    ckpt = session.exec(select(Checkpoint).where(
        Checkpoint.model_id == model_id, visible_checkpoints(ANONYMOUS))
        .order_by(Checkpoint.id.desc()).limit(1)).first()
    if ckpt is None:
        return None, []
    rows = session.exec(select(EvalResult).where(
        EvalResult.checkpoint_id == ckpt.id, EvalResult.source == "measured",
        visible_results(ANONYMOUS)).order_by(EvalResult.id)).all()
    return ckpt, list(rows)


def readme(session: Session, principal: Principal, model_id: int, base_url: str) -> str:
    """The model's README.md. Its `model-index` carries the model-level reported results
    and the registry's measurements of the main-branch checkpoint (main_branch), each
    measurement naming that checkpoint; every checkpoint's own README carries its own
    results (one Hub repo per checkpoint)."""
    model, ckpts, results, _ = service.model_results(session, principal, model_id)
    lab = session.get(Lab, model.lab_id)
    names = {c.id: c.name for c in ckpts}
    own = [r for r in results if r.checkpoint_id is None]
    main, measured = main_branch(session, model.id)
    base = base_url.rstrip("/")
    data = card_data(model, lab, f"{lab.slug}/{model.slug}", own + measured, base_url,
                     {main.id: main.name} if main else None)
    note = None
    if main is not None:
        what = ("the registry's measurements of checkpoint "
                if measured else "no measurement yet of checkpoint ")
        note = (f"The `model-index` above carries the results the lab reported for the model "
                f"(if any) and {what}**{safe_markdown(main.name)}** (id {main.id}, manifest "
                f"`{main.manifest_digest}`): the newest public checkpoint, the one this "
                f"repository's main branch holds. Each measurement's source is its stored "
                f"result; the checkpoint's own card is "
                f"{base}/api/v1/checkpoints/{main.id}/card.md")
    elif ckpts:
        note = ("No checkpoint of this model is public yet, so the `model-index` above "
                "carries only the results the lab reported for the model (if any); each "
                "checkpoint's own card carries its measurements.")
    body = ["## Results in this card's metadata", "", note, ""] if note else []
    body += _tables(results, names, base_url)
    if ckpts:
        body += ["## Checkpoints", ""] + [
            f"- {c.name}: {base}/api/v1/checkpoints/{c.id}/card.md" for c in ckpts] + [""]
    return _render(data, model.name, model, body)


def checkpoint_readme(session: Session, principal: Principal, checkpoint_id: int,
                      base_url: str) -> str:
    """The README.md of one checkpoint as its own Hub repository: what the registry
    measured on it and what the lab reported for it, in one `model-index` entry."""
    ckpt = get_checkpoint(session, principal, checkpoint_id)
    model, _, results, _ = service.model_results(session, principal, ckpt.model_id)
    lab = session.get(Lab, model.lab_id)
    mine = [r for r in results if r.checkpoint_id == ckpt.id]
    mine.sort(key=lambda r: (r.source != "measured", r.id))
    ref = f"{lab.slug}/{model.slug}@{ckpt.name}"
    data = card_data(model, lab, ref, mine, base_url)
    return _render(data, f"{model.name} ({ckpt.name})", model,
                   _tables(mine, {ckpt.id: ckpt.name}, base_url))


def _tables(results: list[EvalResult], names: dict[int, str], base_url: str) -> list[str]:
    out = []
    for kind, title in (("measured", "Measured by the registry"),
                        ("reported", "Reported by the lab")):
        rows = [r for r in results if r.source == kind]
        if not rows:
            continue
        out += [f"## {title}", "", "| checkpoint | task | metric | value | ± stderr | source |",
                "| --- | --- | --- | --- | --- | --- |"]
        for r in rows:
            where = names.get(r.checkpoint_id, "(model)")
            task = (f"{r.suite_id}@{r.suite_version}" if kind == "measured"
                    else hub_of(r)["task"].get("name") or r.suite_id)
            stderr = (r.details or {}).get("stderr") or {}
            url = (r.origin or {}).get("source_url") or result_url(base_url, r.id)
            for k, v in r.metrics.items():
                if not _finite(v):
                    continue
                err = f"{stderr[k]:.4g}" if _finite(stderr.get(k)) else ""
                cells = [where, task, k, f"{v:.6g}", err, url]
                # A '|' in a lab's task or metric name would split the row.
                out.append("| " + " | ".join(safe_markdown(c).replace("|", "\\|")
                                             for c in cells) + " |")
        out.append("")
    return out
