"""Building the app again (tests, backup restores) leaves no thread behind: Litestar's
default logging starts a queue-listener thread per configuration, and nothing stops it."""

import threading

from app import create_app


def test_each_new_app_starts_no_thread_of_its_own():
    create_app()  # the first may set up logging for the process
    before = {t.ident for t in threading.enumerate()}
    for _ in range(3):
        app = create_app()
    assert {t.ident for t in threading.enumerate()} - before == set()
    assert app.logger is not None  # logging still works: Litestar's logger is there
