"""Ingest's read plan (aloe_data.sources.pieces): a big JSONL file read in parts, or a big JSON document
read in shares, gives exactly the rows, locators and ids of reading it whole (errors included), and the
plan gives a single file several tasks."""

from __future__ import annotations

import gc
import gzip
import io
import json
from pathlib import Path

import pyarrow.fs as pafs
import pytest

from aloe_core.containers import iter_json, iter_jsonl
from aloe_data.sources import SourceConfig, check_sources, read_sources
from aloe_data.sources import datasource as datasource_module
from aloe_data.sources import pieces as pieces_module
from aloe_data.sources.datasource import ROWS_PER_BLOCK, read_pieces, read_units_in_process
from aloe_data.sources.paths import FileUnit
from aloe_data.sources.pieces import Piece, open_piece, plan_tasks, share_json, split_jsonl

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


def json_document(items: int, as_list: bool = False, broken_at: int | None = None) -> bytes:
    """A prompt_engine-like document of ``items`` items of varied size, with a non-object item, an
    invalid UTF-8 byte and, optionally, a syntax error before item ``broken_at``."""
    parts = []
    for i in range(items):
        value = {"question": f"q{i} " + "word " * (i * 7 % 53), "options": {"A": "a", "B": "b"}}
        item = json.dumps(value).encode()
        if i % 41 == 5:
            item = b"[1, 2]"
        if i % 59 == 9:
            item = item.replace(b"word", b"w\xe9rd", 1).replace(b"\\xe9", b"\xe9")
        if broken_at is not None and i == broken_at:
            item = item[:-1]  # no closing brace: the document ends here for ijson
        parts.append(item if as_list else json.dumps(f"id-{i}").encode() + b": " + item)
    body = b",\n".join(parts)
    return b"[" + body + b"]" if as_list else b"{" + body + b"}"


def rows_of(raws) -> list[tuple]:
    return [(r.locator, r.value, r.error, r.raw) for r in raws]


@pytest.mark.parametrize("as_list", [False, True])
@pytest.mark.parametrize("broken_at", [None, 300])
@pytest.mark.parametrize("chunk_size", [97, 4096])
def test_json_shares_give_the_whole_documents_rows(as_list, broken_at, chunk_size):
    data = json_document(600, as_list, broken_at)
    whole = rows_of(iter_json(io.BytesIO(data), chunk_size))
    assert any(r[2] and "must be a JSON object" in r[2] for r in whole)
    assert any(r[2] and "invalid UTF-8" in r[2] for r in whole)
    assert (broken_at is not None) == ("invalid JSON" in (whole[-1][2] or ""))
    for parts in (2, 3, 7, 200):
        bounds = [len(data) * i // parts for i in range(1, parts)]
        shares = [
            rows_of(iter_json(io.BytesIO(data), chunk_size, after=after, upto=upto))
            for after, upto in zip([-1, *bounds], [*bounds, None], strict=True)
        ]
        assert [row for share in shares for row in share] == whole
        assert sum(1 for share in shares if share) > 1  # the rows really are spread over the shares


def test_a_file_that_is_not_a_document_errs_in_the_first_share_only():
    data = b"  nope"
    assert [r.locator for r in iter_json(io.BytesIO(data), after=-1, upto=3)] == ["#0"]
    assert list(iter_json(io.BytesIO(data), after=3)) == []


class ShortReads(io.BytesIO):
    """A stream whose reads stop short (as network streams may): positions must not change."""

    def read(self, size: int = -1) -> bytes:
        return super().read(max(1, size // 3) if size and size > 0 else size)


def test_json_share_positions_do_not_depend_on_short_reads():
    data = json_document(400)
    bounds = [len(data) // 3, 2 * len(data) // 3]
    pairs = list(zip([-1, *bounds], [*bounds, None], strict=True))
    full = [rows_of(iter_json(io.BytesIO(data), 1000, after=a, upto=u)) for a, u in pairs]
    short = [rows_of(iter_json(ShortReads(data), 1000, after=a, upto=u)) for a, u in pairs]
    assert short == full and all(full)


def test_plan_reads_a_big_json_document_in_shares(tmp_path, monkeypatch):
    monkeypatch.setattr(pieces_module, "MIN_PIECE_BYTES", 1)
    big = tmp_path / "sample_mcqa.json"
    big.write_bytes(json_document(3000))
    gz = tmp_path / "other.json.gz"
    gz.write_bytes(gzip.compress(big.read_bytes()))
    tasks = plan_tasks([unit(big, "json"), unit(gz, "json")], FS, cpus=2)
    shares = [t[0] for t in tasks[:-1]]
    assert [p.unit.path for p in tasks[-1]] == [str(gz)] and tasks[-1][0].whole  # compressed: whole
    assert len(shares) >= 4 and all(len(t) == 1 for t in tasks[:-1])
    assert not any(p.whole or p.byte_range for p in shares)
    assert shares[0].after == -1 and shares[-1].upto is None
    assert [p.upto for p in shares[:-1]] == [p.after for p in shares[1:]]
    assert share_json(unit(big, "json"), 10, 1) == [Piece(unit(big, "json"), size=10)]


def test_json_read_in_shares_equals_read_whole(ray_session, tmp_path, monkeypatch):
    """Through the datasource: ids, locators and quarantined rows of a document read by several tasks
    (real 1 MiB read chunks: the document is a few MiB) are those of reading it whole."""
    monkeypatch.setattr(pieces_module, "MIN_PIECE_BYTES", 1)
    path = tmp_path / "sample_mcqa.json"
    items = {}
    for i in range(16_000):
        options = {"A": f"option {i}", "B": "other " * (i % 23), "C": "c", "D": "d"}
        items[f"q{i}"] = {"question": f"Which is {i}? " + "word " * (i % 31), "options": options}
        items[f"q{i}"]["correct_answer"] = "ABCD"[i % 4] if i % 997 else "Z"  # a few bad answers
    path.write_text(json.dumps(items))
    assert path.stat().st_size > 4 << 20
    sources = [SourceConfig(name="pe", format="prompt_engine_mcqa", path=str(path))]
    plan = check_sources(sources, "sft")
    whole = [
        row for table in read_units_in_process(plan.units, sources, "sft", FS) for row in table.to_pylist()
    ]
    assert sum(row["drop_reason"] == "malformed" for row in whole) == 17
    tasks = plan_tasks(plan.units, FS, cpus=2)
    assert len(tasks) >= 4
    assert read_sources(sources, "sft", cpus=2).take_all() == whole


@pytest.mark.parametrize("rows", [0, 1, ROWS_PER_BLOCK, 2 * ROWS_PER_BLOCK + 1])
def test_blocks_hold_at_most_rows_per_block_and_leave_the_collector_on(tmp_path, monkeypatch, rows):
    """Every row in order, in full blocks then one short one (an empty file: one empty block, which
    carries the schema); the collector is paused while rows are built and on whenever a block is
    handed out and after the read."""
    real_to_row, built_with_collector = datasource_module.to_row, []

    def to_row(*args):
        built_with_collector.append(gc.isenabled())
        return real_to_row(*args)

    monkeypatch.setattr(datasource_module, "to_row", to_row)
    path = tmp_path / "train.jsonl"
    lines = [json.dumps({"instruction": f"question {i}", "output": f"answer {i}"}) for i in range(rows)]
    path.write_text("".join(line + "\n" for line in lines))
    sources = [SourceConfig(name="al", format="alpaca", path=str(path))]
    plan = check_sources(sources, "sft")
    sizes, collector_on = [], []
    questions = []
    for table in read_units_in_process(plan.units, sources, "sft", FS):
        collector_on.append(gc.isenabled())
        sizes.append(table.num_rows)
        questions += [row["messages"][0]["content"] for row in table.to_pylist()]
    full, rest = divmod(rows, ROWS_PER_BLOCK)
    assert sizes == [ROWS_PER_BLOCK] * full + ([rest] if rest or not rows else [])
    assert questions == [f"question {i}" for i in range(rows)]
    assert all(collector_on) and gc.isenabled()
    assert built_with_collector == [False] * rows


def test_a_failing_read_leaves_the_collector_on(tmp_path, monkeypatch):
    """An error while a block is built (here: the row builder raising) still turns the collector back on."""
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps({"instruction": "q", "output": "a"}) + "\n")
    sources = [SourceConfig(name="al", format="alpaca", path=str(path))]
    plan = check_sources(sources, "sft")

    def broken(*args):
        raise RuntimeError("row builder failed")

    monkeypatch.setattr(datasource_module, "to_row", broken)
    with pytest.raises(RuntimeError, match="row builder failed"):
        list(read_units_in_process(plan.units, sources, "sft", FS))
    assert gc.isenabled()
