"""Uploading, listing, reading and materialising hosted checkpoints."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import false, or_
from sqlmodel import Session, select

from app.access import (
    agreement_window,
    checkpoint_audience,
    grants_for,
    may_download,
    visible_agreements,
    visible_checkpoints,
    visible_plans,
)
from app.access.checkpoints import GRANTED_LEVELS
from app.agreements.tables import AgreementParty, AgreementScope, DisclosureAgreement
from app.auth.principal import Principal
from app.checkpoints.blobstore import GRACE_S, Blob, BlobStore, Leftover, LocalBlobStore
from app.checkpoints.schemas import CheckpointCreate, CheckpointRead
from app.checkpoints.tables import ACCESS_LEVELS, Checkpoint
from app.checkpoints.validate import reject, validate_checkpoint
from app.errors import Conflict, Forbidden, Invalid, NotFound, TooLarge
from app.events.service import record
from app.labs.tables import Lab
from app.models.service import find_model
from app.models.tables import AIModel
from app.pagination import PageRequest, paginate
from app.plans.tables import ReleasePlan, Stage
from app.settings import Settings, get_settings
from app.timeutil import as_utc, digest, utcnow

DEFAULT_MAX_UPLOAD = 4 * 1024**3


def upload_limits(settings: Settings | None = None) -> tuple[int, int]:
    """(per file, total) bytes: settings fields if present, else STAGEGATE_* variables."""
    settings = settings or get_settings()
    total = getattr(settings, "max_upload_bytes", None) or int(
        os.environ.get("STAGEGATE_MAX_UPLOAD_BYTES", DEFAULT_MAX_UPLOAD))
    per_file = getattr(settings, "max_upload_file_bytes", None) or int(
        os.environ.get("STAGEGATE_MAX_UPLOAD_FILE_BYTES", total))
    return min(per_file, total), total


_stores: dict[tuple, BlobStore] = {}
_stores_lock = threading.Lock()


def blob_store(settings: Settings | None = None) -> BlobStore:
    """The local folder, or the bucket STAGEGATE_BLOB_URL names. An S3 store (its boto3
    client is slow to make and thread-safe) is kept per configuration."""
    settings = settings or get_settings()
    if not settings.blob_url:
        return LocalBlobStore(settings.blob_dir)
    from app.checkpoints.s3store import S3BlobStore, client_settings

    key = (settings.blob_url, settings.blob_url_ttl_s, settings.blob_presign_endpoint,
           str(settings.blob_dir), client_settings())
    with _stores_lock:
        store = _stores.get(key)
        if store is None:
            store = _stores[key] = S3BlobStore(
                settings.blob_url, staging=settings.blob_dir / "tmp",
                ttl_s=settings.blob_url_ttl_s,
                presign_endpoint=settings.blob_presign_endpoint)
        return store


def checkpoint_state(ckpt: Checkpoint) -> dict:
    return {"model_id": ckpt.model_id, "name": ckpt.name, "access_level": ckpt.access_level,
            "manifest_digest": ckpt.manifest_digest, "stage_id": ckpt.stage_id}


def check_upload_allowed(session: Session, actor: Principal, data: CheckpointCreate) -> AIModel:
    """Whether `actor` may upload `data.name` to `data.model`; runs before the body is read."""
    model = find_model(session, actor, data.model)
    actor.require_member(model.lab_id)
    taken = select(Checkpoint.id).where(Checkpoint.model_id == model.id,
                                        Checkpoint.name == data.name)
    if session.exec(taken).first() is not None:
        raise Conflict(f"checkpoint {data.name!r} already exists for this model", field="name")
    return model


def upload_checkpoint(session: Session, actor: Principal, data: CheckpointCreate,
                      files: list[tuple[str, BinaryIO]], *,
                      settings: Settings | None = None) -> Checkpoint:
    """Check every file by content, then store blobs and the row; nothing is kept on
    refusal. app.flows.upload_checkpoint also queues the evaluations."""
    model = check_upload_allowed(session, actor, data)
    if not files:
        raise Invalid("upload at least config.json and safetensors weights", field="files")
    per_file, total_limit = upload_limits(settings)
    store = blob_store(settings)
    staged: dict[str, tuple[Path, str, int]] = {}
    try:
        total = 0
        for name, stream in files:
            if name in staged:
                raise reject(name, "uploaded twice")
            staged[name] = store.stage(stream, limit=per_file, field=f"files[{name}]")
            total += staged[name][2]
            if total > total_limit:
                raise TooLarge(f"the upload is larger than the limit of {total_limit} bytes",
                               field="files", limit=total_limit)
        info = validate_checkpoint({n: (p, size) for n, (p, _, size) in staged.items()})
        manifest = [{"name": n, "sha256": sha, "size": size}
                    for n, (_, sha, size) in sorted(staged.items())]
        for path, sha, _ in staged.values():
            store.commit(path, sha)
    finally:
        for path, _, _ in staged.values():
            path.unlink(missing_ok=True)
    # Nothing is written to the store before every file is validated. A blob committed
    # for an upload that fails later (the bucket errs on the next file, the row cannot be
    # inserted) stays unreferenced: removing it at once could remove a blob a concurrent
    # upload of the same file has just found and is about to name, so `stagegate blobs
    # clean` removes it once it is older than an hour (a retry reuses it meanwhile).
    stage = _stage_for(session, actor, model.id, data.plan, data.stage) \
        if data.plan is not None or data.stage is not None else None
    ckpt = Checkpoint(model_id=model.id, lab_id=model.lab_id, name=data.name,
                      stage_id=stage.id if stage else None,
                      access_level=data.access_level, manifest=manifest,
                      manifest_digest=digest(manifest), total_bytes=total,
                      parameter_count=info.parameter_count, architecture=info.architecture,
                      model_type=info.model_type, uploaded_by=actor.user_id)
    session.add(ckpt)
    session.flush()
    record(session, actor, "checkpoint", ckpt.id, "uploaded", checkpoint_state(ckpt),
           lab_id=ckpt.lab_id, visibility=checkpoint_audience(session, ckpt))
    return ckpt


def get_checkpoint(session: Session, principal: Principal, checkpoint_id: int) -> Checkpoint:
    query = select(Checkpoint).where(Checkpoint.id == checkpoint_id,
                                     visible_checkpoints(principal))
    ckpt = session.exec(query).first()
    if ckpt is None:
        raise NotFound(f"no checkpoint {checkpoint_id}", field="checkpoint_id")
    return ckpt


def list_checkpoints(session: Session, principal: Principal, page: PageRequest, *,
                     model: str | None = None):
    query = select(Checkpoint).where(visible_checkpoints(principal))
    if model:
        query = query.where(Checkpoint.model_id == find_model(session, principal, model).id)
    return paginate(session, query, Checkpoint.id, page)


def set_access_level(session: Session, actor: Principal, checkpoint_id: int,
                     access_level: str) -> Checkpoint:
    """Widen or narrow who may download (e.g. internal -> partners -> public).

    One rule with upload: any member of the lab may set the access level, at upload or
    later (a member could otherwise publish by re-uploading, but never correct it)."""
    ckpt = get_checkpoint(session, actor, checkpoint_id)
    actor.require_member(ckpt.lab_id)
    if access_level not in ACCESS_LEVELS:
        raise Invalid(f"access_level must be one of {ACCESS_LEVELS}", field="access_level")
    ckpt.access_level = access_level
    session.add(ckpt)
    record(session, actor, "checkpoint", ckpt.id, "access_changed", checkpoint_state(ckpt),
           lab_id=ckpt.lab_id, visibility=checkpoint_audience(session, ckpt))
    return ckpt


def open_file(session: Session, principal: Principal, checkpoint_id: int, name: str,
              settings: Settings | None = None) -> tuple[BlobStore, dict]:
    """A file the principal may download. A checkpoint they may not see is the same 404
    as one that never existed; one they may see but not download is a 403 that says why
    (download_refusal), which tells them nothing the checkpoint's own page does not."""
    try:
        ckpt = get_checkpoint(session, principal, checkpoint_id)
    except NotFound:
        if reason := ended_access(session, principal, checkpoint_id):
            raise Forbidden(reason, field="checkpoint_id") from None
        raise
    if not may_download(session, principal, ckpt.id):
        raise Forbidden(download_refusal(session, principal, ckpt), field="checkpoint_id")
    entry = next((e for e in ckpt.manifest if e["name"] == name), None)
    if entry is None:
        raise NotFound(f"checkpoint {checkpoint_id} has no file {name!r}", field="name")
    return blob_store(settings), entry


def _day(t) -> str:
    return as_utc(t).strftime("%Y-%m-%d %H:%M UTC")


def ended_access(session: Session, principal: Principal, checkpoint_id: int) -> str | None:
    """Why a partner whose access has ended cannot download a checkpoint they no longer
    see. Said only when one of their labs really held a grant on this very checkpoint
    (they downloaded it or could have, so its existence is no secret to them); any other
    unseen checkpoint stays the 404 of one that never existed."""
    if not principal.lab_ids:
        return None
    now = utcnow()
    ended = sorted((g for g in grants_for(session, [checkpoint_id])
                    if g.lab_id in principal.lab_ids and g.end is not None and g.end <= now),
                   key=lambda g: g.end)
    if not ended:
        return None
    last = ended[-1]
    return (f"your lab's access to checkpoint {checkpoint_id} under agreement "
            f"{last.agreement_id} ended on {_day(last.end)}")


def download_refusal(session: Session, principal: Principal, ckpt: Checkpoint) -> str:
    """Why `principal` may not download `ckpt`, which they may see. Built from the same
    rules as app.access (README "What an agreement grants") and naming only agreements
    the principal may read, for the checkpoint's page already shows its lab and level."""
    lab = session.get(Lab, ckpt.lab_id).slug
    who = f"checkpoint {ckpt.id}"
    if ckpt.access_level not in GRANTED_LEVELS:
        return f"{who} is {ckpt.access_level}: only members of {lab} may download it"
    if not principal.lab_ids:
        return (f"{who} is open to partners of {lab} only: sign in as a member of a lab "
                "that is party to an agreement covering it")
    now = utcnow()
    grants = [g for g in grants_for(session, [ckpt.id]) if g.lab_id in principal.lab_ids]
    if coming := sorted((g for g in grants if g.start > now), key=lambda g: g.start):
        return (f"your lab's agreement {coming[0].agreement_id} grants {who} from "
                f"{_day(coming[0].start)}, not yet")
    if ended := sorted((g for g in grants if g.end is not None and g.end <= now),
                       key=lambda g: g.end):
        return (f"your lab's agreement {ended[-1].agreement_id} granted {who} until "
                f"{_day(ended[-1].end)}; it has ended")
    A = DisclosureAgreement
    covers = or_(AgreementScope.model_id == ckpt.model_id,
                 AgreementScope.checkpoint_id == ckpt.id,
                 AgreementScope.stage_id == ckpt.stage_id if ckpt.stage_id else false())
    mine = select(A).where(A.lab_id == ckpt.lab_id, visible_agreements(principal, now),
                           A.id.in_(select(AgreementParty.agreement_id).where(
                               AgreementParty.lab_id.in_(principal.lab_ids))))
    agreements = list(session.exec(mine.order_by(A.id.desc())))
    covering = set(session.exec(select(AgreementScope.agreement_id).where(
        covers, AgreementScope.agreement_id.in_([a.id for a in agreements])))) \
        if agreements else set()
    for a in agreements:
        window = agreement_window(a)
        if a.id in covering and window and window[1] <= as_utc(ckpt.created_at):
            return (f"{who} was uploaded after your lab's agreement {a.id} ended "
                    f"({_day(window[1])})")
    for a in agreements:
        if a.id in covering and a.status == "proposed":
            return f"your lab's agreement {a.id} is not in force: not every party has signed"
    for a in agreements:
        window = agreement_window(a)
        if a.id not in covering and window and window[0] <= now < window[1]:
            return (f"your lab's agreement {a.id} with {lab} does not cover {who}: its scope "
                    "names neither its model, its stage nor the checkpoint")
    return f"no agreement in force between {lab} and your lab covers {who}"


def materialise(ckpt: Checkpoint, dest: Path, settings: Settings | None = None) -> Path:
    """The checkpoint's files as a directory that from_pretrained can load offline."""
    files = {e["name"]: e["sha256"] for e in ckpt.manifest}
    return blob_store(settings).materialise(files, dest)


@dataclass
class BlobCleaning:
    """What `clean_blobs` found (and removed, unless it was a dry run)."""
    store: str
    orphans: list[Blob] = field(default_factory=list)
    leftovers: list[Leftover] = field(default_factory=list)
    referenced: int = 0
    young: int = 0  # unnamed blobs spared because an upload may still name them
    removed: bool = False

    @property
    def orphan_bytes(self) -> int:
        return sum(b.size for b in self.orphans)


def referenced_blobs(session: Session) -> set[str]:
    """Every SHA-256 a checkpoint row names (all rows: an operator's question)."""
    named: set[str] = set()
    for manifest in session.exec(select(Checkpoint.manifest)):
        named.update(e["sha256"] for e in manifest or [])
    return named


def clean_blobs(session: Session, store: BlobStore, *, dry_run: bool = False,
                min_age_s: float = GRACE_S) -> BlobCleaning:
    """Find blobs no checkpoint names and upload remains (staging files, incomplete S3
    multipart uploads), older than `min_age_s`, and remove them unless `dry_run`.

    The store is listed before the rows are read, and young blobs are spared: an upload
    writes its blobs before the row that names them, so a blob written after the rows
    were read, or moments before, may be about to be named."""
    cutoff = time.time() - min_age_s
    listed = list(store.blobs())
    named = referenced_blobs(session)
    report = BlobCleaning(str(store), referenced=len(named))
    for blob in listed:
        if blob.sha256 in named:
            continue
        if blob.modified >= cutoff:
            report.young += 1
        else:
            report.orphans.append(blob)
    report.leftovers = store.leftovers(cutoff)
    if not dry_run:
        for blob in report.orphans:
            store.delete(blob.sha256)
        for leftover in report.leftovers:
            store.remove_leftover(leftover)
        report.removed = True
    return report


def read_checkpoint(session: Session, ckpt: Checkpoint,
                    principal: Principal | None = None) -> CheckpointRead:
    """`principal`: the reader; the stage is named only where they may see its plan."""
    model = session.get(AIModel, ckpt.model_id)
    lab = session.get(Lab, ckpt.lab_id)
    data = ckpt.model_dump()
    data.update(model=f"{lab.slug}/{model.slug}", lab=lab.slug, stage=None)
    if ckpt.stage_id is not None and principal is not None:
        row = session.exec(select(Stage.plan_id, Stage.position, Stage.name)
                           .join(ReleasePlan, ReleasePlan.id == Stage.plan_id)
                           .where(Stage.id == ckpt.stage_id, visible_plans(principal))).first()
        if row is not None:
            data["stage"] = {"plan": row[0], "stage": row[1], "name": row[2]}
    return CheckpointRead.model_validate(data)


def _visible_stage(session: Session, principal: Principal, plan_id: int, position: int,
                   *where) -> Stage | None:
    return session.exec(select(Stage).join(ReleasePlan, ReleasePlan.id == Stage.plan_id)
                        .where(ReleasePlan.id == plan_id, Stage.position == position,
                               visible_plans(principal), *where)).first()


def _stage_for(session: Session, actor: Principal, model_id: int, plan_id: int | None,
               position: int | None) -> Stage:
    """The stage `plan_id`/`position` names: a stage of a plan of the same model that the
    actor may see; anything else is the same 422, so nothing is revealed."""
    if plan_id is None or position is None:
        field = "stage" if position is None else "plan"
        raise Invalid("give both plan and stage (its position), or neither", field=field)
    stage = _visible_stage(session, actor, plan_id, position, ReleasePlan.model_id == model_id)
    if stage is None:
        raise Invalid(f"plan {plan_id} has no stage {position} for this checkpoint's model",
                      field="stage")
    return stage


def attach_to_stage(session: Session, actor: Principal, checkpoint_id: int,
                    plan_id: int | None, position: int | None) -> Checkpoint:
    """Attach a checkpoint to a stage of its model's plan (None, None: detach). Any
    member of the lab may, as with the access level."""
    ckpt = get_checkpoint(session, actor, checkpoint_id)
    actor.require_member(ckpt.lab_id)
    stage = None if plan_id is None and position is None else \
        _stage_for(session, actor, ckpt.model_id, plan_id, position)
    ckpt.stage_id = stage.id if stage else None
    session.add(ckpt)
    record(session, actor, "checkpoint", ckpt.id, "attached" if stage else "detached",
           checkpoint_state(ckpt), lab_id=ckpt.lab_id,
           visibility=checkpoint_audience(session, ckpt),
           data={"plan": plan_id, "stage": position} if stage else {})
    return ckpt


def stage_checkpoints(session: Session, principal: Principal, plan_id: int,
                      position: int) -> list[Checkpoint]:
    """What a stage's checkpoint reference resolves to: the checkpoints attached to the
    stage and the one its checkpoint_ref names (same model), those the reader may see."""
    stage = _visible_stage(session, principal, plan_id, position)
    if stage is None:
        raise NotFound(f"plan {plan_id} has no stage {position}", field="stage")
    plan = session.get(ReleasePlan, plan_id)
    named = Checkpoint.name == stage.checkpoint_ref if stage.checkpoint_ref else false()
    return list(session.exec(select(Checkpoint).where(
        Checkpoint.model_id == plan.model_id, or_(Checkpoint.stage_id == stage.id, named),
        visible_checkpoints(principal)).order_by(Checkpoint.id)))
