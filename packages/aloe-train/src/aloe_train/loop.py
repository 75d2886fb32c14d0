"""The training loop every recipe shares: Ray Train V2 workers running FSDP2, read top to bottom.

Driver side, :func:`launch` starts a ``TorchTrainer`` whose workers each run
:func:`train_loop_per_worker`:

    setup -> train (train_step / evaluate / save, every N steps) -> finish -> cleanup

What differs between SFT and DPO is a :class:`Recipe`: how a micro-batch of rows becomes tensors, its
loss (summed, so micro-batches of any size combine exactly), the statistics summed next to the loss
(DPO's rewards and accuracies), and the model card. Everything else lives here once: the sharded model,
optimizer, LR schedule, gradient accumulation over steps that all ranks take together
(:mod:`aloe_train.batching`), evaluation, sharded checkpoints with resume, metrics and the HF export.

Loss normalisation: each optimizer step divides the summed losses by the recipe's weight of the whole
global batch (SFT: trained tokens; DPO: pairs), over all ranks and micro-batches, so results do not
depend on how rows were split across workers or micro-batches.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import pyarrow as pa
import torch
import yaml

from aloe_core import storage
from aloe_core.atomic import atomic_write_json, atomic_write_text, remove_debris
from aloe_core.errors import AloeError
from aloe_train.batching import GlobalStep, StepPlan, synchronized_steps
from aloe_train.checkpoint import (
    check_same_run,
    checkpoint_name,
    export_hf_model,
    load_checkpoint,
    resume_directory,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from aloe_train.config import RecipeConfig
from aloe_train.fsdp import (
    build_optimizer,
    build_scheduler,
    clip_gradients,
    load_causal_lm,
    make_all_reduce_sum,
    mixed_precision_policy,
    shard_model,
    worker_device,
)
from aloe_train.metrics import MetricsLog, Throughput, plot_loss_curve, read_metrics
from aloe_train.outputs import METRICS, MODEL, RunFiles
from aloe_train.shared.stream import DataFacts, PreparedData, move_batch
from aloe_train.shared.tokenizer import resolve_chat_template, training_tokenizer

logger = logging.getLogger("aloe.train")

CHECKPOINTS = "checkpoints"  # Ray Train run name: checkpoints live in OUTPUT/checkpoints/checkpoint-NNNNNN
# Recipe name -> "module:class" of its Recipe (imported and built from its config on the workers).
RECIPES = {"sft": "aloe_train.sft.recipe:SFTRecipe", "dpo": "aloe_train.dpo.recipe:DPORecipe"}


class Recipe(Protocol):
    """What a training recipe supplies to the shared loop (see :class:`aloe_train.sft.recipe.SFTRecipe`).

    A recipe is built from its config (``Recipe(config)``) and owns everything its loss needs; the loop
    calls only these typed methods.
    """

    name: ClassVar[str]
    config_class: ClassVar[type[RecipeConfig]]
    stat_names: ClassVar[tuple[str, ...]]  # summed per micro-batch next to the loss, logged as sum / weight
    weight_name: ClassVar[str]  # what the loss weight counts, as logged (SFT: trained_tokens; DPO: pairs)
    config: RecipeConfig

    def collate(self, table: pa.Table, pad_id: int) -> dict[str, Any]:
        """Rows of one micro-batch -> tensors plus ``weight`` (loss denominator), ``n_tokens`` (real
        tokens), ``rows``, ``slots`` (token slots those rows occupy: padding efficiency = tokens / slots)
        and ``sample_ids`` (list per row)."""

    def dummy(self, pad_id: int) -> dict[str, Any]:
        """A zero-weight micro-batch (loss and gradient 0) for ranks whose data ran out."""

    def loss(self, model: torch.nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        """The micro-batch's summed loss (a tensor to backpropagate) and its summed statistics."""

    def card(self, session: Session, eval_loss: float | None) -> dict[str, Any]:
        """The facts of the exported model folder's card (:func:`aloe_train.cards.training_facts`)."""


def build_recipe(name: str, config: dict[str, Any] | RecipeConfig) -> Recipe:
    """The recipe ``name`` built from its config (a validated config, or its JSON dump on a worker)."""
    module, attribute = RECIPES[name].split(":")
    cls = getattr(importlib.import_module(module), attribute)
    if not isinstance(config, cls.config_class):
        config = cls.config_class.model_validate(config)
    return cls(config)


# ------------------------------------------------------------------------------------------- driver
def launch(config: RecipeConfig, recipe: str, data: PreparedData) -> dict[str, Any]:
    """Train on Ray Train (local Ray or ``RAY_ADDRESS``); return the run summary (``summary.json``).

    ``data`` holds the ``train`` (and optionally ``eval``) Ray Datasets of prepared rows, split equally
    across workers, and the facts (step plan, eval rows) every worker follows.

    Raises:
        AloeError: Ray Train V1 forced on.
        ray.train.TrainingFailedError: training failed more often than ``scaling.max_failures``.
    """
    import ray.train
    from ray.train.torch import TorchTrainer

    if not ray.train.is_v2_enabled():
        raise AloeError("aloe train needs Ray Train V2 (the default); unset RAY_TRAIN_V2_ENABLED=0")
    # Checkpoints go where output_dir is, through Ray Train's own storage layer: on a URI, the pyarrow
    # filesystem aloe_core.storage opens (endpoint from the environment) and the path on it.
    storage_path, storage_filesystem = config.output_dir, None
    if storage.is_uri(config.output_dir):
        storage_filesystem, storage_path = storage.resolve(config.output_dir)
    datasets = data.datasets()
    for ds in datasets.values():
        # Workers re-read these every step/eval: progress bars would flood the driver log.
        ds.context.enable_progress_bars = False
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={
            "recipe": recipe,
            "config": config.model_dump(mode="json"),
            "facts": data.facts.as_dict(),
        },
        scaling_config=ray.train.ScalingConfig(
            num_workers=config.scaling.num_workers,
            use_gpu=config.scaling.use_gpu,
            resources_per_worker={"CPU": config.scaling.cpus_per_worker},
        ),
        run_config=ray.train.RunConfig(
            name=CHECKPOINTS,
            storage_path=storage_path,
            storage_filesystem=storage_filesystem,
            failure_config=ray.train.FailureConfig(max_failures=config.scaling.max_failures),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=config.checkpointing.keep),
        ),
        datasets=datasets,
        dataset_config=_ingest_config(),
    )
    trainer.fit()
    return json.loads(storage.read_text(storage.join(config.output_dir, "summary.json")))


def materialize_if_no_cpu_left(train: Any, config: RecipeConfig, resources: dict[str, float]) -> Any:
    """The training stream, materialized up front when Ray Data could not run while training.

    Later epochs are reshuffled lazily, by Ray Data tasks running during training; when the workers take
    every CPU those tasks could never start and the workers would wait for data forever, so the whole
    stream is materialized first instead (object-store memory: one copy of the rows per epoch).
    """
    spare = resources.get("CPU", 0) - config.scaling.num_workers * config.scaling.cpus_per_worker
    if config.train.epochs > 1 and config.data.shuffle and spare < 1:
        logger.info(
            "no CPU left for Ray Data during training: materializing all %d epochs", config.train.epochs
        )
        return train.materialize()
    return train


def write_run_files(config: RecipeConfig) -> None:
    """``config.yaml`` in the output folder, before anything runs (what was asked, even if it fails).

    Temporary files a killed earlier run left (a half-exported model, a summary being written) go first
    (on object storage nothing is written under a temporary name: there is none).
    """
    text = yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
    if storage.is_uri(config.output_dir):
        atomic_write_text(storage.join(config.output_dir, "config.yaml"), text)
        return
    out = Path(config.output_dir)
    remove_debris(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(text)


def _ingest_config() -> Any:
    """Split every dataset across workers, equal rows each, in a fixed order (no locality reordering)."""
    import ray.train

    options = ray.train.DataConfig.default_ingest_options()
    options.preserve_order = True
    return ray.train.DataConfig(
        datasets_to_split="all", execution_options=options, enable_shard_locality=False
    )


# -------------------------------------------------------------------------------------------- worker
@dataclass
class Session:
    """Everything one worker holds while training."""

    recipe: Recipe
    facts: DataFacts
    files: RunFiles  # where this process writes the run's files (a scratch folder when output_dir is a URI)
    rank: int
    world: int
    device: torch.device
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    metrics: MetricsLog | None = None
    pad_id: int = 0
    step: int = 0  # optimizer steps done
    consumed: int = 0  # real micro-batches this rank has trained on
    saved_step: int = -1
    last_eval: float | None = None
    last_loss: float | None = None
    throughput: Throughput = field(default_factory=Throughput)
    all_reduce: Any = None

    @property
    def config(self) -> Any:
        """The recipe's config (its own class: SFTConfig, DPOStageConfig)."""
        return self.recipe.config

    @property
    def plan(self) -> StepPlan:
        return self.facts.plan


def train_loop_per_worker(loop_config: dict[str, Any]) -> None:
    """The Ray Train worker function."""
    session = setup(loop_config)
    try:
        train(session)
        finish(session)
    finally:
        cleanup(session)


def setup(loop_config: dict[str, Any]) -> Session:
    """Device, mesh, sharded model, optimizer, scheduler; then restore the latest checkpoint, if any."""
    import ray.train
    from torch.distributed.device_mesh import init_device_mesh

    recipe = build_recipe(loop_config["recipe"], loop_config["config"])
    config = recipe.config
    facts = DataFacts.from_dict(loop_config["facts"])
    plan = facts.plan
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    torch.manual_seed(config.train.seed)
    device = worker_device(config.scaling.use_gpu)
    mesh = init_device_mesh(device.type, (world,))
    model = load_causal_lm(
        config.model.path,
        attn_implementation=config.model.attn_implementation,
        activation_checkpointing=config.scaling.activation_checkpointing,
    )
    policy = mixed_precision_policy(config.scaling.mixed_precision, device)
    shard_model(model, mesh, policy, reshard_after_forward=config.scaling.reshard_after_forward)
    optimizer = build_optimizer(model, config.optim)
    session = Session(
        recipe=recipe,
        facts=facts,
        files=RunFiles(config.output_dir),
        rank=rank,
        world=world,
        device=device,
        model=model,
        optimizer=optimizer,
        scheduler=build_scheduler(optimizer, config.optim, plan.steps),
    )
    session.all_reduce = make_all_reduce_sum(device)
    _, session.pad_id = training_tokenizer(config.model.path, config.model.chat_template, check=False)
    restore(session)
    metrics = session.files.fetch(METRICS) if rank == 0 and session.step else session.files.local(METRICS)
    session.metrics = MetricsLog(metrics, rank=rank, resume_step=session.step)
    return session


def restore(s: Session) -> None:
    """Resume model, optimizer, scheduler, step, data position and RNG from the latest checkpoint."""
    with resume_directory(s.config.resume_from) as directory:
        if directory is None:
            return
        trainer_state, worker_state = load_checkpoint(s.model, s.optimizer, directory)
        check_same_run(trainer_state["config"], s.config.resume_identity(), directory)
        s.scheduler.load_state_dict(trainer_state["scheduler"])
        s.step = s.saved_step = int(trainer_state["step"])
        s.consumed = int(worker_state["consumed"])
        set_rng_state(worker_state)
        if s.rank == 0:
            logger.info("resumed from %s at step %d", directory, s.step)


def train(s: Session) -> None:
    """Optimizer steps until the plan's step count; log, evaluate and checkpoint on schedule."""
    loop = s.config.train
    steps = synchronized_steps(
        _micro_batches(s),
        grad_accum_steps=loop.grad_accum_steps,
        dummy=lambda: s.recipe.dummy(s.pad_id),
        weight=lambda batch: batch["weight"],
        all_reduce_sum=s.all_reduce,
    )
    while s.step < s.plan.steps:
        started = time.perf_counter()
        global_step = next(steps, None)
        if global_step is None:  # the data ran out before the plan: only if the split was uneven
            logger.warning("data exhausted at step %d of %d", s.step, s.plan.steps)
            break
        record = train_step(s, global_step, started)
        if s.step % loop.log_every == 0 or s.step == s.plan.steps:
            s.metrics.log(record)
        if s.step % loop.report_every == 0:
            _report(record)
        if loop.eval_every and s.step % loop.eval_every == 0 and s.step < s.plan.steps:
            evaluate(s)
        if loop.save_every and s.step % loop.save_every == 0 and s.step < s.plan.steps:
            save(s, record)
        _maybe_inject_fault(s)


def _micro_batches(s: Session) -> Any:
    """This rank's collated micro-batches, skipping those a resumed run already trained on."""
    import ray.train

    shard = ray.train.get_dataset_shard("train")
    batches = shard.iter_batches(
        batch_size=s.config.train.micro_batch_size,
        batch_format="pyarrow",
        drop_last=False,
        prefetch_batches=2,
    )
    for index, table in enumerate(batches):
        if index >= s.consumed:
            yield s.recipe.collate(table, s.pad_id)


def train_step(s: Session, step: GlobalStep, started: float) -> dict[str, Any]:
    """Forward/backward every micro-batch (dummies too: FSDP collectives), clip, step; global metrics."""
    lr = s.scheduler.get_last_lr()[0]
    # FSDP averages gradients over ranks; scaling by world / global weight makes the update the
    # gradient of (sum of losses) / (weight of the global batch).
    scale = s.world / max(step.global_weight, 1.0)
    names = s.recipe.stat_names
    sums = dict.fromkeys(("loss", *names, "tokens", "rows", "slots"), 0.0)
    sample_ids: list[list[str]] = []
    for batch, real in zip(step.micro_batches, step.real, strict=True):
        batch = move_batch(batch, s.device)
        loss, stats = s.recipe.loss(s.model, batch)
        (loss * scale).backward()
        sums["loss"] += float(loss.detach())
        for name in names:
            sums[name] += stats[name]
        if real:
            for name in ("tokens", "rows", "slots"):
                sums[name] += batch[name if name != "tokens" else "n_tokens"]
            sample_ids += batch["sample_ids"]
    grad_norm = clip_gradients(s.model, s.config.optim.max_grad_norm)
    s.optimizer.step()
    s.scheduler.step()
    s.optimizer.zero_grad(set_to_none=True)
    s.step += 1
    s.consumed += sum(step.real)
    totals = dict(zip(sums, s.all_reduce(list(sums.values())), strict=True))
    weight = max(step.global_weight, 1.0)
    seconds = time.perf_counter() - started
    record = {
        "step": s.step,
        "epoch": round(s.step / s.plan.steps_per_epoch, 4),
        "loss": totals["loss"] / weight,
        **{name: totals[name] / weight for name in names},
        "lr": lr,
        "grad_norm": grad_norm,
        s.recipe.weight_name: int(step.global_weight),
        "tokens": int(totals["tokens"]),
        "rows": int(totals["rows"]),
        "tokens_per_s": s.throughput.add(totals["tokens"], seconds),
        "padding_efficiency": totals["tokens"] / max(totals["slots"], 1.0),
        "step_time_s": round(seconds, 4),
        "time": round(time.time(), 3),  # wall clock at the end of the step (throughput across steps)
    }
    if s.config.train.log_sample_ids:
        record["sample_ids"] = _gather_lists(sample_ids)
    s.last_loss = record["loss"]
    return record


def _gather_lists(local: list[list[str]]) -> list[list[str]]:
    import torch.distributed as dist

    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, local)
    return [row for part in gathered for row in part]


def evaluate(s: Session) -> float | None:
    """Mean loss (and recipe statistics) over the held-out rows (all ranks); logged with the step."""
    import ray.train

    if not s.facts.eval_rows:
        return None
    shard = ray.train.get_dataset_shard("eval")
    tables = shard.iter_batches(batch_size=s.config.train.micro_batch_size, batch_format="pyarrow")
    steps = synchronized_steps(
        (s.recipe.collate(t, s.pad_id) for t in tables),
        grad_accum_steps=1,
        dummy=lambda: s.recipe.dummy(s.pad_id),
        weight=lambda batch: batch["weight"],
        all_reduce_sum=s.all_reduce,
    )
    names = s.recipe.stat_names
    s.model.eval()
    sums = dict.fromkeys(("loss", *names), 0.0)
    weight = 0.0
    with torch.no_grad():
        for step in steps:
            loss, stats = s.recipe.loss(s.model, move_batch(step.micro_batches[0], s.device))
            sums["loss"] += float(loss)
            for name in names:
                sums[name] += stats[name]
            weight += step.global_weight
    s.model.train()
    totals = dict(zip(sums, s.all_reduce(list(sums.values())), strict=True))
    s.last_eval = totals["loss"] / max(weight, 1.0)
    extra = {f"eval_{name}": totals[name] / max(weight, 1.0) for name in names}
    s.metrics.log({"step": s.step, "eval_loss": s.last_eval, **extra})
    return s.last_eval


def save(s: Session, metrics: dict[str, Any]) -> None:
    """A sharded checkpoint of this step, reported to Ray Train (all ranks)."""
    report = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
    save_checkpoint(
        s.model,
        s.optimizer,
        step=s.step,
        trainer_state={
            "config": s.config.resume_identity(),
            "scheduler": s.scheduler.state_dict(),
            "epoch": s.step / s.plan.steps_per_epoch,
        },
        worker_state={"consumed": s.consumed, **rng_state()},
        metrics=report,
    )
    s.saved_step = s.step
    if s.rank == 0:  # the log up to this checkpoint, for a run resumed from it
        s.files.publish(METRICS)


def _report(record: dict[str, Any]) -> None:
    import ray.train

    ray.train.report({k: v for k, v in record.items() if isinstance(v, (int, float))})


def _maybe_inject_fault(s: Session) -> None:
    """Test hook (``fault_injection``): SIGKILL this worker once after the configured step."""
    fault = s.config.fault_injection
    if fault is None or fault.step != s.step or fault.rank != s.rank:
        return
    marker = storage.join(s.config.output_dir, f".fault-injected-step-{fault.step}")
    if storage.exists(marker):
        return
    storage.put_object(marker, b"")
    logger.warning("fault_injection: killing rank %d (pid %d) after step %d", s.rank, os.getpid(), s.step)
    os.kill(os.getpid(), signal.SIGKILL)


def finish(s: Session) -> None:
    """Final eval, final checkpoint, HF export, loss curve and summary (written last: its presence
    means the run finished, and on object storage every other file was uploaded before it)."""
    eval_loss = evaluate(s)
    if s.saved_step != s.step:
        save(s, {"step": s.step, "loss": s.last_loss if s.last_loss is not None else float("nan")})
    files = s.files
    export = s.config.export
    model_dir = None
    if export.enabled:
        written = export_hf_model(
            s.model,
            base_model=s.config.model.path,
            out_dir=files.local(MODEL),
            dtype=export.dtype,
            max_shard_size=export.max_shard_size,
            card=s.recipe.card(s, eval_loss),
            kind=s.recipe.name,
            chat_template=resolve_chat_template(s.config.model.chat_template),
        )
        model_dir = files.publish_model(MODEL) if written is not None else None
    if s.rank == 0:
        title = f"{s.recipe.name.upper()} loss"
        curve = plot_loss_curve(files.local(METRICS), files.local("loss_curve.png"), title=title)
        files.publish(METRICS)
        curve_at = files.publish("loss_curve.png") if curve is not None else None
        summary = _summary(s, eval_loss, model_dir, curve_at)
        atomic_write_json(files.target("summary.json"), summary)


def _summary(s: Session, eval_loss: float | None, model_dir: str | None, curve: str | None) -> dict[str, Any]:
    records = logged_records(s)
    last = records[-1] if records else {}
    return {
        "recipe": s.recipe.name,
        "steps": s.step,
        "planned_steps": s.plan.steps,
        "first_loss": records[0]["loss"] if records else None,
        # A rerun of a finished run trains no step: its final loss is the last one the log holds.
        "final_loss": s.last_loss if s.last_loss is not None else last.get("loss"),
        "eval_loss": eval_loss,
        **{f"final_{name}": last.get(name) for name in s.recipe.stat_names},
        "tokens_per_s": s.throughput.mean,
        "padding_efficiency": s.facts.padding_efficiency,
        "workers": s.world,
        "checkpoint": storage.join(s.config.output_dir, CHECKPOINTS, checkpoint_name(s.step)),
        "model": model_dir,
        "loss_curve": curve,
    }


def logged_records(s: Session) -> list[dict[str, Any]]:
    """Train records from the log, not this process's memory: a resumed run did not run the first steps."""
    return [r for r in read_metrics(s.files.local(METRICS)) if "loss" in r]


def cleanup(s: Session) -> None:
    """Free the model and optimizer before Ray tears the process group down."""
    s.optimizer.zero_grad(set_to_none=True)
    s.files.close()
    del s.model, s.optimizer
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
