"""The one place user Markdown becomes HTML: markdown-it-py js-default, then nh3."""

from __future__ import annotations

import nh3
from markdown_it import MarkdownIt

# js-default: no raw HTML, links validated; nh3 (Ammonia) then removes anything
# that still slipped through, e.g. javascript: URLs produced by plugins.
_md = MarkdownIt("js-default")


def render_markdown(text: str | None) -> str:
    if not text:
        return ""
    return nh3.clean(_md.render(text), link_rel="nofollow noopener noreferrer")
