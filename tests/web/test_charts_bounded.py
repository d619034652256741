"""Charts are bounded by construction (DESIGN.md convention 11): every chart helper gets
normalised input, so pygal never searches for a scale (its compute_scale looped forever on
`[0.9999999999999999, 1, 1, 1]`), and a model card whose results form such a series
answers at once, on both databases."""

from __future__ import annotations

import math
import time

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from app.web import charts

BUDGET_S = 0.050
NEAR_CONSTANT = [0.9999999999999999, 1, 1, 1]

finite = st.floats(allow_nan=False, allow_infinity=False)
value = st.one_of(st.none(), finite,
                  st.floats(min_value=1 - 1e-12, max_value=1 + 1e-12),  # near-constant
                  st.sampled_from([1e308, -1e308, 5e-324, -5e-324, 0.0, -0.0, 1e-300]))
series = st.one_of(st.lists(value, min_size=0, max_size=12),
                   st.builds(lambda v, n: [v] * n, value, st.integers(1, 12)),
                   st.builds(lambda v, d, n: [v + d * i for i in range(n)], finite,
                             st.floats(min_value=-1e-9, max_value=1e-9), st.integers(2, 12)))


def _warm() -> None:
    charts._CACHE.clear()
    charts.line_chart("warm-up", ["a", "b"], [1.0, 2.0])


def _timed(fn, *args):
    started = time.perf_counter()
    out = fn(*args)
    elapsed = time.perf_counter() - started
    assert elapsed < BUDGET_S, f"{fn.__name__}{args!r} took {elapsed * 1000:.1f} ms"
    return out


def test_the_reported_series_renders_a_flat_line_at_once():
    _warm()
    svg = _timed(charts.line_chart, "accuracy", ["a", "b", "c", "d"], NEAR_CONSTANT)
    assert svg.startswith("<svg") and "accuracy" in svg
    assert charts.normalise(NEAR_CONSTANT) == (1.0, 1.0, 1.0, 1.0)
    low, high, ticks = charts.y_scale(charts.normalise(NEAR_CONSTANT))
    assert low < 1.0 < high and len({label for label, _ in ticks}) == len(ticks)


def test_all_missing_is_an_empty_state_and_no_card_chart():
    assert "no values" in charts.line_chart("m", ["a", "b"], [None, float("nan")])
    assert charts.metric_charts([{"name": "a", "measured": [
        {"suite_id": "perplexity", "metrics": {"m": float("inf")}}]}]) == []


def test_a_chart_is_cached_by_its_normalised_series():
    _warm()
    first = charts.line_chart("m", ["a", "b"], [0.5, 0.25])
    assert len(charts._CACHE) == 2
    # The same series after normalisation is the same entry.
    assert charts.line_chart("m", ["a", "b"], [0.50000000001, 0.25]) == first
    assert len(charts._CACHE) == 2


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=series)
@example(values=NEAR_CONSTANT)
@example(values=[1e308, -1e308])
@example(values=[5e-324, 1e-323])
@example(values=[None])
@example(values=[-3.0])
@example(values=[])
def test_every_chart_helper_is_bounded(values):
    _warm()
    labels = [f"c{i}" for i in range(len(values))]
    svg = _timed(charts.line_chart, "metric", labels, values)
    assert svg.startswith("<svg") and "nan" not in svg.lower().replace("nan-", "")
    checkpoints = [{"name": lab, "measured": [{"suite_id": "perplexity",
                                               "metrics": {"m": v}}]}
                   for lab, v in zip(labels, values)]
    charts._CACHE.clear()
    _timed(charts.metric_charts, checkpoints)
    present = [v for v in values if v is not None] or [0.0]
    low, high = min(present), max(present)
    for v in values:
        level = _timed(charts.heat_level, v, low, high)
        assert 0 <= level <= 9
    for v in values[:4]:
        bar = _timed(charts.ci_bar, v, low, high, min(0.0, low), high)
        assert "nan" not in bar and "inf" not in bar


def test_the_normalised_values_are_finite_and_rounded():
    out = charts.normalise([float("nan"), float("inf"), -float("inf"), True, "1", 10**400,
                            -(10**400), 1e-320, -0.0, 1 / 3])
    assert out[:5] == (None,) * 5
    assert out[5] == charts.MAGNITUDE and out[6] == -charts.MAGNITUDE
    assert out[7] == 0.0 and math.copysign(1, out[8]) == 1
    assert out[9] == 0.333333


# --- The model card of a near-constant series, both databases --------------------------------

def _seed_near_constant(world) -> str:
    from app.checkpoints.tables import Checkpoint
    from app.db import session_scope
    from app.evals.tables import EvalResult
    from app.models.tables import AIModel

    with session_scope() as s:
        lab_id = s.get(AIModel, world.model_a).lab_id
        ckpts = [Checkpoint(model_id=world.model_a, lab_id=lab_id, name=f"c{i}",
                            access_level="public", manifest=[], manifest_digest=f"{i}" * 64,
                            total_bytes=1, parameter_count=1) for i in range(4)]
        s.add_all(ckpts)
        s.flush()
        for i, (ckpt, v) in enumerate(zip(ckpts, NEAR_CONSTANT)):
            s.add(EvalResult(result_key=f"{i}" * 64, source="measured", model_id=world.model_a,
                             checkpoint_id=ckpt.id, suite_id="perplexity", suite_version=1,
                             manifest_digest=ckpt.manifest_digest, config_digest="0" * 64,
                             metrics={"accuracy": v}))
    return "/models/lab-a/m"


def test_a_near_constant_card_answers_quickly(client, world):
    charts._CACHE.clear()
    url = _seed_near_constant(world)
    for _ in range(2):  # the first view renders, the second reads the cache
        started = time.perf_counter()
        r = client.get(url, headers=world.coord.headers)
        assert r.status_code == 200, r.text[:500]
        assert time.perf_counter() - started < 5
    assert "accuracy across checkpoints" in r.text


def test_pygal_never_searches_for_a_scale(monkeypatch):
    import pygal.graph.graph

    def refuse(*args):
        raise AssertionError("pygal's compute_scale was called")

    monkeypatch.setattr(pygal.graph.graph, "compute_scale", refuse)
    charts._CACHE.clear()
    for values in (NEAR_CONSTANT, [1.0, 2.0], [None, -4.0], [1e308, 5e-324]):
        assert charts.line_chart("m", ["a", "b", "c", "d"][:len(values)], values)
