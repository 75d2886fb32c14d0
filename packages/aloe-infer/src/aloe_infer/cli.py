"""`aloe infer ...`: generate from a model (engines, Medprompt and evaluation commands land here)."""

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
) -> None:
    """Greedy chat generation with transformers on CPU or GPU (fp32 on CPU)."""
    from aloe_core.errors import InputError

    if not (model / "config.json").is_file():
        raise InputError(f"{model}: not a model folder (no config.json)")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model)
    if tokenizer.chat_template is None:
        raise InputError(f"{model}: the tokenizer has no chat template")
    lm = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32, use_safetensors=True).eval()
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": prompt}
    ]
    inputs = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    with torch.no_grad():
        output = lm.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    typer.echo(tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True))
