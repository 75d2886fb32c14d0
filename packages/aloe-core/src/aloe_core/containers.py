"""Containers: how rows are stored in a file, streamed into :class:`RawRow` s one at a time.

Every reader takes an open pyarrow file and never holds more than one row (JSON, JSONL) or one record
batch (Parquet, Arrow) in memory, so a multi-gigabyte file costs no more memory than a small one.

Each row carries its locator: the 1-based line number (JSONL; blank lines are skipped but counted), the
object key (top-level JSON object), or the 0-based index (top-level JSON list, Parquet, Arrow).

A row that cannot be decoded is not an exception but a ``RawRow`` with ``error`` set
(``"<field path>: <what is wrong>"``), so the reader can quarantine it and carry on. When a whole-file
structure breaks (a JSON syntax error, a corrupt Parquet page) the rest of the file cannot be recovered:
the reader yields one error row located at the first item it could not read (``#N`` for the N-th
object member, ``N`` for list/Parquet/Arrow indices) saying so, then stops.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import ijson
import pyarrow as pa
import pyarrow.parquet as pq

READ_CHUNK = 1 << 20  # bytes per read() from the input stream
BATCH_ROWS = 2048  # rows per Parquet record batch decoded at a time
RAW_LIMIT = 2000  # characters of raw text kept on a quarantined row

# Invalid UTF-8 bytes are decoded to this noncharacter so that parsing can go on and the field holding
# them can be named; real text never contains U+10FFFE (Unicode reserves it as a noncharacter).
INVALID_BYTE_MARK = "\U0010fffe"
_MARK_ERRORS = "aloe-mark-invalid-utf8"


def _mark_invalid(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeDecodeError):
        raise error
    return INVALID_BYTE_MARK * (error.end - error.start), error.end


codecs.register_error(_MARK_ERRORS, _mark_invalid)


@dataclass(frozen=True)
class RawRow:
    """One row as read: ``value`` (a dict) when decoded, else ``error``; ``raw`` text when at hand."""

    locator: int | str
    value: dict[str, Any] | None = None
    error: str | None = None
    raw: str | None = None


def json_type(value: Any) -> str:
    """The JSON name of a Python value's type, for messages."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return {dict: "object", list: "list", str: "string", type(None): "null"}.get(
        type(value), type(value).__name__
    )


def marked_field(value: Any, path: str = "$") -> str | None:
    """Path of the first key or string in ``value`` holding :data:`INVALID_BYTE_MARK`, or None."""
    if isinstance(value, str):
        return path if INVALID_BYTE_MARK in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            child = key if path == "$" else f"{path}.{key}"
            if INVALID_BYTE_MARK in key:
                return child
            found = marked_field(item, child)
            if found:
                return found
    if isinstance(value, list):
        for i, item in enumerate(value):
            found = marked_field(item, f"{path}[{i}]" if path != "$" else f"[{i}]")
            if found:
                return found
    return None


def truncate(text: str) -> str:
    return text if len(text) <= RAW_LIMIT else text[:RAW_LIMIT]


# -- JSONL ---------------------------------------------------------------------------------------------


def iter_lines(stream: Any, chunk_size: int = READ_CHUNK, first_line: int = 1) -> Iterator[tuple[int, bytes]]:
    """``(line number, line bytes without the newline)`` for every line of a byte stream, numbered from
    ``first_line`` (a stream that starts at a line of a file further on: ingest reads big files in parts)."""
    buffer = bytearray()
    number = first_line - 1
    while True:
        data = stream.read(chunk_size)
        if not data:
            break
        start = len(buffer)
        buffer.extend(data)
        begin = 0
        # Search only the new bytes for newlines: a long line spanning chunks is scanned once.
        end = buffer.find(b"\n", start)
        while end != -1:
            number += 1
            yield number, bytes(buffer[begin:end])
            begin = end + 1
            end = buffer.find(b"\n", begin)
        del buffer[:begin]
    if buffer:
        yield number + 1, bytes(buffer)


def _undecodable_line(number: int, line: bytes, error: UnicodeDecodeError) -> RawRow:
    raw = truncate(line.decode("utf-8", "replace"))
    where = f"invalid UTF-8 bytes (byte {error.start + 1} of the line)"
    try:
        value = json.loads(line.decode("utf-8", _MARK_ERRORS))
    except json.JSONDecodeError:
        return RawRow(number, error=f"$: {where}", raw=raw)
    return RawRow(number, error=f"{marked_field(value) or '$'}: {where}", raw=raw)


def iter_jsonl(stream: Any, chunk_size: int = READ_CHUNK, first_line: int = 1) -> Iterator[RawRow]:
    """One :class:`RawRow` per non-blank line, located by its 1-based line number (the stream's first
    line being line ``first_line`` of its file)."""
    for number, line in iter_lines(stream, chunk_size, first_line):
        if number == 1 and line.startswith(codecs.BOM_UTF8):
            line = line[len(codecs.BOM_UTF8) :]
        line = line.rstrip(b"\r")
        if not line.strip():
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield _undecodable_line(number, line, exc)
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            yield RawRow(number, error=f"$: invalid JSON: {exc.msg} (column {exc.colno})", raw=truncate(text))
            continue
        if not isinstance(value, dict):
            yield RawRow(
                number, error=f"$: must be a JSON object, got {json_type(value)}", raw=truncate(text)
            )
            continue
        yield RawRow(number, value=value, raw=text)


# -- JSON (top-level object or list) -------------------------------------------------------------------


class _MarkingReader:
    """A byte stream re-encoded as valid UTF-8 (invalid bytes -> the mark), for ijson; counts bytes read."""

    def __init__(self, stream: Any, chunk_size: int = READ_CHUNK) -> None:
        self._stream = stream
        self._chunk_size = chunk_size
        # utf-8-sig drops a leading byte-order mark, even one split across reads.
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")(_MARK_ERRORS)
        self._buffer = b""
        self._pos = 0  # bytes of _buffer already handed out (avoids re-slicing the buffer on every read)
        self._eof = False
        self.consumed = 0

    def _fill(self) -> None:
        data = self._stream.read(self._chunk_size)
        while data and len(data) < self._chunk_size:
            # A short read (network and decompressing streams may give one): fill the chunk, so that
            # ``consumed`` at any item depends on the file's bytes only (pieces of one file rely on it).
            more = self._stream.read(self._chunk_size - len(data))
            if not more:
                break
            data += more
        self.consumed += len(data)
        text = self._decoder.decode(data, final=not data)
        self._eof = not data
        self._buffer = self._buffer[self._pos :] + text.encode("utf-8")
        self._pos = 0

    def _available(self) -> int:
        return len(self._buffer) - self._pos

    def peek_start(self) -> bytes:
        """The first non-whitespace byte (b"" for an empty file), without consuming it."""
        while not self._buffer[self._pos :].strip() and not self._eof:
            self._fill()
        return self._buffer[self._pos :].lstrip()[:1]

    def read(self, size: int = -1) -> bytes:
        while not self._eof and (size < 0 or self._available() < size):
            self._fill()
        size = self._available() if size < 0 else min(size, self._available())
        out = self._buffer[self._pos : self._pos + size]
        self._pos += size
        return out


def _json_error_text(exc: Exception) -> str:
    message = exc.args[0] if exc.args else str(exc)
    if isinstance(message, bytes):
        message = message.decode("utf-8", "replace")
    return str(message).replace(INVALID_BYTE_MARK, "\ufffd")


def _item_text(value: Any) -> str:
    return truncate(json.dumps(value, ensure_ascii=False, default=str).replace(INVALID_BYTE_MARK, "\ufffd"))


def _checked_item(locator: int | str, value: Any) -> RawRow:
    if not isinstance(value, dict):
        return RawRow(
            locator, error=f"$: must be a JSON object, got {json_type(value)}", raw=_item_text(value)
        )
    marked = marked_field(value)
    if marked:
        return RawRow(locator, error=f"{marked}: invalid UTF-8 bytes", raw=_item_text(value))
    return RawRow(locator, value=value)


def iter_json(
    stream: Any, chunk_size: int = READ_CHUNK, *, after: int = -1, upto: int | None = None
) -> Iterator[RawRow]:
    """Items of a top-level JSON object (located by key) or list (located by index), streamed with ijson.

    ``after`` and ``upto`` select a share of the file's rows for reading a big document in several
    tasks (:mod:`aloe_data.sources.pieces`): each row has a *position*, the bytes read from ``stream``
    when it is yielded (chunks of ``chunk_size``, so positions depend only on the file's bytes and never
    decrease), and only rows with ``after < position <= upto`` are yielded; reading stops past ``upto``.
    Shares with adjacent bounds give every row exactly once, in order, with the locators (and errors)
    of one read of the whole file: rows before a share are parsed but not checked or yielded.
    """
    reader = _MarkingReader(stream, chunk_size)
    start = reader.peek_start()
    if start not in (b"{", b"["):
        got = "an empty file" if not start else f"a file starting with {start.decode('utf-8', 'replace')!r}"
        if after < 0:  # this row's position is 0: it belongs to the first share
            yield RawRow(
                "#0", error=f"$: expected a top-level JSON object {{key: item}} or list of items, got {got}"
            )
        return
    is_object = start == b"{"
    # Positions step by ``chunk_size`` (the reader's fills) whatever ijson asks for at a time; 256 KiB
    # asks parse faster than its 64 KiB default or 1 MiB (measured on PubMedQA's 32 MB document).
    buf_size = min(chunk_size, 1 << 18)
    items = (
        ijson.kvitems(reader, "", use_float=True, buf_size=buf_size)
        if is_object
        else enumerate(ijson.items(reader, "item", use_float=True, buf_size=buf_size))
    )
    count = 0
    try:
        for locator, value in items:
            if upto is not None and reader.consumed > upto:
                return
            if reader.consumed > after:
                yield _checked_item(locator, value)
            count += 1
    except ijson.JSONError as exc:
        if reader.consumed <= after or (upto is not None and reader.consumed > upto):
            return  # another share's row
        message = _json_error_text(exc)
        first_line = message.strip().splitlines()[0] if message.strip() else "invalid JSON"
        yield RawRow(
            f"#{count}" if is_object else count,
            error=f"$: invalid JSON: {first_line} (within the first {reader.consumed} bytes); "
            "items from here to the end of the file were not read",
            raw=truncate(message),
        )


# -- Parquet and Arrow ---------------------------------------------------------------------------------


def _iter_batches(batches: Iterator[pa.RecordBatch], what: str) -> Iterator[RawRow]:
    index = 0
    try:
        for batch in batches:
            for value in batch.to_pylist():
                yield RawRow(index, value=value)
                index += 1
    except (pa.ArrowException, OSError) as exc:
        yield RawRow(
            index,
            error=f"$: unreadable {what} data ({exc}); rows from here to the end of the file were not read",
        )


def iter_parquet(file: Any) -> Iterator[RawRow]:
    """Rows of a Parquet file (random-access ``file``), one record batch decoded at a time."""
    try:
        parquet = pq.ParquetFile(file)
    except (pa.ArrowException, OSError) as exc:
        yield RawRow(0, error=f"$: not a readable Parquet file ({exc})")
        return
    yield from _iter_batches(parquet.iter_batches(batch_size=BATCH_ROWS), "Parquet")


def iter_arrow_stream(stream: Any) -> Iterator[RawRow]:
    """Rows of an Arrow IPC stream file (the ``*.arrow`` shards of a ``save_to_disk`` folder)."""
    try:
        reader = pa.ipc.open_stream(stream)
    except (pa.ArrowException, OSError) as exc:
        yield RawRow(0, error=f"$: not a readable Arrow stream file ({exc})")
        return
    yield from _iter_batches(iter(reader), "Arrow")


READERS = {"jsonl": iter_jsonl, "json": iter_json, "parquet": iter_parquet, "arrow": iter_arrow_stream}
