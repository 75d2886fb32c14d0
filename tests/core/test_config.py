"""Config loading: unknown keys, bounds and YAML errors name the file and the field path."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import Field

from aloe_core.config import StrictModel, config_hash, load_config
from aloe_core.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


class Dedup(StrictModel):
    threshold: float = Field(0.8, ge=0, le=1)


class Stages(StrictModel):
    dedup: Dedup = Dedup()


class Run(StrictModel):
    stages: Stages = Stages()
    items: tuple[Dedup, ...] = ()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return path


def test_bound_error_names_file_and_field_path(tmp_path):
    path = write(tmp_path, "stages:\n  dedup:\n    threshold: 1.5\n")
    with pytest.raises(ConfigError) as info:
        load_config(Run, path)
    assert str(info.value) == f"{path}: stages.dedup.threshold: must be <= 1.0"


def test_unknown_key_is_rejected_with_its_path(tmp_path):
    path = write(tmp_path, "stages:\n  dedup:\n    treshold: 0.5\n")
    with pytest.raises(ConfigError, match=r"stages\.dedup\.treshold: unknown key"):
        load_config(Run, path)


def test_list_index_in_path(tmp_path):
    path = write(tmp_path, "items:\n  - threshold: 0.1\n  - threshold: -1\n")
    with pytest.raises(ConfigError, match=r"items\[1\]\.threshold: must be >= 0"):
        load_config(Run, path)


def test_yaml_syntax_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"not valid YAML \(line 3, column 1\)"):
        load_config(Run, write(tmp_path, "stages:\n  dedup: [\n"))
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(Run, tmp_path / "nope.yaml")


def test_valid_config_and_stable_hash(tmp_path):
    run = load_config(Run, write(tmp_path, "stages: {dedup: {threshold: 0.7}}\n"))
    assert run.stages.dedup.threshold == 0.7
    assert config_hash(run) == config_hash(Run(stages=Stages(dedup=Dedup(threshold=0.7))))
    assert config_hash(run) != config_hash(Run())


def test_every_config_in_repo_loads():
    """Every YAML under configs/ validates against the config class its folder names."""
    from aloe_data.pipeline.config import PipelineConfig
    from aloe_data.release import ReleaseConfig
    from aloe_infer.eval.config import EvalConfig
    from aloe_infer.retrieval import RagConfig
    from aloe_infer.safety.run import SafetyConfig
    from aloe_train.dpo.config import DPOConfig
    from aloe_train.merge.config import load_merge_config
    from aloe_train.sft.config import SFTConfig

    # configs/<folder>/ -> config class; in configs/train/ the file name's recipe prefix decides.
    classes = {
        "data": PipelineConfig,
        "release": ReleaseConfig,
        "train/sft": SFTConfig,
        "train/dpo": DPOConfig,
        "safety": SafetyConfig,
        "eval": EvalConfig,
        "rag": RagConfig,
    }
    files = sorted((REPO / "configs").rglob("*.yaml"))
    assert files, "configs/ has no YAML files"
    for path in files:
        folder = path.relative_to(REPO / "configs").parts[0]
        recipes = [part for part in path.stem.split("_") if part in ("sft", "dpo")]
        key = f"train/{recipes[0]}" if folder == "train" and recipes else folder
        if folder == "merge":  # mergekit's YAML, with its own loader (method-specific checks)
            load_merge_config(path)
        else:
            assert key in classes, f"{path}: no config class registered for configs/{key}/"
            load_config(classes[key], path)
        assert path.read_text().startswith("#"), f"{path}: must start with a comment giving its command"


def test_overrides_set_nested_keys_typed_as_yaml_and_address_list_items_by_name():
    from aloe_core.config import apply_overrides

    data = {"kind": "sft", "stages": [{"type": "clean"}, {"type": "fuzzy_dedup", "keep": {"score_key": "x"}}]}
    out = apply_overrides(
        data,
        [
            "stages.fuzzy_dedup.threshold=0.85",
            "stages.1.keep.score_key=null",
            "stages.clean.languages=[en, es]",
            "output.shard_rows=5",
            "report=false",
            "name=a=b",
        ],
    )
    assert out == {
        "kind": "sft",
        "stages": [
            {"type": "clean", "languages": ["en", "es"]},
            {"type": "fuzzy_dedup", "keep": {"score_key": None}, "threshold": 0.85},
        ],
        "output": {"shard_rows": 5},
        "report": False,
        "name": "a=b",
    }
    assert data["stages"][1] == {"type": "fuzzy_dedup", "keep": {"score_key": "x"}}, "input left as it was"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("threshold", r"expected key\.sub=value"),
        ("a..b=1", r"expected key\.sub=value"),
        ("kind.x=1", "kind.x is inside a value"),
        ("stages.select.size=3", r"stages\.select names no single item of the list \(index 0-1 or one of"),
    ],
)
def test_bad_overrides_are_one_line_errors(override, message):
    from aloe_core.config import apply_overrides

    with pytest.raises(ConfigError, match=message):
        apply_overrides(
            {"kind": "sft", "stages": [{"type": "clean"}, {"type": "clean", "name": "c2"}]}, [override]
        )


def test_load_config_applies_overrides_before_validation(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("a: 1\nnested: {x: 2}\n")

    class Nested(StrictModel):
        x: int = 0

    class Top(StrictModel):
        a: int
        nested: Nested = Nested()

    assert load_config(Top, path, ["nested.x=7"]).nested.x == 7
    with pytest.raises(ConfigError, match=r"with --set nested\.y=1\): nested\.y: unknown key"):
        load_config(Top, path, ["nested.y=1"])
