"""Step equalisation with genuinely uneven shards: two gloo ranks, FSDP2-sharded tiny model.

Rank 0 holds 5 micro-batches and rank 1 holds 2. Without equalisation rank 1 would stop after its
first optimizer step and rank 0 would hang in the next FSDP all-gather. With it, both run 3 steps,
rank 1 feeding zero-weight dummies; each step's loss weight is the sum over both ranks; and the
gradient after a step where only rank 0 has data equals the single-process gradient of rank 0's
data alone (dummies contribute nothing).
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pyarrow as pa
import torch
import torch.multiprocessing as mp

from aloe_train.sft.data import IGNORE_INDEX, collate, padding_rows

VOCAB_HIGH = 4000  # below the tiny model's vocabulary of 4096
COUNTS = (5, 2)  # micro-batches on rank 0 and rank 1
ACCUM = 2


def micro_batch(seed: int) -> dict:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(10, VOCAB_HIGH, (24,), generator=generator).tolist()
    labels = [*ids[1:12], *[IGNORE_INDEX] * 4, *ids[16:], IGNORE_INDEX]  # a masked stretch, like a prompt
    table = pa.table(
        {
            "input_ids": [ids],
            "labels": [labels],
            "seq_lens": [[10, 14]],  # two packed samples
            "n_tokens": [24],
            "n_trained": [sum(label != IGNORE_INDEX for label in labels)],
            "sample_ids": [[f"s{seed}a", f"s{seed}b"]],
        }
    )
    return collate(table, pad_id=0)


def worker(rank: int, world: int, port: int, model_dir: str, out: str) -> None:
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh

    from aloe_train.batching import synchronized_steps
    from aloe_train.fsdp import decoder_layers, load_causal_lm, make_all_reduce_sum, shard_model
    from aloe_train.sft.recipe import sft_loss_sum

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)
    model = load_causal_lm(model_dir, attn_implementation="sdpa", activation_checkpointing=True)
    shard_model(model, init_device_mesh("cpu", (world,)), None)
    mine = [micro_batch(100 * rank + i) for i in range(COUNTS[rank])]
    steps = synchronized_steps(
        iter(mine),
        grad_accum_steps=ACCUM,
        dummy=lambda: collate(padding_rows(1, 0), 0),
        weight=lambda b: b["n_trained"],
        all_reduce_sum=make_all_reduce_sum(torch.device("cpu")),
    )
    log = []
    for step in steps:
        model.zero_grad(set_to_none=True)
        for batch in step.micro_batches:  # every rank runs every pass: FSDP collectives inside
            (sft_loss_sum(model, batch) * world / step.global_weight).backward()
        layer = decoder_layers(model)[0]
        grad = layer.mlp.down_proj.weight.grad.full_tensor()
        log.append({"real": step.real, "weight": step.global_weight, "grad": grad.flatten()[:64].tolist()})
    Path(out, f"rank{rank}.json").write_text(json.dumps(log))
    dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_uneven_shards_step_together_and_dummies_weigh_nothing(tiny_model_dir, tmp_path):
    mp.start_processes(
        worker, args=(2, free_port(), str(tiny_model_dir), str(tmp_path)), nprocs=2, start_method="spawn"
    )
    logs = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert [s["real"] for s in logs[0]] == [[True, True], [True, True], [True, False]]
    assert [s["real"] for s in logs[1]] == [[True, True], [False, False], [False, False]]
    weights = [micro_batch(i)["n_trained"] for i in (0, 1, 2, 3, 4, 100, 101)]
    expected = [sum(weights[0:2]) + sum(weights[5:7]), sum(weights[2:4]), weights[4]]
    assert [s["weight"] for s in logs[0]] == [s["weight"] for s in logs[1]] == expected
    # Step 3 has data on rank 0 only: its gradient is rank 0's batch alone, in one process, no FSDP.
    from transformers import AutoModelForCausalLM

    from aloe_train.sft.recipe import sft_loss_sum

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    (sft_loss_sum(model, micro_batch(4)) / weights[4]).backward()
    oracle = model.model.layers[0].mlp.down_proj.weight.grad.flatten()[:64]
    assert torch.allclose(torch.tensor(logs[0][2]["grad"]), oracle, atol=1e-6, rtol=1e-5)
