"""Commands of aloe-fixtures, mounted by the root `aloe` command: ``aloe data sample`` (the embedded
corpus) beside aloe-data's stage commands, ``aloe model tiny`` and ``aloe demo``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def sample_command(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for the source files and ground_truth.json.")
    ],
    rows: Annotated[int, typer.Option("--rows", min=1, help="Rows in total across all files.")] = 5000,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same bytes.")] = 0,
) -> None:
    """Write the embedded synthetic medical corpus (with planted defects and their ground truth)."""
    from aloe_fixtures.corpus import write_sample

    summary = write_sample(out, rows=rows, seed=seed)
    typer.echo(f"wrote {sum(summary['files'].values())} rows in {len(summary['files'])} files to {out}")
