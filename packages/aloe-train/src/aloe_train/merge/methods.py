"""The merge arithmetic on one tensor: linear, task arithmetic, TIES, DARE-TIES (and DARE-linear).

Every function reproduces mergekit 0.1.5 operation by operation (``merge_methods/linear.py``,
``merge_methods/generalized_task_arithmetic.py``, ``sparsify.py``), so results agree with mergekit to
float rounding, and bit for bit where the operations are the same:

* task vectors ``delta_i = model_i - base``, optionally sparsified per model:
  TIES keeps the ``max(1, int(density * n))`` largest magnitudes (``torch.argsort``, as mergekit, so ties
  are broken the same way); DARE keeps each entry with probability ``density`` (Bernoulli);
* ``rescale`` multiplies a sparsified delta by ``|delta|_1 / |kept|_1`` (mergekit's L1 rescale; the DARE
  paper's ``1 / density`` is its expectation) unless either norm is below 1e-7;
* deltas are multiplied by their weights; with sign consensus ``sum`` (TIES) an entry keeps only the
  deltas whose sign equals the sign of the weighted sum (``>= 0`` counts as positive; zeros never
  agree), ``count`` elects the sign by majority of signs instead;
* ``normalize`` divides by the sum of the weights of the deltas that were kept at that entry (a zero sum
  becomes 1); without consensus by the sum of all weights (``|sum| < 1e-8`` becomes 1);
* ``lambda`` scales the mixed delta, which is added to the base.

Arithmetic runs in the tensors' dtype (the caller converts inputs to the compute dtype first), with
the DARE Bernoulli draw in float32 except for bfloat16 (as mergekit on CPU). Linear accumulates in
float32 (float64 for float64 inputs) and returns the inputs' dtype.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

RESCALE_EPS = 1e-7


def linear(tensors: Iterable[torch.Tensor], weights: Sequence[float], *, normalize: bool) -> torch.Tensor:
    """``sum_i w_i x_i`` (divided by ``sum_i w_i`` when ``normalize``); ``tensors`` is consumed lazily
    so only one input is held at a time besides the float32 accumulator."""
    result: torch.Tensor | None = None
    count = 0
    for tensor in tensors:
        if result is None:
            out_dtype = tensor.dtype
            acc = torch.float64 if tensor.dtype == torch.float64 else torch.float32
            coefficients = torch.tensor(list(weights), dtype=acc)
            result = torch.zeros_like(tensor, dtype=acc)
        result.addcmul_(tensor, coefficients[count])
        count += 1
    if result is None or count != len(weights):
        raise ValueError(f"linear: got {count} tensors for {len(weights)} weights")
    if normalize:
        result.div_(coefficients.sum())
    return result.to(out_dtype)


def rescaled(tensor: torch.Tensor, mask: torch.Tensor, rescale: bool) -> torch.Tensor:
    """``tensor * mask``, scaled back to ``tensor``'s L1 norm when ``rescale`` (see module docstring)."""
    masked = tensor * mask
    if not rescale:
        return masked
    before = tensor.abs().sum()
    after = masked.abs().sum()
    if before < RESCALE_EPS or after < RESCALE_EPS:
        return masked
    return masked * (before / after)


def magnitude_prune(tensor: torch.Tensor, density: float, *, rescale: bool = False) -> torch.Tensor:
    """TIES trimming: keep the ``max(1, int(density * n))`` entries of largest magnitude."""
    if density >= 1:
        return tensor
    if density <= 0 or tensor.numel() == 0:
        return torch.zeros_like(tensor)
    k = max(1, int(density * tensor.numel()))
    mask = torch.zeros(tensor.numel(), dtype=tensor.dtype)
    magnitudes = tensor.abs().reshape(-1).float()
    mask[torch.argsort(magnitudes, descending=True)[:k]] = 1
    del magnitudes
    return rescaled(tensor, mask.reshape_as(tensor), rescale)


def random_prune(
    tensor: torch.Tensor, density: float, generator: torch.Generator, *, rescale: bool = True
) -> torch.Tensor:
    """DARE dropping: keep each entry with probability ``density``, drawing from ``generator``.

    No random number is drawn when ``density >= 1``, so such tensors do not shift the stream.
    """
    if density >= 1:
        return tensor
    work = torch.bfloat16 if tensor.dtype == torch.bfloat16 else torch.float32
    probabilities = torch.full_like(tensor, density, dtype=work)
    mask = torch.bernoulli(probabilities, generator=generator)
    del probabilities
    return rescaled(tensor.to(work), mask, rescale).to(tensor.dtype)


def sign_consensus(weighted: torch.Tensor, method: str, mask_dtype: torch.dtype) -> torch.Tensor:
    """Boolean mask over ``weighted`` (models x entries): which deltas agree with the elected sign."""
    sign = weighted.sign().to(mask_dtype)
    if method == "sum":
        majority = (weighted.sum(dim=0) >= 0).to(mask_dtype) * 2 - 1
    elif method == "count":
        majority = (sign.sum(dim=0) >= 0).to(mask_dtype) * 2 - 1
    else:
        raise ValueError(f"unknown sign consensus method {method!r} (sum or count)")
    return sign == majority


def task_arithmetic(
    base: torch.Tensor,
    tensors: Iterable[torch.Tensor],
    *,
    weights: Sequence[float],
    densities: Sequence[float],
    sparsification: str | None,
    consensus: str | None,
    normalize: bool,
    rescale: bool,
    lambda_: float = 1.0,
    int8_mask: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Task arithmetic, TIES, DARE-TIES or DARE-linear of ``tensors`` (the non-base models, consumed
    lazily in order) around ``base``; see the module docstring for the steps.

    Raises:
        ValueError: random sparsification without a generator, or counts that disagree.
    """
    n = len(weights)
    deltas = base.new_empty((n, *base.shape))
    count = 0
    for i, tensor in enumerate(tensors):
        delta = tensor - base
        del tensor
        if sparsification == "magnitude":
            delta = magnitude_prune(delta, densities[i], rescale=rescale)
        elif sparsification == "random":
            if generator is None:
                raise ValueError("random (DARE) sparsification needs a seeded torch.Generator")
            delta = random_prune(delta, densities[i], generator, rescale=rescale)
        elif sparsification is not None:
            raise ValueError(f"unknown sparsification {sparsification!r}")
        deltas[i] = delta
        del delta
        count += 1
    if count != n or len(densities) != n:
        raise ValueError(f"task arithmetic: {count} tensors, {n} weights, {len(densities)} densities")
    w = torch.tensor(list(weights), dtype=deltas.dtype).reshape(n, *([1] * base.dim()))
    deltas.mul_(w)
    if consensus is not None:
        mask = sign_consensus(deltas, consensus, torch.int8 if int8_mask else base.dtype)
        mixed = (deltas * mask).sum(dim=0)
        divisor = (w * mask).sum(dim=0)
        del mask
        divisor[divisor == 0] = 1
    else:
        mixed = deltas.sum(dim=0)
        divisor = w.sum(dim=0)
        divisor[divisor.abs() < 1e-8] = 1
    del deltas
    if normalize:
        mixed /= divisor
    if lambda_ != 1:
        mixed *= lambda_
    return (base + mixed).to(base.dtype)
