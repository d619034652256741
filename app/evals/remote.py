"""The remote evaluation worker (`stagegate worker --url`): claims jobs over HTTP with a
worker token, downloads and checks the job's checkpoint files, runs the same suites as the
worker with database access, and reports the result. It never opens a database.

Protocol (app/evals/remote_api.py): POST /api/v1/worker/claims (201 a job, 204 none) ->
GET each file's `url` (following redirects, so a presigned object-store URL works; the
token is not sent to another host) and check its SHA-256 -> heartbeats while the suite
runs -> POST .../results or .../failure. A 409 anywhere means the lease is lost: the job
belongs to another worker now, and this one drops it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import socket
import tempfile
import threading
import traceback
import uuid
from pathlib import Path

import httpx

from app.client import ApiError, describe, problem_body

log = logging.getLogger("stagegate.worker")
LEASE_S = 120.0
POLL_S = 2.0
CHUNK = 1 << 20
# Answers worth retrying: the registry restarting, a proxy in between, a request over
# its time budget.
RETRY_STATUSES = {502, 503, 504}


class LeaseLost(Exception):
    """The registry gave the job to another worker (or the lease expired): drop it."""


def instance_id() -> str:
    """host:pid:random, in the characters the claim accepts."""
    host = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname())[:40] or "host"
    return f"{host}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Registry:
    """The worker's side of /api/v1/worker over one HTTP connection pool."""

    def __init__(self, url: str, token: str, timeout: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self.http = httpx.Client(base_url=self.url, timeout=timeout,
                                 headers={"Authorization": f"Bearer {token}"})

    def close(self) -> None:
        self.http.close()

    def _post(self, path: str, body: dict, *, tries: int = 1) -> httpx.Response:
        for attempt in range(tries):
            try:
                response = self.http.post(path, json=body)
            except httpx.TransportError as exc:
                if attempt + 1 == tries:
                    raise ApiError(f"cannot reach {self.url}: {exc}") from None
                continue
            if response.status_code in RETRY_STATUSES and attempt + 1 < tries:
                continue
            if response.status_code == 409:
                raise LeaseLost(describe(response))
            if response.status_code >= 400:
                raise ApiError(describe(response), status=response.status_code,
                               body=problem_body(response))
            return response
        raise AssertionError("unreachable")

    def claim(self, worker: str, lease_s: float) -> dict | None:
        response = self._post("/api/v1/worker/claims", {"worker": worker, "lease_s": lease_s})
        return None if response.status_code == 204 else response.json()

    def heartbeat(self, claim: dict, progress: float) -> dict:
        return self._post(f"/api/v1/worker/jobs/{claim['run_id']}/heartbeat",
                          _lease(claim) | {"progress": progress}).json()

    def result(self, claim: dict, body: dict) -> dict:
        return self._post(f"/api/v1/worker/jobs/{claim['run_id']}/results",
                          _lease(claim) | body, tries=5).json()

    def failure(self, claim: dict, error: str, log_text: str | None = None) -> dict:
        return self._post(f"/api/v1/worker/jobs/{claim['run_id']}/failure",
                          _lease(claim) | {"error": error[:4000] or "failed",
                                           "log": (log_text or "")[-64000:] or None},
                          tries=5).json()

    def download(self, url: str, dest: Path, sha256: str) -> None:
        """Stream one file to `dest`, checking its SHA-256 before it takes its name.
        Redirects are followed (httpx drops the Authorization header on another host)."""
        part = dest.with_name(dest.name + ".part")
        h = hashlib.sha256()
        with self.http.stream("GET", url, follow_redirects=True) as response:
            if response.status_code >= 400:
                response.read()
                raise ApiError(describe(response), status=response.status_code,
                               body=problem_body(response))
            with open(part, "wb") as out:
                for chunk in response.iter_bytes(CHUNK):
                    h.update(chunk)
                    out.write(chunk)
        if h.hexdigest() != sha256:
            part.unlink(missing_ok=True)
            raise ValueError(f"{dest.name}: downloaded SHA-256 {h.hexdigest()} is not the "
                             f"claim's {sha256}")
        os.replace(part, dest)


def _lease(claim: dict) -> dict:
    return {"lease": claim["lease"], "attempt": claim["attempt"]}


class RemoteLease(threading.Thread):
    """Heartbeats while the job runs; sets `lost` when the registry answers 409."""

    def __init__(self, registry: Registry, claim: dict, lease_s: float) -> None:
        super().__init__(daemon=True, name=f"lease-{claim['run_id']}")
        self.registry, self.claim = registry, claim
        self.interval = max(0.2, min(5.0, lease_s / 4))
        self.progress = 0.0
        self.lost = threading.Event()
        self._stop_event = threading.Event()

    def set_progress(self, fraction: float) -> None:
        self.progress = min(1.0, max(0.0, float(fraction)))

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            try:
                self.registry.heartbeat(self.claim, self.progress)
            except LeaseLost:
                log.warning("run %s: lease lost", self.claim["run_id"])
                self.lost.set()
                return
            except Exception:  # the registry restarting must not kill the job; retry
                log.exception("heartbeat for run %s failed", self.claim["run_id"])

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=10)


def fetch(registry: Registry, claim: dict, workdir: Path) -> dict[str, Path]:
    """The job's checkpoints as folders from_pretrained can load: {checkpoint name: dir}.
    One suite reads `workdir` itself; a transfer matrix one folder per checkpoint."""
    dirs = {}
    for ckpt in claim["checkpoints"]:
        folder = workdir / ckpt["name"] if claim["transfer"] else workdir
        folder.mkdir(parents=True, exist_ok=True)
        for f in ckpt["files"]:
            name = f["name"]
            if "/" in name or name in (".", "..") or "\x00" in name:
                raise ValueError(f"refusing a file name that is not a plain name: {name!r}")
            registry.download(f["url"], folder / name, f["sha256"])
        dirs[ckpt["name"]] = folder
    return dirs


def measure(claim: dict, dirs: dict[str, Path], corpus, device: str | None,
            config_overrides: dict | None, lease: RemoteLease):
    """The same suites the worker with database access runs (app/evals/suites.py)."""
    from app.evals import suites  # torch is imported only here, when a job runs

    overrides = config_overrides or {}
    if claim["transfer"]:
        res = suites.transfer_result(
            claim["suite_id"], dirs, {c["name"]: c["manifest_digest"]
                                      for c in claim["checkpoints"]},
            corpus, seed=claim["seed"], device=device,
            config_overrides=overrides.get("detectability"))
        lease.set_progress(1.0)
        return res
    suite = suites.SUITES.get(claim["suite_id"])
    if suite is None or suite.version != claim["suite_version"]:
        mine = f"version {suite.version}" if suite else "no such suite"
        raise RuntimeError(f"the registry asks for {claim['suite_id']}@"
                           f"{claim['suite_version']}; this worker's code has {mine}: "
                           "update the worker to the registry's release")
    (folder,) = dirs.values()
    return suites.run_suite(claim["suite_id"], folder, corpus, seed=claim["seed"],
                            device=device, progress=lease.set_progress,
                            config_overrides=overrides.get(claim["suite_id"]))


def result_body(res) -> dict:
    from app.evals.service import code_version

    fields = ("suite_id", "suite_version", "seed", "config", "metrics", "details",
              "corpus_name", "corpus_digest", "library_versions", "device", "dtype",
              "duration_s", "tokens_processed")
    return {k: getattr(res, k) for k in fields} | {"code_version": code_version()[:100]}


def run_job(registry: Registry, claim: dict, work_dir: Path, *, corpus, device: str | None,
            config_overrides: dict | None, lease_s: float) -> str:
    """Download, measure, report one claimed job; returns how it ended."""
    run_id = claim["run_id"]
    lease = RemoteLease(registry, claim, lease_s)
    lease.start()
    workdir = work_dir / f"run-{run_id}-{claim['attempt']}-{os.getpid()}"
    res, error, trace = None, None, None
    try:
        dirs = fetch(registry, claim, workdir)
        if not lease.lost.is_set():
            res = measure(claim, dirs, corpus, device, config_overrides, lease)
    except Exception as exc:
        log.exception("run %s (%s) failed", run_id, claim["suite_id"])
        error, trace = f"{type(exc).__name__}: {exc}"[:4000], traceback.format_exc()
    finally:
        lease.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    if lease.lost.is_set():
        return "lost"
    try:
        if res is not None:
            registry.result(claim, result_body(res))
            return "succeeded"
        registry.failure(claim, error or "failed", trace)
        return "failed"
    except LeaseLost as exc:
        log.warning("run %s: the registry refused the report, lease lost: %s", run_id, exc)
        return "lost"


def remove_stale_workdirs(work_dir: Path) -> int:
    """Folders of jobs whose worker process is gone (run-ID-ATTEMPT-PID), e.g. killed."""
    removed = 0
    if not work_dir.is_dir():
        return 0
    for path in work_dir.iterdir():
        parts = path.name.split("-")
        if not (path.is_dir() and len(parts) == 4 and parts[0] == "run"
                and parts[3].isdigit()):
            continue
        pid = int(parts[3])
        try:
            if pid != os.getpid():
                os.kill(pid, 0)
                continue  # alive (on this machine): its folder stays
        except ProcessLookupError:
            pass
        except PermissionError:
            continue  # alive, another user's
        shutil.rmtree(path, ignore_errors=True)
        removed += 1
    return removed


def run_remote_worker(url: str, token: str, *, once: bool = False,
                      stop_event: threading.Event | None = None, worker_id: str | None = None,
                      corpus=None, config_overrides: dict | None = None,
                      device: str | None = None, lease_s: float = LEASE_S,
                      poll_s: float = POLL_S, work_dir: Path | None = None) -> int:
    """Claim and run jobs from the registry at `url` until stopped (once=True: until none
    is waiting). Returns the number of jobs this worker finished (or lost)."""
    stop_event = stop_event or threading.Event()
    worker_id = worker_id or instance_id()
    work_dir = Path(work_dir or Path(tempfile.gettempdir()) / "stagegate-worker")
    work_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_workdirs(work_dir)
    registry = Registry(url, token)
    done = 0
    try:
        while not stop_event.is_set():
            try:
                claim = registry.claim(worker_id, lease_s)
            except ApiError as exc:
                if once or (exc.status is not None and exc.status < 500):
                    raise  # a bad token or a refused claim will not fix itself
                log.warning("claim failed, retrying: %s", exc)
                stop_event.wait(poll_s)
                continue
            if claim is None:
                if once:
                    break
                stop_event.wait(poll_s)
                continue
            if corpus is None:
                from app.evals.corpus import demo_corpus

                corpus = demo_corpus()
            status = run_job(registry, claim, work_dir, corpus=corpus, device=device,
                             config_overrides=config_overrides, lease_s=lease_s)
            log.info("run %s: %s", claim["run_id"], status)
            done += 1
            remove_stale_workdirs(work_dir)
    finally:
        registry.close()
    return done
