"""Parameter values per tensor: filters, layer gradients and defaults, resolved as mergekit resolves them.

mergekit 0.1.5 (``config.evaluate_setting`` and ``parameter_resolver``) semantics, reproduced here:

* a scalar is its value;
* a list of numbers is a gradient: at layer fraction ``t`` the value is interpolated linearly between
  the two nearest of the evenly spaced points; a list of true/false picks ``values[int(t * (n - 1))]``;
* a list of ``{filter, value}`` entries: the first entry whose filter is absent, ``*``, or a substring
  of the tensor name gives the value (evaluated as above); no match means "not set here";
* lookup order for a per-model parameter: that model's ``parameters``, then the top-level ``parameters``,
  then the method default; method-wide parameters come from the top level or the default.

``t`` is ``layer / (num_layers - 1)`` for tensors of decoder layer ``layer`` (``1`` when there is one
layer) and ``0`` for every other tensor (embeddings, final norm, LM head), as in mergekit's planner.
"""

from __future__ import annotations

import re
from typing import Any

from aloe_core.errors import ConfigError
from aloe_train.merge.config import REQUIRED, InputModel, MergeConfig, coerce

# Decoder-layer tensors of Hugging Face causal LMs: model.layers.N.* (Llama, Mistral, Qwen, Gemma, ...).
LAYER_PATTERN = re.compile(r"(?:^|\.)layers\.(\d+)\.")


def layer_index(tensor_name: str) -> int | None:
    match = LAYER_PATTERN.search(tensor_name)
    return int(match.group(1)) if match else None


def layer_fraction(tensor_name: str, num_layers: int) -> float:
    """mergekit's gradient position ``t`` of a tensor (see the module docstring)."""
    index = layer_index(tensor_name)
    if index is None:
        return 0.0
    return index / (num_layers - 1) if num_layers > 1 else 1.0


def evaluate(name: str, setting: Any, tensor_name: str, t: float) -> bool | float | None:
    """The value of one parameter setting for one tensor, or None when no filter entry matches."""
    if isinstance(setting, dict):
        setting = [setting]
    if not isinstance(setting, list):
        return coerce(name, setting)
    if not setting:
        return None
    if all(isinstance(entry, dict) for entry in setting):
        for entry in setting:
            flt = entry.get("filter")
            if flt is None or flt == "*" or (tensor_name and flt in tensor_name):
                return evaluate(name, entry["value"], tensor_name, t)
        return None
    values = [coerce(name, v) for v in setting]
    if any(isinstance(v, bool) for v in values):
        return values[int(t * (len(values) - 1))]
    scaled = t * (len(values) - 1)
    i0 = int(scaled)
    i1 = min(len(values) - 1, i0 + 1)
    frac = scaled - i0
    # Endpoints were range-checked; the interpolation stays between them (up to rounding).
    return (1 - frac) * values[i0] + frac * values[i1]


def global_params(cfg: MergeConfig, tensor_name: str, t: float) -> dict[str, Any]:
    """Method-wide parameters for one tensor (top level, else default)."""
    out = {}
    for name, default in cfg.spec.global_params.items():
        value = _lookup(name, [cfg.parameters], tensor_name, t)
        out[name] = default if value is None else value
    return out


def model_params(cfg: MergeConfig, model: InputModel, tensor_name: str, t: float) -> dict[str, Any]:
    """Per-model parameters of ``model`` for one tensor.

    Raises:
        ConfigError: a required parameter (``weight``) has no value for this tensor, naming the model,
            the tensor and where a value could be set.
    """
    out = {}
    for name, default in cfg.spec.model_params.items():
        value = _lookup(name, [model.parameters, cfg.parameters], tensor_name, t)
        if value is None:
            if default is REQUIRED:
                raise ConfigError(
                    f"model {model.model}: parameter {name} has no value for tensor {tensor_name} "
                    f"(set it in this model's parameters or in the top-level parameters; check filters)"
                )
            value = default
        out[name] = value
    return out


def _lookup(name: str, scopes: list[dict[str, Any] | None], tensor_name: str, t: float) -> Any:
    for scope in scopes:
        if scope and name in scope:
            value = evaluate(name, scope[name], tensor_name, t)
            if value is not None:
                return value
    return None
