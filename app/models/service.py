"""Registering AI models and editing their model cards."""

from __future__ import annotations

from sqlalchemy import func
from sqlalchemy.orm import load_only
from sqlmodel import Session, select

from app.access import model_audience, visible_models
from app.auth.principal import Principal
from app.errors import Conflict, NotFound
from app.events.service import record
from app.ids import MAX_ID
from app.labs.service import check_slug, get_lab
from app.labs.tables import Lab
from app.markdown import stored_html
from app.models.schemas import CardFields, CardInput, ModelCreate, ModelRead, ModelSummary
from app.models.tables import CARD_SECTIONS, AIModel
from app.pagination import PageRequest, paginate
from app.versioning import claim_version

CARD_KEYS = tuple(CardFields.model_fields)
# The columns a ModelSummary is made of (its "lab" is the lab's slug, read by lab_id).
SUMMARY_COLUMNS = tuple(f for f in ModelSummary.model_fields if f != "lab") + ("lab_id",)


def model_state(model: AIModel) -> dict:
    state = {key: getattr(model, key) for key in CARD_KEYS}
    state.update(slug=model.slug, name=model.name, public=model.public, version=model.version)
    return state


def create_model(session: Session, actor: Principal, data: ModelCreate) -> AIModel:
    lab = get_lab(session, data.lab)
    actor.require_member(lab.id)
    check_slug(data.slug)
    exists = select(AIModel).where(AIModel.lab_id == lab.id, AIModel.slug == data.slug)
    if session.exec(exists).first():
        raise Conflict(f"model {data.lab}/{data.slug} already exists", field="slug")
    model = AIModel(lab_id=lab.id, **data.model_dump(exclude={"lab"}))
    session.add(model)
    session.flush()
    record(session, actor, "model", model.id, "created", model_state(model), lab_id=lab.id,
           visibility=model_audience(model))
    return model


def get_model(session: Session, principal: Principal, model_id: int) -> AIModel:
    query = select(AIModel).where(AIModel.id == model_id, visible_models(principal))
    model = session.exec(query).first()
    if model is None:
        raise NotFound(f"no model {model_id}", field="model_id")
    return model


def find_model(session: Session, principal: Principal, ref: str) -> AIModel:
    """Resolve "lab/slug" (or a numeric id) to a model the principal can see."""
    if ref.isascii() and ref.isdigit():  # not "²": str.isdigit takes it, int() does not
        if int(ref) > MAX_ID:
            raise NotFound(f"no model {ref}", field="model")
        try:
            return get_model(session, principal, int(ref))
        except NotFound:  # named as asked: a `?model=` filter then answers 422, not 404
            raise NotFound(f"no model {ref}", field="model") from None
    lab_slug, _, slug = ref.partition("/")
    query = (select(AIModel).join(Lab, Lab.id == AIModel.lab_id)
             .where(Lab.slug == lab_slug, AIModel.slug == slug, visible_models(principal)))
    model = session.exec(query).first()
    if model is None:
        raise NotFound(f"no model {ref!r}; refer to a model as LAB/MODEL", field="model")
    return model


def list_models(session: Session, principal: Principal, page: PageRequest,
                lab: str | None = None, q: str | None = None, summary: bool = False):
    """A page of the models the principal may see; `q` keeps those whose "lab/slug name"
    contains it (case-insensitive), inside the query so paging stays exact. `summary`
    loads only what model_summaries reads (not the card's prose and its HTML)."""
    query = select(AIModel).where(visible_models(principal))
    if summary:
        query = query.options(load_only(*(getattr(AIModel, f) for f in SUMMARY_COLUMNS),
                                        raiseload=True))
    if lab:
        query = query.where(AIModel.lab_id == get_lab(session, lab).id)
    if q:
        # SQLite's lower() folds ASCII only: it uses casefold(), Python's, registered on
        # each connection (app.db); PostgreSQL's lower() follows the database's locale.
        sqlite = session.get_bind().dialect.name == "sqlite"
        fold, needle = (func.casefold, q.casefold()) if sqlite else (func.lower, q.lower())
        named = fold(Lab.slug + "/" + AIModel.slug + " " + AIModel.name)
        query = query.join(Lab, Lab.id == AIModel.lab_id).where(
            named.contains(needle, autoescape=True))
    return paginate(session, query, AIModel.id, page)


def list_model_names(session: Session, principal: Principal, limit: int,
                     lab: str | None = None) -> tuple[list, bool]:
    """The newest `limit` models the principal may see, as rows of (id, lab, slug, name)
    only, and whether there are more: for pages that list models by name (home, a lab),
    without loading cards or validating schemas. Same filter as list_models."""
    query = (select(AIModel.id, Lab.slug.label("lab"), AIModel.slug, AIModel.name)
             .join(Lab, Lab.id == AIModel.lab_id).where(visible_models(principal)))
    if lab:
        query = query.where(AIModel.lab_id == get_lab(session, lab).id)
    rows = list(session.exec(query.order_by(AIModel.id.desc()).limit(limit + 1)))
    return rows[:limit], len(rows) > limit


def update_model(session: Session, actor: Principal, model_id: int, version: int | None,
                 name: str | None = None, public: bool | None = None,
                 card: dict | None = None) -> AIModel:
    model = get_model(session, actor, model_id)
    actor.require_member(model.lab_id)
    claim_version(session, model, version)
    if card:
        merged = {key: getattr(model, key) for key in CARD_KEYS} | card
        for key, value in CardInput.model_validate(merged).model_dump().items():
            setattr(model, key, value)
    if name is not None:
        model.name = name
    if public is not None:
        model.public = public
    session.add(model)
    record(session, actor, "model", model.id, "updated", model_state(model),
           lab_id=model.lab_id, visibility=model_audience(model))
    return model


def read_models(session: Session, models: list[AIModel]) -> list[ModelRead]:
    """A page of models with their labs in one query: session.get finds them in the
    identity map, which holds them weakly, so `labs` keeps them alive meanwhile."""
    labs = list(session.exec(select(Lab).where(Lab.id.in_({m.lab_id for m in models})))) \
        if models else []
    page = [read_model(session, m) for m in models]
    del labs
    return page


def model_summaries(session: Session, models: list[AIModel]) -> list[ModelSummary]:
    """A page of models as lists show them (no card prose or HTML), labs in one query."""
    if not models:
        return []
    labs = dict(session.exec(select(Lab.id, Lab.slug).where(
        Lab.id.in_({m.lab_id for m in models}))).all())
    return [ModelSummary.model_validate({**{f: getattr(m, f) for f in SUMMARY_COLUMNS},
                                         "lab": labs[m.lab_id]}) for m in models]


def read_model(session: Session, model: AIModel) -> ModelRead:
    lab = session.get(Lab, model.lab_id)
    data = model.model_dump()
    data["lab"] = lab.slug
    data["card_html"] = {key: stored_html(model, key) for key in CARD_SECTIONS}
    return ModelRead.model_validate(data)
