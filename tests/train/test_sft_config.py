"""SFT config: the shipped YAML files validate, resume refuses changed settings, the command's errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from aloe_core.config import load_config, validate_config
from aloe_core.errors import ConfigError
from aloe_train.checkpoint import check_same_run
from aloe_train.sft.cli import main
from aloe_train.sft.config import SFTConfig

REPO = Path(__file__).parents[2]
MINIMAL = {"model": {"path": "m"}, "output_dir": "out", "data": {"path": "d"}}


@pytest.mark.parametrize("name", ["tiny_sft_cpu.yaml", "llama3_8b_sft_4xh100.yaml"])
def test_shipped_configs_validate(name):
    config = load_config(SFTConfig, REPO / "configs" / "train" / name)
    assert config.scaling.num_workers == (2 if "tiny" in name else 4)
    assert config.scaling.use_gpu == ("h100" in name)


def test_unknown_keys_and_bad_values_name_the_field(tmp_path):
    path = tmp_path / "sft.yaml"
    path.write_text(yaml.safe_dump({**MINIMAL, "optim": {"lr": -1, "lr_decay": 2}}))
    with pytest.raises(ConfigError) as error:
        load_config(SFTConfig, path)
    assert f"{path}: optim.lr: must be > 0" in str(error.value)
    assert f"{path}: optim.lr_decay: unknown key" in str(error.value)
    with pytest.raises(ConfigError, match=r"fault_injection\.rank=2 but scaling\.num_workers=2"):
        validate_config(SFTConfig, {**MINIMAL, "fault_injection": {"step": 3, "rank": 2}})
    with pytest.raises(ConfigError, match=r"either data\.eval_path or data\.eval_fraction"):
        validate_config(SFTConfig, {**MINIMAL, "data": {"path": "d", "eval_path": "e", "eval_fraction": 0.1}})


def test_paths_become_absolute_for_workers(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m").mkdir()
    config = validate_config(SFTConfig, {**MINIMAL, "resume_from": "out/checkpoints/checkpoint-000004"})
    pinned = config.with_absolute_paths()
    assert pinned.model.path == str(tmp_path / "m")
    assert pinned.data.path == str(tmp_path / "d") and pinned.output_dir == str(tmp_path / "out")
    assert pinned.resume_from == str(tmp_path / "out/checkpoints/checkpoint-000004")


def test_resume_accepts_run_control_changes_and_refuses_training_changes():
    base = validate_config(SFTConfig, MINIMAL)
    run_control = validate_config(
        SFTConfig,
        {
            **MINIMAL,
            "output_dir": "elsewhere",
            "train": {"save_every": 7, "log_every": 3},
            "scaling": {"max_failures": 5},
            "fault_injection": {"step": 2},
        },
    )
    check_same_run(base.resume_identity(), run_control.resume_identity(), Path("ckpt"))
    changed = validate_config(
        SFTConfig, {**MINIMAL, "optim": {"lr": 1e-3}, "data": {"path": "d", "max_length": 64}}
    )
    with pytest.raises(
        ConfigError, match=r"ckpt: written with different settings \(data.max_length, optim.lr\)"
    ):
        check_same_run(base.resume_identity(), changed.resume_identity(), Path("ckpt"))


def test_command_reports_a_bad_config_in_one_line(tmp_path, capsys):
    path = tmp_path / "sft.yaml"
    path.write_text(yaml.safe_dump({"model": {"path": "m"}, "data": {"path": "d"}}))
    with pytest.raises(SystemExit) as exited:
        main([str(path)])
    assert exited.value.code == 2
    assert capsys.readouterr().err.strip() == f"aloe: error: {path}: output_dir: required field is missing"
