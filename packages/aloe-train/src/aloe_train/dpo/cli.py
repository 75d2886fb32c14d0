"""`aloe train dpo CONFIG`: the command function, for mounting on the ``train`` typer app.

``python -m aloe_train.dpo.cli CONFIG`` runs it standalone (used by tests that train from another
virtualenv than the one they serve from).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aloe_train.shared.command import OutOption, SetOption, load_command_config


def dpo_command(
    config: Annotated[
        Path, typer.Argument(help="DPO config YAML with one or more stages (see configs/train/).")
    ],
    out: OutOption = None,
    overrides: SetOption = None,
) -> None:
    """Preference optimisation (DPO / cDPO / IPO) in stages on Ray Train + FSDP2.

    Each stage starts from the previous stage's model, which is also its reference. Re-running with the
    same output_dir skips finished stages and resumes the interrupted one from its latest checkpoint.
    """
    from aloe_train.dpo.config import DPOConfig
    from aloe_train.dpo.recipe import run_dpo

    summary = run_dpo(load_command_config(DPOConfig, config, overrides, out))
    for stage in summary["stages"]:
        typer.echo(
            f"{stage['stage']}: {stage['steps']} steps, loss {stage['first_loss']:.4f} -> "
            f"{stage['final_loss']:.4f}, reward accuracy {stage['final_rewards/accuracies']:.3f}"
        )
    typer.echo(f"model: {summary['model']}")


def main(argv: list[str] | None = None) -> None:
    """Standalone entry point; like the `aloe` command, a user error prints one line and exits 2."""
    from aloe_core.cli import run_standalone

    run_standalone(dpo_command, "aloe_train.dpo.cli", argv)


if __name__ == "__main__":
    main()
