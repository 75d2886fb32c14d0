"""What the training commands share: the ``--out`` and ``--set`` options and loading a config with them.

One name for the output folder in every aloe command (``--out``/``-o``; ``--output-dir`` kept as the old
name) and torchtune-style ``--set key.sub=value`` overrides applied to the YAML before validation, so
every nested setting is reachable from the command line without an option of its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, TypeVar

import typer
from pydantic import BaseModel

from aloe_core.config import load_config

ConfigT = TypeVar("ConfigT", bound=BaseModel)

OutOption = Annotated[
    str | None,  # not a Path: it would fold the // of an s3:// URI
    typer.Option(
        "--out",
        "-o",
        "--output-dir",
        help="Output folder or s3:// / gs:// URI (overrides the config's output_dir).",
    ),
]
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="Override a config value, e.g. --set optim.lr=1e-5 (YAML-typed; repeatable; applied before "
        "validation).",
    ),
]


def load_command_config(
    model: type[ConfigT], path: Path, overrides: list[str] | None, out: str | Path | None
) -> ConfigT:
    """``path`` validated as ``model`` with ``overrides`` applied, and ``output_dir`` set to ``out`` if
    given (``--out`` wins over ``--set output_dir=...``)."""
    settings = list(overrides or [])
    if out is not None:
        settings.append(f"output_dir={out}")
    return load_config(model, path, settings)
