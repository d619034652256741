"""Every public read endpoint (API, pages, feeds) against GET /healthz, with the read cache off and on, per database.

    .venv/bin/python bench/api.py                          # SQLite, issue 10's dataset size
    .venv/bin/python bench/api.py --scale 0.1 --seconds 3  # a tenth of it, quicker
    .venv/bin/python bench/api.py --database-url postgresql://127.0.0.1:5432/sg_bench

The dataset (at --scale 1: 200 labs, 2,000 models, 10,000 checkpoints with 3 measured
results each, 50,000 incidents, 500,000 events, on top of the GPT-2 demo without models)
is built once with bulk inserts and kept: the SQLite file and data folder under
bench/out/api-<scale>/; on PostgreSQL a marker lab says the database already holds it.
Two server processes then serve the same database, one with STAGEGATE_READ_CACHE=0
(baseline: every read goes to the database) and one with the cache on (candidate); wrk
(1 thread) loads each endpoint for --seconds in turn, /healthz first, and the table shows
req/s, p50/p99 and each endpoint's share of the same server's /healthz.
Needs `wrk` (Debian package).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SIZES = {"labs": 200, "models": 2_000, "checkpoints": 10_000, "incidents": 50_000,
         "events": 500_000}
MARKER = "bench-lab-00000"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Extra request headers for every wrk run (--gzip adds Accept-Encoding: gzip, as browsers,
# curl --compressed, requests and httpx send).
WRK_HEADERS: list[str] = []


def wrk(url: str, seconds: int, connections: int) -> dict:
    headers = [arg for h in WRK_HEADERS for arg in ("-H", h)]
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency",
                          *headers, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)

    def pct(p: str) -> float:
        value, unit = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(non2xx.group(1)) if non2xx else 0) + \
        (sum(int(g) for g in sock.groups()) if sock else 0)
    return {"rps": rps, "p50": pct("50"), "p99": pct("99"), "errors": errors}


def _chunks(rows, size=5_000):
    for i in range(0, len(rows), size):
        yield rows[i:i + size]


def load(url: str, scale: float) -> float:
    """Bulk-insert the synthetic registry (Core executemany, one transaction per table)."""
    from sqlalchemy import insert, select

    from app.checkpoints.tables import Checkpoint
    from app.db import engine_for
    from app.evals.tables import EvalResult, EvalRun
    from app.events.tables import Event
    from app.incidents.tables import Incident, IncidentLab, IncidentModel
    from app.labs.tables import Lab
    from app.models.tables import AIModel

    n = {k: max(1, int(v * scale)) for k, v in SIZES.items()}
    engine = engine_for(url)
    rng = random.Random(10)
    now = datetime.now(UTC)
    t0 = time.perf_counter()
    text = ("The model was evaluated on held-out data; results are reported per checkpoint. "
            "Detection accuracy of synthetic text fell as size grew. ") * 4

    def put(table, rows):
        with engine.begin() as conn:
            for chunk in _chunks(rows):
                conn.execute(insert(table.__table__), chunk)

    with engine.connect() as conn:
        base_lab = conn.execute(select(Lab.id).order_by(Lab.id.desc())).scalar() or 0
        base_model = conn.execute(select(AIModel.id).order_by(AIModel.id.desc())).scalar() or 0
        base_ck = conn.execute(select(Checkpoint.id).order_by(Checkpoint.id.desc())).scalar() or 0
        base_res = conn.execute(select(EvalResult.id).order_by(EvalResult.id.desc())).scalar() or 0
        base_run = conn.execute(select(EvalRun.id).order_by(EvalRun.id.desc())).scalar() or 0
        base_inc = conn.execute(select(Incident.id).order_by(Incident.id.desc())).scalar() or 0
    labs = [dict(id=base_lab + i + 1, slug=f"bench-lab-{i:05d}", name=f"Bench lab {i}",
                 url=None, created_at=now) for i in range(n["labs"])]
    put(Lab, labs)
    models = []
    for i in range(n["models"]):
        m = dict(id=base_model + i + 1, lab_id=labs[i % len(labs)]["id"], slug=f"model-{i}",
                 name=f"Bench model {i}", public=(i % 10 != 9), version=1, licence="mit",
                 architecture="GPT2LMHeadModel", parameter_count=124_000_000 * (1 + i % 4),
                 languages=["en"], created_at=now, updated_at=now)
        for section in ("model_details", "intended_use", "factors", "metrics",
                        "evaluation_data", "training_data", "quantitative_analyses",
                        "ethical_considerations", "caveats_and_recommendations"):
            m[section] = f"## {section}\n\n*Bench* model {i}. " + text
        models.append(m)
    put(AIModel, models)
    cks, runs, results = [], [], []
    for i in range(n["checkpoints"]):
        model = models[i % len(models)]
        ck_id = base_ck + i + 1
        cks.append(dict(id=ck_id, model_id=model["id"], lab_id=model["lab_id"],
                        name=f"step-{i // len(models)}", access_level="public",
                        manifest=[{"name": "model.safetensors", "sha256": "0" * 64,
                                   "size": 1000}],
                        manifest_digest=f"{i:064x}", total_bytes=1000,
                        parameter_count=model["parameter_count"],
                        architecture="GPT2LMHeadModel", model_type="gpt2", created_at=now))
        for j, suite in enumerate(("perplexity", "detectability", "toxicity")):
            rid = base_res + 3 * i + j + 1
            run_id = base_run + 3 * i + j + 1
            results.append(dict(
                id=rid, result_key=f"bench-{rid}", source="measured", model_id=model["id"],
                checkpoint_id=ck_id, run_id=run_id, manifest_digest=f"{i:064x}",
                suite_id=suite, suite_version=1, config={"split": "test"},
                config_digest="1" * 64, dataset_name="bench", dataset_digest="2" * 64,
                seed=0, code_version="bench", library_versions={"torch": "2"},
                device="cpu", dtype="float32", duration_s=1.0, tokens_processed=1000,
                metrics={"score": rng.random()}, details={}, origin={}, created_at=now))
            runs.append(dict(id=run_id, checkpoint_id=ck_id, model_id=model["id"],
                             suite_id=suite, suite_version=1, seed=0, status="succeeded",
                             progress=1.0, attempts=1, reason="upload", result_id=rid,
                             created_at=now, started_at=now, finished_at=now))
    put(Checkpoint, cks)
    put(EvalResult, results)
    put(EvalRun, runs)
    incidents, inc_labs, inc_models = [], [], []
    for i in range(n["incidents"]):
        model = models[rng.randrange(len(models))]
        status = rng.choice(("confirmed", "resolved", "confirmed", "submitted", "triaged"))
        embargo = now + timedelta(days=30) if i % 20 == 0 else None
        iid = base_inc + i + 1
        incidents.append(dict(
            id=iid, title=f"Incident {i}: model misuse for spam", summary=text,
            occurred=date(2019 + i % 6, 1 + i % 12, 1), year=2019 + i % 6,
            harm_types=["spam"], taxonomy_version="1", severity=("low", "medium", "high")[i % 3],
            stage_ids=[], checkpoint_ids=[], embargo_until=embargo, status=status,
            version=1, created_at=now, updated_at=now, search_text="model spam misuse"))
        inc_labs.append(dict(incident_id=iid, lab_id=model["lab_id"]))
        inc_models.append(dict(incident_id=iid, model_id=model["id"]))
    put(Incident, incidents)
    put(IncidentLab, inc_labs)
    put(IncidentModel, inc_models)
    events = []
    for i in range(n["events"]):
        kind = i % 3
        if kind == 0:
            m = models[i % len(models)]
            ent, eid, lab = "model", str(m["id"]), m["lab_id"]
        elif kind == 1:
            c = cks[i % len(cks)]
            ent, eid, lab = "checkpoint", str(c["id"]), c["lab_id"]
        else:
            r = runs[i % len(runs)]
            ent, eid, lab = "eval_run", str(r["id"]), labs[0]["id"]
        events.append(dict(at=now - timedelta(seconds=n["events"] - i), actor="bench",
                           entity_type=ent, entity_id=eid, action="created", digest="3" * 64,
                           lab_id=lab, visibility="public", visible_from=None, data={}))
    put(Event, events)
    if engine.dialect.name == "postgresql":
        # Autovacuum would analyze the bulk-loaded tables within a minute or so; doing it
        # now makes the first measurement see the plans a running registry gets.
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    engine.dispose()
    return time.perf_counter() - t0


def prepare(args) -> tuple[dict, str]:
    """The environment of a server on the benchmark dataset, built on first use."""
    out = ROOT / "bench" / "out" / f"api-{args.scale:g}"
    env = os.environ | {"PYTHONPATH": str(ROOT), "STAGEGATE_INPROCESS_WORKER": "0",
                        "STAGEGATE_DATA_DIR": str(out)}
    url = args.database_url or f"sqlite:///{out / 'stagegate.db'}"
    env["STAGEGATE_DATABASE_URL"] = url
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import SQLAlchemyError
    try:
        probe = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
        with probe.connect() as conn:
            have = conn.execute(text("SELECT count(*) FROM lab WHERE slug = :s"),
                                {"s": MARKER}).scalar()
        probe.dispose()
    except SQLAlchemyError:
        have = 0
    if not have:
        print(f"building the dataset (scale {args.scale:g}) ...", flush=True)
        cli = [sys.executable, "-m", "app.cli"]
        subprocess.run([*cli, "demo", "--no-models"], env=env, cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
        os.environ["STAGEGATE_DATABASE_URL"] = url
        seconds = load(url, args.scale)
        print(f"built in {seconds:.0f} s", flush=True)
    return env, url


def endpoints(base: str) -> list[tuple[str, str]]:
    get = lambda path: httpx.get(base + path, timeout=120).json()  # noqa: E731
    plan = get("/api/v1/plans")["items"][0]["id"]
    model = None
    for item in get("/api/v1/models?limit=200")["items"]:
        if item.get("slug", "").startswith("model-"):
            model, ref = item["id"], f"{item['lab']}/{item['slug']}"
            break
    incident = get("/api/v1/incidents")["items"][0]["incident"]["id"]
    agreement = get("/api/v1/agreements")["items"][0]["id"]
    return [("/healthz", "/healthz"),
            ("plans list", "/api/v1/plans"), ("plan detail", f"/api/v1/plans/{plan}"),
            ("models list", "/api/v1/models"), ("model detail", f"/api/v1/models/{model}"),
            ("model card JSON", f"/api/v1/models/{model}/card"),
            ("model card.md", f"/api/v1/models/{model}/card.md"),
            ("events page", "/api/v1/events"),
            ("eval runs page", "/api/v1/evals/runs"),
            ("eval results page", "/api/v1/evals/results?limit=50"),
            ("incidents list", "/api/v1/incidents"),
            ("incident detail", f"/api/v1/incidents/{incident}"),
            ("incident search", "/api/v1/incidents/search?q=model"),
            ("incident export", "/api/v1/incidents/export"),
            ("agreements list", "/api/v1/agreements"),
            # The public pages and feeds (HTML and Atom), as a browser without a sign-in.
            ("home page", "/"), ("models page", "/models"),
            ("model card page", f"/models/{ref}"), ("plan page", f"/plans/{plan}"),
            ("incidents page", "/incidents"), ("incident page", f"/incidents/{incident}"),
            ("lab page", f"/labs/{ref.split('/')[0]}"),
            ("agreement page", f"/agreements/{agreement}"), ("policies page", "/policies"),
            ("incidents feed", "/feeds/incidents.atom"),
            ("releases feed", "/feeds/releases.atom")]


def serve(env: dict, cache: bool) -> tuple[subprocess.Popen, str]:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
        env=env | {"STAGEGATE_READ_CACHE": "1" if cache else "0"}, cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            httpx.get(f"{base}/healthz")
            return server, base
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit("server did not start")


def wanted(args, name: str, path: str) -> bool:
    """--only: comma-separated parts of endpoint names or paths; /healthz always runs
    (the shares are against it)."""
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    return path == "/healthz" or not parts or any(p in name or p in path for p in parts)


def measure(env: dict, cache: bool, args) -> list[tuple[str, str, dict]]:
    server, base = serve(env, cache)
    try:
        rows = []
        for name, path in endpoints(base):
            if not wanted(args, name, path):
                continue
            first = httpx.get(base + path, timeout=120)
            assert first.status_code == 200, (path, first.status_code, first.text[:500])
            wrk(base + path, 1, args.connections)  # warm-up (and the cache's first fill)
            rows.append((name, path, wrk(base + path, args.seconds, args.connections)))
        if wanted(args, "incident export", "/api/v1/incidents/export"):
            rows.append(full_export(base))
        return rows
    finally:
        server.terminate()
        server.wait(10)


def full_export(base: str) -> tuple[str, str, dict]:
    """One client fetching the whole export page by page, as `stagegate incident export`
    does (10,000 a page, following Link: rel=next): seconds for everything, not a rate."""
    start, path, pages, size = time.perf_counter(), "/api/v1/incidents/export?limit=10000", 0, 0
    with httpx.Client(base_url=base, timeout=300) as client:
        while path:
            response = client.get(path)
            pages, size = pages + 1, size + len(response.content)
            path = response.links.get("next", {}).get("url")
    return ("whole export", "", {"seconds": time.perf_counter() - start, "pages": pages,
                                 "mb": size / 1e6})


def _eval_model(root: Path) -> Path:
    """A small real GPT-2 (6 layers, 384 wide, ~12M parameters) built from a config: big
    enough that evaluating it keeps torch busy, built once and kept under bench/out/."""
    out = root / "eval-gpt2"
    if (out / "config.json").exists():
        return out
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    from app.evals.corpus import demo_corpus

    eot = "<|endoftext|>"
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(demo_corpus().texts, vocab_size=2000, special_tokens=[eot],
                            show_progress=False)
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, bos_token=eot,
                                  eos_token=eot, unk_token=eot, model_max_length=256)
    cfg = GPT2Config(vocab_size=len(tok), n_positions=256, n_layer=6, n_head=6, n_embd=384,
                     bos_token_id=tok.convert_tokens_to_ids(eot),
                     eos_token_id=tok.convert_tokens_to_ids(eot))
    GPT2LMHeadModel(cfg).save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    return out


def eval_phase(args, yield_: bool) -> dict:
    """p99 of public reads while the in-process worker evaluates, against the same server idle."""
    root = ROOT / "bench" / "out"
    data = root / "api-eval"
    shutil.rmtree(data, ignore_errors=True)
    env = os.environ | {"PYTHONPATH": str(ROOT), "STAGEGATE_INPROCESS_WORKER": "1",
                        "STAGEGATE_WORKER_YIELD": "1" if yield_ else "0",
                        "STAGEGATE_DATA_DIR": str(data),
                        "STAGEGATE_DATABASE_URL": f"sqlite:///{data / 'stagegate.db'}"}
    cli = [sys.executable, "-m", "app.cli"]
    subprocess.run([*cli, "demo", "--no-models"], env=env, cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    model_dir = _eval_model(root)
    server, base = serve(env, True)
    try:
        model = httpx.get(f"{base}/api/v1/models").json()["items"][0]
        subprocess.run([*cli, "user", "create", "bench-uploader", "--lab", model["lab"]],
                       env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        token = subprocess.run([*cli, "token", "create", "--user", "bench-uploader"], env=env,
                               cwd=ROOT, check=True, capture_output=True,
                               text=True).stdout.strip().splitlines()[-1]
        plan = httpx.get(f"{base}/api/v1/plans").json()["items"][0]["id"]
        paths = ["/healthz", f"/api/v1/plans/{plan}", f"/api/v1/models/{model['id']}/card",
                 "/api/v1/evals/results?limit=50"]
        idle = {p: wrk(base + p, args.seconds, args.connections) for p in paths}
        files = [("files", (f.name, f.read_bytes(), "application/octet-stream"))
                 for f in sorted(model_dir.iterdir()) if f.is_file()]
        for i in range(4):
            r = httpx.post(f"{base}/api/v1/checkpoints", files=files, timeout=120,
                           headers={"Authorization": f"Bearer {token}"},
                           data={"model": f"{model['lab']}/{model['slug']}",
                                 "name": f"bench-{i}", "access_level": "public"})
            assert r.status_code == 201, r.text[:500]

        def active() -> int:
            runs = httpx.get(f"{base}/api/v1/evals/runs?limit=200", timeout=60).json()["items"]
            return sum(run["status"] == "running" for run in runs)

        for _ in range(600):
            if active():
                break
            time.sleep(0.2)
        busy = {p: wrk(base + p, args.seconds, args.connections) for p in paths}
        still = active()
    finally:
        server.terminate()
        server.wait(30)
    return {"paths": paths, "idle": idle, "busy": busy, "still": still}


def print_eval(args, label: str, r: dict) -> None:
    print(f"\n[{label}] during an evaluation (in-process worker, SQLite, wrk -t1 "
          f"-c{args.connections} -d{args.seconds}s; a run was "
          f"{'still' if r['still'] else 'NO LONGER'} running at the end)")
    print("| endpoint | idle req/s | idle p99 ms | busy req/s | busy p99 ms | p99 busy/idle |"
          "\n| --- | ---: | ---: | ---: | ---: | ---: |")
    for p in r["paths"]:
        a, b = r["idle"][p], r["busy"][p]
        print(f"| `{p}` | {a['rps']:,.0f} | {a['p99']:.1f} | {b['rps']:,.0f} | {b['p99']:.1f} | "
              f"{b['p99'] / a['p99']:.1f}x |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--scale", type=float, default=1.0,
                        help="dataset size as a share of issue 10's (1.0: 500k events)")
    parser.add_argument("--database-url", default="", help="default: SQLite under bench/out/")
    parser.add_argument("--no-baseline", action="store_true", help="cache on only")
    parser.add_argument("--cache", choices=("both", "off", "on"), default="both",
                        help="which servers to measure (off: every read misses the cache; "
                             "with --connections 1, p50 is one uncached read's latency)")
    parser.add_argument("--only", default="",
                        help="comma-separated parts of endpoint names or paths, e.g. events,card")
    parser.add_argument("--gzip", action="store_true",
                        help="send Accept-Encoding: gzip (cached answers over 1 KB come "
                             "compressed)")
    parser.add_argument("--during-eval", action="store_true",
                        help="only: p99 of public reads while the in-process worker evaluates")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk not found: apt-get install -y wrk")
    if args.gzip:
        WRK_HEADERS.append("Accept-Encoding: gzip")
    if args.during_eval:
        baseline = eval_phase(args, False)
        candidate = eval_phase(args, True)
        print_eval(args, "worker at full speed (STAGEGATE_WORKER_YIELD=0)", baseline)
        print_eval(args, "embedded worker: a child process at nice 10, torch threads < cores", candidate)
        return
    env, url = prepare(args)
    db = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    cache = "on" if args.no_baseline else args.cache
    runs = [] if cache == "on" else [("cache off", measure(env, False, args))]
    if cache != "off":
        runs.append(("cache on", measure(env, True, args)))
    print(f"\n{db}, scale {args.scale:g}, wrk -t1 -c{args.connections} -d{args.seconds}s"
          + (" -H 'Accept-Encoding: gzip'" if args.gzip else ""))
    for label, rows in runs:
        healthz = rows[0][2]["rps"]
        print(f"\n[{label}]\n| endpoint | req/s | p50 ms | p99 ms | share of /healthz |"
              "\n| --- | ---: | ---: | ---: | ---: |")
        for name, path, r in rows:
            if "seconds" in r:
                print(f"| whole export, {r['pages']} pages of 10,000 ({r['mb']:.0f} MB) | "
                      f"one client: {r['seconds']:.2f} s | | | |")
                continue
            bad = f" ({r['errors']} errors)" if r["errors"] else ""
            print(f"| `{path}` | {r['rps']:,.0f} | {r['p50']:.2f} | {r['p99']:.2f} | "
                  f"{r['rps'] / healthz:.1%}{bad} |")


if __name__ == "__main__":
    main()
