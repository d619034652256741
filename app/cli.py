"""The `stagegate` command: serve, migrate, demo data, accounts, plans."""

from __future__ import annotations

import sys
from datetime import timedelta

import click

from app.auth.principal import SYSTEM
from app.errors import DomainError


def _fail(exc: DomainError) -> None:
    where = f" ({exc.field})" if exc.field else ""
    click.echo(f"error{where}: {exc.detail}", err=True)
    sys.exit(2)


class Group(click.Group):
    """Domain errors become one clear line and exit code 2, never a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except DomainError as exc:
            _fail(exc)


@click.group(cls=Group)
def main() -> None:
    """Stagegate: a publication-norms registry for AI labs."""


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
    uvicorn.run(create_app(), host=host, port=port, log_level="info", access_log=False,
                proxy_headers=False)


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
@click.option("--expires-in-days", type=int)
def token_create(user_name: str, label: str | None, expires_in_days: int | None) -> None:
    """Print a new token as the last line; it is not stored and cannot be shown again."""
    from app.auth.service import create_token, get_user
    from app.db import session_scope
    from app.timeutil import utcnow

    expires = utcnow() + timedelta(days=expires_in_days) if expires_in_days else None
    with session_scope() as session:
        row, secret = create_token(session, SYSTEM, get_user(session, user_name),
                                   label=label, expires_at=expires)
    click.echo(f"token for {user_name} (prefix {row.prefix}); store it now:")
    click.echo(secret)


@token.command("revoke")
@click.argument("prefix")
def token_revoke(prefix: str) -> None:
    from app.auth.service import revoke_token
    from app.db import session_scope

    with session_scope() as session:
        revoke_token(session, SYSTEM, prefix)
    click.echo(f"revoked token {prefix}")


@main.group()
def plan() -> None:
    """Release plans."""


@plan.command("file")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--user", "user_name", help="file as this user (default: the console operator)")
@click.option("--draft", is_flag=True, help="keep it as a draft instead of filing it")
def plan_file(path: str, user_name: str | None, draft: bool) -> None:
    """File a plan written as YAML or JSON, through the same service as the API."""
    from app.auth.service import get_user, principal_for_user
    from app.db import session_scope
    from app.plans.planfile import load_plan_file
    from app.plans.service import file_plan

    data = load_plan_file(path, file=not draft)
    with session_scope() as session:
        actor = principal_for_user(session, get_user(session, user_name)) if user_name \
            else SYSTEM
        created = file_plan(session, actor, data)
    click.echo(f"plan {created.id} {created.status}: {created.title}")


# -- domain command groups --
from app.agreements.cli import agreement

main.add_command(agreement)
from app.checkpoints.cli import checkpoint  # noqa: E402
from app.evals.cli import worker  # noqa: E402

main.add_command(checkpoint)
main.add_command(worker)
from app.norms.cli import policy  # noqa: E402

main.add_command(policy)


if __name__ == "__main__":
    main()
