"""A small HTTP client for the registry's API, used by the lab-facing CLI commands.

It imports httpx only, never the web stack, so `stagegate --help` stays fast. Errors
become `ApiError` with one line (the problem detail and the field it names).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx

DEFAULT_URL = "http://127.0.0.1:8000"
CREDENTIALS = "credentials.json"


class ApiError(Exception):
    """An error for the user: the first line of `str()` is the one-line summary; a policy
    refusal adds one indented block per violation. `body` is the problem details the
    registry sent (None when there was no answer), `status` its HTTP status."""

    def __init__(self, message: str, *, status: int | None = None,
                 body: dict | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body
        self.json_shown = False  # the body went to stdout (--json): stderr gets line one

    @property
    def violations(self) -> list[dict]:
        found = (self.body or {}).get("violations")
        return [v for v in found if isinstance(v, dict)] if isinstance(found, list) else []


def config_dir() -> Path:
    """The user's config folder (XDG on Linux); STAGEGATE_CONFIG_DIR overrides it."""
    override = os.environ.get("STAGEGATE_CONFIG_DIR")
    if override:
        return Path(override)
    import click

    return Path(click.get_app_dir("stagegate"))


def load_credentials() -> dict:
    path = config_dir() / CREDENTIALS
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ApiError(f"cannot read {path}: {exc}") from None


def save_credentials(url: str, token: str) -> Path:
    """Write url and token readable by the user only (0600), never wider, even briefly."""
    folder = config_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / CREDENTIALS
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its old mode through O_CREAT
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"url": url, "token": token}, f)
    return path


def forget_credentials() -> bool:
    path = config_dir() / CREDENTIALS
    existed = path.exists()
    path.unlink(missing_ok=True)
    return existed


def _one_line(value: object) -> str:
    return " ".join(str(value).split())


def problem_body(response: httpx.Response) -> dict | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def describe(response: httpx.Response) -> str:
    """An RFC 9457 problem as one line: status, detail, and the fields it names; then,
    for a policy refusal, each violation's message, fix and due date as the body has
    them (indented, one block per violation)."""
    body = problem_body(response) or {}
    detail = body.get("detail") or body.get("title") or response.reason_phrase
    fields = [e.get("field") for e in body.get("errors") or [] if isinstance(e, dict)]
    where = f" ({', '.join(f for f in fields if f)})" if any(fields) else ""
    lines = [f"{response.status_code}{where}: {_one_line(detail)}"]
    violations = body.get("violations")
    for v in violations if isinstance(violations, list) else []:
        if isinstance(v, dict):
            lines.extend(violation_lines(v))
    return "\n".join(lines)


def violation_lines(v: dict) -> list[str]:
    """One refused rule: `policy/rule (stage N NAME): message`, then its fix and due date
    where the body has them."""
    rule = "/".join(str(v[k]) for k in ("policy", "rule") if v.get(k))
    stage = f"stage {v['stage']}" if v.get("stage") is not None else ""
    if stage and v.get("stage_name"):
        stage += f" {v['stage_name']}"
    head = f"{rule} ({stage})" if rule and stage else rule or stage
    message = _one_line(v.get("message") or v.get("detail") or "")
    lines = [f"  {head}: {message}" if head else f"  {message}"]
    if v.get("fix"):
        lines.append(f"    fix: {_one_line(v['fix'])}")
    if v.get("due"):
        lines.append(f"    due: {v['due']}")
    return lines


class Client:
    def __init__(self, url: str | None = None, token: str | None = None,
                 timeout: float = 60.0) -> None:
        saved = load_credentials()
        self.url = (url or os.environ.get("STAGEGATE_URL") or saved.get("url")
                    or DEFAULT_URL).rstrip("/")
        self.token = token or os.environ.get("STAGEGATE_TOKEN") or (
            saved.get("token") if saved.get("url", "").rstrip("/") == self.url else None)
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def request(self, method: str, path: str, **kwargs) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ApiError(f"cannot reach {self.url}: {exc}") from None
        if response.status_code >= 400:
            raise ApiError(describe(response), status=response.status_code,
                           body=problem_body(response))
        return response

    def get(self, path: str, **params) -> object:
        clean = {k: v for k, v in params.items() if v is not None}
        return self.request("GET", path, params=clean).json()

    def post(self, path: str, body: object = None) -> object:
        return self.request("POST", path, json=body).json()

    def patch(self, path: str, body: object) -> object:
        return self.request("PATCH", path, json=body).json()

    def delete(self, path: str) -> object:
        response = self.request("DELETE", path)
        return response.json() if response.content else None

    def items(self, path: str, limit: int | None = None, **params) -> Iterator[dict]:
        """Every item of a paged list, following `next_cursor`; stops after `limit`."""
        cursor, seen = None, 0
        while True:
            page = self.get(path, cursor=cursor, limit=min(limit or 200, 200), **params)
            for item in page["items"]:
                yield item
                seen += 1
                if limit and seen >= limit:
                    return
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def stream(self, path: str):
        """A streamed GET (a context manager) for downloads; raises ApiError on 4xx/5xx.
        It follows the registry's 302 to a presigned URL (object storage): httpx drops the
        Authorization header when a redirect leaves the registry's origin, so the bucket
        never sees the token."""
        request = self.http.build_request("GET", path)
        try:
            response = self.http.send(request, stream=True, follow_redirects=True)
        except httpx.TransportError as exc:
            # The registry, or the bucket a redirect named: say which did not answer.
            where = self.url if exc.request.url.host == request.url.host \
                else exc.request.url.host
            raise ApiError(f"cannot reach {where}: {exc}") from None
        if response.status_code >= 400:
            response.read()
            response.close()
            raise ApiError(describe(response), status=response.status_code,
                           body=problem_body(response))
        return response
