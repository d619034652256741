"""Markdown cost: a model card of nine pathological sections, written once, read many times.

    PYTHONPATH=. .venv/bin/python bench/markdown.py

Prints the CPU cost of the old render-on-read (every GET /api/v1/models rendered every
section) beside the cost of one write and the median GET now that HTML is stored.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import nh3
from litestar.testing import TestClient
from markdown_it import MarkdownIt

from app import create_app
from app.db import upgrade
from app.models.tables import CARD_SECTIONS
from app.settings import Settings, configure

SECTION = "![" * 5_000     # the 10,000-character section of issue 7


def main() -> None:
    from tests.factories import World

    data = Path(tempfile.mkdtemp())
    url = f"sqlite:///{data}/bench.db"
    upgrade(url)
    configure(Settings(data_dir=data / "data", database_url=url, inprocess_worker=False))
    world = World.build()
    old = MarkdownIt("js-default")       # the renderer before: default nesting, on read
    started = time.thread_time()
    for _ in CARD_SECTIONS:
        nh3.clean(old.render(SECTION))
    print(f"before: render on read, CPU per GET: {time.thread_time() - started:.2f} s")
    with TestClient(create_app()) as client:
        body = {"lab": "lab-a", "slug": "p", "name": "P", **dict.fromkeys(CARD_SECTIONS, SECTION)}
        started = time.perf_counter()
        resp = client.post("/api/v1/models", json=body, headers=world.a_member.headers)
        print(f"now: one write {resp.status_code}, wall {time.perf_counter() - started:.2f} s")
        times = []
        for _ in range(20):
            started = time.perf_counter()
            client.get("/api/v1/models")
            times.append(time.perf_counter() - started)
        print(f"now: GET /api/v1/models median wall {statistics.median(times) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
