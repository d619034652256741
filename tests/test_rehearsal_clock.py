"""STAGEGATE_CLOCK_FILE: the registry's time is the one written in the file, re-read when
the file changes; without it, the real clock."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from app.timeutil import utcnow


def test_the_clock_follows_the_file(tmp_path, monkeypatch):
    clock = tmp_path / "clock"
    clock.write_text("2019-02-14T12:00:00\n")
    monkeypatch.setenv("STAGEGATE_CLOCK_FILE", str(clock))
    assert utcnow() == datetime(2019, 2, 14, 12, tzinfo=UTC)  # naive means UTC
    clock.write_text("2019-05-03T09:30:00+02:00")
    os.utime(clock, ns=(1, 2))  # a changed file, even within one mtime tick
    assert utcnow() == datetime(2019, 5, 3, 7, 30, tzinfo=UTC) and utcnow().tzinfo is UTC
    monkeypatch.delenv("STAGEGATE_CLOCK_FILE")
    assert abs(utcnow() - datetime.now(UTC)) < timedelta(seconds=5)
