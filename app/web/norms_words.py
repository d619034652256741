"""Policies in plain words for the pages: each rule's check and params as one sentence,
its action, what a policy applies to, and evidence links that point at pages."""

from __future__ import annotations

from app.norms.checks import CHECKS

SOURCES = {"measured": "measured by the registry", "reported": "reported by the lab",
           "any": "measured or reported"}
OPS = {">=": "at or above", "<=": "at or below"}
ACTIONS = {"deny": "deny: the stage cannot be released while this fails",
           "warn": "warn: shown, never blocks", "audit": "audit: recorded only"}
STAGES = {"first": "the first stage", "later": "every stage after the first",
          "final": "the final stage"}


def _words(items) -> str:
    items = [str(i).replace("_", " ") for i in items]
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def _evidence_terms(p: dict) -> str:
    out = f", {SOURCES.get(p.get('source', 'measured'), p.get('source'))}"
    out += " on the stage's checkpoint" if p.get("scope", "checkpoint") == "checkpoint" \
        else " on any checkpoint of the model"
    if p.get("max_age_days"):
        out += f", no older than {_plural(p['max_age_days'], 'day')}"
    if p.get("current_version", True) and p.get("source", "measured") != "reported":
        out += ", on the suite's current version"
    return out


def rule_sentence(check: str, params: dict) -> str:
    """'At least 60 days between two releases': a rule's check with its params, in words."""
    p = params or {}
    if check == "min_days_between_releases":
        return f"At least {_plural(p['min_days'], 'day')} between two releases."
    if check == "required_evaluations":
        which = "One of these evaluations" if p.get("mode") == "any" and \
            len(p["suites"]) > 1 else "These evaluations"
        return f"{which}: {_words(p['suites'])}{_evidence_terms(p)}."
    if check == "metric_threshold":
        return (f"{p['metric'].replace('_', ' ')} of the {p['suite']} evaluation "
                f"{OPS.get(p.get('op', '>='), p.get('op'))} {p['value']:g}"
                f"{_evidence_terms(p)}.")
    if check == "threshold_safeguards":
        return (f"When {p['metric'].replace('_', ' ')} of the {p['suite']} evaluation is "
                f"{OPS.get(p.get('op', '>='), p.get('op'))} {p['value']:g}, "
                f"{_words(p.get('wider_access') or ['api', 'public_weights'])} access needs "
                f"{_words(p['safeguards'])} shipped with the stage.")
    if check == "partner_agreement":
        kinds = f" ({_words(p['kinds'])})" if p.get("kinds") else ""
        days = f" for at least {_plural(p['min_days'], 'day')} before its release" \
            if p.get("min_days") else ""
        return (f"At least {_plural(p.get('min_partners', 1), 'partner lab')} able to "
                f"download the stage's hosted checkpoint under a signed agreement{kinds}"
                f"{days}.")
    if check == "no_open_incidents":
        return (f"No unresolved incident of {p.get('min_severity', 'high')} severity or "
                "worse on the model that a coordinator confirmed or the lab acknowledged "
                "(unreviewed claims are shown, not counted).")
    if check == "model_card_complete":
        return (f"The model card has these sections written (at least "
                f"{_plural(p.get('min_chars', 20), 'character')} each): "
                f"{_words(p['sections'])}.")
    if check == "risk_assessment_present":
        extra = " and a rationale" if p.get("rationale", True) else ""
        return (f"The stage carries a risk assessment of at least "
                f"{_plural(p.get('min_chars', 40), 'character')}{extra}.")
    if check == "artifacts_include":
        return f"The stage ships {_words(p['artifacts'])}."
    if check == "staged_access":
        return (f"At least {_plural(p.get('min_prior_stages', 1), 'earlier stage')} at "
                f"{p.get('max_prior_access', 'public_weights').replace('_', ' ')} access or "
                "narrower released first.")
    known = CHECKS.get(check)
    shown = ", ".join(f"{k} {v}" for k, v in p.items())
    return f"{known.description if known else check}{f' ({shown})' if shown else ''}"


def applies_sentence(applies: dict | None) -> str:
    """What a policy or rule speaks about; '' when it is every stage."""
    a = applies or {}
    parts = []
    if a.get("stages", "all") != "all":
        parts.append(STAGES.get(a["stages"], a["stages"]))
    if a.get("access_levels"):
        parts.append(f"stages with {_words(a['access_levels'])} access")
    if a.get("min_parameter_count"):
        parts.append(f"at least {a['min_parameter_count']:,} parameters")
    if a.get("max_parameter_count"):
        parts.append(f"at most {a['max_parameter_count']:,} parameters")
    return "; ".join(parts)


def action_words(action: str) -> str:
    return ACTIONS.get(action, action)


def evidence_href(item: dict) -> str | None:
    """Evidence as a link a reader can follow: pages where the site has one, else the API."""
    kind, id_ = item.get("kind"), item.get("id")
    if isinstance(id_, int) and kind == "incident":
        return f"/incidents/{id_}"
    if isinstance(id_, int) and kind == "agreement":
        return f"/agreements/{id_}"
    return item.get("href")


def evidence_label(item: dict) -> str:
    kind = item.get("kind")
    if item.get("confidential"):
        # Evidence the reader may not see: counted, never named (app.norms.engine).
        n = item["confidential"]
        return f"{n} {kind}{'s' if n != 1 else ''} you may not see"
    extra = ", ".join("under review (not counted)" if k == "under_review" else f"{k} {v}"
                      for k, v in item.items()
                      if k not in ("kind", "id", "href") and v not in (None, "", False))
    return f"{kind} {item.get('id')}{f' ({extra})' if extra else ''}"


def shown(value) -> str:
    """A measured value or threshold as text: lists joined, numbers short, none a dash."""
    if value is None:
        return "—"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value)) or "none"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
