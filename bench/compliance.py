"""Compliance latency at scale: a plan's verdicts under every shipped policy, and the cost
of recomputing after one new evaluation result.

    .venv/bin/python bench/compliance.py                          # 10k plans, 1M results
    .venv/bin/python bench/compliance.py --plans 2000 --results 200000   # quick
    .venv/bin/python bench/compliance.py --reuse                  # keep a built database

Builds a SQLite file with the real migrations (bench/out/compliance-<plans>-<results>.db)
and bulk-loads it: one model per plan, four stages each naming a hosted checkpoint, the
results spread evenly over the models' checkpoints and the three registry suites (plus
older suite versions and reported rows), one agreement per ten plans, one open incident
per hundred models. Every plan follows all three shipped policies.

Times, in one process, the production paths (wall clock, and for compliance also the
thread's CPU time, which excludes waiting for a core on a shared machine):
- `compliance`: app.norms.service.plan_compliance for random plans (anonymous reader),
  against `read_plan` (the plan's own JSON) as the in-process baseline;
- `recompute`: committing one new measured result through the ORM, which lets the
  recompute listener re-judge exactly the plans of that model and record changed
  verdicts; against committing the same kind of row with the listener's work skipped.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from app.auth.principal import ANONYMOUS
from app.db import engine_for, open_session, upgrade
from app.evals.tables import EvalResult
from app.listeners import install_listeners
from app.norms.gate import policies_for
from app.norms.service import plan_compliance
from app.plans.service import read_plan
from app.plans.tables import ReleasePlan
from app.settings import Settings, configure

POLICIES = '["gpt2-2019", "pai-publication-norms", "capability-thresholds"]'
SUITES = ("perplexity", "detectability", "bias_association")
CHUNK = 100_000
RISK = "Spam and impersonation at scale; access limited at first, misuse reports reviewed."


def build(path: Path, plans: int, results: int) -> None:
    t0 = time.perf_counter()
    upgrade(f"sqlite:///{path}")
    engine_for(f"sqlite:///{path}").dispose()
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    now = datetime.now(UTC)
    ts = now.isoformat(" ")
    db.executemany("INSERT INTO lab (id, slug, name, created_at) VALUES (?, ?, ?, ?)",
                   [(i, f"lab-{i}", f"Lab {i}", ts) for i in range(1, 21)])
    card = "A sufficiently long model card section for the benchmark."
    db.executemany("INSERT INTO ai_model (id, lab_id, slug, name, public, version, languages,"
                   " model_details, intended_use, factors, metrics, evaluation_data,"
                   " training_data, quantitative_analyses, ethical_considerations,"
                   " caveats_and_recommendations, created_at, updated_at)"
                   " VALUES (?, ?, ?, ?, 1, 1, '[]', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   [(i, 1 + i % 20, f"m{i}", f"M{i}", *([card] * 9), ts, ts)
                    for i in range(1, plans + 1)])
    db.executemany("INSERT INTO release_plan (id, model_id, lab_id, title, summary, status,"
                   " version, created_at, updated_at, filed_at, policies)"
                   " VALUES (?, ?, ?, ?, '', 'filed', 1, ?, ?, ?, ?)",
                   [(i, i, 1 + i % 20, f"Plan {i}", ts, ts, ts, POLICIES)
                    for i in range(1, plans + 1)])
    access = ("partners", "researchers", "api", "public_weights")
    stages, ckpts = [], []
    for i in range(1, plans + 1):
        for pos in range(1, 5):
            sid = (i - 1) * 4 + pos
            planned = (now + timedelta(days=90 * pos)).date().isoformat()
            stages.append((sid, i, pos, f"s{pos}", 10 ** (8 + pos // 2), f"c{pos}", planned,
                           access[pos - 1], '["weights", "model_card"]', "Why.", RISK,
                           "planned"))
            ckpts.append((sid, i, 1 + i % 20, f"c{pos}", "public", "[]", "0" * 64, 1, 1000,
                          ts))
    db.executemany("INSERT INTO stage (id, plan_id, position, name, parameter_count,"
                   " checkpoint_ref, planned_date, access_level, artifacts, rationale,"
                   " risk_assessment, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   stages)
    db.executemany("INSERT INTO checkpoint (id, model_id, lab_id, name, access_level, manifest,"
                   " manifest_digest, total_bytes, parameter_count, created_at)"
                   " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", ckpts)
    rng = random.Random(7)
    metrics = json.dumps({"bits_per_byte": 2.1, "tfidf_auroc_topk40": 0.97,
                          "mean_association": 0.3})
    for start in range(0, results, CHUNK):
        rows = []
        for n in range(start, min(results, start + CHUNK)):
            model = 1 + n % plans
            ckpt = (model - 1) * 4 + 1 + (n // plans) % 4
            suite = SUITES[n % 3]
            kind = rng.random()
            source, version = ("reported", 1) if kind < 0.1 else ("measured",
                                                                  0 if kind < 0.3 else 1)
            at = (now - timedelta(days=rng.randint(0, 400))).isoformat(" ")
            rows.append((n + 1, f"k{n}", source, model, ckpt, suite, version, "{}", "c" * 64,
                         "{}", metrics, "{}", "{}", at))
        db.executemany("INSERT INTO eval_result (id, result_key, source, model_id,"
                       " checkpoint_id, suite_id, suite_version, config, config_digest,"
                       " library_versions, metrics, details, origin, created_at)"
                       " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        db.commit()
    starts, ends = (now - timedelta(days=90)).isoformat(" "), (now + timedelta(days=365))
    agreements = [(a, 1 + a % 20, f"A{a}", "research_access", "active", "", 0, 0, starts,
                   ends.isoformat(" "), 1, ts, ts, starts) for a in range(1, plans // 10 + 1)]
    db.executemany("INSERT INTO disclosure_agreement (id, lab_id, title, kind, status, terms,"
                   " non_commercial, terms_private, starts_at, ends_at, version, created_at,"
                   " updated_at, activated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   agreements)
    db.executemany("INSERT INTO agreement_scope (agreement_id, model_id) VALUES (?, ?)",
                   [(a[0], a[0] * 10) for a in agreements])
    for lab in (2, 3):
        db.executemany("INSERT INTO agreement_party (agreement_id, lab_id) VALUES (?, ?)",
                       [(a[0], lab) for a in agreements])
        db.executemany("INSERT INTO agreement_signature (agreement_id, lab_id, signer, signed_at)"
                       " VALUES (?, ?, 'x', ?)", [(a[0], lab, starts) for a in agreements])
    incidents = [(i, f"I{i}", "", "2026-01-01", 2026, '["spam"]', "1", "high", "[]", "[]",
                  "triaged", 1, ts, ts, "") for i in range(1, plans // 100 + 1)]
    db.executemany("INSERT INTO incident (id, title, summary, occurred, year, harm_types,"
                   " taxonomy_version, severity, stage_ids, checkpoint_ids, status, version,"
                   " created_at, updated_at, search_text)"
                   " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", incidents)
    db.executemany("INSERT INTO incident_model VALUES (?, ?)",
                   [(i[0], i[0] * 100) for i in incidents])
    db.commit()
    db.execute("ANALYZE")
    db.close()
    print(f"built {plans:,} plans, {results:,} results in {time.perf_counter() - t0:.0f} s")


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def fmt(name: str, xs: list[float]) -> str:
    ms = [x * 1000 for x in xs]
    return (f"{name:<34} n={len(ms):<5} p50 {statistics.median(ms):7.2f} ms   "
            f"p99 {pct(ms, 0.99):7.2f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--plans", type=int, default=10_000)
    ap.add_argument("--results", type=int, default=1_000_000)
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--reuse", action="store_true")
    args = ap.parse_args()
    out = Path(__file__).resolve().parent / "out"
    out.mkdir(exist_ok=True)
    path = out / f"compliance-{args.plans}-{args.results}.db"
    if not (args.reuse and path.exists()):
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        build(path, args.plans, args.results)
    url = f"sqlite:///{path}"
    configure(Settings(data_dir=out / "data", database_url=url, inprocess_worker=False))
    install_listeners()  # this script is its process's entry point: recompute on commit
    engine = engine_for(url)
    rng = random.Random(1)
    ids = [rng.randint(1, args.plans) for _ in range(args.samples)]
    baseline, timings, cpu, verdicts = [], [], [], {}
    with open_session(engine, write=False) as s:
        for pid in ids[:50]:  # warm caches and the policy loader
            plan_compliance(s, ANONYMOUS, pid)
        for pid in ids:
            t = time.perf_counter()
            read_plan(s, s.get(ReleasePlan, pid))
            baseline.append(time.perf_counter() - t)
            s.expunge_all()
            t, c = time.perf_counter(), time.thread_time()
            body = plan_compliance(s, ANONYMOUS, pid)
            timings.append(time.perf_counter() - t)
            cpu.append(time.thread_time() - c)
            verdicts[body.verdict] = verdicts.get(body.verdict, 0) + 1
            s.expunge_all()
        rules = sum(len(p.rules) for p in policies_for(["gpt2-2019", "pai-publication-norms",
                                                        "capability-thresholds"]))
    print(f"{args.plans:,} plans, {args.results:,} results; {rules} rules x 4 stages per "
          f"plan; plan verdicts {verdicts}")
    print(fmt("read_plan (baseline)", baseline))
    print(fmt("plan_compliance (all policies)", timings))
    # CPU time of this thread: what the read costs without waiting for a core (the
    # machine the figures in the README came from was shared by many processes).
    print(fmt("plan_compliance, CPU time only", cpu))
    print(f"compliance / read_plan p50 ratio: "
          f"{statistics.median(timings) / statistics.median(baseline):.1f}x")

    # Recompute: one new measured result; the listener re-judges the plans of its model.
    from app.norms import recompute

    cpu_plain: list[float] = []
    cpu_recomputed: list[float] = []

    def commit_one(n: int, model: int, skip: bool) -> float:
        with open_session(engine) as s:
            s.add(EvalResult(result_key=f"bench-{tag}-{n}-{skip}", source="measured",
                             model_id=model, checkpoint_id=(model - 1) * 4 + 1,
                             suite_id="perplexity", suite_version=1, config_digest="c" * 64,
                             metrics={"bits_per_byte": 2.0}))
            if skip:
                s.info["norms_syncing"] = True  # as if nothing listened
            t, c = time.perf_counter(), time.thread_time()
            s.commit()
            (cpu_plain if skip else cpu_recomputed).append(time.thread_time() - c)
            return time.perf_counter() - t

    touched = recompute.affected_plans
    with open_session(engine, write=False) as s:
        count = len(touched(s, {("model", ids[0])}))
    plain, recomputed, tag = [], [], time.time_ns()  # unique keys on --reuse
    for n, model in enumerate(ids[:200]):
        # The first recompute of a bulk-loaded plan records all its verdicts (nothing was
        # stored yet); time the steady state, where one result changes few or none.
        commit_one(-1 - n, model, False)
        cpu_recomputed.pop()
        plain.append(commit_one(n, model, True))
        recomputed.append(commit_one(n, model, False))
    print(f"one new result touches {count} of {args.plans:,} plans")
    print(fmt("commit result, no listener", plain))
    print(fmt("commit result + recompute", recomputed))
    print(fmt("commit, no listener, CPU time", cpu_plain))
    print(fmt("commit + recompute, CPU time", cpu_recomputed))


if __name__ == "__main__":
    main()
