"""Run a merge: check, plan, merge tensor by tensor into streamed shards, then write the folder atomically.

Memory: a merge holds, at any time, the tensor being merged from each input plus a few temporaries of
that tensor's size (about ``2 * inputs + 4`` copies at the compute dtype for TIES/DARE, and the int64
sort indices of a TIES trim), never a whole model; the largest tensor of an LLM (the embeddings) is a
few percent of the model. ``benchmarks/merge.py`` measures the peak.

The output folder (Hugging Face layout, loadable with ``from_pretrained`` and vLLM):

* ``model.safetensors`` or ``model-0000i-of-0000n.safetensors`` + ``model.safetensors.index.json``;
* ``config.json`` and ``generation_config.json`` from the reference model (base, else the first model),
  with ``dtype`` set to the saved dtype; tokenizer files from ``tokenizer_source`` (default: reference);
* ``README.md`` (see :mod:`.card`) and ``mergekit_config.yml`` (the recipe as given).

It is assembled in a hidden sibling folder and renamed into place at the end, so an interrupted merge
never leaves a folder that loads. Input models (and ``tokenizer_source``) may be ``s3://`` / ``gs://``
URIs, read from their local copies (:func:`aloe_core.storage.local_copy`: safetensors are memory-mapped);
so may ``output_dir``: the folder is then built in a local scratch folder and uploaded with
``config.json`` last (:func:`aloe_core.atomic.building_dir`), the rule of training exports, and a
folder on the bucket without ``config.json`` (an upload that was cut off) counts as empty.
"""

from __future__ import annotations

import json
import logging
import math
import re
import resource
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any, BinaryIO

import torch
import yaml

from aloe_core import storage
from aloe_core.atomic import building_dir, remove_debris
from aloe_core.errors import ConfigError, InputError
from aloe_train.cards import write_model_card
from aloe_train.merge import methods
from aloe_train.merge.card import FileRecord, merge_card, model_name
from aloe_train.merge.config import MergeConfig
from aloe_train.merge.io import (
    ShardWriter,
    parse_size,
    plan_shards,
    read_tensor,
    sha256_file,
    shard_names,
    write_index,
)
from aloe_train.merge.plan import SourceModel, TensorJob, check_compatible, plan_tensors

logger = logging.getLogger("aloe.train.merge")

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template.jinja",
    "chat_template.json",
    "tokenizer.model",
    "vocab.json",
    "merges.txt",
    "vocab.txt",
)
RECIPE_FILE = "mergekit_config.yml"


def run_merge(
    cfg: MergeConfig,
    output_dir: str | Path | None = None,
    *,
    config_text: str | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Merge the models of ``cfg`` into ``output_dir`` (default ``cfg.output_dir``).

    Args:
        cfg: the recipe; checked again here.
        output_dir: destination folder; must not exist or be empty unless ``overwrite``.
        config_text: the YAML as the user wrote it, recorded verbatim in the card (default: a dump).
        overwrite: replace an existing non-empty ``output_dir``.

    Returns:
        A summary: ``output_dir``, ``tensors``, ``parameters``, ``shards``, ``seconds``, ``peak_rss_bytes``.

    Raises:
        ConfigError: bad recipe, no output folder, bad ``max_shard_size``, unresolvable parameter.
        InputError: missing or incompatible models (architecture, tensor names, shapes), occupied output.
    """
    start = time.perf_counter()
    cfg.check()
    out = _destination(cfg, output_dir, overwrite)
    remove_debris(out)  # a killed earlier merge's staging folder beside it
    models = [SourceModel.open(storage.local_copy(entry.model)) for entry in cfg.inputs()]
    reference = models[[m.model for m in cfg.inputs()].index(cfg.reference_model())]
    check_compatible(models, reference)
    _warn_ignored_base_parameters(cfg)
    jobs = plan_tensors(cfg, models, reference)
    tokenizer_dir = _tokenizer_source(cfg, reference)
    max_bytes = parse_size(cfg.max_shard_size)
    logger.info("merging %d tensors of %d models (%s) into %s", len(jobs), len(models), cfg.merge_method, out)
    with building_dir(out, last="config.json") as staging:
        outputs = _merge_weights(staging, cfg, models, jobs, max_bytes)
        out_dtypes = {str(j.out_dtype).removeprefix("torch.") for j in jobs if j.floating}
        _copy_side_files(reference.path, tokenizer_dir, staging, out_dtypes)
        text = config_text if config_text is not None else _dump(cfg)
        (staging / RECIPE_FILE).write_text(text, encoding="utf-8")
        facts = merge_card(
            cfg,
            title=storage.name_of(out),
            config_text=text,
            inputs=_hash_inputs(models, [model_name(entry.model) for entry in cfg.inputs()]),
            outputs=outputs,
            tensors=len(jobs),
            parameters=sum(_numel(j.shape) for j in jobs),
            out_dtype=", ".join(sorted(out_dtypes)) or "n/a",
        )
        write_model_card(staging, kind="merge", facts=facts)
    seconds = time.perf_counter() - start
    logger.info("merged %d tensors into %s in %.1f s", len(jobs), out, seconds)
    return {
        "output_dir": str(out),
        "tensors": len(jobs),
        "parameters": sum(_numel(j.shape) for j in jobs),
        "shards": [r.path.name for r in outputs],
        "seconds": seconds,
        "peak_rss_bytes": peak_rss_bytes(),
    }


def peak_rss_bytes() -> int:
    """This process's peak resident memory: Linux's VmHWM (its own address space), else ``ru_maxrss``
    (which Linux carries over from the parent across fork + exec)."""
    try:
        status = Path("/proc/self/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) * 1024
    except (OSError, AttributeError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _destination(cfg: MergeConfig, output_dir: str | Path | None, overwrite: bool) -> str | Path:
    target = output_dir if output_dir is not None else cfg.output_dir
    if target is None:
        raise ConfigError("no output folder: set output_dir in the config or pass --output-dir")
    name = model_name(target)
    if any(model_name(entry.model) == name for entry in cfg.inputs()):
        raise InputError(f"{name}: the output folder is one of the input models; choose another")
    if storage.is_uri(target):
        out = str(target).rstrip("/")
        if storage.is_file(storage.join(out, "config.json")) and not overwrite:  # a whole model is there
            raise InputError(f"{out}: folder is not empty; pass --force (overwrite=True) to replace it")
        return out
    out = Path(target).absolute()
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a directory; choose another output folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise InputError(f"{out}: folder is not empty; pass --force (overwrite=True) to replace it")
    return out


def _warn_ignored_base_parameters(cfg: MergeConfig) -> None:
    if not cfg.spec.uses_base:
        return
    for entry in cfg.models:
        if entry.model == cfg.base_model and entry.parameters:
            logger.warning("%s: parameters of base_model are not used by %s", entry.model, cfg.merge_method)


def _tokenizer_source(cfg: MergeConfig, reference: SourceModel) -> Path | None:
    if cfg.tokenizer_source in (None, "base"):
        if not any((reference.path / name).is_file() for name in TOKENIZER_FILES):
            logger.warning("%s has no tokenizer files; the output will have none", reference.path)
            return None
        return reference.path
    folder = Path(storage.local_copy(cfg.tokenizer_source))  # a URI: its cached local copy
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        raise InputError(
            f"tokenizer_source: {cfg.tokenizer_source} has no tokenizer files "
            f"({', '.join(TOKENIZER_FILES[:2])}, ...)"
        )
    return folder


def _merge_weights(
    staging: Path, cfg: MergeConfig, models: list[SourceModel], jobs: list[TensorJob], max_bytes: int
) -> list[FileRecord]:
    """Merge every tensor in plan order, streaming each into its planned shard; returns the shards."""
    plan = plan_shards([(j.name, j.out_dtype, j.shape) for j in jobs], max_bytes)
    names = shard_names(len(plan))
    generator = torch.Generator().manual_seed(cfg.seed)
    queue = iter(jobs)
    records, weight_map, total = [], {}, 0
    progress = _Progress(len(jobs))
    with ExitStack() as stack:
        handles = {f: stack.enter_context(open(f, "rb")) for m in models for f in m.files}
        for entries, name in zip(plan, names, strict=True):
            writer = ShardWriter(staging / name, entries)
            try:
                for _ in entries:
                    job = next(queue)
                    writer.write(job.name, merge_tensor(cfg, models, job, handles, generator))
                    weight_map[job.name] = name
                    progress.step(job)
            except BaseException:
                writer.abort()
                raise
            digest = writer.close()
            size = (staging / name).stat().st_size
            total += sum(_numel(e[2]) * e[1].itemsize for e in entries)
            records.append(FileRecord(staging / name, size, digest))
    if len(plan) > 1:
        write_index(staging, weight_map, total)
    return records


def merge_tensor(
    cfg: MergeConfig,
    models: list[SourceModel],
    job: TensorJob,
    handles: dict[Path, BinaryIO],
    generator: torch.Generator,
) -> torch.Tensor:
    """The merged value of one tensor, in ``job.out_dtype``; inputs are read lazily, one at a time."""

    def load(model: SourceModel) -> torch.Tensor:
        info = model.tensors[job.name]
        tensor = read_tensor(info, handles[info.file])
        return tensor if tensor.dtype == job.compute_dtype else tensor.to(job.compute_dtype)

    if not job.floating:
        return _same_buffer(models, job, load)
    spec, g = cfg.spec, job.global_params
    if not spec.uses_base:
        weights = [p["weight"] for p in job.model_params]
        result = methods.linear((load(m) for m in models), weights, normalize=g["normalize"])
        return result.to(job.out_dtype)
    inputs = cfg.inputs()
    base_index = [e.model for e in inputs].index(cfg.base_model)
    others = [i for i in range(len(models)) if i != base_index]
    result = methods.task_arithmetic(
        load(models[base_index]),
        (load(models[i]) for i in others),
        weights=[job.model_params[i]["weight"] for i in others],
        densities=[job.model_params[i]["density"] for i in others],
        sparsification=spec.sparsification,
        consensus=spec.consensus,
        normalize=g["normalize"],
        rescale=g["rescale"],
        lambda_=g["lambda"],
        int8_mask=g["int8_mask"],
        generator=generator,
    )
    return result.to(job.out_dtype)


def _same_buffer(models: list[SourceModel], job: TensorJob, load) -> torch.Tensor:
    """Integer/bool tensors (buffers) are copied, and must be identical in every model."""
    first = load(models[0])
    for model in models[1:]:
        if not torch.equal(first, load(model)):
            raise InputError(f"{model.path}: non-floating tensor {job.name} differs from {models[0].path}")
    return first


class _Progress:
    """Logs merged tensors and bytes about every 30 s (an 8B merge takes minutes)."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.bytes = total, 0, 0
        self.start = self.last = time.perf_counter()

    def step(self, job: TensorJob) -> None:
        self.done += 1
        self.bytes += _numel(job.shape) * job.out_dtype.itemsize
        now = time.perf_counter()
        if now - self.last >= 30 or self.done == self.total:
            self.last = now
            gigabytes, seconds = self.bytes / 1e9, now - self.start
            logger.info("merged %d/%d tensors (%.2f GB) in %.0f s", self.done, self.total, gigabytes, seconds)


def _copy_side_files(
    reference: Path, tokenizer_dir: Path | None, staging: Path, out_dtypes: set[str]
) -> None:
    config = json.loads((reference / "config.json").read_text(encoding="utf-8"))
    if len(out_dtypes) == 1:  # one saved dtype: say so (transformers 5 reads `dtype`, 4.x `torch_dtype`)
        (dtype,) = out_dtypes
        config["dtype"] = dtype
        if "torch_dtype" in config:
            config["torch_dtype"] = dtype
    (staging / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    if (reference / "generation_config.json").is_file():
        shutil.copyfile(reference / "generation_config.json", staging / "generation_config.json")
    for name in TOKENIZER_FILES if tokenizer_dir is not None else ():
        if (tokenizer_dir / name).is_file():
            shutil.copyfile(tokenizer_dir / name, staging / name)


def _hash_inputs(models: list[SourceModel], names: list[str]) -> dict[str, list[FileRecord]]:
    """sha256 of every input weights file, hashed in parallel threads (a second read of the inputs), by
    the name the card gives each model (``names``, in the order of ``models``)."""
    files = [f for m in models for f in m.files]
    with ThreadPoolExecutor(max_workers=min(4, len(files))) as pool:
        digests = dict(zip(files, pool.map(sha256_file, files), strict=True))
    return {
        name: [FileRecord(f, f.stat().st_size, digests[f]) for f in m.files]
        for name, m in zip(names, models, strict=True)
    }


def _dump(cfg: MergeConfig) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json", exclude_defaults=True), sort_keys=False)


def _numel(shape: tuple[int, ...]) -> int:
    return math.prod(shape)
