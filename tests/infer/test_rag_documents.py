"""Reading a corpus and chunking it: every document kept or dropped with a reason, chunks within the
encoder's window, offsets that point back into the document."""

from __future__ import annotations

import itertools
import json
from collections import Counter

import pytest

from aloe_core.errors import InputError
from aloe_infer.retrieval.chunking import Chunker, window_spans
from aloe_infer.retrieval.config import ChunkingConfig, DocumentFields
from aloe_infer.retrieval.documents import list_sources, read_documents


def test_window_spans_overlap_and_end_on_the_last_token():
    words = [(i * 2, i * 2 + 1) for i in range(10)]  # ten one-token words, one space apart
    assert window_spans(words, 4, 1) == [(0, 7), (6, 13), (12, 19)]
    assert window_spans(words[:3], 4, 1) == [(0, 5)]
    assert window_spans([], 4, 1) == []


def test_windows_do_not_cut_words_unless_a_word_is_longer_than_a_window():
    # "ab cd ef": tokens a|b c|d e|f (b, d, f continue their words)
    tokens = [(0, 1), (1, 2), (3, 4), (4, 5), (6, 7), (7, 8)]
    assert window_spans(tokens, 3, 1) == [(0, 2), (3, 5), (6, 8)]
    assert window_spans([(0, 1), (1, 2), (2, 3), (3, 4)], 3, 1) == [(0, 3), (2, 4)]


def test_chunking_config_rejects_overlap_as_large_as_the_window():
    with pytest.raises(ValueError, match="overlap_tokens"):
        ChunkingConfig(chunk_tokens=32, overlap_tokens=32)


@pytest.fixture(scope="module")
def chunker():
    from aloe_infer.embeddings import default_embedding_model

    return Chunker(default_embedding_model(), ChunkingConfig(chunk_tokens=64, overlap_tokens=8))


def test_a_huge_document_becomes_windows_of_at_most_chunk_tokens(chunker):
    sentence = "Intramuscular epinephrine is the first-line treatment of anaphylaxis in adults. "
    text = sentence * 60_000  # ~4.9 MB, ~900k tokens: far past the encoder's 256
    [spans] = chunker.spans([text])
    tokens = 60_000 * len(chunker.tokenizer(sentence, add_special_tokens=False)["input_ids"])
    assert -(-tokens // 64) < len(spans) <= -(-(tokens - 8) // 40)  # windows of <= 64 tokens, overlapping
    assert spans[0][0] == 0 and spans[-1][1] == len(text.rstrip())
    for start, end in spans[:50] + spans[-50:]:
        assert len(chunker.tokenizer(text[start:end], add_special_tokens=False)["input_ids"]) <= 64
    assert all(b[0] < a[1] for a, b in itertools.pairwise(spans))  # consecutive windows overlap


def test_chunk_offsets_point_back_into_the_text(chunker):
    text = "Lisinopril causes a dry cough.  Amlodipine causes ankle edema.\n\nMetformin: lactic acidosis. "
    [spans] = chunker.spans([text])
    assert len(spans) == 1 and text[spans[0][0] : spans[0][1]] == text.strip()


def _write(path, data: bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_every_document_is_kept_or_dropped_with_a_reason(tmp_path):
    rows = [
        {"id": "a", "title": "A", "text": "kept"},
        {"id": "b", "text": ""},
        {"id": "c", "title": "C", "text": ["section one", "section two"]},
        {"id": "d", "text": 5},
        {"text": "no id"},
    ]
    lines = [json.dumps(r).encode() for r in rows] + [b"{not json", b'{"id": "e", "text": "bad \xff"}']
    _write(tmp_path / "docs.jsonl", b"\n".join(lines))
    _write(tmp_path / "notes" / "page.md", b"# Anaphylaxis\n\nGive epinephrine.\n")
    _write(tmp_path / "notes" / "latin1.txt", "caf\xe9".encode("latin-1"))
    _write(tmp_path / "notes" / "empty.txt", b"")
    _write(tmp_path / "image.png", b"\x89PNG")
    _write(tmp_path / ".hidden" / "x.txt", b"ignored")
    sources, unsupported = list_sources(tmp_path)
    assert [s.rel for s in sources] == ["docs.jsonl", "notes/empty.txt", "notes/latin1.txt", "notes/page.md"]
    assert unsupported == ["image.png"]
    dropped: Counter[str] = Counter()
    docs = [d for s in sources for d in read_documents(s, DocumentFields(), dropped)]
    assert [(d.doc_id, d.title, d.text) for d in docs] == [
        ("a", "A", "kept"),
        ("c", "C", "section one\n\nsection two"),
        ("docs.jsonl:5", "", "no id"),
        ("notes/page", "Anaphylaxis", "\nGive epinephrine.\n"),
    ]
    assert dropped == {"malformed": 3, "empty_text": 2, "invalid_utf8": 1}


def test_field_names_are_configurable(tmp_path):
    _write(tmp_path / "c.jsonl", json.dumps({"PMID": 7, "title": "T", "content": "body"}).encode())
    [source], _ = list_sources(tmp_path / "c.jsonl")
    [doc] = read_documents(source, DocumentFields(id="PMID", text="content"), Counter())
    assert (doc.doc_id, doc.text) == ("7", "body")


def test_missing_or_unsupported_corpus_is_one_line_error(tmp_path):
    with pytest.raises(InputError, match="corpus not found"):
        list_sources(tmp_path / "nowhere")
    (tmp_path / "x.csv").write_text("a,b")
    with pytest.raises(InputError, match="unsupported corpus file type"):
        list_sources(tmp_path / "x.csv")


def test_fixture_documents_are_written_from_the_fact_tables(tmp_path):
    from aloe_fixtures.corpus.documents import _slug, medical_documents, write_documents
    from aloe_fixtures.corpus.facts_drugs import DRUGS

    docs = medical_documents()
    assert len(docs) == 228 and len({d["id"] for d in docs}) == len(docs)
    by_id = {d["id"]: d for d in docs}
    for drug in DRUGS:
        text = by_id[f"drugs/{_slug(drug.name)}"]["text"]
        assert drug.cls in text and all(effect in text for effect in drug.adverse)
    files = write_documents(tmp_path / "md", layout="md")
    assert len(files) == 228
    sources, _ = list_sources(tmp_path / "md")
    read = [d for s in sources for d in read_documents(s, DocumentFields(), Counter())]
    assert {d.doc_id for d in read} == set(by_id)
