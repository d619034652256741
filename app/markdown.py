"""The one place user Markdown becomes HTML: markdown-it-py js-default, then nh3.

HTML is rendered once, when a row is written (a before_flush listener that app.db
installs with every engine), and stored beside the Markdown in `markdown_html`; reads
return the stored HTML. Rows rendered by an older RENDERER_VERSION are re-rendered at
start-up (app/markdown_rerender.py), and lazily by `stored_html` until then. Tables
import the `RenderedMarkdown` mixin from here, so this module imports no table.
"""

from __future__ import annotations

import html
import time

import nh3
from markdown_it import MarkdownIt
from sqlalchemy import JSON, event, inspect
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Field, SQLModel

from app.errors import Invalid

# Bump whenever the preset, options, plugins or sanitiser change: stored HTML of an
# older version is re-rendered.
RENDERER_VERSION = 2
# The default preset nests 100 deep; parse_link_label re-scans up to that depth at every
# "[" so `![![![...` costs ~65 µs a character. 20 (CommonMark's own value) is plenty for
# real documents and cuts the worst case 4-7x.
MAX_NESTING = 20
# The bound on one field is a count of parser steps (inline rule chains run and tokens
# skipped while scanning link labels), not a time: the same text is accepted or refused
# on every machine and under any load. 100,000 characters of ordinary Markdown (lists,
# tables, links, emphasis) take at most ~100,000 steps; `![` repeated takes ~42 a
# character, so 10,000 such characters pass and 100,000 are refused.
MAX_RENDER_STEPS = 1_000_000
# A backstop for costs the step count does not see (a slow rule, sanitising): thread CPU
# time, so other processes' load does not refuse valid text.
RENDER_BUDGET_S = 2.0

# js-default: no raw HTML, links validated; nh3 (Ammonia) then removes anything
# that still slipped through, e.g. javascript: URLs produced by plugins.
_md = MarkdownIt("js-default", {"maxNesting": MAX_NESTING})


class RenderTooCostly(Exception):
    pass


def _spend(env: dict) -> None:
    env["steps"] += 1
    if env["steps"] > env["max_steps"] or (
            env["steps"] % 1024 == 0 and time.thread_time() > env["deadline"]):
        raise RenderTooCostly


def _step(state, *_args) -> bool:
    """A rule that matches nothing and runs first in each chain: it counts a step."""
    _spend(state.env)
    return False


_md.inline.ruler.before("text", "step", _step)
_md.block.ruler.before("table", "step", _step)
_skip_token = _md.inline.skipToken


def _counted_skip_token(state) -> None:
    # parse_link_label skips tokens mostly from its cache, without running a rule chain:
    # those are the steps that make nested brackets costly.
    _spend(state.env)
    _skip_token(state)


_md.inline.skipToken = _counted_skip_token


def _render(text: str, max_steps: int, budget: float) -> str:
    env = {"steps": 0, "max_steps": max_steps, "deadline": time.thread_time() + budget}
    return nh3.clean(_md.render(text, env), link_rel="nofollow noopener noreferrer")


def render_markdown(text: str | None, *, field: str | None = None,
                    max_steps: int = MAX_RENDER_STEPS,
                    budget: float = RENDER_BUDGET_S) -> str:
    """Sanitised HTML; Markdown that costs more than `max_steps` parser steps (or `budget`
    seconds of CPU) to render is refused (422)."""
    if not text:
        return ""
    try:
        return _render(text, max_steps, budget)
    except RenderTooCostly:
        raise Invalid(f"{field or 'text'}: this Markdown is too costly to render; simplify "
                      "deeply nested brackets, links or emphasis",
                      field=field or "text") from None


def render_leniently(text: str | None) -> str:
    """For stored text that can no longer be refused: too costly renders as escaped text."""
    try:
        return render_markdown(text)
    except Invalid:
        return f"<pre>{html.escape(text or '')}</pre>"


class RenderedMarkdown(SQLModel):
    """Mixin for tables with Markdown fields; the table lists them in `__markdown__`."""
    markdown_html: dict = Field(default_factory=dict, sa_type=JSON,
                                sa_column_kwargs={"nullable": False, "server_default": "{}"})
    markdown_version: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


def stored_html(row: RenderedMarkdown, name: str) -> str:
    rendered = getattr(row, "markdown_html", None) or {}
    if getattr(row, "markdown_version", None) == RENDERER_VERSION and name in rendered:
        return rendered[name]
    # Not re-rendered yet (inserted by raw SQL, or an older renderer): render now.
    return render_leniently(getattr(row, name))


def render_row(row, names, *, lenient: bool = False) -> None:
    """Store the HTML of the named fields on the row, stamped with RENDERER_VERSION."""
    rendered = dict(row.markdown_html or {})
    for name in names:
        text = getattr(row, name)
        rendered[name] = render_leniently(text) if lenient else render_markdown(text, field=name)
    row.markdown_html = rendered
    row.markdown_version = RENDERER_VERSION


def _render_on_write(session, _context, _instances) -> None:
    """Every write path (API, CLI, demo, worker) renders changed Markdown fields here."""
    for row in [*session.new, *session.dirty]:
        names = getattr(type(row), "__markdown__", None)
        if not names:
            continue
        if row in session.new:
            render_row(row, names)
            continue
        state = inspect(row)
        changed = [n for n in names if state.attrs[n].history.has_changes()]
        if row.markdown_version != RENDERER_VERSION:
            # Text already stored cannot be refused any more; what changed now can.
            render_row(row, [n for n in names if n not in changed], lenient=True)
        if changed:
            render_row(row, changed)


def install() -> None:
    """Render on write in every session of this process (app.db calls this for each
    engine it makes; installing twice is a no-op)."""
    if not event.contains(OrmSession, "before_flush", _render_on_write):
        event.listen(OrmSession, "before_flush", _render_on_write)
