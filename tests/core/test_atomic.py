"""Debris of killed atomic writes: recognised by name, removed on the next start, previous folders kept."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from aloe_core.atomic import atomic_write_json, is_debris, publish_dir, remove_debris, staging_dir


def test_debris_names_are_exactly_the_temporary_names_of_atomic_writes(tmp_path):
    fd, tmp_file = tempfile.mkstemp(prefix=".manifest.json.", suffix=".tmp", dir=tmp_path)
    os.close(fd)
    staging = staging_dir(tmp_path / "model")
    for name in [Path(tmp_file).name, staging.name, ".02-clean.tmp", ".model.old-4242", ".a.b.c1x.tmp"]:
        assert is_debris(name), name
    for name in ["manifest.json", ".hidden", ".git", "x.tmp", "part-00000-0000.parquet", ".model.old-x"]:
        assert not is_debris(name), name


def test_remove_debris_clears_a_killed_run_and_keeps_everything_else(tmp_path):
    out = tmp_path / "run"
    atomic_write_json(out / "manifest.json", {"stages": {}})
    kept = [out / "manifest.json", out / "01-ingest" / "part-00000-0000.parquet", out / ".hidden"]
    for path in kept[1:]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    debris = [
        out / ".manifest.json.k3j_x9.tmp",  # killed inside the manifest's atomic write
        out / ".02-clean.tmp" / "part-00000-0000.parquet",  # killed half-way through a stage's shards
        out / "_cot_chunks" / "06-cot" / ".chunk-ab.parquet.0f3e.tmp",  # killed inside a chunk write
        out / ".report.html.zz1.tmp",
        tmp_path / ".run.tmp-abc" / "x",  # a staging folder of the run folder itself
    ]
    for path in debris:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half")
    other = tmp_path / ".other.tmp-abc"  # another target's staging folder: not ours to remove
    other.mkdir()

    removed = remove_debris(out)

    assert {p.name for p in removed} == {
        ".manifest.json.k3j_x9.tmp", ".02-clean.tmp", ".chunk-ab.parquet.0f3e.tmp", ".report.html.zz1.tmp",
        ".run.tmp-abc",
    }  # fmt: skip
    assert all(p.exists() for p in kept) and other.is_dir()
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()) == sorted(
        p.relative_to(tmp_path).as_posix() for p in kept
    )
    assert remove_debris(out) == []  # idempotent


def test_kill_between_the_renames_of_publish_dir_restores_the_previous_folder(tmp_path):
    target = tmp_path / "model"
    first = staging_dir(target)
    (first / "weights.safetensors").write_bytes(b"v1")
    publish_dir(first, target)
    # What a kill between `target.rename(old)` and `staging.rename(target)` leaves:
    second = staging_dir(target)
    (second / "weights.safetensors").write_bytes(b"v2-half")
    target.rename(tmp_path / ".model.old-999")

    remove_debris(target)

    assert (target / "weights.safetensors").read_bytes() == b"v1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
