"""Evaluation jobs and results: enqueueing, re-runs, idempotent result storage, listings."""

from __future__ import annotations

import subprocess
from functools import lru_cache

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from app.access import (
    checkpoint_audience,
    visible_checkpoints,
    visible_results,
    visible_runs,
)
from app.auth.principal import SYSTEM, Principal
from app.checkpoints.service import get_checkpoint
from app.checkpoints.tables import Checkpoint
from app.db import ROOT
from app.errors import Conflict, InvalidTransition, NotFound
from app.evals.schemas import ResultRead, RunRead
from app.evals.tables import EvalResult, EvalResultCheckpoint, EvalRun
from app.events.service import record
from app.models.service import find_model, get_model
from app.models.tables import AIModel
from app.norms.loader import policies_for
from app.pagination import PageRequest, paginate
from app.plans.tables import ReleasePlan
from app.timeutil import digest, utcnow

TRANSFER_SUITE = "detectability_transfer"


def suites() -> dict:
    from app.evals.suites import SUITES  # torch-free specs

    return SUITES


@lru_cache(maxsize=1)
def code_version() -> str:
    """`git describe` of the registry's source, else the installed package version."""
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty", "--tags"], cwd=ROOT,
                             check=False,
                             capture_output=True, text=True, timeout=5)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"stagegate {version('stagegate')}"
    except PackageNotFoundError:
        return "unknown"


def suite_version(suite_id: str) -> int:
    # The transfer matrix reuses the detectability suite's sampling and detector.
    return suites()["detectability" if suite_id == TRANSFER_SUITE else suite_id].version


def known_suites() -> list[str]:
    return [*sorted(suites()), TRANSFER_SUITE]


def split_suite_ref(ref: str, field: str = "suite") -> tuple[str, int | None]:
    """"detectability" or "detectability@1" (as cards and results write it) -> (id, version)."""
    suite_id, at, version = ref.partition("@")
    if not at:
        return ref, None
    if not version.isdigit():
        raise NotFound(f"no suite {ref!r}; write SUITE or SUITE@VERSION", field=field)
    return suite_id, int(version)


def current_suite(ref: str, field: str = "suite") -> str:
    """The suite id a run request names; a version, if given, must be the current one."""
    suite_id, version = split_suite_ref(ref, field)
    if suite_id not in known_suites():
        raise NotFound(f"no suite {suite_id!r}; known: {known_suites()}", field=field)
    if version is not None and version != suite_version(suite_id):
        raise NotFound(f"suite {suite_id} is at version {suite_version(suite_id)}, not "
                       f"{version}; runs always use the current version", field=field)
    return suite_id


ACCESS_ORDER = {"public": 0, "partners": 1, "internal": 2}


def transfer_family(session: Session, anchor: Checkpoint) -> list[Checkpoint]:
    """The checkpoints a transfer matrix anchored at `anchor` compares: the model's
    checkpoints no more restricted than the anchor, so the result (shown with the
    anchor) never reveals numbers about a checkpoint its readers may not see."""
    rows = session.exec(select(Checkpoint).where(Checkpoint.model_id == anchor.model_id)
                        .order_by(Checkpoint.id))
    return [c for c in rows
            if ACCESS_ORDER.get(c.access_level, 2) <= ACCESS_ORDER.get(anchor.access_level, 2)]


def suites_for_model(session: Session, model_id: int) -> list[str] | None:
    """Registry suites that the policies of the model's plans require measured; None when
    no plan of the model follows a policy that names one (callers keep their default)."""
    wanted: set[str] = set()
    declared = session.exec(select(ReleasePlan.policies).where(
        ReleasePlan.model_id == model_id, ReleasePlan.status != "withdrawn")).all()
    for policy in policies_for([p for ids in declared for p in (ids or [])]):
        for rule in policy.rules:
            if rule.check == "required_evaluations" and rule.params.source != "reported":
                wanted.update(s for s in rule.params.suites if s in suites())
    return sorted(wanted) or None


def required_suites(session: Session, model: AIModel) -> list[str]:
    """Suites every checkpoint of `model` must have: those the policies its plans follow
    require measured (app/norms); every suite when no policy names one."""
    return suites_for_model(session, model.id) or sorted(suites())


def run_state(run: EvalRun) -> dict:
    return {"checkpoint_id": run.checkpoint_id, "suite": f"{run.suite_id}@{run.suite_version}",
            "seed": run.seed, "status": run.status, "attempts": run.attempts,
            "result_id": run.result_id}


def enqueue_run(session: Session, actor: Principal, ckpt: Checkpoint, suite_id: str, *,
                reason: str, seed: int = 0) -> EvalRun | None:
    """Queue one job; None when the same job is already queued or running."""
    run = EvalRun(checkpoint_id=ckpt.id, model_id=ckpt.model_id, suite_id=suite_id,
                  suite_version=suite_version(suite_id), seed=seed, reason=reason,
                  requested_by=actor.user_id)
    try:
        # The partial unique index decides between two concurrent enqueuers.
        with session.begin_nested():
            session.add(run)
            session.flush()
    except IntegrityError:
        return None
    record(session, actor, "eval_run", run.id, "queued", run_state(run), lab_id=ckpt.lab_id,
           visibility=checkpoint_audience(session, ckpt))
    return run


def enqueue_for_checkpoint(session: Session, actor: Principal, ckpt: Checkpoint, *,
                           reason: str) -> list[EvalRun]:
    model = session.get(AIModel, ckpt.model_id)
    wanted = required_suites(session, model)
    if len(transfer_family(session, ckpt)) >= 2:
        wanted.append(TRANSFER_SUITE)
    runs = [enqueue_run(session, actor, ckpt, s, reason=reason) for s in wanted]
    return [r for r in runs if r is not None]


def enqueue_missing(session: Session) -> list[EvalRun]:
    """Queue every required suite a checkpoint lacks at the suite's current version.

    Runs at worker start and periodically, so bumping a suite's version re-measures every
    checkpoint. Any run at the current version counts as present: failed ones are not
    retried in a loop, cancelled ones stay cancelled; a member can always ask again.
    """
    have = set(session.exec(select(EvalRun.checkpoint_id, EvalRun.suite_id,
                                   EvalRun.suite_version)).all())
    queued = []
    models: dict[int, list[str]] = {}
    for ckpt in session.exec(select(Checkpoint).order_by(Checkpoint.id)):
        if ckpt.model_id not in models:
            models[ckpt.model_id] = required_suites(session, session.get(AIModel, ckpt.model_id))
        for suite_id in models[ckpt.model_id]:
            if (ckpt.id, suite_id, suite_version(suite_id)) not in have:
                run = enqueue_run(session, SYSTEM, ckpt, suite_id, reason="suite_version")
                if run:
                    queued.append(run)
    # One transfer matrix per model, anchored at its newest checkpoint.
    newest: dict[int, Checkpoint] = {}
    for ckpt in session.exec(select(Checkpoint).order_by(Checkpoint.id)):
        newest[ckpt.model_id] = ckpt
    for ckpt in newest.values():
        if ((ckpt.id, TRANSFER_SUITE, suite_version(TRANSFER_SUITE)) not in have
                and len(transfer_family(session, ckpt)) >= 2):
            run = enqueue_run(session, SYSTEM, ckpt, TRANSFER_SUITE, reason="suite_version")
            if run:
                queued.append(run)
    return queued


def request_run(session: Session, principal: Principal, checkpoint_id: int,
                suite_id: str) -> EvalRun:
    """A lab member or coordinator asks for a fresh measurement."""
    ckpt = get_checkpoint(session, principal, checkpoint_id)
    principal.require_member(ckpt.lab_id)
    suite_id = current_suite(suite_id)
    run = enqueue_run(session, principal, ckpt, suite_id, reason="rerun")
    if run is None:
        raise Conflict(f"a {suite_id} run of checkpoint {checkpoint_id} is already queued or "
                       "running", field="suite")
    return run


def cancel_run(session: Session, principal: Principal, run_id: int) -> EvalRun:
    run = get_run(session, principal, run_id)
    ckpt = session.get(Checkpoint, run.checkpoint_id)
    principal.require_member(ckpt.lab_id)
    if run.status != "queued":
        raise InvalidTransition(f"only a queued run can be cancelled; this one is {run.status}",
                                field="status")
    run.status, run.finished_at = "cancelled", utcnow()
    session.add(run)
    record(session, principal, "eval_run", run.id, "cancelled", run_state(run),
           lab_id=ckpt.lab_id, visibility=checkpoint_audience(session, ckpt))
    return run


def get_run(session: Session, principal: Principal, run_id: int) -> EvalRun:
    run = session.exec(select(EvalRun).where(EvalRun.id == run_id,
                                             visible_runs(principal))).first()
    if run is None:
        raise NotFound(f"no evaluation run {run_id}", field="run_id")
    return run


def list_runs(session: Session, principal: Principal, page: PageRequest, *,
              model: str | None = None, checkpoint_id: int | None = None,
              status: str | None = None):
    query = select(EvalRun).where(visible_runs(principal))
    if model:
        query = query.where(EvalRun.model_id == find_model(session, principal, model).id)
    if checkpoint_id is not None:
        query = query.where(EvalRun.checkpoint_id == checkpoint_id)
    if status:
        query = query.where(EvalRun.status == status)
    return paginate(session, query, EvalRun.id, page)


def result_key(*parts) -> str:
    return digest(list(parts))


def measured_key(manifest_digest: str, suite_id: str, suite_version: int,
                 dataset_digest: str, seed: int, config_digest: str) -> str:
    # The config digest is part of the key: a run with overridden settings measured
    # something else and must not be mistaken for the suite's standard number.
    return result_key("measured", manifest_digest, f"{suite_id}@{suite_version}",
                      dataset_digest, seed, config_digest)


def store_result(session: Session, result: EvalResult,
                 named: list[int] | None = None) -> EvalResult:
    """Insert once per result_key; a second writer gets the row the first one stored.
    `named`: every other checkpoint the numbers are about (a transfer matrix's family);
    the result is then visible only where all of them are (app.access.visible_results)."""
    try:
        with session.begin_nested():
            session.add(result)
            session.flush()
            ids = {result.checkpoint_id, *(named or ())} - {None}
            session.add_all(EvalResultCheckpoint(result_id=result.id, checkpoint_id=c)
                            for c in sorted(ids))
            session.flush()
        return result
    except IntegrityError:
        session.expunge(result) if result in session else None
        existing = session.exec(select(EvalResult).where(
            EvalResult.result_key == result.result_key)).first()
        if existing is None:
            raise
        return existing


def list_results(session: Session, principal: Principal, page: PageRequest, *,
                 model: str | None = None, checkpoint_id: int | None = None,
                 suite: str | None = None, source: str | None = None):
    query = select(EvalResult).where(visible_results(principal))
    if model:
        query = query.where(EvalResult.model_id == find_model(session, principal, model).id)
    if checkpoint_id is not None:
        query = query.where(EvalResult.checkpoint_id == checkpoint_id)
    if suite:
        suite_id, version = split_suite_ref(suite)
        query = query.where(EvalResult.suite_id == suite_id)
        if version is not None:
            query = query.where(EvalResult.suite_version == version)
    if source:
        query = query.where(EvalResult.source == source)
    return paginate(session, query, EvalResult.id, page)


def get_result(session: Session, principal: Principal, result_id: int) -> EvalResult:
    row = session.exec(select(EvalResult).where(EvalResult.id == result_id,
                                                visible_results(principal))).first()
    if row is None:
        raise NotFound(f"no evaluation result {result_id}", field="result_id")
    return row


def model_results(session: Session, principal: Principal, model_id: int):
    """(model, visible checkpoints, visible results, latest runs) for the model card."""
    model = get_model(session, principal, model_id)
    ckpts = list(session.exec(select(Checkpoint).where(
        Checkpoint.model_id == model.id, visible_checkpoints(principal))
        .order_by(Checkpoint.id)))
    results = list(session.exec(select(EvalResult).where(
        EvalResult.model_id == model.id, visible_results(principal))
        .order_by(EvalResult.id)))
    runs = list(session.exec(select(EvalRun).where(
        EvalRun.model_id == model.id, visible_runs(principal)).order_by(EvalRun.id)))
    return model, ckpts, results, runs


def read_run(run: EvalRun) -> RunRead:
    return RunRead.model_validate(run)


def read_result(result: EvalResult) -> ResultRead:
    return ResultRead.model_validate(result)
