"""Server-made SVG for model cards: pygal line charts per metric, heat-map levels, CI bars.

pygal's SVG is inlined, so everything the CSP would block is removed here: its <script>
(pygal's tooltips need JS we do not load), its <style> (the same rules live in
static/charts.css) and the one inline style attribute it writes.

Bounded by construction (DESIGN.md convention 11): every helper gets normalised input
(finite floats or None, rounded to SIGNIFICANT digits, magnitudes kept within
[1/MAGNITUDE, MAGNITUDE]), and pygal never searches for a y scale: its compute_scale
loops forever on a near-constant series (`[0.9999999999999999, 1, 1, 1]`), so the
y range and ticks are computed here and handed to a Line whose scale step is replaced.
A rendered chart is cached in-process, keyed by a digest of its normalised series.
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable

from markupsafe import Markup, escape

_STRIP = [re.compile(r"<script\b.*?</script>", re.DOTALL), re.compile(r"<style\b.*?</style>", re.DOTALL),
          re.compile(r"<!--.*?-->", re.DOTALL), re.compile(r'\sstyle="[^"]*"'),
          re.compile(r'\sid="chart-[0-9a-f-]+"')]

SIGNIFICANT = 6          # digits a charted value keeps
MAGNITUDE = 1e100        # larger magnitudes are drawn at this bound, smaller ones as 0
FLAT = 1e-9              # a series whose range is below this, relative, is drawn flat
TICKS = 5
CACHE_SIZE = 512


def _number(value) -> float | None:
    """A finite float rounded to SIGNIFICANT digits, within the magnitude bounds, or None
    (None, NaN, infinities, booleans and anything not a number)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        f = float(value)
    except (OverflowError, ValueError):  # an int past the float range
        return (MAGNITUDE if value > 0 else -MAGNITUDE) if isinstance(value, int) else None
    if not math.isfinite(f):
        return None
    f = float(f"{f:.{SIGNIFICANT}g}")
    if abs(f) > MAGNITUDE:
        return math.copysign(MAGNITUDE, f)
    if abs(f) < 1 / MAGNITUDE:
        return 0.0  # also turns -0.0 into 0.0
    return f


def normalise(values: Iterable) -> tuple[float | None, ...]:
    return tuple(_number(v) for v in values)


def y_scale(values: tuple[float | None, ...]) -> tuple[float, float, list[tuple[str, float]]]:
    """(low, high, ticks) for a normalised series with at least one value. A constant or
    near-constant series gets a flat line in the middle of an explicit range."""
    present = [v for v in values if v is not None]
    lo, hi = min(present), max(present)
    size = max(abs(lo), abs(hi))
    if hi - lo <= FLAT * size:  # size 0: all zeros
        centre = (lo + hi) / 2
        half = abs(centre) * 0.1 or 1.0
        lo, hi = centre - half, centre + half
    else:
        pad = (hi - lo) * 0.05
        lo, hi = lo - pad, hi + pad
    positions = [lo + (hi - lo) * i / (TICKS - 1) for i in range(TICKS)]
    positions[-1] = hi
    for digits in range(3, 12):  # the fewest digits that tell the ticks apart
        labels = [f"{p:.{digits}g}" for p in positions]
        if len(set(labels)) == len(labels):
            break
    return lo, hi, list(zip(labels, positions))


def _style():
    from pygal.style import Style

    return Style(background="#ffffff", plot_background="#ffffff", foreground="#1b1f24",
                 foreground_strong="#1b1f24", foreground_subtle="#57606a",
                 colors=("#0a5bb5",), font_family="system-ui, sans-serif",
                 label_font_size=12, major_label_font_size=12, title_font_size=14)


_LINE = None


def _line_class():
    """pygal.Line with its y-scale search replaced by the ticks computed in y_scale."""
    global _LINE
    if _LINE is None:
        import pygal

        class BoundedLine(pygal.Line):
            bounded_ticks: tuple[tuple[str, float], ...] = ()

            def _compute_y_labels(self):
                ticks = self.bounded_ticks or [(self._y_format(self._box.ymin), self._box.ymin),
                                               (self._y_format(self._box.ymax), self._box.ymax)]
                self._y_labels = list(ticks)
                self._box.ymin = min(self._box.ymin, min(p for _, p in ticks))
                self._box.ymax = max(self._box.ymax, max(p for _, p in ticks))

        _LINE = BoundedLine
    return _LINE


def _chart(title: str, values: tuple[float | None, ...] = (1.0, 2.0)):
    lo, hi, ticks = y_scale(values)
    chart = _line_class()(js=[], disable_xml_declaration=True, show_legend=False, width=480,
                          height=280, explicit_size=False, dots_size=4, truncate_label=-1,
                          x_label_rotation=0, print_values=False, show_y_guides=True,
                          style=_style(), value_formatter=lambda v: f"{v:.4g}",
                          range=(lo, hi), include_x_axis=False)
    chart.bounded_ticks = tuple(ticks)
    return chart


def stylesheet() -> str:
    """The CSS pygal would inline, scoped to .pygal-chart: static/charts.css holds exactly
    this (tests/web/test_pages.py checks), regenerate with
    `python -c "from app.web.charts import stylesheet; print(stylesheet(), end='')" > static/charts.css`."""
    chart = _chart("x")
    chart.add("x", [1, 2])
    svg = chart.render(is_unicode=True)
    chart_id = re.search(r'id="(chart-[0-9a-f-]+)"', svg).group(1)
    css = "".join(re.findall(r"<style[^>]*>(.*?)</style>", svg, re.DOTALL))
    css = css.replace(f"#{chart_id}", ".pygal-chart").replace("}", "}\n")
    return ("/* pygal's chart style scoped to .pygal-chart (generated by app.web.charts."
            "stylesheet): charts are inlined without <style>, which the CSP forbids. */\n"
            + css + ".pygal-chart .tooltip { display: none; }\n")


# Rendered SVG by digest of (title, labels, normalised values): a card's numbers change only
# when a result lands, so every view after the first is a lookup (per process: nothing
# renders them when results land yet).
_CACHE: OrderedDict[str, str] = OrderedDict()
_CACHE_LOCK = threading.Lock()


def _digest(title: str, labels: tuple[str, ...], values: tuple[float | None, ...]) -> str:
    return hashlib.sha256(repr((title, labels, values)).encode()).hexdigest()


def _empty_svg(title: str) -> str:
    label = f"{title}: no values to chart"
    return (f'<svg role="img" aria-label="{escape(label)}" class="pygal-chart empty" '
            f'viewBox="0 0 480 40" xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}'
            f'</title><text x="240" y="24" text-anchor="middle" fill="#57606a">no values'
            f'</text></svg>')


def _render(title: str, labels: tuple[str, ...], values: tuple[float | None, ...]) -> str:
    if all(v is None for v in values):
        return _empty_svg(title)
    chart = _chart(title, values)
    chart.x_labels = list(labels)
    chart.add(title, list(values))
    svg = chart.render(is_unicode=True)
    for pattern in _STRIP:
        svg = pattern.sub("", svg)
    label = f"{title} across checkpoints: " + ", ".join(
        f"{lab} {'n/a' if v is None else f'{v:.4g}'}" for lab, v in zip(labels, values))
    svg = svg.replace("<title>Pygal</title>", f"<title>{escape(title)}</title>", 1)
    return svg.replace("<svg ", f'<svg role="img" aria-label="{escape(label)}" ', 1)


def line_chart(title: str, labels: list[str], values: list) -> Markup:
    """pygal escapes the labels and values it writes; the title goes in aria-label escaped.
    All values missing: an empty-state SVG."""
    labels_t = tuple(str(lab) for lab in labels)
    values_t = normalise(values)
    if len(labels_t) != len(values_t):
        labels_t = (labels_t + tuple(str(i + 1) for i in range(len(labels_t), len(values_t))))
        labels_t = labels_t[:len(values_t)]
    key = _digest(title, labels_t, values_t)
    with _CACHE_LOCK:
        svg = _CACHE.get(key)
        if svg is not None:
            _CACHE.move_to_end(key)
            return Markup(svg)
    svg = _render(title, labels_t, values_t)
    with _CACHE_LOCK:
        _CACHE[key] = svg
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    return Markup(svg)


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
        if all(v is None for v in normalise(values)):
            continue
        out.append({"suite": suite, "metric": metric, "values": list(zip(labels, values)),
                    "svg": line_chart(metric, labels, values)})
    return out


def heat_level(value, low, high) -> int:
    """0..9 for a heat-map cell (CSS classes h0..h9); a missing value is level 0."""
    value, low, high = _number(value), _number(low), _number(high)
    if value is None:
        return 0
    if low is None or high is None or high <= low:
        return 5
    return max(0, min(9, int((value - low) / (high - low) * 9.999)))


def ci_bar(mean, low, high, lo_axis, hi_axis) -> Markup:
    """A confidence interval as a small SVG (attributes, not styles: the CSP allows them)."""
    mean, low, high = (_number(v) for v in (mean, low, high))
    lo_axis, hi_axis = _number(lo_axis) or 0.0, _number(hi_axis) or 0.0
    mean = 0.0 if mean is None else mean
    low = mean if low is None else low
    high = mean if high is None else high
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
