"""A live Stagegate for browser tests: seeds demo-like data into a fresh folder, serves it
on a free 127.0.0.1 port with a real evaluation worker, and exits when its parent does.

    python -m tests.web.server DATA_DIR   -> prints one JSON line {port, tokens, ids}
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from pathlib import Path

MAX_LIFETIME_S = 1800


def _watchdog(parent: int) -> None:
    # Stop by itself: when pytest goes away (even killed) or after a fixed lifetime.
    started = time.monotonic()
    while os.getppid() == parent and time.monotonic() - started < MAX_LIFETIME_S:
        time.sleep(0.5)
    os._exit(0)


def main() -> None:
    import uvicorn

    from app import create_app
    from app.db import upgrade
    from app.settings import Settings, configure
    from tests.web.seed import seed

    data_dir = Path(sys.argv[1])
    settings = configure(Settings(data_dir=data_dir, inprocess_worker=False))
    upgrade()
    info = seed(data_dir)
    threading.Thread(target=_watchdog, args=(os.getppid(),), daemon=True).start()
    if os.environ.get("STAGEGATE_TEST_WORKER", "1") == "1":
        _start_worker(settings)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    info["port"] = sock.getsockname()[1]
    print(json.dumps(info), flush=True)
    config = uvicorn.Config(create_app(settings), log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])


def _start_worker(settings) -> None:
    """The real worker, on a small corpus so a tiny model's suite takes seconds."""
    from app.evals.corpus import demo_corpus, make_corpus
    from app.evals.worker import run_worker

    corpus = make_corpus("pydoc-slice", demo_corpus().texts[:40])
    threading.Thread(target=run_worker, args=(settings,), daemon=True,
                     kwargs={"corpus": corpus, "poll_s": 0.2, "enqueue_every_s": None}).start()


if __name__ == "__main__":
    main()
