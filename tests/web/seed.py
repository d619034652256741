"""Demo-like data for the web tests and bench/pages.py: the 2019 demo, a tiny hosted
family whose measured results are stored through the evaluation service, public
incidents, and two users with API tokens."""

from __future__ import annotations

import random
from datetime import date, timedelta
from pathlib import Path

from app.auth.principal import SYSTEM
from app.auth.service import create_token, create_user
from app.checkpoints.demo import DEMO_MODEL, _ensure_model, _ensure_plan
from app.checkpoints.schemas import CheckpointCreate
from app.db import session_scope
from app.demo import load_demo
from app.evals import service as evals
from app.evals.tables import EvalResult, EvalRun
from app.flows import upload_checkpoint
from app.incidents.schemas import IncidentCreate
from app.incidents.service import submit_incident, transition_incident
from app.models.service import find_model
from app.timeutil import digest, utcnow

SIZES = ["tiny-124m", "tiny-355m", "tiny-774m", "tiny-1558m"]


def tiny_dirs(root: Path) -> dict[str, Path]:
    """Four tiny random GPT-2 checkpoints (real safetensors, seconds to build)."""
    from app.evals.corpus import demo_corpus, split
    from tests.evals.conftest import save_tiny_model

    train, _ = split(demo_corpus())
    return {name: save_tiny_model(root / name, train[:60], seed=i)
            for i, name in enumerate(SIZES)}


def _metrics(suite: str, i: int, rng: random.Random) -> tuple[dict, dict]:
    if suite == "perplexity":
        ppl = 900 / (i + 1.5) + rng.random()
        return {"perplexity": ppl, "bits_per_byte": 2.4 - 0.2 * i,
                "nll_per_token": 6.5 - 0.4 * i}, {"documents": 40}
    if suite == "detectability":
        return {"tfidf_acc_t1": 0.95 - 0.05 * i, "tfidf_acc_topk40": 0.98 - 0.02 * i,
                "zeroshot_acc_t1": 0.7 - 0.03 * i}, {}
    if suite == "bias_association":
        m, d = {}, {"categories": {}}
        for j, cat in enumerate(["gender", "religion", "race"]):
            mean = 0.3 + 0.05 * j + 0.02 * i
            m[f"{cat}_association"] = mean
            m[f"{cat}_association_ci_low"] = mean - 0.08
            m[f"{cat}_association_ci_high"] = mean + 0.09
            d["categories"][cat] = {"mean": mean, "ci_low": mean - 0.08,
                                    "ci_high": mean + 0.09, "n_items": 126}
        m["mean_association"] = 0.38 + 0.02 * i
        m["mean_association_ci_low"], m["mean_association_ci_high"] = m["mean_association"] - .05, \
            m["mean_association"] + .05
        return m, d
    matrix = [[round(0.95 - 0.1 * abs(a - b) - 0.02 * a, 3) for b in range(4)] for a in range(4)]
    return ({"mean_self_accuracy": 0.92, "mean_transfer_accuracy": 0.78},
            {"labels": SIZES, "matrix": matrix, "method": "t1"})


def _measure(session, ckpt, suite: str, i: int, rng: random.Random) -> None:
    """A finished run and its result, as the worker would leave them."""
    version = evals.suite_version(suite)
    now = utcnow()
    run = EvalRun(checkpoint_id=ckpt.id, model_id=ckpt.model_id, suite_id=suite,
                  suite_version=version, status="succeeded", progress=1.0, attempts=1,
                  reason="upload", created_at=now, started_at=now, finished_at=now)
    session.add(run)
    session.flush()
    metrics, details = _metrics(suite, i, rng)
    config = {"seed": 0}
    result = EvalResult(
        result_key=evals.measured_key(ckpt.manifest_digest, suite, version, "d" * 64, 0,
                                      digest(config)),
        source="measured", model_id=ckpt.model_id, checkpoint_id=ckpt.id, run_id=run.id,
        manifest_digest=ckpt.manifest_digest, suite_id=suite, suite_version=version,
        config=config, config_digest=digest(config), dataset_name="pydoc-demo",
        dataset_digest="d" * 64, seed=0, code_version="seed", library_versions={"torch": "2"},
        device="cpu", dtype="float32", duration_s=1.5, tokens_processed=4000,
        metrics=metrics, details=details)
    evals.store_result(session, result)
    run.result_id = result.id


def seed(root: Path) -> dict:
    """Load everything; returns the tokens and ids tests need."""
    for _ in load_demo(with_models=False):
        pass
    dirs = tiny_dirs(root / "tiny")
    rng = random.Random(0)
    out: dict = {"model": DEMO_MODEL, "checkpoints": {}}
    with session_scope() as session:
        _ensure_model(session)
        _ensure_plan(session, list(dirs))
    for i, (name, path) in enumerate(dirs.items()):
        with session_scope() as session:
            handles = [(p.name, p.open("rb")) for p in sorted(path.iterdir()) if p.is_file()]
            try:
                ckpt = upload_checkpoint(session, SYSTEM, CheckpointCreate(
                    model=DEMO_MODEL, name=name, access_level="public"), handles,
                    enqueue=False)
            finally:
                for _, f in handles:
                    f.close()
            for suite in ("perplexity", "detectability", "bias_association"):
                _measure(session, ckpt, suite, i, rng)
            if i == len(dirs) - 1:
                _measure(session, ckpt, evals.TRANSFER_SUITE, i, rng)
            out["checkpoints"][name] = ckpt.id
    with session_scope() as session:
        model = find_model(session, SYSTEM, DEMO_MODEL)
        out["model_id"] = model.id
        coord = create_user(session, SYSTEM, "coord", coordinator=True)
        alice = create_user(session, SYSTEM, "alice", lab_slug="tinyscale", role="lab_admin")
        out["coord_token"] = create_token(session, SYSTEM, coord)[1]
        out["alice_token"] = create_token(session, SYSTEM, alice)[1]
        for n in range(3):
            inc = submit_incident(session, SYSTEM, IncidentCreate(
                title=f"Detector evasion report {n + 1}",
                summary="Samples from the **largest** size passed the detector.",
                occurred=date(2026, 1, 10) + timedelta(days=n), harm_types=["disinformation"],
                severity="medium", labs=["tinyscale"], models=[DEMO_MODEL]))
            for to in ("triaged", "confirmed"):
                inc = transition_incident(session, SYSTEM, inc.id, to, inc.version)
        out["incident_id"] = inc.id
    return out
