"""`stagegate worker`: run evaluation jobs in this process, from this machine's database
or (with --url and a worker token) from a registry over HTTP."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
from pathlib import Path

import click


def _worker_token(token_file: str | None) -> str:
    if token_file:
        token = Path(token_file).read_text(encoding="utf-8").strip()
    else:
        token = os.environ.get("STAGEGATE_TOKEN", "").strip()
    if not token:
        raise click.UsageError("a remote worker needs a worker token: STAGEGATE_TOKEN or "
                               "--token-file (`stagegate token create --worker NAME`)")
    return token


@click.command()
@click.option("--once", is_flag=True, help="run queued jobs until none is left, then exit")
@click.option("--corpus", "corpus_path", type=click.Path(exists=True, dir_okay=False),
              help="evaluation corpus (.txt or .jsonl); default: the built-in demo corpus")
@click.option("--device", help="torch device (default: cuda if available, else cpu)")
@click.option("--worker-id", help="name recorded as the lease owner (with --url: after the "
                                  "token's worker name)")
@click.option("--url", "remote_url", metavar="URL",
              help="a remote worker: claim jobs from the registry at URL over HTTP with a "
                   "worker token, without database access")
@click.option("--token-file", type=click.Path(exists=True, dir_okay=False),
              help="with --url: file holding the worker token (else STAGEGATE_TOKEN)")
@click.option("--work-dir", type=click.Path(file_okay=False),
              help="with --url: where checkpoints are downloaded (default: "
                   "$TMPDIR/stagegate-worker; each job's folder is removed after it)")
@click.option("--lease-s", type=click.FloatRange(1, 3600), default=120.0, show_default=True,
              help="with --url: lease length asked for; heartbeats renew it")
@click.option("--suite-config", type=click.Path(exists=True, dir_okay=False),
              help="JSON {suite: {setting: value}} overriding suite settings (the result "
                   "records them, under a key of its own)")
def worker(once: bool, corpus_path: str | None, device: str | None, worker_id: str | None,
           remote_url: str | None, token_file: str | None, work_dir: str | None,
           lease_s: float, suite_config: str | None) -> None:
    """Claim evaluation jobs and run them; stop with Ctrl-C or SIGTERM.

    Without --url: from this machine's database (operator). With --url: from a registry
    over HTTP with a worker token, on any machine with the ML dependencies."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    corpus = None
    if corpus_path:
        from app.evals.corpus import load_corpus

        corpus = load_corpus(corpus_path)
    overrides = (json.loads(Path(suite_config).read_text(encoding="utf-8"))
                 if suite_config else None)
    stop = threading.Event()
    # A stop request lets the current job finish; a killed worker's job is retried by
    # another worker once its lease expires.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        if remote_url:
            from app.evals.remote import run_remote_worker

            done = run_remote_worker(remote_url, _worker_token(token_file), once=once,
                                     stop_event=stop, worker_id=worker_id, corpus=corpus,
                                     config_overrides=overrides, device=device,
                                     lease_s=lease_s,
                                     work_dir=Path(work_dir) if work_dir else None)
        else:
            from app.evals.worker import run_worker
            from app.settings import get_settings

            done = run_worker(get_settings(), once=once, stop_event=stop,
                              worker_id=worker_id, corpus=corpus, device=device,
                              config_overrides=overrides)
    except KeyboardInterrupt:
        stop.set()
        return
    click.echo(f"worker finished {done} job(s)")
