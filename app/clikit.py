"""Shared pieces of the CLI: the remote client from the context, tables or JSON, paging.

Only click is imported here; the client (httpx) and the services load per command, so
`stagegate --help` never imports the web stack.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from functools import wraps

import click


def as_json_option(fn: Callable) -> Callable:
    return click.option("--json", "as_json", is_flag=True,
                        help="print JSON for scripts instead of a table")(fn)


def limit_option(fn: Callable) -> Callable:
    return click.option("--limit", type=click.IntRange(1, 10_000), default=50,
                        show_default=True, help="at most this many rows")(fn)


def remote(fn: Callable) -> Callable:
    """Pass a `Client` for --url / STAGEGATE_URL and STAGEGATE_TOKEN (or `stagegate login`)."""
    @wraps(fn)
    def wrapper(*args, **kwargs):
        from app.client import ApiError, Client

        url = click.get_current_context().find_root().params.get("url")
        client = Client(url)
        try:
            return fn(client, *args, **kwargs)
        except ApiError as exc:
            # A policy refusal is data a script needs (which rules, fixes, due dates):
            # with --json the problem body goes to stdout; stderr keeps the one line.
            if kwargs.get("as_json") and exc.violations:
                click.echo(json.dumps(exc.body, indent=2, default=str))
                exc.json_shown = True
            raise
        finally:
            client.http.close()
    return wrapper


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"))
    return " ".join(str(value).split())


def table(rows: Iterable[dict], columns: list[str]) -> str:
    """Aligned columns with a header line; long cells are cut at 60 characters."""
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    cells = [[c if len(c) <= 60 else c[:59] + "…" for c in line] for line in cells]
    header = [c.upper() for c in columns]
    widths = [max([len(header[i])] + [len(line[i]) for line in cells])
              for i in range(len(columns))]
    fmt = lambda line: "  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip()
    return "\n".join([fmt(header), *(fmt(line) for line in cells)])


def emit(data: object, as_json: bool, columns: list[str] | None = None) -> None:
    """JSON for scripts; otherwise a table (lists) or `key: value` lines (one object)."""
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
    elif isinstance(data, list):
        click.echo(table(data, columns or sorted({k for row in data for k in row})))
    else:
        keys = columns or list(data)
        width = max(len(k) for k in keys)
        for key in keys:
            click.echo(f"{key.ljust(width)}  {_cell(data.get(key))}")


class Fail(click.ClickException):
    """A one-line error found by the CLI itself; exit code 2 like every other error."""
    exit_code = 2

    def show(self, file=None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)
