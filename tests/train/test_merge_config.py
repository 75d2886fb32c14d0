"""Merge config parsing and checks, and per-tensor parameter resolution (mergekit's filters, gradients,
lookup order). No models are opened."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from aloe_core.errors import ConfigError
from aloe_train.merge.config import MergeConfig, load_merge_config
from aloe_train.merge.params import global_params, layer_fraction, model_params

REPO_ROOT = Path(__file__).resolve().parents[2]


def _write(tmp_path: Path, data: dict | str) -> Path:
    path = tmp_path / "merge.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")
    return path


def _ties(**extra) -> dict:
    return {
        "merge_method": "ties",
        "base_model": "base",
        "models": [{"model": "a", "parameters": {"weight": 0.5, "density": 0.5}}, {"model": "b"}],
        "parameters": {"weight": 0.25},
        **extra,
    }


@pytest.mark.parametrize("name", ["tiny_cpu.yaml", "llama3_8b_dare_ties.yaml"])
def test_example_configs_are_valid(name):
    cfg = load_merge_config(REPO_ROOT / "configs" / "merge" / name)
    assert cfg.merge_method == "dare_ties" and cfg.base_model is not None and len(cfg.models) == 2


def _model_params(params: dict) -> list[dict]:
    return [{"model": "a", "parameters": params}]


CONFIG_ERRORS = [
    (_ties(slice={"a": 1}), "merge.yaml: slice: unknown key"),
    (_ties(slices=[{"sources": []}]), "merge.yaml: slices: layer-range merges (slices) are not supported"),
    (_ties(merge_method="slerp"), "merge_method: 'slerp' is not supported; use one of linear, task_arith"),
    (_ties(base_model=None), "base_model: required by ties"),
    (_ties(dtype="int8"), "dtype: 'int8' is not supported"),
    (_ties(tokenizer_source="union"), "tokenizer_source: union (vocabulary merging) is not supported"),
    (_ties(models=_model_params({"density": 1.5})), "models[0].parameters.density: must be between 0 and 1"),
    (
        _ties(models=_model_params({"normalize": True})),
        "models[0].parameters.normalize: normalize is method-wide",
    ),
    (
        _ties(parameters={"gamma": 0.1}),
        "parameters.gamma: unknown parameter for ties (known: int8_mask, norm",
    ),
    (_ties(parameters={"normalize": 1}), "parameters.normalize: must be true or false, got 1"),
    (_ties(parameters={"weight": "heavy"}), "parameters.weight: must be a number, got 'heavy'"),
    (_ties(parameters={"weight": [{"valeu": 1}]}), "parameters.weight: [0]: a conditional entry has exactly"),
    (_ties(models=[{"model": "a"}, {"model": "a"}]), "models[1].model: a is listed twice"),
    (_ties(models=[{"model": "base"}]), "models: ties needs at least one model besides base_model"),
    (
        {"merge_method": "linear", "base_model": "c", "models": _model_params({"weight": 1})},
        "base_model: linear merges the listed models and adds base_model as one more input",
    ),
]


@pytest.mark.parametrize(("data", "message"), CONFIG_ERRORS)
def test_config_errors_name_the_field(tmp_path, data, message):
    with pytest.raises(ConfigError) as info:
        load_merge_config(_write(tmp_path, data))
    assert message in str(info.value)


def test_a_mergekit_config_loads_unchanged(tmp_path):
    text = """\
merge_method: dare_ties
base_model: meta-llama/Meta-Llama-3-8B
models:
  - model: meta-llama/Meta-Llama-3-8B
  - model: org/medical-sft
    parameters:
      density: 0.53
      weight: 0.6
  - model: meta-llama/Meta-Llama-3-8B-Instruct
    parameters:
      density: [1, 0.7, 0.1]
      weight:
        - filter: mlp
          value: 0.5
        - value: 0
parameters:
  int8_mask: true
  normalize: false
dtype: bfloat16
"""
    cfg = load_merge_config(_write(tmp_path, text))
    assert [m.model for m in cfg.inputs()] == [
        "meta-llama/Meta-Llama-3-8B", "org/medical-sft", "meta-llama/Meta-Llama-3-8B-Instruct"
    ]  # fmt: skip
    instruct = cfg.models[2]
    assert model_params(cfg, instruct, "model.layers.0.mlp.up_proj.weight", 0.5) == {
        "weight": 0.5,
        "density": 0.7,
    }
    assert model_params(cfg, instruct, "model.layers.0.self_attn.q_proj.weight", 0.25)["weight"] == 0.0
    assert global_params(cfg, "lm_head.weight", 0.0) == {
        "int8_mask": True, "normalize": False, "rescale": True, "lambda": 1.0
    }  # fmt: skip


def test_gradients_interpolate_over_layers_like_mergekit():
    cfg = MergeConfig.model_validate(
        _ties(models=[{"model": "a", "parameters": {"weight": [0.0, 1.0, 0.5]}}])
    )
    model = cfg.models[0]
    # 12 layers: layer 3 sits at t = 3/11 between points 0 (t=0) and 1 (t=0.5).
    t = layer_fraction("model.layers.3.mlp.down_proj.weight", 12)
    assert t == 3 / 11
    assert model_params(cfg, model, "model.layers.3.mlp.down_proj.weight", t)["weight"] == pytest.approx(
        6 / 11
    )
    assert model_params(cfg, model, "x", layer_fraction("model.layers.11.x", 12))["weight"] == 0.5
    # Embeddings, final norm and head sit at t = 0; a single-layer model's layer at t = 1.
    assert layer_fraction("model.embed_tokens.weight", 12) == 0.0
    assert layer_fraction("lm_head.weight", 12) == 0.0
    assert layer_fraction("model.layers.0.input_layernorm.weight", 1) == 1.0


def test_filters_first_match_then_top_level_then_default():
    weight = [{"filter": "mlp", "value": 0.7}, {"filter": "*", "value": 0.1}]
    cfg = MergeConfig.model_validate(
        _ties(
            models=_model_params({"density": [{"filter": "self_attn", "value": 0.2}]}),
            parameters={"weight": weight, "normalize": False},
        )
    )
    model = cfg.models[0]
    assert model_params(cfg, model, "model.layers.0.self_attn.k_proj.weight", 0) == {
        "weight": 0.1,
        "density": 0.2,
    }
    assert model_params(cfg, model, "model.layers.0.mlp.up_proj.weight", 0) == {"weight": 0.7, "density": 1.0}
    assert global_params(cfg, "any", 0)["normalize"] is False


def test_unresolvable_weight_names_model_and_tensor():
    only_mlp = _model_params({"weight": [{"filter": "mlp", "value": 1}]})
    cfg = MergeConfig.model_validate({"merge_method": "ties", "base_model": "b", "models": only_mlp})
    with pytest.raises(
        ConfigError, match=r"model a: parameter weight has no value for tensor lm_head\.weight"
    ):
        model_params(cfg, cfg.models[0], "lm_head.weight", 0)


def test_yaml_scientific_notation_strings_are_numbers(tmp_path):
    # PyYAML reads 1e-1 (no dot) as a string; mergekit's pydantic parses it as a number, and so do we.
    path = _write(tmp_path, "merge_method: linear\nmodels:\n  - model: a\n    parameters: {weight: 1e-1}\n")
    cfg = load_merge_config(path)
    assert model_params(cfg, cfg.models[0], "w", 0) == {"weight": 0.1}
