"""`aloe train sft CONFIG`: the command function, for mounting on the ``train`` typer app.

Mount with ``app.command("sft")(sft_command)`` in :mod:`aloe_train.cli`; ``python -m aloe_train.sft.cli
CONFIG`` runs it standalone (used by tests that train from another virtualenv).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aloe_train.shared.command import OutOption, SetOption, load_command_config


def sft_command(
    config: Annotated[Path, typer.Argument(help="SFT config YAML (see configs/train/).")],
    out: OutOption = None,
    overrides: SetOption = None,
) -> None:
    """Supervised fine-tuning on Ray Train + FSDP2 (local Ray, or the cluster at RAY_ADDRESS).

    Re-running with the same output_dir resumes from its latest checkpoint.
    """
    from aloe_train.sft.config import SFTConfig
    from aloe_train.sft.recipe import run_sft

    summary = run_sft(load_command_config(SFTConfig, config, overrides, out))
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
