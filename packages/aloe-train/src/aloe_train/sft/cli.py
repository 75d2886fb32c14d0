"""`aloe train sft CONFIG`: the command function, for mounting on the ``train`` typer app.

Mount with ``app.command("sft")(sft_command)`` in :mod:`aloe_train.cli`; ``python -m aloe_train.sft.cli
CONFIG`` runs it standalone (used by tests that train from another virtualenv).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def sft_command(
    config: Annotated[Path, typer.Argument(help="SFT config YAML (see configs/train/).")],
    output_dir: Annotated[
        Path | None, typer.Option("--output-dir", "-o", help="Override the config's output_dir.")
    ] = None,
) -> None:
    """Supervised fine-tuning on Ray Train + FSDP2 (local Ray, or the cluster at RAY_ADDRESS).

    Re-running with the same output_dir resumes from its latest checkpoint.
    """
    from aloe_core.config import load_config
    from aloe_train.sft.config import SFTConfig
    from aloe_train.sft.recipe import run_sft

    loaded = load_config(SFTConfig, config)
    if output_dir is not None:
        loaded = loaded.model_copy(update={"output_dir": str(output_dir)})
    summary = run_sft(loaded)
    typer.echo(
        f"sft: {summary['steps']} steps, loss {summary['first_loss']:.4f} -> {summary['final_loss']:.4f}"
        + (f", eval loss {summary['eval_loss']:.4f}" if summary["eval_loss"] is not None else "")
        + f", {summary['tokens_per_s']:.0f} tokens/s"
    )
    typer.echo(f"model: {summary['model']}\ncheckpoint: {summary['checkpoint']}")


def main(argv: list[str] | None = None) -> None:
    """Standalone entry point; like the `aloe` command, a user error prints one line and exits 2."""
    from aloe_core.cli import run_standalone

    run_standalone(sft_command, "aloe_train.sft.cli", argv)


if __name__ == "__main__":
    main()
