"""`stagegate worker`: run evaluation jobs in this process."""

from __future__ import annotations

import logging
import signal
import threading

import click


@click.command()
@click.option("--once", is_flag=True, help="run queued jobs until none is left, then exit")
@click.option("--corpus", "corpus_path", type=click.Path(exists=True, dir_okay=False),
              help="evaluation corpus (.txt or .jsonl); default: the built-in demo corpus")
@click.option("--device", help="torch device (default: cuda if available, else cpu)")
@click.option("--worker-id", help="name recorded as the lease owner")
def worker(once: bool, corpus_path: str | None, device: str | None,
           worker_id: str | None) -> None:
    """Claim evaluation jobs from the database and run them; stop with Ctrl-C or SIGTERM."""
    from app.evals.worker import run_worker
    from app.settings import get_settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    corpus = None
    if corpus_path:
        from app.evals.corpus import load_corpus

        corpus = load_corpus(corpus_path)
    stop = threading.Event()
    # A stop request lets the current job finish; a killed worker's job is retried by
    # another worker once its lease expires.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        done = run_worker(get_settings(), once=once, stop_event=stop, worker_id=worker_id,
                          corpus=corpus, device=device)
    except KeyboardInterrupt:
        stop.set()
        return
    click.echo(f"worker finished {done} job(s)")
