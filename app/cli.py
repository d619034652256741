"""The `stagegate` command.

Lab-facing commands (models, plans, checkpoints, evals, incidents, agreements) talk
HTTP to a registry (`--url`/STAGEGATE_URL); operator commands (serve, db, demo, user,
lab create, token create/revoke, backup, restore) act on this machine's database.
Command groups live beside their domain (app/*/cli.py) and import their dependencies
inside each command, so `stagegate --help` loads neither the web stack nor the ORM.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import click

from app.auth.principal import SYSTEM
from app.errors import DomainError


def _fail(exc: DomainError) -> None:
    where = f" ({exc.field})" if exc.field else ""
    click.echo(f"error{where}: {exc.detail}", err=True)
    sys.exit(2)


class Group(click.Group):
    """Every failure is one clear line and exit code 2, never a traceback
    (STAGEGATE_DEBUG=1 shows the traceback of an unexpected error)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except DomainError as exc:
            _fail(exc)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:
            from app.client import ApiError

            if isinstance(exc, ApiError):
                click.echo(f"error: {exc}", err=True)
                sys.exit(2)
            if isinstance(exc, OSError):
                click.echo(f"error: {exc}", err=True)
                sys.exit(2)
            if os.environ.get("STAGEGATE_DEBUG"):
                raise
            first = " ".join(str(exc).split())[:300]
            click.echo(f"error: {exc.__class__.__name__}: {first}", err=True)
            sys.exit(2)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--url", envvar="STAGEGATE_URL", metavar="URL",
              help="registry to talk to (env STAGEGATE_URL; default: `stagegate login`'s, "
                   "else http://127.0.0.1:8000); the token comes from STAGEGATE_TOKEN or "
                   "`stagegate login`")
@click.version_option(package_name="stagegate", prog_name="stagegate")
def main(url: str | None) -> None:
    """Stagegate: a publication-norms registry for AI labs."""
    from app.installers import install_with_engine

    # Commands on this machine's database get the session listeners when they first make
    # an engine (app/db.py); commands that only talk HTTP never load the ORM for them.
    install_with_engine(_install_listeners)


def _install_listeners() -> None:
    from app.listeners import install_listeners

    install_listeners()


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--no-migrate", is_flag=True, help="refuse to start on an un-migrated database")
def serve(host: str, port: int, no_migrate: bool) -> None:
    """Serve the web app and API (migrating the embedded database first)."""
    import uvicorn

    from app import create_app
    from app.db import get_engine, needs_migration, upgrade
    from app.settings import get_settings

    settings = get_settings()
    if needs_migration(get_engine()):
        if no_migrate or not settings.auto_migrate:
            click.echo("error: the database is not migrated to the current schema; run "
                       "`stagegate db upgrade` first", err=True)
            sys.exit(2)
        click.echo("migrating the database ...")
        upgrade()
    # uvloop + httptools (pinned) are picked up automatically; access logs stay off on
    # the hot path (errors are still logged).
    # proxy_headers off: uvicorn would otherwise believe X-Forwarded-For from 127.0.0.1;
    # which proxies to believe is the registry's setting (STAGEGATE_TRUSTED_PROXIES).
    # Shutdown is bounded: open requests get shutdown_grace_s (uvicorn's
    # timeout_graceful_shutdown), then a handler thread that is still running (Python
    # cannot kill a thread, and the interpreter would wait for it forever on exit) gets
    # the same again before the process exits anyway (exit_if_threads_stuck).
    grace = max(1, round(settings.shutdown_grace_s))
    app = create_app()
    app.on_shutdown.append(lambda: exit_if_threads_stuck(grace))  # hooks run last-first
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False,
                proxy_headers=False, timeout_graceful_shutdown=grace)


def exit_if_threads_stuck(grace: float, _exit=os._exit) -> threading.Thread:
    """On shutdown: a daemon watchdog that, if the process has not ended `grace` seconds
    later, logs the threads still running and ends it with os._exit."""
    import logging

    def watch() -> None:
        time.sleep(grace)
        stuck = [t.name for t in threading.enumerate()
                 if t is not threading.current_thread() and t is not threading.main_thread()
                 and t.is_alive() and not t.daemon]
        message = (f"shutdown still waiting after {grace:.3g} s on threads "
                   f"{', '.join(stuck) or '(none besides the main thread)'}: exiting anyway")
        logging.getLogger("stagegate.serve").error(message)
        # Also written directly: the log's queue listener may not flush before _exit.
        print(f"ERROR:    {message}", file=sys.stderr, flush=True)
        _exit(0)

    watchdog = threading.Thread(target=watch, name="stagegate-shutdown-watchdog", daemon=True)
    watchdog.start()
    return watchdog


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply all migrations."""
    from app.db import upgrade

    upgrade()
    click.echo("database is at the current schema")


@main.command()
@click.option("--no-models", is_flag=True, help="skip training and evaluating the demo models")
def demo(no_models: bool) -> None:
    """Load the demo data (idempotent): the GPT-2 release of 2019 and a tiny model family."""
    from app.db import upgrade
    from app.demo import load_demo

    upgrade()
    for line in load_demo(with_models=not no_models):
        click.echo(line)


@main.group()
def lab() -> None:
    """Labs."""


@lab.command("create")
@click.argument("slug")
@click.option("--name", required=True)
@click.option("--url")
def lab_create(slug: str, name: str, url: str | None) -> None:
    """Create a lab (operator, local database)."""
    from app.db import session_scope
    from app.labs.service import create_lab

    with session_scope() as session:
        create_lab(session, SYSTEM, slug, name, url)
    click.echo(f"created lab {slug}")


@main.group()
def user() -> None:
    """Users."""


@user.command("create")
@click.argument("name")
@click.option("--lab", "lab_slug")
@click.option("--role", type=click.Choice(["lab_admin", "lab_member"]), default="lab_member")
@click.option("--coordinator", is_flag=True)
def user_create(name: str, lab_slug: str | None, role: str, coordinator: bool) -> None:
    """Create a user in a lab, or a coordinator (operator, local database)."""
    from app.auth.service import create_user
    from app.db import session_scope

    if not lab_slug and not coordinator:
        raise click.UsageError("give --lab SLUG (with --role) or --coordinator")
    with session_scope() as session:
        create_user(session, SYSTEM, name, lab_slug=lab_slug, role=role,
                    coordinator=coordinator)
    click.echo(f"created user {name}")


@user.command("set-password")
@click.argument("name")
@click.option("--password-stdin", is_flag=True,
              help="read the password from the first line of stdin (scripts)")
def user_set_password(name: str, password_stdin: bool) -> None:
    """Set the password a user signs in to the web console with (argon2id)."""
    from app.auth.passwords import set_password
    from app.auth.service import get_user
    from app.db import session_scope

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    with session_scope() as session:
        set_password(session, SYSTEM, get_user(session, name), password)
    click.echo(f"password set for {name}; their other web sessions have ended")


@main.group()
def token() -> None:
    """API tokens."""


@token.command("create")
@click.option("--user", "user_name", required=True)
@click.option("--label")
@click.option("--expires-in-days", type=click.IntRange(1), help="valid for this many days")
@click.option("--expires-at", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]),
              help="valid until this UTC date or time (API field expires_at)")
def token_create(user_name: str, label: str | None, expires_in_days: int | None,
                 expires_at: datetime | None) -> None:
    """Print a new token as the last line; it is not stored and cannot be shown again
    (operator, local database)."""
    from app.auth.service import create_token, get_user
    from app.db import session_scope
    from app.timeutil import utcnow

    if expires_in_days and expires_at:
        raise click.UsageError("give --expires-in-days or --expires-at, not both")
    expires = utcnow() + timedelta(days=expires_in_days) if expires_in_days else \
        (expires_at.replace(tzinfo=UTC) if expires_at else None)
    with session_scope() as session:
        row, secret = create_token(session, SYSTEM, get_user(session, user_name),
                                   label=label, expires_at=expires)
    click.echo(f"token for {user_name} (prefix {row.prefix}); store it now:")
    click.echo(secret)


@token.command("revoke")
@click.argument("prefix")
def token_revoke(prefix: str) -> None:
    """Revoke a token by its prefix (operator, local database)."""
    from app.auth.service import revoke_token
    from app.db import session_scope

    with session_scope() as session:
        revoke_token(session, SYSTEM, prefix)
    click.echo(f"revoked token {prefix}")


# -- domain command groups (each imports its dependencies per command) --
from app.agreements.cli import agreement
from app.auth.cli import (
    lab_list,
    lab_member_remove,
    lab_member_role,
    login,
    logout,
    token_list,
    user_list,
    user_reactivate,
    whoami,
)
from app.backup import backup, restore
from app.checkpoints.cli import checkpoint
from app.evals.cli import worker
from app.evals.commands import eval_group, reported
from app.incidents.cli import incident
from app.models.cli import card, model
from app.norms.cli import policy
from app.plans.cli import plan

for command in (agreement, checkpoint, worker, eval_group, reported, incident, model, card,
                plan, login, logout, whoami, backup, restore, policy):
    main.add_command(command)
token.add_command(token_list)
for command in (lab_list, lab_member_remove, lab_member_role):
    lab.add_command(command)
user.add_command(user_list)
user.add_command(user_reactivate)


if __name__ == "__main__":
    main()
