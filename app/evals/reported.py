"""Importing results a lab reports: lm-evaluation-harness JSON and HF `model-index` YAML."""

from __future__ import annotations

import json
import math

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
from app.safeyaml import check_depth, load_json, load_yaml
from app.timeutil import digest

# Limits on one import: a real lm-eval results file or model card is tens of kB.
MAX_RESULTS = 500
MAX_CONTENT_BYTES = 2 * 1024 * 1024
MAX_METRICS = 200
MAX_VERSION = 2**31 - 1


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return float(value) if math.isfinite(value) else None
    except OverflowError:       # an int beyond float range
        return None


def _version(raw, field: str) -> int:
    """lm-eval versions are numbers ("1.0", 2); old YAML tasks say "Yaml", kept as 0."""
    if raw is None or isinstance(raw, str) and not raw.strip():
        return 0
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        raise Invalid("a version is a number or a string", field=field)
    try:
        number = float(raw)
    except ValueError:
        return 0
    except OverflowError:
        number = math.inf
    if not math.isfinite(number) or not 0 <= number <= MAX_VERSION:
        raise Invalid(f"a version is a finite number from 0 to {MAX_VERSION}", field=field)
    return int(number)


def _mapping(value, field: str, *, required: bool = False) -> dict:
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise Invalid("must be an object (a mapping)", field=field)
    return value


def _sequence(value, field: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise Invalid("must be a list", field=field)
    return value


def _text(value, field: str, max_length: int, *, required: bool = False) -> str | None:
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise Invalid("must be a string", field=field)
    value = str(value)
    if not value or len(value) > max_length or "\x00" in value:
        raise Invalid(f"must be 1 to {max_length} characters without NUL", field=field)
    return value


def _bounded_content(content) -> object:
    """The content as parsed data: size, depth, aliases and strict JSON are checked here."""
    if isinstance(content, str):
        return content
    check_depth(content, field="content")
    size = len(json.dumps(content, allow_nan=False, default=str))
    if size > MAX_CONTENT_BYTES:
        raise Invalid(f"{size} bytes; at most {MAX_CONTENT_BYTES} per import",
                      field="content", limit=MAX_CONTENT_BYTES)
    return content


def parse_lm_eval(doc) -> list[dict]:
    """`results: {task: {"metric,filter": value, "metric_stderr,filter": value}}` plus
    `versions`, `configs`, `n-shot`; older files use plain "acc" / "acc_stderr" keys."""
    if isinstance(doc, str):
        doc = load_json(doc, field="content", max_bytes=MAX_CONTENT_BYTES)
    doc = _bounded_content(doc)
    results = doc.get("results") if isinstance(doc, dict) else None
    if not isinstance(results, dict) or not results:
        raise Invalid("an lm-eval results file needs a non-empty 'results' object",
                      field="content.results")
    versions = _mapping(doc.get("versions"), "content.versions")
    configs = _mapping(doc.get("configs"), "content.configs")
    n_shot = _mapping(doc.get("n-shot"), "content.n-shot")
    run_config = _mapping(doc.get("config"), "content.config")
    origin = {"format": "lm-eval-harness", "lm_eval_version": doc.get("lm_eval_version"),
              "git_hash": doc.get("git_hash"), "date": doc.get("date"),
              "model_args": run_config.get("model_args")}
    out = []
    for task, values in results.items():
        where = f"content.results.{task}"
        _text(task, where, 128, required=True)
        values = _mapping(values, where, required=True)
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
        if len(metrics) > MAX_METRICS:
            raise Invalid(f"at most {MAX_METRICS} metrics per task", field=where)
        cfg = _mapping(configs.get(task), f"content.configs.{task}")
        dataset = cfg.get("dataset_path")
        out.append({
            "suite_id": task,
            "suite_version": _version(versions.get(task), f"content.versions.{task}"),
            "dataset_name": (_text(dataset, f"content.configs.{task}.dataset_path", 200)
                             if dataset is not None else task[:200]),
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
    if len(text.encode("utf-8", "surrogatepass")) > MAX_CONTENT_BYTES:
        raise Invalid(f"at most {MAX_CONTENT_BYTES} bytes per import", field="content",
                      limit=MAX_CONTENT_BYTES)
    lines = text.lstrip("\ufeff").splitlines()
    if not lines or lines[0].strip() != "---":
        raise Invalid("README has no YAML front matter (a leading '---' block)",
                      field="content")
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
    except StopIteration:
        raise Invalid("README front matter is not closed by '---'", field="content") from None
    meta = load_yaml("\n".join(lines[1:end]), field="content",
                     max_bytes=MAX_CONTENT_BYTES) or {}
    if not isinstance(meta, dict):
        raise Invalid("front matter must be a YAML mapping", field="content")
    return meta


def parse_model_index(content) -> list[dict]:
    meta = front_matter(content) if isinstance(content, str) else _bounded_content(content)
    index = meta.get("model-index") if isinstance(meta, dict) else None
    if not isinstance(index, list) or not index:
        raise Invalid("no 'model-index' list in the metadata", field="content.model-index")
    out = []
    for i, entry in enumerate(index):
        at = f"content.model-index[{i}]"
        entry = _mapping(entry, at, required=True)
        name = _text(entry.get("name"), f"{at}.name", 300)
        for j, res in enumerate(_sequence(entry.get("results"), f"{at}.results")):
            where = f"{at}.results[{j}]"
            res = _mapping(res, where, required=True)
            task = _mapping(res.get("task"), f"{where}.task")
            dataset = _mapping(res.get("dataset"), f"{where}.dataset")
            if not (dataset.get("type") or dataset.get("name")):
                raise Invalid("each result needs dataset.type", field=f"{where}.dataset")
            suite = _text(dataset.get("type") or dataset.get("name"), f"{where}.dataset.type",
                          128, required=True)
            dataset_name = _text(dataset.get("name"), f"{where}.dataset.name", 200)
            metrics, verified = {}, []
            for m in _sequence(res.get("metrics"), f"{where}.metrics"):
                number = _number(m.get("value")) if isinstance(m, dict) else None
                if number is None or not m.get("type"):
                    raise Invalid("each metric needs a type and a numeric value",
                                  field=f"{where}.metrics")
                label = _text(m["type"], f"{where}.metrics", 200, required=True)
                if m.get("config") is not None:
                    label = f"{label},{_text(m['config'], f'{where}.metrics', 200)}"
                metrics[label] = number
                verified.append(bool(m.get("verified")))
            if not metrics:
                continue
            if len(metrics) > MAX_METRICS:
                raise Invalid(f"at most {MAX_METRICS} metrics per result",
                              field=f"{where}.metrics")
            args = _mapping(dataset.get("args"), f"{where}.dataset.args")
            out.append({
                "suite_id": suite,
                "suite_version": _version(args.get("suite_version"),
                                          f"{where}.dataset.args.suite_version"),
                "dataset_name": dataset_name,
                "config": {"task": task, "dataset": dataset},
                "metrics": metrics,
                "details": {"verified": verified},
                "origin": {"format": "model-index", "source": res.get("source")},
                "entry": name,
            })
            if len(out) > MAX_RESULTS:
                raise Invalid(f"at most {MAX_RESULTS} results per import", field="content")
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
