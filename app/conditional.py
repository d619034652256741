"""Conditional GET for every response that carries an ETag: `If-None-Match` -> 304.

An ASGI middleware rather than per-handler code, so plans, agreements, models, files and
anything that later sends an ETag answer 304 the same way (RFC 9110 section 13.1.2).
"""

from __future__ import annotations

# Headers about the body a 304 does not send; the rest (ETag, Cache-Control, Vary, the
# security headers, the request id) stay as on the 200 it stands for (RFC 9110 15.4.5).
DROP = {b"content-type", b"content-length", b"content-encoding", b"content-range",
        b"content-disposition", b"transfer-encoding", b"accept-ranges"}


def _tags(header: str) -> set[str]:
    # Weak comparison: W/"x" and "x" match, as If-None-Match requires.
    return {t.strip().removeprefix("W/") for t in header.split(",") if t.strip()}


def matches(if_none_match: str, etag: str) -> bool:
    tags = _tags(if_none_match)
    return "*" in tags or etag.strip().removeprefix("W/") in tags


def conditional_get(app):
    async def middleware(scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            return await app(scope, receive, send)
        header = next((v.decode("latin-1") for k, v in scope["headers"]
                       if k == b"if-none-match"), None)
        if not header:
            return await app(scope, receive, send)
        replaced = False

        async def send_checked(message):
            nonlocal replaced
            if replaced:
                return  # the body of the 200 a 304 replaced
            if message["type"] == "http.response.start" and message["status"] == 200:
                etag = next((v.decode("latin-1") for k, v in message.get("headers", [])
                             if k.lower() == b"etag"), None)
                if etag and matches(header, etag):
                    replaced = True
                    kept = [(k, v) for k, v in message.get("headers", [])
                            if k.lower() not in DROP]
                    await send({"type": "http.response.start", "status": 304, "headers": kept})
                    await send({"type": "http.response.body", "body": b"",
                                "more_body": False})
                    return
            await send(message)

        await app(scope, receive, send_checked)
    return middleware
