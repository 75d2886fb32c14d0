"""`aloe train merge` end to end on tiny Llama "fine-tunes": mergekit as the oracle for every method, the
output folder (loads with transformers, card checksums, shards), input checks, atomic output, the CLI.

The models: the session's tiny model's config and tokenizer, reshaped to 12 layers (so tensor names sort
``layers.10`` before ``layers.2``, the order DARE masks are drawn in), a seeded random base, and three
seeded perturbations of it: ``a`` (every tensor), ``b`` (all but the embeddings, whose task vector is
then exactly zero; saved in 1 MB shards with an index) and ``c`` (half of ``a``'s task vector negated,
so TIES has sign conflicts to resolve).

mergekit (a dev dependency of the workspace) runs in a subprocess of this venv's Python, with its own
seeding, exactly as ``mergekit-yaml --random-seed`` would.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

from aloe_core.errors import InputError
from aloe_train.merge import load_merge_config, run_merge
from aloe_train.merge.cli import main as merge_main

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja")


def _save(model, folder: Path, tokenizer_from: Path, **kwargs) -> Path:
    model.save_pretrained(folder, safe_serialization=True, **kwargs)
    for name in TOKENIZER_FILES:
        shutil.copyfile(tokenizer_from / name, folder / name)
    return folder


def _build(tiny_model_dir: Path, seed: int, **config_updates):
    from transformers import AutoConfig, LlamaForCausalLM

    config = AutoConfig.from_pretrained(tiny_model_dir)
    shape = {"num_hidden_layers": 12, "hidden_size": 64, "intermediate_size": 192, "head_dim": 32}
    for key, value in {**shape, **config_updates}.items():
        setattr(config, key, value)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    return model


@pytest.fixture(scope="module")
def family(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Paths of base, a, b, c (see the module docstring); read-only."""
    root = tmp_path_factory.mktemp("merge-family")
    base = _build(tiny_model_dir, seed=0)
    paths = {"base": _save(base, root / "base", tiny_model_dir)}
    generator = torch.Generator().manual_seed(1)
    state = {k: v.clone() for k, v in base.state_dict().items()}
    delta_a = {k: 0.02 * torch.randn(v.shape, generator=generator) for k, v in state.items()}
    variants = {
        "a": ({k: state[k] + delta_a[k] for k in state}, {}),
        "b": (
            {
                k: v if "embed_tokens" in k else v + 0.02 * torch.randn(v.shape, generator=generator)
                for k, v in state.items()
            },
            {"max_shard_size": "1MB"},
        ),
        "c": (
            {
                k: state[k] - 0.5 * delta_a[k] + 0.01 * torch.randn(v.shape, generator=generator)
                for k, v in state.items()
            },
            {},
        ),
    }
    for name, (weights, save_kwargs) in variants.items():
        base.load_state_dict(weights)
        paths[name] = _save(base, root / name, tiny_model_dir, **save_kwargs)
    return paths


def _config(tmp_path: Path, name: str, data: dict) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _recipes(m: dict[str, Path]) -> dict[str, tuple[dict, int]]:
    """Recipes covering every method and parameter form, with their DARE seeds."""
    p = {k: str(v) for k, v in m.items()}
    three = [
        {"model": p["a"], "parameters": {"weight": 0.5, "density": 0.5}},
        {"model": p["b"], "parameters": {"weight": 0.3, "density": 0.7}},
        {"model": p["c"], "parameters": {"weight": 0.2, "density": 0.3}},
    ]
    mlp_or_rest = [{"filter": "mlp", "value": 0.5}, {"value": 0.2}]
    return {
        "ties": ({"merge_method": "ties", "base_model": p["base"], "models": three, "dtype": "float32"}, 0),
        "dare_ties": (
            {
                "merge_method": "dare_ties",
                "base_model": p["base"],
                "models": [
                    {"model": p["a"], "parameters": {"weight": 0.6, "density": [0.3, 0.9]}},
                    {"model": p["b"], "parameters": {"weight": mlp_or_rest, "density": 0.5}},
                    {"model": p["c"], "parameters": {"weight": 0.3, "density": 0.4}},
                ],
                "parameters": {"int8_mask": True},
                "dtype": "float32",
            },
            11,
        ),
        "dare_ties_bf16": (
            {"merge_method": "dare_ties", "base_model": p["base"], "models": three[::2], "dtype": "bfloat16"},
            3,
        ),
        "dare_linear": ({"merge_method": "dare_linear", "base_model": p["base"], "models": three[:2]}, 5),
        "task_arithmetic": (
            {
                "merge_method": "task_arithmetic",
                "base_model": p["base"],
                "models": three,
                "parameters": {"lambda": 0.8, "normalize": True},
            },
            0,
        ),
        "linear": (
            {
                "merge_method": "linear",
                "models": [
                    {"model": p["base"], "parameters": {"weight": 0.5}},
                    {"model": p["a"], "parameters": {"weight": 0.3}},
                    {
                        "model": p["b"],
                        "parameters": {"weight": [{"filter": "self_attn", "value": 0.4}, {"value": 0.1}]},
                    },
                ],
            },
            0,
        ),
    }


@pytest.fixture(scope="module")
def mergekit_python() -> str:
    """The Python that runs mergekit: this one (mergekit is a dev dependency of the workspace)."""
    assert importlib.util.find_spec("mergekit") is not None, "mergekit missing: run `uv sync` (dev group)"
    return sys.executable


# Runs several merges in one interpreter (one torch import); mergekit's own seeding (--random-seed).
MERGEKIT_DRIVER = """
import json, sys, yaml
from mergekit.config import MergeConfiguration
from mergekit.merge import run_merge
from mergekit.options import MergeOptions
for job in json.loads(sys.argv[1]):
    text = open(job["config"], encoding="utf-8").read()
    options = MergeOptions(random_seed=job["seed"], quiet=True, copy_tokenizer=False, write_model_card=False)
    run_merge(MergeConfiguration.model_validate(yaml.safe_load(text)), job["out"], options=options)
"""


def _load_all(folder: Path) -> dict[str, torch.Tensor]:
    tensors = {}
    for file in sorted(folder.glob("*.safetensors")):
        tensors.update(load_file(file))
    return tensors


@pytest.mark.slow
def test_every_method_equals_mergekit(mergekit_python, request, tmp_path):
    family = request.getfixturevalue("family")  # after the skip: don't build models for nothing
    jobs = []
    for name, (recipe, seed) in _recipes(family).items():
        config = _config(tmp_path, name, recipe)
        run_merge(
            load_merge_config(config).model_copy(update={"random_seed": seed}), tmp_path / f"ours-{name}"
        )
        jobs.append({"config": str(config), "out": str(tmp_path / f"mergekit-{name}"), "seed": seed})
    subprocess.run([mergekit_python, "-c", MERGEKIT_DRIVER, json.dumps(jobs)], check=True, timeout=600)
    base = _load_all(family["base"])
    for name in _recipes(family):
        ours, theirs = _load_all(tmp_path / f"ours-{name}"), _load_all(tmp_path / f"mergekit-{name}")
        assert ours.keys() == theirs.keys() == base.keys(), name
        for key in ours:
            assert ours[key].dtype == theirs[key].dtype, (name, key)
            diff = (ours[key].float() - theirs[key].float()).abs().max().item()
            assert diff <= 1e-6, f"{name}: {key} differs from mergekit by {diff}"
        moved = max((ours[k].float() - base[k]).abs().max().item() for k in ours)
        assert moved > 1e-3, f"{name}: the merge equals the base model, the comparison proves nothing"


def test_output_folder_loads_and_records_its_inputs(family, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    recipe, _ = _recipes(family)["ties"]
    text = yaml.safe_dump({**recipe, "out_dtype": "bfloat16", "max_shard_size": "1MB"}, sort_keys=False)
    (tmp_path / "ties.yaml").write_text(text, encoding="utf-8")
    out = tmp_path / "merged"
    summary = run_merge(load_merge_config(tmp_path / "ties.yaml"), out, config_text=text)
    fp32 = run_merge(load_merge_config(_config(tmp_path, "fp32", recipe)), tmp_path / "fp32")

    shards = sorted(out.glob("model-*-of-*.safetensors"))
    assert len(shards) == len(summary["shards"]) > 1
    index = json.loads((out / "model.safetensors.index.json").read_text())
    merged = _load_all(out)
    assert set(index["weight_map"]) == set(merged) and set(index["weight_map"].values()) == {
        s.name for s in shards
    }
    reference = _load_all(Path(fp32["output_dir"]))
    assert all(
        merged[k].dtype == torch.bfloat16 and torch.equal(merged[k], reference[k].bfloat16()) for k in merged
    )

    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.dtype == torch.bfloat16
    assert all(torch.equal(t, merged[k]) for k, t in model.state_dict().items())
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert tokenizer.chat_template == (family["base"] / "chat_template.jinja").read_text()
    assert json.loads((out / "config.json").read_text())["dtype"] == "bfloat16"
    assert (out / "generation_config.json").read_bytes() == (
        family["base"] / "generation_config.json"
    ).read_bytes()
    assert (out / "mergekit_config.yml").read_text() == text

    card = (out / "README.md").read_text()
    assert text.strip() in card
    for folder in (family["base"], family["a"], family["b"], family["c"]):
        for file in folder.glob("*.safetensors"):
            assert f"`{folder.absolute()}` | {file.name} | {file.stat().st_size} | `{_sha256(file)}`" in card
    assert all(f"| {s.name} | {s.stat().st_size} | `{_sha256(s)}` |" in card for s in shards)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_tokenizer_source_and_linear_without_base(family, tmp_path):
    source = tmp_path / "tok"
    source.mkdir()
    for name in TOKENIZER_FILES:
        shutil.copyfile(family["a"] / name, source / name)
    (source / "chat_template.jinja").write_text("{{ messages[0]['content'] }}")
    recipe = {
        "merge_method": "linear",
        "models": [{"model": str(family["a"]), "parameters": {"weight": 1}}, {"model": str(family["c"])}],
        "parameters": {"weight": 3},  # the default for models without their own
        "tokenizer_source": str(source),
    }
    out = Path(run_merge(load_merge_config(_config(tmp_path, "lin", recipe)), tmp_path / "out")["output_dir"])
    assert (out / "chat_template.jinja").read_text() == "{{ messages[0]['content'] }}"
    a, c, merged = _load_all(family["a"]), _load_all(family["c"]), _load_all(out)
    for key in merged:
        assert torch.allclose(merged[key], (a[key] + 3 * c[key]) / 4, atol=1e-6, rtol=0)


def _edited_copy(src: Path, dst: Path, *, config=None, edit=None) -> Path:
    shutil.copytree(src, dst)
    if config:
        data = json.loads((dst / "config.json").read_text())
        (dst / "config.json").write_text(json.dumps({**data, **config}))
    if edit:
        for file in dst.glob("*.safetensors"):
            save_file(edit(load_file(file)), file, metadata={"format": "pt"})
    return dst


def _no_leftovers(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.startswith(".")]


def test_incompatible_models_are_refused_before_any_output(family, tiny_model_dir, tmp_path):
    recipe, _ = _recipes(family)["ties"]
    out = tmp_path / "merged"
    cases = {
        "arch": (
            _edited_copy(family["a"], tmp_path / "arch", config={"model_type": "mistral"}),
            r"arch: architecture \('mistral', \['LlamaForCausalLM'\]\) differs from .*base's \('llama'",
        ),
        "missing": (
            _edited_copy(
                family["a"],
                tmp_path / "missing",
                edit=lambda t: {k: v for k, v in t.items() if k != "model.norm.weight"},
            ),
            r"missing: tensor names differ from .*base: missing model\.norm\.weight",
        ),
        "mlp": (
            _save(_build(tiny_model_dir, 0, intermediate_size=128), tmp_path / "mlp", tiny_model_dir),
            r"mlp: tensor model\.layers\.\d+\.mlp\.\w+\.weight has shape \[\d+, \d+\] but .*base has",
        ),
        "vocab": (
            _save(_build(tiny_model_dir, 0, vocab_size=4224), tmp_path / "vocab", tiny_model_dir),
            r"vocab: tensor (lm_head|model\.embed_tokens)\.weight has shape \[4224, 64\] but .*base has "
            r"\[4096, 64\] \(different vocabularies\? merged models must share one tokenizer\)",
        ),
        "absent": (tmp_path / "absent", "absent: model folder not found"),
    }
    for name, (path, message) in cases.items():
        models = [{"model": str(path), "parameters": {"weight": 1.0}}, *recipe["models"][1:]]
        cfg = load_merge_config(_config(tmp_path, name, {**recipe, "models": models}))
        with pytest.raises(InputError, match=message):
            run_merge(cfg, out)
        assert not out.exists() and _no_leftovers(out.parent)


def test_buffers_are_copied_and_a_mid_merge_failure_keeps_the_previous_output(family, tmp_path):
    # An integer tensor sorting after the layers: copied when equal everywhere, an error (raised while
    # merging, after other tensors were written) when one model differs.
    def add_buffer(value):
        return lambda t: {**t, "model.zz_step": torch.tensor([value, 7], dtype=torch.int64)}

    same = {
        n: _edited_copy(family[n], tmp_path / f"same-{n}", edit=add_buffer(1)) for n in ("base", "a", "c")
    }
    odd_c = _edited_copy(family["c"], tmp_path / "odd-c", edit=add_buffer(2))
    recipe = {
        "merge_method": "dare_ties",
        "base_model": str(same["base"]),
        "models": [
            {"model": str(same[n]), "parameters": {"weight": 0.5, "density": 0.5}} for n in ("a", "c")
        ],
    }
    out = tmp_path / "merged"
    run_merge(load_merge_config(_config(tmp_path, "same", recipe)), out)
    assert _load_all(out)["model.zz_step"].tolist() == [1, 7]
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    recipe["models"][1]["model"] = str(odd_c)
    with pytest.raises(InputError, match=r"odd-c: non-floating tensor model\.zz_step differs from"):
        run_merge(load_merge_config(_config(tmp_path, "odd", recipe)), out, overwrite=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert _no_leftovers(tmp_path)


def test_cli_merges_deterministically_and_reports_errors_in_one_line(family, tmp_path, capsys):
    recipe, _ = _recipes(family)["dare_ties"]
    config = _config(tmp_path, "dare", recipe)
    merge_main([str(config), "-o", str(tmp_path / "s5"), "--random-seed", "5"])
    assert "merge (dare_ties): 111 tensors" in capsys.readouterr().out
    api = run_merge(load_merge_config(config).model_copy(update={"random_seed": 5}), tmp_path / "api5")
    other = run_merge(load_merge_config(config).model_copy(update={"random_seed": 6}), tmp_path / "api6")
    digest = {name: _sha256(tmp_path / name / "model.safetensors") for name in ("s5", "api5", "api6")}
    assert digest["s5"] == digest["api5"] != digest["api6"]
    assert api["tensors"] == other["tensors"] == 111

    with pytest.raises(SystemExit) as info:
        merge_main([str(config), "-o", str(tmp_path / "s5"), "--random-seed", "5"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    occupied = (tmp_path / "s5").absolute()
    assert (
        err == f"aloe: error: {occupied}: folder is not empty; pass --force (overwrite=True) to replace it\n"
    )
