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
    """One line for the user; the CLI prints it and exits with code 2."""


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


def describe(response: httpx.Response) -> str:
    """An RFC 9457 problem as one line: status, detail, and the fields it names."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    detail = body.get("detail") or body.get("title") or response.reason_phrase
    fields = [e.get("field") for e in body.get("errors") or [] if isinstance(e, dict)]
    where = f" ({', '.join(f for f in fields if f)})" if any(fields) else ""
    return f"{response.status_code}{where}: {' '.join(str(detail).split())}"


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
            raise ApiError(describe(response))
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
        """A streamed GET (a context manager) for downloads; raises ApiError on 4xx/5xx."""
        request = self.http.build_request("GET", path)
        try:
            response = self.http.send(request, stream=True)
        except httpx.TransportError as exc:
            raise ApiError(f"cannot reach {self.url}: {exc}") from None
        if response.status_code >= 400:
            response.read()
            response.close()
            raise ApiError(describe(response))
        return response
