"""`aloe model`: build and inspect models.

Today this builds the tiny random Llama that tests, CI and the demo use in place of a real checkpoint
(no model can be downloaded there). The root CLI mounts :data:`app` as ``aloe model``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aloe_core.config import validate_config
from aloe_fixtures.tiny_model import TinyModelConfig, build_tiny_model, parameter_count

HELP = (
    "Build and inspect models.\n\n"
    "`aloe model tiny OUT_DIR` writes a tiny randomly initialised Llama-3-architecture model (weights, "
    "byte-level BPE tokenizer, chat template, generation config) that loads with transformers' "
    "from_pretrained and with vLLM like any Hugging Face checkpoint. Use it to run pipelines, training and "
    "evaluation end to end on a laptop or in CI; it generates random text."
)

app = typer.Typer(help=HELP, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)

_DEFAULTS = TinyModelConfig()


@app.callback()
def _group() -> None:
    """Keeps `model` a command group (typer collapses a one-command app into that command)."""


@app.command("tiny")
def tiny(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write the model into (created if missing).")],
    layers: Annotated[int, typer.Option(help="Transformer blocks.")] = _DEFAULTS.layers,
    hidden: Annotated[int, typer.Option(help="Hidden size; hidden/heads must be a vLLM head size.")] = (
        _DEFAULTS.hidden
    ),
    heads: Annotated[int, typer.Option(help="Attention heads; they share one key/value head (GQA).")] = (
        _DEFAULTS.heads
    ),
    vocab_size: Annotated[int, typer.Option(help="Vocabulary size incl. special tokens.")] = (
        _DEFAULTS.vocab_size
    ),
    seed: Annotated[
        int, typer.Option(help="Seed for tokenizer corpus and weights; same seed, same bytes.")
    ] = (_DEFAULTS.seed),
    force: Annotated[bool, typer.Option("--force", help="Replace OUT_DIR if it is not empty.")] = False,
) -> None:
    """Build the tiny random Llama used by tests and the demo into OUT_DIR."""
    config = validate_config(
        TinyModelConfig,
        {"layers": layers, "hidden": hidden, "heads": heads, "vocab_size": vocab_size, "seed": seed},
        source="aloe model tiny",
    )
    path = build_tiny_model(out_dir, config, overwrite=force)
    size = sum(f.stat().st_size for f in path.iterdir() if f.is_file())
    typer.echo(
        f"wrote tiny Llama to {path}: {parameter_count(path):,} parameters (layers={config.layers}, "
        f"hidden={config.hidden}, heads={config.heads}, vocab={config.vocab_size}, seed={config.seed}), "
        f"{size / 2**20:.1f} MiB"
    )
