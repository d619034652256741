"""Model-card charts: pygal line charts per metric, heat-map levels, CI bars, and the
stored charts a card page reads.

Drawn when results land, read on view. A session listener (installed by
app/listeners.py) notes the models whose charted numbers a flush may have changed (a
result written or deleted, a checkpoint added, renamed or moved to another access level,
a model made public or private) and, just before the commit, redraws their charts for
each stored audience into `model_chart` (app/evals/tables.py), in the same transaction:
the worker finishing a run, a result deleted, an upload, a release all store the charts
without remembering to (reported numbers are not charted: an import or a deletion of
them is noted and redraws nothing, its series being unchanged). A card page computes its reader's series
(cheap: no drawing) and takes each chart's SVG from the store by the digest of its
normalised series; only a series nobody stored (a partner's view under an agreement, a
row written before migration 0014 until the worker's sweep draws it) is drawn on view,
through the in-process LRU below.

Audiences: the keys of app.access.results_audience, "public" (what the public may see:
public checkpoints of a public model) and "lab" (the model's lab, and coordinators, who
see every checkpoint). Both depend only on stored rows, never on the clock, so they can
be drawn ahead. A partner's view depends on which agreements are in force now; it is
drawn on view. A stored SVG is served only where its digest equals the reader's own
series', i.e. where it is exactly the chart the reader's rows draw, so the store can
never show a reader a number it may not see (and a stale row is never served).

pygal's SVG is inlined, so everything the CSP would block is removed here: its <script>
(pygal's tooltips need JS we do not load), its <style> (the same rules live in
static/charts.css) and the one inline style attribute it writes.

Bounded by construction (DESIGN.md convention 11): every helper gets normalised input
(finite floats or None, rounded to SIGNIFICANT digits, magnitudes kept within
[1/MAGNITUDE, MAGNITUDE]), and pygal never searches for a y scale: its compute_scale
loops forever on a near-constant series (`[0.9999999999999999, 1, 1, 1]`), so the
y range and ticks are computed here and handed to a Line whose scale step is replaced.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable

from markupsafe import Markup, escape
from sqlalchemy import event, inspect, text
from sqlmodel import Session, select

from app.auth.principal import ANONYMOUS, Principal
from app.checkpoints.tables import Checkpoint
from app.errors import NotFound
from app.evals.tables import EvalResult, ModelChart
from app.models.tables import AIModel
from app.timeutil import digest, utcnow

log = logging.getLogger(__name__)

_STRIP = [re.compile(r"<script\b.*?</script>", re.DOTALL), re.compile(r"<style\b.*?</style>", re.DOTALL),
          re.compile(r"<!--.*?-->", re.DOTALL), re.compile(r'\sstyle="[^"]*"'),
          re.compile(r'\sid="chart-[0-9a-f-]+"')]

SIGNIFICANT = 6          # digits a charted value keeps
MAGNITUDE = 1e100        # larger magnitudes are drawn at this bound, smaller ones as 0
FLAT = 1e-9              # a series whose range is below this, relative, is drawn flat
TICKS = 5
CACHE_SIZE = 512
# Part of every chart's digest: raise it when a change here draws the same series
# differently, so stored SVG from before is neither served nor kept (the worker's sweep
# redraws it; until then a card draws on view).
CHART_VERSION = 1


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
    `python -c "from app.evals.charts import stylesheet; print(stylesheet(), end='')" > static/charts.css`
    (the comment it writes names app.web.charts, which re-exports it)."""
    chart = _chart("x")
    chart.add("x", [1, 2])
    svg = chart.render(is_unicode=True)
    chart_id = re.search(r'id="(chart-[0-9a-f-]+)"', svg).group(1)
    css = "".join(re.findall(r"<style[^>]*>(.*?)</style>", svg, re.DOTALL))
    css = css.replace(f"#{chart_id}", ".pygal-chart").replace("}", "}\n")
    return ("/* pygal's chart style scoped to .pygal-chart (generated by app.web.charts."
            "stylesheet): charts are inlined without <style>, which the CSP forbids. */\n"
            + css + ".pygal-chart .tooltip { display: none; }\n")


# Charts drawn on view (a reader no stored audience matches), by digest of (title, labels,
# normalised values), per process.
_CACHE: OrderedDict[str, str] = OrderedDict()
_CACHE_LOCK = threading.Lock()


def _digest(title: str, labels: tuple[str, ...], values: tuple[float | None, ...]) -> str:
    return hashlib.sha256(repr((CHART_VERSION, title, labels, values)).encode()).hexdigest()


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


def _series_input(labels: list, values: list):
    labels_t = tuple(str(lab) for lab in labels)
    values_t = normalise(values)
    if len(labels_t) != len(values_t):
        labels_t = (labels_t + tuple(str(i + 1) for i in range(len(labels_t), len(values_t))))
        labels_t = labels_t[:len(values_t)]
    return labels_t, values_t


def line_chart(title: str, labels: list[str], values: list) -> Markup:
    """pygal escapes the labels and values it writes; the title goes in aria-label escaped.
    All values missing: an empty-state SVG."""
    labels_t, values_t = _series_input(labels, values)
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


def chart_series(checkpoints: list[dict]) -> list[dict]:
    """The card's charts without their drawings: one per (suite, metric) measured on the
    model's checkpoints, in upload order, each with the digest of what it draws.
    `checkpoints` as the live card gives them ({name, measured: [{suite_id, metrics}]}).
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
        labels_t, values_t = _series_input(labels, values)
        if all(v is None for v in values_t):
            continue
        out.append({"suite": suite, "metric": metric, "labels": labels, "raw": values,
                    "values": list(zip(labels, values)),
                    "digest": _digest(metric, labels_t, values_t)})
    return out


def metric_charts(checkpoints: list[dict], stored: dict[str, str] | None = None) -> list[dict]:
    """The card's charts with their SVG: from `stored` (digest -> SVG, see stored_svgs)
    where it holds the series' digest, else drawn now."""
    stored = stored or {}
    out = []
    for s in chart_series(checkpoints):
        svg = stored.get(s["digest"])
        out.append({"suite": s["suite"], "metric": s["metric"], "values": s["values"],
                    "svg": Markup(svg) if svg is not None
                    else line_chart(s["metric"], s["labels"], s["raw"])})
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


# --- stored charts ----------------------------------------------------------------------

AUDIENCES = ("public", "lab")  # app.access.results_audience's keys


def audience_principals(model: AIModel) -> dict[str, Principal]:
    """Who each stored audience is: the public, and a member of the model's own lab
    (who sees every checkpoint of it, as coordinators do)."""
    return {"public": ANONYMOUS,
            "lab": Principal(name="charts", roles={model.lab_id: "lab_member"})}


def card_checkpoints(session: Session, principal: Principal, model_id: int) -> list[dict]:
    """The checkpoints `principal` sees on the model's card, from the very function the
    card page calls (app.evals.hf_export.live_card), so what is stored here is what the
    page computes for the same reader."""
    from app.evals.hf_export import live_card  # huggingface_hub: only when drawing

    try:
        return live_card(session, principal, model_id)["checkpoints"]
    except NotFound:  # a model the audience may not see: nothing to chart
        return []


def stored_svgs(session: Session, model_id: int) -> dict[str, str]:
    """digest -> SVG of every chart stored for the model, whatever its audience: the page
    looks them up by the digests of its own reader's series (see the module docstring)."""
    rows = session.exec(select(ModelChart.charts).where(ModelChart.model_id == model_id)).all()
    return {c["digest"]: c["svg"] for charts in rows for c in charts}


LOCK_NAMESPACE = 0x43485254  # "CHRT": pg_advisory_xact_lock(namespace, model id)


def _lock(session: Session, ids: list[int]) -> None:
    """One chart writer per model at a time, until its commit. PostgreSQL: two workers
    landing results of one model at once would each draw from a snapshot without the
    other's result and both insert the row; a transaction-level advisory lock per model,
    taken in id order (no deadlock between writers), makes the second wait and then read
    the first one's committed rows. SQLite serialises every writer already (BEGIN
    IMMEDIATE)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for model_id in ids:
        session.execute(text("SELECT pg_advisory_xact_lock(:ns, :id)"),
                        {"ns": LOCK_NAMESPACE, "id": model_id % 2**31})


def refresh_charts(session: Session, model_ids) -> int:
    """Redraw and store the charts of these models for every audience whose series
    changed; returns how many charts were drawn (a series already stored under its digest,
    for this audience or another, is reused, not drawn)."""
    ids = sorted({int(m) for m in model_ids if m is not None})
    if not ids:
        return 0
    _lock(session, ids)
    rows = {(r.model_id, r.audience): r for r in session.exec(
        select(ModelChart).where(ModelChart.model_id.in_(ids))
        .execution_options(populate_existing=True))}
    known = {c["digest"]: c["svg"] for r in rows.values() for c in r.charts}
    # A model without measured results has no charts: no row is the same as an empty one,
    # so a new model or a new checkpoint before its first result costs these two queries.
    measured = set(session.exec(select(EvalResult.model_id).where(
        EvalResult.model_id.in_(ids), EvalResult.source == "measured").distinct()).all())
    drawn = 0
    for model_id in ids:
        model = session.get(AIModel, model_id)
        if model is None or (model_id not in measured and not any(
                (model_id, a) in rows for a in AUDIENCES)):
            continue
        for audience, principal in audience_principals(model).items():
            series = (chart_series(card_checkpoints(session, principal, model_id))
                      if model_id in measured else [])
            whole = digest([s["digest"] for s in series])
            row = rows.get((model_id, audience))
            if row is not None and row.digest == whole and row.version == CHART_VERSION:
                continue
            charts = []
            try:
                for s in series:
                    svg = known.get(s["digest"])
                    if svg is None:
                        svg = known[s["digest"]] = str(line_chart(s["metric"], s["labels"],
                                                                  s["raw"]))
                        drawn += 1
                    charts.append({"suite": s["suite"], "metric": s["metric"],
                                   "digest": s["digest"], "svg": svg})
            except Exception:  # never lose the write that landed the numbers
                log.exception("charts of model %s (%s) not stored; drawn on view",
                              model_id, audience)
                continue
            if row is None:
                row = ModelChart(model_id=model_id, audience=audience)
            row.digest, row.charts, row.updated_at = whole, charts, utcnow()
            row.version = CHART_VERSION
            session.add(row)
    session.flush()
    return drawn


def models_without_charts(session: Session, limit: int = 200) -> list[int]:
    """Models with measured results but no charts stored by this CHART_VERSION (results
    stored before migration 0014 or by a process without the listener, or charts drawn
    by an older version)."""
    stored = select(ModelChart.model_id).where(ModelChart.audience == "lab",
                                               ModelChart.version == CHART_VERSION)
    measured = select(EvalResult.model_id).where(EvalResult.source == "measured")
    return list(session.exec(select(AIModel.id).where(
        AIModel.id.in_(measured), AIModel.id.not_in(stored))
        .order_by(AIModel.id).limit(limit)).all())


def store_missing(session: Session, limit: int = 200) -> int:
    """Draw the charts of up to `limit` models that have none stored by this version (the
    worker's periodic sweep calls this); returns how many models it did."""
    ids = models_without_charts(session, limit)
    refresh_charts(session, ids)
    return len(ids)


# --- the listener: charts follow the numbers, in the writing transaction ---------------

KEY = "charts_touched"
SYNCING = "charts_syncing"


def _changed(obj, *names: str) -> bool:
    state = inspect(obj)
    return any(state.attrs[name].history.has_changes() for name in names)


def _after_flush(session: Session, _context) -> None:
    if session.info.get(SYNCING):
        return
    touched = set()
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, EvalResult):
            touched.add(obj.model_id)
        elif isinstance(obj, Checkpoint):
            if obj in session.new or obj in session.deleted or _changed(
                    obj, "name", "access_level", "model_id"):
                touched.add(obj.model_id)
        elif isinstance(obj, AIModel) and (obj in session.new
                                           or _changed(obj, "public", "lab_id")):
            touched.add(obj.id)
    touched.discard(None)
    if touched:
        session.info.setdefault(KEY, set()).update(touched)


def _before_commit(session: Session) -> None:
    if session.info.get(SYNCING):
        return
    session.flush()  # rows still pending get noted above first
    touched = session.info.pop(KEY, None)
    if not touched:
        return
    session.info[SYNCING] = True
    try:
        refresh_charts(session, touched)
    finally:
        session.info.pop(SYNCING, None)


def _after_soft_rollback(session: Session, _transaction) -> None:
    session.info.pop(KEY, None)


def install() -> None:
    """Called by app/listeners.py (the entry points), never on import. Idempotent."""
    if not event.contains(Session, "after_flush", _after_flush):
        event.listen(Session, "after_flush", _after_flush)
        event.listen(Session, "before_commit", _before_commit)
        event.listen(Session, "after_soft_rollback", _after_soft_rollback)
