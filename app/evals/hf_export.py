"""The live model card (measured vs reported, with provenance) and its HF README export."""

from __future__ import annotations

import yaml
from sqlmodel import Session

from app.auth.principal import Principal
from app.evals import service
from app.evals.tables import EvalResult, EvalRun
from app.labs.tables import Lab
from app.models.tables import CARD_SECTIONS

MEASURED_SOURCE = "Stagegate (measured by the registry)"


def _scalars(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


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
                  "parameter_count": model.parameter_count},
        "suites": {s.id: s.version for s in service.suites().values()},
        "checkpoints": checkpoints,
        "reported": [_reported(r) for r in by_ckpt.get(None, []) if r.source == "reported"],
    }


def _index_result(r: EvalResult, kind: str) -> dict | None:
    metrics = _scalars(r.metrics)
    if not metrics:
        return None
    if kind == "measured":
        dataset = {"type": r.suite_id, "name": r.dataset_name or r.suite_id,
                   "revision": r.dataset_digest,
                   "args": {"suite_version": r.suite_version, "seed": r.seed}}
        source = {"name": MEASURED_SOURCE, "url": f"/api/v1/evals/results/{r.id}"}
    else:
        cfg_ds = r.config.get("dataset") if isinstance(r.config.get("dataset"), dict) else {}
        dataset = {"type": r.suite_id, "name": r.dataset_name or r.suite_id,
                   **{k: v for k, v in cfg_ds.items() if k not in ("type", "name")}}
        dataset.setdefault("args", {})
        if isinstance(dataset["args"], dict):
            dataset["args"] = dataset["args"] | {"suite_version": r.suite_version}
        source = {"name": (r.origin or {}).get("source_name") or "reported by the lab"}
        if (r.origin or {}).get("source_url"):
            source["url"] = r.origin["source_url"]
    return {"task": {"type": "text-generation", "name": r.suite_id}, "dataset": dataset,
            "metrics": [{"type": k, "value": v, "name": k,
                         "verified": kind == "measured"} for k, v in metrics.items()],
            "source": source}


def readme(session: Session, principal: Principal, model_id: int) -> str:
    """A Hugging Face README.md whose `model-index` the reported-result importer reads back."""
    model, ckpts, results, _ = service.model_results(session, principal, model_id)
    lab = session.get(Lab, model.lab_id)
    ref = f"{lab.slug}/{model.slug}"
    names = {c.id: c.name for c in ckpts}
    entries: dict[str, list] = {}
    for r in results:
        entry = f"{ref}@{names[r.checkpoint_id]}" if r.checkpoint_id in names else ref
        item = _index_result(r, r.source)
        if item:
            entries.setdefault(entry, []).append(item)
    meta: dict = {"tags": ["stagegate"]}
    if model.licence:
        meta["license"] = model.licence
    if model.languages:
        meta["language"] = list(model.languages)
    meta["model-index"] = [{"name": name, "results": items} for name, items in entries.items()]
    lines = ["---", yaml.safe_dump(meta, sort_keys=False, allow_unicode=True).rstrip(), "---",
             "", f"# {model.name}", ""]
    for section in CARD_SECTIONS:
        text = getattr(model, section)
        if text:
            lines += [f"## {section.replace('_', ' ').capitalize()}", "", text.strip(), ""]
    lines += _tables(results, names)
    return "\n".join(lines).rstrip() + "\n"


def _tables(results: list[EvalResult], names: dict[int, str]) -> list[str]:
    out = []
    for kind, title in (("measured", "Measured by the registry"),
                        ("reported", "Reported by the lab")):
        rows = [r for r in results if r.source == kind]
        if not rows:
            continue
        out += [f"## {title}", "", "| checkpoint | suite | metric | value | provenance |",
                "| --- | --- | --- | --- | --- |"]
        for r in rows:
            where = names.get(r.checkpoint_id, "(model)")
            prov = (f"dataset {r.dataset_name} `{(r.dataset_digest or '')[:12]}`, seed "
                    f"{r.seed}, {r.device}/{r.dtype}, code {r.code_version}"
                    if kind == "measured" else (r.origin or {}).get("format", ""))
            for k, v in _scalars(r.metrics).items():
                out.append(f"| {where} | {r.suite_id}@{r.suite_version} | {k} | {v:.6g} | "
                           f"{prov} |")
        out.append("")
    return out



