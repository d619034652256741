"""Shipped policies: valid, every example judged as its name says, malformed ones refused."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from app.cli import main
from app.errors import Invalid
from app.norms.engine import judge, overall
from app.norms.evidence import load_plan_with_evidence
from app.norms.gate import policies_for
from app.norms.loader import POLICY_DIR, load_policies, parse_policy

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(POLICY_DIR.glob("*/examples/*.yaml"))


def cli(*args):
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_three_policies_ship_each_with_allowed_and_denied_examples():
    policies = load_policies(POLICY_DIR)
    assert {"gpt2-2019", "pai-publication-norms", "capability-thresholds"} <= set(policies)
    for policy_id in policies:
        names = [p.name for p in EXAMPLES if p.parent.parent.name == policy_id]
        assert any(n.startswith("allowed-") for n in names), policy_id
        assert any(n.startswith("denied-") for n in names), policy_id


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_every_example_is_judged_as_its_name_says(path):
    plan, facts = load_plan_with_evidence(path)
    policy_id = path.parent.parent.name
    assert plan.policies == [policy_id], "an example declares the policy it exercises"
    verdicts = judge(facts, policies_for(plan.policies))
    deny = [v for v in verdicts if v.action == "deny"]
    assert deny, "the example must exercise deny rules"
    if path.name.startswith("allowed-"):
        assert overall(verdicts) == "pass", [(v.rule, v.detail) for v in deny
                                             if v.verdict != "pass"]
    else:
        failing = [v for v in deny if v.verdict == "fail"]
        assert failing and overall(verdicts) == "fail"
        # The lab gets the policy's own message and a concrete way to pass.
        assert all(v.message and v.fix for v in failing)
    code, out = cli("policy", "check", str(path))
    assert code == (0 if path.name.startswith("allowed-") else 1), out


def test_policy_check_prints_the_message_a_lab_needs():
    path = POLICY_DIR / "gpt2-2019/examples/denied-rushed-second-stage.yaml"
    code, out = cli("policy", "check", str(path))
    assert code == 1
    assert "FAIL deny  stage 2 (medium) gpt2-2019/months-between-stages" in out
    assert "28 days after stage 1" in out and "to pass: release on or after 2026-04-30" in out


def test_policy_check_with_an_explicit_policy_and_a_malformed_file(tmp_path):
    allowed = POLICY_DIR / "gpt2-2019/examples/allowed-2019-release.yaml"
    code, out = cli("policy", "check", str(allowed), "--policy", "pai-publication-norms")
    assert code == 1 and "documented-risk-assessment" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: x/y\ntitle: t\nstages:\n  - name: a\n    access_level: moon\n")
    code, out = cli("policy", "check", str(bad), "--policy", "gpt2-2019")
    assert code == 2 and f"{bad}:5: stages[0].access_level" in out
    bad.write_text("model: x/y\ntitle: t\npolicies: [gpt2-2019]\nstages:\n  - name: a\n"
                   "    access_level: api\nevidence:\n  released: {1: yesterday}\n")
    code, out = cli("policy", "check", str(bad))
    assert code == 2 and f"{bad}:8: evidence.released[1]" in out
    code, out = cli("policy", "check", str(allowed), "--policy", "no-such-policy")
    assert code == 2 and "no policy 'no-such-policy'" in out


def test_policy_check_runs_without_a_database(tmp_path):
    """A lab checks a plan before filing it: no database, no server, no data folder."""
    env = {**os.environ, "PYTHONPATH": str(ROOT),
           "STAGEGATE_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
           "STAGEGATE_DATA_DIR": str(tmp_path / "absent")}
    path = POLICY_DIR / "pai-publication-norms/examples/denied-no-risk-assessment.yaml"
    out = subprocess.run([sys.executable, "-m", "app.cli", "policy", "check", str(path)],
                         check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out.stderr
    assert "documented-risk-assessment" in out.stdout
    assert not (tmp_path / "absent").exists()


def test_policy_list():
    code, out = cli("policy", "list")
    assert code == 0
    assert "gpt2-2019 v1: Staged release in the manner of GPT-2 (2019)" in out
    assert "deny  months-between-stages (min_days_between_releases)" in out


# -- malformed policies ------------------------------------------------------------------

GOOD = (POLICY_DIR / "pai-publication-norms/policy.yaml").read_text()


def _write(tmp_path, text, name="pai-publication-norms") -> Path:
    folder = tmp_path / "policies" / name
    folder.mkdir(parents=True)
    (folder / "policy.yaml").write_text(text)
    return folder / "policy.yaml"


@pytest.mark.parametrize("change, line, field", [
    (("action: deny", "action: block"), 21, "rules[0].action"),
    (("check: staged_access", "check: eval_python"), 26, "rules[1].check"),
    (("params: {min_chars: 80, rationale: true}", "params: {min_chars: -3}"), 20,
     "rules[0].params.min_chars"),
    (("version: 1", "version: one"), 3, "version"),
    (("    url: https://partnershiponai.org/paper", "    url: ftp://partnershiponai.org/paper"),
     12, "sources[0].url"),
])
def test_a_malformed_policy_names_file_line_and_field(tmp_path, change, line, field):
    assert change[0] in GOOD
    path = _write(tmp_path, GOOD.replace(change[0], change[1], 1))
    with pytest.raises(Invalid) as err:
        load_policies(path.parent.parent)
    assert err.value.detail.startswith(f"{path}:{line}: {field}"), err.value.detail
    assert err.value.field == field


def test_yaml_aliases_and_misnamed_folders_are_refused(tmp_path):
    path = _write(tmp_path, "id: &x pai\ntitle: *x\n")
    with pytest.raises(Invalid, match=r":2: not valid YAML: aliases are not allowed"):
        parse_policy(path)
    path = _write(tmp_path, GOOD, name="other-name")
    with pytest.raises(Invalid, match=r"other-name/policy.yaml:1: id: .* folder name"):
        load_policies(path.parent.parent)


def test_the_server_refuses_to_start_with_a_malformed_policy(tmp_path, settings):
    from app import create_app
    from app.settings import Settings, configure

    folder = tmp_path / "pol"
    shutil.copytree(POLICY_DIR, folder)
    text = (folder / "gpt2-2019/policy.yaml").read_text()
    (folder / "gpt2-2019/policy.yaml").write_text(text.replace("min_days: 60}", "min_days: x}"))
    bad = Settings(data_dir=settings.data_dir, database_url=settings.database_url,
                   inprocess_worker=False, policy_dir=folder)
    try:
        with pytest.raises(Invalid, match=r"gpt2-2019/policy.yaml:\d+: rules\[0\]\.params"):
            create_app(bad)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "STAGEGATE_POLICY_DIR": str(folder),
               "STAGEGATE_DATABASE_URL": settings.database_url}
        out = subprocess.run([sys.executable, "-m", "app.cli", "serve", "--port", "0"],
                             check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 2 and "gpt2-2019/policy.yaml:" in out.stderr
    finally:
        configure(settings)
