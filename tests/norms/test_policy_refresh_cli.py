"""`stagegate policy refresh`: the operator's command records what the clock turned."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from click.testing import CliRunner

from app.cli import main
from app.timeutil import freeze
from tests.norms.test_compliance import API, file


def refresh() -> tuple[int, str]:
    result = CliRunner().invoke(main, ["policy", "refresh"], catch_exceptions=False)
    return result.exit_code, result.output.strip()


def test_refresh_records_an_expired_exemption_once(client, world):
    plan = file(client, world, ["pai-publication-norms"], [{"name": "api", "access_level": "api"}])
    expiry = datetime.now(UTC) + timedelta(days=10)
    assert client.post(f"{API}/{plan['id']}/exemptions", headers=world.coord.headers, json={
        "position": 1, "policy": "pai-publication-norms", "rule": "documented-risk-assessment",
        "reason": "Transcription of the paper assessment pending.",
        "expires_at": expiry.isoformat()}).status_code == 201
    assert refresh() == (0, "0 verdict change(s) recorded")  # nothing is due yet

    def recorded():
        return [(h["from"], h["to"]) for h in
                client.get(f"{API}/{plan['id']}/compliance/history").json()
                if h["action"] == "verdict_changed" and h["rule"] == "documented-risk-assessment"]
    assert recorded() == [(None, "fail"), ("fail", "exempt")]
    freeze(expiry + timedelta(days=1))
    code, out = refresh()
    assert code == 0 and out.endswith("verdict change(s) recorded") and not out.startswith("0 ")
    assert recorded()[-1] == ("exempt", "fail")
    assert refresh() == (0, "0 verdict change(s) recorded")  # recorded once, not every run
    assert len(recorded()) == 3
