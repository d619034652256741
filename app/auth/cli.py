"""`stagegate login/logout/whoami`, `token list`, `lab list`, `lab member-remove`,
`lab member-role`, `user list`, `user reactivate`."""

from __future__ import annotations

from urllib.parse import quote

import click

from app.clikit import as_json_option, emit, remote


def _members_path(slug: str, user: str) -> str:
    return f"/api/v1/labs/{quote(slug, safe='')}/members/{quote(user, safe='')}"


@click.command()
@click.option("--token", prompt=True, hide_input=True, envvar="STAGEGATE_TOKEN",
              help="an API token (prompted for if not given)")
@click.pass_context
def login(ctx: click.Context, token: str) -> None:
    """Check a token against the registry (--url) and keep both in your config folder,
    readable only by you (mode 0600)."""
    from app.client import Client, save_credentials

    client = Client(ctx.find_root().params.get("url"), token=token.strip())
    me = client.get("/api/v1/me")
    path = save_credentials(client.url, token.strip())
    click.echo(f"logged in to {client.url} as {me['name']}; token kept in {path}")


@click.command()
def logout() -> None:
    """Forget the token kept by `stagegate login`."""
    from app.client import forget_credentials

    click.echo("logged out" if forget_credentials() else "was not logged in")


@click.command()
@as_json_option
@remote
def whoami(client, as_json: bool) -> None:
    """Who the registry (--url) takes your token for, and your labs (over HTTP)."""
    me = client.get("/api/v1/me")
    if as_json:
        return emit(me, True)
    labs = me.get("labs") or {}
    rows = [("name", me.get("name")), ("registry", client.url)]
    if me.get("display_name"):
        rows.insert(1, ("display name", me["display_name"]))
    rows.append(("coordinator", "yes" if me.get("is_coordinator") else "no"))
    rows.append(("labs", ", ".join(f"{slug} ({role})" for slug, role in sorted(labs.items()))
                 or "none"))
    width = max(len(key) for key, _ in rows)
    for key, value in rows:
        click.echo(f"{(key + ':').ljust(width + 1)} {value}")


@click.command("list")
@as_json_option
@remote
def token_list(client, as_json: bool) -> None:
    """Your API tokens (never their secrets) (over HTTP)."""
    emit(client.get("/api/v1/tokens"), as_json,
         ["prefix", "label", "created_at", "expires_at", "revoked_at"])


@click.command("list")
@as_json_option
@remote
def lab_list(client, as_json: bool) -> None:
    """Labs in the registry (over HTTP)."""
    emit(list(client.items("/api/v1/labs/", None)), as_json, ["slug", "name", "url"])


@click.command("member-remove")
@click.argument("slug")
@click.argument("user")
@as_json_option
@remote
def lab_member_remove(client, slug: str, user: str, as_json: bool) -> None:
    """Remove USER from lab SLUG (its lab admins, coordinators; over HTTP). The last
    lab_admin of a lab cannot be removed."""
    removed = client.delete(_members_path(slug, user))
    if as_json:
        return emit(removed, True)
    click.echo(f"removed {user} ({removed['role']}) from {slug}")


@click.command("member-role")
@click.argument("slug")
@click.argument("user")
@click.argument("role", type=click.Choice(["lab_admin", "lab_member"]))
@as_json_option
@remote
def lab_member_role(client, slug: str, user: str, role: str, as_json: bool) -> None:
    """Make USER of lab SLUG a lab_admin or lab_member (its lab admins, coordinators;
    over HTTP). The last lab_admin of a lab cannot be demoted."""
    changed = client.patch(_members_path(slug, user), {"role": role})
    if as_json:
        return emit(changed, True)
    click.echo(f"{user} is now {changed['role']} of {slug}")


@click.command("reactivate")
@click.argument("name")
@as_json_option
@remote
def user_reactivate(client, name: str, as_json: bool) -> None:
    """Let a deactivated user sign in again (coordinators; over HTTP). Their old tokens
    stay revoked: they make new ones."""
    user = client.post(f"/api/v1/users/{quote(name, safe='')}/reactivate")
    if as_json:
        return emit(user, True)
    click.echo(f"reactivated user {user['name']}")


@click.command("list")
@as_json_option
def user_list(as_json: bool) -> None:
    """Users and their labs (operator, local database)."""
    from sqlmodel import select

    from app.auth.tables import User
    from app.db import session_scope
    from app.labs.tables import Lab, Membership

    with session_scope(write=False) as session:
        users = session.exec(select(User).order_by(User.name)).all()
        labs: dict[int, list[str]] = {}
        for m, lab in session.exec(select(Membership, Lab).where(Lab.id == Membership.lab_id)):
            labs.setdefault(m.user_id, []).append(f"{lab.slug}:{m.role}")
        rows = [{"name": u.name, "coordinator": u.is_coordinator,
                 "active": u.deactivated_at is None, "labs": ", ".join(labs.get(u.id, []))}
                for u in users]
    emit(rows, as_json, ["name", "coordinator", "active", "labs"])
