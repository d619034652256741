"""What a page shows of a refused action: the same fields as the API's problem details.

Shared by the console and the lab forms (apart from both, so neither imports the other).
"""

from __future__ import annotations

from app.errors import DomainError


def problem_of(exc: DomainError) -> dict:
    """What a page shows of a refused action: the same fields as the API's problem."""
    extra = dict(exc.extra)
    violations = [_violation_text(v) for v in extra.pop("violations", None) or []]
    return {"status": exc.status, "title": exc.title, "detail": exc.detail,
            "errors": [{"field": exc.field, "reason": exc.detail}] if exc.field else [],
            "violations": violations, "allowed": extra.get("allowed")}


def _violation_text(v) -> str:
    if isinstance(v, dict) and v.get("policy") and v.get("rule"):
        # A policy verdict (app.norms): which rule, what was found, the lab's words, the fix.
        text = f"{v['policy']}/{v['rule']} ({v.get('verdict')}): {v.get('detail', '')}. " \
               f"{(v.get('message') or '').strip()}"
        return f"{text} Fix: {v['fix']}." if v.get("fix") else text
    if isinstance(v, dict):
        head = v.get("check") or v.get("rule") or v.get("code") or ""
        text = v.get("message") or v.get("detail") or v.get("reason") or ""
        return f"{head}: {text}" if head and text else str(text or head or v)
    return str(getattr(v, "message", v))
