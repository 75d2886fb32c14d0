"""`aloe train merge CONFIG`: the command function, for mounting on the ``train`` typer app.

Mount with ``app.command("merge")(merge_command)`` in :mod:`aloe_train.cli`; ``python -m
aloe_train.merge.cli CONFIG`` runs it standalone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aloe_train.shared.command import OutOption, SetOption


def merge_command(
    config: Annotated[Path, typer.Argument(help="mergekit-style merge YAML (see configs/merge/).")],
    out: OutOption = None,
    overrides: SetOption = None,
    random_seed: Annotated[
        int | None,
        typer.Option("--random-seed", min=0, help="DARE mask seed (overrides random_seed; default 0)."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a non-empty output folder.")] = False,
) -> None:
    """Merge models (linear, task_arithmetic, ties, dare_ties, dare_linear) tensor by tensor.

    Accepts mergekit's YAML for these methods; a seeded DARE merge equals `mergekit-yaml --random-seed`.
    Writes a Hugging Face folder with a model card recording the recipe and input checksums.
    """
    from aloe_train.merge import load_merge_config, run_merge

    loaded = load_merge_config(config, overrides or [])
    if random_seed is not None:
        loaded = loaded.model_copy(update={"random_seed": random_seed})
    summary = run_merge(loaded, out, config_text=config.read_text(encoding="utf-8"), overwrite=force)
    typer.echo(
        f"merge ({loaded.merge_method}): {summary['tensors']} tensors, {summary['parameters']:,} parameters, "
        f"{len(summary['shards'])} shard(s) in {summary['seconds']:.1f} s, "
        f"peak RSS {summary['peak_rss_bytes'] / 2**30:.2f} GiB"
    )
    typer.echo(f"model: {summary['output_dir']}")


def main(argv: list[str] | None = None) -> None:
    """Standalone entry point; like the `aloe` command, a user error prints one line and exits 2."""
    from aloe_core.cli import run_standalone

    run_standalone(merge_command, "aloe_train.merge.cli", argv)


if __name__ == "__main__":
    main()
