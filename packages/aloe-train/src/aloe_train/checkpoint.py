"""Sharded checkpoints (torch DCP through Ray Train) and the final Hugging Face export. Recipe-agnostic.

A checkpoint folder ``checkpoint-NNNNNN`` holds:

* ``.metadata`` + ``__<rank>_0.distcp``: model and optimizer state, sharded as trained (DCP; it can be
  loaded on a different number of workers, though the data position then no longer applies);
* ``trainer_state.json`` (rank 0): step, LR-scheduler state, the config that shapes training;
* ``worker-<rank>.json`` + ``worker-<rank>.safetensors``: that rank's data position (micro-batches
  consumed) and RNG states (the tensors in safetensors, the rest as JSON: nothing read back is a pickle,
  since checkpoints sit on shared storage anyone on the cluster can write).

Each rank writes its files into a local temporary folder and hands it to ``ray.train.report``, which
copies all ranks' folders into one folder under the run's storage path (shared storage on multi-node
clusters) and remembers it as the latest checkpoint for ``ray.train.get_checkpoint()`` after a restart.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import torch

from aloe_core import storage
from aloe_core.atomic import publish_dir, staging_dir
from aloe_core.errors import ConfigError, InputError
from aloe_train.cards import write_model_card

logger = logging.getLogger("aloe.train")

TRAINER_STATE = "trainer_state.json"


def checkpoint_name(step: int) -> str:
    return f"checkpoint-{step:06d}"


def _rank() -> int:
    import torch.distributed as dist

    return dist.get_rank() if dist.is_initialized() else 0


def save_checkpoint(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    *,
    step: int,
    trainer_state: dict[str, Any],
    worker_state: dict[str, Any],
    metrics: dict[str, Any],
) -> None:
    """Write this rank's shard and report it to Ray Train (a collective: every rank must call it).

    ``trainer_state`` (JSON-serialisable) is written by rank 0 only; ``worker_state`` per rank.
    """
    import ray.train
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict

    rank = _rank()
    with tempfile.TemporaryDirectory(prefix=f"aloe-ckpt-{step}-") as tmp:
        model_state, optim_state = get_state_dict(model, optimizer)
        dcp.save({"model": model_state, "optim": optim_state}, checkpoint_id=tmp)
        _save_worker_state(worker_state, Path(tmp), rank)
        if rank == 0:
            (Path(tmp) / TRAINER_STATE).write_text(json.dumps({**trainer_state, "step": step}, indent=2))
        ray.train.report(
            metrics,
            checkpoint=ray.train.Checkpoint.from_directory(tmp),
            checkpoint_dir_name=checkpoint_name(step),
        )


def load_checkpoint(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, directory: str | Path
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Load model and optimizer shards in place; returns ``(trainer_state, this rank's worker_state)``.

    Raises:
        InputError: ``directory`` is not a checkpoint written by :func:`save_checkpoint`, or lacks this
            rank's worker state (it was written by fewer workers).
    """
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    directory = Path(directory)
    state_file, worker_file = directory / TRAINER_STATE, directory / f"worker-{_rank():05d}.json"
    if not state_file.is_file():
        raise InputError(f"{directory}: not an aloe training checkpoint (no {TRAINER_STATE})")
    if not worker_file.is_file():
        raise InputError(f"{directory}: no {worker_file.name}; resume with the worker count that wrote it")
    model_state, optim_state = get_state_dict(model, optimizer)
    state = {"model": model_state, "optim": optim_state}
    dcp.load(state, checkpoint_id=str(directory))
    set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"])
    return json.loads(state_file.read_text()), _load_worker_state(directory, _rank())


def _save_worker_state(state: dict[str, Any], directory: Path, rank: int) -> None:
    """Tensors (RNG states) into ``worker-<rank>.safetensors``, everything else into ``.json``."""
    from safetensors.torch import save_file

    tensors = {k: v.contiguous() for k, v in state.items() if isinstance(v, torch.Tensor)}
    plain = {k: v for k, v in state.items() if not isinstance(v, torch.Tensor)}
    save_file(tensors, str(directory / f"worker-{rank:05d}.safetensors"))
    (directory / f"worker-{rank:05d}.json").write_text(json.dumps(plain, indent=2))


def _load_worker_state(directory: Path, rank: int) -> dict[str, Any]:
    from safetensors.torch import load_file

    state: dict[str, Any] = json.loads((directory / f"worker-{rank:05d}.json").read_text())
    tensors = directory / f"worker-{rank:05d}.safetensors"
    if tensors.is_file():
        state.update(load_file(str(tensors)))
    return state


@contextmanager
def resume_directory(resume_from: str | None) -> Iterator[Path | None]:
    """The checkpoint to resume from: Ray's latest for this run (after a worker failure or a re-run of the
    same output folder) first, else ``resume_from``, else None.

    Ray finds its latest checkpoint in the run's storage (the snapshot it keeps beside the checkpoints,
    through the filesystem the run was given: a URI's too) and downloads one on a URI into a local
    temporary folder; a ``resume_from`` URI is read the same way, as a Ray checkpoint on that filesystem.
    """
    import ray.train

    checkpoint = ray.train.get_checkpoint()
    if checkpoint is None and resume_from is not None and storage.is_uri(resume_from):
        if not storage.is_file(storage.join(resume_from, TRAINER_STATE)):
            raise InputError(
                f"resume_from: {resume_from} has no {TRAINER_STATE}; point it at a checkpoint-NNNNNN folder"
            )
        filesystem, path = storage.resolve(resume_from)
        checkpoint = ray.train.Checkpoint(path, filesystem=filesystem)
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            yield Path(directory)
        return
    if resume_from is not None and not Path(resume_from).is_dir():
        raise InputError(
            f"resume_from: {resume_from} is not a folder; point it at a checkpoint-NNNNNN folder"
        )
    yield Path(resume_from) if resume_from else None


def check_same_run(saved: dict[str, Any], current: dict[str, Any], directory: Path) -> None:
    """Refuse to resume from a checkpoint whose training-shaping settings differ from this run's.

    Raises:
        ConfigError: naming the differing fields.
    """
    diffs = sorted(_diff(saved, current))
    if diffs:
        raise ConfigError(
            f"{directory}: written with different settings ({', '.join(diffs)}); restore them, or train "
            "into a new output_dir (a re-run of the same output_dir resumes its latest checkpoint)"
        )


def _diff(a: Any, b: Any, prefix: str = "") -> Iterator[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in set(a) | set(b):
            yield from _diff(a.get(key), b.get(key), f"{prefix}{key}.")
    elif a != b:
        yield prefix.rstrip(".")


def rng_state() -> dict[str, torch.Tensor]:
    """This process's RNG states as flat uint8 tensors (``rng_torch``, ``rng_cuda``), safetensors-ready."""
    state = {"rng_torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["rng_cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["rng_torch"])
    if "rng_cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["rng_cuda"])


# --------------------------------------------------------------------------------------------- export
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def export_hf_model(
    model: torch.nn.Module,
    *,
    base_model: str,
    out_dir: Path,
    dtype: str,
    max_shard_size: str,
    card: dict[str, Any],
    kind: Literal["sft", "dpo"],
    chat_template: str | None = None,
) -> Path | None:
    """Gather the full weights (a collective) and, on rank 0, write a Hugging Face folder.

    The folder has safetensors weights, ``config.json`` (``use_cache`` back on), the base model's
    tokenizer (with ``chat_template`` if given) and generation config, and the model card (``README.md``
    made from the ``card`` facts by :func:`aloe_train.cards.write_model_card`).
    It is written next to ``out_dir`` (a local folder: on a URI output, the caller uploads it) and
    renamed into place, so a crash never leaves a half-written model. Returns ``out_dir`` on rank 0.
    """
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    state = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    if _rank() != 0:
        return None
    out_dir = Path(out_dir)
    staging = staging_dir(out_dir)
    try:
        _write_hf_folder(state, base_model, staging, dtype, max_shard_size, chat_template)
        write_model_card(staging, kind=kind, facts=card)
        publish_dir(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir


def _write_hf_folder(
    state: dict[str, torch.Tensor],
    base_model: str,
    folder: Path,
    dtype: str,
    shard: str,
    chat_template: str | None,
) -> None:
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    base_model = storage.local_copy(base_model)  # a base model on a URI: its cached local copy
    config = AutoConfig.from_pretrained(base_model)
    target = DTYPES.get(dtype) or _config_dtype(config)
    config.use_cache = True
    with torch.device("meta"):
        fresh = AutoModelForCausalLM.from_config(config, dtype=target)
    result = fresh.load_state_dict({k: v.to(target) for k, v in state.items()}, strict=False, assign=True)
    if result.unexpected_keys:
        raise RuntimeError(f"export: weights the model does not have: {result.unexpected_keys[:5]}")
    fresh.tie_weights()
    still_meta = [n for n, p in fresh.named_parameters() if p.is_meta]
    if still_meta:
        raise RuntimeError(f"export: no trained weights for {still_meta[:5]}")
    fresh.config.dtype = target
    fresh.save_pretrained(folder, safe_serialization=True, max_shard_size=shard)
    tokenizer = AutoTokenizer.from_pretrained(base_model)
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    tokenizer.save_pretrained(folder)
    try:
        GenerationConfig.from_pretrained(base_model).save_pretrained(folder)
    except OSError:  # the base model has no generation_config.json: transformers' defaults apply
        logger.info("export: %s has no generation config; none written", base_model)


def _config_dtype(config: Any) -> torch.dtype:
    dtype = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
    if isinstance(dtype, torch.dtype):
        return dtype
    return DTYPES.get(str(dtype).replace("torch.", ""), torch.float32)
