"""The merge arithmetic on hand-sized tensors, against values worked out by hand; DARE mask statistics;
the streamed safetensors reader/writer against the safetensors library. No models, no mergekit."""

from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import load_file, save_file

from aloe_core.errors import ConfigError, InputError
from aloe_train.merge import methods
from aloe_train.merge.io import (
    ShardWriter,
    parse_size,
    plan_shards,
    read_header,
    read_tensor,
    shard_names,
)

# Three task vectors around a zero base (worked examples below).
D1 = [3.0, -1.0, 0.5, 2.0]
D2 = [-2.0, -4.0, 1.0, -1.0]
D3 = [1.0, 2.0, -3.0, 0.0]


def _ties(weights, *, normalize=True, consensus="sum", density=0.5, base=None):
    base = torch.zeros(4) if base is None else base
    return methods.task_arithmetic(
        base,
        (base + torch.tensor(d) for d in (D1, D2, D3)),
        weights=weights,
        densities=[density] * 3,
        sparsification="magnitude",
        consensus=consensus,
        normalize=normalize,
        rescale=False,
    )


def test_ties_trims_elects_sign_by_weighted_sum_and_normalizes_by_agreeing_weights():
    # density 0.5 keeps the 2 largest magnitudes: d1 -> [3,0,0,2], d2 -> [-2,-4,0,0], d3 -> [0,2,-3,0].
    # Weighted by [0.5, 1, 2]: [1.5,0,0,1], [-2,-4,0,0], [0,4,-6,0]; sums [-0.5, 0, -6, 1] elect
    # signs [-, + (a zero sum counts as +), -, +]. Agreeing entries: -2 (w 1), 4 (w 2), -6 (w 2), 1 (w 0.5).
    assert _ties([0.5, 1.0, 2.0]).tolist() == [-2.0, 2.0, -3.0, 2.0]
    assert _ties([0.5, 1.0, 2.0], normalize=False).tolist() == [-2.0, 4.0, -6.0, 1.0]
    # Equal weights: sums [1,-2,-3,2]; a zero delta has sign 0 and never agrees (d3's entry 0 is trimmed).
    assert _ties([1.0, 1.0, 1.0]).tolist() == [3.0, -4.0, -3.0, 2.0]


def test_ties_adds_the_mixed_delta_to_the_base():
    base = torch.tensor([10.0, 20.0, 30.0, 40.0])
    assert _ties([1.0, 1.0, 1.0], base=base).tolist() == [13.0, 16.0, 27.0, 42.0]


def test_sign_election_by_count():
    # Weighted [1.5,0,0,1], [-2,-4,0,0], [0,4,-6,0]: sign counts [0, 0, -1, 1] elect [+, +, -, +].
    assert _ties([0.5, 1.0, 2.0], consensus="count").tolist() == [3.0, 2.0, -3.0, 2.0]


def test_task_arithmetic_lambda_and_normalize():
    base = torch.tensor([1.0, -1.0])
    models = [torch.tensor([2.0, 1.0]), torch.tensor([0.0, -2.0])]  # deltas [1, 2] and [-1, -1]

    def run(**kwargs):
        return methods.task_arithmetic(
            base, iter(models), weights=[3.0, 1.0], densities=[1.0, 1.0], sparsification=None,
            consensus=None, rescale=False, **kwargs,
        ).tolist()  # fmt: skip

    assert run(normalize=False) == [1.0 + 2.0, -1.0 + 5.0]
    assert run(normalize=True) == [1.0 + 0.5, -1.0 + 1.25]
    assert run(normalize=False, lambda_=0.5) == [1.0 + 1.0, -1.0 + 2.5]


def test_linear_weighted_average():
    a, b = torch.tensor([1.0, 2.0]), torch.tensor([5.0, -2.0])
    assert methods.linear(iter([a, b]), [1.0, 3.0], normalize=True).tolist() == [4.0, -1.0]
    assert methods.linear(iter([a, b]), [1.0, 3.0], normalize=False).tolist() == [16.0, -4.0]
    half = methods.linear(iter([a.bfloat16(), b.bfloat16()]), [0.5, 0.5], normalize=False)
    assert half.dtype == torch.bfloat16 and half.tolist() == [3.0, 0.0]


def test_magnitude_prune_keeps_at_least_one_and_rescales_l1():
    x = torch.tensor([0.1, -5.0, 2.0, 0.3])
    assert methods.magnitude_prune(x, 0.01).tolist() == [0.0, -5.0, 0.0, 0.0]  # int(0.04) = 0 -> 1 kept
    assert methods.magnitude_prune(x, 0.0).tolist() == [0.0] * 4
    assert methods.magnitude_prune(x, 1.0) is x
    # L1 of x is 7.4, of the kept [-5, 2] 7.0: kept entries scale by 7.4 / 7.
    kept = methods.magnitude_prune(x, 0.5, rescale=True)
    assert kept.tolist() == pytest.approx([0.0, -5.0 * 7.4 / 7.0, 2.0 * 7.4 / 7.0, 0.0], rel=1e-6)


def test_dare_mask_statistics_and_l1_rescale():
    n, density = 200_000, 0.3
    delta = torch.randn(n, generator=torch.Generator().manual_seed(1))
    out = methods.random_prune(delta, density, torch.Generator().manual_seed(5))
    kept = out != 0
    # Kept count ~ Binomial(n, p): within 5 standard deviations (a 1 in 3.5 million miss).
    assert abs(int(kept.sum()) - n * density) < 5 * math.sqrt(n * density * (1 - density))
    # Every kept entry is scaled by one factor, |delta|_1 / |kept delta|_1, so the L1 norm is preserved.
    factor = float(delta.abs().sum() / delta[kept].abs().sum())
    assert torch.allclose(out[kept], delta[kept] * factor, rtol=1e-6, atol=0)
    assert float(out.abs().sum()) == pytest.approx(float(delta.abs().sum()), rel=1e-5)
    assert factor == pytest.approx(1 / density, rel=0.02)  # DARE's 1/p, in expectation
    # Without rescale the kept entries are the originals; the mask depends only on the seed.
    raw = methods.random_prune(delta, density, torch.Generator().manual_seed(5), rescale=False)
    assert torch.equal(raw != 0, kept) and torch.equal(raw[kept], delta[kept])
    other = methods.random_prune(delta, density, torch.Generator().manual_seed(6))
    assert not torch.equal(other != 0, kept)


def test_dare_density_one_draws_no_random_numbers():
    generator = torch.Generator().manual_seed(3)
    state = generator.get_state()
    x = torch.randn(10)
    assert methods.random_prune(x, 1.0, generator) is x
    assert torch.equal(generator.get_state(), state)


def test_shard_writer_output_is_read_by_safetensors(tmp_path):
    tensors = {
        "b.weight": torch.randn(3, 5),
        "a.bias": torch.randn(7).bfloat16(),
        "c.index": torch.arange(4, dtype=torch.int64),
        "d.scalar": torch.tensor(2.5, dtype=torch.float16),
        "e.empty": torch.zeros(0, 4),
    }
    entries = [(name, t.dtype, tuple(t.shape)) for name, t in tensors.items()]
    writer = ShardWriter(tmp_path / "x.safetensors", entries)
    for name, tensor in tensors.items():
        writer.write(name, tensor)
    writer.close()
    loaded = load_file(tmp_path / "x.safetensors")
    assert loaded.keys() == tensors.keys()
    assert all(torch.equal(loaded[k], tensors[k]) and loaded[k].dtype == tensors[k].dtype for k in tensors)


def test_shard_writer_refuses_out_of_plan_tensors(tmp_path):
    writer = ShardWriter(tmp_path / "x.safetensors", [("a", torch.float32, (2,)), ("b", torch.float32, (2,))])
    with pytest.raises(RuntimeError, match="expected a"):
        writer.write("b", torch.zeros(2))
    writer.write("a", torch.zeros(2))
    with pytest.raises(RuntimeError, match="1 planned tensors were not written"):
        writer.close()


def test_reader_matches_safetensors_library(tmp_path):
    tensors = {
        "w": torch.randn(64, 33),
        "h": torch.randn(5).half(),
        "i": torch.tensor([1, -2], dtype=torch.int32),
    }
    save_file(tensors, tmp_path / "m.safetensors")
    infos, metadata = read_header(tmp_path / "m.safetensors")
    assert metadata == {}
    for name, tensor in tensors.items():
        assert torch.equal(read_tensor(infos[name]), tensor)
        assert infos[name].shape == tuple(tensor.shape) and infos[name].dtype == tensor.dtype


def test_reader_rejects_truncated_and_non_safetensors_files(tmp_path):
    save_file({"w": torch.randn(100)}, tmp_path / "m.safetensors")
    data = (tmp_path / "m.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[:-10])
    with pytest.raises(InputError, match=r"cut\.safetensors: tensor w has inconsistent data_offsets"):
        read_header(tmp_path / "cut.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\xff" * 64)
    with pytest.raises(InputError, match=r"junk\.safetensors: not a readable safetensors file"):
        read_header(tmp_path / "junk.safetensors")


def test_shard_plan_and_names():
    entries = [(f"t{i}", torch.float32, (250,)) for i in range(5)]  # 1000 bytes each
    assert [len(s) for s in plan_shards(entries, 2500)] == [2, 2, 1]
    assert [len(s) for s in plan_shards(entries, 500)] == [1, 1, 1, 1, 1]  # a larger tensor: own shard
    assert shard_names(1) == ["model.safetensors"]
    assert shard_names(2) == ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]


def test_parse_size():
    assert parse_size("5GB") == 5 * 10**9
    assert parse_size("500MiB") == 500 * 2**20
    assert parse_size("1.5kb") == 1500
    assert parse_size("123") == 123
    for bad in ("", "0GB", "five GB", "-1MB"):
        with pytest.raises(ConfigError, match="max_shard_size"):
            parse_size(bad)
