"""DPO losses against TRL: the same model, batch, reference log-probs and beta through TRL's own
``DPOTrainer._compute_loss`` and through ours give the same loss, rewards and gradients (1e-5)."""

from __future__ import annotations

import math

import pyarrow as pa
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from aloe_train.dpo.config import DPOLossConfig
from aloe_train.dpo.data import collate_pairs, tokenize_pairs
from aloe_train.dpo.loss import PairLogps, per_pair_loss
from aloe_train.dpo.recipe import dpo_loss_sum

PAIRS = [
    (
        "Which drug is first-line for uncomplicated hypertension in a 50-year-old?",
        "A thiazide diuretic such as chlorthalidone.",
        "Propranolol, always.",
    ),
    (
        "What is the antidote for paracetamol overdose?",
        "N-acetylcysteine, started as early as possible.",
        "Activated charcoal only; antidotes are never used.",
    ),
    (
        "Name the vector of malaria.",
        "The female Anopheles mosquito.",
        "Houseflies carry it between patients.",
    ),
]


def pairs_table(model_dir) -> pa.Table:
    rows = pa.Table.from_pylist(
        [
            {"id": f"p{i}", "prompt": [{"role": "user", "content": q}], "chosen": c, "rejected": r}
            for i, (q, c, r) in enumerate(PAIRS)
        ]
    )
    table = tokenize_pairs(
        rows,
        tokenizer_path=str(model_dir),
        chat_template=None,
        max_length=512,
        max_prompt_length=256,
        eval_fraction=0.0,
        split=None,
    )
    assert table["status"].to_pylist() == ["ok"] * len(PAIRS)
    # Reference log-probs away from the policy's, so the loss is not at its starting value log 2.
    ref_chosen = pa.array([-180.0, -175.5, -120.25])
    ref_rejected = pa.array([-150.0, -190.0, -125.0])
    return table.append_column("ref_chosen_logps", ref_chosen).append_column(
        "ref_rejected_logps", ref_rejected
    )


def trl_trainer(model_dir, tmp_path, loss_type: str, beta: float):
    from datasets import Dataset
    from trl import DPOConfig as TRLDPOConfig
    from trl import DPOTrainer

    dataset = Dataset.from_list(
        [
            {
                "prompt": [{"role": "user", "content": q}],
                "chosen": [{"role": "assistant", "content": c}],
                "rejected": [{"role": "assistant", "content": r}],
            }
            for q, c, r in PAIRS
        ]
    )
    args = TRLDPOConfig(
        output_dir=str(tmp_path / "trl"),
        loss_type=[loss_type],
        beta=beta,
        report_to="none",
        use_cpu=True,
        bf16=False,
        per_device_train_batch_size=len(PAIRS),
        disable_dropout=True,
    )
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    return DPOTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)


@pytest.mark.parametrize(("loss_type", "beta"), [("sigmoid", 0.1), ("ipo", 0.5)])
def test_loss_rewards_and_gradients_equal_trl(tiny_model_dir, tmp_path, loss_type, beta):
    table = pairs_table(tiny_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    batch = collate_pairs(table, tokenizer.pad_token_id or tokenizer.eos_token_id)
    config = DPOLossConfig(type=loss_type, beta=beta)

    trainer = trl_trainer(tiny_model_dir, tmp_path, loss_type, beta)
    trainer.model.train()
    inputs = {
        "input_ids": batch["input_ids"],
        "attention_mask": batch["attention_mask"],
        "completion_mask": batch["completion_mask"],
        "ref_chosen_logps": batch["ref_chosen_logps"].float(),
        "ref_rejected_logps": batch["ref_rejected_logps"].float(),
    }
    trainer.precompute_ref_logps = True  # use the reference log-probs given in the batch
    trl_loss = trainer._compute_loss(trainer.model, inputs, return_outputs=False)
    trl_loss.backward()
    trl_metrics = {k: v[-1] for k, v in trainer._metrics["train"].items()}

    ours = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    ours.train()
    loss_sum, stats = dpo_loss_sum(ours, batch, config)
    loss = loss_sum / len(PAIRS)
    loss.backward()

    loss, trl_loss = float(loss.detach()), float(trl_loss.detach())
    assert abs(loss - trl_loss) < 1e-5, (loss, trl_loss)
    assert not math.isclose(loss, math.log(2), abs_tol=1e-3)  # a point away from the start
    for name in ("rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies"):
        assert abs(stats[name] / len(PAIRS) - trl_metrics[name]) < 1e-5, name
    trl_grads = dict(trainer.model.named_parameters())
    compared = 0
    for name, param in ours.named_parameters():
        reference = trl_grads[name].grad
        assert param.grad is not None and reference is not None, name
        assert torch.allclose(param.grad, reference, atol=1e-5, rtol=1e-4), name
        compared += 1
    assert compared == len(list(ours.parameters()))


def logps(chosen, rejected, ref_chosen, ref_rejected, c_tokens, r_tokens) -> PairLogps:
    t = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    return PairLogps(t(chosen), t(rejected), t(ref_chosen), t(ref_rejected), t(c_tokens), t(r_tokens))


def test_conservative_dpo_and_sft_term_match_their_formulas():
    """cDPO (label smoothing) and the SFT term, which TRL 1.x no longer has in this form, by hand."""
    lp = logps([-10.0, -20.0], [-12.0, -18.0], [-11.0, -19.0], [-11.5, -19.5], [5, 8], [6, 4])
    beta, eps, alpha = 0.2, 0.1, 0.5
    got = per_pair_loss(lp, DPOLossConfig(beta=beta, label_smoothing=eps, sft_weight=alpha))
    for i in range(2):
        d = (lp.chosen[i] - lp.ref_chosen[i]) - (lp.rejected[i] - lp.ref_rejected[i])
        sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
        expected = -(1 - eps) * math.log(sig(beta * d)) - eps * math.log(sig(-beta * d))
        expected += alpha * (-float(lp.chosen[i]) / float(lp.chosen_tokens[i]))
        assert abs(float(got[i]) - expected) < 1e-12


def test_padding_pairs_add_no_loss_and_no_gradient(tiny_model_dir):
    from aloe_train.dpo.data import padding_pairs

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    batch = collate_pairs(padding_pairs(2, 0), 0)
    loss, stats = dpo_loss_sum(model, batch, DPOLossConfig(type="ipo"))
    loss.backward()
    assert float(loss) == 0.0 and batch["weight"] == 0.0 and batch["rows"] == 0
    assert all(float(p.grad.abs().max()) == 0.0 for p in model.parameters() if p.grad is not None)
    assert all(v == 0.0 for v in stats.values())
