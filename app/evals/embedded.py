"""The embedded evaluation worker of `stagegate serve`: a child process at lower priority.

Why a process and not a thread of the server: an evaluation does much of its work in
Python (tokenising, sampling loops, scoring), and a thread doing that holds the GIL the
web server's event loop needs, whatever its nice level. Measured on 2 cores (issue 10),
a nice-10 worker thread still put the plan read's p99 at 5x idle during an evaluation.
A child process at nice 10 with fewer torch threads than cores leaves the server its
interpreter and a core. The server starts it on start-up, restarts it if it dies, and
stops it (SIGTERM, then SIGKILL) on shutdown; the child exits if the server goes away.
The worker (app/evals/worker.py) never imports this module; this module imports it only
in the child and in the thread mode.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from app.settings import Settings

log = logging.getLogger("stagegate.worker")
NICE = 10
RESTART_AFTER_S = 5.0
STOP_WAIT_S = 10.0


def child_env(settings: Settings) -> dict[str, str]:
    """The server's own settings, so the child works on the same database and blobs even
    when the server was configured in code rather than through the environment."""
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    env["STAGEGATE_DATA_DIR"] = str(settings.data_dir)
    env["STAGEGATE_DATABASE_URL"] = settings.database_url
    env["STAGEGATE_MANDATORY_POLICIES"] = ",".join(settings.mandatory_policies)
    if settings.policy_dir is not None:
        env["STAGEGATE_POLICY_DIR"] = str(settings.policy_dir)
    return env


def start(settings: Settings):
    """Start and supervise the child; returns stop()."""
    stopping = threading.Event()
    current: list[subprocess.Popen] = []

    def supervise() -> None:
        while not stopping.is_set():
            proc = subprocess.Popen(
                [sys.executable, "-m", "app.evals.embedded", str(os.getpid())],
                env=child_env(settings), stdin=subprocess.DEVNULL)
            current[:] = [proc]
            code = proc.wait()
            if not stopping.is_set():
                log.warning("embedded worker exited with %s; restarting in %.0f s", code,
                            RESTART_AFTER_S)
                stopping.wait(RESTART_AFTER_S)

    thread = threading.Thread(target=supervise, daemon=True, name="stagegate-worker")
    thread.start()

    def stop(timeout: float = STOP_WAIT_S) -> None:
        stopping.set()
        for proc in current:
            if proc.poll() is None:
                proc.terminate()  # the child finishes nothing more; its lease expires
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        thread.join(timeout)

    return stop


def start_inprocess_worker(settings: Settings):
    """The embedded worker; returns stop(). By default a child process at lower priority
    (start, above); with STAGEGATE_WORKER_YIELD=0 a thread of this process at full speed
    (one process, every core; public reads slow down while it runs)."""
    if settings.worker_yield:
        return start(settings)
    from app.evals.worker import run_worker

    stop_event = threading.Event()
    thread = threading.Thread(target=run_worker, args=(settings,),
                              kwargs={"stop_event": stop_event}, daemon=True,
                              name="stagegate-worker")
    thread.start()

    def stop(timeout: float = 5.0) -> None:
        stop_event.set()
        thread.join(timeout)

    return stop


def _exit_with_parent(parent: int) -> None:
    """The server may die without stopping us (SIGKILL): poll for it, then leave; the job
    in hand is retried by the next worker once its lease expires."""
    while True:
        if os.getppid() != parent:
            os._exit(0)
        threading.Event().wait(1.0)


def main() -> None:
    from app.evals import worker
    from app.listeners import install_listeners
    from app.settings import get_settings

    install_listeners()  # this process's entry point: results recompute verdicts
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    parent = int(sys.argv[1]) if len(sys.argv) > 1 else os.getppid()
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    try:
        os.nice(NICE)
    except OSError:  # not permitted: torch threads are still capped below
        pass
    worker.limit_torch_threads()
    # SIGTERM from the server: leave at once (a job in hand is retried after its lease).
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    worker.run_worker(get_settings())


if __name__ == "__main__":
    main()
