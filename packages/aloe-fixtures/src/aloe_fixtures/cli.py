"""Commands of aloe-fixtures, mounted by the root `aloe` command: ``aloe data sample`` (the embedded
corpus) and ``aloe data documents`` (its document collection, a RAG corpus) beside aloe-data's stage
commands, ``aloe model tiny`` and ``aloe demo``."""

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


def documents_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the documents (a RAG corpus).")],
    layout: Annotated[
        str, typer.Option(help="jsonl: one <topic>.jsonl of {id, title, text}; md: <topic>/<slug>.md files.")
    ] = "jsonl",
) -> None:
    """Write the embedded medical document collection (textbook-style passages from the fact tables),
    a corpus for `aloe infer index` with nothing to download."""
    from aloe_core.errors import InputError
    from aloe_fixtures.corpus.documents import LAYOUTS, write_documents

    if layout not in LAYOUTS:
        raise InputError(f"--layout: {layout!r} is not one of {', '.join(LAYOUTS)}")
    out.mkdir(parents=True, exist_ok=True)
    files = write_documents(out, layout=layout)
    typer.echo(f"wrote {len(files)} files to {out}")
