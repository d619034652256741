"""What a process installs on the database layer before it first uses it.

Session listeners (Markdown rendering, verdict recomputation, the plan cache) live in the
layers above app.db; app.db must not import them. So the process's entry point names the
installer here (the `stagegate` command does; create_app, the worker's child process and
the tests install theirs directly), and app.db runs it from engine_for, once per engine
it makes. Installers are idempotent. Nothing is installed as a side effect of an import.
"""

from __future__ import annotations

from collections.abc import Callable

_installers: list[Callable[[], None]] = []


def install_with_engine(installer: Callable[[], None]) -> None:
    """Run `installer` whenever app.db makes an engine (from now on)."""
    if installer not in _installers:
        _installers.append(installer)


def run_installers() -> None:
    for installer in _installers:
        installer()
