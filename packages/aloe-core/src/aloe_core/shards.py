"""Where a command's Parquet record shards are: the one resolver of every reader (data stages, training,
evaluation), and the record kind they hold.

Lives in core because every package reads shards the pipeline wrote, and reading them must not pull
in the pipeline's own dependencies (a training environment has no MinHash kernels).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from aloe_core import storage
from aloe_core.errors import InputError
from aloe_core.manifest import MANIFEST, entry_files

RELEASE_MANIFEST = "release.json"
"""What marks a dataset release folder (``aloe data release``): name, version, splits, checksums."""

Kind = Literal["sft", "preference"]
"""The record kinds a pipeline run or a training recipe works on (``mcqa`` items ride inside sft rows)."""

# What a shard of each kind must hold, and how the error describes it.
REQUIRED_COLUMNS: dict[str, tuple[tuple[str, ...], str]] = {
    "sft": (("messages",), "aloe sft rows (messages: list of {role, content})"),
    "preference": (
        ("prompt", "chosen", "rejected"),
        "aloe preference rows (prompt messages, chosen, rejected)",
    ),
}


@dataclass(frozen=True)
class ShardSource:
    """Parquet record files to read and where they came from (recorded in reports and model cards)."""

    files: list[str]
    provenance: dict[str, Any] = field(default_factory=dict)
    kind: Kind | None = None  # ``sft`` / ``preference`` when a manifest says so


def resolve_inputs(path: str | Path, kind: Kind | None = None) -> ShardSource:
    """The Parquet record files named by ``path``.

    ``path`` may be
    * a pipeline run folder (``manifest.json`` beside stage folders): its last finished stage;
    * a single-stage output (``aloe data clean|dedup|... --out``: ``manifest.json`` beside the
      shards): those shards;
    * a dataset release (``aloe data release``: ``release.json``): its train split (the validation
      split is ``RELEASE/data/validation-*.parquet``);
    * any other folder: its top-level ``*.parquet`` (never ``_dropped/``);
    * a file or a glob.

    Each may be local or a URI (``s3://bucket/run``, see :mod:`aloe_core.storage`); a run on object
    storage is read through its manifest, which names the files to trust.

    With ``kind``, the files must hold that record kind: a run of another kind, or a first shard without
    the kind's columns, is an error.

    Raises:
        InputError: naming ``path`` when nothing is found, a run has no finished stage, or the kind differs.
    """
    text = str(path)
    manifest = storage.join(text, MANIFEST)
    if any(ch in text for ch in "*?["):
        files, provenance, found_kind = storage.glob(text), {"glob": text}, None
    elif storage.is_file(text):
        files, provenance, found_kind = [text], {"file": text}, None
    elif storage.is_file(manifest):
        files, provenance, found_kind = _manifest_files(text, manifest)
    elif storage.is_file(storage.join(text, RELEASE_MANIFEST)):
        files, provenance, found_kind = _release_files(Path(text))
    elif storage.is_dir(text):
        files, provenance, found_kind = storage.list_files(text, "*.parquet"), {"folder": text}, None
    else:
        raise InputError(f"{text}: no such file or folder")
    if not files:
        raise InputError(f"{text}: no Parquet files found (expected a pipeline run, a folder or a glob)")
    source = ShardSource(files, {**provenance, "files": len(files)}, found_kind)
    if kind is not None:
        if source.kind is not None and source.kind != kind:
            raise InputError(f"{text}: a {source.kind!r} run; this recipe needs a {kind} pipeline run")
        check_columns(source.files[0], kind)
    return source


def _manifest_files(root: str, manifest: str) -> tuple[list[str], dict[str, Any], Kind | None]:
    data = json.loads(storage.read_text(manifest))
    stages = data.get("stages") or {}
    if not stages:
        raise InputError(f"{manifest}: no finished stage; run the pipeline to completion first")
    stage, entry = list(stages.items())[-1]
    provenance = {
        "run": root,
        "stage": stage,
        "stage_key": entry.get("key"),
        "rows": entry.get("rows_out"),
    }
    # A run keeps each stage in its own folder; a single-stage output keeps the shards beside the manifest.
    return entry_files(root, stage, entry), provenance, data.get("kind")


def _release_files(root: Path) -> tuple[list[str], dict[str, Any], Kind | None]:
    data = json.loads((root / RELEASE_MANIFEST).read_text(encoding="utf-8"))
    train = data.get("splits", {}).get("train", {})
    provenance = {"release": data.get("name"), "version": data.get("version"), "path": str(root),
                  "split": "train", "rows": train.get("rows"), "license": data.get("license")}  # fmt: skip
    return [str(root / name) for name in sorted(train.get("files", []))], provenance, data.get("kind")


def shard_columns(file: str) -> list[str]:
    """The column names of one Parquet file (its footer only)."""
    import pyarrow.parquet as pq

    path, fs = storage.for_arrow(file)
    return pq.read_schema(path, filesystem=fs).names


def check_columns(file: str, kind: Kind) -> None:
    """Raise :class:`InputError` naming ``file`` and the missing columns unless it holds ``kind`` rows."""
    required, what = REQUIRED_COLUMNS[kind]
    names = shard_columns(file)
    missing = [c for c in required if c not in names]
    if missing:
        raise InputError(
            f"{file}: no {', '.join(f'`{c}`' for c in missing)} column (found {names}); reads {what}"
        )


def detect_kind(files: list[str]) -> Kind:
    """``sft`` or ``preference`` from the columns of the first shard."""
    names = set(shard_columns(files[0]))
    if {"messages", "task"} <= names:
        return "sft"
    if {"prompt", "chosen", "rejected"} <= names:
        return "preference"
    raise InputError(f"{files[0]}: not an aloe sft or preference shard (columns: {sorted(names)})")
