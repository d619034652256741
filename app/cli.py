"""The `stagegate` command.

Lab-facing commands (models, plans, checkpoints, evals, incidents, agreements) talk
HTTP to a registry (`--url`/STAGEGATE_URL); operator commands (serve, db, demo, user,
lab create, token create/revoke, backup, restore) act on this machine's database, and
refuse (rather than create an empty one) where there is no registry database, except
the commands that set one up (SETS_UP).
Command groups live beside their domain (app/*/cli.py) and import their dependencies
inside each command, so `stagegate --help` loads neither the web stack nor the ORM.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from functools import wraps

import click

from app.auth.principal import SYSTEM
from app.errors import DomainError

# Operator commands that set a registry up, and so may create its database where there is
# none yet. Every other command that opens this machine's database refuses instead.
SETS_UP = frozenset({"serve", "demo", "db upgrade", "lab create", "user create", "restore"})


def _fail(exc: DomainError) -> None:
    where = f" ({exc.field})" if exc.field else ""
    click.echo(f"error{where}: {exc.detail}", err=True)
    sys.exit(2)


def _stdout_closed() -> None:
    """The reader went away (`stagegate ... | head -1`): stop quietly. Python's docs
    (signal, "Note on SIGPIPE"): point stdout at devnull so the flush at exit cannot
    fail again, and exit 1."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (a test runner's stream)
        pass
    sys.exit(1)


class Group(click.Group):
    """Every failure is one clear line and exit code 2, never a traceback
    (STAGEGATE_DEBUG=1 shows the traceback of an unexpected error); a closed stdout
    ends the command quietly."""

    def main(self, *args, **kwargs):
        try:
            return super().main(*args, **kwargs)
        except BrokenPipeError:
            _stdout_closed()

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            _stdout_closed()
        except DomainError as exc:
            _fail(exc)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:
            from app.client import ApiError

            if isinstance(exc, ApiError):
                # With --json a policy refusal's body is already on stdout.
                message = str(exc).splitlines()[0] if exc.json_shown else str(exc)
                click.echo(f"error: {message}", err=True)
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
    """Stagegate: a publication-norms registry for AI labs.

    Lab-facing commands talk HTTP to the registry at --url with your token; operator
    commands (marked "operator, local database") act on this machine's registry, found
    through STAGEGATE_DATA_DIR (default ./data) or STAGEGATE_DATABASE_URL."""
    from app.installers import install_with_engine

    # Commands on this machine's database get the session listeners when they first make
    # an engine (app/db.py); commands that only talk HTTP never load the ORM for them.
    # Before that, an operator command refuses where there is no registry database.
    install_with_engine(_refuse_a_missing_registry)
    install_with_engine(_install_listeners)


def _install_listeners() -> None:
    from app.listeners import install_listeners

    install_listeners()


def _command_path(ctx: click.Context) -> str:
    names = []
    while ctx.parent is not None:
        names.append(ctx.info_name or "")
        ctx = ctx.parent
    return " ".join(reversed(names))


def missing_registry_database() -> str | None:
    """The SQLite file the settings name when it does not exist yet (PostgreSQL databases
    are made by their server, never by a connection)."""
    from app.settings import get_settings

    url = get_settings().database_url
    if not url.startswith("sqlite"):
        return None
    path = url.split("///", 1)[-1]
    if not path or path == ":memory:" or os.path.exists(path):
        return None
    return os.path.abspath(path)


def _refuse_a_missing_registry() -> None:
    """Run by app.db before it makes an engine (and so before SQLite creates a file):
    inside a `stagegate` command that does not set a registry up, a missing database is
    one clear line, never an empty ./data/stagegate.db left behind. Outside a command
    (the server's threads, tests) it does nothing."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return
    command = _command_path(ctx)
    if command in SETS_UP:
        return
    path = missing_registry_database()
    if path is None:
        return
    from app.clikit import Fail

    raise Fail(f"no registry database at {path}; `stagegate {command}` works on the "
               "registry's own machine (set STAGEGATE_DATA_DIR or STAGEGATE_DATABASE_URL "
               "to its database, or create one with `stagegate db upgrade`)")


def _checks_registry_first(command: click.Command) -> None:
    """For operator commands that read the database without making an engine first
    (backup opens the SQLite file itself) or only deep inside a loop (worker): the same
    refusal, before they start (after their options are parsed, so --help works)."""
    run = command.callback

    @wraps(run)
    def checked(*args, **kwargs):
        if not kwargs.get("remote_url"):  # `worker --url` talks HTTP: no database here
            _refuse_a_missing_registry()
        return run(*args, **kwargs)
    command.callback = checked


def _set_up_registry() -> None:
    """`lab create` / `user create` on a machine without a registry yet: make the
    database at the current schema first (as `serve` and `demo` do)."""
    from app.db import get_engine, has_tables, upgrade

    created = missing_registry_database()
    if not has_tables(get_engine()):
        upgrade()
        if created:
            click.echo(f"created the registry database {created}", err=True)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--no-migrate", is_flag=True, help="refuse to start on an un-migrated database")
def serve(host: str, port: int, no_migrate: bool) -> None:
    """Serve the web app and API (operator, this machine: creates and migrates its
    database first)."""
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
    """This machine's registry database (operator)."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply all migrations (operator, local database; creates it if there is none)."""
    from app.db import upgrade

    upgrade()
    click.echo("database is at the current schema")


@main.command()
@click.option("--no-models", is_flag=True, help="skip training and evaluating the demo models")
def demo(no_models: bool) -> None:
    """Load the demo data (idempotent): the GPT-2 release of 2019 and a tiny model family
    (operator, local database; creates it if there is none)."""
    from app.db import upgrade
    from app.demo import load_demo

    upgrade()
    for line in load_demo(with_models=not no_models):
        click.echo(line)


@main.group()
def lab() -> None:
    """Labs: list and members over HTTP; create on this machine (operator)."""


@lab.command("create")
@click.argument("slug")
@click.option("--name", required=True)
@click.option("--url")
def lab_create(slug: str, name: str, url: str | None) -> None:
    """Create a lab (operator, local database; creates the registry's database if there
    is none yet)."""
    from app.db import session_scope
    from app.labs.service import create_lab

    _set_up_registry()
    with session_scope() as session:
        create_lab(session, SYSTEM, slug, name, url)
    click.echo(f"created lab {slug}")


@main.group()
def user() -> None:
    """Users: reactivate over HTTP; create, list, set-password on this machine (operator)."""


@user.command("create")
@click.argument("name")
@click.option("--lab", "lab_slug")
@click.option("--role", type=click.Choice(["lab_admin", "lab_member"]), default="lab_member")
@click.option("--coordinator", is_flag=True)
def user_create(name: str, lab_slug: str | None, role: str, coordinator: bool) -> None:
    """Create a user in a lab, or a coordinator (operator, local database; creates the
    registry's database if there is none yet)."""
    from app.auth.service import create_user
    from app.db import session_scope

    if not lab_slug and not coordinator:
        raise click.UsageError("give --lab SLUG (with --role) or --coordinator")
    _set_up_registry()
    with session_scope() as session:
        create_user(session, SYSTEM, name, lab_slug=lab_slug, role=role,
                    coordinator=coordinator)
    click.echo(f"created user {name}")


@user.command("set-password")
@click.argument("name")
@click.option("--password-stdin", is_flag=True,
              help="read the password from the first line of stdin (scripts)")
def user_set_password(name: str, password_stdin: bool) -> None:
    """Set the password a user signs in to the web console with (argon2id) (operator,
    local database)."""
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
    """API tokens: list yours over HTTP; create and revoke on this machine (operator)."""


@token.command("create")
@click.option("--user", "user_name", required=True)
@click.option("--label")
@click.option("--expires-in-days", type=click.IntRange(1), help="valid for this many days")
@click.option("--expires-at", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]),
              help="valid until this UTC date or time (API field expires_at)")
@click.option("--worker", "worker_name", metavar="NAME",
              help="a worker token for the remote evaluation worker NAME (`stagegate "
                   "worker --url`): it may only claim, run and report evaluation jobs; "
                   "--user must be a coordinator")
def token_create(user_name: str, label: str | None, expires_in_days: int | None,
                 expires_at: datetime | None, worker_name: str | None) -> None:
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
                                   label=label, expires_at=expires, worker=worker_name)
    what = f"worker token for {worker_name}, owned by" if worker_name else "token for"
    click.echo(f"{what} {user_name} (prefix {row.prefix}); store it now:")
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
from app.checkpoints.cli import blobs, checkpoint
from app.evals.cli import worker
from app.evals.commands import eval_group, reported
from app.incidents.cli import incident
from app.models.cli import card, model
from app.norms.cli import policy
from app.plans.cli import plan
from app.transparency.cli import log_group

for command in (agreement, blobs, checkpoint, worker, eval_group, reported, incident, model, card,
                plan, login, logout, whoami, backup, restore, policy, log_group):
    main.add_command(command)
for command in (backup, worker, blobs):
    _checks_registry_first(command)
token.add_command(token_list)
for command in (lab_list, lab_member_remove, lab_member_role):
    lab.add_command(command)
user.add_command(user_list)
user.add_command(user_reactivate)


if __name__ == "__main__":
    main()
