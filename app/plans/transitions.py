"""The plan and stage lifecycles: which moves are legal."""

from __future__ import annotations

from app.errors import Invalid, InvalidTransition

PLAN_MOVES = {
    "draft": ("filed", "withdrawn"),
    "filed": ("active", "withdrawn"),
    "active": ("completed", "withdrawn"),
    "completed": (),
    "withdrawn": (),
}

STAGE_MOVES = {
    "planned": ("ready", "deferred", "cancelled"),
    "ready": ("released", "planned", "deferred", "cancelled"),
    "deferred": ("planned", "ready", "cancelled"),
    "released": (),
    "cancelled": (),
}

STAGE_DONE = ("released", "cancelled")


def check_move(moves: dict[str, tuple[str, ...]], what: str, current: str, to: str) -> None:
    if to not in moves:
        # Not a state at all is bad input (422); a real state not reachable now is 409.
        raise Invalid(f"{to!r} is not a {what} status; use one of {', '.join(moves)}",
                      field="to", allowed=list(moves[current]))
    if to not in moves[current]:
        allowed = moves[current]
        hint = f"allowed: {', '.join(allowed)}" if allowed else "it is final"
        raise InvalidTransition(f"a {current} {what} cannot become {to}; {hint}",
                                field="to", allowed=list(allowed))
