"""SFT data path: masking, truncation rule, packing, collation, attention isolation, bad inputs.

Everything except the last two tests runs in-process without Ray; the oracles are the tokenizer's own
chat template, a straightforward reference best-fit-decreasing, and unpacked transformers forwards.
"""

from __future__ import annotations

import itertools
import random
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from aloe_core.config import validate_config
from aloe_core.errors import InputError
from aloe_core.shards import resolve_inputs
from aloe_train.batching import StepPlan
from aloe_train.fsdp import lr_multiplier
from aloe_train.sft.config import SFTConfig
from aloe_train.sft.data import (
    IGNORE_INDEX,
    best_fit_decreasing,
    collate,
    pack_batch,
    prepare_sft_data,
    shifted_labels,
    tokenize_batch,
    truncate_conversation,
)
from aloe_train.sft.recipe import sft_loss_sum
from aloe_train.shared.tokenizer import check_chat_template

BOS = 1


def chat(*turns: str, system: str | None = None) -> list[dict[str, str]]:
    """user/assistant alternating turns (a trailing user turn is allowed)."""
    messages = [{"role": "system", "content": system}] if system else []
    roles = ("user", "assistant")
    return messages + [{"role": roles[i % 2], "content": t} for i, t in enumerate(turns)]


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path):
    return AutoTokenizer.from_pretrained(tiny_model_dir)


# ------------------------------------------------------------------------------------ truncation rule
def test_truncation_rule_branches():
    #        BOS  prompt  A1(2)  user  A2(3)
    ids = [BOS, 10, 11, 20, 21, 12, 13, 30, 31, 32]
    mask = [0, 0, 0, 1, 1, 0, 0, 1, 1, 1]
    assert truncate_conversation(ids, mask, 10, BOS) == (ids, mask, "ok")
    # A2 ends at 10 > 9: cut after A1 (ends at 5), whole turns only.
    assert truncate_conversation(ids, mask, 9, BOS) == (ids[:5], mask[:5], "truncated_turns")
    # No assistant turn ends within 4: keep A1 whole, BOS, and the newest prompt token.
    assert truncate_conversation(ids, mask, 4, BOS) == ([BOS, 11, 20, 21], [0, 0, 1, 1], "truncated_prompt")
    # Without a leading BOS nothing is pinned: A1 (ends at 4) misses 3; the newest prompt token stays.
    assert truncate_conversation(ids[1:], mask[1:], 3, BOS) == ([11, 20, 21], [0, 1, 1], "truncated_prompt")
    # The answer alone (2 tokens) + BOS leave no room for a prompt token.
    assert truncate_conversation(ids, mask, 3, BOS) == ([], [], "dropped_answer_too_long")
    assert truncate_conversation(ids, [0] * len(ids), 100, BOS) == ([], [], "dropped_no_assistant")


def test_shifted_labels_train_only_assistant_tokens():
    ids, mask = [BOS, 10, 20, 21, 11, 30], [0, 0, 1, 1, 0, 1]
    # position i predicts token i+1; only assistant targets count; the last position predicts nothing.
    assert shifted_labels(ids, mask) == [IGNORE_INDEX, 20, 21, IGNORE_INDEX, 30, IGNORE_INDEX]


def test_tokenize_batch_matches_chat_template_mask(tokenizer, tiny_model_dir):
    conversations = [
        chat("What is the antidote for heparin?", "Protamine sulfate."),
        chat("Dose?", "1 mg per 100 units.", "And for warfarin?", "Vitamin K.", system="Be brief."),
        chat("Only a question, never answered."),
    ]
    table = pa.table({"id": ["a", "b", "c"], "messages": conversations})
    out = tokenize_batch(
        table, tokenizer_path=str(tiny_model_dir), max_length=4096, eval_fraction=0.0, split=None
    )
    assert out["status"].to_pylist() == ["ok", "ok", "dropped_no_assistant"]
    for row, messages in zip(out.to_pylist()[:2], conversations[:2], strict=True):
        enc = tokenizer.apply_chat_template(messages, return_dict=True, return_assistant_tokens_mask=True)
        assert row["input_ids"] == enc["input_ids"]
        trained = [enc["input_ids"][i + 1] for i, m in enumerate(enc["assistant_masks"][1:]) if m]
        assert [t for t in row["labels"] if t != IGNORE_INDEX] == trained
        # The trained text is exactly the assistant turns, each with its end-of-turn token.
        answers = [m["content"] for m in messages if m["role"] == "assistant"]
        assert tokenizer.decode(trained) == "".join(a + "<|eot_id|>" for a in answers)
        assert row["n_trained"] == len(trained)


def test_eval_split_is_a_stable_hash_of_the_id(tiny_model_dir):
    rows = [chat(f"Question {i}?", f"Answer {i}.") for i in range(200)]
    table = pa.table({"id": [f"row-{i}" for i in range(200)], "messages": rows})
    first = tokenize_batch(
        table, tokenizer_path=str(tiny_model_dir), max_length=64, eval_fraction=0.2, split=None
    )
    reordered = pa.concat_tables([table.slice(100), table.slice(0, 100)])
    again = tokenize_batch(
        reordered, tokenizer_path=str(tiny_model_dir), max_length=64, eval_fraction=0.2, split=None
    )
    by_id = dict(zip(first["sample_id"].to_pylist(), first["split"].to_pylist(), strict=True))
    assert dict(zip(again["sample_id"].to_pylist(), again["split"].to_pylist(), strict=True)) == by_id
    assert 20 <= sum(s == "eval" for s in by_id.values()) <= 60  # ~20% of 200


# --------------------------------------------------------------------------------------------- packing
def reference_bfd(lengths: list[int], capacity: int) -> list[list[int]]:
    """Best-fit-decreasing by linear scan: the obviously-correct O(n^2) version."""
    bins: list[list[int]] = []
    space: list[int] = []
    for item in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        fits = [b for b in range(len(bins)) if space[b] >= lengths[item]]
        if fits:
            # Least free space; among equals, the most recently opened-or-refilled bin (LIFO), as in
            # the library, which keeps ties deterministic.
            best = min(space[b] for b in fits)
            target = [b for b in fits if space[b] == best][-1]
            bins[target].append(item)
            space[target] -= lengths[item]
        else:
            bins.append([item])
            space.append(capacity - lengths[item])
    return bins


def test_best_fit_decreasing_is_valid_and_tight():
    rng = random.Random(0)
    for _ in range(200):
        capacity = rng.choice([16, 64, 256])
        lengths = [rng.randint(1, capacity) for _ in range(rng.randint(1, 60))]
        bins = best_fit_decreasing(lengths, capacity)
        assert sorted(i for b in bins for i in b) == list(range(len(lengths)))
        assert all(sum(lengths[i] for i in b) <= capacity for b in bins)
        reference = reference_bfd(lengths, capacity)
        assert len(bins) == len(reference)
        # Best fit never leaves two bins that could be merged.
        loads = sorted(sum(lengths[i] for i in b) for b in bins)
        assert len(loads) < 2 or loads[0] + loads[1] > capacity


def test_best_fit_decreasing_rejects_items_longer_than_capacity():
    with pytest.raises(ValueError, match="item lengths"):
        best_fit_decreasing([5, 17], 16)


def test_pack_batch_keeps_every_token_and_sample_boundaries(tokenizer, tiny_model_dir):
    conversations = [chat(f"Question number {i} about dosing?", "Answer " * (1 + i % 7)) for i in range(30)]
    table = pa.table({"id": [f"r{i}" for i in range(30)], "messages": conversations})
    tokenized = tokenize_batch(
        table, tokenizer_path=str(tiny_model_dir), max_length=64, eval_fraction=0, split=None
    )
    packed = pack_batch(tokenized, max_length=64, seed=0, shuffle=True)
    by_id = {r["sample_id"]: r for r in tokenized.to_pylist()}
    seen = []
    for row in packed.to_pylist():
        assert len(row["input_ids"]) == sum(row["seq_lens"]) == row["n_tokens"] <= 64
        start = 0
        for sample_id, n in zip(row["sample_ids"], row["seq_lens"], strict=True):
            assert row["input_ids"][start : start + n] == by_id[sample_id]["input_ids"]
            assert row["labels"][start : start + n] == by_id[sample_id]["labels"]
            start += n
        seen += row["sample_ids"]
    assert sorted(seen) == sorted(by_id)
    assert pack_batch(tokenized, max_length=64, seed=0, shuffle=True).equals(packed)  # deterministic


def test_collate_restarts_positions_and_pads_as_its_own_block():
    table = pa.table(
        {
            "input_ids": [[5, 6, 7, 8, 9], [5, 6]],
            "labels": [[6, IGNORE_INDEX, 8, 9, IGNORE_INDEX], [6, IGNORE_INDEX]],
            "seq_lens": [[2, 3], [2]],
            "n_tokens": [5, 2],
            "n_trained": [3, 1],
            "sample_ids": [["a", "b"], ["c"]],
        }
    )
    batch = collate(table, pad_id=0)
    assert batch["position_ids"].tolist() == [[0, 1, 0, 1, 2], [0, 1, 0, 1, 2]]
    assert batch["input_ids"].tolist() == [[5, 6, 7, 8, 9], [5, 6, 0, 0, 0]]
    assert batch["labels"][1].tolist() == [6, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX]
    assert (batch["n_tokens"], batch["n_trained"], batch["rows"]) == (7, 4, 2)


def test_packed_loss_equals_unpacked_losses(tokenizer, tiny_model_dir):
    """Position-id restarts keep attention inside each sample (sdpa, no 4D mask): a packed row's loss is
    the sum of its samples' losses computed one by one (fp32, within 1e-4 of ~1e3)."""
    conversations = [
        chat("Which drug treats anaphylaxis first?", "Intramuscular epinephrine."),
        chat("Normal serum potassium?", "3.5 to 5.0 mmol/L.", "And sodium?", "135 to 145 mmol/L."),
        chat("Antidote for opioids?", "Naloxone."),
    ]
    table = pa.table({"id": ["x", "y", "z"], "messages": conversations})
    tokenized = tokenize_batch(
        table, tokenizer_path=str(tiny_model_dir), max_length=512, eval_fraction=0, split=None
    )
    packed = pack_batch(tokenized, max_length=512, seed=0, shuffle=False)
    assert packed.num_rows == 1 and len(packed["seq_lens"][0]) == 3
    model = AutoModelForCausalLM.from_pretrained(
        tiny_model_dir, dtype=torch.float32, attn_implementation="sdpa"
    )
    with torch.no_grad():
        packed_loss = float(sft_loss_sum(model, collate(packed, tokenizer.pad_token_id)))
        one_by_one = 0.0
        for row in tokenized.to_pylist():
            ids, labels = torch.tensor([row["input_ids"]]), torch.tensor([row["labels"]])
            logits = model(input_ids=ids, use_cache=False).logits[0]
            one_by_one += float(torch.nn.functional.cross_entropy(logits, labels[0], reduction="sum"))
    assert packed_loss == pytest.approx(one_by_one, abs=1e-4)
    # Cross-sample attention would change the loss by far more than the tolerance:
    with torch.no_grad():
        batch = collate(packed, tokenizer.pad_token_id)
        leaked = model(
            input_ids=batch["input_ids"], use_cache=False
        ).logits  # positions 0..T-1, one causal block
        leaked_loss = float(
            torch.nn.functional.cross_entropy(
                leaked[0], batch["labels"][0], reduction="sum", ignore_index=-100
            )
        )
    assert abs(leaked_loss - one_by_one) > 1.0


# ------------------------------------------------------------------------------------ plan and schedule
def test_step_plan_pads_to_the_worker_count_and_rounds_steps_up():
    plan = StepPlan.build(rows=85, epochs=2, world_size=4, micro_batch_size=3, grad_accum_steps=2)
    assert plan.padding_rows == 2  # 170 + 2 = 172 = 4 * 43
    assert plan.rows_per_worker == 43
    assert plan.steps == 8  # ceil(ceil(43 / 3) / 2) = ceil(15 / 2)
    assert (
        StepPlan.build(
            rows=85, epochs=2, world_size=4, micro_batch_size=3, grad_accum_steps=2, max_steps=5
        ).steps
        == 5
    )


def test_lr_schedule_warms_up_then_decays_to_the_floor():
    factors = [lr_multiplier(s, warmup_steps=4, total_steps=20, min_lr_ratio=0.1) for s in range(20)]
    assert factors[:4] == [0.25, 0.5, 0.75, 1.0]
    assert all(a > b for a, b in itertools.pairwise(factors[4:]))
    assert lr_multiplier(20, warmup_steps=4, total_steps=20, min_lr_ratio=0.1) == pytest.approx(0.1)


# ------------------------------------------------------------------------------------------ bad inputs
def test_tokenizer_without_template_or_markers_is_rejected(tokenizer):
    plain = AutoTokenizer.from_pretrained(tokenizer.name_or_path)
    plain.chat_template = None
    with pytest.raises(InputError, match="has no chat template"):
        check_chat_template(plain, "model-x")
    plain.chat_template = tokenizer.chat_template.replace("{%- generation -%}", "").replace(
        "{%- endgeneration -%}", ""
    )
    with pytest.raises(InputError, match=r"no \{% generation %\}"):
        check_chat_template(plain, "model-x")
    check_chat_template(tokenizer, "model-x")


def test_resolve_inputs_reads_the_last_stage_of_a_run(tmp_path):
    run = tmp_path / "run"
    (run / "02-clean").mkdir(parents=True)
    pq.write_table(
        pa.table({"id": ["a"], "messages": [chat("q?", "a.")]}), run / "02-clean" / "part-0.parquet"
    )
    (run / "manifest.json").write_text(
        '{"kind": "sft", "stages": {"01-ingest": {"files": {"x.parquet": {}}}, '
        '"02-clean": {"key": "k2", "rows_out": 1, "files": {"part-0.parquet": {}}}}}'
    )
    source = resolve_inputs(str(run), kind="sft")
    assert source.files == [str(run / "02-clean" / "part-0.parquet")]
    assert source.provenance["stage"] == "02-clean" and source.provenance["stage_key"] == "k2"
    with pytest.raises(InputError, match="no Parquet files"):
        resolve_inputs(str(tmp_path / "missing-*.parquet"), kind="sft")
    pq.write_table(pa.table({"text": ["x"]}), tmp_path / "bad.parquet")
    with pytest.raises(InputError, match="no `messages` column"):
        resolve_inputs(str(tmp_path / "bad.parquet"), kind="sft")


def test_bad_rows_are_counted_and_never_trained(ray_session, tiny_model_dir, tokenizer, tmp_path):
    """Through the Ray Data path: long rows truncated by the stated rule, unanswerable rows dropped."""
    long_prompt = "Explain the mechanism of action of every beta blocker in detail. " * 12
    rows = {
        "ok": chat("Antidote for heparin?", "Protamine."),
        "turns": chat("Short one?", "Yes.", long_prompt, "Too late to fit."),
        "prompt": chat(long_prompt, "Cardioselective ones block beta-1."),
        "no_answer": chat("Is anyone there?"),
        "huge_answer": chat("Tell me everything.", long_prompt),
    }
    pq.write_table(pa.table({"id": list(rows), "messages": list(rows.values())}), tmp_path / "part-0.parquet")
    config = validate_config(
        SFTConfig,
        {
            "model": {"path": str(tiny_model_dir)},
            "output_dir": str(tmp_path / "out"),
            "data": {"path": str(tmp_path / "part-0.parquet"), "max_length": 48, "shuffle": False},
        },
    )
    data = prepare_sft_data(config, world_size=2)
    assert data.stats["rows"]["train"] == {
        "ok": 1,
        "truncated_turns": 1,
        "truncated_prompt": 1,
        "dropped_no_assistant": 1,
        "dropped_answer_too_long": 1,
        "tokens": data.stats["train_packing"]["tokens"],
        "trained_tokens": data.stats["train_packing"]["trained_tokens"],
    }
    packed = data.train.take_all()
    assert sorted(i for r in packed for i in r["sample_ids"]) == ["ok", "prompt", "turns"]
    padding = [r for r in packed if not r["sample_ids"]]
    # The stream holds every packed row plus zero-weight rows up to a multiple of the 2 workers.
    assert len(packed) - len(padding) == data.plan.rows and len(padding) == data.plan.padding_rows
    assert len(packed) % 2 == 0 and all(r["n_trained"] == r["n_tokens"] == 0 for r in padding)
    packed = [r for r in packed if r["sample_ids"]]
    by_id = {}
    for row in packed:
        assert len(row["input_ids"]) <= 48
        start = 0
        for sample_id, n in zip(row["sample_ids"], row["seq_lens"], strict=True):
            by_id[sample_id] = (row["input_ids"][start : start + n], row["labels"][start : start + n])
            start += n
    trained = {
        k: tokenizer.decode([t for t in labels if t != IGNORE_INDEX]) for k, (_, labels) in by_id.items()
    }
    assert trained == {
        "ok": "Protamine.<|eot_id|>",
        "turns": "Yes.<|eot_id|>",
        "prompt": "Cardioselective ones block beta-1.<|eot_id|>",
    }
    assert by_id["prompt"][0][0] == tokenizer.bos_token_id  # left-truncated prompt keeps its BOS


def test_a_model_without_generation_markers_fails_before_any_work(ray_session, tiny_model_dir, tmp_path):
    broken = tmp_path / "model"
    shutil.copytree(tiny_model_dir, broken)
    (broken / "chat_template.jinja").write_text("{% for m in messages %}{{ m['content'] }}{% endfor %}")
    pq.write_table(pa.table({"id": ["a"], "messages": [chat("q?", "a.")]}), tmp_path / "part-0.parquet")
    config = validate_config(
        SFTConfig,
        {
            "model": {"path": str(broken)},
            "output_dir": str(tmp_path / "out"),
            "data": {"path": str(tmp_path)},
        },
    )
    with pytest.raises(InputError, match=r"no \{% generation %\}"):
        prepare_sft_data(config, world_size=2)
