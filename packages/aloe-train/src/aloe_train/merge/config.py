"""The merge config: mergekit's YAML shape, the subset aloe implements, checked before any work.

A mergekit user's config for the methods below works unchanged::

    merge_method: dare_ties            # linear | task_arithmetic | ties | dare_ties | dare_linear
    base_model: /models/Llama-3.1-8B
    models:
      - model: /models/medical-sft
        parameters: {weight: 0.6, density: 0.5}
      - model: /models/Llama-3.1-8B-Instruct
        parameters: {weight: 0.4, density: 0.5}
    parameters: {normalize: false, rescale: true, int8_mask: true}   # method-wide (and per-model defaults)
    dtype: bfloat16                    # compute dtype; out_dtype: the saved dtype (default: dtype)
    tokenizer_source: base             # whose tokenizer files to copy: base (default) or a model folder

A parameter value is a number or true/false, a list of numbers (a gradient: interpolated over the
layers, first value at layer 0, last at the last layer), or ``{filter, value}`` entries where the first
entry whose ``filter`` is a substring of the tensor name (or ``*`` / absent) applies, exactly as in
mergekit. aloe adds ``random_seed`` (DARE masks; the same as ``mergekit-yaml --random-seed``),
``output_dir`` and ``max_shard_size``; mergekit ignores those keys, so one file serves both tools.

Not implemented, and refused with a message saying so: ``slices``/``modules`` (layer surgery),
``tokenizer`` / ``tokenizer_source: union`` (vocabulary merging), ``chat_template``, other methods.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field

from aloe_core.config import StrictModel, load_config
from aloe_core.errors import ConfigError

# Parameter names and kinds, as mergekit spells them.
BOOL_PARAMS = ("normalize", "rescale", "int8_mask")
FLOAT_PARAMS = ("weight", "density", "lambda")
REQUIRED = object()  # default of a parameter that has none


@dataclass(frozen=True)
class MethodSpec:
    """One merge method: how task vectors are sparsified and combined, and its parameters' defaults.

    ``global_params`` are method-wide (mergekit: shared); ``model_params`` are per input model (for the
    task-vector methods, per model other than the base). A top-level ``parameters`` entry for a
    per-model parameter is the default for every model, as in mergekit.
    """

    name: str
    uses_base: bool
    sparsification: str | None  # None | "magnitude" (TIES) | "random" (DARE)
    consensus: str | None  # None | "sum" (TIES sign election) | "count"
    global_params: dict[str, Any]
    model_params: dict[str, Any]


def _gta(name: str, sparsification: str | None, consensus: str | None, normalize: bool, rescale: bool):
    return MethodSpec(
        name=name,
        uses_base=True,
        sparsification=sparsification,
        consensus=consensus,
        global_params={"int8_mask": False, "normalize": normalize, "rescale": rescale, "lambda": 1.0},
        model_params={"weight": REQUIRED, "density": 1.0},
    )


# Defaults copied from mergekit 0.1.5's registry (merge_methods/registry.py).
METHODS: dict[str, MethodSpec] = {
    "linear": MethodSpec(
        name="linear",
        uses_base=False,
        sparsification=None,
        consensus=None,
        global_params={"normalize": True},
        model_params={"weight": REQUIRED},
    ),
    "task_arithmetic": _gta("task_arithmetic", None, None, normalize=False, rescale=False),
    "ties": _gta("ties", "magnitude", "sum", normalize=True, rescale=False),
    "dare_ties": _gta("dare_ties", "random", "sum", normalize=False, rescale=True),
    "dare_linear": _gta("dare_linear", "random", None, normalize=False, rescale=True),
}

DTYPE_NAMES = ("float32", "bfloat16", "float16")

# mergekit keys aloe does not implement, with what to do instead.
_UNSUPPORTED = {
    "slices": "layer-range merges (slices) are not supported; list whole models under `models:`",
    "modules": "per-module merges (modules) are not supported; list whole models under `models:`",
    "tokenizer": "vocabulary merging (tokenizer:) is not supported; the models must share one vocabulary "
    "and `tokenizer_source` picks whose tokenizer files are copied",
    "chat_template": "chat_template is not supported; edit chat_template.jinja in the output folder",
}


class InputModel(StrictModel):
    """One entry of ``models:``: a local Hugging Face folder (safetensors) and its parameters."""

    model: str
    parameters: dict[str, Any] | None = None


class MergeConfig(StrictModel):
    """A merge recipe (see the module docstring). Call :meth:`check` (done by :func:`load_merge_config`
    and :func:`aloe_train.merge.run.run_merge`) for the method-specific rules pydantic cannot express."""

    merge_method: str
    base_model: str | None = None
    models: list[InputModel] = Field(min_length=1)
    parameters: dict[str, Any] | None = None
    dtype: str | None = None
    out_dtype: str | None = None
    tokenizer_source: str | None = None
    random_seed: int | None = Field(None, ge=0)
    output_dir: str | None = None
    max_shard_size: str = "5GB"
    # Accepted only to be refused with a useful message (see _UNSUPPORTED).
    slices: Any = None
    modules: Any = None
    tokenizer: Any = None
    chat_template: Any = None

    @property
    def spec(self) -> MethodSpec:
        return METHODS[self.merge_method]

    @property
    def seed(self) -> int:
        """The DARE mask seed actually used (0 when the config sets none)."""
        return 0 if self.random_seed is None else self.random_seed

    def inputs(self) -> list[InputModel]:
        """Models in mergekit's input order: as listed, then the base model if it is not listed."""
        listed = [m.model for m in self.models]
        if self.base_model is not None and self.base_model not in listed:
            return [*self.models, InputModel(model=self.base_model)]
        return list(self.models)

    def reference_model(self) -> str:
        """The model whose config.json and generation config the output takes: base, else the first."""
        return self.base_model if self.base_model is not None else self.models[0].model

    def check(self, source: str = "<config>") -> MergeConfig:
        """Method-specific rules; returns self.

        Raises:
            ConfigError: naming ``source`` and the field, e.g. ``x.yaml: models[1].parameters.density:
                must be between 0 and 1, got 1.5``.
        """
        problems = [f"{source}: {p}" for p in _problems(self)]
        if problems:
            raise ConfigError("\n".join(problems))
        return self


def load_merge_config(path: str | Path, overrides: Sequence[str] = ()) -> MergeConfig:
    """Read and fully check a merge YAML, with ``key.sub=value`` ``overrides`` applied first.

    Raises:
        ConfigError: missing file, bad YAML, unknown keys, or a rule of :meth:`MergeConfig.check`.
    """
    return load_config(MergeConfig, path, overrides).check(str(path))


def _problems(cfg: MergeConfig) -> list[str]:
    found = [f"{key}: {why}" for key, why in _UNSUPPORTED.items() if getattr(cfg, key) is not None]
    if cfg.merge_method not in METHODS:
        found.append(f"merge_method: {cfg.merge_method!r} is not supported; use one of {', '.join(METHODS)}")
        return found
    spec = cfg.spec
    for key in ("dtype", "out_dtype"):
        value = getattr(cfg, key)
        if value is not None and value.removeprefix("torch.") not in DTYPE_NAMES:
            found.append(f"{key}: {value!r} is not supported; use one of {', '.join(DTYPE_NAMES)}")
    if cfg.tokenizer_source == "union":
        found.append(
            "tokenizer_source: union (vocabulary merging) is not supported; use base or a model path"
        )
    found += _model_list_problems(cfg, spec)
    found += _parameter_problems("parameters", cfg.parameters, spec, top_level=True)
    for i, entry in enumerate(cfg.models):
        found += _parameter_problems(f"models[{i}].parameters", entry.parameters, spec, top_level=False)
    return found


def _model_list_problems(cfg: MergeConfig, spec: MethodSpec) -> list[str]:
    found = []
    listed = [m.model for m in cfg.models]
    for i, name in enumerate(listed):
        if name in listed[:i]:
            found.append(f"models[{i}].model: {name} is listed twice")
    if spec.uses_base:
        if cfg.base_model is None:
            found.append(f"base_model: required by {spec.name} (task vectors are differences to it)")
        elif all(m == cfg.base_model for m in listed):
            found.append(f"models: {spec.name} needs at least one model besides base_model")
    elif cfg.base_model is not None and cfg.base_model not in listed and not _has(cfg.parameters, "weight"):
        found.append(
            "base_model: linear merges the listed models and adds base_model as one more input, which "
            "then needs a weight: list it under models with a weight (or set parameters.weight), "
            "or remove base_model"
        )
    return found


def _has(params: dict[str, Any] | None, name: str) -> bool:
    return bool(params) and name in params


def _parameter_problems(
    where: str, params: dict[str, Any] | None, spec: MethodSpec, *, top_level: bool
) -> list[str]:
    found = []
    for name, setting in (params or {}).items():
        path = f"{where}.{name}"
        if name in spec.global_params and not top_level:
            found.append(f"{path}: {name} is method-wide; set it under the top-level parameters")
        elif name not in spec.global_params and name not in spec.model_params:
            known = ", ".join([*spec.global_params, *spec.model_params])
            found.append(f"{path}: unknown parameter for {spec.name} (known: {known})")
        else:
            found += [f"{path}: {p}" for p in _setting_problems(name, setting)]
    return found


def _setting_problems(name: str, setting: Any) -> list[str]:
    """Shape and leaf checks of one parameter value (scalar, gradient list, or {filter, value} entries)."""
    if isinstance(setting, dict):
        setting = [setting]
    if isinstance(setting, list) and setting and all(isinstance(e, dict) for e in setting):
        found = []
        for i, entry in enumerate(setting):
            extra = set(entry) - {"filter", "value"}
            if extra or "value" not in entry:
                found.append(f"[{i}]: a conditional entry has exactly `value` and optional `filter`")
            elif entry.get("filter") is not None and not isinstance(entry["filter"], str):
                found.append(f"[{i}].filter: must be a string (a substring of tensor names)")
            elif isinstance(entry["value"], dict) or (
                isinstance(entry["value"], list) and any(isinstance(v, dict | list) for v in entry["value"])
            ):
                found.append(f"[{i}].value: must be a value or a list of values")
            else:
                found += [f"[{i}].value: {p}" for p in _setting_problems(name, entry["value"])]
        return found
    leaves = setting if isinstance(setting, list) else [setting]
    found = []
    for leaf in leaves:
        try:
            coerce(name, leaf)
        except ValueError as exc:
            found.append(str(exc))
    return found[:1]


def coerce(name: str, value: Any) -> bool | float:
    """One parameter value as its kind: bool for normalize/rescale/int8_mask, float otherwise.

    Numeric strings are numbers (PyYAML reads ``1e-3`` as a string). Raises ValueError with the reason.
    """
    if name in BOOL_PARAMS:
        if not isinstance(value, bool):
            raise ValueError(f"must be true or false, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"must be a number, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"must be a finite number, got {value!r}")
    if name == "density" and not 0.0 <= number <= 1.0:
        raise ValueError(f"must be between 0 and 1 (the fraction of each task vector kept), got {value!r}")
    return number
