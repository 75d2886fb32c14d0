"""Before any tensor is merged: open the input folders, check they can be merged, plan every tensor.

Checks (all raise :class:`~aloe_core.errors.InputError` or :class:`~aloe_core.errors.ConfigError`
naming the model folder and, where it applies, the tensor):

* each model is a local folder with ``config.json`` and safetensors weights (one file or an index);
* all models have the reference model's ``model_type`` and ``architectures``;
* all models have the same tensor names and, per tensor, the same shape (a different vocabulary shows
  up here, on the embeddings); non-floating tensors must also have the same dtype;
* every parameter resolves for every tensor (a ``weight`` left unset by filters is an error).

The plan fixes the processing order: tensors sorted by name, inputs in mergekit's order. DARE masks are
drawn from one generator in that order, which is what makes a seeded merge reproduce
``mergekit-yaml --random-seed`` (mergekit's scheduler also runs tensors in name order).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from aloe_core.errors import ConfigError, InputError
from aloe_train.merge import params
from aloe_train.merge.config import MergeConfig
from aloe_train.merge.io import INDEX_FILE, TensorInfo, read_header

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def dtype_from_name(name: str | None) -> torch.dtype | None:
    return None if name is None else _DTYPES[name.removeprefix("torch.")]


@dataclass
class SourceModel:
    """One input folder: its config.json, and where each tensor is stored."""

    path: Path
    config: dict[str, Any]
    tensors: dict[str, TensorInfo]
    files: list[Path]

    @classmethod
    def open(cls, path: str | Path) -> SourceModel:
        """Read the folder's config and safetensors headers (no tensor data).

        Raises:
            InputError: not a folder, no config.json, no safetensors weights, or an index naming a
                missing shard.
        """
        folder = Path(path)
        if not folder.is_dir():
            raise InputError(
                f"{folder}: model folder not found (aloe merges Hugging Face folders, local or on s3:// or "
                "gs://; download hub models first, e.g. with `huggingface-cli download`)"
            )
        config_file = folder / "config.json"
        if not config_file.is_file():
            raise InputError(f"{folder}: no config.json; point the config at a Hugging Face model folder")
        config = json.loads(config_file.read_text(encoding="utf-8"))
        files = _weight_files(folder)
        tensors: dict[str, TensorInfo] = {}
        for file in files:
            infos, _ = read_header(file)
            for name, info in infos.items():
                if name in tensors:
                    raise InputError(f"{folder}: tensor {name} is stored in two files ({file.name})")
                tensors[name] = info
        return cls(path=folder, config=config, tensors=tensors, files=files)


def _weight_files(folder: Path) -> list[Path]:
    index = folder / INDEX_FILE
    if index.is_file():
        weight_map = json.loads(index.read_text(encoding="utf-8")).get("weight_map", {})
        files = sorted({folder / name for name in weight_map.values()})
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise InputError(f"{index}: lists shard(s) that do not exist: {', '.join(missing[:3])}")
        return files
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise InputError(
            f"{folder}: no safetensors weights (*.safetensors); convert pickled checkpoints first "
            "(load with transformers and save_pretrained(safe_serialization=True))"
        )
    return files


@dataclass(frozen=True)
class TensorJob:
    """Everything needed to merge one tensor."""

    name: str
    shape: tuple[int, ...]
    compute_dtype: torch.dtype
    out_dtype: torch.dtype
    floating: bool
    global_params: dict[str, Any] = field(default_factory=dict)
    model_params: list[dict[str, Any]] = field(default_factory=list)  # one per input, in input order


def check_compatible(models: list[SourceModel], reference: SourceModel) -> None:
    """Same architecture, tensor names and shapes as ``reference`` (see the module docstring)."""
    arch = _architecture(reference)
    for model in models:
        if _architecture(model) != arch:
            raise InputError(
                f"{model.path}: architecture {_architecture(model)} differs from {reference.path}'s {arch}; "
                "only models of one architecture can be merged"
            )
        missing = sorted(set(reference.tensors) - set(model.tensors))
        extra = sorted(set(model.tensors) - set(reference.tensors))
        if missing or extra:
            raise InputError(
                f"{model.path}: tensor names differ from {reference.path}: "
                + "; ".join(
                    f"{label} {', '.join(names[:3])}{' ...' if len(names) > 3 else ''}"
                    for label, names in (("missing", missing), ("extra", extra))
                    if names
                )
            )
        for name, ref in reference.tensors.items():
            info = model.tensors[name]
            if info.shape != ref.shape:
                hint = (
                    " (different vocabularies? merged models must share one tokenizer)"
                    if _is_vocab(name)
                    else ""
                )
                raise InputError(
                    f"{model.path}: tensor {name} has shape {list(info.shape)} but {reference.path} has "
                    f"{list(ref.shape)}{hint}"
                )
            if not ref.dtype.is_floating_point and info.dtype != ref.dtype:
                raise InputError(
                    f"{model.path}: non-floating tensor {name} is {info.dtype}, "
                    f"{reference.path} has {ref.dtype}"
                )


def _architecture(model: SourceModel) -> tuple[Any, Any]:
    return model.config.get("model_type"), model.config.get("architectures")


def _is_vocab(name: str) -> bool:
    return "embed" in name or "lm_head" in name or "wte" in name


def plan_tensors(cfg: MergeConfig, models: list[SourceModel], reference: SourceModel) -> list[TensorJob]:
    """One job per tensor, sorted by name, with every parameter resolved (see :mod:`.params`).

    ``models`` are in ``cfg.inputs()`` order. Raises ConfigError when a parameter cannot be resolved.
    """
    names = sorted(reference.tensors)
    layers = {params.layer_index(n) for n in names} - {None}
    num_layers = int(reference.config.get("num_hidden_layers") or (max(layers) + 1 if layers else 1))
    compute = dtype_from_name(cfg.dtype)
    out = dtype_from_name(cfg.out_dtype)
    inputs = cfg.inputs()
    jobs = []
    for name in names:
        dtypes = [m.tensors[name].dtype for m in models]
        floating = all(d.is_floating_point for d in dtypes)
        work = compute or _promote(dtypes)
        t = params.layer_fraction(name, num_layers)
        per_model = [
            {}
            if cfg.spec.uses_base and entry.model == cfg.base_model
            else params.model_params(cfg, entry, name, t)
            for entry in inputs
        ]
        jobs.append(
            TensorJob(
                name=name,
                shape=reference.tensors[name].shape,
                compute_dtype=work if floating else dtypes[0],
                out_dtype=(out or work) if floating else dtypes[0],
                floating=floating,
                global_params=params.global_params(cfg, name, t),
                model_params=per_model,
            )
        )
    _check_zero_weights(cfg, jobs)
    return jobs


def _promote(dtypes: list[torch.dtype]) -> torch.dtype:
    result = dtypes[0]
    for dtype in dtypes[1:]:
        result = torch.promote_types(result, dtype)
    return result


def _check_zero_weights(cfg: MergeConfig, jobs: list[TensorJob]) -> None:
    """A normalized linear merge whose weights sum to 0 divides by zero: refuse it up front."""
    if cfg.merge_method != "linear":
        return
    for job in jobs:
        if (
            job.global_params["normalize"]
            and job.floating
            and sum(p["weight"] for p in job.model_params) == 0
        ):
            raise ConfigError(
                f"linear with normalize: the weights sum to 0 for tensor {job.name}; "
                "change the weights or set parameters.normalize: false"
            )
