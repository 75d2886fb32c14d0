"""Reading a corpus into documents: JSONL, JSON, Parquet, and folders of ``.txt`` / ``.md`` files.

A corpus is one file or a folder searched recursively (hidden files and folders are skipped; files of
other types are listed in the manifest as unsupported). Each source file is identified by its path
relative to the corpus root and its sha256, which is what incremental re-indexing compares.

Every document read is kept or dropped with a reason, counted per file:

* ``malformed``: a row that does not decode (bad JSON, invalid UTF-8 inside a JSONL line, a non-string
  field); logged with its file and row;
* ``empty_text``: no text after stripping whitespace (an empty ``.txt`` file, a blank ``text`` field);
* ``invalid_utf8``: a ``.txt`` / ``.md`` file that is not UTF-8 (logged with the byte offset);
* ``duplicate_doc_id``: a document id seen earlier in the corpus (decided by the indexer).
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aloe_core import storage
from aloe_core.containers import READERS, RawRow, json_type
from aloe_core.errors import InputError
from aloe_infer.retrieval.config import DocumentFields

logger = logging.getLogger(__name__)

KINDS = {".jsonl": "jsonl", ".json": "json", ".parquet": "parquet", ".txt": "text", ".md": "text"}


@dataclass(frozen=True)
class SourceFile:
    """One corpus file: ``rel`` is its POSIX path relative to the corpus root (its name for a file)."""

    path: Path
    rel: str
    kind: str
    sha256: str


@dataclass(frozen=True)
class Document:
    doc_id: str
    title: str
    text: str
    locator: str  # row in its file (line number, key or index; empty for a text file)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def list_sources(corpus: str | Path) -> tuple[list[SourceFile], list[str]]:
    """``(supported files sorted by relative path, unsupported relative paths)``.

    A corpus folder on an ``s3://`` / ``gs://`` URI is read from this machine's copy
    (:func:`aloe_core.storage.local_copy`: fetched once per version of the folder); the relative paths,
    and so the documents' ids and the reuse of a previous index's vectors, are those of the folder.

    Raises:
        InputError: the corpus path does not exist, or is a file of an unsupported type.
    """
    if storage.is_uri(corpus):
        if storage.is_file(corpus):
            raise InputError(f"{corpus}: a corpus on object storage must be a folder (give its folder)")
        corpus = storage.local_copy(corpus, missing="corpus")
    corpus = Path(corpus)
    if corpus.is_file():
        kind = KINDS.get(corpus.suffix.lower())
        if kind is None:
            raise InputError(f"{corpus}: unsupported corpus file type (use {', '.join(sorted(KINDS))})")
        return [SourceFile(corpus, corpus.name, kind, file_sha256(corpus))], []
    if not corpus.is_dir():
        raise InputError(f"{corpus}: corpus not found (a file or a folder of documents)")
    found, unsupported = [], []
    for path in sorted(corpus.rglob("*")):
        rel = path.relative_to(corpus)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        kind = KINDS.get(path.suffix.lower())
        if kind is None:
            unsupported.append(rel.as_posix())
        else:
            found.append(SourceFile(path, rel.as_posix(), kind, file_sha256(path)))
    return found, unsupported


def read_documents(source: SourceFile, fields: DocumentFields, dropped: Counter[str]) -> Iterator[Document]:
    """The documents of one source file; drops are added to ``dropped`` by reason."""
    if source.kind == "text":
        yield from _text_file(source, dropped)
        return
    with source.path.open("rb") as handle:
        for raw in READERS[source.kind](handle):
            document = _row_document(source, raw, fields, dropped)
            if document is not None:
                yield document


def _text_file(source: SourceFile, dropped: Counter[str]) -> Iterator[Document]:
    data = source.path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        logger.warning("%s: not UTF-8 (invalid byte at offset %d); file skipped", source.rel, exc.start)
        dropped["invalid_utf8"] += 1
        return
    title, body = _markdown_title(text) if source.path.suffix.lower() == ".md" else ("", text)
    if not body.strip():
        dropped["empty_text"] += 1
        return
    yield Document(source.rel.rsplit(".", 1)[0], title or Path(source.rel).stem, body, "")


def _markdown_title(text: str) -> tuple[str, str]:
    """``# Title`` on the first non-blank line becomes the title; the rest is the text."""
    stripped = text.lstrip()
    first, _, rest = stripped.partition("\n")
    if first.startswith("# "):
        return first[2:].strip(), rest
    return "", text


def _row_document(
    source: SourceFile, raw: RawRow, fields: DocumentFields, dropped: Counter[str]
) -> Document | None:
    where = f"{source.rel}:{raw.locator}"
    if raw.error is not None or raw.value is None:
        logger.warning("%s: %s; row dropped (malformed)", where, raw.error)
        dropped["malformed"] += 1
        return None
    try:
        text = _field_text(raw.value, fields.text, required=True)
        title = _field_text(raw.value, fields.title, required=False)
        doc_id = _field_id(raw.value, fields.id) or f"{source.rel}:{raw.locator}"
    except ValueError as exc:
        logger.warning("%s: %s; row dropped (malformed)", where, exc)
        dropped["malformed"] += 1
        return None
    if not text.strip():
        dropped["empty_text"] += 1
        return None
    return Document(doc_id, title, text, str(raw.locator))


def _field_text(row: dict[str, Any], key: str, *, required: bool) -> str:
    """A string field; a list of strings (PubMedQA's abstract sections) is joined by blank lines."""
    value = row.get(key)
    if value is None:
        if required:
            raise ValueError(f"{key}: required field is missing")
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(part, str) for part in value):
        return "\n\n".join(value)
    raise ValueError(f"{key}: must be a string or a list of strings, got {json_type(value)}")


def _field_id(row: dict[str, Any], key: str) -> str | None:
    value = row.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"{key}: must be a string or an integer, got {json_type(value)}")
    return str(value)
