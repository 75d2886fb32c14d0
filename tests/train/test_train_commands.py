"""`aloe train sft|dpo|merge`: one output option name and `--set` overrides over the YAML."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from aloe_core.errors import ConfigError
from aloe_train.cli import app
from aloe_train.dpo.config import DPOConfig
from aloe_train.merge import load_merge_config
from aloe_train.sft.config import SFTConfig
from aloe_train.shared.command import load_command_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.mark.parametrize("name", ["sft", "dpo", "merge"])
def test_every_training_command_takes_out_and_set(name):
    command = typer.main.get_command(app).commands[name]
    names = {opt for param in command.params for opt in param.opts}
    assert {"--out", "-o", "--output-dir", "--set"} <= names, sorted(names)


def test_sft_set_reaches_nested_fields_and_out_wins(tmp_path):
    config = load_command_config(
        SFTConfig,
        CONFIGS / "train" / "tiny_sft_cpu.yaml",
        ["optim.lr=0.002", "data.max_length=128", "scaling.num_workers=1", "output_dir=ignored"],
        tmp_path / "run",
    )
    assert (config.optim.lr, config.data.max_length, config.scaling.num_workers) == (0.002, 128, 1)
    assert config.output_dir == str(tmp_path / "run")


def test_dpo_set_addresses_a_stage_by_name():
    path = CONFIGS / "train" / "tiny_dpo_cpu.yaml"
    config = load_command_config(DPOConfig, path, ["stages.safety.loss.beta=0.3"], None)
    assert [stage.loss.beta for stage in config.stages] == [0.1, 0.3]
    with pytest.raises(ConfigError, match=r"stages\[1\]\.loss\.betta: unknown key"):
        load_command_config(DPOConfig, path, ["stages.safety.loss.betta=0.3"], None)


def test_merge_set_reaches_a_model_parameter():
    config = load_merge_config(CONFIGS / "merge" / "tiny_cpu.yaml", ["models.1.parameters.density=0.7"])
    assert [m.parameters["density"] for m in config.models] == [0.5, 0.7]


def test_output_dir_may_be_an_object_store_uri_and_other_schemes_are_one_line_errors():
    path = CONFIGS / "train" / "tiny_sft_cpu.yaml"
    config = load_command_config(
        SFTConfig, path, ["model.path=s3://bucket/models/tiny"], "s3://bucket/runs/sft"
    )
    pinned = config.with_absolute_paths()  # URIs stay as written (a Path would fold their //)
    assert (pinned.output_dir, pinned.model.path) == ("s3://bucket/runs/sft", "s3://bucket/models/tiny")
    with pytest.raises(ConfigError, match=r"output_dir: .*hdfs://nn/run: training writes to a local folder "):
        load_command_config(SFTConfig, path, None, "hdfs://nn/run")
