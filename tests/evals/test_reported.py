"""Reported-result imports refuse hostile or malformed input with 422, storing nothing."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from app.evals.reported import MAX_RESULTS

# Nine levels of nine aliases each: about 500 bytes that expand to 9^9 strings.
BILLION_LAUGHS = "\n".join(
    ["---", 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]"
       for i in range(8)]
    + ["model-index: [{name: x, results: [{dataset: {type: d}, metrics: [{type: acc, value: 1}]}], extra: *i}]",
       "---", ""])


def report(client, actor, model_id, fmt, content):
    return client.post(f"/api/v1/models/{model_id}/reported-results",
                       json={"format": fmt, "content": content}, headers=actor.headers)


def stored(client, world) -> list:
    return client.get(f"/api/v1/evals/results?model={world.model_a}&source=reported",
                      headers=world.a_member.headers).json()["items"]


def _nested(depth: int):
    value: object = 1
    for _ in range(depth):
        value = {"x": value}
    return value


LM_OK = {"results": {"arc": {"acc,none": 0.5}}}


@pytest.mark.parametrize("fmt,content,field", [
    ("model-index", BILLION_LAUGHS, "content"),
    ("model-index", "---\nmodel-index: &x [{name: a}]\n---\n", "content"),
    ("model-index", "---\n" + "a:\n" + "".join("  " * i + " b:\n" for i in range(1, 60))
     + "---\n", "content"),
    ("model-index", {"model-index": ["abc"]}, "content.model-index[0]"),
    ("model-index", {"model-index": [{"name": "x", "results": "abc"}]},
     "content.model-index[0].results"),
    ("model-index", {"model-index": [{"name": "x", "results": [
        {"dataset": {"type": "d", "args": {"suite_version": "inf"}},
         "metrics": [{"type": "acc", "value": 1}]}]}]},
     "content.model-index[0].results[0].dataset.args.suite_version"),
    ("model-index", {"model-index": [{"name": "x", "results": [
        {"dataset": {"type": ["d"]}, "metrics": [{"type": "acc", "value": 1}]}]}]},
     "content.model-index[0].results[0].dataset.type"),
    ("lm-eval-harness", LM_OK | {"versions": [1]}, "content.versions"),
    ("lm-eval-harness", LM_OK | {"versions": {"arc": "inf"}}, "content.versions.arc"),
    ("lm-eval-harness", LM_OK | {"versions": {"arc": 1e300}}, "content.versions.arc"),
    ("lm-eval-harness", LM_OK | {"configs": {"arc": [1]}}, "content.configs.arc"),
    ("lm-eval-harness", LM_OK | {"configs": {"arc": {"dataset_path": {"a": 1}}}},
     "content.configs.arc.dataset_path"),
    ("lm-eval-harness", LM_OK | {"deep": _nested(100)}, "content"),
    ("lm-eval-harness", json.dumps(LM_OK)[:-1] + ', "deep": ' + "[" * 3000 + "]" * 3000
     + "}", "content"),
    # The harness writes undefined values as bare NaN: read, then refused for want of a
    # finite metric (a NaN beside finite ones is stored as absent with a warning).
    ("lm-eval-harness", '{"results": {"arc": {"acc": NaN}}}', "content.results.arc"),
    ("lm-eval-harness", {"results": {"t" * 200: {"acc": 1}}}, f"content.results.{'t' * 200}"),
])
def test_bad_imports_are_422_naming_the_field_and_store_nothing(client, world, fmt, content,
                                                               field):
    resp = report(client, world.a_member, world.model_a, fmt, content)
    assert resp.status_code == 422, resp.text
    assert resp.json()["errors"][0]["field"] == field
    assert stored(client, world) == []
    # Card reads stay small: nothing of the refused document was kept.
    card = client.get(f"/api/v1/models/{world.model_a}/card", headers=world.a_member.headers)
    assert card.status_code == 200 and len(card.content) < 20_000


def test_too_many_results_is_a_clear_422(client, world):
    content = {"results": {f"task{i}": {"acc": 0.5} for i in range(MAX_RESULTS + 1)}}
    resp = report(client, world.a_member, world.model_a, "lm-eval-harness", content)
    assert resp.status_code == 422
    assert f"at most {MAX_RESULTS}" in resp.json()["errors"][0]["reason"]
    assert stored(client, world) == []


def test_too_large_content_is_a_clear_422(client, world):
    readme = "---\nmodel-index: []\nfiller: " + "x" * (2 * 1024 * 1024) + "\n---\n"
    resp = report(client, world.a_member, world.model_a, "model-index", readme)
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["field"] == "content"


def test_plain_numeric_versions_still_import(client, world):
    resp = report(client, world.a_member, world.model_a, "lm-eval-harness",
                  LM_OK | {"versions": {"arc": "2.0"}})
    assert resp.status_code == 201, resp.text
    assert [r["suite_version"] for r in stored(client, world)] == [2]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=20)
metric = st.fixed_dictionaries({"type": json_values | st.sampled_from(["acc", "f1"]),
                                "value": json_values | st.floats(0, 1)})
result = st.fixed_dictionaries({"dataset": st.fixed_dictionaries(
    {"type": json_values | st.just("d")}, optional={"args": json_values,
                                                    "name": json_values}),
    "metrics": st.lists(metric, max_size=3) | json_values}, optional={"task": json_values})
model_index = st.fixed_dictionaries({"model-index": st.lists(
    st.fixed_dictionaries({"results": st.lists(result, max_size=3) | json_values},
                          optional={"name": json_values}) | json_values, max_size=3)
    | json_values})
lm_eval = st.fixed_dictionaries({"results": st.dictionaries(
    st.text(max_size=10), st.dictionaries(st.sampled_from(["acc", "acc,none", "acc_stderr",
                                                           "alias"]) | st.text(max_size=5),
                                          json_values, max_size=3) | json_values,
    max_size=3) | json_values}, optional={"versions": json_values, "configs": json_values,
                                          "n-shot": json_values, "config": json_values})


@hsettings(max_examples=60, deadline=None,
           suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=st.one_of(
    st.tuples(st.just("model-index"), model_index),
    st.tuples(st.just("model-index"), model_index.map(
        lambda d: "---\n" + json.dumps(d) + "\n---\n")),
    st.tuples(st.just("model-index"), st.text(max_size=200).map(lambda t: "---\n" + t + "\n---")),
    st.tuples(st.just("lm-eval-harness"), lm_eval),
    st.tuples(st.just("lm-eval-harness"), st.text(max_size=200)),
))
def test_fuzzed_imports_never_answer_500(client, world, case):
    fmt, content = case
    resp = report(client, world.a_member, world.model_a, fmt, content)
    assert resp.status_code in (201, 422), resp.text
    if resp.status_code == 422:
        assert resp.json()["errors"][0]["field"].startswith("content")
