"""Importing results a lab reports: lm-evaluation-harness JSON and HF `model-index` YAML."""

from __future__ import annotations

import json
import math

import yaml
from sqlmodel import Session, select

from app.auth.principal import Principal
from app.checkpoints.service import get_checkpoint
from app.checkpoints.tables import Checkpoint
from app.errors import Invalid
from app.evals.schemas import ReportedImport
from app.evals.service import result_key, store_result
from app.evals.tables import EvalResult
from app.events.service import record
from app.labs.tables import Lab
from app.models.service import get_model
from app.models.tables import AIModel
from app.timeutil import digest

MAX_RESULTS = 500


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _version(raw) -> int:
    try:
        return int(float(raw))
    except (TypeError, ValueError):
        return 0


def parse_lm_eval(doc) -> list[dict]:
    """`results: {task: {"metric,filter": value, "metric_stderr,filter": value}}` plus
    `versions`, `configs`, `n-shot`; older files use plain "acc" / "acc_stderr" keys."""
    if isinstance(doc, str):
        try:
            doc = json.loads(doc)
        except json.JSONDecodeError as exc:
            raise Invalid(f"not JSON: {exc}", field="content") from None
    results = doc.get("results") if isinstance(doc, dict) else None
    if not isinstance(results, dict) or not results:
        raise Invalid("an lm-eval results file needs a non-empty 'results' object",
                      field="content.results")
    versions, configs = doc.get("versions") or {}, doc.get("configs") or {}
    n_shot = doc.get("n-shot") or {}
    run_config = doc.get("config") if isinstance(doc.get("config"), dict) else {}
    origin = {"format": "lm-eval-harness", "lm_eval_version": doc.get("lm_eval_version"),
              "git_hash": doc.get("git_hash"), "date": doc.get("date"),
              "model_args": run_config.get("model_args")}
    out = []
    for task, values in results.items():
        if not isinstance(values, dict):
            raise Invalid(f"results[{task!r}] must be an object", field=f"content.results.{task}")
        metrics, stderr = {}, {}
        for key, value in values.items():
            name, _, filt = key.partition(",")
            # lm-eval's default filter is "none"; keep any other filter in the name so
            # "exact_match,strict-match" and "exact_match,flexible-extract" stay apart.
            label = name if filt in ("", "none") else f"{name},{filt}"
            number = _number(value)
            if number is None:
                continue
            if name.endswith("_stderr"):
                stderr[label.replace("_stderr", "", 1)] = number
            else:
                metrics[label] = number
        if not metrics:
            continue
        cfg = configs.get(task) if isinstance(configs.get(task), dict) else {}
        out.append({
            "suite_id": task, "suite_version": _version(versions.get(task)),
            "dataset_name": cfg.get("dataset_path") or task,
            "config": cfg, "metrics": metrics,
            "details": {"stderr": stderr, "version": versions.get(task),
                        "n_shot": n_shot.get(task, cfg.get("num_fewshot")),
                        "alias": values.get("alias")},
            "origin": origin, "entry": None,
        })
    if not out:
        raise Invalid("no numeric metrics in 'results'", field="content.results")
    return out


def front_matter(text: str) -> dict:
    """The YAML block between the leading '---' lines of a README.md."""
    lines = text.lstrip("\ufeff").splitlines()
    if not lines or lines[0].strip() != "---":
        raise Invalid("README has no YAML front matter (a leading '---' block)",
                      field="content")
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
    except StopIteration:
        raise Invalid("README front matter is not closed by '---'", field="content") from None
    try:
        meta = yaml.safe_load("\n".join(lines[1:end])) or {}
    except yaml.YAMLError as exc:
        raise Invalid(f"front matter is not valid YAML: {exc}", field="content") from None
    if not isinstance(meta, dict):
        raise Invalid("front matter must be a YAML mapping", field="content")
    return meta


def parse_model_index(content) -> list[dict]:
    meta = front_matter(content) if isinstance(content, str) else content
    index = meta.get("model-index") if isinstance(meta, dict) else None
    if not isinstance(index, list) or not index:
        raise Invalid("no 'model-index' list in the metadata", field="content.model-index")
    out = []
    for i, entry in enumerate(index):
        for j, res in enumerate((entry or {}).get("results") or []):
            where = f"content.model-index[{i}].results[{j}]"
            task, dataset = res.get("task") or {}, res.get("dataset") or {}
            if not isinstance(dataset, dict) or not (dataset.get("type") or dataset.get("name")):
                raise Invalid("each result needs dataset.type", field=f"{where}.dataset")
            metrics = {}
            for m in res.get("metrics") or []:
                number = _number((m or {}).get("value"))
                if number is None or not m.get("type"):
                    raise Invalid("each metric needs a type and a numeric value",
                                  field=f"{where}.metrics")
                label = m["type"] if not m.get("config") else f"{m['type']},{m['config']}"
                metrics[label] = number
            if not metrics:
                continue
            args = dataset.get("args") if isinstance(dataset.get("args"), dict) else {}
            out.append({
                "suite_id": str(dataset.get("type") or dataset.get("name")),
                "suite_version": _version(args.get("suite_version")),
                "dataset_name": dataset.get("name"),
                "config": {"task": task, "dataset": dataset},
                "metrics": metrics,
                "details": {"verified": [bool(m.get("verified")) for m in res["metrics"]]},
                "origin": {"format": "model-index", "source": res.get("source")},
                "entry": entry.get("name"),
            })
    if not out:
        raise Invalid("the model-index lists no numeric results", field="content.model-index")
    return out


def _checkpoint_for_entry(session: Session, model: AIModel, entry: str | None):
    """model-index entries named "lab/model@checkpoint" (as we export them) map back."""
    if not entry or "@" not in entry:
        return None
    name = entry.rsplit("@", 1)[1]
    return session.exec(select(Checkpoint).where(Checkpoint.model_id == model.id,
                                                 Checkpoint.name == name)).first()


def import_reported(session: Session, actor: Principal, model_id: int,
                    data: ReportedImport) -> list[EvalResult]:
    """Store a lab's reported numbers (source="reported"); re-importing updates in place."""
    model = get_model(session, actor, model_id)
    actor.require_member(model.lab_id)
    ckpt = None
    if data.checkpoint_id is not None:
        ckpt = get_checkpoint(session, actor, data.checkpoint_id)
        if ckpt.model_id != model.id:
            raise Invalid("that checkpoint belongs to another model", field="checkpoint_id")
    parsed = (parse_lm_eval(data.content) if data.format == "lm-eval-harness"
              else parse_model_index(data.content))
    if len(parsed) > MAX_RESULTS:
        raise Invalid(f"at most {MAX_RESULTS} results per import", field="content")
    rows = []
    for item in parsed:
        target = ckpt or _checkpoint_for_entry(session, model, item["entry"])
        origin = item["origin"] | {"source_name": data.source_name,
                                   "source_url": data.source_url, "entry": item["entry"]}
        config_digest = digest(item["config"])
        key = result_key("reported", model.id, target.id if target else None,
                         item["suite_id"], item["suite_version"], item["dataset_name"],
                         config_digest)
        row = store_result(session, EvalResult(
            result_key=key, source="reported", model_id=model.id,
            checkpoint_id=target.id if target else None,
            manifest_digest=target.manifest_digest if target else None,
            suite_id=item["suite_id"], suite_version=item["suite_version"],
            config=item["config"], config_digest=config_digest,
            dataset_name=item["dataset_name"], metrics=item["metrics"],
            details=item["details"], origin=origin, created_by=actor.user_id))
        if row.metrics != item["metrics"] or row.details != item["details"]:
            row.metrics, row.details, row.origin = item["metrics"], item["details"], origin
            session.add(row)
        rows.append(row)
    session.flush()
    lab = session.get(Lab, model.lab_id)
    # Public only if every number is: results for a non-public checkpoint keep the
    # event (and its count) with the lab.
    public = model.public and all(
        r.checkpoint_id is None
        or session.get(Checkpoint, r.checkpoint_id).access_level == "public" for r in rows)
    record(session, actor, "model", model.id, "reported_results_imported",
           {"model": f"{lab.slug}/{model.slug}", "results": [r.result_key for r in rows]},
           lab_id=model.lab_id, visibility="public" if public else "lab",
           data={"format": data.format, "count": len(rows)})
    return rows
