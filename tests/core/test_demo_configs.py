"""`aloe demo`'s configs: each validates as its command's config class and agrees with the repository's
tiny CPU config it mirrors, except for the paths and the settings the demo deliberately sizes.

A setting changed in ``configs/`` (or a default changed in a config class) that the demo does not follow
fails here, naming the key, instead of silently running a different recipe in the demo.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any

import pytest

from aloe_core.config import read_yaml_mapping, validate_config
from aloe_core.errors import InputError
from aloe_fixtures.demo import configs
from aloe_fixtures.demo.layout import DemoLayout, DemoSize
from aloe_fixtures.demo.runner import check_size, run_steps
from aloe_fixtures.demo.steps import demo_steps, split_benchmark

REPO = Path(__file__).resolve().parents[2]
LAYOUT = DemoLayout.at("/tmp/aloe-demo-config-test")
SIZE = DemoSize()


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in _flat(item, f"{prefix}{key}.").items()}
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return {k: v for n, item in enumerate(value) for k, v in _flat(item, f"{prefix}{n}.").items()}
    return {prefix.rstrip("."): value}


def _differences(cls: type, demo: dict[str, Any], repo: dict[str, Any]) -> set[str]:
    a = _flat(validate_config(cls, demo, "demo").model_dump(mode="json"))
    b = _flat(validate_config(cls, repo, "repo").model_dump(mode="json"))
    return {key for key in a.keys() | b.keys() if a.get(key, "<absent>") != b.get(key, "<absent>")}


def _only(differences: set[str], allowed: list[str]) -> set[str]:
    """The differences no allowed pattern covers."""
    return {d for d in differences if not any(fnmatch.fnmatch(d, p) for p in allowed)}


def _config_classes() -> dict[str, type]:
    from aloe_data.pipeline.config import PipelineConfig
    from aloe_data.redteam import RedteamPairsConfig
    from aloe_data.release.config import ReleaseConfig
    from aloe_infer.eval.config import EvalConfig
    from aloe_infer.retrieval import RagConfig
    from aloe_infer.safety.run import SafetyConfig
    from aloe_train.dpo.config import DPOConfig
    from aloe_train.merge.config import MergeConfig
    from aloe_train.sft.config import SFTConfig

    return {
        "pipeline": PipelineConfig, "release": ReleaseConfig, "sft": SFTConfig, "dpo": DPOConfig,
        "merge": MergeConfig, "rag": RagConfig, "eval": EvalConfig, "safety": SafetyConfig,
        "redteam": RedteamPairsConfig,
    }  # fmt: skip


def test_every_step_config_validates_as_its_command_reads_it() -> None:
    classes = _config_classes()
    kinds = {
        "data-sft": "pipeline", "data-preference": "pipeline", "release": "release", "sft": "sft",
        "dpo-general": "dpo", "dpo-safety": "dpo", "safety-before": "safety", "redteam-pairs": "redteam",
        "safety-after": "safety", "merge": "merge", "rag-index": "rag", "eval-sft": "eval",
        "eval-dpo": "eval", "eval-merged": "eval",
    }  # fmt: skip
    for size in (DemoSize(), DemoSize(rows=600, quick=True)):
        steps = demo_steps(LAYOUT, size, dict)
        with_config = {s.name for s in steps if s.config is not None}
        assert with_config == set(kinds)
        for step in steps:
            if step.config is not None:
                validate_config(classes[kinds[step.name]], step.config, step.name)
                # The config is written where the step's command reads it.
                named = [a for argv in step.commands for a in argv if a.startswith(str(LAYOUT.configs))]
                assert len(named) == 1 and named[0].endswith(f"-{step.name}.yaml"), step.name
    names = [s.name for s in demo_steps(LAYOUT, SIZE, dict)]
    assert names.index("dpo-general") < names.index("safety-before") < names.index("redteam-pairs")
    assert names.index("redteam-pairs") < names.index("dpo-safety") < names.index("safety-after")
    assert names[-1] == "summary"


def test_sft_dpo_and_merge_follow_the_repository_tiny_configs() -> None:
    classes = _config_classes()
    sft = _differences(
        classes["sft"], configs.sft(LAYOUT, SIZE), read_yaml_mapping(REPO / "configs/train/tiny_sft_cpu.yaml")
    )
    # Two epochs over the small demo release (one with --quick) where the repository's config runs one.
    assert _only(sft, ["model.path", "output_dir", "data.path", "train.epochs"]) == set()
    dpo = _differences(
        classes["dpo"], configs.dpo(LAYOUT, SIZE, with_safety=True),
        read_yaml_mapping(REPO / "configs/train/tiny_dpo_cpu.yaml"),
    )  # fmt: skip
    # The safety stage trains on the red-team pairs (category safety) instead of the corpus's safety rows.
    assert (
        _only(dpo, ["model.path", "output_dir", "stages.*.data.path", "stages.1.data.where.category"])
        == set()
    )
    merge = _differences(
        classes["merge"], configs.merge(LAYOUT), read_yaml_mapping(REPO / "configs/merge/tiny_cpu.yaml")
    )
    assert _only(merge, ["base_model", "models.*.model", "output_dir"]) == set()


def test_quick_demo_trains_one_epoch_where_the_full_one_trains_two() -> None:
    quick = DemoSize(rows=600, quick=True)
    assert configs.sft(LAYOUT, quick)["train"]["epochs"] == 1
    assert {s["train"]["epochs"] for s in configs.dpo(LAYOUT, quick, with_safety=True)["stages"]} == {1}
    assert configs.sft(LAYOUT, SIZE)["train"]["epochs"] == 2


def test_data_rag_eval_safety_and_release_follow_the_repository_configs() -> None:
    classes = _config_classes()
    cot_repo = read_yaml_mapping(REPO / "configs/data/cot-tiny-cpu.yaml")["stages"][-1]
    cot_demo = configs.data_sft(LAYOUT, SIZE)["stages"][-1]
    from aloe_data.stages.cot import CotConfig

    cot = _differences(CotConfig, cot_demo, cot_repo)
    # The demo samples shorter chains and retries once: the tiny model's answers fail verification anyway.
    assert _only(cot, ["engine.model", "sampling.max_tokens", "max_retries"]) == set()
    curation = read_yaml_mapping(REPO / "configs/data/sample-sft.yaml")
    demo_sft = configs.data_sft(LAYOUT, SIZE)
    from aloe_data.stages import STAGES

    for n, stage in enumerate(curation["stages"]):
        cls = STAGES[stage["type"]].config_class
        assert _only(_differences(cls, demo_sft["stages"][n], stage), ["benchmarks"]) == set(), stage["type"]
    preference = _differences(
        classes["pipeline"], configs.data_preference(LAYOUT),
        read_yaml_mapping(REPO / "configs/data/sample-preference.yaml"),
    )  # fmt: skip
    assert _only(preference, ["sources.*.path"]) == set()
    rag = _differences(
        classes["rag"], configs.rag_index(), read_yaml_mapping(REPO / "configs/rag/tiny_cpu.yaml")
    )
    assert rag == set()
    ev = _differences(
        classes["eval"], configs.evaluation(LAYOUT, SIZE, LAYOUT.merged, ["zero-shot", "rag"]),
        read_yaml_mapping(REPO / "configs/eval/tiny_rag_cpu.yaml"),
    )  # fmt: skip
    # The demo scores every test question of its own benchmark, with the strategies it shows.
    assert _only(ev, ["engine.model", "benchmarks", "names", "limit", "strategy", "rag.index"]) == set()
    mp = _differences(
        classes["eval"], configs.evaluation(LAYOUT, SIZE, LAYOUT.merged, ["medprompt"]),
        read_yaml_mapping(REPO / "configs/eval/tiny_cpu.yaml"),
    )  # fmt: skip
    assert _only(mp, ["engine.model", "benchmarks", "names", "limit", "medprompt.pool_limit"]) == set()
    safety = _differences(
        classes["safety"],
        configs.safety(LAYOUT.merged, SIZE),
        read_yaml_mapping(REPO / "configs/safety/tiny_cpu.yaml"),
    )
    # No judge: the tiny model's verdicts never parse (the classifier decides either way).
    assert _only(safety, ["model.model", "judge.*"]) == set()
    release = _differences(
        classes["release"], configs.release(), read_yaml_mapping(REPO / "configs/release/sample-sft.yaml")
    )
    assert _only(release, ["pretty_name", "description"]) == set()


def test_benchmark_split_is_stable_and_covers_every_item(tmp_path: Path) -> None:
    layout = DemoLayout.at(tmp_path)
    from aloe_fixtures.corpus import write_sample

    write_sample(layout.corpus, rows=600, seed=0)
    counts = split_benchmark(layout)
    import json

    original = json.loads((layout.corpus / "benchmarks/aloebench_test.json").read_text())
    val = json.loads((layout.benchmarks / "aloebench_val.json").read_text())
    test = json.loads((layout.benchmarks / "aloebench_test.json").read_text())
    assert val.keys().isdisjoint(test) and val.keys() | test.keys() == original.keys()
    assert counts == {"val": len(val), "test": len(test)} and len(val) > 0 and len(test) > len(val)
    assert split_benchmark(layout) == counts


def test_a_folder_with_a_demo_of_another_size_is_refused(tmp_path: Path) -> None:
    layout = DemoLayout.at(tmp_path)
    ran = []
    steps = demo_steps(layout, SIZE, dict)[-1:]
    steps[0].function = lambda: ran.append(1) or {}
    run_steps(layout, SIZE, steps)
    run_steps(layout, SIZE, steps)  # finished: not run again
    assert ran == [1]
    with pytest.raises(InputError, match=r"holds a demo made with .*rows': 2000.*use another --out"):
        check_size(layout, DemoSize(rows=600, quick=True))
