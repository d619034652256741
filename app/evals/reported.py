"""Importing results a lab reports: lm-evaluation-harness JSON and HF `model-index` cards,
each stored with the Hub fields (`details.hub`) its card export writes back."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, timedelta

from huggingface_hub import ModelCard
from huggingface_hub.repocard import REGEX_YAML_BLOCK
from huggingface_hub.repocard_data import model_index_to_eval_results
from sqlmodel import Session, select

from app.access import model_audience, results_audience
from app.auth.principal import Principal
from app.checkpoints.service import get_checkpoint
from app.checkpoints.tables import Checkpoint
from app.errors import Invalid
from app.evals.schemas import ReportedImport, ReportedUpdate
from app.evals.service import get_result, result_key, store_result
from app.evals.tables import EvalResult
from app.events.service import record
from app.labs.tables import Lab
from app.models.service import get_model
from app.models.tables import AIModel
from app.safeyaml import check_depth, load_yaml
from app.timeutil import digest, utcnow

# Limits on one import: a real lm-eval results file or model card is tens of kB.
MAX_RESULTS = 500
MAX_CONTENT_BYTES = 2 * 1024 * 1024
MAX_METRICS = 200
MAX_VERSION = 2**31 - 1
# Our own results, when a card exported here comes back (see import_reported).
OWN_RESULT = re.compile(r"/api/v1/evals/results/(\d+)$")
# lm-eval keys that are bookkeeping, not metrics, in files without `higher_is_better`.
NOT_METRICS = {"alias", "sample_len", "samples", "name", "sample_count"}
LOCAL_PATH = re.compile(r"^(?:/|~|\.{1,2}/|[A-Za-z]:[\\/])")
# How far ahead of the registry's clock a file's own `date` may be: the harness writes
# the clock of the machine that ran it, which may run a little fast.
CLOCK_SKEW = timedelta(minutes=5)


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
        try:
            return datetime.fromtimestamp(raw, UTC).isoformat()
        except (OverflowError, OSError, ValueError):
            raise Invalid(f"date {raw} is no time the registry can read",
                          field="content.date") from None
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


def _lm_eval_json(text: str):
    """The harness writes with Python's json, so an undefined value is a bare NaN or
    Infinity: read as its name, it is then stored as absent with a warning, never refused
    or dropped silently. Size and depth are bounded as in app.safeyaml.load_json."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_CONTENT_BYTES:
        raise Invalid(f"{size} bytes of JSON; at most {MAX_CONTENT_BYTES} are accepted",
                      field="content", limit=MAX_CONTENT_BYTES)
    try:
        doc = json.loads(text, parse_constant=str)
    except RecursionError:
        raise Invalid("nested too deeply", field="content") from None
    except ValueError as exc:
        raise Invalid(f"not valid JSON: {exc}", field="content") from None
    check_depth(doc, field="content")
    return doc


def parse_lm_eval(doc) -> list[dict]:
    """`results` and `groups: {task: {"metric,filter": value, "metric_stderr,filter": ..}}`
    with `higher_is_better`, `versions`, `configs`, `n-shot`, `n-samples`, `group_subtasks`;
    0.3 files use plain "acc" / "acc_stderr" keys and have no `higher_is_better`."""
    if isinstance(doc, str):
        doc = _lm_eval_json(doc)
    doc = _bounded_content(doc)
    results = doc.get("results") if isinstance(doc, dict) else None
    if not isinstance(results, dict) or not results:
        raise Invalid("an lm-eval results file needs a non-empty 'results' object",
                      field="content.results")
    groups = _mapping(doc.get("groups"), "content.groups")
    # A group may be listed only under `groups` (some 0.4 releases): it is imported too.
    tasks = {**{g: v for g, v in groups.items() if g not in results}, **results}
    versions = _mapping(doc.get("versions"), "content.versions")
    configs = _mapping(doc.get("configs"), "content.configs")
    n_shot = _mapping(doc.get("n-shot"), "content.n-shot")
    n_samples = _mapping(doc.get("n-samples"), "content.n-samples")
    directions = _mapping(doc.get("higher_is_better"), "content.higher_is_better")
    subtasks = _mapping(doc.get("group_subtasks"), "content.group_subtasks")
    run_config = _mapping(doc.get("config"), "content.config")
    measured = iso_date(doc.get("date"))
    if measured is not None and datetime.fromisoformat(measured) > utcnow() + CLOCK_SKEW:
        # Shown as when the lab measured: a claim about the future is no evidence.
        raise Invalid(f"date {measured} is in the future; the registry's clock says "
                      f"{utcnow().isoformat(timespec='seconds')}", field="content.date")
    origin = scrub_paths({
        "format": "lm-eval-harness", "lm_eval_version": doc.get("lm_eval_version"),
        "git_hash": doc.get("git_hash"), "date": measured,
        "model": run_config.get("model"), "model_args": run_config.get("model_args"),
        "model_name": doc.get("model_name")})
    out = []
    for task, values in tasks.items():
        where = f"content.{'results' if task in results else 'groups'}.{task}"
        _text(task, where, 128, required=True)
        values = _mapping(values, where, required=True)
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
        if len(metrics) > MAX_METRICS:
            raise Invalid(f"at most {MAX_METRICS} metrics per task", field=where)
        cfg = scrub_paths(_mapping(configs.get(task), f"content.configs.{task}"))
        shots = n_shot.get(task, cfg.get("num_fewshot"))
        alias = _text(values.get("alias"), f"{where}.alias", 200)
        path = _text(cfg.get("dataset_path"), f"content.configs.{task}.dataset_path", 200)
        subset = _text(cfg.get("dataset_name"), f"content.configs.{task}.dataset_name", 200)
        kwargs = cfg.get("dataset_kwargs") if isinstance(cfg.get("dataset_kwargs"), dict) else {}
        dataset = {"type": task if _local_dataset(path) else path,
                   "name": (alias or task).strip(" -") or task,
                   "config": subset or None,
                   "split": cfg.get("test_split") or cfg.get("validation_split") or None,
                   "revision": kwargs.get("revision"),
                   "args": {"num_few_shot": shots}
                   if isinstance(shots, int) and not isinstance(shots, bool) else None}
        hub = {"task": {"type": "text-generation", "name": task},
               "dataset": {k: v for k, v in dataset.items() if v is not None},
               "metrics": {label: {"type": label.partition(",")[0],
                                   "config": label.partition(",")[2] or None}
                           for label in metrics}}
        details = {"stderr": stderr, "version": versions.get(task), "n_shot": shots,
                   "alias": alias, "higher_is_better": higher,
                   "n_samples": n_samples.get(task), "subset": subset,
                   "hub": hub, "warnings": warnings}
        if task in subtasks or task in groups:
            details["subtasks"] = [str(t) for t in _sequence(
                subtasks.get(task), f"content.group_subtasks.{task}")]
        out.append({"suite_id": task,
                    "suite_version": _version(versions.get(task), f"content.versions.{task}"),
                    "dataset_name": (path if not _local_dataset(path) else None) or task[:200],
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


def front_matter(text: str) -> dict:
    """The card's metadata, found with huggingface_hub's own pattern (a leading blank line
    is fine, an indented '---' inside the YAML is not an end) and read by its parser."""
    text = text.lstrip("\ufeff")
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_CONTENT_BYTES:
        raise Invalid(f"{size} bytes; at most {MAX_CONTENT_BYTES} per import", field="content",
                      limit=MAX_CONTENT_BYTES)
    match = REGEX_YAML_BLOCK.search(text)
    if not match:
        raise Invalid("README has no YAML front matter (a leading '---' block)",
                      field="content")
    # Aliases, anchors and depth are refused before huggingface_hub's yaml.safe_load runs.
    meta = load_yaml(match.group(2), field="content", max_bytes=MAX_CONTENT_BYTES) or {}
    if not isinstance(meta, dict):
        raise Invalid("front matter must be a YAML mapping", field="content")
    try:
        card = ModelCard(text, ignore_metadata_errors=True)
    except Exception as exc:  # noqa: BLE001 (the Hub's parser raises several kinds; all mean a bad card)
        raise Invalid(f"front matter is not valid card metadata: {exc}",
                      field="content") from None
    # ModelCardData drops a model-index it cannot read; keep it to say what is wrong.
    return card.data.to_dict() | {"model-index": meta.get("model-index")}


CARD_METADATA = ("license", "language", "library_name", "pipeline_tag", "base_model",
                 "datasets", "tags")


def parse_model_index(content) -> list[dict]:
    meta = front_matter(content) if isinstance(content, str) else _bounded_content(content)
    index = meta.get("model-index") if isinstance(meta, dict) else None
    if not isinstance(index, list) or not index:
        raise Invalid("no 'model-index' list in the metadata", field="content.model-index")
    card_meta = {k: meta[k] for k in CARD_METADATA if meta.get(k) is not None}
    out, seen = [], {}
    for i, entry in enumerate(index):
        at = f"content.model-index[{i}]"
        entry = _mapping(entry, at, required=True)
        name = _text(entry.get("name"), f"{at}.name", 300)
        for j, block in enumerate(_sequence(entry.get("results"), f"{at}.results")):
            where = f"{at}.results[{j}]"
            out.append(_parse_block(name, _mapping(block, where, required=True), where,
                                    card_meta, seen))
            if len(out) > MAX_RESULTS:
                raise Invalid(f"at most {MAX_RESULTS} results per import", field="content")
    if not out:
        raise Invalid("the model-index lists no numeric results", field="content.model-index")
    return out


def _parse_block(entry: str | None, block, where: str, card_meta: dict, seen: dict) -> dict:
    """One model-index result (a task on a dataset, several metrics), read with
    huggingface_hub's `model_index_to_eval_results` so we accept what the Hub accepts."""
    dataset = _mapping(block.get("dataset"), f"{where}.dataset")
    if not (dataset.get("type") or dataset.get("name")):
        raise Invalid("each result needs dataset.type", field=f"{where}.dataset")
    _text(dataset.get("type"), f"{where}.dataset.type", 128, required=True)
    suite_version = _version(_mapping(dataset.get("args"), f"{where}.dataset.args")
                             .get("suite_version"), f"{where}.dataset.args.suite_version")
    metrics_in = _sequence(block.get("metrics"), f"{where}.metrics")
    if not metrics_in or any(
            not isinstance(m, dict) or not m.get("type") or _number(m.get("value")) is None
            for m in metrics_in):
        raise Invalid("each metric needs a type and a finite numeric value",
                      field=f"{where}.metrics")
    if len(metrics_in) > MAX_METRICS:
        raise Invalid(f"at most {MAX_METRICS} metrics per result", field=f"{where}.metrics")
    for k, m in enumerate(metrics_in):
        _text(m["type"], f"{where}.metrics[{k}].type", 200, required=True)
        _text(m.get("config"), f"{where}.metrics[{k}].config", 200)
    _text(dataset.get("name"), f"{where}.dataset.name", 200, required=True)
    task = _mapping(block.get("task"), f"{where}.task")
    if not task.get("type"):
        raise Invalid("each result needs task.type (e.g. text-generation)",
                      field=f"{where}.task")
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
            "suite_version": suite_version,
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
           lab_id=model.lab_id, visibility=results_audience(session, model, [r.checkpoint_id for r in rows]),
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
           lab_id=model.lab_id, visibility=model_audience(model),
           data={"from_card": sorted(filled)})


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
           lab_id=model.lab_id, visibility=results_audience(session, model, [row.checkpoint_id]),
           data={"result_id": row.id})
    return row


def delete_reported(session: Session, actor: Principal, result_id: int) -> dict:
    row = _reported_row(session, actor, result_id)
    model = session.get(AIModel, row.model_id)
    state, visibility = _state(row), results_audience(session, model, [row.checkpoint_id])
    session.delete(row)
    session.flush()
    record(session, actor, "model", model.id, "reported_result_deleted", state,
           lab_id=model.lab_id, visibility=visibility, data={"result_id": result_id})
    return {"id": result_id, "deleted": True}


def _legacy_hub(row: EvalResult) -> dict:
    from app.evals.hf_export import legacy_hub

    return legacy_hub(row)
