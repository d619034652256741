"""Server-made SVG for model cards: pygal line charts per metric, heat-map levels, CI bars.

pygal's SVG is inlined, so everything the CSP would block is removed here: its <script>
(pygal's tooltips need JS we do not load), its <style> (the same rules live in
static/charts.css) and the one inline style attribute it writes.
"""

from __future__ import annotations

import re
from functools import lru_cache

from markupsafe import Markup, escape

_STRIP = [re.compile(r"<script\b.*?</script>", re.S), re.compile(r"<style\b.*?</style>", re.S),
          re.compile(r"<!--.*?-->", re.S), re.compile(r'\sstyle="[^"]*"'),
          re.compile(r'\sid="chart-[0-9a-f-]+"')]


@lru_cache(maxsize=512)
def _line_svg(title: str, labels: tuple[str, ...], values: tuple[float | None, ...]) -> str:
    # Cached on the data itself: a card's numbers change only when a result lands, and
    # pygal takes milliseconds per chart, too slow to redo on every view.
    import pygal

    chart = pygal.Line(js=[], disable_xml_declaration=True, show_legend=False, width=480,
                       height=280, explicit_size=False, dots_size=4, truncate_label=-1,
                       x_label_rotation=0, print_values=False, show_y_guides=True,
                       value_formatter=lambda v: f"{v:.4g}")
    chart.x_labels = list(labels)
    chart.add(title, list(values))
    svg = chart.render(is_unicode=True)
    for pattern in _STRIP:
        svg = pattern.sub("", svg)
    label = f"{title} across checkpoints: " + ", ".join(
        f"{lab} {'n/a' if v is None else f'{v:.4g}'}" for lab, v in zip(labels, values))
    svg = svg.replace("<title>Pygal</title>", f"<title>{escape(title)}</title>", 1)
    return svg.replace("<svg ", f'<svg role="img" aria-label="{escape(label)}" ', 1)


def line_chart(title: str, labels: list[str], values: list[float | None]) -> Markup:
    """pygal escapes the labels and values it writes; the title goes in aria-label escaped."""
    return Markup(_line_svg(title, tuple(labels), tuple(values)))


def metric_charts(checkpoints: list[dict]) -> list[dict]:
    """One chart per (suite, metric) measured on the model's checkpoints, in upload order.
    Confidence bounds are drawn with their metric in the bias table, not as own charts."""
    labels = [c["name"] for c in checkpoints]
    series: dict[tuple[str, str], list[float | None]] = {}
    for i, ckpt in enumerate(checkpoints):
        for result in ckpt["measured"]:
            if result["suite_id"].endswith("_transfer"):
                continue
            for key, value in result["metrics"].items():
                if key.endswith(("_ci_low", "_ci_high")) or isinstance(value, bool) \
                        or not isinstance(value, (int, float)):
                    continue
                series.setdefault((result["suite_id"], key), [None] * len(labels))[i] = value
    out = []
    for (suite, metric), values in sorted(series.items()):
        if sum(v is not None for v in values) < 1:
            continue
        out.append({"suite": suite, "metric": metric, "values": list(zip(labels, values)),
                    "svg": line_chart(metric, labels, values)})
    return out


def heat_level(value: float, low: float, high: float) -> int:
    """0..9 for a heat-map cell (CSS classes h0..h9)."""
    if high <= low:
        return 5
    return max(0, min(9, int((value - low) / (high - low) * 9.999)))


def ci_bar(mean: float, low: float, high: float, lo_axis: float, hi_axis: float) -> Markup:
    """A confidence interval as a small SVG (attributes, not styles: the CSP allows them)."""
    span = (hi_axis - lo_axis) or 1.0

    def x(v: float) -> float:
        return round(max(0.0, min(1.0, (v - lo_axis) / span)) * 200, 1)

    label = f"mean {mean:.3g}, 95% interval {low:.3g} to {high:.3g}"
    return Markup(
        f'<svg class="cibar" viewBox="0 0 200 16" width="200" height="16" role="img" '
        f'aria-label="{escape(label)}"><line x1="0" y1="8" x2="200" y2="8" stroke="#d0d7de"/>'
        f'<rect x="{x(low)}" y="3" width="{max(1.0, x(high) - x(low))}" height="10" '
        f'fill="#9ecae1"/><line x1="{x(mean)}" y1="1" x2="{x(mean)}" y2="15" '
        f'stroke="#0a5bb5" stroke-width="2"/></svg>')
