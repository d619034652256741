"""Disclosure agreements: drafting, proposing, signing, terminating, visibility, access."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import and_, case, exists, literal, or_, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, select

from app.access import (
    agreement_audience,
    agreement_in_force,
    visible_agreements,
    visible_checkpoints,
    visible_models,
    visible_plans,
)
from app.agreements.schemas import (
    AgreementCreate,
    AgreementRead,
    AgreementUpdate,
    PartyRead,
    ScopeIn,
    ScopeRead,
    StageScopeRead,
)
from app.agreements.tables import (
    EDITABLE_STATUSES,
    KINDS,
    STATUSES,
    AgreementParty,
    AgreementScope,
    AgreementSignature,
    DisclosureAgreement,
)
from app.auth.principal import SYSTEM, Principal
from app.checkpoints.tables import Checkpoint
from app.errors import BadQuery, Conflict, Forbidden, Invalid, InvalidTransition, NotFound
from app.events.service import record
from app.labs.service import get_lab
from app.labs.tables import Lab
from app.markdown import stored_html
from app.models.service import find_model
from app.models.tables import AIModel
from app.pagination import PageRequest, paginate
from app.plans.tables import ReleasePlan, Stage
from app.safeyaml import load_yaml
from app.sqltypes import MAX_ID
from app.timeutil import utcnow
from app.transparency.service import set_log_indexes
from app.versioning import check_version

A = DisclosureAgreement
TEMPLATES = Path(__file__).parent / "templates"

# Moves a client may ask for. "active" comes from the last signature and "expired" from
# the clock, so neither is requested; a proposal may be withdrawn (terminated) too.
MOVES = {"draft": ("proposed",), "proposed": ("terminated",), "active": ("terminated",),
         "expired": (), "terminated": ()}
# A proposal not fully signed by ends_at lapses the same way an active agreement expires.
TIMED = ("proposed", "active")


# -- status and visibility ------------------------------------------------------------

def effective_status(agreement: DisclosureAgreement, now: datetime | None = None) -> str:
    now = now or utcnow()
    if agreement.status in TIMED and now >= agreement.ends_at:
        return "expired"
    return agreement.status


def status_expr(now: datetime | None = None):
    """effective_status() as SQL, so filters agree with what a read shows."""
    now = now or utcnow()
    return case((and_(A.status.in_(TIMED), A.ends_at <= now), literal("expired")),
                else_=A.status)


def _signatory_view(principal: Principal, agreement: DisclosureAgreement,
                    party_ids: set[int]) -> bool:
    """Discloser, parties and coordinators always see the terms."""
    return (principal.sees_lab(agreement.lab_id)
            or bool(party_ids & set(principal.lab_ids)))


# -- reading --------------------------------------------------------------------------

def get_agreement(session: Session, principal: Principal, agreement_id: int) -> A:
    agreement = session.exec(select(A).where(A.id == agreement_id,
                                             visible_agreements(principal))).first()
    if agreement is None:
        raise NotFound(f"no agreement {agreement_id}", field="agreement_id")
    return agreement


def list_agreements(session: Session, principal: Principal, page: PageRequest, *,
                    status: str | None = None, lab: str | None = None,
                    kind: str | None = None):
    """`lab` matches the disclosing lab or any party; `status` is the effective status."""
    query = select(A).where(visible_agreements(principal))
    if status:
        if status not in STATUSES:
            raise BadQuery(f"status must be one of {', '.join(STATUSES)}", field="status")
        query = query.where(status_expr() == status)
    if kind:
        if kind not in KINDS:
            raise BadQuery(f"kind must be one of {', '.join(KINDS)}", field="kind")
        query = query.where(A.kind == kind)
    if lab:
        lab_id = get_lab(session, lab).id
        query = query.where(or_(A.lab_id == lab_id, exists().where(
            AgreementParty.agreement_id == A.id, AgreementParty.lab_id == lab_id)))
    return paginate(session, query, A.id, page)


def _related(session: Session, ids: list[int]):
    """Parties, signatures and scope rows of many agreements, one query each."""
    parties, signatures, scope = defaultdict(list), defaultdict(dict), defaultdict(list)
    if not ids:
        return parties, signatures, scope
    for agreement_id, lab_id, slug in session.exec(
            sa_select(AgreementParty.agreement_id, Lab.id, Lab.slug)
            .join(Lab, Lab.id == AgreementParty.lab_id)
            .where(AgreementParty.agreement_id.in_(ids)).order_by(Lab.slug)):
        parties[agreement_id].append((lab_id, slug))
    for sig in session.exec(select(AgreementSignature)
                            .where(AgreementSignature.agreement_id.in_(ids))):
        signatures[sig.agreement_id][sig.lab_id] = sig
    for row in session.exec(select(AgreementScope).where(AgreementScope.agreement_id.in_(ids))
                            .order_by(AgreementScope.id)):
        scope[row.agreement_id].append(row)
    return parties, signatures, scope


def read_agreements(session: Session, principal: Principal,
                    rows: list[DisclosureAgreement]) -> list[AgreementRead]:
    now = utcnow()
    parties, signatures, scope = _related(session, [a.id for a in rows])
    lab_slugs = dict(session.exec(sa_select(Lab.id, Lab.slug).where(
        Lab.id.in_({a.lab_id for a in rows}))).all()) if rows else {}
    model_ids = {s.model_id for rs in scope.values() for s in rs if s.model_id}
    stage_ids = {s.stage_id for rs in scope.values() for s in rs if s.stage_id}
    checkpoint_ids = {s.checkpoint_id for rs in scope.values() for s in rs if s.checkpoint_id}
    # Scope entries the viewer may not see (a private model, a plan never filed, a
    # checkpoint it may not fetch) are left out.
    models = {mid: f"{lab}/{slug}" for mid, lab, slug in session.exec(
        sa_select(AIModel.id, Lab.slug, AIModel.slug).join(Lab, Lab.id == AIModel.lab_id)
        .where(AIModel.id.in_(model_ids), visible_models(principal)))} if model_ids else {}
    stages = {row.id: StageScopeRead(id=row.id, plan=row.plan_id, position=row.position,
                                     name=row.name)
              for row in session.exec(
                  sa_select(Stage.id, Stage.plan_id, Stage.position, Stage.name)
                  .join(ReleasePlan, ReleasePlan.id == Stage.plan_id)
                  .where(Stage.id.in_(stage_ids), visible_plans(principal)))} \
        if stage_ids else {}
    shown_checkpoints = set(session.execute(sa_select(Checkpoint.id).where(
        Checkpoint.id.in_(checkpoint_ids), visible_checkpoints(principal))).scalars()) \
        if checkpoint_ids else set()
    out = []
    for a in rows:
        signed = signatures[a.id]
        show_terms = (not a.terms_private
                      or _signatory_view(principal, a, {lab for lab, _ in parties[a.id]}))
        out.append(AgreementRead(
            id=a.id, title=a.title, kind=a.kind, discloser=lab_slugs[a.lab_id],
            parties=[PartyRead(lab=slug, signed=lab_id in signed,
                               signer=signed[lab_id].signer if lab_id in signed else None,
                               signed_at=signed[lab_id].signed_at if lab_id in signed else None)
                     for lab_id, slug in parties[a.id]],
            status=effective_status(a, now), in_force=agreement_in_force(a, now),
            scope=ScopeRead(
                models=[models[s.model_id] for s in scope[a.id] if s.model_id in models],
                stages=[stages[s.stage_id] for s in scope[a.id] if s.stage_id in stages],
                checkpoints=[s.checkpoint_id for s in scope[a.id]
                             if s.checkpoint_id in shown_checkpoints]),
            terms=a.terms if show_terms else None,
            terms_html=stored_html(a, "terms") if show_terms else None,
            terms_private=a.terms_private, non_commercial=a.non_commercial,
            starts_at=a.starts_at, ends_at=a.ends_at, confidential_until=a.confidential_until,
            template=a.template, version=a.version, created_at=a.created_at,
            updated_at=a.updated_at, proposed_at=a.proposed_at, activated_at=a.activated_at,
            terminated_at=a.terminated_at, termination_reason=a.termination_reason))
    return set_log_indexes(session, principal, "agreement", out)


def read_agreement(session: Session, principal: Principal,
                   agreement: DisclosureAgreement) -> AgreementRead:
    return read_agreements(session, principal, [agreement])[0]


def agreement_content(session: Session, agreement: DisclosureAgreement) -> dict:
    """Canonical content that event digests cover."""
    parties, signatures, scope = _related(session, [agreement.id])
    a = agreement
    return {
        "title": a.title, "kind": a.kind, "lab_id": a.lab_id, "status": a.status,
        "terms": a.terms, "non_commercial": a.non_commercial,
        "terms_private": a.terms_private, "starts_at": a.starts_at, "ends_at": a.ends_at,
        "confidential_until": a.confidential_until, "version": a.version,
        "parties": sorted(lab_id for lab_id, _ in parties[a.id]),
        "signatures": {str(lab_id): {"signer": s.signer, "at": s.signed_at}
                       for lab_id, s in sorted(signatures[a.id].items())},
        "scope": sorted(f"{key}:{getattr(s, key + '_id')}" for s in scope[a.id]
                        for key in ("model", "stage", "checkpoint")
                        if getattr(s, key + "_id") is not None),
        "termination_reason": a.termination_reason,
    }


# -- writing --------------------------------------------------------------------------

def _record(session: Session, actor: Principal, agreement: DisclosureAgreement, action: str,
            **data: Any) -> None:
    session.flush()
    visibility, visible_from = agreement_audience(agreement)
    record(session, actor, "agreement", agreement.id, action,
           agreement_content(session, agreement), lab_id=agreement.lab_id,
           visibility=visibility, visible_from=visible_from,
           data={"status": agreement.status, "version": agreement.version, **data})


def _check_period(starts_at: datetime, ends_at: datetime) -> None:
    if ends_at <= starts_at:
        raise Invalid("ends_at must be after starts_at", field="ends_at")


def _resolve_parties(session: Session, discloser_id: int, slugs: list[str]) -> list[int]:
    ids: list[int] = []
    for slug in slugs:
        lab = session.exec(select(Lab).where(Lab.slug == slug)).first()
        if lab is None:
            raise NotFound(f"no lab {slug!r}", field="parties")
        if lab.id == discloser_id:
            raise Invalid("the disclosing lab cannot also be a party", field="parties")
        if lab.id not in ids:
            ids.append(lab.id)
    return ids


def _resolve_scope(session: Session, actor: Principal, discloser_id: int,
                   scope: ScopeIn) -> list[AgreementScope]:
    """Only the discloser's own models and stages: an agreement opens up its lab's work."""
    rows = []
    for ref in dict.fromkeys(scope.models):
        model = find_model(session, actor, ref)
        if model.lab_id != discloser_id:
            raise Invalid(f"model {ref!r} belongs to another lab", field="scope.models")
        rows.append(AgreementScope(model_id=model.id))
    for ref in scope.stages:
        stage = session.exec(
            select(Stage).join(ReleasePlan, ReleasePlan.id == Stage.plan_id)
            .where(Stage.plan_id == ref.plan, Stage.position == ref.position,
                   visible_plans(actor))).first()
        if stage is None:
            raise NotFound(f"plan {ref.plan} has no stage {ref.position}", field="scope.stages")
        if session.get(ReleasePlan, stage.plan_id).lab_id != discloser_id:
            raise Invalid(f"plan {ref.plan} belongs to another lab", field="scope.stages")
        rows.append(AgreementScope(stage_id=stage.id))
    wanted = list(dict.fromkeys(scope.checkpoints))
    # One answer for "no such checkpoint" and "another lab's checkpoint", so the scope
    # cannot be used to probe which ids exist elsewhere.
    own = set(session.exec(select(Checkpoint.id).where(
        Checkpoint.id.in_([c for c in wanted if 1 <= c <= MAX_ID]),
        Checkpoint.lab_id == discloser_id))) if wanted else set()
    for checkpoint_id in wanted:
        if checkpoint_id not in own:
            raise Invalid(f"the disclosing lab has no checkpoint {checkpoint_id}",
                          field=f"scope.checkpoints[{scope.checkpoints.index(checkpoint_id)}]")
        rows.append(AgreementScope(checkpoint_id=checkpoint_id))
    return rows


def _replace_links(session: Session, agreement: DisclosureAgreement,
                   party_ids: list[int] | None, scope: list[AgreementScope] | None) -> None:
    if party_ids is not None:
        for row in session.exec(select(AgreementParty)
                                .where(AgreementParty.agreement_id == agreement.id)):
            session.delete(row)
        session.flush()
        session.add_all(AgreementParty(agreement_id=agreement.id, lab_id=lab_id)
                        for lab_id in party_ids)
    if scope is not None:
        for row in session.exec(select(AgreementScope)
                                .where(AgreementScope.agreement_id == agreement.id)):
            session.delete(row)
        session.flush()
        for row in scope:
            row.agreement_id = agreement.id
            session.add(row)
    session.flush()


def create_agreement(session: Session, actor: Principal, data: AgreementCreate, *,
                     template: str | None = None) -> DisclosureAgreement:
    lab = get_lab(session, data.discloser)
    actor.require_member(lab.id)
    _check_period(data.starts_at, data.ends_at)
    party_ids = _resolve_parties(session, lab.id, data.parties)
    scope = _resolve_scope(session, actor, lab.id, data.scope)
    agreement = A(lab_id=lab.id, created_by=actor.user_id, template=template,
                  **data.model_dump(exclude={"discloser", "parties", "scope"}))
    session.add(agreement)
    session.flush()
    _replace_links(session, agreement, party_ids, scope)
    _record(session, actor, agreement, "drafted")
    return agreement


def _lock(session: Session, agreement: DisclosureAgreement, expected: int | None, *,
          required: bool = True) -> None:
    """Compare-and-set on the version; it also serialises concurrent signers on the row.

    Afterwards the row is re-read, so checks that follow see the committed state.
    """
    if required or expected is not None:
        check_version(expected, agreement.version)
    query = update(A).where(A.id == agreement.id)
    if expected is not None:
        query = query.where(A.version == expected)
    result = session.execute(query.values(version=A.version + 1, updated_at=utcnow())
                             .execution_options(synchronize_session=False))
    if result.rowcount != 1:
        raise Conflict(f"version {expected} is stale; someone else saved first",
                       field="version")
    session.refresh(agreement)


def revise_agreement(session: Session, actor: Principal, agreement_id: int,
                     data: AgreementUpdate) -> DisclosureAgreement:
    agreement = get_agreement(session, actor, agreement_id)
    actor.require_member(agreement.lab_id)
    _lock(session, agreement, data.version)
    if agreement.status not in EDITABLE_STATUSES:
        raise InvalidTransition(f"a {effective_status(agreement)} agreement cannot be "
                                "edited; only drafts can", field="status", allowed=[])
    fields = data.model_dump(exclude_unset=True, exclude={"version", "parties", "scope"})
    for key, value in fields.items():
        if value is None and key != "confidential_until":
            raise Invalid(f"{key} cannot be null", field=key)
        setattr(agreement, key, value)
    _check_period(agreement.starts_at, agreement.ends_at)
    party_ids = (_resolve_parties(session, agreement.lab_id, data.parties)
                 if data.parties is not None else None)
    scope = (_resolve_scope(session, actor, agreement.lab_id, data.scope)
             if data.scope is not None else None)
    session.add(agreement)
    _replace_links(session, agreement, party_ids, scope)
    changed = sorted(data.model_dump(exclude_unset=True, exclude={"version"}))
    _record(session, actor, agreement, "revised", changed=changed)
    return agreement


def _check_move(current: str, to: str) -> None:
    allowed = list(MOVES[current])
    hint = f"allowed: {', '.join(allowed)}" if allowed else "it is final"
    if to == "active" and current == "proposed":
        hint = "it becomes active when every party's lab_admin has signed; " + hint
    if to == "expired":
        hint = "agreements expire by themselves at ends_at; " + hint
    if to not in MOVES[current]:
        raise InvalidTransition(f"a {current} agreement cannot become {to}; {hint}",
                                field="to", allowed=allowed)


def _historical(actor: Principal, at: datetime | None) -> tuple[datetime, dict]:
    """`at` backdates a step when importing a past agreement, from the console only. The
    gate reads these times (signed, in force from), so the registry's clock decides: a
    future `at` is refused even for the operator, and a past one is recorded as
    backdated. Returns (when, event data)."""
    now = utcnow()
    if at is None:
        return now, {}
    if actor is not SYSTEM:
        raise Forbidden("only the console operator can record a past date", field="at")
    if at.tzinfo is None:
        raise Invalid("at needs a timezone (UTC)", field="at")
    if at > now:
        raise Invalid(f"at {at.isoformat()} is in the future; the registry's clock says "
                      f"{now.isoformat(timespec='seconds')}", field="at")
    return at, {"backdated": True, "at": at.isoformat(),
                "recorded_on": now.date().isoformat()}


def transition_agreement(session: Session, actor: Principal, agreement_id: int, to: str,
                         version: int | None, reason: str | None = None, *,
                         at: datetime | None = None) -> DisclosureAgreement:
    now, backdated = _historical(actor, at)
    agreement = get_agreement(session, actor, agreement_id)
    _check_move(effective_status(agreement, now), to)
    actor.require_member(agreement.lab_id)
    _lock(session, agreement, version)
    _check_move(effective_status(agreement, now), to)
    if to == "proposed":
        _check_proposable(session, agreement, now)
        agreement.status, agreement.proposed_at = "proposed", now
    else:
        if not reason or not reason.strip():
            raise Invalid("say why the agreement ends early", field="reason")
        agreement.status, agreement.terminated_at = "terminated", now
        agreement.termination_reason = reason.strip()
    session.add(agreement)
    _record(session, actor, agreement, to, **({"reason": reason} if reason else {}),
            **backdated)
    return agreement


def _check_proposable(session: Session, agreement: DisclosureAgreement, now: datetime) -> None:
    if agreement.ends_at <= now:
        raise Invalid("ends_at has passed; move it before proposing", field="ends_at")
    if not agreement.terms.strip():
        raise Invalid("an agreement needs terms before it is proposed", field="terms")
    if not session.exec(select(AgreementParty.id)
                        .where(AgreementParty.agreement_id == agreement.id)).first():
        raise Invalid("an agreement needs at least one party", field="parties")
    if not session.exec(select(AgreementScope.id)
                        .where(AgreementScope.agreement_id == agreement.id)).first():
        raise Invalid("say which models, stages or checkpoints it covers", field="scope")


def sign_agreement(session: Session, actor: Principal, agreement_id: int, lab_slug: str,
                   version: int | None = None, *,
                   at: datetime | None = None) -> DisclosureAgreement:
    """A party lab's lab_admin signs for it; the last signature makes it active.

    Coordinators cannot sign for a lab. The console operator (SYSTEM) may record a
    signature given on paper, e.g. when importing a historical agreement (with `at`).
    """
    now, backdated = _historical(actor, at)
    agreement = get_agreement(session, actor, agreement_id)
    lab = get_lab(session, lab_slug)
    party = session.exec(select(AgreementParty).where(
        AgreementParty.agreement_id == agreement.id, AgreementParty.lab_id == lab.id)).first()
    if party is None:
        raise Forbidden(f"lab {lab_slug!r} is not a party to this agreement", field="lab")
    actor.require_user()
    if not (actor.is_admin(lab.id) or actor is SYSTEM):
        raise Forbidden(f"only a lab_admin of {lab_slug!r} can sign for it", field="lab")
    _lock(session, agreement, version, required=False)
    current = effective_status(agreement, now)
    if current != "proposed":
        raise InvalidTransition(f"a {current} agreement cannot be signed; only proposed ones",
                                field="status", allowed=list(MOVES[current]))
    if session.exec(select(AgreementSignature.id).where(
            AgreementSignature.agreement_id == agreement.id,
            AgreementSignature.lab_id == lab.id)).first():
        raise Conflict(f"{lab_slug!r} has already signed", field="lab")
    session.add(AgreementSignature(agreement_id=agreement.id, lab_id=lab.id,
                                   signer_id=actor.user_id, signer=actor.name, signed_at=now))
    session.flush()
    _record(session, actor, agreement, "signed", lab=lab_slug, **backdated)
    unsigned = session.exec(
        select(AgreementParty.id).where(
            AgreementParty.agreement_id == agreement.id,
            ~exists().where(AgreementSignature.agreement_id == agreement.id,
                            AgreementSignature.lab_id == AgreementParty.lab_id))).first()
    if unsigned is None:
        agreement.status, agreement.activated_at = "active", now
        session.add(agreement)
        _record(session, actor, agreement, "activated", **backdated)
    return agreement


# -- templates ------------------------------------------------------------------------
MAX_TEMPLATE_BYTES = 256 * 1024


def load_template(path_or_name: str | Path) -> dict:
    """A name (a file in templates/) or, from the console only, a Path."""
    if isinstance(path_or_name, Path):
        path = path_or_name
    else:
        if not re.fullmatch(r"[a-z0-9_]{1,100}", path_or_name):
            raise Invalid("template names are lowercase letters, digits and _",
                          field="template")
        path = TEMPLATES / f"{path_or_name}.yaml"
    if not path.is_file():
        names = ", ".join(sorted(p.stem for p in TEMPLATES.glob("*.yaml")))
        raise NotFound(f"no template {str(path_or_name)!r}; available: {names}",
                       field="template")
    # A console user may name any file: parsed like every client YAML (no aliases, bounded).
    data = load_yaml(path.read_text(encoding="utf-8"), field="template",
                     max_bytes=MAX_TEMPLATE_BYTES)
    if not isinstance(data, dict):
        raise Invalid(f"template {path.name} must be a YAML mapping", field="template")
    missing = [k for k in ("title", "kind", "terms") if not data.get(k)]
    if missing:
        raise Invalid(f"template {path.name} lacks {', '.join(missing)}", field="template")
    data.setdefault("name", path.stem)
    return data


def _fill(text: str, values: dict[str, str]) -> str:
    # Only known {placeholders} are replaced; other braces in the Markdown stay as written.
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), m.group(0)), text)


def instantiate_template(session: Session, actor: Principal, path_or_name: str | Path,
                         discloser: str, parties: list[str], scope: ScopeIn,
                         starts_at: datetime, ends_at: datetime | None = None,
                         confidential_until: datetime | None = None,
                         title: str | None = None) -> DisclosureAgreement:
    """A draft agreement from a template file, with its placeholders filled in."""
    tpl = load_template(path_or_name)
    lab = get_lab(session, discloser)
    if ends_at is None:
        ends_at = starts_at + timedelta(days=int(tpl.get("duration_days", 90)))
    party_names = [get_lab(session, slug).name for slug in parties]
    values = {"discloser": lab.name, "discloser_slug": lab.slug,
              "parties": ", ".join(party_names) or "(no parties yet)",
              "models": ", ".join(scope.models) or "the checkpoints listed in the scope",
              "starts": starts_at.date().isoformat(), "ends": ends_at.date().isoformat()}
    data = AgreementCreate(
        discloser=discloser, title=title or _fill(tpl["title"], values), kind=tpl["kind"],
        parties=parties, scope=scope, terms=_fill(tpl["terms"], values),
        non_commercial=bool(tpl.get("non_commercial", False)),
        terms_private=bool(tpl.get("terms_private", False)), starts_at=starts_at,
        ends_at=ends_at, confidential_until=confidential_until)
    return create_agreement(session, actor, data, template=tpl["name"])
