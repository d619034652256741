"""The model card's chart helpers, as the web pages use them.

The drawing code lives in app/evals/charts.py: charts are drawn when results land (a
session listener in the evals layer, which may not import app.web) and read from the
database on view. This module keeps the names the pages, templates and tests use.
"""

from __future__ import annotations

from app.evals.charts import (  # noqa: F401
    CACHE_SIZE,
    ci_bar,
    heat_level,
    line_chart,
    metric_charts,
    normalise,
    stored_svgs,
    stylesheet,
    y_scale,
)
