"""The run manifest: what each finished stage produced, written atomically after the stage's files.

A stage counts as finished only when its entry is in ``manifest.json`` and its directory exists; the entry
is written last (temp file then ``os.replace``), so a run killed at any moment leaves either a finished
stage or one that will be redone. Readers of shards (:mod:`aloe_core.shards`) use it to find a run's
last stage.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aloe_core.atomic import atomic_write_json

MANIFEST = "manifest.json"


class Manifest:
    """``OUT/manifest.json``: run-level facts plus one entry per finished stage, in order."""

    def __init__(self, out_dir: Path, data: dict[str, Any] | None = None) -> None:
        self.out_dir = Path(out_dir)
        self.data: dict[str, Any] = data or {"stages": {}}

    @classmethod
    def load(cls, out_dir: Path) -> Manifest:
        path = Path(out_dir) / MANIFEST
        if not path.is_file():
            return cls(out_dir)
        return cls(out_dir, json.loads(path.read_text(encoding="utf-8")))

    @property
    def stages(self) -> dict[str, dict[str, Any]]:
        return self.data.setdefault("stages", {})

    def finished(self, stage_dir: str, key: str) -> dict[str, Any] | None:
        """The entry of ``stage_dir`` if it finished with this exact key and its files are present."""
        entry = self.stages.get(stage_dir)
        if entry is None or entry.get("key") != key:
            return None
        if not all((self.out_dir / stage_dir / name).is_file() for name in entry["files"]):
            return None
        return entry

    def forget_from(self, stage_dir: str) -> list[str]:
        """Drop the entry of ``stage_dir`` and of every later stage (their inputs are about to change)."""
        names = list(self.stages)
        removed = names[names.index(stage_dir) :] if stage_dir in names else []
        for name in removed:
            del self.stages[name]
        return removed

    def record(self, stage_dir: str, entry: dict[str, Any]) -> None:
        self.stages[stage_dir] = entry
        self.save()

    def save(self) -> None:
        atomic_write_json(self.out_dir / MANIFEST, self.data)
