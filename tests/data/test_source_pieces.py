"""Ingest's read plan (aloe_data.sources.pieces): a big JSONL file read in parts gives exactly the rows,
line numbers and ids of reading it whole, and the plan gives a single file several tasks."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow.fs as pafs
import pytest

from aloe_core.containers import iter_jsonl
from aloe_data.sources import SourceConfig, check_sources, read_sources
from aloe_data.sources import pieces as pieces_module
from aloe_data.sources.datasource import read_pieces, read_units_in_process
from aloe_data.sources.paths import FileUnit
from aloe_data.sources.pieces import Piece, open_piece, plan_tasks, split_jsonl

FS = pafs.LocalFileSystem()


def write_alpaca(path: Path, rows: int) -> bytes:
    """Lines of varied length, with blank lines, a CRLF line, a broken line and no final newline."""
    lines = []
    for i in range(rows):
        lines.append(
            json.dumps({"instruction": f"question {i} " + "word " * (i % 37), "output": f"answer {i}"})
        )
        if i % 50 == 7:
            lines.append("")
        if i % 97 == 3:
            lines.append("{not json")
    data = ("\n".join(lines[:-1]) + "\r\n" + lines[-1]).encode()
    path.write_bytes(data)
    return data


def unit(path: Path, container: str = "jsonl") -> FileUnit:
    return FileUnit(0, str(path), path.name, container)


@pytest.mark.parametrize("parts", [2, 3, 7, 50])
def test_split_pieces_give_the_whole_files_lines(tmp_path, parts):
    path = tmp_path / "train.jsonl"
    data = write_alpaca(path, 400)
    pieces = split_jsonl(FS, unit(path), len(data), parts)
    assert len(pieces) > 1
    assert pieces[0].start == 0 and pieces[-1].end is None
    assert [p.end for p in pieces[:-1]] == [p.start for p in pieces[1:]]  # contiguous, no overlap
    assert all(data[p.start - 1 : p.start] == b"\n" for p in pieces[1:])  # each starts a line
    whole = [(r.locator, r.value, r.error) for r in iter_jsonl(FS.open_input_stream(str(path)))]
    parted = []
    for piece in pieces:
        assert piece.first_line == data[: piece.start].count(b"\n") + 1
        with open_piece(FS, piece) as handle:
            parted += [(r.locator, r.value, r.error) for r in iter_jsonl(handle, first_line=piece.first_line)]
    assert parted == whole


def test_a_line_longer_than_a_part_is_read_once(tmp_path):
    path = tmp_path / "long.jsonl"
    lines = [
        json.dumps({"instruction": "x " * 5000, "output": "a"}),
        json.dumps({"instruction": "q", "output": "b"}),
    ]
    path.write_text("\n".join(lines) + "\n")
    pieces = split_jsonl(FS, unit(path), path.stat().st_size, 8)
    rows = [r.locator for p in pieces for r in iter_jsonl(open_piece(FS, p), first_line=p.first_line)]
    assert rows == [1, 2]


def test_plan_splits_one_big_file_and_packs_small_ones(tmp_path, monkeypatch):
    monkeypatch.setattr(pieces_module, "MIN_PIECE_BYTES", 1)
    big = tmp_path / "big.jsonl"
    size = len(write_alpaca(big, 2000))
    smalls = [tmp_path / f"small-{i}.jsonl" for i in range(3)]
    for path in smalls:
        write_alpaca(path, 3)
    gz = tmp_path / "big.jsonl.gz"
    gz.write_bytes(gzip.compress(big.read_bytes()))
    units = [unit(big), *(unit(p) for p in smalls), unit(gz)]
    tasks = plan_tasks(units, FS, cpus=2)  # target: total / 8 bytes
    # The small files and the gzip file (never split) share the last task; the big file has its own.
    assert [p.unit.path for p in tasks[-1]] == [str(p) for p in [*smalls, gz]]
    assert all(p.whole for p in tasks[-1])
    assert len(tasks) - 1 >= 4 and all(len(t) == 1 and not t[0].whole for t in tasks[:-1])
    assert sum(t[0].size for t in tasks[:-1]) == size


def test_read_in_parts_equals_read_whole(ray_session, tmp_path, monkeypatch):
    monkeypatch.setattr(pieces_module, "MIN_PIECE_BYTES", 1)
    write_alpaca(tmp_path / "train.jsonl", 3000)
    sources = [SourceConfig(name="al", format="alpaca", path=str(tmp_path / "train.jsonl"))]
    plan = check_sources(sources, "sft")
    whole = [
        row for table in read_units_in_process(plan.units, sources, "sft", FS) for row in table.to_pylist()
    ]
    ds = read_sources(sources, "sft", cpus=2)
    assert ds.take_all() == whole
    tasks = plan_tasks(plan.units, FS, cpus=2)
    assert len(tasks) >= 8
    parted = [
        row
        for table in read_pieces([p for t in tasks for p in t], sources, "sft", FS)
        for row in table.to_pylist()
    ]
    assert parted == whole
    assert isinstance(tasks[0][0], Piece)
