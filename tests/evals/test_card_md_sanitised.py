"""The exported card.md applies the site's rules to user Markdown (issue: it carried
`<script>`, `onerror=` and `javascript:` links verbatim), on SQLite and PostgreSQL."""

from __future__ import annotations

import re

from markdown_it import MarkdownIt

from app.auth.principal import SYSTEM
from app.db import session_scope
from app.evals.hf_export import safe_markdown
from app.models.schemas import ModelCreate
from app.models.service import create_model

PAYLOADS = {
    "model_details": "Intro <script>alert('x')</script> end.",
    "intended_use": 'An image <img src=x onerror="alert(1)"> here.',
    "caveats_and_recommendations": "[click](javascript:alert(1)) and "
                                   "<a href=\"javascript:alert(2)\">raw</a> and "
                                   "[ref][r] and [ok](https://example.org/a)\n\n"
                                   "[r]: JavaScript:alert(3)",
    "ethical_considerations": "Code stays code: `<script>` and\n\n```\n<b>x</b>\n```",
}
# A renderer that passes raw HTML through, as a Hub README's reader may.
PERMISSIVE = MarkdownIt("commonmark", {"html": True})
PERMISSIVE.validateLink = lambda url: True  # and any link


def _dangerous(html: str) -> list[str]:
    return (re.findall(r"<script", html, re.IGNORECASE) + re.findall(r"<[^>]*\son\w+\s*=", html, re.IGNORECASE)
            + re.findall(r"""href\s*=\s*["']?\s*javascript:""", html, re.IGNORECASE))


def test_exported_card_md_is_sanitised(client, world):
    with session_scope() as s:
        model = create_model(s, SYSTEM, ModelCreate(
            lab="lab-a", slug="xss", name="XSS <script>alert(0)</script>", **PAYLOADS))
        model_id = model.id
    card = client.get(f"/api/v1/models/{model_id}/card.md")
    assert card.status_code == 200
    body = card.text.split("\n---\n", 1)[1]
    html = PERMISSIVE.render(body)
    assert len(_dangerous(PERMISSIVE.render(  # the probe finds what it looks for
        "<script>x</script>\n\n<img onerror=y>\n\n[a](javascript:z)"))) == 3
    assert _dangerous(html) == [], html
    assert "&lt;script>alert('x')&lt;/script>" in body  # shown as text, as on the site
    assert "[ok](https://example.org/a)" in body  # good links stay
    assert "`<script>`" in body and "```\n<b>x</b>\n```" in body  # code stays code
    # The site's own page shows the same text without running any of it.
    page = client.get("/models/lab-a/xss").text
    assert "<script>alert" not in page and "<img src=x onerror" not in page


def test_safe_markdown_payloads():
    assert safe_markdown("<script>x</script>") == "&lt;script>x&lt;/script>"
    assert "onerror" not in PERMISSIVE.render(safe_markdown("<img src=x onerror=alert(1)>"))\
        .replace("&lt;img src=x onerror=alert(1)&gt;", "")
    for link in ("[a](javascript:alert(1))", "[a](JAVA&#83;cript:x)", "[a](<javascript:x>)",
                 "[a][r]\n\n[r]: javascript:x", "<javascript:alert(1)>",
                 "[a](vbscript:x)", "[a](data:text/html,x)"):
        html = PERMISSIVE.render(safe_markdown(link))
        assert not re.search(r"href=\"(javascript|vbscript|data):", html, re.IGNORECASE), (link, html)
    assert safe_markdown("<https://example.org>") == "<https://example.org>"
