"""Importing results a lab reports: lm-evaluation-harness JSON and HF `model-index` cards,
each stored with the Hub fields (`details.hub`) its card export writes back."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime

import yaml
from huggingface_hub import ModelCard
from huggingface_hub.repocard import REGEX_YAML_BLOCK
from huggingface_hub.repocard_data import model_index_to_eval_results
from sqlmodel import Session, select

from app.auth.principal import Principal
from app.checkpoints.service import get_checkpoint
from app.checkpoints.tables import Checkpoint
from app.errors import Invalid, TooLarge
from app.evals.schemas import ReportedImport, ReportedUpdate
from app.evals.service import get_result, result_key, store_result
from app.evals.tables import EvalResult
from app.events.service import record
from app.labs.tables import Lab
from app.models.service import get_model
from app.models.tables import AIModel
from app.timeutil import digest

MAX_RESULTS = 500
MAX_CONTENT = 2_000_000  # characters of README or results JSON
# Our own measured results, when a card exported here comes back: they are not the lab's.
OWN_RESULT = re.compile(r"/api/v1/evals/results/(\d+)$")
# lm-eval keys that are bookkeeping, not metrics, in files without `higher_is_better`.
NOT_METRICS = {"alias", "sample_len", "samples", "name", "sample_count"}
LOCAL_PATH = re.compile(r"^(?:/|~|\.{1,2}/|[A-Za-z]:[\\/])")


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _version(raw) -> int:
    try:
        return int(float(raw))
    except (TypeError, ValueError):
        return 0


def scrub_paths(value):
    """Provenance without the importer's filesystem: local paths become "<local>/NAME"."""
    if isinstance(value, dict):
        return {k: scrub_paths(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub_paths(v) for v in value]
    if isinstance(value, str):
        if "=" in value and "," in value or value.count("=") == 1 and "/" in value:
            # lm-eval's "pretrained=/home/me/ckpt,dtype=float32" model_args string
            return ",".join(_scrub_pair(p) for p in value.split(","))
        if LOCAL_PATH.match(value):
            return "<local>/" + value.rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1]
    return value


def _scrub_pair(pair: str) -> str:
    key, eq, val = pair.partition("=")
    return f"{key}{eq}{scrub_paths(val)}" if eq else scrub_paths(pair)


def iso_date(raw) -> str | None:
    """lm-eval writes `date` as a Unix timestamp (0.4) or a string; keep ISO 8601 UTC."""
    if raw is None or isinstance(raw, bool):
        return None
    if isinstance(raw, (int, float)) and math.isfinite(raw):
        return datetime.fromtimestamp(raw, UTC).isoformat()
    text = str(raw)
    for fmt in (None, "%Y-%m-%d-%H-%M-%S", "%Y%m%d-%H%M%S"):
        try:
            parsed = (datetime.fromisoformat(text) if fmt is None
                      else datetime.strptime(text, fmt))
        except ValueError:
            continue
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).isoformat()
    return None


def _local_dataset(path) -> bool:
    # `json`/`csv`/... builders and local folders name no Hub dataset.
    return (not isinstance(path, str) or path in {"json", "csv", "parquet", "text", "arrow"}
            or bool(LOCAL_PATH.match(path)))


def parse_lm_eval(doc) -> list[dict]:
    """`results` and `groups: {task: {"metric,filter": value, "metric_stderr,filter": ..}}`
    with `higher_is_better`, `versions`, `configs`, `n-shot`, `n-samples`, `group_subtasks`;
    0.3 files use plain "acc" / "acc_stderr" keys and have no `higher_is_better`."""
    if isinstance(doc, str):
        try:
            doc = json.loads(doc)
        except json.JSONDecodeError as exc:
            raise Invalid(f"not JSON: {exc}", field="content") from None
    results = doc.get("results") if isinstance(doc, dict) else None
    if not isinstance(results, dict) or not results:
        raise Invalid("an lm-eval results file needs a non-empty 'results' object",
                      field="content.results")
    groups = doc.get("groups") if isinstance(doc.get("groups"), dict) else {}
    # A group may be listed only under `groups` (some 0.4 releases): it is imported too.
    tasks = {**{g: v for g, v in groups.items() if g not in results}, **results}
    versions, configs = doc.get("versions") or {}, doc.get("configs") or {}
    n_shot, n_samples = doc.get("n-shot") or {}, doc.get("n-samples") or {}
    directions = doc.get("higher_is_better") or {}
    subtasks = doc.get("group_subtasks") or {}
    run_config = doc.get("config") if isinstance(doc.get("config"), dict) else {}
    origin = scrub_paths({
        "format": "lm-eval-harness", "lm_eval_version": doc.get("lm_eval_version"),
        "git_hash": doc.get("git_hash"), "date": iso_date(doc.get("date")),
        "model": run_config.get("model"), "model_args": run_config.get("model_args"),
        "model_name": doc.get("model_name")})
    out = []
    for task, values in tasks.items():
        where = f"content.{'results' if task in results else 'groups'}.{task}"
        if not isinstance(values, dict):
            raise Invalid(f"results[{task!r}] must be an object", field=where)
        wanted = directions.get(task) if isinstance(directions.get(task), dict) else None
        metrics, stderr, higher, warnings = {}, {}, {}, []
        for key, value in values.items():
            name, _, filt = key.partition(",")
            is_err = name.endswith("_stderr")
            base = name[: -len("_stderr")] if is_err else name
            if (base not in wanted) if wanted is not None else (base in NOT_METRICS):
                continue
            # lm-eval's default filter is "none"; keep any other filter in the name so
            # "exact_match,strict-match" and "exact_match,flexible-extract" stay apart.
            label = base if filt in ("", "none") else f"{base},{filt}"
            number = _number(value)
            if number is None:
                if isinstance(value, (int, float, str)) and not isinstance(value, bool):
                    what = "stderr of " if is_err else ""
                    warnings.append(f"{task}: {what}{label} is {value!r}; stored as absent")
                continue
            if is_err:
                stderr[label] = number
            else:
                metrics[label] = number
                if wanted is not None and isinstance(wanted.get(base), bool):
                    higher[label] = wanted[base]
        if not metrics:
            if warnings or task in groups:
                raise Invalid(f"{task!r} has no finite metric values", field=where)
            continue
        cfg = scrub_paths(configs.get(task)) if isinstance(configs.get(task), dict) else {}
        shots = n_shot.get(task, cfg.get("num_fewshot"))
        alias = values.get("alias")
        path = cfg.get("dataset_path")
        dataset = {"type": task if _local_dataset(path) else path,
                   "name": (alias or task).strip(" -") or task,
                   "config": cfg.get("dataset_name") or None,
                   "split": cfg.get("test_split") or cfg.get("validation_split") or None,
                   "revision": (cfg.get("dataset_kwargs") or {}).get("revision")
                   if isinstance(cfg.get("dataset_kwargs"), dict) else None,
                   "args": {"num_few_shot": shots} if isinstance(shots, int) else None}
        hub = {"task": {"type": "text-generation", "name": task},
               "dataset": {k: v for k, v in dataset.items() if v is not None},
               "metrics": {label: {"type": label.partition(",")[0],
                                   "config": label.partition(",")[2] or None}
                           for label in metrics}}
        details = {"stderr": stderr, "version": versions.get(task), "n_shot": shots,
                   "alias": alias, "higher_is_better": higher,
                   "n_samples": n_samples.get(task), "subset": cfg.get("dataset_name"),
                   "hub": hub, "warnings": warnings}
        if task in subtasks or task in groups:
            details["subtasks"] = list(subtasks.get(task) or [])
        out.append({"suite_id": task, "suite_version": _version(versions.get(task)),
                    "dataset_name": (path if not _local_dataset(path) else None) or task,
                    "config": cfg, "metrics": metrics, "details": details,
                    "origin": origin, "entry": None})
    if not out:
        raise Invalid("no numeric metrics in 'results'", field="content.results")
    # Tasks over the same dataset split would be one result to the Hub; the later ones are
    # told apart by their task name as dataset type (as the card export does).
    seen = set()
    for item in out:
        d = item["details"]["hub"]["dataset"]
        key = (d["type"], d.get("config"), d.get("split"), d.get("revision"))
        if key in seen:
            d["type"] = item["suite_id"]
            key = (d["type"], *key[1:])
        seen.add(key)
    return out


def _refuse_aliases(block: str) -> None:
    # YAML anchors/aliases let a few bytes expand into gigabytes; cards never need them.
    try:
        for token in yaml.scan(block):
            if isinstance(token, (yaml.AliasToken, yaml.AnchorToken)):
                raise Invalid("YAML anchors and aliases are not accepted", field="content")
    except yaml.YAMLError as exc:
        raise Invalid(f"front matter is not valid YAML: {exc}", field="content") from None


def front_matter(text: str) -> dict:
    """The card's metadata, read by huggingface_hub's own parser (as the Hub reads it)."""
    match = REGEX_YAML_BLOCK.search(text.lstrip("\ufeff"))
    if not match:
        raise Invalid("README has no YAML front matter (a leading '---' block)",
                      field="content")
    _refuse_aliases(match.group(2))
    try:
        card = ModelCard(text.lstrip("\ufeff"), ignore_metadata_errors=True)
    except Exception as exc:  # noqa: BLE001 (the Hub's parser raises several kinds; all mean a bad card)
        raise Invalid(f"front matter is not valid card metadata: {exc}",
                      field="content") from None
    return card.data.to_dict() | ({"model-index": _raw_index(match.group(2))})


def _raw_index(block: str):
    # ModelCardData drops a model-index it cannot read; keep it to say what is wrong.
    try:
        meta = yaml.safe_load(block)
    except yaml.YAMLError as exc:
        raise Invalid(f"front matter is not valid YAML: {exc}", field="content") from None
    return meta.get("model-index") if isinstance(meta, dict) else None


CARD_METADATA = ("license", "language", "library_name", "pipeline_tag", "base_model",
                 "datasets", "tags")


def parse_model_index(content) -> list[dict]:
    meta = front_matter(content) if isinstance(content, str) else content
    index = meta.get("model-index") if isinstance(meta, dict) else None
    if not isinstance(index, list) or not index:
        raise Invalid("no 'model-index' list in the metadata", field="content.model-index")
    card_meta = {k: meta[k] for k in CARD_METADATA if meta.get(k) is not None}
    out, seen = [], {}
    for i, entry in enumerate(index):
        blocks = (entry or {}).get("results") if isinstance(entry, dict) else None
        if not isinstance(blocks, list):
            raise Invalid("each model-index entry needs a 'results' list",
                          field=f"content.model-index[{i}].results")
        for j, block in enumerate(blocks):
            where = f"content.model-index[{i}].results[{j}]"
            out.append(_parse_block(entry.get("name"), block, where, card_meta, seen))
    if not out:
        raise Invalid("the model-index lists no numeric results", field="content.model-index")
    return out


def _parse_block(entry: str | None, block, where: str, card_meta: dict, seen: dict) -> dict:
    """One model-index result (a task on a dataset, several metrics), read with
    huggingface_hub's `model_index_to_eval_results` so we accept what the Hub accepts."""
    if not isinstance(block, dict) or not isinstance(block.get("dataset"), dict) \
            or not block["dataset"].get("type"):
        raise Invalid("each result needs dataset.type and dataset.name", field=f"{where}.dataset")
    metrics_in = block.get("metrics")
    if not isinstance(metrics_in, list) or not metrics_in or any(
            not isinstance(m, dict) or not m.get("type") or _number(m.get("value")) is None
            for m in metrics_in):
        raise Invalid("each metric needs a type and a finite numeric value",
                      field=f"{where}.metrics")
    if not isinstance(block.get("task"), dict) or not block["task"].get("type"):
        raise Invalid("each result needs task.type", field=f"{where}.task")
    try:
        _, evals = model_index_to_eval_results([{"name": entry or "model", "results": [block]}])
    except (KeyError, ValueError, TypeError) as exc:
        raise Invalid(f"not a valid model-index result: {exc}", field=where) from None
    first = evals[0]
    key = first.unique_identifier
    if key in seen:
        raise Invalid(f"repeats the task, dataset, config, split and revision of "
                      f"{seen[key]}; the Hub would merge them", field=where)
    seen[key] = where
    metrics, hub_metrics, stderr = {}, {}, {}
    for k, e in enumerate(evals):
        label = e.metric_type if not e.metric_config else f"{e.metric_type},{e.metric_config}"
        if label in metrics:
            raise Invalid(f"metric {label!r} appears twice in one result",
                          field=f"{where}.metrics[{k}]")
        metrics[label] = float(e.metric_value)
        args = dict(e.metric_args or {})
        if _number(args.get("stderr")) is not None:
            stderr[label] = float(args.pop("stderr"))
        hub_metrics[label] = {k2: v for k2, v in (("type", e.metric_type),
                                                    ("config", e.metric_config),
                                                    ("name", e.metric_name),
                                                    ("args", args or None)) if v is not None}
    dataset = {"type": first.dataset_type, "name": first.dataset_name,
               "config": first.dataset_config, "split": first.dataset_split,
               "revision": first.dataset_revision, "args": first.dataset_args}
    hub = {"task": {k: v for k, v in (("type", first.task_type), ("name", first.task_name))
                    if v is not None},
           "dataset": {k: v for k, v in dataset.items() if v is not None},
           "metrics": hub_metrics}
    return {"suite_id": str(first.dataset_type)[:128],
            "suite_version": _version((first.dataset_args or {}).get("suite_version")),
            "dataset_name": str(first.dataset_name)[:200],
            "config": {"task": hub["task"], "dataset": hub["dataset"]},
            "metrics": metrics,
            "details": {"hub": hub, "stderr": stderr,
                        "verified": [bool(e.verified) for e in evals], "warnings": []},
            "origin": {"format": "model-index", "card_metadata": card_meta,
                       "source_name": first.source_name, "source_url": first.source_url},
            "entry": entry}


def _checkpoint_for_entry(session: Session, model: AIModel, entry: str | None):
    """model-index entries named "lab/model@checkpoint" (as we export them) map back."""
    if not entry or "@" not in entry:
        return None
    name = entry.rsplit("@", 1)[1]
    return session.exec(select(Checkpoint).where(Checkpoint.model_id == model.id,
                                                 Checkpoint.name == name)).first()


def _own_result(session: Session, model: AIModel, url: str | None) -> EvalResult | None:
    """The stored result a card's source URL points back to, if it is one of this model's."""
    match = OWN_RESULT.search(url or "")
    if not match:
        return None
    row = session.get(EvalResult, int(match.group(1)))
    return row if row is not None and row.model_id == model.id else None


def _source(origin: dict, data: ReportedImport) -> dict:
    # A file's own source wins (a card names one per result); the request fills gaps.
    from app.evals.hf_export import MEASURED_SOURCE, REPORTED_SOURCE

    name = origin.get("source_name") or data.source_name
    url = origin.get("source_url") or data.source_url
    return {"source_name": None if name in (MEASURED_SOURCE, REPORTED_SOURCE) else name,
            "source_url": None if OWN_RESULT.search(url or "") else url}


def hub_identity(hub: dict) -> list:
    """What makes a reported row one result: the Hub's grouping key plus the task name, so
    two lm-eval tasks over one dataset split (lambada_openai, lambada_openai_cloze) stay two."""
    d = hub["dataset"]
    return [hub["task"]["type"], hub["task"].get("name"), d["type"], d.get("config"),
            d.get("split"), d.get("revision")]


def import_reported(session: Session, actor: Principal, model_id: int,
                    data: ReportedImport) -> list[EvalResult]:
    """Store a lab's reported numbers (source="reported"); re-importing updates in place."""
    model = get_model(session, actor, model_id)
    actor.require_member(model.lab_id)
    size = len(data.content) if isinstance(data.content, str) else len(json.dumps(data.content))
    if size > MAX_CONTENT:
        raise TooLarge(f"at most {MAX_CONTENT} characters per import", field="content")
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
        own = _own_result(session, model, item["origin"].get("source_url"))
        if own is not None and own.source == "measured":
            continue  # the registry's own measurement, exported and brought back
        target = ckpt or _checkpoint_for_entry(session, model, item["entry"])
        origin = item["origin"] | _source(item["origin"], data) | {"entry": item["entry"]}
        hub = item["details"]["hub"]
        key = result_key("reported", model.id, target.id if target else None,
                         *hub_identity(hub))
        row = own if own is not None else store_result(session, EvalResult(
            result_key=key, source="reported", model_id=model.id,
            checkpoint_id=target.id if target else None,
            manifest_digest=target.manifest_digest if target else None,
            suite_id=item["suite_id"], suite_version=item["suite_version"],
            config=item["config"], config_digest=digest(item["config"]),
            dataset_name=item["dataset_name"], metrics=item["metrics"],
            details=item["details"], origin=origin, created_by=actor.user_id))
        details = row.details | item["details"]
        # A re-import without a source keeps the one given before; one with a source sets it.
        merged = row.origin | {k: v for k, v in origin.items() if v is not None}
        if (row.metrics, row.details, row.origin) != (item["metrics"], details, merged):
            row.metrics, row.details, row.origin = item["metrics"], details, merged
            session.add(row)
        rows.append(row)
    session.flush()
    if data.format == "model-index" and parsed:
        adopt_card_metadata(session, actor, model, parsed[0]["origin"]["card_metadata"], rows)
    lab = session.get(Lab, model.lab_id)
    record(session, actor, "model", model.id, "reported_results_imported",
           {"model": f"{lab.slug}/{model.slug}", "results": [r.result_key for r in rows]},
           lab_id=model.lab_id, visibility=_visibility(session, model, rows),
           data={"format": data.format, "count": len(rows)})
    return rows


# The card's top-level keys and the model fields they fill.
METADATA_FIELDS = {"license": "licence", "language": "languages", "library_name": "library_name",
                   "pipeline_tag": "pipeline_tag", "base_model": "base_model",
                   "datasets": "datasets"}


def adopt_card_metadata(session: Session, actor: Principal, model: AIModel, meta: dict,
                        rows: list[EvalResult]) -> None:
    """An imported card's licence, languages, library, pipeline tag, base model and datasets
    fill the model's empty fields (never overwrite them); invalid ones become warnings."""
    from pydantic import ValidationError

    from app.models.schemas import CardInput
    from app.models.service import model_state

    filled = {}
    for key, attr in METADATA_FIELDS.items():
        value = meta.get(key)
        if value is None or getattr(model, attr):
            continue
        if attr in ("languages", "base_model", "datasets") and isinstance(value, str):
            value = [value]
        try:
            filled[attr] = getattr(CardInput.model_validate({attr: value}), attr)
        except ValidationError as exc:
            note = f"card metadata {key!r} not adopted: {exc.errors()[0]['msg']}"
            for row in rows:
                row.details = row.details | {"warnings": [*row.details.get("warnings", []),
                                                          note]}
                session.add(row)
    if not filled:
        return
    from app.versioning import claim_version

    claim_version(session, model, model.version)
    for attr, value in filled.items():
        setattr(model, attr, value)
    session.add(model)
    record(session, actor, "model", model.id, "updated", model_state(model),
           lab_id=model.lab_id, visibility="public" if model.public else "lab",
           data={"from_card": sorted(filled)})


def _visibility(session: Session, model: AIModel, rows: list[EvalResult]) -> str:
    # Public only if every number is: results for a non-public checkpoint keep the
    # event (and its count) with the lab.
    public = model.public and all(
        r.checkpoint_id is None
        or session.get(Checkpoint, r.checkpoint_id).access_level == "public" for r in rows)
    return "public" if public else "lab"


def _reported_row(session: Session, actor: Principal, result_id: int) -> EvalResult:
    row = get_result(session, actor, result_id)
    if row.source != "reported":
        raise Invalid("only reported results are edited; measured ones are re-run",
                      field="result_id")
    actor.require_member(get_model(session, actor, row.model_id).lab_id)
    return row


def _state(row: EvalResult) -> dict:
    return {"result_key": row.result_key, "suite_id": row.suite_id, "metrics": row.metrics,
            "source_name": row.origin.get("source_name"),
            "source_url": row.origin.get("source_url"), "hub": row.details.get("hub")}


def update_reported(session: Session, actor: Principal, result_id: int,
                    data: ReportedUpdate) -> EvalResult:
    """Repair a reported result (its source, its Hub task or dataset names)."""
    row = _reported_row(session, actor, result_id)
    sent = data.model_dump(exclude_unset=True)
    origin = dict(row.origin)
    for key in ("source_name", "source_url"):
        if key in sent:
            origin[key] = sent[key]
    hub = dict(row.details.get("hub") or _legacy_hub(row))
    task, dataset = dict(hub["task"]), dict(hub["dataset"])
    for key, (part, name) in {"task_type": (task, "type"), "task_name": (task, "name"),
                              "dataset_name": (dataset, "name")}.items():
        if key in sent:
            part[name] = sent[key]
    hub |= {"task": task, "dataset": dataset}
    row.origin, row.details = origin, row.details | {"hub": hub}
    session.add(row)
    session.flush()
    model = session.get(AIModel, row.model_id)
    # Recorded on the model (like imports): its visibility rule then covers the event,
    # also after the result itself is deleted.
    record(session, actor, "model", model.id, "reported_result_updated", _state(row),
           lab_id=model.lab_id, visibility=_visibility(session, model, [row]),
           data={"result_id": row.id})
    return row


def delete_reported(session: Session, actor: Principal, result_id: int) -> dict:
    row = _reported_row(session, actor, result_id)
    model = session.get(AIModel, row.model_id)
    state, visibility = _state(row), _visibility(session, model, [row])
    session.delete(row)
    session.flush()
    record(session, actor, "model", model.id, "reported_result_deleted", state,
           lab_id=model.lab_id, visibility=visibility, data={"result_id": result_id})
    return {"id": result_id, "deleted": True}


def _legacy_hub(row: EvalResult) -> dict:
    from app.evals.hf_export import legacy_hub

    return legacy_hub(row)
