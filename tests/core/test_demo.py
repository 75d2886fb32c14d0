"""`aloe demo` end to end, as a user runs it: killed in the middle, resumed, then rerun with nothing to do.

One reduced demo (600 rows, ``--quick``) in real subprocesses: the first is SIGKILLed at an exact instant
(the data pipeline's fuzzy-dedup folder about to be renamed into place, through tests/data/kill_at.py),
the second resumes it to the end, the third must do no work. The tests then read what it left.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
KILL_AT = REPO / "tests" / "data" / "kill_at.py"
ARGS = ["demo", "--rows", "600", "--quick"]
STEPS = 21


def _aloe(*argv: str, timeout: int = 1500) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aloe_core.cli", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


def _files(root: Path) -> dict[str, float]:
    return {str(p.relative_to(root)): p.stat().st_mtime for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("demo") / "demo"
    killed = subprocess.run(
        [sys.executable, str(KILL_AT), "rename", "04-fuzzy-dedup", "1", "--", *ARGS, "--out", str(out)],
        capture_output=True, text=True, timeout=1500, cwd=REPO,
    )  # fmt: skip
    assert killed.returncode == -9, killed.stdout[-3000:] + killed.stderr[-3000:]
    early = {name: mtime for name, mtime in _files(out).items() if re.match(r"data/sft/0[1-3]-", name)}
    started = time.perf_counter()
    resumed = _aloe(*ARGS, "--out", str(out))
    seconds = time.perf_counter() - started
    assert resumed.returncode == 0, resumed.stdout[-4000:] + resumed.stderr[-4000:]
    before_third = _files(out)
    third = _aloe(*ARGS, "--out", str(out), timeout=120)
    assert third.returncode == 0, third.stderr[-3000:]
    return {
        "out": out, "killed": killed, "resumed": resumed, "third": third, "early": early,
        "seconds": seconds, "before_third": before_third,
    }  # fmt: skip


def test_a_killed_demo_resumes_from_the_step_and_stage_it_was_in(demo: dict) -> None:
    out, resumed = demo["out"], demo["resumed"].stdout
    assert "[ 5/21] data-sft" in demo["killed"].stdout and "[ 6/21]" not in demo["killed"].stdout
    for n, name in enumerate(["base-model", "corpus", "documents", "benchmark"], 1):
        assert re.search(rf"\[ {n}/21\] {name}: .*\(done earlier", resumed), name
    assert not re.search(r"\[ 5/21\] data-sft: .*\(done earlier", resumed)
    # The pipeline reused the stages finished before the kill: their shards were not written again.
    assert demo["early"], "no stage of the first attempt finished"
    now = _files(out)
    assert {name: now[name] for name in demo["early"]} == demo["early"]
    assert not [p for p in out.rglob("*") if ".tmp" in p.name], "debris left after the resume"
    assert f"demo: {STEPS - 4} of {STEPS} steps ran" in resumed
    record = json.loads((out / "demo.json").read_text())
    assert record["complete"] and len(record["steps"]) == STEPS


def test_a_finished_demo_does_no_work_on_a_rerun(demo: dict) -> None:
    assert f"demo: 0 of {STEPS} steps ran" in demo["third"].stdout
    assert demo["third"].stdout.count("(done earlier") == STEPS
    after = _files(demo["out"])
    changed = {k for k in after if after[k] != demo["before_third"].get(k)} - {"demo.json"}
    assert changed == set() and after.keys() == demo["before_third"].keys()


def test_the_release_sft_and_both_dpo_stages_chain_through_each_other(demo: dict) -> None:
    out = demo["out"]
    release = json.loads((out / "release/aloe-demo-sft-1.0.0/release.json").read_text())

    def card(model: str) -> dict:
        return json.loads((out / model / "aloe_card.json").read_text())

    sft = card("train/sft/model")
    assert sft["release"]["release"] == "aloe-demo-sft" and sft["release"]["version"] == "1.0.0"
    assert sft["data"]["source"]["rows"] == release["splits"]["train"]["rows"] > 0
    assert sft["base_model"] == str(out / "models/base")
    summary = json.loads((out / "train/sft/summary.json").read_text())
    assert summary["final_loss"] < summary["first_loss"]
    dpo = json.loads((out / "train/dpo/summary.json").read_text())
    assert [s["stage"] for s in dpo["stages"]] == ["general", "safety"]
    assert card("train/dpo/general/model")["base_model"] == str(out / "train/sft/model")
    assert card("train/dpo/safety/model")["base_model"] == str(out / "train/dpo/general/model")
    assert card("train/dpo/safety/model")["data"]["source"]["run"] == str(out / "safety/pairs")
    pairs = json.loads((out / "safety/pairs/manifest.json").read_text())
    entry = pairs["stages"]["redteam-pairs"]
    assert entry["rows_out"] > 0 and entry["dropped"].get("held_out_styles", 0) > 0
    import pyarrow.parquet as pq

    shards = sorted((out / "safety/pairs").glob("part-*.parquet"))
    metas = [json.loads(m) for m in pq.read_table(shards).column("meta").to_pylist()]
    assert {m["style"] for m in metas}.isdisjoint({"developer_mode", "distractor"})
    assert {m["category"] for m in metas} == {"safety"}


def test_safety_is_measured_before_and_after_on_the_same_prompts(demo: dict) -> None:
    compare = json.loads((demo["out"] / "safety/compare/compare.json").read_text())
    assert compare["paired"] == 12 * 10  # 12 topics x 1 request (quick) x 10 styles
    assert compare["before"].endswith("safety/before") and compare["after"].endswith("safety/after")
    for side in ("asr_before", "asr_after"):
        assert 0 <= compare[side]["asr"] <= 1
    assert set(compare["held_out_styles"]["before"]) >= {"asr"}


def test_every_model_is_evaluated_and_its_card_carries_the_table(demo: dict) -> None:
    out = demo["out"]
    test_items = json.loads((out / "benchmarks/aloebench_test.json").read_text())
    for run in ("eval/sft", "eval/dpo", "eval/merged/zero-shot", "eval/merged/medprompt", "eval/merged/rag"):
        results = json.loads((out / run / "results.json").read_text())
        assert results["benchmarks"]["aloebench"]["n"] == len(test_items), run
    assert (out / "eval/merged/comparison.md").is_file()
    merged_card = (out / "merge/README.md").read_text()
    for strategy in ("zero-shot", "medprompt", "rag"):
        assert strategy in merged_card
    assert "zero-shot" in (out / "train/sft/model/README.md").read_text()
    assert "zero-shot" in (out / "train/dpo/safety/model/README.md").read_text()
    from transformers import AutoModelForCausalLM

    merged = AutoModelForCausalLM.from_pretrained(out / "merge")
    base = AutoModelForCausalLM.from_pretrained(out / "models/base")
    assert sum(p.numel() for p in merged.parameters()) == sum(p.numel() for p in base.parameters())


def test_the_summary_page_links_only_to_what_exists(demo: dict) -> None:
    out = demo["out"]
    page = (out / "index.html").read_text()
    targets = re.findall(r'(?:href|src)="([^"]+)"', page)
    assert len(targets) > 20
    missing = [t for t in targets if not (out / t).exists()]
    assert missing == []
    for chart in ("summary/funnel-sft.png", "summary/accuracy.png", "train/sft/loss_curve.png",
                  "safety/compare/compare.png"):  # fmt: skip
        assert chart in targets
    for heading in ("curation funnel", "SFT, two-stage DPO", "embedded benchmark", "attack success rate"):
        assert heading in page
    assert not any(os.path.isabs(t) for t in targets)
