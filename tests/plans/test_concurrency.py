import threading

from app.db import session_scope
from app.errors import Conflict
from app.plans.schemas import PlanUpdate
from app.plans.service import list_revisions, revise_plan


def test_two_writers_on_one_version_exactly_one_wins(world):
    for round_ in range(5):
        plan_id = world.plan(filed=True, title=f"round {round_}")
        barrier = threading.Barrier(2)
        outcomes = {}

        def write(name):
            barrier.wait()
            try:
                with session_scope() as s:
                    revise_plan(s, world.a_member.principal, plan_id,
                                PlanUpdate(version=1, title=f"by {name}"))
                outcomes[name] = "won"
            except Conflict as exc:
                outcomes[name] = exc.status

        threads = [threading.Thread(target=write, args=(n,)) for n in ("x", "y")]
        [t.start() for t in threads]
        [t.join() for t in threads]
        assert sorted(outcomes.values(), key=str) == [409, "won"], outcomes
        winner = next(n for n, o in outcomes.items() if o == "won")
        with session_scope(write=False) as s:
            revisions = list_revisions(s, world.a_member.principal, plan_id)
        assert [r.number for r in revisions] == [1, 2]
        assert revisions[1].content["title"] == f"by {winner}"
