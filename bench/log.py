"""The transparency log at scale: append cost, proof latency, tile reads and the monitor's
catch-up, per database.

    .venv/bin/python bench/log.py                                   # SQLite, 1M leaves
    .venv/bin/python bench/log.py --leaves 100000 --seconds 2       # quick
    .venv/bin/python bench/log.py --database-url postgresql://127.0.0.1:5432/sg_bench_log

The dataset is the demo registry (`stagegate demo --no-models`) plus synthetic public
events, grown to --leaves leaves and kept: the SQLite file and data folder under
bench/out/log-<leaves>/, or the PostgreSQL database named (created when missing; grown,
never shrunk, when it holds fewer leaves; --fresh drops it first). The build is fast on
purpose: Core inserts of the event rows and app.transparency.log.append_events over
lightweight objects, one transaction per --batch, as the migration that logs an existing
history does; its time is printed.

Then, each beside its baseline in the same run:
1. proofs: p50/p99 of service.inclusion at random indexes and service.consistency at
   random pairs, in-process (one read session) and over HTTP (one keep-alive httpx client
   against a `stagegate serve` process); the goal is a p99 under 5 ms;
2. tiles: wrk (1 thread) on a full level-0 and level-1 hash tile, an entry bundle, the
   checkpoint and the two proof endpoints, as a share of the same server's /healthz (goal
   50 % or more);
3. monitor: `stagegate log verify --url URL --state FILE` from a fresh state, then again
   with that state (goal under 60 s); when slower, where a page of 1000 entries spends
   its time (database query, the answer's model, the client's checks) and the service's
   hottest functions;
4. append: plan writes through app.plans.service (file_plan, then revise_plan of that
   plan, one transaction each, as the API does), with the log's three session listeners
   removed (baseline) and installed, in alternating blocks; events/s of each and the
   log's share of a write (goal under 10 %).
Needs `wrk` (Debian package).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wrk(url: str, seconds: int, connections: int) -> dict:
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url],
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)

    def pct(p: str) -> float:
        value, unit = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(non2xx.group(1)) if non2xx else 0) + \
        (sum(int(g) for g in sock.groups()) if sock else 0)
    return {"rps": rps, "p50": pct("50"), "p99": pct("99"), "errors": errors}


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def ms(xs: list[float]) -> tuple[float, float]:
    """p50 and p99 of seconds, in ms."""
    return statistics.median(xs) * 1000, pct(xs, 0.99) * 1000


# -- the dataset ------------------------------------------------------------------------

def prepare(args) -> tuple[dict, str, Path]:
    """Settings for this process, the server's environment, the database (with the demo
    registry in it, made on first use)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from app.settings import Settings, configure

    if args.database_url:
        url = args.database_url
        name = make_url(url).database
        out = ROOT / "bench" / "out" / f"log-pg-{name}"
        admin = create_engine(make_url(url.replace("postgresql://", "postgresql+psycopg://", 1))
                              .set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            if args.fresh:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                shutil.rmtree(out, ignore_errors=True)
            if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"),
                                {"n": name}).scalar():
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
    else:
        out = ROOT / "bench" / "out" / f"log-{args.leaves}"
        if args.fresh:
            shutil.rmtree(out, ignore_errors=True)
        url = f"sqlite:///{out / 'stagegate.db'}"
    out.mkdir(parents=True, exist_ok=True)
    env = os.environ | {"PYTHONPATH": str(ROOT), "STAGEGATE_INPROCESS_WORKER": "0",
                        "STAGEGATE_DATA_DIR": str(out), "STAGEGATE_DATABASE_URL": url,
                        "STAGEGATE_LOG_CHECKPOINT_S": "0"}
    if not (out / "demo-loaded").exists():
        print("loading the demo registry ...", flush=True)
        subprocess.run([sys.executable, "-m", "app.cli", "demo", "--no-models"], env=env,
                       cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        (out / "demo-loaded").touch()
    configure(Settings(data_dir=out, database_url=url, inprocess_worker=False,
                       log_checkpoint_s=0))
    return env, url, out


EVENT_COLUMNS = ("id", "at", "actor_id", "actor", "entity_type", "entity_id", "action",
                 "digest", "lab_id", "visibility", "visible_from", "data")


def insert_events(conn, rows: list[dict]) -> None:
    """The driver's executemany, as the column types would bind the values: three times
    faster than a Core insert, whose per-row bind processing dominates at a million."""
    cols = ", ".join(EVENT_COLUMNS)
    if conn.dialect.name == "postgresql":
        from psycopg.types.json import Json

        values = [tuple(Json(r[c]) if c == "data" else r[c] for c in EVENT_COLUMNS)
                  for r in rows]
        sql = f"INSERT INTO event ({cols}) VALUES ({', '.join(['%s'] * len(EVENT_COLUMNS))})"
    else:  # SQLAlchemy's SQLite DATETIME text (UTC) and JSON text
        def bind(c, v):
            if c == "at":
                return v.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
            return json.dumps(v) if c == "data" else v

        values = [tuple(bind(c, r[c]) for c in EVENT_COLUMNS) for r in rows]
        sql = f"INSERT INTO event ({cols}) VALUES ({', '.join(['?'] * len(EVENT_COLUMNS))})"
    conn.exec_driver_sql(sql, values)


def build(url: str, target: int, batch: int) -> tuple[int, int, float]:
    """Grow the log to `target` leaves: per batch, one transaction that inserts the event
    rows (Core) and appends their leaves. Returns (size before, size after, seconds)."""
    from sqlalchemy import func, select

    from app.access import openable_events
    from app.auth.principal import ANONYMOUS
    from app.db import engine_for, open_session
    from app.events.tables import Event
    from app.transparency.log import append_events, tree_size

    engine = engine_for(url)
    with open_session(engine) as s:
        before = tree_size(s)
        # Entities the public may read (the demo's models, plans, checkpoints, ...): the
        # events about them open for anyone, as a registry's public history does.
        targets = s.execute(select(Event.entity_type, Event.entity_id, Event.lab_id)
                            .where(openable_events(ANONYMOUS), Event.visibility == "public")
                            .distinct().order_by(Event.entity_type, Event.entity_id)).all()
    size, t0 = before, time.perf_counter()
    if size >= target:
        finish(engine)  # a build stopped half-way left the sequence behind
        return before, size, 0.0
    print(f"growing the log from {size:,} to {target:,} leaves ...", flush=True)
    rng = random.Random(size)
    start = datetime.now(UTC) - timedelta(days=400)
    while size < target:
        n = min(batch, target - size)
        with open_session(engine, write=True) as s:
            base = s.execute(select(func.max(Event.id))).scalar() or 0
            rows = []
            for i in range(n):
                eid = base + i + 1
                kind, entity, lab = targets[eid % len(targets)]
                rows.append({  # one in ten for the lab only: sealed to the public
                    "id": eid,
                    "at": start + timedelta(microseconds=eid * 7919 + rng.randrange(1000)),
                    "actor_id": None, "actor": "bench", "entity_type": kind,
                    "entity_id": entity, "action": "revised" if eid % 3 else "updated",
                    "digest": f"{eid:064x}", "lab_id": lab,
                    "visibility": "lab" if eid % 10 == 0 else "public", "visible_from": None,
                    "data": {"revision": 1 + eid % 7, "version": 1 + eid % 5}})
            if engine.dialect.name == "sqlite":  # the indexes of a million rows in memory
                s.connection().exec_driver_sql("PRAGMA cache_size=-400000")
            insert_events(s.connection(), rows)
            append_events(s, [SimpleNamespace(**r) for r in rows])
            s.commit()
        size += n
        print(f"  {size:,} leaves, {time.perf_counter() - t0:.0f} s", flush=True)
    finish(engine)
    return before, size, time.perf_counter() - t0


def finish(engine) -> None:
    """The event id sequence past the ids inserted (PostgreSQL), and fresh statistics, as
    autovacuum (or SQLite's next connection) would make them."""
    from sqlalchemy import text

    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT setval(pg_get_serial_sequence('event', 'id'), "
                              "(SELECT max(id) FROM event))"))
        conn.commit()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE")


def check_tree(engine, size: int, rng: random.Random) -> bytes:
    """The root from the stored nodes, and a few proofs verified against it: the build
    made a real tree."""
    import base64

    from app.db import open_session
    from app.transparency import merkle, service
    from app.transparency.log import reader

    with open_session(engine) as s:
        root = merkle.tree_root(size, reader(s))
        for _ in range(5):
            i = rng.randrange(size)
            p = service.inclusion(s, i, size)
            assert merkle.verify_inclusion(i, size, base64.b64decode(p["leaf_hash"]),
                                           [base64.b64decode(h) for h in p["hashes"]], root)
    return root


# -- proofs -----------------------------------------------------------------------------

def proof_args(size: int, n: int, rng: random.Random) -> tuple[list, list]:
    incl = [rng.randrange(size) for _ in range(n)]
    cons = []
    for _ in range(n):
        a = rng.randrange(1, size)
        cons.append((a, rng.randrange(a + 1, size + 1)))
    return incl, cons


def sample(calls, limit_s: float) -> list[float]:
    """Seconds of each call, until the calls or `limit_s` run out (a slow proof must not
    hold the whole run)."""
    times, t0 = [], time.perf_counter()
    for call in calls:
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
        if t - t0 > limit_s:
            break
    return times


def proofs_inprocess(engine, size: int, samples: int, limit_s: float,
                     rng: random.Random) -> dict:
    from app.db import open_session
    from app.transparency import service

    incl, cons = proof_args(size, samples, rng)
    with open_session(engine) as s:
        sample([lambda i=i: service.inclusion(s, i, size) for i in incl[:20]], limit_s / 4)
        return {"inclusion": sample([lambda i=i: service.inclusion(s, i, size)
                                     for i in incl], limit_s),
                "consistency": sample([lambda a=a, b=b: service.consistency(s, a, b)
                                       for a, b in cons], limit_s)}


def proofs_http(base: str, size: int, samples: int, limit_s: float,
                rng: random.Random) -> dict:
    incl, cons = proof_args(size, samples, rng)
    with httpx.Client(base_url=base, timeout=60) as c:
        def get(path: str) -> None:
            r = c.get(path)
            assert r.status_code == 200, (path, r.status_code, r.text[:300])

        sample([lambda: get("/healthz")] * 50, limit_s)
        return {"inclusion": sample([lambda i=i: get(f"/api/v1/log/proof/inclusion?index={i}"
                                                     f"&tree_size={size}") for i in incl],
                                    limit_s),
                "consistency": sample([lambda a=a, b=b: get(f"/api/v1/log/proof/consistency"
                                                            f"?first={a}&second={b}")
                                       for a, b in cons], limit_s),
                "/healthz": sample([lambda: get("/healthz")] * samples, limit_s)}


# -- the server: tiles, monitor ---------------------------------------------------------

def serve(env: dict) -> tuple[subprocess.Popen, str]:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
                              env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            httpx.get(f"{base}/healthz")
            return server, base
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit("server did not start")


def tile_path(n: int) -> str:
    from app.transparency.service import tile_index_path

    return tile_index_path(n)


def tile_paths(size: int) -> list[tuple[str, str]]:
    """Full tiles in the middle of the tree (x001/234 at a million leaves)."""
    n0 = min(1234, size // 256 - 1)
    n1 = min(14, size // 65536 - 1)
    paths = [("/healthz", "/healthz"),
             ("hash tile, level 0", f"/log/tile/0/{tile_path(n0)}")]
    if n1 >= 0:
        paths.append(("hash tile, level 1", f"/log/tile/1/{tile_path(n1)}"))
    else:  # under 65,536 leaves there is no full level-1 tile yet
        w = max(1, size >> 8)
        paths.append(("hash tile, level 1 (partial)", f"/log/tile/1/000.p/{w}"))
    paths += [("entry bundle", f"/log/tile/entries/{tile_path(n0)}"),
              ("checkpoint note", "/log/checkpoint"),
              ("inclusion proof",
               f"/api/v1/log/proof/inclusion?index={size // 3}&tree_size={size}"),
              ("consistency proof",
               f"/api/v1/log/proof/consistency?first={size // 3}&second={size}")]
    return paths


def tiles(base: str, size: int, seconds: int, connections: int) -> list:
    rows = []
    for name, path in tile_paths(size):
        first = httpx.get(base + path, timeout=60)
        if first.status_code != 200:  # e.g. a proof over its time budget: wrk counts them
            print(f"{path}: {first.status_code} {first.text[:200]}", flush=True)
        wrk(base + path, 1, connections)  # warm-up
        rows.append((name, path, len(first.content), wrk(base + path, seconds, connections)))
    return rows


def monitor(env: dict, base: str, out: Path, runs: int) -> list[tuple[str, float, str]]:
    state = out / "monitor" / "state.json"
    shutil.rmtree(state.parent, ignore_errors=True)
    done_runs = []
    for label in ("fresh state", "state of the run before")[:runs]:
        t = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "app.cli", "log", "verify", "--url", base,
                               "--state", str(state)], env=env, cwd=ROOT, capture_output=True,
                              text=True, check=False)
        seconds = time.perf_counter() - t
        line = (done.stdout + done.stderr).strip().splitlines()
        done_runs.append((label, seconds,
                          (line[-1] if line else "") + f" (exit {done.returncode})"))
    return done_runs


def profile_entries(engine, base: str, size: int, pages: int, rng: random.Random) -> dict:
    """Where one page of 1000 entries spends its time: the service in-process (query and
    openings), the answer's pydantic model and JSON, the whole request over HTTP, and the
    monitor's own checks of the page."""
    from sqlalchemy import select

    from app.access import openable_events
    from app.auth.principal import ANONYMOUS
    from app.db import open_session
    from app.events.tables import Event
    from app.transparency import merkle, service
    from app.transparency import monitor as mon
    from app.transparency.api import Entries
    from app.transparency.tables import LogLeaf

    starts = [rng.randrange(0, max(1, size - 1000)) for _ in range(pages)]
    got = {"service": [], "model+json": [], "http": [], "client": [], "json.loads": [],
           "sql: leaves join events": [], "sql: openable ids": []}
    with open_session(engine) as s:
        service.entries(s, ANONYMOUS, 0, 1000)
        for st in starts:  # service.entries' two queries, as it runs them
            t = time.perf_counter()
            rows = s.execute(select(LogLeaf, Event).outerjoin(Event, Event.id == LogLeaf.event_id)
                             .where(LogLeaf.idx >= st, LogLeaf.idx < st + 1000)
                             .order_by(LogLeaf.idx)).all()
            got["sql: leaves join events"].append(time.perf_counter() - t)
            ids = [e.id for _, e in rows if e is not None]
            t = time.perf_counter()
            set(s.execute(select(Event.id).where(Event.id.in_(ids),
                                                 openable_events(ANONYMOUS))).scalars())
            got["sql: openable ids"].append(time.perf_counter() - t)
            s.expunge_all()
        for st in starts:
            t = time.perf_counter()
            body = service.entries(s, ANONYMOUS, st, st + 1000)
            got["service"].append(time.perf_counter() - t)
            t = time.perf_counter()
            Entries.model_validate(body).model_dump_json()
            got["model+json"].append(time.perf_counter() - t)
        prof = cProfile.Profile()
        prof.enable()
        for st in starts[:10]:
            Entries.model_validate(service.entries(s, ANONYMOUS, st, st + 1000)).model_dump_json()
        prof.disable()
    raw = []
    with httpx.Client(base_url=base, timeout=60) as c:
        for st in starts:
            t = time.perf_counter()
            r = c.get("/api/v1/log/entries", params={"start": st, "end": st + 1000})
            got["http"].append(time.perf_counter() - t)
            raw.append(r.content)
    for content in raw:
        t = time.perf_counter()
        page = json.loads(content)
        got["json.loads"].append(time.perf_counter() - t)
        tree = merkle.MemoryTree()
        t = time.perf_counter()
        for entry in page["entries"]:
            h = merkle.leaf_hash(entry["leaf"].encode())
            mon._check_entry(entry["index"], entry)
            tree.append(h)
        got["client"].append(time.perf_counter() - t)
    t = time.perf_counter()
    tree = merkle.MemoryTree([b"\0" * 32] * size)
    tree.root()
    got["client tree"] = [time.perf_counter() - t]
    text = io.StringIO()
    pstats.Stats(prof, stream=text).sort_stats("tottime").print_stats(14)
    got["profile"] = text.getvalue()
    got["bytes"] = statistics.mean(len(r) for r in raw)
    return got


# -- appends ----------------------------------------------------------------------------

def set_log(on: bool) -> None:
    from sqlalchemy import event as sa_event
    from sqlalchemy.orm import Session as OrmSession

    from app.transparency import log

    if on:
        log.install()
        return
    for name, fn in (("after_flush", log._collect), ("before_commit", log._append_pending),
                     ("after_rollback", log._forget)):
        if sa_event.contains(OrmSession, name, fn):
            sa_event.remove(OrmSession, name, fn)


def appends(engine, seconds: float, blocks: int) -> dict:
    """Plan writes with the log off and on, in alternating blocks (off first)."""
    from sqlalchemy import func, select

    from app.auth.principal import SYSTEM
    from app.db import open_session, session_scope
    from app.events.tables import Event
    from app.listeners import install_listeners
    from app.plans import service
    from app.plans.schemas import PlanCreate, PlanUpdate, StageIn
    from app.transparency.log import tree_size

    install_listeners()
    stages = [StageIn(name="small", parameter_count=124_000_000, access_level="public_weights",
                      planned_date=datetime(2027, 1, 1).date(), rationale="Small first.",
                      risk_assessment="Low: *spam* at small scale."),
              StageIn(name="large", parameter_count=1_500_000_000, access_level="partners",
                      planned_date=datetime(2027, 6, 1).date(), rationale="Then large.",
                      risk_assessment="Impersonation; watched by partners.")]
    counter = iter(range(10**9))

    def one_pair(lat: list[float]) -> None:
        n = next(counter)
        t = time.perf_counter()
        with session_scope(engine) as s:
            plan = service.file_plan(s, SYSTEM, PlanCreate(
                model="openai/gpt-2", title=f"Bench plan {n}", stages=stages, file=True,
                summary="A staged release, **benchmarked**."))
            pid, version = plan.id, plan.version
        lat.append(time.perf_counter() - t)
        t = time.perf_counter()
        with session_scope(engine) as s:
            service.revise_plan(s, SYSTEM, pid, PlanUpdate(
                version=version, title=f"Bench plan {n}, revised", summary="Revised once."))
        lat.append(time.perf_counter() - t)

    def counts() -> tuple[int, int]:
        with open_session(engine) as s:
            return (s.execute(select(func.max(Event.id))).scalar(), tree_size(s))

    res = {m: {"writes": 0, "events": 0, "leaves": 0, "seconds": 0.0, "lat": []}
           for m in ("off", "on")}
    for mode in ("off", "on"):  # warm-up
        set_log(mode == "on")
        for _ in range(5):
            one_pair([])
    for _ in range(blocks):
        for mode in ("off", "on"):
            set_log(mode == "on")
            e0, l0 = counts()
            r, lat = res[mode], []
            t0 = time.perf_counter()
            while time.perf_counter() - t0 < seconds / blocks:
                one_pair(lat)
            r["seconds"] += time.perf_counter() - t0
            e1, l1 = counts()
            r["writes"] += len(lat)
            r["events"] += e1 - e0
            r["leaves"] += l1 - l0
            r["lat"] += lat
    set_log(True)
    return res


# -- main -------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--leaves", type=int, default=1_000_000)
    ap.add_argument("--database-url", default="", help="default: SQLite under bench/out/")
    ap.add_argument("--fresh", action="store_true", help="rebuild the dataset from scratch")
    ap.add_argument("--batch", type=int, default=50_000, help="events per build transaction")
    ap.add_argument("--seconds", type=int, default=5, help="wrk duration per endpoint")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--samples", type=int, default=2000, help="proofs of each kind")
    ap.add_argument("--proof-seconds", type=float, default=20,
                    help="at most this long for each kind of proof (fewer samples if slow)")
    ap.add_argument("--monitor-runs", type=int, default=1,
                    help="2: a second verify with the first one's state (it re-reads all)")
    ap.add_argument("--write-seconds", type=float, default=20,
                    help="plan writes per mode (log off, log on), in --blocks blocks")
    ap.add_argument("--blocks", type=int, default=5)
    ap.add_argument("--profile-pages", type=int, default=20)
    ap.add_argument("--profile", action="store_true",
                    help="profile the monitor's pages even when it is under 60 s")
    ap.add_argument("--skip", default="", help="comma-separated: proofs,tiles,monitor,append")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk not found: apt-get install -y wrk")
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    env, url, out = prepare(args)
    db = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    from app.db import engine_for, open_session
    from app.transparency.log import tree_size

    before, size, build_s = build(url, args.leaves, args.batch)
    engine = engine_for(url)
    with open_session(engine) as s:
        size = tree_size(s)
    rng = random.Random(62)
    check_tree(engine, size, rng)
    grown = size - before
    print(f"\n{db}: {size:,} leaves; "
          + (f"built {grown:,} in {build_s:.0f} s ({grown / build_s:,.0f} leaves/s, events "
             f"inserted and appended in batches of {args.batch:,})" if grown
             else "reused (no build this run)"), flush=True)

    inproc = (None if "proofs" in skip
              else proofs_inprocess(engine, size, args.samples, args.proof_seconds, rng))
    server, base = serve(env)
    try:
        http = (None if "proofs" in skip
                else proofs_http(base, size, args.samples, args.proof_seconds, rng))
        tile_rows = [] if "tiles" in skip else tiles(base, size, args.seconds, args.connections)
        mon = [] if "monitor" in skip else monitor(env, base, out, args.monitor_runs)
        prof = None
        if args.profile or (mon and mon[0][1] > 60):
            prof = profile_entries(engine, base, size, args.profile_pages, rng)
    finally:
        server.terminate()
        server.wait(30)
    writes = None if "append" in skip else appends(engine, args.write_seconds, args.blocks)

    print(f"\n{db}, {size:,} leaves, 2 cores shared by client and server")
    if inproc:
        print(f"\n[proofs] up to {args.samples} each (at most {args.proof_seconds:g} s a "
              "kind), random indexes / pairs; HTTP: one keep-alive httpx client\n"
              "| proof | n | in-process p50 ms | p99 ms | n | HTTP p50 ms | p99 ms |\n"
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for kind in ("inclusion", "consistency"):
            a, b = ms(inproc[kind]), ms(http[kind])
            print(f"| {kind} | {len(inproc[kind])} | {a[0]:.2f} | {a[1]:.2f} | "
                  f"{len(http[kind])} | {b[0]:.2f} | {b[1]:.2f} |")
        h = ms(http["/healthz"])
        print(f"| /healthz (HTTP baseline) | | | | {len(http['/healthz'])} | {h[0]:.2f} | "
              f"{h[1]:.2f} |")
    if tile_rows:
        healthz = tile_rows[0][3]["rps"]
        print(f"\n[tiles] wrk -t1 -c{args.connections} -d{args.seconds}s\n"
              "| endpoint | bytes | req/s | p50 ms | p99 ms | share of /healthz |\n"
              "| --- | ---: | ---: | ---: | ---: | ---: |")
        for name, path, nbytes, r in tile_rows:
            bad = f" ({r['errors']} errors)" if r["errors"] else ""
            print(f"| {name} `{path}` | {nbytes:,} | {r['rps']:,.0f} | {r['p50']:.2f} | "
                  f"{r['p99']:.2f} | {r['rps'] / healthz:.1%}{bad} |")
    if mon:
        print("\n[monitor] stagegate log verify --url URL --state FILE\n"
              "| run | seconds | leaves/s | result |\n| --- | ---: | ---: | --- |")
        for label, seconds, line in mon:
            print(f"| {label} | {seconds:.1f} | {size / seconds:,.0f} | {line} |")
    if prof:
        pages = size / 1000
        print(f"\n[monitor profile] one page of 1000 entries ({prof['bytes'] / 1e3:.0f} kB), "
              f"{args.profile_pages} random pages; x {pages:,.0f} pages for the whole log\n"
              "| part | p50 ms per page | whole log s |\n| --- | ---: | ---: |")
        for part in ("sql: leaves join events", "sql: openable ids", "service", "model+json",
                     "http", "json.loads", "client"):
            p50 = statistics.median(prof[part]) * 1000
            print(f"| {part} | {p50:.1f} | {p50 * pages / 1000:.1f} |")
        print(f"| client MemoryTree of {size:,} hashes + root | | {prof['client tree'][0]:.1f} |")
        print("\nservice.entries + Entries model + JSON, 10 pages, by own time:")
        print("\n".join(prof["profile"].strip().splitlines()[:30]))
    if writes:
        off, on = writes["off"], writes["on"]
        print(f"\n[append] plan writes (file_plan, revise_plan: one transaction each) via "
              f"app.plans.service, {args.write_seconds:g} s per mode in {args.blocks} "
              "alternating blocks\n"
              "| log | writes | events | leaves | writes/s | events/s | p50 ms | p99 ms |\n"
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for label, r in (("off (listeners removed)", off), ("on", on)):
            p = ms(r["lat"])
            print(f"| {label} | {r['writes']:,} | {r['events']:,} | {r['leaves']:,} | "
                  f"{r['writes'] / r['seconds']:,.1f} | {r['events'] / r['seconds']:,.1f} | "
                  f"{p[0]:.2f} | {p[1]:.2f} |")
        cost_off, cost_on = off["seconds"] / off["writes"], on["seconds"] / on["writes"]
        print(f"log's share of a plan write: {cost_on / cost_off - 1:+.1%} of the write "
              f"without it (mean {cost_off * 1000:.2f} ms -> {cost_on * 1000:.2f} ms); "
              f"p50 {ms(on['lat'])[0] / ms(off['lat'])[0] - 1:+.1%}")


if __name__ == "__main__":
    main()
