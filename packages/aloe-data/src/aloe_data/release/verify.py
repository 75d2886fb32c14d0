"""``verify_release``: is a release folder what its ``release.json`` says, with a card and Croissant
metadata that describe it?

Checks, each problem one line naming the file: every listed file present with its size and sha256, no
file that is not listed, row counts per split (Parquet footers) as listed, the card's front matter
(required keys, ``data_files`` matching the split files), and ``croissant.json`` (mlcroissant loads it
without errors, its files and checksums are the release's, its first records equal the first rows).
"""

from __future__ import annotations

import fnmatch
import itertools
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from aloe_core.atomic import is_debris
from aloe_core.shards import RELEASE_MANIFEST
from aloe_data.pipeline.writer import sha256_file
from aloe_data.release.card import parse_front_matter
from aloe_data.release.croissant import CROISSANT, croissant_problems, record_to_row

CARD_KEYS = (
    "license",
    "language",
    "task_categories",
    "size_categories",
    "pretty_name",
    "source_datasets",
    "configs",
)
RECORDS_CHECKED = 50  # per split: mlcroissant reads records row by row in Python, so only a prefix


def _files(root: Path, listed: dict[str, Any]) -> list[str]:
    problems = []
    for name, info in listed.items():
        path = root / name
        if not path.is_file():
            problems.append(f"{name}: missing (listed in {RELEASE_MANIFEST})")
        elif path.stat().st_size != info["bytes"] or sha256_file(path) != info["sha256"]:
            problems.append(
                f"{name}: sha256 differs from {RELEASE_MANIFEST} (the file changed or is corrupt)"
            )
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        name = path.relative_to(root).as_posix()
        if name != RELEASE_MANIFEST and name not in listed and not is_debris(path.name):
            problems.append(f"{name}: not listed in {RELEASE_MANIFEST}")
    return problems


def _rows(root: Path, release: dict[str, Any]) -> list[str]:
    problems = []
    for split, info in release["splits"].items():
        present = [root / f for f in info["files"] if (root / f).is_file()]
        if len(present) != len(info["files"]):
            continue  # reported as missing already
        try:
            rows = sum(pq.ParquetFile(p).metadata.num_rows for p in present)
        except Exception as exc:  # a corrupt footer: pyarrow raises ArrowInvalid, OSError...
            problems.append(f"{split}: cannot read its Parquet files ({type(exc).__name__}: {exc})")
            continue
        if rows != info["rows"]:
            problems.append(f"{split}: {rows} rows in its files, {RELEASE_MANIFEST} says {info['rows']}")
    return problems


def _card(root: Path, release: dict[str, Any]) -> list[str]:
    path = root / "README.md"
    if not path.is_file():
        return ["README.md: missing (the dataset card)"]
    front = parse_front_matter(path.read_text(encoding="utf-8"))
    if front is None:
        return ["README.md: no YAML front matter between '---' lines"]
    problems = [f"README.md: front matter has no `{key}`" for key in CARD_KEYS if not front.get(key)]
    configs = front.get("configs") or [{}]
    patterns = {d.get("split"): d.get("path") for d in configs[0].get("data_files", [])}
    for split, info in release["splits"].items():
        pattern = patterns.get(split)
        if pattern is None:
            problems.append(f"README.md: configs.data_files has no split {split}")
        elif sorted(f for f in release["files"] if fnmatch.fnmatch(f, pattern)) != sorted(info["files"]):
            problems.append(f"README.md: data_files {pattern!r} of {split} does not match its files")
    if front.get("license") not in (None, release["license"]):
        problems.append(
            f"README.md: license {front.get('license')!r}, {RELEASE_MANIFEST} says {release['license']!r}"
        )
    return problems


def _croissant(root: Path, release: dict[str, Any]) -> list[str]:
    path = root / CROISSANT
    if not path.is_file():
        return [f"{CROISSANT}: missing"]
    problems = croissant_problems(path)
    if problems:
        return problems
    document = json.loads(path.read_text(encoding="utf-8"))
    described = {
        d["contentUrl"]: d.get("sha256") for d in document.get("distribution", []) if "contentUrl" in d
    }
    data = {
        f: release["files"][f]["sha256"]
        for info in release["splits"].values()
        for f in info["files"]
        if f in release["files"]
    }
    if described != data:
        return [f"{CROISSANT}: its files and sha256 are not the release's data files"]
    import mlcroissant as mlc

    dataset = mlc.Dataset(str(path))
    for split, info in release["splits"].items():
        if any(not (root / f).is_file() for f in info["files"]):
            continue
        try:
            records = [
                record_to_row(r, split) for r in itertools.islice(dataset.records(split), RECORDS_CHECKED)
            ]
            rows = pq.read_table(root / sorted(info["files"])[0]).slice(0, RECORDS_CHECKED).to_pylist()
        except Exception as exc:  # mlcroissant wraps read errors in GenerationError
            problems.append(f"{CROISSANT}: reading {split} records failed ({type(exc).__name__})")
            continue
        if records != rows:
            problems.append(f"{CROISSANT}: the first {split} records differ from the Parquet rows")
    return problems


def verify_release(directory: Path) -> list[str]:
    """Every problem found in the release at ``directory``, one line each (empty: it verifies)."""
    root = Path(directory)
    manifest = root / RELEASE_MANIFEST
    if not manifest.is_file():
        return [f"{root}: no {RELEASE_MANIFEST}; not an aloe dataset release"]
    try:
        release = json.loads(manifest.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        return [f"{RELEASE_MANIFEST}: not valid JSON ({exc})"]
    problems = _files(root, release["files"]) + _rows(root, release) + _card(root, release)
    return problems + _croissant(root, release)
