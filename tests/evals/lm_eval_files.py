"""Real lm-evaluation-harness results files, made offline: two local multiple-choice tasks
over small local JSONL files, a group over them, and a tiny local GPT-2."""

from __future__ import annotations

import json
import os
from pathlib import Path

ROWS = [
    {"q": "The sky is", "choices": ["blue", "loud", "square"], "gold": 0},
    {"q": "Fire is", "choices": ["cold", "hot", "wet"], "gold": 1},
    {"q": "Ice is", "choices": ["hot", "sour", "cold"], "gold": 2},
    {"q": "Grass is", "choices": ["green", "metal", "late"], "gold": 0},
    {"q": "Night is", "choices": ["bright", "dark", "fast"], "gold": 1},
    {"q": "Sugar is", "choices": ["bitter", "salty", "sweet"], "gold": 2},
]

TASK = """task: {name}
dataset_path: json
dataset_name: {subset}
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{q}}}}"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: gold
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
metadata:
  version: 2.0
"""

GROUP = """group: sg_group
task:
  - sg_colours
  - sg_temps
aggregate_metric_list:
  - metric: acc
    aggregation: mean
    weight_by_size: true
metadata:
  version: 1.0
"""


def write_tasks(root: Path) -> Path:
    tasks = root / "tasks"
    tasks.mkdir(parents=True, exist_ok=True)
    for name, rows in (("sg_colours", ROWS[::2]), ("sg_temps", ROWS[1::2])):
        data = root / f"{name}.jsonl"
        data.write_text("".join(json.dumps(r) + "\n" for r in rows))
        (tasks / f"{name}.yaml").write_text(TASK.format(name=name, subset=name.split("_")[1], data=data))
    (tasks / "sg_group.yaml").write_text(GROUP)
    return tasks


def run_lm_eval(model_dir: Path, root: Path) -> dict:
    """Run the harness and return the aggregated results file it writes, as parsed JSON."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    from lm_eval import simple_evaluate
    from lm_eval.loggers import EvaluationTracker
    from lm_eval.tasks import TaskManager

    tasks = write_tasks(root)
    out = simple_evaluate(model="hf", model_args=f"pretrained={model_dir},dtype=float32",
                          tasks=["sg_group"], task_manager=TaskManager(include_path=str(tasks)),
                          batch_size=2, device="cpu", limit=None, random_seed=0,
                          numpy_random_seed=0, torch_random_seed=0, fewshot_random_seed=0)
    tracker = EvaluationTracker(output_path=str(root / "out"))
    tracker.general_config_tracker.log_experiment_args(
        model_source="hf", model_args=f"pretrained={model_dir}", system_instruction=None,
        chat_template=None, fewshot_as_multiturn=False)
    out.pop("samples", None)
    tracker.save_results_aggregated(results=out, samples=None)
    (path,) = (root / "out").rglob("results_*.json")
    return json.loads(path.read_text())
