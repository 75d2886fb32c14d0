"""Model, optimizer and FSDP2 plumbing shared by every recipe (SFT, DPO): nothing here knows the loss.

Inside a Ray Train worker (the process group is already initialised by ``TorchTrainer``: gloo on CPU,
nccl on GPU):

    device = worker_device(use_gpu)
    mesh = init_device_mesh(device.type, (world_size,))
    model = load_causal_lm(path, attn_implementation=..., activation_checkpointing=...)
    shard_model(model, mesh, mixed_precision_policy(mode, device), reshard_after_forward=True)
    optimizer = build_optimizer(model, optim_config)
    scheduler = build_scheduler(optimizer, optim_config, total_steps)

``fully_shard`` is applied to each decoder layer, then to the root (embeddings, final norm, LM head), the
layout FSDP2 is designed around: one all-gather per layer in forward and backward, overlapped with compute.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any, Literal

import torch

from aloe_core.storage import local_copy

if TYPE_CHECKING:
    from torch.distributed.device_mesh import DeviceMesh
    from torch.distributed.fsdp import MixedPrecisionPolicy

    from aloe_train.config import OptimConfig

logger = logging.getLogger("aloe.train")


def worker_device(use_gpu: bool) -> torch.device:
    """This worker's device: the GPU Ray Train assigned it, or the CPU."""
    if use_gpu:
        import ray.train.torch

        device = ray.train.torch.get_device()
        torch.cuda.set_device(device)
        return device
    return torch.device("cpu")


def mixed_precision_policy(
    mode: Literal["auto", "bf16", "fp32"], device: torch.device
) -> MixedPrecisionPolicy | None:
    """bf16 compute with fp32 master weights and fp32 gradient reduction, or None for plain fp32.

    ``auto`` picks bf16 on GPU and fp32 on CPU (CPU bf16 matmuls are slow and the CPU path exists for
    tests that compare against fp32 oracles).
    """
    from torch.distributed.fsdp import MixedPrecisionPolicy

    if mode == "fp32" or (mode == "auto" and device.type != "cuda"):
        return None
    return MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)


def load_causal_lm(path: str, *, attn_implementation: str, activation_checkpointing: bool) -> torch.nn.Module:
    """A Hugging Face causal LM in fp32 on the CPU, ready to be sharded.

    Every rank loads the full model and :func:`shard_model` keeps only its shard (the rest is freed as
    each layer is sharded): peak host memory is one full fp32 copy per worker, e.g. 32 GB each for an
    8B model. ``use_cache`` is switched off: with a cache, transformers ignores the position-id restarts
    that keep packed samples apart.
    """
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(
        local_copy(path), dtype=torch.float32, attn_implementation=attn_implementation
    )
    model.config.use_cache = False
    if activation_checkpointing:
        # Non-reentrant checkpointing recomputes each decoder layer in backward; FSDP2's hooks run again
        # inside the recomputation, so it composes with per-layer sharding.
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    return model


def decoder_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The repeated transformer blocks, found by the class names the model declares unsplittable.

    Matches along each module's class hierarchy, so it also finds them after ``fully_shard`` (which
    swaps every sharded module's class for an ``FSDP<Name>`` subclass).
    """
    names = set(getattr(model, "_no_split_modules", None) or [])
    layers = [m for m in model.modules() if any(c.__name__ in names for c in type(m).__mro__)]
    if not layers:
        raise ValueError(
            f"{type(model).__name__} declares no _no_split_modules, so its decoder layers cannot be found"
        )
    return layers


def shard_model(
    model: torch.nn.Module,
    mesh: DeviceMesh,
    mp_policy: MixedPrecisionPolicy | None,
    *,
    reshard_after_forward: bool = True,
) -> torch.nn.Module:
    """FSDP2: ``fully_shard`` each decoder layer, then the root; parameters become DTensors on ``mesh``."""
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    policy = mp_policy or MixedPrecisionPolicy()
    for layer in decoder_layers(model):
        fully_shard(layer, mesh=mesh, mp_policy=policy, reshard_after_forward=reshard_after_forward)
    # The root's parameters (embeddings, norm, head) are needed right after the last layer's forward,
    # so resharding them would only add an all-gather.
    fully_shard(model, mesh=mesh, mp_policy=policy, reshard_after_forward=False)
    return model


def build_optimizer(model: torch.nn.Module, config: OptimConfig) -> torch.optim.Optimizer:
    """AdamW; weight decay on matrices only (norm weights and biases are not decayed)."""
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            (decay if param.ndim >= 2 else no_decay).append(param)
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=config.lr, betas=config.betas, eps=config.eps)


def lr_multiplier(step: int, *, warmup_steps: int, total_steps: int, min_lr_ratio: float) -> float:
    """LR factor of optimizer step ``step`` (0-based): linear warmup to 1, then cosine to ``min_lr_ratio``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    decay_steps = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / decay_steps)
    return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: OptimConfig, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Warmup (``warmup_ratio`` of the run, rounded up) then cosine; stepped once per optimizer step."""
    warmup = math.ceil(config.warmup_ratio * total_steps)

    def factor(step: int) -> float:
        return lr_multiplier(
            step, warmup_steps=warmup, total_steps=total_steps, min_lr_ratio=config.min_lr_ratio
        )

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def clip_gradients(model: torch.nn.Module, max_norm: float | None) -> float:
    """Clip the global gradient norm (works on DTensor gradients); returns the norm before clipping."""
    limit = max_norm if max_norm is not None else float("inf")
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), limit)
    if hasattr(norm, "full_tensor"):
        norm = norm.full_tensor()
    return float(norm)


def make_all_reduce_sum(device: torch.device) -> Any:
    """A function summing a short list of floats over all ranks (float64, so token counts stay exact)."""
    import torch.distributed as dist

    def all_reduce_sum(values: list[float]) -> list[float]:
        tensor = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor.tolist()

    return all_reduce_sum
