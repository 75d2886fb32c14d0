"""DPO-family losses on sequence log-probs: sigmoid (DPO), conservative DPO, IPO, plus an SFT term.

Everything here is per pair and summed, never averaged over the batch: the shared loop divides by the
number of pairs of the whole global batch, so the result is independent of micro-batch size and worker
count. With that division, the loss, rewards and gradients equal TRL's ``DPOTrainer`` for the same
log-probs and beta (``tests/train/test_dpo_loss.py`` checks it against TRL itself).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from aloe_train.dpo.config import DPOLossConfig


@dataclass
class PairLogps:
    """Sequence log-probs of a batch of B pairs, and completion token counts (for IPO / the SFT term)."""

    chosen: torch.Tensor  # [B] policy, summed over completion tokens
    rejected: torch.Tensor  # [B]
    ref_chosen: torch.Tensor  # [B] frozen reference
    ref_rejected: torch.Tensor  # [B]
    chosen_tokens: torch.Tensor  # [B] completion tokens of the chosen sequence
    rejected_tokens: torch.Tensor  # [B]


def per_pair_loss(logps: PairLogps, config: DPOLossConfig) -> torch.Tensor:
    """The loss of each pair, [B].

    * ``sigmoid``: ``-(1 - eps) log s(beta d) - eps log s(-beta d)`` with ``d`` the difference of the
      chosen and rejected log-ratios (DPO for eps = 0, conservative DPO otherwise);
    * ``ipo``: ``(d_avg - 1 / (2 beta))^2`` with ``d_avg`` built from per-token average log-ratios;
    * plus ``sft_weight`` times the chosen completion's mean token NLL.
    """
    chosen_ratio = logps.chosen - logps.ref_chosen
    rejected_ratio = logps.rejected - logps.ref_rejected
    beta, eps = config.beta, config.label_smoothing
    if config.type == "sigmoid":
        delta = chosen_ratio - rejected_ratio
        loss = -(1 - eps) * F.logsigmoid(beta * delta) - eps * F.logsigmoid(-beta * delta)
    else:
        delta = chosen_ratio / logps.chosen_tokens.clamp(
            min=1
        ) - rejected_ratio / logps.rejected_tokens.clamp(min=1)
        loss = (delta - 1 / (2 * beta)) ** 2
    if config.sft_weight:
        loss = loss + config.sft_weight * (-logps.chosen / logps.chosen_tokens.clamp(min=1))
    return loss


def rewards(logps: PairLogps, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Implicit rewards ``beta * (log pi - log pi_ref)`` of the chosen and rejected completions (detached)."""
    return (
        beta * (logps.chosen - logps.ref_chosen).detach(),
        beta * (logps.rejected - logps.ref_rejected).detach(),
    )


STAT_NAMES = (
    "rewards/chosen",
    "rewards/rejected",
    "rewards/accuracies",
    "rewards/margins",
    "logps/chosen",
    "logps/rejected",
)


def pair_stats(logps: PairLogps, beta: float, weight: torch.Tensor) -> dict[str, float]:
    """Weighted sums over pairs of TRL's logged DPO metrics (the loop divides by the pair count)."""
    chosen_reward, rejected_reward = rewards(logps, beta)
    values = {
        "rewards/chosen": chosen_reward,
        "rewards/rejected": rejected_reward,
        "rewards/accuracies": (chosen_reward > rejected_reward).to(weight.dtype),
        "rewards/margins": chosen_reward - rejected_reward,
        "logps/chosen": logps.chosen.detach(),
        "logps/rejected": logps.rejected.detach(),
    }
    return {name: float((value.to(weight.dtype) * weight).sum()) for name, value in values.items()}
