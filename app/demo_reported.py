"""The 2019 GPT-2 detection figures, imported as results reported by the lab (not measured)."""

from __future__ import annotations

from sqlmodel import Session

from app.auth.principal import SYSTEM
from app.evals.reported import import_reported
from app.evals.schemas import ReportedImport
from app.models.service import find_model

# TF-IDF + logistic regression baseline: accuracy (%) telling samples from WebText,
# by the model's early label, at temperature 1 and at top-k 40.
BASELINE = {"117M": (88.29, 96.79), "345M": (88.94, 95.22), "762M": (77.16, 94.43),
            "1542M": (74.31, 92.69)}
# RoBERTa detector, nucleus samples, accuracy (%): rows trained on, columns tested on.
ROBERTA = {"small": (99.3, 96.6, 90.9, 79.3), "medium": (99.0, 98.5, 96.9, 91.8),
           "large": (98.4, 97.9, 97.9, 95.7), "xl": (96.9, 96.7, 96.6, 96.0)}
SOURCE = "Solaiman et al., Release Strategies and the Social Impacts of Language Models (2019)"


def _baseline(label: str, t1: float, topk: float) -> dict:
    return {"task": {"type": "text-classification", "name": "synthetic text detection"},
            # The Hub tells results apart by task, dataset type, config, split and revision:
            # each sample size is its own config, or a load-save would merge them.
            "dataset": {"type": "gpt2-detection-tfidf-baseline", "config": label,
                        "name": f"GPT-2 output dataset ({label} samples) vs WebText",
                        "args": {"samples_from": label}},
            "metrics": [{"type": "accuracy", "config": "temperature-1", "value": t1},
                        {"type": "accuracy", "config": "top-k-40", "value": topk}]}


def _roberta(trained_on: str, row: tuple) -> dict:
    tested = ("small", "medium", "large", "xl")
    return {"task": {"type": "text-classification", "name": "synthetic text detection"},
            "dataset": {"type": "gpt2-detection-roberta-transfer", "config": trained_on,
                        "name": f"RoBERTa detector trained on {trained_on} (nucleus samples)",
                        "args": {"trained_on": trained_on}},
            "metrics": [{"type": "accuracy", "config": f"tested-on-{t}", "value": v}
                        for t, v in zip(tested, row, strict=True)]}


def import_2019_detection(session: Session) -> int:
    """Idempotent: a re-import updates the same rows in place."""
    model = find_model(session, SYSTEM, "openai/gpt-2")
    results = [_baseline(k, *v) for k, v in BASELINE.items()]
    results += [_roberta(k, v) for k, v in ROBERTA.items()]
    content = {"model-index": [{"name": "openai/gpt-2", "results": results}]}
    rows = import_reported(session, SYSTEM, model.id, ReportedImport(
        format="model-index", content=content, source_name=SOURCE,
        source_url="https://arxiv.org/abs/1908.09203"))
    return len(rows)
