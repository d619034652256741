"""Property: the checkpoint grant rule, written out here by hand, agrees with the download
route, the checkpoint list and the policy gate's partner evidence.

The oracle below restates the rule of README "Who sees what" (a `public` checkpoint to
whoever may see its model; every checkpoint to its lab and coordinators; a `partners` or
`public` one also to the party labs of an agreement by the checkpoint's own lab that is in
force now and covers it by model, by the stage it is attached to or by id, once the
checkpoint exists) in plain Python over the world this test built, without app.access.
Random worlds (labs, public and private models, a plan, checkpoints at every access level,
some attached to stages, agreements in every state with random windows, parties, signatures
and scopes, some of them made by a lab other than the checkpoints') are written straight
into a fresh database with the clock frozen, so windows can sit exactly on "now". Then, for
every reader and checkpoint: the file route answers 200 iff the oracle grants, the list
(paged, and filtered by model) holds it iff the oracle grants, and the gate's
partners_with_access for each stage names a party lab iff the oracle lets it download some
checkpoint of that stage through an agreement. The regressions at the end are the issue's
case: a stage-scoped agreement counted by the gate while its partners got 404.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, Phase, example, given, note, settings
from hypothesis import strategies as st
from litestar.testing import TestClient
from sqlmodel import select

from app import create_app
from app.agreements.schemas import AgreementCreate
from app.agreements.service import create_agreement, sign_agreement, transition_agreement
from app.agreements.tables import (
    AgreementParty,
    AgreementScope,
    AgreementSignature,
    DisclosureAgreement,
)
from app.auth.principal import SYSTEM
from app.checkpoints.schemas import CheckpointCreate
from app.checkpoints.tables import Checkpoint
from app.db import session_scope
from app.flows import upload_checkpoint
from app.labs.service import create_lab
from app.models.schemas import ModelCreate
from app.models.service import create_model
from app.norms.checks import CHECKS
from app.norms.evidence import plan_facts
from app.norms.gate import policies_for
from app.plans.schemas import PlanCreate
from app.plans.service import file_plan
from app.plans.tables import ReleasePlan, Stage
from app.timeutil import freeze
from tests.factories import FOUR_STAGES
from tests.test_visibility_property import fresh_database
from tests.visibility_world import CHECKPOINT_FILES, add_user

NOW = datetime(2031, 3, 4, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
LEVELS = ("public", "partners", "internal")
FILE = "config.json"
POLICIES = ["gpt2-2019"]  # declares a partner_agreement rule, so plan_facts loads agreements


# -- the world, as plain data the oracle reads ---------------------------------------------

@dataclass
class Ckpt:
    name: str
    model: int          # index into World.models
    level: str
    stage: int | None   # index into World.stages (plan model's checkpoints only)
    created: datetime
    id: int = 0


@dataclass
class Agreement:
    lab: int            # the disclosing lab (index)
    fate: str
    status: str
    starts: datetime
    ends: datetime
    activated: datetime | None
    terminated: datetime | None
    parties: list[int]
    signed: list[int]
    scopes: list[tuple[str, int]]  # ("model", model idx) / ("stage", stage idx) / ("checkpoint", ckpt idx)


@dataclass
class World:
    labs: list[str]
    models: list[tuple[int, bool]]       # (lab index, public); model i belongs to lab i
    stages: list[str | None]             # per stage position-1: checkpoint_ref or None
    ckpts: list[Ckpt]
    agreements: list[Agreement]
    model_ids: list[int] = field(default_factory=list)
    stage_ids: list[int] = field(default_factory=list)
    lab_ids: list[int] = field(default_factory=list)
    plan_id: int = 0


# -- the oracle: the rule, restated over World ----------------------------------------------

def in_force(a: Agreement, now: datetime = NOW) -> bool:
    return (a.status in ("active", "terminated") and a.activated is not None
            and a.activated <= now and a.starts <= now < a.ends
            and (a.terminated is None or now < a.terminated))


def covers(w: World, a: Agreement, c: Ckpt) -> bool:
    for kind, i in a.scopes:
        if kind == "model" and i == c.model:
            return True
        if kind == "stage" and c.stage is not None and i == c.stage:
            return True
        if kind == "checkpoint" and w.ckpts[i] is c:
            return True
    return False


def ckpt_lab(w: World, c: Ckpt) -> int:
    return w.models[c.model][0]


def partner_grant(w: World, lab: int, c: Ckpt) -> bool:
    """`lab` may download `c` through an agreement (not as owner, not as public)."""
    if c.level not in ("partners", "public") or c.created > NOW:
        return False
    return any(a.lab == ckpt_lab(w, c) and in_force(a) and lab in a.parties and covers(w, a, c)
               for a in w.agreements)


def held_and_ended(w: World, reader: str | int, c: Ckpt) -> bool:
    """`reader`'s lab held a grant on `c` that has ended: the one refusal that says why
    (403), since it tells them nothing they did not know."""
    if not isinstance(reader, int) or c.level not in ("partners", "public"):
        return False
    for a in w.agreements:
        if (a.lab != ckpt_lab(w, c) or reader not in a.parties or not covers(w, a, c)
                or a.status not in ("active", "terminated") or a.activated is None):
            continue
        start = max(a.activated, a.starts, c.created)
        end = min(t for t in (a.ends, a.terminated) if t is not None)
        if start < end <= NOW:
            return True
    return False


def model_visible(w: World, reader: str | int, model: int) -> bool:
    lab, public = w.models[model]
    return reader == "coord" or public or reader == lab


def may_download(w: World, reader: str | int, c: Ckpt) -> bool:
    """reader: "coord", "anon" or a lab index (a member of that lab)."""
    if reader == "coord":
        return True
    if c.level == "public" and model_visible(w, reader, c.model):
        return True
    if reader == "anon":
        return False
    return reader == ckpt_lab(w, c) or partner_grant(w, reader, c)


def stage_hosted(w: World, s: int) -> list[Ckpt]:
    """A stage's checkpoints: those attached to it, and the plan model's checkpoint its
    checkpoint_ref names."""
    return [c for c in w.ckpts if c.stage == s or (c.model == 0 and c.name == w.stages[s])]


# -- random worlds ----------------------------------------------------------------------------

# An agreement starts out in force (signed by every party, started 40 days ago, ends in a
# year); a twist then moves one fact, often onto the boundary "now" itself. Interesting
# values come first: hypothesis tries the first choices most.
TWISTS = {
    "none": {}, "activated_now": {"activated": 0}, "starts_now": {"starts": 0},
    "ends_now": {"ends": 0}, "expired": {"ends": -1}, "starts_later": {"starts": 1},
    "activates_later": {"activated": 1}, "draft": {"status": "draft"},
    "proposed": {"status": "proposed"}, "terminated_past": {"terminated": -5},
    "terminated_now": {"terminated": 0}, "terminated_later": {"terminated": 3},
}


@st.composite
def agreements(draw, n_labs: int, n_stages: int, ckpt_models: list[int]) -> Agreement:
    lab = draw(st.sampled_from([0, 0, 0, 0, 0, *range(1, n_labs)]))
    others = [x for x in range(n_labs) if x != lab]
    parties = draw(st.lists(st.sampled_from(others), min_size=1, max_size=len(others),
                            unique=True))
    twist = draw(st.sampled_from(["none", *TWISTS]))
    signed = None
    if twist == "proposed":  # some parties signed, not all
        signed = draw(st.lists(st.sampled_from(parties), max_size=len(parties) - 1,
                               unique=True))
    # Mostly the discloser's own models and checkpoints (what the service accepts), but
    # also other labs' (rows it would refuse), which must grant nothing (rule (a)).
    own = [i for i, m in enumerate(ckpt_models) if m == lab]  # model i is lab i's
    scopes = draw(st.lists(st.one_of(
        st.tuples(st.just("stage"), st.integers(0, n_stages - 1)),
        st.tuples(st.just("checkpoint"), st.sampled_from(own * 3 + list(range(len(ckpt_models))))),
        st.tuples(st.just("model"), st.sampled_from([lab, lab, lab, *range(n_labs)]))),
        min_size=1, max_size=3, unique=True))
    return agreement(lab, twist, parties, scopes, signed)


def agreement(lab: int, twist: str, parties: list[int], scopes: list, signed=None) -> Agreement:
    t = TWISTS[twist]
    status = t.get("status", "terminated" if "terminated" in t else "active")
    ends = NOW + DAY * t.get("ends", 365)
    starts = min(NOW + DAY * t.get("starts", -40), ends - 5 * DAY)
    activated = NOW + DAY * t.get("activated", -20)
    terminated = NOW + DAY * t["terminated"] if "terminated" in t else None
    if status in ("draft", "proposed"):
        activated, signed = None, signed or []
    return Agreement(lab, twist, status, starts, ends, activated, terminated, parties,
                     parties if signed is None else signed, scopes)


@st.composite
def worlds(draw) -> World:
    n_labs = draw(st.integers(3, 4))
    labs = [f"lab-{chr(ord('a') + i)}" for i in range(n_labs)]
    # One model per lab; the plan is on lab-a's model (model 0).
    models = [(i, draw(st.booleans())) for i in range(n_labs)]
    n_stages = draw(st.integers(2, 3))
    n_ckpts = draw(st.integers(3, 7))
    ckpts = []
    for i in range(n_ckpts):
        model = draw(st.sampled_from([0, 0, 0, 0, *range(1, n_labs)]))
        stage = (draw(st.sampled_from([*range(n_stages), None])) if model == 0 else None)
        created = NOW + DAY * draw(st.sampled_from([-30, -30, -30, 2, 0]))
        level = draw(st.sampled_from(["partners", "public", "internal", "partners"]))
        ckpts.append(Ckpt(f"c{i}", model, level, stage, created))
    # A stage also hosts the plan model's checkpoint its checkpoint_ref names.
    stages = [draw(st.sampled_from([*(f"c{i}" for i in range(n_ckpts)), "nope", None]))
              for _ in range(n_stages)]
    found = draw(st.lists(agreements(n_labs, n_stages, [c.model for c in ckpts]),
                          min_size=2, max_size=5))
    return World(labs, models, stages, ckpts, found)


def build(w: World):
    """Writes `w` into the configured database (clock frozen at NOW); returns the actors:
    lab index / "coord" / "anon" -> headers."""
    actors: dict = {"anon": {}}
    w.lab_ids, w.model_ids, w.stage_ids = [], [], []  # an explicit example is built twice
    with session_scope() as s:
        for i, slug in enumerate(w.labs):
            w.lab_ids.append(create_lab(s, SYSTEM, slug, f"Lab {slug}").id)
            actors[i] = add_user(s, f"{slug}-member", slug)
        actors["coord"] = add_user(s, "coord", None, coordinator=True)
        for i, (lab, public) in enumerate(w.models):
            w.model_ids.append(create_model(s, SYSTEM, ModelCreate(
                lab=w.labs[lab], slug="m", name=f"Model {i}", public=public)).id)
    with session_scope() as s:
        stages = [{"name": f"s{i + 1}", "access_level": "partners",
                   **({"checkpoint_ref": ref} if ref else {})} for i, ref in enumerate(w.stages)]
        plan = file_plan(s, actors[0].principal, PlanCreate(
            model=f"{w.labs[0]}/m", title="plan", stages=stages, file=True, policies=POLICIES))
        w.plan_id = plan.id
        w.stage_ids = list(s.exec(select(Stage.id).where(Stage.plan_id == plan.id)
                                  .order_by(Stage.position)))
    # One real upload: its blobs are content-addressed, so every other checkpoint row can
    # name the same files and the download route serves them all.
    with session_scope() as s:
        first = upload_checkpoint(s, actors[0].principal, CheckpointCreate(
            model=f"{w.labs[0]}/m", name="upload", access_level="internal"),
            [(n, io.BytesIO(b)) for n, b in CHECKPOINT_FILES.items()], enqueue=False)
        template = {k: getattr(first, k) for k in (
            "manifest", "manifest_digest", "total_bytes", "parameter_count", "architecture",
            "model_type")}
        first_id = first.id
    with session_scope() as s:
        for n, c in enumerate(w.ckpts):
            row = s.get(Checkpoint, first_id) if n == 0 else Checkpoint(**template)
            row.name, row.access_level, row.created_at = c.name, c.level, c.created
            row.model_id, row.lab_id = w.model_ids[c.model], w.lab_ids[ckpt_lab(w, c)]
            row.stage_id = w.stage_ids[c.stage] if c.stage is not None else None
            s.add(row)
            s.flush()
            c.id = row.id
        for a in w.agreements:
            row = DisclosureAgreement(
                lab_id=w.lab_ids[a.lab], title=f"{a.fate} agreement", kind="research_access",
                status=a.status, terms="Research only.", starts_at=a.starts, ends_at=a.ends,
                proposed_at=None if a.fate == "draft" else min(a.starts, NOW) - DAY,
                activated_at=a.activated, terminated_at=a.terminated)
            s.add(row)
            s.flush()
            for p in a.parties:
                s.add(AgreementParty(agreement_id=row.id, lab_id=w.lab_ids[p]))
            for p in a.signed:
                s.add(AgreementSignature(agreement_id=row.id, lab_id=w.lab_ids[p],
                                         signer=f"{w.labs[p]}-admin",
                                         signed_at=a.activated or NOW - DAY))
            for kind, i in a.scopes:
                ref = (w.model_ids[i] if kind == "model" else w.stage_ids[i]
                       if kind == "stage" else w.ckpts[i].id)
                s.add(AgreementScope(agreement_id=row.id, **{f"{kind}_id": ref}))
    return {k: (v if k == "anon" else v.headers) for k, v in actors.items()}


def listed(client, headers: dict, query: str = "") -> set[int] | int:
    """Every checkpoint id the list gives, page by page (or the status code of a refusal
    on the first page of a filtered list)."""
    ids: set[int] = set()
    cursor = None
    for _ in range(50):
        url = f"/api/v1/checkpoints?limit=3{query}" + (f"&cursor={cursor}" if cursor else "")
        r = client.get(url, headers=headers)
        if r.status_code != 200 and query and cursor is None:
            return r.status_code
        assert r.status_code == 200, (url, r.status_code, r.text)
        ids |= {item["id"] for item in r.json()["items"]}
        cursor = r.json()["next_cursor"]
        if not cursor:
            return ids
    raise AssertionError("pagination did not end")


def gate_partners(w: World) -> dict[int, set[str]]:
    """Stage index -> party labs the gate's evidence says could download it at NOW."""
    with session_scope(write=False) as s:
        facts = plan_facts(s, s.get(ReleasePlan, w.plan_id), policies_for(POLICIES))
    out = {}
    for i, st_ in enumerate(sorted(facts.stages, key=lambda x: x.position)):
        out[i] = set().union(*[set(a.partners_with_access(st_.position, NOW))
                               for a in facts.agreements])
    return out


def check_world(client, w: World, actors: dict) -> None:
    for reader, headers in actors.items():
        who = reader if not isinstance(reader, int) else w.labs[reader]
        for c in w.ckpts:
            want = may_download(w, reader, c)
            r = client.get(f"/api/v1/checkpoints/{c.id}/files/{FILE}", headers=headers)
            expect = 200 if want else 403 if held_and_ended(w, reader, c) else 404
            assert r.status_code == expect, (
                f"download: {who} on {c.name} (id {c.id}) got {r.status_code}, oracle says "
                f"{want}")
        expected = {c.id for c in w.ckpts if may_download(w, reader, c)}
        got = listed(client, headers)
        assert got == expected, f"list for {who}: extra {got - expected}, missing {expected - got}"
        # A hidden model in the filter answers exactly like one that does not exist.
        missing = listed(client, headers, "&model=lab-zz/m")
        assert isinstance(missing, int) and missing >= 400
        for m, _ in enumerate(w.models):
            got = listed(client, headers, f"&model={w.labs[w.models[m][0]]}/m")
            if not model_visible(w, reader, m):
                assert got == missing, f"?model= of hidden model {m} for {who}: {got}"
                continue
            want = {c.id for c in w.ckpts if c.model == m and may_download(w, reader, c)}
            assert got == want, f"list ?model={m} for {who}: got {got}, oracle {want}"
    evidence = gate_partners(w)
    for s, _ in enumerate(w.stages):
        hosted = stage_hosted(w, s)
        want = {w.labs[lab] for lab in range(len(w.labs)) if lab != 0
                and any(partner_grant(w, lab, c) for c in hosted)}
        got = evidence[s] - {w.labs[0]}
        assert got == want, (f"gate evidence, stage {s + 1} (hosts "
                             f"{[c.name for c in hosted]}): got {sorted(got)}, oracle "
                             f"{sorted(want)}")


def describe(w: World) -> str:
    lines = [f"labs {w.labs}; models (lab, public) {w.models}; stage refs {w.stages}"]
    lines += [f"  ckpt {c.name}: model {c.model} {c.level} stage {c.stage} "
              f"created {(c.created - NOW).days:+}d" for c in w.ckpts]
    rel = lambda t: None if t is None else f"{(t - NOW).days:+}d"
    lines += [f"  agreement by {a.lab} {a.fate}/{a.status} parties {a.parties} signed "
              f"{a.signed} scopes {a.scopes} starts {rel(a.starts)} ends {rel(a.ends)} "
              f"activated {rel(a.activated)} terminated {rel(a.terminated)}"
              for a in w.agreements]
    return "\n".join(lines)


# No shrinking: each example builds a database; the failing world is printed by note().
@settings(max_examples=15, deadline=None, database=None,
          phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(w=worlds())
@example(w=World(  # the cases worth pinning, one each
    ["lab-a", "lab-b", "lab-c"], [(0, False), (1, True), (2, False)], ["c1", None],
    [Ckpt("c0", 0, "partners", 1, NOW - 30 * DAY),
     Ckpt("c1", 0, "partners", None, NOW - 30 * DAY),  # hosted by stage 1 by name only
     Ckpt("c2", 0, "internal", 0, NOW - 30 * DAY),
     Ckpt("c3", 0, "public", 0, NOW + 2 * DAY),        # not yet uploaded "now"
     Ckpt("c4", 1, "partners", None, NOW - 30 * DAY)],
    [agreement(0, "none", [1], [("model", 0)]),
     agreement(0, "starts_now", [2], [("stage", 0)]),      # stage scope misses c1
     agreement(1, "none", [2], [("stage", 1), ("checkpoint", 0)]),  # another lab's rows
     agreement(0, "ends_now", [2], [("model", 0)]),
     agreement(1, "terminated_now", [0], [("model", 1)]),
     agreement(1, "activated_now", [2], [("checkpoint", 4)])]))
def test_download_list_and_gate_agree_with_the_rule(backend, templates, tmp_path_factory, w):
    note(describe(w))
    with fresh_database(backend, templates, tmp_path_factory) as configured:
        freeze(NOW)
        try:
            actors = build(w)
            with TestClient(create_app(configured)) as client:
                check_world(client, w, actors)
        finally:
            freeze(None)


# -- regressions: a stage-scoped agreement counts only what its partners can download -------

T0 = datetime(2031, 1, 10, 9, 0, tzinfo=UTC)


def stage_world(levels: dict[int, str | None], signers=("lab-b", "lab-c")):
    """lab-a's four-stage plan; one checkpoint per position in `levels`, at that access
    level, attached to that stage (None: uploaded but not attached); an agreement by lab-a
    scoped to stages 3 and 4 with parties lab-b and lab-c, signed by `signers` at T0.
    Returns (plan id, headers by lab, checkpoint ids by position)."""
    freeze(T0)
    with session_scope() as s:
        actors, admins = {}, {}
        for slug in ("lab-a", "lab-b", "lab-c", "lab-d"):
            create_lab(s, SYSTEM, slug, slug)
            actors[slug] = add_user(s, f"{slug}-member", slug)
            admins[slug] = add_user(s, f"{slug}-admin", slug, "lab_admin")
        create_model(s, SYSTEM, ModelCreate(lab="lab-a", slug="m", name="M", public=False))
    with session_scope() as s:
        plan_id = file_plan(s, actors["lab-a"].principal, PlanCreate(
            model="lab-a/m", title="GPT-2 style", stages=FOUR_STAGES, file=True,
            policies=POLICIES)).id
    ckpts = {}
    with session_scope() as s:
        for pos, level in levels.items():
            c = upload_checkpoint(s, actors["lab-a"].principal, CheckpointCreate(
                model="lab-a/m", name=f"pos{pos}", access_level=level or "partners"),
                [(n, io.BytesIO(b)) for n, b in CHECKPOINT_FILES.items()], enqueue=False)
            if level is not None:
                c.stage_id = s.exec(select(Stage.id).where(
                    Stage.plan_id == plan_id, Stage.position == pos)).one()
            s.add(c)
            s.flush()
            ckpts[pos] = c.id
    with session_scope() as s:
        a = create_agreement(s, actors["lab-a"].principal, AgreementCreate(
            discloser="lab-a", title="Stages 3-4", kind="research_access",
            parties=["lab-b", "lab-c"], terms="Non-commercial research.",
            scope={"stages": [{"plan": plan_id, "position": 3},
                              {"plan": plan_id, "position": 4}]},
            starts_at=T0 - DAY, ends_at=T0 + 400 * DAY))
        agreement_id, version = a.id, a.version
    with session_scope() as s:
        transition_agreement(s, actors["lab-a"].principal, agreement_id, "proposed", version)
    for slug in signers:
        with session_scope() as s:
            sign_agreement(s, admins[slug].principal, agreement_id, slug)
    return plan_id, {k: v.headers for k, v in actors.items()}, ckpts


def partner_verdicts(plan_id: int, at: datetime) -> dict[int, tuple[str, set]]:
    """Position -> (partner_agreement verdict with 2 partners for 60 days, partners the
    evidence says could download the stage at `at`)."""
    freeze(at)
    chk = CHECKS["partner_agreement"]
    with session_scope(write=False) as s:
        facts = plan_facts(s, s.get(ReleasePlan, plan_id), policies_for(POLICIES))
    out = {}
    for pos in (3, 4):
        target = facts.stage(pos)
        verdict = chk.run(facts, target, chk.params.model_validate(
            {"min_partners": 2, "min_days": 60}), facts.as_of).verdict
        partners = set().union(*[set(a.partners_with_access(pos, at))
                                 for a in facts.agreements])
        out[pos] = (verdict, partners)
    return out


def downloads(client, headers: dict, ckpts: dict[int, int]) -> dict[int, int]:
    return {pos: client.get(f"/api/v1/checkpoints/{cid}/files/{FILE}",
                            headers=headers).status_code for pos, cid in ckpts.items()}


def test_stage_scoped_agreement_opens_attached_partner_checkpoints(app, client):
    plan_id, who, ckpts = stage_world({3: "partners", 4: "partners"})
    later = T0 + 70 * DAY
    verdicts = partner_verdicts(plan_id, later)
    for lab in ("lab-b", "lab-c"):
        assert downloads(client, who[lab], ckpts) == {3: 200, 4: 200}, lab
    assert downloads(client, who["lab-d"], ckpts) == {3: 404, 4: 404}
    for pos in (3, 4):
        assert verdicts[pos] == ("pass", {"lab-b", "lab-c"}), pos
    # Sixty days are not yet up ten days after signing: partners can download, not enough.
    early = partner_verdicts(plan_id, T0 + 10 * DAY)
    assert early[4][1] == {"lab-b", "lab-c"} and early[4][0] != "pass"


def test_gate_does_not_count_checkpoints_partners_cannot_download(app, client):
    """Stage 3's checkpoint is internal, stage 4's was uploaded but never attached: both
    answer 404 to the partners, so the gate must not count the agreement for either (the
    defect: stage scope was counted while the download route said 404)."""
    plan_id, who, ckpts = stage_world({3: "internal", 4: None})
    later = T0 + 70 * DAY
    verdicts = partner_verdicts(plan_id, later)
    for lab in ("lab-b", "lab-c"):
        assert downloads(client, who[lab], ckpts) == {3: 404, 4: 404}, lab
    assert verdicts[3] == ("fail", set())
    assert verdicts[4][0] != "pass" and verdicts[4][1] == set()


def test_half_signed_stage_agreement_grants_nothing(app, client):
    plan_id, who, ckpts = stage_world({3: "partners", 4: "partners"}, signers=("lab-b",))
    later = T0 + 70 * DAY
    verdicts = partner_verdicts(plan_id, later)
    for lab in ("lab-b", "lab-c"):
        assert downloads(client, who[lab], ckpts) == {3: 404, 4: 404}, lab
    for pos in (3, 4):
        assert verdicts[pos] == ("fail", set()), pos
