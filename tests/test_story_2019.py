"""The GPT-2 release of 2019, played end to end through the remote CLI only.

A real `stagegate serve` process (in-process worker) on a fresh data folder; every lab,
partner, outsider and the coordinator runs `stagegate` as a separate process in its own
HOME, logged in with `stagegate login`. The registry's clock is the rehearsal clock
(STAGEGATE_CLOCK_FILE), moved through 2019 so that the real policies judge the real
schedule: 60 days between open-weight releases, 60 days of partner access before the
final size, detection research before the later sizes. No exemptions.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.checkpoints.tiny import tiny_gpt2
from tests.conftest import IN_CI, PG_BASE, PG_UP, _pg

ROOT = Path(__file__).resolve().parent.parent
STAGEGATE = str(Path(sys.executable).parent / "stagegate")
PARTNERS = ["cornell", "ctec-middlebury", "uoregon", "ut-austin"]

PLAN = """\
model: openai/gpt-2
title: GPT-2 staged release
policies: [gpt2-2019]
stages:
  - {name: 124M, parameter_count: 124000000, planned_date: 2019-02-14,
     access_level: public_weights, artifacts: [weights, code, paper]}
  - {name: 355M, parameter_count: 355000000, planned_date: 2019-05-03,
     access_level: public_weights, artifacts: [weights, output_samples, dataset]}
  - {name: 774M, parameter_count: 774000000, planned_date: 2019-08-20,
     access_level: public_weights, artifacts: [weights, paper]}
  - {name: 1.5B, parameter_count: 1558000000, planned_date: 2019-11-05,
     access_level: public_weights, artifacts: [weights, detector, model_card]}
"""

CARD = """\
## Model details
Decoder-only language models trained on web text, released in four sizes.

## Intended use
Research on language models and their risks; writing assistance.

## Evaluation data
The released output dataset: 250k samples per size and sampling method.

## Training data
WebText: pages linked from Reddit posts with at least three karma.

## Quantitative analyses
Detection accuracy of a TF-IDF baseline fell as the model grew.

## Ethical considerations
Synthetic text can serve disinformation, spam and phishing at scale.

## Caveats and recommendations
Machine detection reached the low-to-mid 90s, short of what deployment would need.
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Story:
    """The server's machine (operator commands, the clock) and one HOME per actor."""

    def __init__(self, root: Path, database_url: str | None):
        self.root = root
        self.clock = root / "clock"
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server_env = {**os.environ, "PYTHONPATH": str(ROOT),
                           "STAGEGATE_DATA_DIR": str(root / "server"),
                           "STAGEGATE_CLOCK_FILE": str(self.clock),
                           "STAGEGATE_WORKER_YIELD": "0"}
        self.server_env.pop("STAGEGATE_URL", None)
        self.server_env.pop("STAGEGATE_TOKEN", None)
        if database_url:
            self.server_env["STAGEGATE_DATABASE_URL"] = database_url
        self.server: subprocess.Popen | None = None

    def at(self, when: str) -> None:
        self.clock.write_text(when)

    def operator(self, *args: str) -> str:
        """A command on the server's machine (its database, no token)."""
        done = subprocess.run([STAGEGATE, *args], env=self.server_env, cwd=self.root,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def start(self) -> None:
        self.log = open(self.root / "serve.log", "w")
        self.server = subprocess.Popen([STAGEGATE, "serve", "--port", str(self.port)],
                                       env=self.server_env, cwd=self.root,
                                       stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise AssertionError("stagegate serve did not start:\n" + self.log_text())

    def log_text(self) -> str:
        return (self.root / "serve.log").read_text()

    def stop(self) -> None:
        if self.server:
            self.server.terminate()
            self.server.wait(30)
            self.log.close()

    def actor(self, name: str, token: str) -> Actor:
        home = self.root / "homes" / name
        home.mkdir(parents=True)
        actor = Actor(name, home, self.url)
        code, out, err = actor("--url", self.url, "login", "--token", token)
        assert code == 0 and out.startswith(f"logged in to {self.url} as {name}"), err
        return actor


class Actor:
    """`stagegate` in this actor's own HOME and working folder, no token in the env."""

    def __init__(self, name: str, home: Path, url: str):
        self.name, self.home, self.url = name, home, url
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("STAGEGATE_")}
        self.env |= {"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
                     "PYTHONPATH": str(ROOT)}

    def __call__(self, *args, input: str | None = None) -> tuple[int, str, str]:
        done = subprocess.run([STAGEGATE, *map(str, args)], env=self.env, cwd=self.home,
                              capture_output=True, text=True, timeout=300, input=input)
        if os.environ.get("STORY_VERBOSE"):  # the story as the people in it read it
            print(f"\n[{self.name}]$ stagegate {' '.join(map(str, args))}  -> "
                  f"{done.returncode}\n{done.stdout}{done.stderr}")
        return done.returncode, done.stdout, done.stderr

    def ok(self, *args) -> str:
        code, out, err = self(*args)
        assert code == 0, f"{self.name}: stagegate {' '.join(map(str, args))}\n{err}"
        return out

    def json(self, *args):
        return json.loads(self.ok(*args, "--json"))


# On PostgreSQL the story takes another ~95 s of the suite's 15-minute budget on CI's two
# cores; it runs there with STAGEGATE_STORY_PG=1 (it passes: see README).
ON_PG = pytest.mark.skipif(os.environ.get("STAGEGATE_STORY_PG") != "1",
                           reason="the PostgreSQL story runs with STAGEGATE_STORY_PG=1")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=ON_PG)])
def story(request, tmp_path):
    database_url = None
    if request.param == "postgresql":
        if not PG_UP:
            if IN_CI:
                pytest.fail("PostgreSQL is not reachable at 127.0.0.1:5432 and CI=true")
            pytest.skip("PostgreSQL not reachable")
        name = f"sg_story_{os.getpid()}"
        _pg(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        _pg(f"CREATE DATABASE {name}")
        database_url = f"{PG_BASE}/{name}"
    s = Story(tmp_path, database_url)
    s.at("2019-02-01T09:00:00+00:00")
    s.operator("db", "upgrade")
    yield s
    s.stop()
    if database_url:
        _pg(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _token(story: Story, user: str) -> str:
    return story.operator("token", "create", "--user", user).strip().splitlines()[-1]


def test_the_2019_release_story(story: Story, tmp_path):
    # --- The registry's machine: labs, people, tokens (operator commands).
    story.operator("lab", "create", "openai", "--name", "OpenAI")
    for slug in [*PARTNERS, "bystander"]:
        story.operator("lab", "create", slug, "--name", slug.replace("-", " ").title())
    story.operator("user", "create", "alec", "--lab", "openai", "--role", "lab_admin")
    for slug in [*PARTNERS, "bystander"]:
        story.operator("user", "create", f"{slug}-lead", "--lab", slug, "--role", "lab_admin")
    story.operator("user", "create", "coord", "--coordinator")
    tokens = {u: _token(story, u) for u in
              ["alec", "coord", "bystander-lead", *(f"{p}-lead" for p in PARTNERS)]}
    story.start()
    lab = story.actor("alec", tokens["alec"])
    coord = story.actor("coord", tokens["coord"])
    outsider = story.actor("bystander-lead", tokens["bystander-lead"])
    partners = {p: story.actor(f"{p}-lead", tokens[f"{p}-lead"]) for p in PARTNERS}

    # --- 1. Model, card, plan checked then filed.
    assert "openai/gpt-2" in lab.ok("model", "create", "openai/gpt-2", "--name", "GPT-2",
                                    "--licence", "mit")
    (lab.home / "card.md").write_text(CARD)
    assert "card" in lab.ok("card", "edit", "openai/gpt-2", "--file", "card.md")
    assert "Detection accuracy of a TF-IDF baseline" in lab.ok("card", "show", "openai/gpt-2")
    (lab.home / "plan.yaml").write_text(PLAN)
    code, out, err = lab("policy", "check", "plan.yaml")
    # Judged now, nothing is released and no partner has signed: the final size's
    # partner analysis is what the plan still owes.
    assert "partner-analysis-before-final" in out + err
    plan_id = lab.json("plan", "file", "plan.yaml")["id"]

    # --- 2. Checkpoints: the small one public, the larger ones withheld for partners.
    ckpt = {}
    for n, size in enumerate(["124m", "355m", "774m", "1558m"], start=1):
        folder = tiny_gpt2(tmp_path / "weights", seed=n)
        level = "public" if n == 1 else "partners"
        body = lab.json("checkpoint", "upload", folder, "--model", "openai/gpt-2",
                        "--name", f"gpt2-{size}", "--access-level", level,
                        "--stage", f"{plan_id}:{n}", "--no-progress")
        assert body["stage"]["plan"] == plan_id and body["stage"]["stage"] == n, body
        ckpt[n] = body["id"]
    code, _, err = outsider("checkpoint", "show", ckpt[4])
    assert code == 2 and err.startswith("error: 404"), err

    # --- Stage 1 goes out on its day.
    story.at("2019-02-14T12:00:00+00:00")
    lab.ok("plan", "transition", plan_id, "active")
    out = lab.ok("plan", "transition", plan_id, "ready", "--stage", "1")
    assert "stage 1" in out and "ready" in out
    out = lab.ok("plan", "transition", plan_id, "released", "--stage", "1")
    assert "stage 1" in out and "released" in out

    # --- 4a. Too early: six weeks later the second size is refused, with the fix.
    story.at("2019-03-28T12:00:00+00:00")
    lab.ok("plan", "transition", plan_id, "ready", "--stage", "2")
    code, out, err = lab("plan", "transition", plan_id, "released", "--stage", "2")
    assert code == 2 and err.startswith("error: 409"), err
    assert "Leave at least 60 days between open-weight releases" in err
    assert "fix: release on or after 2019-04-15" in err  # 60 days after 14 February
    assert "due: -" not in err  # a violation without a due date says nothing of one
    code, out, _ = lab("plan", "transition", plan_id, "released", "--stage", "2", "--json")
    body = json.loads(out)
    assert code == 2 and any(v["rule"] == "months-between-stages" for v in body["violations"])

    # The worker measured the public checkpoint meanwhile (detection research).
    runs = lab.json("eval", "runs", "--checkpoint", ckpt[1])
    assert runs, "uploading queued the suites the plan's policy requires"
    for run in runs:
        lab.ok("eval", "watch", run["id"], "--timeout", "240")

    # --- 4b. On time: 3 May.
    story.at("2019-05-03T12:00:00+00:00")
    out = lab.ok("plan", "transition", plan_id, "released", "--stage", "2")
    assert "stage 2" in out and "released" in out

    # --- 3. The access agreement, from the template, proposed and signed by four.
    story.at("2019-06-03T09:00:00+00:00")
    args = ["agreement", "from-template", "non_commercial_access_2019",
            "--discloser", "openai", "--stage", f"{plan_id}:3", "--stage", f"{plan_id}:4",
            "--starts", "2019-06-03", "--ends", "2019-12-31"]
    for p in PARTNERS:
        args += ["--party", p]
    out = lab.ok(*args)
    assert out.startswith("agreement ") and " draft (version 1): " in out, out
    assert "Cornell" in out or "cornell" in out
    agreement = {"id": int(out.split()[1])}
    assert "proposed" in lab.ok("agreement", "propose", agreement["id"])
    story.at("2019-06-10T09:00:00+00:00")
    for slug, partner in partners.items():
        partner.ok("agreement", "sign", agreement["id"], "--lab", slug)
    assert lab.json("agreement", "show", agreement["id"])["status"] == "active"
    shown = partners["ut-austin"].ok("agreement", "show", agreement["id"])
    assert "active" in shown and "non-commercial" in shown.lower().replace("_", "-")
    for slug, partner in partners.items():
        dest = partner.home / "gpt2-1558m"
        partner.ok("checkpoint", "download", ckpt[4], "--to", dest, "--no-progress")
        assert (dest / "model.safetensors").stat().st_size > 0
    code, _, err = outsider("checkpoint", "download", ckpt[4], "--to", "x", "--no-progress")
    assert code == 2 and err.startswith("error: 404"), err

    # --- Stage 3 on 20 August.
    story.at("2019-08-20T12:00:00+00:00")
    lab.ok("plan", "transition", plan_id, "ready", "--stage", "3")
    assert "released" in lab.ok("plan", "transition", plan_id, "released", "--stage", "3")

    # --- 5. A partner reports misuse; the coordinator confirms it; the final size waits.
    story.at("2019-09-16T09:00:00+00:00")
    reported = partners["cornell"].json(
        "incident", "submit", "--title", "Fine-tuned 774M used for fake news posts",
        "--summary", "Synthetic articles from a fine-tuned 774M appeared on a forum.",
        "--occurred", "2019-09-10", "--harm-type", "disinformation", "--severity", "high",
        "--model", "openai/gpt-2")
    incident = reported["id"]
    assert "openai/gpt-2" in json.dumps(reported)
    assert "triaged" in coord.ok("incident", "triage", incident)
    assert "confirmed" in coord.ok("incident", "confirm", incident)

    story.at("2019-11-05T12:00:00+00:00")
    lab.ok("plan", "transition", plan_id, "ready", "--stage", "4")
    code, _, err = lab("plan", "transition", plan_id, "released", "--stage", "4")
    assert code == 2 and err.startswith("error: 409"), err
    assert "no-unresolved-serious-misuse" in err and "fix:" in err
    # Only the incident stands in the way: partner analysis and the card are in order.
    assert "partner-analysis-before-final" not in err and "model-card" not in err

    assert "resolved" in coord.ok("incident", "resolve", incident, "--reason",
                                  "the forum removed the posts; detector updated")
    assert "released" in lab.ok("plan", "transition", plan_id, "released", "--stage", "4")

    # --- Access ends with the agreement.
    story.at("2019-11-06T09:00:00+00:00")
    assert "terminated" in lab.ok("agreement", "terminate", agreement["id"],
                                  "--reason", "the final size is out")
    code, _, err = partners["uoregon"]("checkpoint", "download", ckpt[4], "--to", "again",
                                       "--no-progress")
    # They held it, so saying why tells them nothing new; the outsider learns nothing.
    assert code == 2 and err.startswith("error: 403 (checkpoint_id): your lab's access to "
                                        f"checkpoint {ckpt[4]} under agreement "
                                        f"{agreement['id']} ended on 2019-11-06"), err
    assert not (partners["uoregon"].home / "again").exists()
    code, _, err = outsider("checkpoint", "download", ckpt[4], "--to", "x", "--no-progress")
    assert code == 2 and err.startswith("error: 404"), err

    # --- 6. The card, exported, is read by huggingface_hub with its results.
    lab.ok("card", "export", "openai/gpt-2", "-o", "README.md")
    from huggingface_hub import ModelCard

    card = ModelCard.load(lab.home / "README.md")
    results = card.data.eval_results
    assert results and all(r.metric_value is not None for r in results)
    assert any("gpt2-124m" in (r.source_name or "") + (r.source_url or "") for r in results)


    # --- 7. A journalist holds the registry to what it published: the transparency log.
    story.at("2019-11-07T09:00:00+00:00")  # a later checkpoint covers everything above
    home = story.root / "homes" / "journalist"
    home.mkdir(parents=True)
    journalist = Actor("journalist", home, story.url)
    out = journalist.ok("log", "verify", "--url", story.url, "--state", home / "log.json")
    assert out.startswith("ok: ") and "key pinned now" in out
    out = journalist.ok("--url", story.url, "log", "prove", f"plan/{plan_id}")
    assert out.rstrip().endswith("inclusion verified")
    out = journalist.ok("log", "verify", "--url", story.url, "--state", home / "log.json")
    assert "consistent with the" in out
