"""The run manifest: what each finished stage produced, written atomically after the stage's files.

A stage counts as finished only when its entry is in ``manifest.json`` and its files exist; the entry
is written last (locally: temp file then ``os.replace``; on object storage: one whole-object PUT), so a
run killed at any moment leaves either a finished stage or one that will be redone. Readers of shards
(:mod:`aloe_core.shards`) use it to find a run's last stage, and read only the files it lists.

On object storage a stage's files live under the attempt prefix its entry names (``"attempt"``, see the
commit rule in :mod:`aloe_core.atomic`); local entries have no attempt and their files sit in the stage
folder itself, as they always did.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from aloe_core import storage
from aloe_core.atomic import atomic_write_json

MANIFEST = "manifest.json"
ATTEMPT_PREFIX = "attempt-"


def new_attempt() -> str:
    """A fresh attempt prefix name for one try at writing a stage on object storage."""
    return f"{ATTEMPT_PREFIX}{uuid.uuid4().hex[:12]}"


def entry_folder(root: str | Path, stage_dir: str, entry: dict[str, Any], nested: bool | None = None) -> str:
    """The folder holding the files of ``entry``: ``root/stage_dir`` in a run, ``root`` itself for a
    single-stage output (shards beside the manifest); then the entry's attempt prefix, if it has one.

    ``nested=None`` decides by whether ``root/stage_dir`` exists (a reader that does not know which).
    """
    folder = storage.join(root, stage_dir)
    if nested is None:
        nested = storage.is_dir(folder)
    folder = folder if nested else str(root)
    return storage.join(folder, entry["attempt"]) if entry.get("attempt") else folder


def entry_files(
    root: str | Path, stage_dir: str, entry: dict[str, Any], nested: bool | None = None
) -> list[str]:
    """The kept-row shards of a finished entry, in file-name order (the order they were written)."""
    folder = entry_folder(root, stage_dir, entry, nested)
    return [storage.join(folder, name) for name in sorted(entry.get("files", []))]


class Manifest:
    """``OUT/manifest.json``: run-level facts plus one entry per finished stage, in order."""

    def __init__(self, out_dir: str | Path, data: dict[str, Any] | None = None) -> None:
        # Path only for local folders: Path() would fold a URI's "//" away.
        self.out_dir: str | Path = str(out_dir) if storage.is_uri(out_dir) else Path(out_dir)
        self.data: dict[str, Any] = data or {"stages": {}}

    @classmethod
    def load(cls, out_dir: str | Path) -> Manifest:
        path = storage.join(out_dir, MANIFEST)
        if not storage.is_file(path):
            return cls(out_dir)
        return cls(out_dir, json.loads(storage.read_text(path)))

    @property
    def stages(self) -> dict[str, dict[str, Any]]:
        return self.data.setdefault("stages", {})

    def finished(self, stage_dir: str, key: str) -> dict[str, Any] | None:
        """The entry of ``stage_dir`` if it finished with this exact key and its files are present."""
        entry = self.stages.get(stage_dir)
        if entry is None or entry.get("key") != key:
            return None
        if not all(storage.is_file(f) for f in entry_files(self.out_dir, stage_dir, entry, nested=True)):
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
        atomic_write_json(storage.join(self.out_dir, MANIFEST), self.data)

    def remove_unlisted_attempts(self) -> list[str]:
        """Delete every ``attempt-*`` prefix in the run (or single-stage output) that no entry lists:
        what a killed run left, or an attempt a rerun replaced. Returns what was removed.

        Attempt prefixes are looked for at two levels, ``OUT/attempt-*`` (single-stage outputs) and
        ``OUT/<stage>/attempt-*`` (runs). Local runs write no attempts: nothing to look for there.
        """
        if not storage.is_uri(self.out_dir):
            return []
        listed = {
            storage.join(storage.join(self.out_dir, name) if nested else str(self.out_dir), entry["attempt"])
            for name, entry in self.stages.items()
            if entry.get("attempt")
            for nested in (True, False)
        }
        removed = []
        for child in storage.list_folders(self.out_dir):
            for path in [child] if _is_attempt(child) else storage.list_folders(child):
                if _is_attempt(path) and path not in listed:
                    storage.remove(path)
                    removed.append(path)
        return removed


def _is_attempt(path: str) -> bool:
    return storage.name_of(path).startswith(ATTEMPT_PREFIX)
