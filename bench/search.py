"""Incident search latency at 100k and 1M synthetic incidents, against a LIKE scan.

    .venv/bin/python bench/search.py                 # 100k and 1M (about 10 minutes)
    .venv/bin/python bench/search.py --sizes 100000  # quick
    .venv/bin/python bench/search.py --reuse         # keep already-built databases
    .venv/bin/python bench/search.py --sizes 1000000 --reuse \
        --database-url postgresql://127.0.0.1:5432/sg_search   # PostgreSQL

SQLite: builds a file with the real migrations (bench/out/search-<n>.db), bulk-loads it
(FTS triggers dropped during the load, then an FTS5 'rebuild', then triggers restored).
PostgreSQL: creates the database `<name>_<n>` (dropped first if a load did not finish),
runs the real migrations, COPYs the same rows with triggers off, builds the GIN index
after the load, VACUUM ANALYZE; a marker lab written last lets --reuse skip all that.
Then times the production path, app.incidents.search.search_incidents, as an anonymous
caller: ranking, snippets, total and all facet counts, limit 20; the heap is frozen
after the first search, as the server freezes it after start-up.

Query rows: `1w..3w` draw words uniformly from the vocabulary (mostly rare words);
`1z..3z` draw them from the corpus's own Zipf distribution (what users type: frequent
words dominate); `frequent` cycles through the 10 commonest words. `mix` is all of them.
`list` is the incident list (no query: newest first, total and facets) and `list+lab`
the same filtered by a lab; they are not part of the mix. `est%` is the share of
queries whose total/facets came back flagged as estimates. The baseline is a scan
(SQLite LIKE, PostgreSQL ILIKE over title and summary: count + newest 20).
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg

# Measure this tree's code, not whatever `app` the interpreter would import first.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app import freeze_start_up_heap
from app.auth.principal import ANONYMOUS
from app.db import engine_for, open_session, upgrade
from app.incidents.search import (
    POSTGRESQL_DDL,
    SQLITE_DDL,
    SearchParams,
    search_incidents,
)

VOCAB, WORDS, CHUNK = 20_000, 80, 50_000
SEVERITIES = ("low", "medium", "high", "critical")
KINDS = ("1w", "2w", "3w", "1z", "2z", "3z", "frequent")
HARMS = ("disinformation", "spam", "phishing", "impersonation", "harassment", "bias")


def vocabulary(rng: random.Random) -> list[str]:
    letters, seen = "bcdfghjklmnprstvwz", set()
    while len(seen) < VOCAB:
        n = rng.randint(2, 4)
        seen.add("".join(rng.choice(letters) + rng.choice("aeiou") for _ in range(n)))
    return sorted(seen, key=lambda w: (len(w), w))


def generate(n: int, vocab: list[str]):
    """The synthetic corpus in chunks of (incidents, lab links, model links, harm links);
    the same rows for every backend (fixed seeds)."""
    np_rng = np.random.default_rng(7)
    p = zipf()
    words = np.array(vocab, dtype=object)
    now = datetime.now(UTC).isoformat(" ")
    future = (datetime.now(UTC) + timedelta(days=365)).isoformat(" ")
    for start in range(0, n, CHUNK):
        size = min(CHUNK, n - start)
        idx = np_rng.choice(VOCAB, size=(size, WORDS + 6), p=p)
        status = np_rng.choice(["confirmed", "resolved", "submitted", "triaged"], size=size,
                               p=[0.8, 0.1, 0.05, 0.05])
        embargoed = np_rng.random(size) < 0.05
        ids = range(start + 1, start + size + 1)
        rows, labs, models, harms = [], [], [], []
        for j, iid in enumerate(ids):
            occurred = date(2015, 1, 1) + timedelta(days=int(idx[j, 0] * 7 % 3650))
            harm = HARMS[iid % len(HARMS)]
            rows.append((iid, " ".join(words[idx[j, :6]]), " ".join(words[idx[j, 6:]]),
                         occurred.isoformat(), occurred.year, f'["{harm}"]', "1",
                         SEVERITIES[iid % 4], "[]", "[]", future if embargoed[j] else None,
                         str(status[j]), 1, now, now, ""))
            labs.append((iid, 1 + iid % 10))
            models.append((iid, 1 + iid % 20))
            harms.append((iid, harm))
        yield rows, labs, models, harms


INCIDENT_COLUMNS = ("id, title, summary, occurred, year, harm_types, taxonomy_version, "
                    "severity, stage_ids, checkpoint_ids, embargo_until, status, version, "
                    "created_at, updated_at, search_text")
LABS = [(i, f"lab-{i}", f"Lab {i}") for i in range(1, 11)]
MODELS = [(i, 1 + i % 10, f"m{i}", f"M{i}") for i in range(1, 21)]


def build(path: Path, n: int, vocab: list[str]) -> float:
    path.unlink(missing_ok=True)
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    url = f"sqlite:///{path}"
    upgrade(url)
    engine_for(url).dispose()
    t0 = time.perf_counter()
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    for trig in ("incident_fts_ai", "incident_fts_ad", "incident_fts_au"):
        db.execute(f"DROP TRIGGER {trig}")
    now = datetime.now(UTC).isoformat(" ")
    db.executemany("INSERT INTO lab (id, slug, name, created_at) VALUES (?, ?, ?, ?)",
                   [(*lab, now) for lab in LABS])
    db.executemany("INSERT INTO ai_model (id, lab_id, slug, name, public, version, languages,"
                   " model_details, intended_use, factors, metrics, evaluation_data,"
                   " training_data, quantitative_analyses, ethical_considerations,"
                   " caveats_and_recommendations, created_at, updated_at)"
                   " VALUES (?, ?, ?, ?, 1, 1, '[]', '', '', '', '', '', '', '', '', '', ?, ?)",
                   [(*m, now, now) for m in MODELS])
    for rows, labs, models, harms in generate(n, vocab):
        db.executemany(f"INSERT INTO incident ({INCIDENT_COLUMNS})"
                       " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        db.executemany("INSERT INTO incident_lab VALUES (?, ?)", labs)
        db.executemany("INSERT INTO incident_model VALUES (?, ?)", models)
        db.executemany("INSERT INTO incident_harm VALUES (?, ?)", harms)
        db.commit()
    db.execute("INSERT INTO incident_fts(incident_fts) VALUES ('rebuild')")
    db.execute("INSERT INTO incident_fts(incident_fts) VALUES ('optimize')")
    for statement in SQLITE_DDL[1:]:
        db.execute(statement)
    db.commit()
    db.execute("ANALYZE")
    db.close()
    return time.perf_counter() - t0


# --- PostgreSQL: one database per size, `<name>_<n>`, kept; a marker lab (written last)
# says the load finished, so reruns skip it and an interrupted load starts over.
PG_MARKER = "bench-search-complete"


def pg_url(base: str, n: int) -> str:
    return f"{base.rstrip('/')}_{n}"


def pg_ready(url: str) -> bool:
    try:
        with psycopg.connect(url) as db:
            return bool(db.execute("SELECT 1 FROM lab WHERE slug = %s",
                                   (PG_MARKER,)).fetchone())
    except psycopg.Error:
        return False


def build_pg(url: str, n: int, vocab: list[str]) -> float:
    """Real migrations, then COPY with triggers off (session_replication_role: no
    foreign-key checks, no read-cache bumps per row), the GIN index built after the load."""
    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    upgrade(url)
    engine_for(url).dispose()
    t0 = time.perf_counter()
    now = datetime.now(UTC)
    with psycopg.connect(url) as db:
        db.execute("SET session_replication_role = replica")
        db.execute("SET maintenance_work_mem = '512MB'")
        db.execute("DROP INDEX ix_incident_search_vector")
        with db.cursor().copy("COPY lab (id, slug, name, created_at) FROM STDIN") as cp:
            for lab in LABS:
                cp.write_row((*lab, now))
        db.execute("INSERT INTO ai_model (id, lab_id, slug, name, public, version, languages,"
                   " model_details, intended_use, factors, metrics, evaluation_data,"
                   " training_data, quantitative_analyses, ethical_considerations,"
                   " caveats_and_recommendations, created_at, updated_at)"
                   " SELECT i, 1 + i % 10, 'm' || i, 'M' || i, true, 1, '[]', '', '', '', '',"
                   " '', '', '', '', '', now(), now() FROM generate_series(1, 20) i")
        for rows, labs, models, harms in generate(n, vocab):
            with db.cursor() as cur:
                for table, columns, data in (
                        ("incident", INCIDENT_COLUMNS, rows),
                        ("incident_lab", "incident_id, lab_id", labs),
                        ("incident_model", "incident_id, model_id", models),
                        ("incident_harm", "incident_id, harm_type", harms)):
                    with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as cp:
                        for row in data:
                            cp.write_row(row)
            db.commit()
        db.execute("SELECT setval(pg_get_serial_sequence('incident', 'id'), %s)", (n,))
        db.execute(POSTGRESQL_DDL[1])
        db.commit()
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("VACUUM ANALYZE")
        db.execute("INSERT INTO lab (id, slug, name, created_at) VALUES (999, %s, %s, now())",
                   (PG_MARKER, "bench marker"))
    return time.perf_counter() - t0


def timed(fn, reps) -> list[float]:
    out = []
    for args in reps:
        t0 = time.perf_counter()
        fn(*args)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def zipf() -> np.ndarray:
    p = 1.0 / np.arange(1, VOCAB + 1)
    return p / p.sum()


def run(n: int, out: Path, queries: int, vocab: list[str], reuse: bool,
        database_url: str | None) -> dict:
    if database_url:
        url = pg_url(database_url, n)
        build_s = 0.0 if reuse and pg_ready(url) else build_pg(url, n, vocab)
        with psycopg.connect(url) as db:
            size_mb = db.execute("SELECT pg_database_size(current_database())").fetchone()[0] / 1e6
        scan = ("SELECT count(*) FROM incident WHERE title ILIKE %s OR summary ILIKE %s",
                "SELECT id FROM incident WHERE title ILIKE %s OR summary ILIKE %s "
                "ORDER BY occurred DESC LIMIT 20")
    else:
        path = out / f"search-{n}.db"
        build_s = 0.0 if reuse and path.exists() else build(path, n, vocab)
        size_mb = sum(f.stat().st_size for f in out.glob(f"search-{n}.db*")) / 1e6
        url = f"sqlite:///{path}"
        scan = ("SELECT count(*) FROM incident WHERE title LIKE ? OR summary LIKE ?",
                "SELECT id FROM incident WHERE title LIKE ? OR summary LIKE ? "
                "ORDER BY occurred DESC LIMIT 20")
    engine = engine_for(url)
    rng = random.Random(n)
    session = open_session(engine)

    estimates = []

    def search(q, **filters):
        r = search_incidents(session, ANONYMOUS, SearchParams(q=q, limit=20, **filters))
        estimates.append(r.total_is_estimate)

    def like(word):
        pattern = f"%{word}%"
        for statement in scan:
            session.connection().exec_driver_sql(statement, (pattern, pattern)).fetchall()

    result = {"n": n, "build_s": build_s, "size_mb": size_mb}
    search(vocab[500])  # warm the page cache
    freeze_start_up_heap()  # as the server does once start-up is done
    np_rng = np.random.default_rng(n)
    p = zipf()
    for k in (1, 2, 3):
        qs = [(" ".join(rng.choice(vocab) for _ in range(k)),) for _ in range(queries)]
        estimates.clear()
        result[f"{k}w"] = timed(search, qs)
        result[f"{k}w_est"] = sum(estimates) / len(estimates)
        qs = [(" ".join(vocab[i] for i in np_rng.choice(VOCAB, size=k, p=p)),)
              for _ in range(queries)]
        estimates.clear()
        result[f"{k}z"] = timed(search, qs)
        result[f"{k}z_est"] = sum(estimates) / len(estimates)
    estimates.clear()
    result["frequent"] = timed(search, [(vocab[i % 10],) for i in range(max(10, queries // 2))])
    result["frequent_est"] = sum(estimates) / len(estimates)
    # The incident list (no query: newest first, exact facets), plain and filtered.
    estimates.clear()
    result["list"] = timed(lambda: search(None), [()] * 20)
    result["list_est"] = sum(estimates) / len(estimates)
    estimates.clear()
    result["list+lab"] = timed(lambda lab: search(None, lab=lab),
                               [(f"lab-{1 + i % 10}",) for i in range(20)])
    result["list+lab_est"] = sum(estimates) / len(estimates)
    result["like"] = timed(like, [(rng.choice(vocab),) for _ in range(10)])
    session.close()
    engine.dispose()
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--out", type=Path, default=Path("bench/out"))
    ap.add_argument("--reuse", action="store_true", help="keep already-built databases")
    ap.add_argument("--database-url", help="postgresql://host:port/name: PostgreSQL, one "
                    "database per size named <name>_<n>, kept for --reuse")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    vocab = vocabulary(random.Random(1))
    # Zipf rank 1 is vocab[0]: reorder so rank order is random with respect to spelling.
    random.Random(2).shuffle(vocab)
    results = [run(n, args.out, args.queries, vocab, args.reuse, args.database_url)
               for n in args.sizes]
    print(f"{'n':>9} {'build s':>8} {'MB':>6} {'query':>9} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'max ms':>8} {'LIKE p50/p50':>12} {'est%':>5}")
    for r in results:
        like50 = statistics.median(r["like"])
        print(f"{r['n']:>9} {r['build_s']:>8.0f} {r['size_mb']:>6.0f} {'LIKE scan':>9} "
              f"{like50:>8.1f} {pct(r['like'], .99):>8.1f} {max(r['like']):>8.1f}")
        for kind in KINDS:
            xs = r[kind]
            print(f"{'':>9} {'':>8} {'':>6} {kind:>9} {pct(xs, .5):>8.1f} "
                  f"{pct(xs, .99):>8.1f} {max(xs):>8.1f} {like50 / pct(xs, .5):>11.0f}x"
                  f" {100 * r[kind + '_est']:>4.0f}%")
        for kind in ("list", "list+lab"):
            xs = r[kind]
            print(f"{'':>9} {'':>8} {'':>6} {kind:>9} {pct(xs, .5):>8.1f} "
                  f"{pct(xs, .99):>8.1f} {max(xs):>8.1f} {'':>12} {100 * r[kind + '_est']:>4.0f}%")
        mix = [x for kind in KINDS for x in r[kind]]
        print(f"{'':>9} {'':>8} {'':>6} {'mix':>9} {pct(mix, .5):>8.1f} {pct(mix, .99):>8.1f} "
              f"{max(mix):>8.1f} {like50 / pct(mix, .5):>11.0f}x")
    if len(results) == 2:
        a, b = results
        for kind in (*KINDS, "like"):
            print(f"growth {a['n']}->{b['n']} {kind}: p50 x{pct(b[kind], .5) / pct(a[kind], .5):.1f}"
                  f", p99 x{pct(b[kind], .99) / pct(a[kind], .99):.1f}")


if __name__ == "__main__":
    main()
