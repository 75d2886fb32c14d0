"""Completions for a list of prompts through :func:`aloe_infer.actors.run_pass` (answers and judge calls).

The driver tokenizes with the model's own tokenizer (chat template for conversations, plain text with
special tokens otherwise) and hands token ids to :class:`~aloe_infer.actors.GenerateActor` pools, as
the actors module asks. Texts never pass through a logger: they are harmful-request answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from pydantic import Field

from aloe_core.config import StrictModel
from aloe_core.errors import InputError
from aloe_core.schemas import stable_id
from aloe_infer.actors import ActorPoolConfig, GenerateActor, RetryConfig, actor_cpus, run_pass
from aloe_infer.engine import EngineConfig, model_files


class GenerationConfig(StrictModel):
    """How the model under test answers each prompt."""

    max_tokens: int = Field(256, ge=1)
    temperature: float = Field(0.0, ge=0)  # 0: greedy, as Egida and HarmBench generate
    seed: int = Field(0, ge=0)  # per-prompt seeds derive from it and the prompt id
    system_prompt: str | None = None  # e.g. the deployed assistant's system prompt


@dataclass(frozen=True)
class Output:
    text: str | None
    error: str | None


def load_tokenizer(engine: EngineConfig) -> Any:
    from transformers import AutoTokenizer

    path = model_files(engine.model, weights=False)  # the driver tokenizes; actors load the weights
    return AutoTokenizer.from_pretrained(path, trust_remote_code=engine.trust_remote_code)


def chat_ids(
    tokenizer: Any, conversations: Sequence[Sequence[dict[str, str]]], model: str
) -> list[list[int]]:
    """Token ids of each conversation with the generation prompt appended (the engine's rendering)."""
    if getattr(tokenizer, "chat_template", None) is None:
        raise InputError(f"{model}: the tokenizer has no chat template; safety prompts are chat turns")
    out = []
    for messages in conversations:
        encoded = tokenizer.apply_chat_template(
            [dict(m) for m in messages], add_generation_prompt=True, tokenize=True, return_dict=True
        )
        out.append(list(encoded["input_ids"]))
    return out


def text_ids(tokenizer: Any, texts: Sequence[str]) -> list[list[int]]:
    return [list(tokenizer(t, add_special_tokens=True)["input_ids"]) for t in texts]


def row_seed(seed: int, key: str) -> int:
    """A 31-bit seed per row, fixed by the run seed and the row's id (batching does not change it)."""
    return int(stable_id("safety", seed, key)[:8], 16) & 0x7FFFFFFF


def complete(
    engine: EngineConfig,
    prompt_ids: Sequence[Sequence[int]],
    keys: Sequence[str],
    *,
    max_tokens: int,
    temperature: float,
    seed: int,
    pool: ActorPoolConfig,
    label: str,
) -> list[Output]:
    """One completion per prompt, in order; a row the engine cannot run has ``error`` set."""
    requests = pa.table(
        {
            "request": pa.array(range(len(prompt_ids)), pa.int64()),
            "prompt_ids": pa.array([list(p) for p in prompt_ids], pa.list_(pa.int64())),
            "max_tokens": pa.array([max_tokens] * len(prompt_ids), pa.int64()),
            "temperature": pa.array([temperature] * len(prompt_ids), pa.float64()),
            "seed": pa.array([row_seed(seed, k) for k in keys], pa.int64()),
        }
    )
    kwargs = {"engine": engine, "retry": RetryConfig(retries=0), "cpus": actor_cpus(pool)}
    result = run_pass(requests, GenerateActor, kwargs, pool, label=label)
    return [
        Output(text, error)
        for text, error in zip(result["text"].to_pylist(), result["error"].to_pylist(), strict=True)
    ]
