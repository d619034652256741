"""Remote evaluation workers, the registry's side: claims, lease renewals, the claimed job's
files and its result or failure, on the same queue, leases and poison-job limit as the
worker with database access (app/evals/worker.py). HTTP lives in remote_api.py."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

from sqlalchemy import update
from sqlmodel import Session, select

from app.auth.principal import Principal
from app.checkpoints.service import blob_store
from app.checkpoints.tables import Checkpoint
from app.errors import Conflict, Forbidden, Invalid, NotFound
from app.evals import service
from app.evals.schemas import FailureReport, Heartbeat, ResultUpload
from app.evals.tables import EvalRun
from app.evals.worker import _mine, _record, claim, family_digest, measured_result
from app.timeutil import utcnow

MAX_LEASE_S = 3600.0


def lease_owner(principal: Principal, instance: str) -> str:
    """NAME/PREFIX/INSTANCE: the token's worker name and prefix fence the lease to it;
    the instance (host:pid:random, chosen by the worker) tells its processes apart."""
    return f"{principal.worker}/{instance}"[:128]


def _check_lease(principal: Principal, lease: str) -> None:
    principal.require_worker()
    if not lease.startswith(f"{principal.worker}/"):
        raise Forbidden("this lease was not given to this worker token", field="lease")


def job_checkpoints(session: Session, run: EvalRun) -> list[Checkpoint]:
    """The checkpoints a job measures: its own, or a transfer matrix's family (in the
    family's order, the anchor among them)."""
    ckpt = session.get(Checkpoint, run.checkpoint_id)
    if run.suite_id == service.TRANSFER_SUITE:
        return service.transfer_family(session, ckpt)
    return [ckpt]


def file_url(run_id: int, checkpoint_id: int, name: str) -> str:
    return f"/api/v1/worker/jobs/{run_id}/files/{checkpoint_id}/{quote(name, safe='')}"


def describe_claim(session: Session, run: EvalRun) -> dict:
    checkpoints = [{"id": c.id, "name": c.name, "manifest_digest": c.manifest_digest,
                    "files": [{"name": e["name"], "sha256": e["sha256"], "size": e["size"],
                               "url": file_url(run.id, c.id, e["name"])}
                              for e in c.manifest]}
                   for c in job_checkpoints(session, run)]
    return {"run_id": run.id, "attempt": run.attempts, "lease": run.lease_owner,
            "lease_expires_at": run.lease_expires_at, "suite_id": run.suite_id,
            "suite_version": run.suite_version, "seed": run.seed,
            "checkpoint_id": run.checkpoint_id, "model_id": run.model_id,
            "transfer": run.suite_id == service.TRANSFER_SUITE, "checkpoints": checkpoints}


def claim_job(session: Session, principal: Principal, instance: str,
              lease_s: float) -> dict | None:
    """The oldest claimable job under a fresh lease (worker.claim: expired leases are
    re-leased, a job whose lease ran out MAX_ATTEMPTS times fails), or None."""
    principal.require_worker()
    claimed = claim(session, lease_owner(principal, instance),
                    min(max(lease_s, 1.0), MAX_LEASE_S))
    if claimed is None:
        return None
    return describe_claim(session, session.get(EvalRun, claimed[0]))


def _live(session: Session, principal: Principal, run_id: int, lease: str,
          attempt: int) -> EvalRun:
    """The job, still running under this very lease and attempt, its lease not expired."""
    _check_lease(principal, lease)
    run = session.exec(select(EvalRun).where(_mine(run_id, lease, attempt),
                                             EvalRun.lease_expires_at >= utcnow())).first()
    if run is None:
        raise Conflict(f"job {run_id} is no longer leased to this worker at attempt "
                       f"{attempt}: its lease expired or it was given to another worker",
                       field="lease")
    return run


def _fenced(session: Session, run: EvalRun, lease: str, attempt: int, **values) -> None:
    """Write the job only if the lease still holds (a claim may have come in between)."""
    now = utcnow()
    done = session.execute(update(EvalRun).where(_mine(run.id, lease, attempt),
                                                 EvalRun.lease_expires_at >= now)
                           .values(**values).execution_options(synchronize_session=False))
    if done.rowcount != 1:
        raise Conflict(f"job {run.id} is no longer leased to this worker", field="lease")
    session.refresh(run)


def renew_lease(session: Session, principal: Principal, run_id: int,
                data: Heartbeat) -> EvalRun:
    """Extend the lease by its claimed length and record progress; 409 once it is lost."""
    run = _live(session, principal, run_id, data.lease, data.attempt)
    length = ((run.lease_expires_at - run.heartbeat_at) if run.heartbeat_at
              else timedelta(seconds=120))
    now = utcnow()
    _fenced(session, run, data.lease, data.attempt, heartbeat_at=now,
            lease_expires_at=now + length,
            progress=min(1.0, max(0.0, data.progress if data.progress is not None
                                  else run.progress)))
    return run


def job_file(session: Session, principal: Principal, run_id: int, checkpoint_id: int,
             name: str):
    """(blob store, manifest entry) of a file of a checkpoint that a job this worker holds
    under a live lease measures. Nothing else: not another worker's job, not a finished one."""
    principal.require_worker()
    run = session.get(EvalRun, run_id)
    if (run is None or run.status != "running" or run.lease_expires_at is None
            or run.lease_expires_at < utcnow()
            or not (run.lease_owner or "").startswith(f"{principal.worker}/")):
        raise Forbidden(f"this worker holds no live lease on job {run_id}", field="run_id")
    ckpt = next((c for c in job_checkpoints(session, run) if c.id == checkpoint_id), None)
    if ckpt is None:
        raise Forbidden(f"job {run_id} does not measure checkpoint {checkpoint_id}",
                        field="checkpoint_id")
    entry = next((e for e in ckpt.manifest if e["name"] == name), None)
    if entry is None:
        raise NotFound(f"checkpoint {checkpoint_id} has no file {name!r}", field="name")
    return blob_store(), entry


def accept_result(session: Session, principal: Principal, run_id: int,
                  data: ResultUpload) -> EvalRun:
    """Store a remote worker's result exactly as the local worker would (the same key,
    digests and provenance), only while its lease holds: else 409 and nothing is kept,
    so two workers never both record a run."""
    run = _live(session, principal, run_id, data.lease, data.attempt)
    for field, want in (("suite_id", run.suite_id), ("suite_version", run.suite_version),
                        ("seed", run.seed)):
        if getattr(data, field) != want:
            raise Invalid(f"job {run_id} is {field} {want!r}, not {getattr(data, field)!r}",
                          field=field)
    ckpt = session.get(Checkpoint, run.checkpoint_id)
    named, digest_override = None, None
    if run.suite_id == service.TRANSFER_SUITE:
        family = {c.name: c for c in job_checkpoints(session, run)}
        measured = data.details.get("checkpoints")
        if (not isinstance(measured, dict) or len(measured) < 2
                or any(family.get(n) is None or family[n].manifest_digest != d
                       for n, d in measured.items())):
            raise Invalid("details.checkpoints must name the job's checkpoints and their "
                          "manifest digests as the claim gave them", field="details")
        chosen = [family[n] for n in measured]
        named, digest_override = [c.id for c in chosen], family_digest(chosen)
    # The finishing write comes first: it takes the job's row, so a claim racing this
    # upload either finds the job done or has already taken it (and this is a 409).
    _fenced(session, run, data.lease, data.attempt, status="succeeded", progress=1.0,
            finished_at=utcnow(), lease_expires_at=None, error=None)
    result = measured_result(run, ckpt, data, digest_override)
    result.code_version = data.code_version
    result = service.store_result(session, result, named)
    run.result_id = result.id
    session.add(run)
    session.flush()
    _record(session, run)
    return run


def report_failure(session: Session, principal: Principal, run_id: int,
                   data: FailureReport) -> EvalRun:
    """The job failed on the worker (an exception, a file whose digest did not match):
    failed, as the local worker marks it, with the error and the log's tail."""
    run = _live(session, principal, run_id, data.lease, data.attempt)
    error = data.error[:4000]
    if data.log:
        error += "\n--- worker log (tail) ---\n" + data.log[-12000:]
    _fenced(session, run, data.lease, data.attempt, status="failed", finished_at=utcnow(),
            lease_expires_at=None, error=error)
    _record(session, run)
    return run
