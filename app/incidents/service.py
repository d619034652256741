"""Submitting, reading, triaging and merging incidents; who may see which."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml
from sqlalchemy import delete, func
from sqlalchemy import select as sa_select
from sqlmodel import Session, select

from app.access import (
    reachable,
    visible_checkpoints,
    visible_incidents,
    visible_models,
    visible_plans,
)
from app.auth.principal import Principal
from app.errors import Forbidden, Invalid, InvalidTransition, NotFound
from app.events.service import record
from app.incidents.schemas import IncidentCreate, IncidentRead, IncidentUpdate, ReportCreate
from app.incidents.tables import (
    Incident,
    IncidentHarm,
    IncidentLab,
    IncidentModel,
    IncidentReport,
    IncidentReportLink,
)
from app.labs.tables import Lab
from app.markdown import stored_html
from app.models.service import find_model
from app.models.tables import AIModel
from app.timeutil import utcnow
from app.transparency.service import set_log_indexes
from app.versioning import claim_version

TAXONOMY = Path(__file__).parent / "taxonomy" / "harm_types.v1.yaml"

# Coordinators triage. An affected lab's admin may only close a confirmed incident as
# resolved (they shipped the fix); deciding what is true stays with coordinators.
MOVES = {
    "submitted": {"triaged", "rejected", "duplicate"},
    "triaged": {"confirmed", "rejected", "duplicate"},
    "confirmed": {"resolved", "duplicate"},
    "rejected": {"triaged"},
    "resolved": set(),
    "duplicate": set(),
}
LAB_ADMIN_MOVES = {("confirmed", "resolved")}
# A member of an affected lab may acknowledge an incident that is still a live claim: with
# a coordinator's confirmation, what makes an open incident count against a release
# (app/norms). Closed ones (rejected, resolved, duplicate) have nothing left to decide.
ACKNOWLEDGEABLE = ("submitted", "triaged", "confirmed")


@lru_cache(maxsize=1)
def taxonomy() -> tuple[str, frozenset[str]]:
    data = yaml.safe_load(TAXONOMY.read_text())
    return str(data["version"]), frozenset(data["harm_types"])


def check_harm_types(values: list[str]) -> list[str]:
    _, known = taxonomy()
    for i, value in enumerate(values):
        if value not in known:
            raise Invalid(f"unknown harm type {value!r}; known: {', '.join(sorted(known))}",
                          field=f"harm_types[{i}]")
    return list(dict.fromkeys(values))


def sees_target(session: Session, principal: Principal, incident: Incident) -> bool:
    """Whether the caller may learn where a duplicate went. Its reporter and its labs
    read the duplicate itself, but the target may be embargoed or another lab's: then
    they are told only that it was merged, never the target's id."""
    if incident.duplicate_of is None:
        return False
    return session.exec(select(Incident.id).where(
        Incident.id == incident.duplicate_of, visible_incidents(principal))).first() is not None


def get_incident(session: Session, principal: Principal, incident_id: int) -> Incident:
    incident = session.exec(select(Incident).where(Incident.id == incident_id,
                                                   reachable(principal))).first()
    if incident is None:
        raise NotFound(f"no incident {incident_id}", field="incident_id")
    return incident


def _resolve_labs(session: Session, principal: Principal, labs: list[str],
                  models: list[str]) -> tuple[list[int], list[int]]:
    lab_ids: list[int] = []
    for i, slug in enumerate(labs):
        lab = session.exec(select(Lab).where(Lab.slug == slug)).first()
        if lab is None:
            raise Invalid(f"no lab {slug!r}", field=f"labs[{i}]")
        lab_ids.append(lab.id)
    model_ids: list[int] = []
    for i, ref in enumerate(models):
        try:
            model = find_model(session, principal, ref)
        except NotFound as exc:
            raise Invalid(exc.detail, field=f"models[{i}]") from None
        model_ids.append(model.id)
        # A model's lab is affected by what happens with its model.
        lab_ids.append(model.lab_id)
    return list(dict.fromkeys(lab_ids)), list(dict.fromkeys(model_ids))


def _set_links(session: Session, incident: Incident, lab_ids: list[int],
               model_ids: list[int], harm_types: list[str]) -> None:
    for table in (IncidentLab, IncidentModel, IncidentHarm):
        session.execute(delete(table).where(table.incident_id == incident.id))
    session.add_all([IncidentLab(incident_id=incident.id, lab_id=x) for x in lab_ids])
    session.add_all([IncidentModel(incident_id=incident.id, model_id=x) for x in model_ids])
    session.add_all([IncidentHarm(incident_id=incident.id, harm_type=x) for x in harm_types])


def lab_ids_of(session: Session, incident_id: int) -> list[int]:
    return list(session.exec(select(IncidentLab.lab_id)
                             .where(IncidentLab.incident_id == incident_id)))


def state(incident: Incident) -> dict:
    return {"id": incident.id, "title": incident.title, "summary": incident.summary,
            "status": incident.status, "severity": incident.severity,
            "harm_types": incident.harm_types, "occurred": incident.occurred,
            "embargo_until": incident.embargo_until, "duplicate_of": incident.duplicate_of,
            "acknowledged_at": incident.acknowledged_at, "version": incident.version}


def _event(session: Session, actor: Principal, incident: Incident, action: str,
           **data) -> None:
    """Incident events are never public: embargoed text must not reach a public feed.
    One event per affected lab so each lab's members see it; private if none. A
    duplicate's events name its target only to labs the target affects too (the others
    may not see it; even the digest would give the id away, so it covers a state without
    it); coordinators get one private event with everything."""
    data = {"status": incident.status, "version": incident.version, **data}
    lab_ids = lab_ids_of(session, incident.id)
    full = state(incident)
    target_labs = set(lab_ids_of(session, incident.duplicate_of)) \
        if incident.duplicate_of is not None else None
    if target_labs is not None and not set(lab_ids) <= target_labs:
        record(session, actor, "incident", incident.id, action, full,
               visibility="private", data=data)
        redacted = {k: v for k, v in full.items() if k != "duplicate_of"}
        quiet = {k: v for k, v in data.items() if k != "duplicate_of"}
        for lab_id in lab_ids:
            known = lab_id in target_labs
            record(session, actor, "incident", incident.id, action,
                   full if known else redacted, lab_id=lab_id, visibility="lab",
                   data=data if known else quiet)
        return
    for lab_id in lab_ids or [None]:
        record(session, actor, "incident", incident.id, action, full,
               lab_id=lab_id, visibility="lab" if lab_id else "private", data=data)


def refresh_search_text(session: Session, incident_id: int) -> None:
    """Denormalise linked report texts onto the incident (the search index reads it)."""
    texts = session.exec(select(IncidentReport.text).join(
        IncidentReportLink, IncidentReportLink.report_id == IncidentReport.id)
        .where(IncidentReportLink.incident_id == incident_id)
        .order_by(IncidentReport.id)).all()
    incident = session.get(Incident, incident_id)
    incident.search_text = "\n\n".join(texts)
    session.add(incident)
    session.flush()


def _new_report(session: Session, actor: Principal, data: ReportCreate,
                contact: str | None) -> IncidentReport:
    report = IncidentReport(text=data.text, url=data.url, submitted_by=actor.user_id,
                            contact=None if actor.user_id else contact)
    session.add(report)
    session.flush()
    return report


def check_references(session: Session, actor: Principal, stage_ids: list[int] | None,
                     checkpoint_ids: list[int] | None) -> None:
    """Stage and checkpoint ids must name ones the caller can see: a missing one and a
    hidden one answer the same 422, so the check reveals nothing."""
    from app.checkpoints.tables import Checkpoint
    from app.plans.tables import ReleasePlan, Stage

    for field, ids, query in (
            ("stage_ids", stage_ids, lambda ids: select(Stage.id).join(
                ReleasePlan, ReleasePlan.id == Stage.plan_id)
                .where(Stage.id.in_(ids), visible_plans(actor))),
            ("checkpoint_ids", checkpoint_ids, lambda ids: select(Checkpoint.id)
                .where(Checkpoint.id.in_(ids), visible_checkpoints(actor)))):
        if not ids:
            continue
        found = set(session.exec(query(sorted(set(ids)))))
        for i, value in enumerate(ids):
            if value not in found:
                raise Invalid(f"no {field[:-4]} {value}", field=f"{field}[{i}]")


def submit_incident(session: Session, actor: Principal, data: IncidentCreate) -> Incident:
    """Anyone may submit; it waits in the moderation queue as `submitted`."""
    version, _ = taxonomy()
    harm_types = check_harm_types(data.harm_types)
    check_references(session, actor, data.stage_ids, data.checkpoint_ids)
    lab_ids, model_ids = _resolve_labs(session, actor, data.labs, data.models)
    incident = Incident(title=data.title, summary=data.summary, occurred=data.occurred,
                        year=data.occurred.year, harm_types=harm_types,
                        taxonomy_version=version, severity=data.severity,
                        stage_ids=data.stage_ids, checkpoint_ids=data.checkpoint_ids,
                        reporter_id=actor.user_id,
                        reporter_contact=None if actor.user_id else data.reporter_contact)
    session.add(incident)
    session.flush()
    _set_links(session, incident, lab_ids, model_ids, harm_types)
    for item in data.reports:
        report = _new_report(session, actor, item, data.reporter_contact)
        session.add(IncidentReportLink(incident_id=incident.id, report_id=report.id))
    session.flush()
    if data.reports:
        refresh_search_text(session, incident.id)
    _event(session, actor, incident, "submitted")
    return incident


def update_incident(session: Session, actor: Principal, incident_id: int,
                    data: IncidentUpdate) -> Incident:
    incident = get_incident(session, actor, incident_id)
    is_reporter = actor.user_id is not None and incident.reporter_id == actor.user_id
    if not (actor.is_coordinator or (is_reporter and incident.status == "submitted"
                                     and incident.acknowledged_at is None)):
        # Once a lab acknowledged the claim, its reporter may not rewrite what was
        # acknowledged (raise its severity, name other models): coordinators still may.
        raise Forbidden("coordinators edit incidents; reporters only while submitted and "
                        "not yet acknowledged by an affected lab")
    if incident.status == "duplicate":
        raise InvalidTransition("a duplicate cannot be edited; edit its target",
                                field="status")
    check_references(session, actor, data.stage_ids, data.checkpoint_ids)
    claim_version(session, incident, data.version)
    for key in ("title", "summary", "occurred", "severity", "stage_ids", "checkpoint_ids"):
        value = getattr(data, key)
        if value is not None:
            setattr(incident, key, value)
    incident.year = incident.occurred.year
    if data.harm_types is not None:
        incident.harm_types = check_harm_types(data.harm_types)
        incident.taxonomy_version = taxonomy()[0]
    if data.labs is not None or data.models is not None:
        labs = data.labs if data.labs is not None else _lab_slugs(session, incident.id)
        models = data.models if data.models is not None else \
            _model_refs(session, actor, incident.id)
        lab_ids, model_ids = _resolve_labs(session, actor, labs, models)
    else:
        lab_ids = lab_ids_of(session, incident.id)
        model_ids = list(session.exec(select(IncidentModel.model_id)
                                      .where(IncidentModel.incident_id == incident.id)))
    session.add(incident)
    session.flush()
    _set_links(session, incident, lab_ids, model_ids, incident.harm_types)
    session.flush()
    _event(session, actor, incident, "revised")
    return incident


def _lab_slugs(session: Session, incident_id: int) -> list[str]:
    return list(session.exec(select(Lab.slug).join(IncidentLab, IncidentLab.lab_id == Lab.id)
                             .where(IncidentLab.incident_id == incident_id)))


def _model_refs(session: Session, principal: Principal, incident_id: int) -> list[str]:
    rows = session.exec(select(Lab.slug, AIModel.slug)
                        .join(AIModel, AIModel.lab_id == Lab.id)
                        .join(IncidentModel, IncidentModel.model_id == AIModel.id)
                        .where(IncidentModel.incident_id == incident_id,
                               visible_models(principal)))
    return [f"{lab}/{model}" for lab, model in rows]


def transition_incident(session: Session, actor: Principal, incident_id: int, to: str,
                        version: int | None, reason: str | None = None,
                        duplicate_of: int | None = None) -> Incident:
    incident = get_incident(session, actor, incident_id)
    if to not in MOVES.get(incident.status, set()):
        raise InvalidTransition(f"an incident cannot move from {incident.status} to {to}",
                                field="to")
    lab_admin = any(actor.is_admin(x) for x in lab_ids_of(session, incident.id))
    if not (actor.is_coordinator or (lab_admin and (incident.status, to) in LAB_ADMIN_MOVES)):
        raise Forbidden("only coordinators triage incidents; an affected lab's admin may "
                        "only resolve a confirmed one")
    target = None
    if to == "duplicate":
        if duplicate_of is None:
            raise Invalid("name the incident this one duplicates", field="duplicate_of")
        target = get_incident(session, actor, duplicate_of)
        if target.status == "duplicate":
            target = get_incident(session, actor, target.duplicate_of)
        if target.id == incident.id:
            raise Invalid("an incident cannot duplicate itself", field="duplicate_of")
    elif duplicate_of is not None:
        raise Invalid("only a move to duplicate takes duplicate_of", field="duplicate_of")
    claim_version(session, incident, version)
    before = incident.status
    incident.status = to
    if target is not None:
        incident.duplicate_of = target.id
        _merge_reports(session, incident.id, target.id)
    session.add(incident)
    session.flush()
    _event(session, actor, incident, to, previous=before, reason=reason,
           duplicate_of=incident.duplicate_of)
    if target is not None:
        target = session.get(Incident, target.id)
        claim_version(session, target, target.version)
        session.add(target)
        session.flush()
        _event(session, actor, target, "merged", merged_from=incident.id)
    return incident


def acknowledge_incident(session: Session, actor: Principal, incident_id: int,
                         version: int | None) -> Incident:
    """A member (any role) of an affected lab says the incident is real. Coordinators
    confirm instead; reporters and outsiders cannot speak for the lab. One
    acknowledgement stands: a second is a 409 naming `acknowledged_at` (the first one's
    time and author are never overwritten). Whoever cannot see the incident gets the
    404 of a missing one."""
    actor.require_user()
    incident = get_incident(session, actor, incident_id)
    affected = lab_ids_of(session, incident.id)
    if not any(actor.is_member(x) for x in affected):
        raise Forbidden("only a member of a lab the incident affects may acknowledge it; "
                        "coordinators confirm it instead")
    if incident.status not in ACKNOWLEDGEABLE:
        raise InvalidTransition(f"a {incident.status} incident cannot be acknowledged",
                                field="status")
    if incident.acknowledged_at is not None:
        raise InvalidTransition("this incident was already acknowledged",
                                field="acknowledged_at")
    claim_version(session, incident, version)
    incident.acknowledged_at = utcnow()
    incident.acknowledged_by = actor.user_id
    session.add(incident)
    session.flush()
    _event(session, actor, incident, "acknowledged")
    return incident


def _merge_reports(session: Session, source_id: int, target_id: int) -> None:
    """Move the duplicate's reports to the target; nothing is deleted but the links."""
    have = set(session.exec(select(IncidentReportLink.report_id)
                            .where(IncidentReportLink.incident_id == target_id)))
    for link in session.exec(select(IncidentReportLink)
                             .where(IncidentReportLink.incident_id == source_id)).all():
        if link.report_id not in have:
            session.add(IncidentReportLink(incident_id=target_id, report_id=link.report_id))
        session.delete(link)
    session.flush()
    refresh_search_text(session, source_id)
    refresh_search_text(session, target_id)


def set_embargo(session: Session, actor: Principal, incident_id: int, until,
                version: int | None) -> Incident:
    actor.require_coordinator()
    incident = get_incident(session, actor, incident_id)
    claim_version(session, incident, version)
    incident.embargo_until = until
    session.add(incident)
    session.flush()
    _event(session, actor, incident, "embargo_set" if until else "embargo_lifted")
    return incident


def add_report(session: Session, actor: Principal, incident_id: int,
               data: ReportCreate) -> IncidentReport:
    """Anyone signed in who can see an incident may add evidence to it."""
    actor.require_user()
    incident = get_incident(session, actor, incident_id)
    if incident.status == "duplicate":
        if not sees_target(session, actor, incident):
            # Adding there would answer with (and log for the caller) the hidden target.
            raise InvalidTransition("this incident was merged into another one that you "
                                    "cannot see; a coordinator can add your evidence",
                                    field="incident_id")
        incident = get_incident(session, actor, incident.duplicate_of)
    report = _new_report(session, actor, data, None)
    session.add(IncidentReportLink(incident_id=incident.id, report_id=report.id))
    session.flush()
    refresh_search_text(session, incident.id)
    _event(session, actor, incident, "report_added", report_id=report.id)
    return report


def link_report(session: Session, actor: Principal, incident_id: int, report_id: int,
                linked: bool = True) -> Incident:
    """Coordinators link one report to further incidents (or unlink it)."""
    actor.require_coordinator()
    incident = get_incident(session, actor, incident_id)
    if session.get(IncidentReport, report_id) is None:
        raise NotFound(f"no report {report_id}", field="report_id")
    link = session.get(IncidentReportLink, (incident_id, report_id))
    if linked and link is None:
        session.add(IncidentReportLink(incident_id=incident_id, report_id=report_id))
    elif not linked and link is not None:
        session.delete(link)
    session.flush()
    refresh_search_text(session, incident_id)
    _event(session, actor, incident, "report_linked" if linked else "report_unlinked",
           report_id=report_id)
    return incident


def list_reports(session: Session, principal: Principal,
                 incident_id: int) -> list[IncidentReport]:
    return reports_of_incident(session, get_incident(session, principal, incident_id))


def reports_of_incident(session: Session, incident: Incident) -> list[IncidentReport]:
    """list_reports of an incident already read through get_incident."""
    return list(session.exec(select(IncidentReport).join(
        IncidentReportLink, IncidentReportLink.report_id == IncidentReport.id)
        .where(IncidentReportLink.incident_id == incident.id).order_by(IncidentReport.id)))


def read_incidents(session: Session, principal: Principal, incidents: list[Incident],
                   html: bool = True) -> list[IncidentRead]:
    """Batch reader (3 queries for any number of incidents) for lists, search, export.
    html=False skips Markdown rendering (~1 ms an incident): search hits carry a snippet."""
    ids = [i.id for i in incidents]
    if not ids:
        return []
    labs: dict[int, list[str]] = {i: [] for i in ids}
    models: dict[int, list[str]] = {i: [] for i in ids}
    counts: dict[int, int] = {}
    for iid, slug in session.execute(
            sa_select(IncidentLab.incident_id, Lab.slug).join(Lab, Lab.id == IncidentLab.lab_id)
            .where(IncidentLab.incident_id.in_(ids)).order_by(Lab.slug)):
        labs[iid].append(slug)
    for iid, lab, slug in session.execute(
            sa_select(IncidentModel.incident_id, Lab.slug, AIModel.slug)
            .join(AIModel, AIModel.id == IncidentModel.model_id)
            .join(Lab, Lab.id == AIModel.lab_id)
            .where(IncidentModel.incident_id.in_(ids), visible_models(principal))
            .order_by(Lab.slug, AIModel.slug)):
        models[iid].append(f"{lab}/{slug}")
    for iid, n in session.execute(
            sa_select(IncidentReportLink.incident_id, func.count())
            .where(IncidentReportLink.incident_id.in_(ids))
            .group_by(IncidentReportLink.incident_id)):
        counts[iid] = n
    reads = build_reads(principal, incidents, labs, models, counts, html)
    return set_log_indexes(session, principal, "incident", reads)


def build_reads(principal: Principal, incidents, labs: dict[int, list[str]],
                models: dict[int, list[str]], counts: dict[int, int],
                html: bool) -> list[IncidentRead]:
    """IncidentRead for each incident (an ORM row or any row with the same attributes),
    given its lab slugs and visible model refs (each sorted) and report count. Who sees
    the reporter is decided here only."""
    out = []
    for i in incidents:
        sees_reporter = principal.is_coordinator or (
            principal.user_id is not None and principal.user_id == i.reporter_id)
        out.append(IncidentRead(
            id=i.id, title=i.title, summary=i.summary, summary_html=stored_html(i, "summary") if html else None,
            occurred=i.occurred, harm_types=i.harm_types, taxonomy_version=i.taxonomy_version,
            severity=i.severity, labs=labs[i.id], models=models[i.id], stage_ids=i.stage_ids,
            checkpoint_ids=i.checkpoint_ids, status=i.status, duplicate_of=i.duplicate_of,
            embargo_until=i.embargo_until, acknowledged_at=i.acknowledged_at,
            version=i.version, created_at=i.created_at,
            updated_at=i.updated_at, report_count=counts.get(i.id, 0),
            reporter_id=i.reporter_id if sees_reporter else None,
            reporter_contact=i.reporter_contact if principal.is_coordinator else None))
    return out


def read_incident(session: Session, principal: Principal, incident: Incident) -> IncidentRead:
    return read_incidents(session, principal, [incident])[0]


def _exported(principal: Principal):
    """What an export holds: every incident the caller may see, duplicates excluded."""
    return (visible_incidents(principal), Incident.status != "duplicate")


def export_page_end(session: Session, principal: Principal, after: int,
                    limit: int) -> tuple[int | None, bool]:
    """The last id of the export page after `after` (None: the page is empty) and
    whether more follow it; ids only, one statement."""
    ids = list(session.exec(select(Incident.id).where(*_exported(principal),
                                                      Incident.id > after)
                            .order_by(Incident.id).limit(limit + 1)))
    return (ids[:limit][-1] if ids else None), len(ids) > limit


def export_batches(session: Session, principal: Principal, after: int, last: int | None,
                   batch: int = 500):
    """The exported incidents with ids in (after, last], by id, in batches."""
    while last is not None and after < last:
        rows = list(session.exec(select(Incident).where(
            *_exported(principal), Incident.id > after, Incident.id <= last)
            .order_by(Incident.id).limit(batch)))
        if not rows:
            return
        yield read_incidents(session, principal, rows, html=False)
        after = rows[-1].id

