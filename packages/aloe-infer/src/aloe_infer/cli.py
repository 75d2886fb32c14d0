"""`aloe infer ...`: generate from a model through the engine interface (aloe_infer.engine)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="Inference and evaluation: generate with transformers or vLLM engines.", no_args_is_help=True
)


@app.command()
def generate(
    model: Annotated[Path, typer.Argument(help="A Hugging Face model folder (e.g. from `aloe model tiny`).")],
    prompt: Annotated[
        str, typer.Option("--prompt", "-p", help="User message; the model's chat template is applied.")
    ],
    max_new_tokens: Annotated[int, typer.Option(min=1, help="Tokens to generate.")] = 64,
    system: Annotated[str | None, typer.Option(help="Optional system message.")] = None,
    engine: Annotated[str, typer.Option(help="hf (transformers) or vllm.")] = "hf",
    temperature: Annotated[float, typer.Option(min=0, help="0 = greedy.")] = 0.0,
    seed: Annotated[int | None, typer.Option(help="Sampling seed (same seed, same text).")] = None,
    gpu_memory_utilization: Annotated[
        float, typer.Option(help="(vllm) memory share for weights + KV cache (on CPU: of host memory).")
    ] = 0.1,
) -> None:
    """Chat generation with the transformers or vLLM engine (fp32 on CPU, bf16 on GPU)."""
    from aloe_core.config import validate_config
    from aloe_infer.engine import EngineConfig, load_engine
    from aloe_infer.sampling import SamplingParams

    config = validate_config(
        EngineConfig,
        {"type": engine, "model": str(model), "gpu_memory_utilization": gpu_memory_utilization},
        "command line",
    )
    params = validate_config(
        SamplingParams,
        {"max_tokens": max_new_tokens, "temperature": temperature, "seed": seed},
        "command line",
    )
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": prompt}
    ]
    loaded = load_engine(config)
    try:
        [result] = loaded.chat([messages], params)
    finally:
        loaded.close()
    if result.error is not None:
        from aloe_core.errors import InputError

        raise InputError(f"{model}: {result.error}")
    typer.echo(result.completions[0].text)
