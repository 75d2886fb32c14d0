"""The demo's steps: the whole recipe as the `aloe` commands a user would type, in order.

A step is one or more `aloe` command lines (run in this process through the same typer app as the
`aloe` script, so a step is exactly its printed command) or, for the two pieces no command covers
(splitting the embedded benchmark, the summary page), a function. Configs are written to
``OUT/configs/NN-STEP.yaml`` first, with the command in their header, so any step can be rerun by hand.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from aloe_core.atomic import atomic_write_json, atomic_write_text
from aloe_fixtures.demo import configs
from aloe_fixtures.demo.layout import BENCHMARK, RELEASE_NAME, RELEASE_VERSION, DemoLayout, DemoSize

VAL_SHARE = 0.4  # of the embedded benchmark's items: Medprompt's few-shot pool (val); the rest is test


@dataclass
class Step:
    """One step. ``commands`` are `aloe` argv lists; ``function`` runs instead when there are none.
    ``fresh`` lists outputs the step's command does not resume into (removed before it runs again);
    ``artifacts`` are what the demo prints (and the summary links) once the step is done."""

    name: str
    title: str
    commands: list[list[str]] = field(default_factory=list)
    config: dict[str, Any] | None = None
    function: Callable[[], dict[str, Any] | None] | None = None
    fresh: list[Path] = field(default_factory=list)
    artifacts: dict[str, Path] = field(default_factory=dict)

    def key(self) -> str:
        """What the step would run; a finished step whose key is unchanged is skipped on a rerun."""
        payload = {"commands": self.commands, "config": self.config, "function": self.function is not None}
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def write_config(path: Path, config: dict[str, Any], command: list[str]) -> None:
    """The step's config as YAML, headed by the command that runs it."""
    header = f"# Written by `aloe demo`; this step's command:\n#   aloe {' '.join(command)}\n"
    atomic_write_text(path, header + yaml.safe_dump(config, sort_keys=False))


def split_benchmark(layout: DemoLayout) -> dict[str, Any]:
    """The embedded benchmark (one test file) split by a stable hash of each id into val (the kNN pool of
    Medprompt, whose examples are the model's own correct chains of thought on it) and test."""
    items = json.loads((layout.corpus / "benchmarks" / f"{BENCHMARK}_test.json").read_text(encoding="utf-8"))

    def share(item_id: str) -> float:
        return int(hashlib.sha256(item_id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF

    val = {k: v for k, v in items.items() if share(k) < VAL_SHARE}
    test = {k: v for k, v in items.items() if k not in val}
    layout.benchmarks.mkdir(parents=True, exist_ok=True)
    atomic_write_json(layout.benchmarks / f"{BENCHMARK}_val.json", val)
    atomic_write_json(layout.benchmarks / f"{BENCHMARK}_test.json", test)
    return {"val": len(val), "test": len(test)}


def demo_steps(layout: DemoLayout, size: DemoSize, summary: Callable[[], dict[str, Any]]) -> list[Step]:
    """Every step of the demo, in the order they run."""
    L = layout
    dpo_general, dpo_safety = L.dpo / "general" / "model", L.dpo / "safety" / "model"
    eval_models = {"sft": L.sft / "model", "dpo": dpo_safety, "merged": L.merged}
    eval_strategies = {
        "sft": ["zero-shot"],
        "dpo": ["zero-shot"],
        "merged": ["zero-shot", "medprompt", "rag"],
    }
    steps: list[Step] = []

    def add(step: Step) -> None:
        steps.append(step)

    def cfg(name: str) -> str:
        return str(L.configs / f"{len(steps) + 1:02d}-{name}.yaml")

    add(
        Step(
            "base-model",
            "the tiny Llama base model (random weights, BPE tokenizer, chat template)",
            [["model", "tiny", str(L.base_model), "--force"]],
            artifacts={"model": L.base_model},
        )
    )
    add(
        Step(
            "corpus",
            f"the embedded medical corpus ({size.rows} rows, planted defects)",
            [["data", "sample", "--out", str(L.corpus), "--rows", str(size.rows), "--seed", "0"]],
            fresh=[L.corpus],
            artifacts={"corpus": L.corpus},
        )
    )
    add(
        Step(
            "documents",
            "the medical reference documents RAG retrieves from",
            [["data", "documents", "--out", str(L.documents)]],
            fresh=[L.documents],
            artifacts={"documents": L.documents},
        )
    )
    add(
        Step(
            "benchmark",
            "the embedded benchmark split into val (Medprompt's pool) and test",
            function=lambda: split_benchmark(L),
            artifacts={"benchmark": L.benchmarks},
        )
    )
    for kind, config in (("sft", configs.data_sft(L, size)), ("preference", configs.data_preference(L))):
        run = L.data_sft if kind == "sft" else L.data_preference
        stages = " -> ".join(["ingest"] + [s["type"] for s in config["stages"]])
        path = cfg(f"data-{kind}")
        add(
            Step(
                f"data-{kind}",
                f"data pipeline ({kind}): {stages}",
                [["data", "run", path, "--out", str(run)]],
                config=config,
                artifacts={"run": run, "report": run / "report.html"},
            )
        )
    path = cfg("release")
    add(
        Step(
            "release",
            f"dataset release {RELEASE_NAME} {RELEASE_VERSION} (card, Croissant, checksums)",
            [
                [
                    "data",
                    "release",
                    str(L.data_sft),
                    "--out",
                    str(L.release),
                    "--name",
                    RELEASE_NAME,
                    "--version",
                    RELEASE_VERSION,
                    "--config",
                    path,
                ],
                ["data", "verify-release", str(L.release)],
            ],
            config=configs.release(),
            fresh=[L.release],
            artifacts={"release": L.release, "card": L.release / "README.md"},
        )
    )
    add(
        Step(
            "sft",
            "SFT on the release (Ray Train, 2 workers, FSDP2 over gloo)",
            [["train", "sft", cfg("sft")]],
            config=configs.sft(L, size),
            artifacts={"model": L.sft / "model", "loss curve": L.sft / "loss_curve.png"},
        )
    )
    add(
        Step(
            "dpo-general",
            "DPO stage 1: general preferences",
            [["train", "dpo", cfg("dpo-general")]],
            config=configs.dpo(L, size, with_safety=False),
            artifacts={"model": dpo_general, "loss curve": L.dpo / "general" / "loss_curve.png"},
        )
    )
    safety_before = configs.safety(dpo_general, size)
    add(
        Step(
            "safety-before",
            "red-teaming the general model (ASR per topic and jailbreak style)",
            [["eval", "safety", cfg("safety-before"), "--out", str(L.safety("before"))]],
            config=safety_before,
            fresh=[L.safety("before")],
            artifacts={"report": L.safety("before") / "heatmap.png"},
        )
    )
    add(
        Step(
            "redteam-pairs",
            "safety DPO pairs from the general model's answers (held-out styles excluded)",
            [
                [
                    "data",
                    "redteam-pairs",
                    cfg("redteam-pairs"),
                    "--eval-run",
                    str(L.safety("before")),
                    "--out",
                    str(L.safety("pairs")),
                ]
            ],
            config=configs.redteam_pairs(L, size),
            artifacts={"pairs": L.safety("pairs")},
        )
    )
    add(
        Step(
            "dpo-safety",
            "DPO stage 2: safety, from the general model (stage 1 is skipped: finished)",
            [["train", "dpo", cfg("dpo-safety")]],
            config=configs.dpo(L, size, with_safety=True),
            artifacts={"model": dpo_safety, "loss curve": L.dpo / "safety" / "loss_curve.png"},
        )
    )
    add(
        Step(
            "safety-after",
            "red-teaming the safety-aligned model",
            [["eval", "safety", cfg("safety-after"), "--out", str(L.safety("after"))]],
            config=configs.safety(dpo_safety, size),
            fresh=[L.safety("after")],
            artifacts={"report": L.safety("after") / "heatmap.png"},
        )
    )
    add(
        Step(
            "safety-compare",
            "ASR before vs after the safety stage",
            [
                [
                    "eval",
                    "safety-compare",
                    str(L.safety("before")),
                    str(L.safety("after")),
                    "--out",
                    str(L.safety("compare")),
                ]
            ],
            fresh=[L.safety("compare")],
            artifacts={"comparison": L.safety("compare")},
        )
    )
    add(
        Step(
            "merge",
            "DARE-TIES merge of the SFT and safety models over the base",
            [["train", "merge", cfg("merge"), "--force"]],
            config=configs.merge(L),
            artifacts={"model": L.merged},
        )
    )
    add(
        Step(
            "rag-index",
            "retrieval index: chunks, MiniLM embeddings (FAISS) and BM25",
            [
                [
                    "infer",
                    "index",
                    "--corpus",
                    str(L.documents),
                    "--out",
                    str(L.rag_index),
                    "--config",
                    cfg("rag-index"),
                ]
            ],
            config=configs.rag_index(),
            artifacts={"index": L.rag_index},
        )
    )
    for name, model in eval_models.items():
        strategies = eval_strategies[name]
        add(
            Step(
                f"eval-{name}",
                f"{' + '.join(strategies)} on the embedded benchmark ({name} model)",
                [["eval", "run", cfg(f"eval-{name}"), "--out", str(L.eval(name))]],
                config=configs.evaluation(L, size, model, strategies),
                fresh=[L.eval(name)],
                artifacts={"results": L.eval(name)},
            )
        )
    add(
        Step(
            "model-cards",
            "model cards with the evaluation tables",
            [
                ["train", "card", str(L.sft / "model"), "--kind", "sft", "--eval", str(results(L, "sft"))],
                ["train", "card", str(dpo_safety), "--kind", "dpo", "--eval", str(results(L, "dpo"))],
                ["train", "card", str(L.merged), "--kind", "merge"]
                + [a for s in eval_strategies["merged"] for a in ("--eval", str(results(L, "merged", s)))],
            ],
            artifacts={
                "sft": L.sft / "model" / "README.md",
                "dpo": dpo_safety / "README.md",
                "merged": L.merged / "README.md",
            },
        )
    )
    add(Step("summary", "the summary page", function=summary, artifacts={"summary": L.summary}))
    return steps


def results(layout: DemoLayout, model: str, strategy: str | None = None) -> Path:
    """results.json of an eval step: the run folder itself for one strategy, one folder each for several."""
    folder = layout.eval(model)
    return (folder / strategy if strategy else folder) / "results.json"
