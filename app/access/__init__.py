"""Every "who may see / download what" rule, one function per question.

Imports only tables, the principal and the clock, so every domain (lists, pages, feeds,
the download route and the policy gate's evidence) can call the same functions and what a
verdict counts is what a reader can really get. README "Who sees what" is the contract.
"""

from app.access.agreements import visible_agreements
from app.access.checkpoints import (
    Grant,
    agreement_in_force,
    agreement_in_force_at,
    agreement_window,
    checkpoint_visible,
    grants_for,
    may_download,
    partner_grant,
    visible_checkpoints,
)
from app.access.evals import visible_results, visible_runs
from app.access.events import (
    agreement_audience,
    checkpoint_audience,
    entity_visible,
    model_audience,
    openable_events,
    plan_audience,
    results_audience,
    visible_events,
)
from app.access.incidents import counts_against_release, reachable, visible_incidents
from app.access.models import model_visible, visible_models
from app.access.plans import visible_plans

__all__ = [
    "Grant",
    "agreement_audience",
    "agreement_in_force",
    "agreement_in_force_at",
    "agreement_window",
    "checkpoint_audience",
    "checkpoint_visible",
    "counts_against_release",
    "entity_visible",
    "grants_for",
    "may_download",
    "model_audience",
    "model_visible",
    "openable_events",
    "partner_grant",
    "plan_audience",
    "reachable",
    "results_audience",
    "visible_agreements",
    "visible_checkpoints",
    "visible_events",
    "visible_incidents",
    "visible_models",
    "visible_plans",
    "visible_results",
    "visible_runs",
]
